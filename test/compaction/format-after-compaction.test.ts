/**
 * A store the running version cannot read (another store format) is rebuilt from the log — but once the log was
 * compacted it cannot be, and the snapshots are in that format too: the host keeps the store and fails that shard
 * with a message saying why, instead of deleting what may be the only full copy on the Mini. In-process host, real
 * nats-server and LMDB; the "other format" is the store opener refusing the directory once, as an older release's
 * layout would be refused.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as natsConnect } from 'nats';
import { startNatsServer, waitForJetStream } from '../../cli/index.ts';
import { Host } from '../../actors/index.ts';
import { connect } from '../../client/index.ts';
import { resolveConfig } from '../../config/index.ts';
import { StoreFormatError, openShardStore, type ShardStoreOptions } from '../../shards/index.ts';

test('compaction - a store of another format is kept, and its shard fails saying why, once the log was compacted', async () => {
  const server = await startNatsServer();
  const dir = mkdtempSync(join(tmpdir(), 'sm-format-compacted-'));
  const nc = await natsConnect({ servers: server.url });
  const hosts: Host[] = [];
  const quiet = (): void => undefined;
  try {
    await waitForJetStream(nc);
    const config = resolveConfig({
      nodes: [{ name: 'a', nats: [server.url] }],
      domains: [{ name: 'email', description: 'mail', seeds: [] }],
      placement: { email: { leader: 'a' } },
      dataDir: dir,
      replication: { leaseMs: 600, heartbeatMs: 150 },
      compaction: { everyEntries: 0, retainEntries: 1 },
    });
    const first = new Host({ config, node: 'a', openStore: openShardStore, log: quiet });
    hosts.push(first);
    await first.whenReady();
    const client = await connect({ connection: nc, agent: 'format-test', direct: true, deadlineMs: 10_000 });
    for (let i = 0; i < 12; i++) await client.remember({ text: `note ${i}`, subject: 'user', predicate: 'noted', object: String(i) }, { domain: 'email' });
    await client.close();
    const report = await first.compact('email');
    assert.ok(report.firstSeq > 1, `the log was compacted (starts at ${report.firstSeq})`);
    await first.drain();

    // The next release reads another layout: the opener refuses the directory as it would an older one.
    const storePath = join(dir, 'a', 'email');
    let refused = 0;
    const newerRelease = (o: ShardStoreOptions) => {
      if (refused++ === 0) throw new StoreFormatError(o.path, 6, 7);
      return openShardStore(o);
    };
    const second = new Host({ config, node: 'a', openStore: newerRelease, log: quiet });
    hosts.push(second);
    await second.start();
    const deadline = Date.now() + 10_000;
    let shard = second.status().shards[0];
    while (shard?.state !== 'failed' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
      shard = second.status().shards[0];
    }
    assert.is(shard?.state, 'failed');
    assert.match(shard?.lastError ?? '', 'cannot be rebuilt from the log');
    assert.is(refused, 1, 'it did not open a fresh store in its place');
    assert.ok(existsSync(join(storePath, 'data.mdb')), 'the store is still there');
  } finally {
    for (const h of hosts) await h.drain().catch(() => undefined);
    await nc.close();
    await server.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
