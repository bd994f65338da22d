/**
 * A log that lost its tail (review-session10, finding 5): replicas whose stores hold entries the log no longer has
 * stop in `aheadOfLog`, say which entries the log lost, keep their stores, and neither lead nor loop. Before, the
 * placement leader looped catchingUp ↔ claiming forever ("cannot check the entry at seq S against the log now"),
 * and a follower tailed on from past the log's end, ready to skip a new history's entries and later wipe itself.
 * The loss here is an operator deleting the stream with both hosts down (a whole-cluster power loss under
 * nats-server 2.9's lazy fsync loses the tail the same way); in the second test a new history is then written past
 * the follower's position before it comes back, and it must not rebuild itself from it. Real nats-server, real host
 * processes.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { connect, headers, type NatsConnection } from 'nats';
import { encodeEntry, ensureLogStream, entryHash, PREV_HEADER } from '../../actors/index.ts';
import { runStatus, startNatsServer } from '../../cli/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import { decodePayload, encodePayload, logStream, logSubject, shardSubject } from '../../protocol/index.ts';
import { openShardStore, type LogEntry } from '../../shards/index.ts';
import { startHosts, type HostCluster, type HostProcess } from '../harness/hosts.ts';

const DOMAIN = 'email';
const NODES = ['mini-1', 'mini-2'];

function config(url: string): ClusterConfigInput {
  return {
    cluster: { name: 'lost-tail' },
    nodes: NODES.map((name) => ({ name, nats: [url] })),
    domains: [{ name: DOMAIN, description: 'mail', seeds: ['send an email'] }],
    placement: { [DOMAIN]: { leader: 'mini-1', standbys: ['mini-2'] } },
    replication: { replicas: 1, leaseMs: 1500, heartbeatMs: 250 },
  };
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** A msgpack request to the cluster, its reply decoded. */
function askOver(nc: NatsConnection): (subject: string, body: object) => Promise<Record<string, any>> {
  return async (subject, body) =>
    decodePayload((await nc.request(subject, encodePayload({ v: 1, ...body }, 'msgpack'), { timeout: 5_000 })).data, 'msgpack') as Record<string, any>;
}

/** Five acknowledged writes, applied on mini-2 too; the last one's seq. */
async function writeAcknowledged(ask: ReturnType<typeof askOver>, hosts: HostCluster): Promise<number> {
  let last = 0;
  for (let i = 0; i < 5; i++) last = (await ask(shardSubject(DOMAIN, 'remember'), { agent: 'a', fact: { text: `Acknowledged mail fact number ${i}` } }))['seq'];
  await eventually('mini-2 to apply every write', async () => ((await hosts.host('mini-2').shard(DOMAIN))?.appliedSeq === last ? true : undefined));
  return last;
}

/** How many times the host's email shard entered a state (its machine logs each transition). */
function entered(host: HostProcess, state: string): number {
  return host.stderr().split('\n').filter((l) => l.includes(` ${DOMAIN} `) && l.includes(`→ ${state}`)).length;
}

test('replicas whose stores are ahead of the log halt in aheadOfLog, name the lost entries, keep their stores, and do not loop', async () => {
  const nats = await startNatsServer();
  const hosts = await startHosts({ config: config(nats.url) });
  const nc = await connect({ servers: nats.url });
  try {
    const ask = askOver(nc);
    const last = await writeAcknowledged(ask, hosts);

    for (const node of ['mini-2', 'mini-1']) await hosts.host(node).stop();
    await (await nc.jetstreamManager({ checkAPI: false })).streams.delete(logStream(DOMAIN));
    for (const node of NODES) hosts.host(node).launch();

    for (const node of NODES) {
      let seen = 'no status';
      const halted = await eventually(`${node} to halt`, async () => {
        const s = await hosts.host(node).shard(DOMAIN);
        seen = JSON.stringify(s);
        return s?.state === 'aheadOfLog' ? s : undefined;
      }, 40_000).catch((err: Error) => {
        throw new Error(`${err.message}; last status ${seen}; its log ends:\n${hosts.host(node).stderr().slice(-3_000)}`);
      });
      assert.is(halted.appliedSeq, last, `${node} keeps what it applied`);
      assert.is(halted.role, 'none');
      assert.match(halted.lastError ?? '', new RegExp(`the email log ends at seq 0 but this replica applied through seq ${last}: the log lost entries 1\\.\\.${last}`));
      assert.match(hosts.host(node).stderr(), new RegExp(`ERROR: the email log ends at seq 0 .* lost entries 1\\.\\.${last}`));
    }

    // A halt, not a loop: no further catch-up or claim, nobody leads, for several leases.
    const catchUps = NODES.map((n) => entered(hosts.host(n), 'catchingUp'));
    const claims = NODES.map((n) => entered(hosts.host(n), 'claiming'));
    const quietUntil = Date.now() + 4_000;
    while (Date.now() < quietUntil) {
      for (const node of NODES) assert.is((await hosts.host(node).shard(DOMAIN))?.state, 'aheadOfLog', `${node} stays halted`);
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.equal(NODES.map((n) => entered(hosts.host(n), 'catchingUp')), catchUps, 'no catch-up loop');
    assert.equal(NODES.map((n) => entered(hosts.host(n), 'claiming')), claims, 'no claim loop');
    const info = await (await nc.jetstreamManager({ checkAPI: false })).streams.info(logStream(DOMAIN));
    assert.is(info.state.last_seq, 0, 'nothing was appended to the new log (no epoch marker over the lost history)');

    // `shardmind status` says so.
    const lines: string[] = [];
    await runStatus(['--servers', nats.url, '--nodes', NODES.join(',')], { out: (s: string) => void lines.push(s), err: (s: string) => void lines.push(s) });
    const text = lines.join('');
    assert.match(text, /email\s+mini-1\s+none\s+aheadOfLog\s+/);
    assert.match(text, new RegExp(`mini-2 email aheadOfLog: the email log ends at seq 0 but this replica applied through seq ${last}`));

    // The stores are kept: every acknowledged write is still in each of them.
    await Promise.all(NODES.map((n) => hosts.host(n).stop()));
    for (const node of NODES) {
      const store = await openShardStore({ path: join(hosts.dataDir, node, DOMAIN), domain: DOMAIN });
      try {
        assert.is(store.appliedSeq, last, `${node}'s store is intact`);
        const texts = store.recall({ query: 'acknowledged mail fact', limit: 20, now: Date.now() }).facts.map((f) => f.text);
        for (let i = 0; i < 5; i++) assert.ok(texts.includes(`Acknowledged mail fact number ${i}`), `${node} still holds write ${i}`);
      } finally {
        await store.close();
      }
    }
  } finally {
    await nc.close();
    await hosts.stop();
    await nats.destroy();
  }
});

test('a follower that finds a new history written past it halts instead of rebuilding itself from it', async () => {
  const nats = await startNatsServer();
  const hosts = await startHosts({ config: config(nats.url) });
  const nc = await connect({ servers: nats.url });
  try {
    const ask = askOver(nc);
    const last = await writeAcknowledged(ask, hosts);
    for (const node of ['mini-2', 'mini-1']) await hosts.host(node).stop();

    // The stream is recreated and a new history is written past mini-2's position while it is down, chained with
    // Sm-Prev as a leader writes it: another node's epoch marker, then writes.
    const jsm = await nc.jetstreamManager({ checkAPI: false });
    await jsm.streams.delete(logStream(DOMAIN));
    await ensureLogStream(jsm, DOMAIN, 1);
    const source = { agent: 'shardmind', node: 'mini-9' };
    const history: LogEntry[] = [
      { v: 1, op: 'marker', kind: 'epoch', epoch: 7, node: 'mini-9', opId: 'epoch-email-mini-9-7-0', recordedAt: Date.now(), source },
      ...Array.from({ length: last + 2 }, (_, i) => ({ v: 1, op: 'assert', opId: `new-${i}`, recordedAt: Date.now(), source: { agent: 'b' }, fact: { text: `New history fact ${i}` } }) as LogEntry),
    ];
    let prev: string | undefined;
    for (const entry of history) {
      const bytes = encodeEntry(entry);
      const h = headers();
      if (prev !== undefined) h.set(PREV_HEADER, prev);
      await nc.jetstream().publish(logSubject(DOMAIN), bytes, { headers: h });
      prev = entryHash(bytes);
    }

    const mini2 = hosts.host('mini-2');
    mini2.launch();
    let seen = 'no status';
    const halted = await eventually('mini-2 to halt', async () => {
      const st = await mini2.shard(DOMAIN);
      seen = JSON.stringify(st);
      return st?.state === 'aheadOfLog' ? st : undefined;
    }, 40_000).catch((err: Error) => {
      throw new Error(`${err.message}; last status ${seen}; its log ends:\n${mini2.stderr().slice(-3_000)}`);
    });
    assert.is(halted.appliedSeq, last);
    assert.match(
      halted.lastError ?? '',
      new RegExp(`the email log's entry at seq 1 is a epoch marker of epoch 7 by mini-9, not this replica's epoch marker of epoch 1 by mini-1: the log holds another history`),
    );
    assert.match(mini2.stderr(), /a rebuild was due and is not done: .*not the one the log kept/);
    assert.not.match(mini2.stderr(), /rebuilding this replica from the log/, 'never wiped');

    await mini2.stop();
    const store = await openShardStore({ path: join(hosts.dataDir, 'mini-2', DOMAIN), domain: DOMAIN });
    try {
      assert.is(store.appliedSeq, last, 'its store is as it was');
      const texts = store.recall({ query: 'mail fact history', limit: 20, now: Date.now() }).facts.map((f) => f.text);
      for (let i = 0; i < 5; i++) assert.ok(texts.includes(`Acknowledged mail fact number ${i}`), `still holds write ${i}`);
      assert.not.ok(texts.some((t) => t.startsWith('New history')), 'nothing of the other history was applied');
    } finally {
      await store.close();
    }
  } finally {
    await nc.close();
    await hosts.stop();
    await nats.destroy();
  }
});

test('replicas halted on a log that ended below them catch up again once it holds their entries (the stream was restored)', async () => {
  const nats = await startNatsServer();
  const hosts = await startHosts({ config: config(nats.url) });
  const nc = await connect({ servers: nats.url });
  try {
    const ask = askOver(nc);
    const last = await writeAcknowledged(ask, hosts);

    // What a backup holds: every message of the log, its bytes and headers, in order.
    const jsm = await nc.jetstreamManager({ checkAPI: false });
    const backup = [];
    for (let seq = 1; seq <= last; seq++) backup.push(await jsm.streams.getMessage(logStream(DOMAIN), { seq }));

    for (const node of ['mini-2', 'mini-1']) await hosts.host(node).stop();
    await jsm.streams.delete(logStream(DOMAIN));
    for (const node of NODES) hosts.host(node).launch();
    for (const node of NODES) {
      await eventually(`${node} to halt`, async () => ((await hosts.host(node).shard(DOMAIN))?.state === 'aheadOfLog' ? true : undefined), 40_000);
      // It asked again before believing the log had lost its tail (a stale stream leader answers so for a moment).
      assert.match(hosts.host(node).stderr(), /the email log reads as ending at seq 0, below this replica's \d+: asking again before halting/);
    }

    // The operator restores the log: the same messages, byte for byte, at the same sequences.
    for (const m of backup) {
      const h = headers();
      for (const [k, vs] of m.header ?? []) for (const v of vs) h.append(k, v);
      await nc.jetstream().publish(logSubject(DOMAIN), m.data, { headers: h });
    }

    // Both leave the halt by themselves, mini-1 leads again after an epoch marker, mini-2 follows, nothing is rebuilt.
    const status = async (node: string) => hosts.host(node).shard(DOMAIN);
    await eventually('mini-1 to lead again', async () => ((await status('mini-1'))?.state === 'leading' ? true : undefined), 30_000);
    await eventually('mini-2 to follow again', async () => ((await status('mini-2'))?.state === 'following' ? true : undefined), 30_000);
    for (const node of NODES) {
      assert.match(hosts.host(node).stderr(), /the email log holds this replica's entry at seq \d+ and its last marker after all/);
      assert.not.match(hosts.host(node).stderr(), /rebuilding this replica from the log/, `${node} was never wiped`);
    }
    const after = (await ask(shardSubject(DOMAIN, 'remember'), { agent: 'a', fact: { text: 'A write after the restore' } }))['seq'];
    assert.ok(after > last + 1, 'a new write lands after the restored log and the new epoch marker');
    await eventually('mini-2 to apply the new write', async () => ((await status('mini-2'))?.appliedSeq === after ? true : undefined));
    const found = (await ask(shardSubject(DOMAIN, 'recall'), { query: 'acknowledged mail fact restore', limit: 20 }))['facts'] as { text: string }[];
    for (let i = 0; i < 5; i++) assert.ok(found.some((f) => f.text === `Acknowledged mail fact number ${i}`), `write ${i} is still there`);
  } finally {
    await nc.close();
    await hosts.stop();
    await nats.destroy();
  }
});

test.run();
