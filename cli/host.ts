/**
 * `shardmind host --node NAME [--config FILE]`: runs one Mini of a real cluster — the shard actors
 * `cluster.config.ts` places on NAME, connected to that node's NATS URLs — until SIGINT/SIGTERM, then drains.
 */
import { join } from 'node:path';
import { Host } from '../actors/index.ts';
import { configWarnings, DEFAULT_CONFIG_PATH, loadConfig, nodeByName, placementsOf } from '../config/index.ts';
import { openShardStore } from '../shards/index.ts';
import { parseFlags, UsageError } from './args.ts';
import type { Command } from './command.ts';
import { DataDirLockedError, lockDataDir } from './data-lock.ts';
import { exitAfterDrain, finishesWithin, runUntilSignal } from './lifecycle.ts';
import { formatLogLine, logFormatFlag } from './log-line.ts';
import { natsCredentialsFromEnv } from './nats-auth.ts';
import { natsTlsFromEnv } from './nats-tls.ts';
import { HOST_SERVICES } from './services.ts';

const USAGE = `usage: shardmind host --node NAME [--config FILE] [--log-format text|json]

Runs the shard actors cluster.config.ts places on node NAME (leaders and standbys).
  --node NAME          this Mini's name in the config (required)
  --config FILE        the cluster config (default ${DEFAULT_CONFIG_PATH})
  --log-format FORMAT  text (default): "2026-11-25T04:53:36.338Z INFO  [mini-1 email following] …" on stderr;
                       json: one object a line, {"ts","level","node","domain","state","msg"}`;

/**
 * How long a host's drain may run after SIGTERM before the host exits without it (code 1), under systemd's
 * `TimeoutStopSec=30` and launchd's `ExitTimeOut 30`, so the log says what had not stopped instead of ending in SIGKILL.
 */
export const DRAIN_BOUND_MS = 20_000;

export const hostCommand: Command = {
  summary: 'run one Mini of a cluster: the shards placed on --node',
  usage: USAGE,
  async run(args) {
    const { values } = parseFlags(args, { node: { type: 'string' }, config: { type: 'string' }, 'log-format': { type: 'string' } });
    if (!values.node) throw new UsageError('--node is required');
    const format = logFormatFlag(values['log-format']);
    const config = await loadConfig(values.config ?? DEFAULT_CONFIG_PATH);
    const node = values.node;
    nodeByName(config, node);
    const log = (line: string): void => void process.stderr.write(`${formatLogLine(line, node, format)}\n`);
    // One host per node's data: a second one would be a second leader of the same stores (cli/data-lock.ts).
    let lock;
    try {
      lock = lockDataDir(join(config.dataDir, values.node), `shardmind host --node ${values.node}`);
    } catch (err) {
      if (!(err instanceof DataDirLockedError)) throw err;
      log(`[${values.node}] could not start: ${err.message}`);
      return 1;
    }
    const credentials = natsCredentialsFromEnv();
    const tls = natsTlsFromEnv()?.tls;
    const host = new Host({
      config,
      node: values.node,
      openStore: openShardStore,
      services: HOST_SERVICES,
      log,
      ...(credentials ? { credentials } : {}),
      ...(tls ? { tls } : {}),
    });
    const placed = placementsOf(config, values.node);
    // Loud, before anything else is logged: a config that runs but cannot do what it seems to (config/warnings.ts).
    for (const line of configWarnings(config)) log(`[${values.node}] WARNING: ${line}`);
    log(`[${values.node}] starting ${placed.map((p) => `${p.domain.name} (${p.role})`).join(', ') || 'no shards'}; data in ${config.dataDir}`);
    let drainedInTime = true;
    const stopped = runUntilSignal(async () => {
      drainedInTime = await finishesWithin(host.drain(), DRAIN_BOUND_MS);
      if (drainedInTime) return;
      const unfinished = host.status().shards.filter((s) => s.state !== 'stopped').map((s) => `${s.domain} ${s.state}`);
      log(`[${node}] ERROR: the drain did not finish within ${DRAIN_BOUND_MS} ms (not stopped: ${unfinished.join(', ') || 'no shard; NATS or a service'}): exiting without it`);
    }, log);
    try {
      await host.start();
    } catch (err) {
      log(`[${values.node}] could not start: ${(err as Error).message}`);
      await host.drain();
      lock.release();
      exitAfterDrain(1, log);
      return 1;
    }
    await stopped;
    // A drain cut short may still hold LMDB: the lock goes with the process, not before.
    if (!drainedInTime) {
      exitAfterDrain(1, log);
      return 1;
    }
    lock.release();
    exitAfterDrain(0, log);
    return 0;
  },
};
