/**
 * A standby can win an epoch and then be overtaken while it catches up: its catch-up stalls (here: its LMDB apply
 * is held, then fails once), the next standby hears no leader either, wins the next epoch and leads. When the first
 * one's catch-up is retried it reads up to the new tail — the newer leader's marker included — so its own marker's
 * expected last sequence would match. It must not lead: epoch markers in the log only go up, and the newer leader
 * keeps the shard. (Found at random by the pause-nats-server fault test; made deterministic here with in-process
 * hosts on one real nats-server and a gate in front of mini-2's real LMDB store.)
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as natsConnect, type NatsConnection } from 'nats';
import { Host, decodeEntry, type ShardStatus } from '../../actors/index.ts';
import { startNatsServer, waitForJetStream } from '../../cli/index.ts';
import { connect } from '../../client/index.ts';
import { resolveConfig } from '../../config/index.ts';
import { logStream } from '../../protocol/index.ts';
import { openShardStore, type ShardStore } from '../../shards/index.ts';

/** Holds a store's applies while closed; `failOnce` makes every held apply reject, later ones pass. */
class ApplyGate {
  private held: Promise<void> | undefined;
  private release: ((fail: boolean) => void) | undefined;

  hold(): void {
    let release!: (fail: boolean) => void;
    this.held = new Promise<boolean>((resolve) => (release = resolve)).then((fail) => {
      if (fail) throw new Error('injected: LMDB apply failed');
    });
    this.held.catch(() => undefined);
    this.release = release;
  }

  failOnce(): void {
    this.release?.(true);
    this.held = undefined;
  }

  wait(): Promise<void> {
    return this.held ?? Promise.resolve();
  }

  wrap(store: ShardStore): ShardStore {
    return new Proxy(store, {
      get: (target, prop) => {
        if (prop === 'applyBatch') {
          return async (batch: Parameters<ShardStore['applyBatch']>[0]) => {
            await this.wait();
            return target.applyBatch(batch);
          };
        }
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
  }
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every marker in the log, in log order. */
async function markers(nc: NatsConnection): Promise<{ seq: number; kind: string; epoch: number; node: string }[]> {
  const jsm = await nc.jetstreamManager({ checkAPI: false });
  const last = (await jsm.streams.info(logStream('email'))).state.last_seq;
  const out: { seq: number; kind: string; epoch: number; node: string }[] = [];
  for (let seq = 1; seq <= last; seq++) {
    const m = await jsm.streams.getMessage(logStream('email'), { seq });
    const e = decodeEntry(m.data);
    if (e?.op === 'marker') out.push({ seq, kind: e.kind, epoch: e.epoch, node: e.node });
  }
  return out;
}

test('a won epoch overtaken during catch-up is not led in: the newer leader keeps the shard', async () => {
  const server = await startNatsServer();
  const dir = mkdtempSync(join(tmpdir(), 'sm-stale-epoch-'));
  const gate = new ApplyGate();
  const logs: string[] = [];
  let hosts: Host[] = [];
  let nc: NatsConnection | undefined;
  let client: Awaited<ReturnType<typeof connect>> | undefined;
  try {
    nc = await natsConnect({ servers: server.url });
    await waitForJetStream(nc);
    const config = resolveConfig({
      dataDir: join(dir, 'data'),
      nodes: ['mini-1', 'mini-2', 'mini-3'].map((name) => ({ name, nats: [server.url] })),
      domains: [{ name: 'email', description: 'mail', seeds: ['send an email'] }],
      placement: { email: { leader: 'mini-1', standbys: ['mini-2', 'mini-3'] } },
      replication: { replicas: 1, leaseMs: 600, heartbeatMs: 100 },
    });
    hosts = ['mini-1', 'mini-2', 'mini-3'].map(
      (node) =>
        new Host({
          config,
          node,
          openStore: node === 'mini-2' ? (o) => gate.wrap(openShardStore(o)) : openShardStore,
          log: (line) => void logs.push(line),
        }),
    );
    await Promise.all(hosts.map((h) => h.start()));
    const [mini1, mini2, mini3] = hosts as [Host, Host, Host];
    const email = (h: Host): ShardStatus | undefined => h.status().shards.find((s) => s.domain === 'email');
    await until('mini-1 to lead and the standbys to follow', () =>
      email(mini1)?.state === 'leading' && email(mini2)?.state === 'following' && email(mini3)?.state === 'following',
    );

    client = await connect({ servers: server.url, agent: 'stale-epoch-test', direct: true, deadlineMs: 20_000, timeoutMs: 1_000 });
    for (let i = 0; i < 5; i++) await client.remember({ text: `note ${i}`, subject: 'ana', predicate: 'wrote', object: String(i) }, { domain: 'email' });
    await until('the standbys to apply the writes', () => email(mini2)?.appliedSeq === 6 && email(mini3)?.appliedSeq === 6);

    // mini-2's applies now hang: the next write reaches its tail and sticks there, as a cut-off server's would.
    gate.hold();
    await client.remember({ text: 'the last note before the leader dies', subject: 'ana', predicate: 'wrote', object: 'last' }, { domain: 'email' });
    await mini1.stop();
    await until('mini-2 to win epoch 2 and start catching up', () => logs.some((l) => l.includes('[mini-2 email') && l.includes('won epoch 2')));
    const newer = await until('mini-3 to win epoch 3 and lead', () => {
      const s = email(mini3);
      return s?.state === 'leading' && s.epoch === 3 ? s : undefined;
    });

    // mini-2's held catch-up fails once; its retry reads up to the new tail, mini-3's marker included.
    gate.failOnce();
    await until('mini-2 to follow, caught up', () => {
      const s = email(mini2);
      return s?.state === 'following' && s.appliedSeq >= newer.appliedSeq ? s : undefined;
    });
    const after = await client.remember({ text: 'written after the race', subject: 'ana', predicate: 'wrote', object: 'after' }, { domain: 'email' });
    await until('mini-2 to apply it', () => (email(mini2)?.appliedSeq ?? 0) >= after.seq);

    const ms = await markers(nc);
    const epochs = ms.filter((m) => m.kind === 'epoch');
    assert.equal(
      epochs.map((m) => [m.epoch, m.node]),
      [
        [1, 'mini-1'],
        [3, 'mini-3'],
      ],
      `epoch markers only go up, and mini-2 never led in its overtaken epoch 2: ${JSON.stringify(ms)}`,
    );
    assert.is(email(mini3)?.state, 'leading', 'the newer leader keeps the shard');
    assert.ok(
      logs.some((l) => l.includes('[mini-2 email') && l.includes('epoch 2 of email is stale')),
      'mini-2 says why it did not lead',
    );
  } finally {
    await client?.close().catch(() => undefined);
    gate.failOnce();
    await Promise.all(hosts.map((h) => h.stop().catch(() => undefined)));
    await nc?.close().catch(() => undefined);
    await server.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
