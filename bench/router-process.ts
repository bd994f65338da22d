/**
 * A router as its own process (`node --import tsx bench/router-process.ts <config> <node>`), for runs where the
 * host does not start one itself: loads the bench's config, connects to its NATS URL, serves `sm.mem.*`, prints
 * `ready`, and drains on SIGTERM. On a real Mini the router lives in the host process; here it costs one more
 * process on the same two cores, which the report says.
 */
import { connect } from 'nats';
import { loadConfig, nodeByName } from '../config/index.ts';
import { startRouter } from '../router/index.ts';

const [configPath, node] = process.argv.slice(2);
if (!configPath || !node) {
  process.stderr.write('usage: router-process.ts <config> <node>\n');
  process.exit(2);
}
const config = await loadConfig(configPath);
const nc = await connect({ servers: [...nodeByName(config, node).nats], name: `bench-router-${node}`, noAsyncTraces: true });
const router = await startRouter(nc, config, { node, log: (line) => process.stderr.write(`${line}\n`) });
await nc.flush();
process.stdout.write('ready\n');

const stop = async (): Promise<void> => {
  await router.stop();
  await nc.drain();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
