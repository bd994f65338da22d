/**
 * A shard whose LMDB directory was written by another version in another layout is not misread and does not keep
 * the host down: the actor wipes it and replays the shard's log, so an upgrade needs no manual step.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from 'lmdb';
import { Host } from '../../actors/index.ts';
import { startNatsServer } from '../../cli/index.ts';
import { connect } from '../../client/index.ts';
import { resolveConfig, type ClusterConfig } from '../../config/index.ts';
import { openShardStore } from '../../shards/index.ts';

async function until<T>(what: string, probe: () => T | undefined, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function leading(config: ClusterConfig, logs: string[]): Promise<Host> {
  const host = new Host({ config, node: 'mini-1', openStore: openShardStore, log: (line) => void logs.push(line) });
  await host.start();
  await until('email to lead', () => host.status().shards.find((s) => s.domain === 'email' && s.state === 'leading'));
  return host;
}

test('an LMDB directory of another store format is rebuilt from the log at open', async () => {
  const server = await startNatsServer();
  const dir = mkdtempSync(join(tmpdir(), 'sm-store-format-'));
  const logs: string[] = [];
  let host: Host | undefined;
  try {
    const config = resolveConfig({
      dataDir: join(dir, 'data'),
      nodes: [{ name: 'mini-1', nats: [server.url] }],
      domains: [{ name: 'email', description: 'mail', seeds: ['send an email'] }],
      placement: { email: { leader: 'mini-1' } },
      replication: { replicas: 1 },
    });
    host = await leading(config, logs);
    const client = await connect({ servers: server.url, agent: 'format-test', direct: true });
    for (const text of ['ana prefers pdf attachments', 'ana reads email at 9', 'bo sends links']) {
      await client.remember({ text }, { domain: 'email' });
    }
    await client.close();
    await host.stop();
    host = undefined;

    // Leave the directory as a format-1 store would be (format 1 wrote no format marker).
    const env = open({ path: join(config.dataDir, 'mini-1', 'email'), maxDbs: 16 });
    await env.openDB('meta', { encoding: 'binary' }).remove('format');
    await env.close();

    host = await leading(config, logs);
    assert.ok(logs.some((l) => l.includes('rebuilding this replica from the log') && l.includes('store format 1')), logs.join('\n'));
    const shard = host.status().shards.find((s) => s.domain === 'email')!;
    assert.ok(shard.appliedSeq >= 5, `replayed the log (3 writes, 2 epoch markers): at ${shard.appliedSeq}`);
    const reader = await connect({ servers: server.url, agent: 'format-test', direct: true });
    const r = await reader.recall({ query: 'pdf attachments', domain: 'email' });
    await reader.close();
    assert.ok(r.facts.some((f) => f.text === 'ana prefers pdf attachments'), JSON.stringify(r.facts));
  } finally {
    await host?.stop().catch(() => undefined);
    await server.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
