/**
 * Starts real `shardmind host` child processes for tests and benchmarks: one per node of a cluster config, each
 * `node --import tsx cli/main.ts host --node <name> --config <temp config>` with a temp data dir, against NATS
 * URLs the caller started. Waits for readiness by asking each host's `sm.ctl.<node>.status` until every placed
 * shard actor is leading or following. Processes can be killed with any signal, restarted, and stopped; stderr is
 * kept for failure messages; everything is cleaned up by `stop()`.
 *
 * @example
 * const nats = await startNatsServer();
 * const hosts = await startHosts({ config: twoMiniConfig([nats.url]) });
 * try {
 *   // … requests to sm.shard.<domain>.<op> …
 *   hosts.host('mini-1').kill('SIGKILL');
 *   await hosts.host('mini-1').restart();
 * } finally {
 *   await hosts.stop();
 *   await nats.destroy();
 * }
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import type { HostStatusReply } from '../../actors/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import { natsConnectOptionsFromEnv, tether, type Tether } from '../../cli/index.ts';
import { ctlSubject, decodePayload, encodePayload } from '../../protocol/index.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const MAIN = join(ROOT, 'cli', 'main.ts');
const STDERR_KEEP = 64 * 1024;

export interface StartHostsOptions {
  /** The cluster config; `dataDir` is replaced by a temp dir the harness owns. */
  readonly config: ClusterConfigInput;
  /** Nodes to start (default: every node in the config). */
  readonly nodes?: readonly string[];
  /** How long `start` waits for every host to be ready. Default 30 s. */
  readonly readyTimeoutMs?: number;
  /** Extra environment for the host processes. */
  readonly env?: Readonly<Record<string, string>>;
  /** Extra environment for one node's host process, over `env` (e.g. a simulated older build). */
  readonly envOf?: (node: string) => Readonly<Record<string, string>> | undefined;
  /** Extra Node flags for the host processes (`['--cpu-prof', '--cpu-prof-dir=/tmp/prof']`). */
  readonly nodeArgs?: readonly string[];
  /** Echo hosts' stderr to this process's stderr (also when `SM_TEST_VERBOSE=1`). */
  readonly verbose?: boolean;
}

/** A shard as a host reports it (`sm.ctl.<node>.status`). */
export type HostShardStatus = HostStatusReply['shards'][number];

/** One host child process. */
export class HostProcess {
  private child: ChildProcess | undefined;
  /** Stops the host if this process dies without stopping it (cli/tether.ts). */
  private tie: Tether | undefined;
  private exited: Promise<number | null> = Promise.resolve(null);
  private log = '';
  /** This host's own extra environment, over the cluster's (`setEnv`). */
  private ownEnv: Readonly<Record<string, string>> = {};

  constructor(
    readonly node: string,
    private readonly cluster: HostCluster,
    private readonly env: Readonly<Record<string, string>>,
    private readonly verbose: boolean,
    private readonly nodeArgs: readonly string[] = [],
  ) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Spawns the host (no-op when running) and waits until it is ready. */
  async start(readyTimeoutMs = 30_000): Promise<void> {
    this.launch();
    await this.waitReady(readyTimeoutMs);
  }

  /** Spawns the host (no-op when running) without waiting: for a host that is not expected to become ready. */
  launch(): void {
    if (!this.running) this.spawn();
  }

  /** The extra environment of this host's next start, over the cluster's (replaces what was set before). */
  setEnv(env: Readonly<Record<string, string>>): void {
    this.ownEnv = env;
  }

  private spawn(): void {
    // A restart that fires after the cluster was stopped (a fault's "restart in 3 s" timer) would start a host
    // nobody stops, on a data dir that stop() removed.
    if (this.cluster.stopped) throw new Error(`host ${this.node}: its cluster was stopped, it cannot be started again`);
    const child = spawn(process.execPath, [...this.nodeArgs, '--import', 'tsx', MAIN, 'host', '--node', this.node, '--config', this.cluster.configPath], {
      cwd: ROOT,
      env: { ...process.env, ...this.env, ...this.ownEnv },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    // A test process SIGKILLed (the runner's timeout, kill -9) runs no exit hook: the watchdog stops its hosts.
    const tie = tether(child);
    this.tie = tie;
    child.once('exit', () => tie.release());
    const onData = (b: Buffer): void => {
      this.log = (this.log + b.toString()).slice(-STDERR_KEEP);
      if (this.verbose) process.stderr.write(`[host ${this.node}] ${b}`);
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  /**
   * Polls `sm.ctl.<node>.status` until every placed shard is leading or following. Rejects if the process exits,
   * or at the deadline, with the host's last stderr.
   */
  async waitReady(timeoutMs = 30_000): Promise<HostStatusReply> {
    const deadline = Date.now() + timeoutMs;
    let exited = false;
    void this.exited.then(() => (exited = true));
    let last: HostStatusReply | undefined;
    for (;;) {
      if (exited || !this.running) throw new Error(`host ${this.node} exited before it was ready:\n${this.stderr()}`);
      last = await this.status(500).catch(() => undefined);
      if (last && last.shards.every((s) => s.state === 'leading' || s.state === 'following')) return last;
      if (Date.now() > deadline) {
        const states = last ? last.shards.map((s) => `${s.domain}=${s.state}`).join(', ') : 'no status reply';
        throw new Error(`host ${this.node} not ready within ${timeoutMs} ms (${states}):\n${this.stderr()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** The host's `sm.ctl.<node>.status` reply. */
  async status(timeoutMs = 2_000): Promise<HostStatusReply> {
    const nc = await this.cluster.connection();
    const msg = await nc.request(ctlSubject(this.node, 'status'), encodePayload({ v: 1 }, 'msgpack'), { timeout: timeoutMs });
    return decodePayload(msg.data, 'msgpack') as HostStatusReply;
  }

  /** One shard's status on this host, or undefined when it is not placed here. */
  async shard(domain: string): Promise<HostShardStatus | undefined> {
    return (await this.status()).shards.find((s) => s.domain === domain);
  }

  /** Sends a raw signal: `SIGKILL` (crash), `SIGSTOP`/`SIGCONT` (pause), `SIGTERM` (graceful drain). */
  kill(signal: NodeJS.Signals): void {
    if (this.child && this.running) this.child.kill(signal);
  }

  /** Resolves with the exit code once the process has exited. */
  waitExit(): Promise<number | null> {
    return this.exited;
  }

  /** Stops (SIGTERM: the host drains; SIGKILL after `graceMs`). Harmless when not running. */
  async stop(graceMs = 10_000): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    child.kill('SIGCONT');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** SIGKILL now, without waiting: for an 'exit' listener, which cannot wait. */
  killNow(): void {
    if (this.running) this.child!.kill('SIGKILL');
    this.tie?.release();
  }

  /** Stops it if running (gracefully), then starts it again with the same data dir and waits until ready. */
  async restart(readyTimeoutMs = 30_000): Promise<void> {
    await this.stop();
    await this.start(readyTimeoutMs);
  }

  /** The last 64 KiB the host wrote to stdout/stderr. */
  stderr(): string {
    return this.log;
  }
}

/** The host processes of one test cluster, with the temp config file and data dir they share. */
export class HostCluster {
  readonly hosts: readonly HostProcess[];
  private nc: Promise<NatsConnection> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(
    readonly configPath: string,
    readonly dataDir: string,
    readonly dir: string,
    private readonly servers: readonly string[],
    nodes: readonly string[],
    private readonly env: Readonly<Record<string, string>>,
    verbose: boolean,
    nodeArgs: readonly string[] = [],
  ) {
    this.hosts = nodes.map((n) => new HostProcess(n, this, env, verbose, nodeArgs));
    unstopped.add(this);
  }

  /** The host of `node`; throws for a node that was not started. */
  host(node: string): HostProcess {
    const h = this.hosts.find((x) => x.node === node);
    if (!h) throw new Error(`no host ${node} in this cluster (${this.hosts.map((x) => x.node).join(', ')})`);
    return h;
  }

  /** The harness's own NATS connection (control requests); closed by `stop()`. */
  connection(): Promise<NatsConnection> {
    // On a cluster that requires a login, as the hosts log in (`env` carries SHARDMIND_NATS_USER/PASSWORD).
    this.nc ??= connect({ servers: [...this.servers], maxReconnectAttempts: -1, reconnectTimeWait: 100, ...natsConnectOptionsFromEnv(this.env) });
    return this.nc;
  }

  /** Waits until every running host is ready. */
  async waitReady(timeoutMs = 30_000): Promise<void> {
    await Promise.all(this.hosts.filter((h) => h.running).map((h) => h.waitReady(timeoutMs)));
  }

  /** Every host's stderr, labelled: for assertion messages. */
  stderr(): string {
    return this.hosts.map((h) => `--- ${h.node} ---\n${h.stderr()}`).join('\n');
  }

  /** True once `stop()` was called: no host of this cluster starts again. */
  get stopped(): boolean {
    return this.stopping !== undefined;
  }

  /**
   * Stops every host, closes the harness connection, removes the temp dir. Idempotent; a second call waits for the
   * first. No host can be started afterwards.
   */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      unstopped.delete(this);
      try {
        await Promise.all(this.hosts.map((h) => h.stop()));
        if (this.nc) {
          const nc = await this.nc.catch(() => undefined);
          this.nc = undefined;
          await nc?.close().catch(() => undefined);
        }
      } finally {
        // Retried: a host that has just exited may not have let go of its LMDB files yet.
        rmSync(this.dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
      }
    })();
    return this.stopping;
  }
}

/**
 * Clusters not stopped when this process exits (it crashed: an uncaught exception skips every `finally` and
 * `after`): their hosts are killed rather than left running with nobody to stop them, and their temp dir removed.
 */
const unstopped = new Set<HostCluster>();
process.on('exit', () => {
  for (const cluster of unstopped) {
    for (const h of cluster.hosts) h.killNow();
    try {
      rmSync(cluster.dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    } catch {
      // A host just killed may hold its files a moment longer; there is no later moment in this process.
    }
  }
});

/**
 * Writes the config to a temp file (dataDir in the same temp dir), starts the hosts and waits until all are ready.
 * On failure everything started is stopped before the error is thrown.
 */
export async function startHosts(o: StartHostsOptions): Promise<HostCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'shardmind-hosts-'));
  const dataDir = join(dir, 'data');
  const configPath = join(dir, 'cluster.config.mjs');
  writeFileSync(configPath, `export default ${JSON.stringify({ ...o.config, dataDir }, null, 2)};\n`);
  const nodes = o.nodes ?? o.config.nodes.map((n) => n.name);
  const servers = [...new Set(o.config.nodes.flatMap((n) => n.nats))];
  const verbose = o.verbose ?? process.env['SM_TEST_VERBOSE'] === '1';
  const cluster = new HostCluster(configPath, dataDir, dir, servers, nodes, o.env ?? {}, verbose, o.nodeArgs ?? []);
  for (const h of cluster.hosts) h.setEnv(o.envOf?.(h.node) ?? {});
  try {
    await Promise.all(cluster.hosts.map((h) => h.start(o.readyTimeoutMs)));
  } catch (err) {
    await cluster.stop();
    throw err;
  }
  return cluster;
}
