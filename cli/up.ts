/**
 * `shardmind up [--port N] [--data DIR] [--config FILE]`: the embedded single-machine cluster. Starts nats-server
 * with JetStream in the data dir and one host, in this process, that leads every domain of the config; prints where
 * to connect and a JSON example; on Ctrl-C drains the host (in-flight writes finish, LMDB closes) and stops
 * nats-server.
 *
 * The host runs in-process rather than as a child: one process to signal, one log, and nothing left behind if it
 * is killed. The nats-server is the one child: `up` stops it, and if `up` is killed without stopping it (SIGKILL
 * runs no exit hook) its watchdog does (cli/tether.ts).
 */
import { resolve, join } from 'node:path';
import { createServer } from 'node:net';
import { Host } from '../actors/index.ts';
import { existsSync } from 'node:fs';
import { configWarnings, DEFAULT_CONFIG_PATH, DEFAULT_DATA_DIR, loadConfig, singleNodeConfig } from '../config/index.ts';
import { openShardStore } from '../shards/index.ts';
import { intFlag, parseFlags } from './args.ts';
import type { Command } from './command.ts';
import { DataDirLockedError, lockDataDir, type DataLock } from './data-lock.ts';
import { exitAfterDrain, runUntilSignal } from './lifecycle.ts';
import { HOST_SERVICES } from './services.ts';
import { findNatsServer, natsServerInstallHint, startNatsServer } from './nats-server.ts';

export const DEFAULT_UP_PORT = 4222;
/** The config shipped with shardmind (calendar, email, files), for `up` run outside a project. */
export const SHIPPED_CONFIG = join(import.meta.dirname, '..', 'cluster.config.ts');
/** The node name `up` runs as: its LMDB files go under `<data>/local/<domain>`. */
export const UP_NODE = 'local';

const USAGE = `usage: shardmind up [--port N] [--data DIR] [--config FILE]

Runs nats-server (JetStream) and every shard of the config on this machine.
  --port N        NATS client port (default ${DEFAULT_UP_PORT})
  --data DIR      where nats-server and LMDB keep their files (default: the config's dataDir)
  --config FILE   the cluster config (default ${DEFAULT_CONFIG_PATH}, else the shipped one)`;

export const upCommand: Command = {
  summary: 'run nats-server and every shard on this machine (the embedded default)',
  usage: USAGE,
  async run(args) {
    const { values } = parseFlags(args, {
      port: { type: 'string' },
      data: { type: 'string' },
      config: { type: 'string' },
    });
    const port = intFlag('port', values.port, DEFAULT_UP_PORT);
    const log = (line: string): void => void process.stderr.write(`${line}\n`);
    if (!findNatsServer()) {
      log(`shardmind up needs nats-server on PATH. Install it with:\n\n  ${natsServerInstallHint()}\n`);
      return 1;
    }
    if (!(await portIsFree(port))) {
      log(`port ${port} is already in use (another nats-server or shardmind up?). Pick another: shardmind up --port ${port + 1}`);
      return 1;
    }
    // Run from anywhere: without a ./cluster.config.ts, the shipped one is used, with data in ./.shardmind.
    const shipped = !values.config && !existsSync(DEFAULT_CONFIG_PATH);
    const config = await loadConfig(values.config ?? (shipped ? SHIPPED_CONFIG : DEFAULT_CONFIG_PATH));
    if (shipped) log(`no ${DEFAULT_CONFIG_PATH} here: using the shipped config (${SHIPPED_CONFIG})`);
    const dataDir = resolve(values.data ?? (shipped ? DEFAULT_DATA_DIR : config.dataDir));
    // Before anything in it is opened: a second `up` on the same data would run a second nats-server on the same
    // JetStream store and a second leader of every domain (cli/data-lock.ts).
    let lock: DataLock;
    try {
      lock = lockDataDir(dataDir, 'shardmind up');
    } catch (err) {
      if (!(err instanceof DataDirLockedError)) throw err;
      log(`shardmind up: ${err.message}`);
      return 1;
    }
    const server = await startNatsServer({ name: 'shardmind', port, storeDir: join(dataDir, 'nats') });
    const embedded = singleNodeConfig({ ...config, dataDir }, UP_NODE, server.url);
    // What `up` runs (one node, no standbys): only the warnings that still apply to it (config/warnings.ts).
    for (const line of configWarnings(embedded)) log(`WARNING: ${line}`);
    const host = new Host({ config: embedded, node: UP_NODE, openStore: openShardStore, services: HOST_SERVICES, log });
    const shutdown = async (): Promise<void> => {
      await host.drain();
      await server.stop();
      lock.release();
      log('shardmind stopped; data kept in ' + dataDir);
    };
    const stopped = runUntilSignal(shutdown, log);
    try {
      await host.start();
      await host.whenReady();
    } catch (err) {
      log(`shardmind up could not start: ${(err as Error).message}`);
      await shutdown();
      exitAfterDrain(1, log);
      return 1;
    }
    process.stdout.write(banner(server.url, embedded.domains.map((d) => d.name), dataDir));
    await stopped;
    exitAfterDrain(0, log);
    return 0;
  },
};

function banner(url: string, domains: readonly string[], dataDir: string): string {
  const d = domains.includes('email') ? 'email' : (domains[0] ?? 'email');
  const remember = JSON.stringify({
    v: 1,
    agent: 'me',
    fact: { text: 'The user prefers PDF attachments over links', subject: 'user', predicate: 'prefers_attachment_format', object: 'pdf' },
  });
  const recall = JSON.stringify({ v: 1, query: 'attachment or link?' });
  return `
shardmind is up.
  NATS:     ${url}
  domains:  ${domains.join(', ')}
  subjects: sm.mem.<op> (the router classifies: remember, recall, classify, task.*)
            sm.shard.<domain>.<op> (one shard: remember, recall, get, history, forget, retract)
  data:     ${dataDir}

Try it from this checkout:
  npx shardmind remember --servers ${url} "The user prefers PDF attachments over links"
  npx shardmind recall --servers ${url} "attachment or link?"

Or with the nats CLI (JSON in, JSON out):
  nats -s ${url} req sm.mem.remember -H 'content-type:application/json' '${remember}'
  nats -s ${url} req sm.mem.recall -H 'content-type:application/json' '${recall}'
  nats -s ${url} req sm.shard.${d}.recall -H 'content-type:application/json' '${recall}'

Ctrl-C drains and stops.
`;
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const srv = createServer();
    srv.once('error', () => resolvePort(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolvePort(true)));
  });
}
