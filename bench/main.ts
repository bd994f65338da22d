/**
 * `npm run bench [-- --quick] [--only floor,shardmind,redis,server-memory] [--profile] [--out DIR]`: the floor,
 * shardmind and its peers measured in one run on this machine, every figure also given as a ratio to a floor
 * measured in the same run. Writes `bench/results/latest.json`, `latest.md` and the SVG charts, and prints the
 * table. `--profile` runs the shardmind host under `--cpu-prof` and prints where its CPU time went.
 */
import { join } from 'node:path';
import { connect } from 'nats';
import { startNatsServer, waitForJetStream } from '../cli/index.ts';
import { Cleanup } from './cleanup.ts';
import { FULL, QUICK, type BenchContext } from './context.ts';
import { measureFloor, startFloorProbes } from './floor.ts';
import { startBenchHost, startRouterProcess, waitForRouter } from './host.ts';
import { machineInfo } from './machine.ts';
import { startRedisTarget } from './peers/redis.ts';
import { measureServerMemoryLostWrites, measureServerMemoryWrites, serverMemoryVersion } from './peers/server-memory.ts';
import { measureTarget, type PairedBaselines } from './plan.ts';
import { summarizeProfiles } from './profile.ts';
import { markdownTable, writeResults, type BenchResults } from './report.ts';
import { measureShardmindLostWrites, retries, shardmindTarget } from './shardmind.ts';

const SECTIONS = ['floor', 'shardmind', 'redis', 'server-memory'] as const;
type Section = (typeof SECTIONS)[number];
const RESULTS_DIR = join(import.meta.dirname, 'results');

interface Args {
  readonly quick: boolean;
  /** Where results go; `bench/results` unless `--out DIR`. */
  readonly out: string;
  readonly profile: boolean;
  readonly only: ReadonlySet<Section>;
}

function parseArgs(argv: readonly string[]): Args {
  const onlyAt = argv.findIndex((a) => a === '--only' || a.startsWith('--only='));
  const onlyValue = onlyAt < 0 ? undefined : argv[onlyAt]!.includes('=') ? argv[onlyAt]!.split('=')[1] : argv[onlyAt + 1];
  const only = new Set<Section>(onlyValue ? (onlyValue.split(',') as Section[]) : SECTIONS);
  for (const s of only) if (!SECTIONS.includes(s)) throw new Error(`--only: unknown section "${s}" (one of ${SECTIONS.join(', ')})`);
  const outAt = argv.indexOf('--out');
  const out = outAt >= 0 && argv[outAt + 1] ? argv[outAt + 1]! : RESULTS_DIR;
  return { quick: argv.includes('--quick'), profile: argv.includes('--profile'), only, out };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const cleanup = new Cleanup();
  const onSignal = (): void => void cleanup.run().then(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const notes: string[] = [];
  const machine = machineInfo(serverMemoryVersion());
  let results: Partial<BenchResults> = {};
  try {
    const nats = await startNatsServer({ name: 'bench' });
    cleanup.add('stop nats-server', () => nats.destroy());
    // No async stack trace per request: the load generator should spend its CPU on requests, as the host does.
    const nc = await connect({ servers: nats.url, noEcho: true, noAsyncTraces: true });
    cleanup.add('close NATS connection', () => nc.close());
    await waitForJetStream(nc);
    const ctx: BenchContext = {
      natsUrl: nats.url,
      natsPid: nats.pid!,
      nc,
      cleanup,
      budgets: args.quick ? QUICK : FULL,
      quick: args.quick,
      log: (line) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${line}\n`),
    };
    ctx.log(`bench ${args.quick ? 'quick' : 'full'}: ${[...args.only].join(', ')} on ${machine.cpu} × ${machine.cores}, load ${machine.loadAvg1m}`);

    const probes = await startFloorProbes(ctx);
    const baselines: PairedBaselines = { recall: [probes.echo], remember: [probes.echo, probes.jsPublish, probes.fdatasync] };
    if (args.only.has('floor')) results = { ...results, floor: await measureFloor(ctx, probes) };

    if (args.only.has('shardmind')) {
      const profDir = args.profile ? cleanup.tempDir('cpuprof') : undefined;
      try {
        const host = await startBenchHost(ctx, profDir ? { cpuProfDir: profDir } : {});
        let router = await waitForRouter(nc);
        let routerPid: number | undefined;
        if (!router) {
          try {
            routerPid = await startRouterProcess(ctx, host);
            router = await waitForRouter(nc, 10_000);
            if (router) notes.push('The host did not serve sm.mem.* in this run: the bench ran a router (`startRouter`) in its own process, one more process on the same cores.');
          } catch (err) {
            ctx.log(`router could not start: ${String(err).split('\n')[0]}`);
          }
        }
        if (!router) notes.push('The router (sm.mem.*) did not answer in this run: shardmind figures are straight to the shard only.');
        const target = shardmindTarget(nc, {
          router,
          processes: () => ({ host: host.pid, 'nats-server': nats.pid!, ...(routerPid ? { router: routerPid } : {}) }),
        });
        const figures = await measureTarget(ctx, target, { baselines });
        results = { ...results, shardmind: figures.sizes };
        if (figures.error) notes.push(`shardmind stopped before its last store size: ${figures.error}`);
        try {
          results = { ...results, shardmindLostWrites: await measureShardmindLostWrites(ctx, () => host.restart()) };
        } catch (err) {
          // A host that does not come back after a restart is a finding, not a reason to drop the figures above.
          const why = firstAndLast(err);
          ctx.log(`shardmind lost-writes check failed: ${why}`);
          notes.push(`The shardmind lost-writes check failed (acknowledged writes could not be read back): ${why}`);
        }
        await host.stop();
        if (Object.keys(retries).length) {
          ctx.log(`shardmind retried ${JSON.stringify(retries)}; the host's last log lines:\n  ${host.logTail(25).join('\n  ')}`);
          notes.push(`shardmind requests retried on retryable errors (as a client would; the retry is inside the latency): ${JSON.stringify(retries)}.`);
        }
        if (profDir) notes.push(...summarizeProfiles(profDir, 12).map((l) => `host profile: ${l}`));
      } catch (err) {
        const why = firstAndLast(err);
        ctx.log(`shardmind not measured: ${why}`);
        results = { ...results, shardmindSkipped: why };
        notes.push(`shardmind was not measured in this run: ${why}`);
      }
    }

    if (args.only.has('redis')) {
      const redis = await startRedisTarget(ctx);
      const figures = await measureTarget(ctx, redis, { baselines });
      results = { ...results, redis: figures.sizes };
      if (figures.error) notes.push(`Redis stopped before its last store size: ${figures.error}`);
      await redis.close();
    }

    if (args.only.has('server-memory')) {
      const writes = await measureServerMemoryWrites(ctx);
      const lostWrites = await measureServerMemoryLostWrites(ctx);
      results = { ...results, serverMemory: { writes, lostWrites } };
    }
  } finally {
    await cleanup.run();
  }
  const final: BenchResults = {
    ...results,
    when: new Date(started).toISOString(),
    mode: args.quick ? 'quick' : 'full',
    durationS: (Date.now() - started) / 1000,
    machine,
    notes: [
      'Every system runs on this one machine, sharing its cores with the bench process and nats-server.',
      'Floor echo: the responder is a separate Node process on the same nats-server, as a shard is; 200-byte payloads.',
      'Redis: appendonly yes, appendfsync always (every acknowledged write is fsynced), one pipelined connection, MULTI/EXEC per remember; preloading is not measured and runs with appendfsync no.',
      'nats-server 2.9 acknowledges JetStream publishes before fsync (it syncs every ~2 min); shardmind fsyncs its LMDB commit.',
      'p50 ÷ floor: each sequential loop runs the floor\'s operations interleaved with its own (echo after each recall; echo, JetStream publish and fdatasync after each remember), and divides by the floor measured in those same seconds, so load that comes and goes during the run moves both. The floor rows above are the standalone figures.',
      'CPU µs per op: user+system CPU each process spent during the ×64 run divided by the operations completed (/proc/<pid>/stat; "bench" is the load generator itself). It does not drift with other load the way latency does, and 1e6 ÷ it is the most that process can serve on one core.',
      ...notes,
    ],
  };
  const out = writeResults(args.out, final);
  process.stdout.write(markdownTable(final));
  process.stderr.write(`wrote ${out.json}, ${out.md}${out.charts.map((c) => `, ${c}`).join('')}\n`);
}

/** An error's first and last lines: what failed, and the child's last word on it. */
function firstAndLast(err: unknown): string {
  const lines = (err instanceof Error ? err.message : String(err)).split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.length > 1 ? `${lines[0]} … ${lines[lines.length - 1]}` : (lines[0] ?? 'unknown error');
}

/** True when something answers on `subject` within a second (a 503 "no responders" or a timeout is false). */
main().catch((err) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
