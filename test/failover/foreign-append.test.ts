/**
 * A leader stops answering reads as soon as its log holds an entry it did not append (review-session10, finding 6).
 * Under a partial partition (the route between the leader's and a standby's servers cut, both still reaching the
 * third) the standby stops hearing beats, claims, appends and serves, while the old leader's quorum check still
 * passes through the third server and its lease kept renewing: its reads missed the new leader's writes until a
 * write of its own was fenced. The quorum check returns the log's tail; past this leader's own appends, it is
 * deposed. Here the other writer is a raw JetStream publish to the domain's log subject, with no write sent to the
 * host: real nats-server, a real host process.
 */
// test-runner: alone (asserts how soon a stale answer stops: run by itself, test/run.ts)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from 'nats';
import { encodeEntry } from '../../actors/index.ts';
import { startNatsServer } from '../../cli/index.ts';
import { decodePayload, encodePayload, logSubject, shardSubject } from '../../protocol/index.ts';
import type { LogEntry } from '../../shards/index.ts';
import { startHosts } from '../harness/hosts.ts';
import { oneMiniConfig, NODE } from '../client/one-mini.ts';

const DOMAIN = 'email';

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a leader whose log gets an entry from another writer steps down before any write reaches it, and reads see that entry', async () => {
  const nats = await startNatsServer();
  const hosts = await startHosts({ config: oneMiniConfig(nats.url) });
  const nc = await connect({ servers: nats.url });
  try {
    const ask = async (subject: string, body: object): Promise<Record<string, any>> =>
      decodePayload((await nc.request(subject, encodePayload({ v: 1, ...body }, 'msgpack'), { timeout: 5_000 })).data, 'msgpack') as Record<string, any>;
    for (let i = 0; i < 3; i++) await ask(shardSubject(DOMAIN, 'remember'), { agent: 'a', fact: { text: `Ordinary mail fact ${i}` } });
    const before = (await hosts.host(NODE).shard(DOMAIN))!;
    assert.is(before.state, 'leading');

    // Another writer appends, as a standby that claimed on the far side of a cut route would.
    const rival: LogEntry = {
      v: 1,
      op: 'assert',
      opId: 'rival-1',
      recordedAt: Date.now(),
      source: { agent: 'rival-leader' },
      fact: { text: 'Quarterly invoices go to the finance mailbox' },
    } as LogEntry;
    const ack = await nc.jetstream().publish(logSubject(DOMAIN), encodeEntry(rival));
    assert.is(ack.seq, before.appliedSeq + 1);
    const appendedAt = Date.now();

    // Only reads from here on. The leader must notice from its quorum check alone: it steps down, catches up
    // through the rival's entry and leads again in a later epoch; its reads then include that entry.
    let lastStaleAnswerMs = -1;
    await eventually(
      'a read that sees the other writer\'s entry',
      async () => {
        const r = await ask(shardSubject(DOMAIN, 'recall'), { query: 'quarterly invoices finance mailbox' });
        if (r['error'] !== undefined) return undefined; // refused between leaders: retry
        const texts = ((r['facts'] ?? []) as { text: string }[]).map((f) => f.text);
        if (texts.includes('Quarterly invoices go to the finance mailbox')) return true;
        lastStaleAnswerMs = Date.now() - appendedAt;
        return undefined;
      },
      // Stepped down with no leader beating, the host waits out its cold-start grace before it claims again.
      20_000,
    );
    const tookMs = Date.now() - appendedAt;
    // A beat every 250 ms, each followed by a quorum check: stale answers stop within a few beats, not a lease.
    assert.ok(lastStaleAnswerMs < 1_000, `answered without the other writer's entry ${lastStaleAnswerMs} ms after it was appended`);
    const after = (await hosts.host(NODE).shard(DOMAIN))!;
    assert.ok(after.epoch > before.epoch, `led again in a later epoch (${before.epoch} → ${after.epoch})`);
    assert.ok(after.appliedSeq > ack.seq, 'caught up through the other writer\'s entry and appended its new epoch marker');
    assert.match(hosts.host(NODE).stderr(), /deposed: the log's tail is seq \d+, past seq \d+/);
    console.log(`  last answer without the other writer's entry: ${lastStaleAnswerMs} ms after it was appended; first with it: ${tookMs} ms`);
  } finally {
    await nc.close();
    await hosts.stop();
    await nats.destroy();
  }
});

test.run();
