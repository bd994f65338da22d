/**
 * A replica that applied an entry the log did not keep, as its very last entry, and then restarted (decisions §16
 * named this gap: the chain check only sees a bad entry when the next one arrives, and a restart forgot what was
 * applied). The store now keeps the hash of its last entry (`tailHash`), and the leader's heartbeat names the hash
 * of its entry at its sequence: the restarted follower notices at the first beat, with no further write, checks with
 * the stream leader, and rebuilds itself from the log. Real nats-server, real host processes, a forged LMDB tail.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { connect } from 'nats';
import { encodeEntry, entryHash } from '../../actors/index.ts';
import { startNatsServer } from '../../cli/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import { ctlSubject, decodePayload, encodePayload, replicaNodeSubject, shardSubject } from '../../protocol/index.ts';
import { openShardStore, type LogEntry } from '../../shards/index.ts';
import { startHosts } from '../harness/hosts.ts';

const DOMAIN = 'email';

function config(url: string): ClusterConfigInput {
  return {
    cluster: { name: 'phantom' },
    nodes: ['mini-1', 'mini-2'].map((name) => ({ name, nats: [url] })),
    domains: [{ name: DOMAIN, description: 'mail', seeds: ['send an email'] }],
    placement: { [DOMAIN]: { leader: 'mini-1', standbys: ['mini-2'] } },
    replication: { replicas: 1, leaseMs: 1500, heartbeatMs: 250 },
  };
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('a restarted follower whose last applied entry is not the log’s notices at the first heartbeat and rebuilds', async () => {
  const nats = await startNatsServer();
  const hosts = await startHosts({ config: config(nats.url) });
  const nc = await connect({ servers: nats.url });
  try {
    const ask = async (subject: string, body: object): Promise<Record<string, any>> =>
      decodePayload((await nc.request(subject, encodePayload({ v: 1, ...body }, 'msgpack'), { timeout: 5_000 })).data, 'msgpack') as Record<string, any>;
    const digest = (node: string): Promise<{ appliedSeq: number; digest: string }> => ask(ctlSubject(node, 'digest'), { domain: DOMAIN }) as never;
    let last = 0;
    for (let i = 0; i < 5; i++) {
      last = (await ask(shardSubject(DOMAIN, 'remember'), { agent: 'a', fact: { text: `Real fact number ${i}` } }))['seq'];
    }
    await eventually('mini-2 to apply everything', async () => ((await digest('mini-2')).appliedSeq === last ? true : undefined));

    // mini-2 stops; its store then gets an entry at the next sequence that the log will never have.
    const mini2 = hosts.host('mini-2');
    await mini2.stop();
    const phantom: LogEntry = {
      v: 1,
      op: 'assert',
      opId: 'phantom-1',
      recordedAt: Date.now(),
      source: { agent: 'deposed-leader' },
      fact: { text: 'A phantom fact the log never kept' },
    } as LogEntry;
    const store = openShardStore({ path: join(hosts.dataDir, 'mini-2', DOMAIN), domain: DOMAIN });
    await store.applyBatch([{ seq: last + 1, entry: phantom }], { tailHash: entryHash(encodeEntry(phantom)) });
    await store.close();
    // The log's entry at that sequence is another one.
    const real = await ask(shardSubject(DOMAIN, 'remember'), { agent: 'a', fact: { text: 'The real entry at that sequence' } });
    assert.is(real['seq'], last + 1);

    await mini2.start();
    // No further write: the leader's heartbeat alone must reveal the difference.
    const converged = await eventually('mini-2 to rebuild and converge', async () => {
      const [a, b] = await Promise.all([digest('mini-1'), digest('mini-2')]);
      return a.appliedSeq === b.appliedSeq && a.digest === b.digest ? b : undefined;
    });
    assert.is(converged.appliedSeq, last + 1);
    assert.match(mini2.stderr(), /rebuilding this replica from the log: .*heartbeat/);
    const read = await eventually('a read from mini-2', async () => {
      const r = await ask(replicaNodeSubject(DOMAIN, 'recall', 'mini-2'), { query: 'phantom fact real entry', maxStaleMs: 60_000 });
      return r['servedBy'] === 'mini-2' ? r : undefined;
    });
    const texts = (read['facts'] as { text: string }[]).map((f) => f.text);
    assert.ok(texts.includes('The real entry at that sequence'), JSON.stringify(texts));
    assert.not.ok(texts.includes('A phantom fact the log never kept'), 'the phantom is gone');
  } finally {
    await nc.close();
    await hosts.stop();
    await nats.destroy();
  }
});

test.run();
