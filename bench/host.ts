/**
 * One shardmind host as its own process, the way a Mini runs it (`cli/main.ts host`): a single-node config with
 * one domain (`bench`, replicas 1) written to the bench's temp dir, pointed at the bench's nats-server. Ready once
 * `sm.ctl.<node>.status` says the shard leads. `restart()` stops it gracefully (drain) and starts it on the same
 * data dir, so the shard reopens its LMDB and replays its stream. With `cpuProfDir`, node writes a `.cpuprofile`
 * there when the host exits.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { NatsConnection } from 'nats';
import { ctlSubject, decodePayload, encodePayload, memSubject } from '../protocol/index.ts';
import { stopChild, waitForLine } from './cleanup.ts';
import type { BenchContext } from './context.ts';
import { BENCH_DOMAIN } from './shardmind.ts';

export const BENCH_NODE = 'bench-1';
const READY_TIMEOUT_MS = 60_000;

export interface BenchHost {
  /** The host process's pid (changes on restart). */
  readonly pid: number;
  readonly dataDir: string;
  readonly configPath: string;
  /** The host's last log lines (stderr), across restarts. */
  logTail(lines: number): string[];
  /** Stops (draining) and starts again on the same data; `cpuProfDir` profiles the new process from its start. */
  restart(o?: { readonly cpuProfDir?: string }): Promise<void>;
  stop(): Promise<void>;
}

interface StatusBody {
  readonly shards?: readonly { readonly domain: string; readonly role: string; readonly state: string }[];
}

export function benchConfig(natsUrl: string, dataDir: string): Record<string, unknown> {
  return {
    cluster: { name: 'bench' },
    nodes: [{ name: BENCH_NODE, nats: [natsUrl] }],
    domains: [
      {
        name: BENCH_DOMAIN,
        description: 'Synthetic facts for the benchmark.',
        seeds: ['remember a synthetic benchmark fact', 'recall synthetic benchmark facts by their words'],
      },
    ],
    placement: { [BENCH_DOMAIN]: { leader: BENCH_NODE } },
    dataDir,
    replication: { replicas: 1 },
    // A snapshot taken in the background (seconds of leader CPU and a file upload at 1M facts) would land in
    // whichever measurement follows the preload: the bench measures requests, not compaction.
    compaction: false,
  };
}

export async function startBenchHost(ctx: BenchContext, o: { readonly cpuProfDir?: string } = {}): Promise<BenchHost> {
  const dir = ctx.cleanup.tempDir('host');
  const dataDir = join(dir, 'data');
  const configPath = join(dir, 'bench.config.mjs');
  writeFileSync(configPath, `export default ${JSON.stringify(benchConfig(ctx.natsUrl, dataDir), null, 2)};\n`);
  const mainTs = join(import.meta.dirname, '..', 'cli', 'main.ts');
  let child: ChildProcess | undefined;
  let stderr = '';

  let profDir = o.cpuProfDir;
  const start = async (): Promise<void> => {
    // SM_CPU_PROF_INTERVAL (µs, default 1000): finer sampling for sequential loops, whose requests are ~1 ms apart.
    const interval = process.env['SM_CPU_PROF_INTERVAL'];
    const prof = profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir, ...(interval ? ['--cpu-prof-interval', interval] : [])] : [];
    child = ctx.cleanup.spawn(process.execPath, [...prof, '--import', 'tsx', mainTs, 'host', '--node', BENCH_NODE, '--config', configPath], {}, 15_000);
    child.stdout?.resume();
    child.stderr?.on('data', (b: Buffer) => void (stderr = (stderr + b.toString()).slice(-32_768)));
    await waitLeading(ctx.nc, child, () => stderr);
  };
  await start();
  ctx.log(`shardmind host ${BENCH_NODE} leads ${BENCH_DOMAIN} (pid ${child?.pid})`);
  return {
    get pid() {
      return child?.pid ?? 0;
    },
    dataDir,
    configPath,
    logTail: (lines) => stderr.trimEnd().split('\n').slice(-lines),
    restart: async (r = {}) => {
      if (child) await stopChild(child, 15_000);
      if (r.cpuProfDir) profDir = r.cpuProfDir;
      await start();
    },
    stop: async () => {
      if (child) await stopChild(child, 15_000);
    },
  };
}

/** Polls the host's status subject until the bench shard leads; fails fast if the host exits. */
async function waitLeading(nc: NatsConnection, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no status reply yet';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`shardmind host exited (${child.exitCode ?? child.signalCode}) before leading:\n${stderr().slice(-3000)}`);
    }
    try {
      const msg = await nc.request(ctlSubject(BENCH_NODE, 'status'), encodePayload({ v: 1 }, 'msgpack'), { timeout: 1_000 });
      const body = decodePayload(msg.data, 'msgpack') as StatusBody;
      const shard = body.shards?.find((s) => s.domain === BENCH_DOMAIN);
      if (shard?.role === 'leader' && shard.state === 'leading') return;
      last = JSON.stringify(shard ?? body);
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`shardmind host did not lead ${BENCH_DOMAIN} within ${READY_TIMEOUT_MS} ms (last status: ${last}):\n${stderr().slice(-3000)}`);
}

/**
 * Whether a router answers `sm.mem.*`, waiting up to `timeoutMs` for one: the host starts its router in the
 * background after its shards lead, so a single probe right after `startBenchHost` can come too early (a run then
 * measured a separate router process beside the host's, the two splitting the queue group's requests).
 */
export async function waitForRouter(nc: NatsConnection, timeoutMs = 30_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      await nc.request(memSubject('recall'), encodePayload({ v: 1, query: 'probe', limit: 1 }, 'msgpack'), { timeout: 2_000 });
      return true;
    } catch {
      // No responders yet (or a timeout): ask again shortly.
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** Starts `router-process.ts` on the bench config: for runs where the host does not serve `sm.mem.*` itself. */
export async function startRouterProcess(ctx: BenchContext, host: BenchHost, o: { readonly cpuProfDir?: string } = {}): Promise<number> {
  const script = join(import.meta.dirname, 'router-process.ts');
  const prof = o.cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', o.cpuProfDir] : [];
  const child = ctx.cleanup.spawn(process.execPath, [...prof, '--import', 'tsx', script, host.configPath, BENCH_NODE], {}, 10_000);
  await waitForLine(child, /^ready$/, 30_000);
  child.stdout?.resume();
  child.stderr?.resume();
  ctx.log(`router process started (pid ${child.pid}): the host does not run one itself`);
  return child.pid!;
}
