/**
 * A host process with a bug: it starts one Host (leading `email`) on the nats-server at argv[2], data in argv[3],
 * then throws where nothing catches — the way the write pipeline re-throws a write's reply callback's exception in a
 * microtask. For host-fatal.test.ts, which reads what this process logged before Node ended it.
 */
import { Host } from '../../actors/index.ts';
import { resolveConfig } from '../../config/index.ts';
import { openShardStore } from '../../shards/index.ts';

const [url, dataDir] = process.argv.slice(2);
if (!url || !dataDir) throw new Error('usage: host-fatal-child.ts <nats url> <data dir>');
const config = resolveConfig({
  nodes: [{ name: 'solo', nats: [url] }],
  domains: [{ name: 'email', description: 'mail', seeds: [] }],
  placement: { email: { leader: 'solo' } },
  dataDir,
  replication: { replicas: 1 },
});
const host = new Host({ config, node: 'solo', openStore: openShardStore, log: (line) => void process.stderr.write(`${line}\n`) });
await host.whenReady();
queueMicrotask(() => {
  throw new Error('a reply callback bug');
});
