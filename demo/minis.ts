/**
 * Three Mac Minis on one machine, for the demo: a 3-server NATS cluster on loopback (one server per Mini) and three
 * `shardmind host` child processes, each connected to its own Mini's server, with the shipped domains, seeds and
 * placement from `cluster.config.ts` and a temp data dir. `stop()` ends everything it started and removes the temp
 * dir; it is safe to call twice and after a failed start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { startNatsCluster, tether, type NatsCluster } from '../cli/index.ts';
import type { ClusterConfigInput } from '../config/index.ts';
import { ctlSubject, decodePayload, encodePayload, memSubject } from '../protocol/index.ts';
import shipped from '../cluster.config.ts';

const ROOT = join(import.meta.dirname, '..');
const MAIN = join(ROOT, 'cli', 'main.ts');
export const MINIS = ['mini-1', 'mini-2', 'mini-3'] as const;
export type Mini = (typeof MINIS)[number];

interface StatusReply {
  readonly shards: readonly { readonly domain: string; readonly state: string; readonly staleMs?: number }[];
}

export class Minis {
  private readonly children = new Map<Mini, ChildProcess>();
  private readonly logs = new Map<Mini, string>();
  private nats: NatsCluster | undefined;
  private nc: NatsConnection | undefined;
  private stopped: Promise<void> | undefined;
  readonly dir = mkdtempSync(join(tmpdir(), 'shardmind-demo-'));
  /** Each Mini's own NATS URL. */
  readonly urls = new Map<Mini, string>();

  /** Starts NATS, then the three hosts, and waits until every shard leads or follows and a router answers. */
  async start(timeoutMs = 60_000): Promise<void> {
    this.nats = await startNatsCluster(3, { name: 'demo' });
    MINIS.forEach((m, i) => this.urls.set(m, this.nats!.servers[i]!.url));
    const configPath = join(this.dir, 'cluster.config.mjs');
    writeFileSync(configPath, `export default ${JSON.stringify(this.config(), null, 2)};\n`);
    for (const mini of MINIS) this.spawnHost(mini, configPath);
    this.nc = await connect({ servers: [...this.urls.values()], maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    const deadline = Date.now() + timeoutMs;
    for (const mini of MINIS) await this.waitReady(mini, deadline);
    await this.until('a router to answer', deadline, async () => {
      const reply = await this.nc!.request(memSubject('classify'), encodePayload({ v: 1, text: 'hello' }, 'msgpack'), {
        timeout: 1_000,
      });
      return 'domains' in (decodePayload(reply.data, 'msgpack') as object);
    });
  }

  /**
   * Stops a Mini's host the way launchd or systemd would (SIGTERM: it hands what it leads to a standby first),
   * starts it again and waits until it is ready. Resolves with how long the host took to exit.
   */
  async restart(mini: Mini, timeoutMs = 60_000): Promise<{ exitMs: number }> {
    const started = Date.now();
    await stopChild(this.children.get(mini)!);
    const exitMs = Date.now() - started;
    this.spawnHost(mini, join(this.dir, 'cluster.config.mjs'));
    await this.waitReady(mini, Date.now() + timeoutMs);
    return { exitMs };
  }

  /** Which Mini leads `domain` now, by asking every host. */
  async leaderOf(domain: string): Promise<Mini | undefined> {
    for (const mini of MINIS) {
      try {
        const reply = await this.nc!.request(ctlSubject(mini, 'status'), encodePayload({ v: 1 }, 'msgpack'), { timeout: 1_000 });
        const status = decodePayload(reply.data, 'msgpack') as StatusReply;
        if (status.shards.some((x) => x.domain === domain && x.state === 'leading')) return mini;
      } catch {
        // That Mini does not answer right now: it does not lead.
      }
    }
    return undefined;
  }

  /**
   * Waits until `mini`'s replica of `domain` has a staleness bound (a follower has none until it has heard a leased
   * heartbeat of the current leader, a few hundred ms after the leader starts) and resolves with it.
   */
  async replicaBound(mini: Mini, domain: string, timeoutMs = 10_000): Promise<number> {
    let bound: number | undefined;
    await this.until(`${mini}'s ${domain} replica to hear its leader`, Date.now() + timeoutMs, async () => {
      const reply = await this.nc!.request(ctlSubject(mini, 'status'), encodePayload({ v: 1 }, 'msgpack'), { timeout: 1_000 });
      bound = (decodePayload(reply.data, 'msgpack') as StatusReply).shards.find((x) => x.domain === domain)?.staleMs;
      return bound !== undefined;
    });
    return bound!;
  }

  /** The last output of a host, for failure messages. */
  log(mini: Mini): string {
    return this.logs.get(mini) ?? '';
  }

  stop(): Promise<void> {
    this.stopped ??= (async () => {
      await Promise.all([...this.children.values()].map((c) => stopChild(c)));
      await this.nc?.close().catch(() => {});
      await this.nats?.destroy();
      rmSync(this.dir, { recursive: true, force: true });
    })();
    return this.stopped;
  }

  private config(): ClusterConfigInput {
    const urls = MINIS.map((m) => this.urls.get(m)!);
    return {
      ...shipped,
      cluster: { name: 'demo' },
      nodes: MINIS.map((name, i) => ({ name, nats: [urls[i]!, ...urls.filter((_, j) => j !== i)] })),
      dataDir: join(this.dir, 'data'),
      replication: { replicas: 3, leaseMs: 1500, heartbeatMs: 250 },
    };
  }

  private spawnHost(mini: Mini, configPath: string): void {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'host', '--node', mini, '--config', configPath], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // The demo killed with SIGKILL never gets to stop(): the watchdog stops its hosts then (its nats-servers have theirs).
    const tie = tether(child);
    child.once('exit', () => tie.release());
    const keep = (b: Buffer): void => void this.logs.set(mini, ((this.logs.get(mini) ?? '') + b.toString()).slice(-16_384));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.children.set(mini, child);
  }

  private async waitReady(mini: Mini, deadline: number): Promise<void> {
    await this.until(`${mini} to be ready`, deadline, async () => {
      const child = this.children.get(mini)!;
      if (child.exitCode !== null) throw new Error(`${mini} exited:\n${this.log(mini)}`);
      const reply = await this.nc!.request(ctlSubject(mini, 'status'), encodePayload({ v: 1 }, 'msgpack'), { timeout: 500 });
      const status = decodePayload(reply.data, 'msgpack') as StatusReply;
      return status.shards.length > 0 && status.shards.every((s) => s.state === 'leading' || s.state === 'following');
    });
  }

  private async until(what: string, deadline: number, probe: () => Promise<boolean>): Promise<void> {
    for (;;) {
      try {
        if (await probe()) return;
      } catch (err) {
        if ((err as Error).message.includes('exited:')) throw err;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
