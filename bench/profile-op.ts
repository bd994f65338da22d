/**
 * `node --import tsx bench/profile-op.ts <op> [facts] [seconds] [inFlight]`: where one shardmind operation spends
 * its CPU. Starts a nats-server, a host (and a router process for `*_router` ops) under `--cpu-prof`, preloads
 * `facts` facts (default 10000), restarts the host so its profile starts after the preload, runs `op`
 * (recall_direct, recall_sdk, remember_direct, remember_sdk, recall_router, remember_router) with `inFlight` (default 64) in
 * flight for `SM_PROFILE_WARMUP_S` seconds unmeasured (default 2: the restarted host compiles its hot paths meanwhile)
 * and then for `seconds` (default 8), then prints throughput, CPU µs per operation by process, and each profiled
 * process's hottest functions by self time. `SM_PROFILE=0` runs the same loop without `--cpu-prof` (the profiler
 * itself costs the host CPU per op) and prints only the throughput and CPU figures. `SM_PROFILE_BENCH=1` also profiles
 * the load generator (this process) over the measured loop, through the inspector (which costs it CPU too).
 *
 * For a remember with `inFlight` above 1 it also prints the host's wall time per cycle of `inFlight` writes by stage
 * (`cyclePhases`): its busy stages, and its idle time by the stage it last ran (idle after the group's append and
 * prepare is the JetStream ack's wait; after the store's apply, the commit and its fsync; after the replies, the load
 * generator's turn) — with every writer in one cohort (decisions §39, §79) that is the serial cycle's make-up.
 *
 * `inFlight` 1 is the sequential loop the latency targets use, paired as the bench pairs it (`measureSequential`):
 * after each op the floor's operations for that kind run once (echo; for a remember also a JetStream publish-ack
 * and a 200-byte append + fdatasync), and the p50 of each is printed beside the op's, from the same seconds.
 *
 * `SM_PROFILE_AGAINST=<another checkout>` with `inFlight` 1 and a direct op compares two builds in one run: that
 * checkout's bench host runs beside this one's (its own nats-server, the same preload, unprofiled like this one) and
 * the two builds' ops alternate pair by pair, which one goes first alternating too, each pair followed by the floor's
 * parts on one build's nats-server and then the other's. It prints both p50s, the median of the paired differences
 * and both hosts' CPU per op. On this shared 2-core box a whole-run A/B of the sequential ratio moves 1.5–1.9× from
 * run to run of one build (decisions §87); paired requests meet the same moment's load. Still, one build against
 * itself gave a paired median of −0.5 µs at load 8 and −68 µs at load 24: repeat with the checkouts swapped, and
 * read a difference smaller than that spread as none.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { connect } from 'nats';
import { startNatsServer, waitForJetStream } from '../cli/index.ts';
import { Cleanup } from './cleanup.ts';
import { QUICK, type BenchContext } from './context.ts';
import { cpuText, withCpu } from './cpu.ts';
import { startBenchHost, startRouterProcess, waitForRouter } from './host.ts';
import { inclusiveTimes, monotonicUs, summarizeByModule, summarizeProfiles } from './profile.ts';
import { shardmindTarget } from './shardmind.ts';
import { startFloorProbes, type FloorProbes } from './floor.ts';
import { LatencyRecorder, measureConcurrent, type LatencySummary } from './stats.ts';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string };
  readonly children?: readonly number[];
}

/** The write path's stages, by a function on the sample's stack (the first rule that matches). */
const STAGES: readonly (readonly [string, readonly string[]])[] = [
  ['store apply in the LMDB transaction', ['executeTxnCallbacks']],
  ['change feed', ['publishChanges']],
  ['replies (results to writers, packed and published)', ['applyRuns', 'settle']],
  ['JetStream ack', ['onReply']],
  ['prepare (decode and hash the appended message)', ['prepare']],
  ['requests (parse, validate, encode, queue, group append)', ['answer', 'processMsg', 'flushQueued']],
  ['socket writes', ['flushPending']],
];

const [opName = 'recall_direct', factsArg = '10000', secondsArg = '8', inFlightArg = '64'] = process.argv.slice(2);
const inFlight = Math.max(1, Number(inFlightArg));
const facts = Number(factsArg);
/** Functions whose inclusive time is printed: the stages of a request on the host and in the router. */
const INCLUSIVE = (process.env['SM_PROFILE_FUNCTIONS'] ?? 'processMsg,answer,handleNow,handleBody,decodePayload,recall,packRecallReply,respond,encodePayload,submit,prepare,executeTxnCallbacks,applyRuns,publishChanges,flushPending,forward,ask')
  .split(',')
  .filter(Boolean);
const seconds = Number(secondsArg);
const against = process.env['SM_PROFILE_AGAINST'];
if (against !== undefined && (inFlight !== 1 || opName.endsWith('_router'))) throw new Error('SM_PROFILE_AGAINST compares a direct op with inFlight 1');
const profiling = process.env['SM_PROFILE'] !== '0' && against === undefined;
const profilingBench = process.env['SM_PROFILE_BENCH'] === '1';
const cleanup = new Cleanup();
const profDirs: string[] = [];
const removeProfiles = (): void => {
  for (const d of profDirs) rmSync(d, { recursive: true, force: true });
};
process.once('SIGINT', () => void cleanup.run().then(() => (removeProfiles(), process.exit(130))));
try {
  const nats = await startNatsServer({ name: 'profile' });
  cleanup.add('stop nats-server', () => nats.destroy());
  const nc = await connect({ servers: nats.url, noEcho: true, noAsyncTraces: true });
  cleanup.add('close connection', () => nc.close());
  await waitForJetStream(nc);
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const ctx: BenchContext = { natsUrl: nats.url, natsPid: nats.pid!, nc, cleanup, budgets: QUICK, quick: true, log };
  // Not in the cleanup: the profiles are written when the processes exit, and read after that.
  const hostProf = mkdtempSync(join(tmpdir(), 'shardmind-prof-host-'));
  const routerProf = mkdtempSync(join(tmpdir(), 'shardmind-prof-router-'));
  const benchProf = mkdtempSync(join(tmpdir(), 'shardmind-prof-bench-'));
  profDirs.push(hostProf, routerProf, benchProf);
  const host = await startBenchHost(ctx);
  // The host serves sm.mem.* itself when it runs a router; only otherwise is one started beside it.
  const hostRoutes = await waitForRouter(nc);
  const routerPid =
    opName.endsWith('_router') && !hostRoutes ? await startRouterProcess(ctx, host, profiling ? { cpuProfDir: routerProf } : {}) : undefined;
  const probes = inFlight === 1 ? await startFloorProbes(ctx) : undefined;
  const target = shardmindTarget(nc, {
    router: hostRoutes || routerPid !== undefined,
    processes: () => ({ host: host.pid, 'nats-server': nats.pid!, ...(routerPid ? { router: routerPid } : {}) }),
  });
  const op = target.ops.find((o) => o.name === opName);
  if (!op) throw new Error(`unknown op ${opName}: one of ${target.ops.map((o) => o.name).join(', ')}`);
  await target.preload(0, facts);
  await host.restart(profiling ? { cpuProfDir: hostProf } : {}); // measure (and profile) the loop, not the preload
  let i = op.kind === 'remember' ? 300_000_000 : 0;
  const session = profilingBench ? new Session() : undefined;
  if (session) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  // The host was just restarted: its first seconds compile the request path (V8's compiler threads were a quarter of
  // its samples 6–10 s in, §79). Run unmeasured first, as the bench's ×64 runs after its ×1 and ×16 loops.
  const warmMs = probes ? 0 : Number(process.env['SM_PROFILE_WARMUP_S'] ?? '2') * 1000;
  if (warmMs > 0) await measureConcurrent(() => op.run(i++, facts), inFlight, { count: 10_000_000, maxMs: warmMs, warmup: 64 });
  const measuredFrom = monotonicUs();
  let measuredTo = 0;
  let measuredOps = 0;
  const floorOf = (p: FloorProbes): Record<string, () => Promise<unknown>> =>
    op.kind === 'remember' ? { echo: p.echo, 'JetStream ack': p.jsPublish, fdatasync: p.fdatasync } : { echo: p.echo };
  if (probes && against !== undefined) {
    const other = await startAgainst(against, ctx);
    const theirOp = other.target.ops.find((o) => o.name === opName);
    if (!theirOp) throw new Error(`${against} has no op ${opName}`);
    let j = i + 100_000_000;
    const r = await withCpu({ host: host.pid, [`host of ${against}`]: other.hostPid, bench: 'self' }, () =>
      pairedBuilds(() => op.run(i++, facts), () => theirOp.run(j++, facts), [floorOf(probes), floorOf(other.probes)], seconds * 1000),
    );
    const floorP50 = Object.values(r.floor).reduce((sum, f) => sum + f.p50us, 0);
    const parts = Object.entries(r.floor).map(([name, f]) => `${name} ${f.p50us.toFixed(0)}`).join(' + ');
    log(
      `${opName} @${facts}, sequential, paired against ${against}: ${r.n} pairs; p50 this ${r.ours.p50us.toFixed(0)} µs, that ${r.theirs.p50us.toFixed(0)} µs ` +
        `(${(r.ours.p50us - r.theirs.p50us).toFixed(0)}); ` +
        `this − that: median ${r.differenceP50us.toFixed(1)} µs, this faster in ${(r.oursFaster * 100).toFixed(0)}% of pairs; floor same loop ${floorP50.toFixed(0)} µs (${parts}): ` +
        `${(r.ours.p50us / floorP50).toFixed(2)}× vs ${(r.theirs.p50us / floorP50).toFixed(2)}×; CPU µs/op: ${cpuText(r.cpuUsPerOp)}`,
    );
  } else if (probes) {
    const floor = floorOf(probes);
    const r = await withCpu({ ...target.processes(), bench: 'self' }, () => pairedSequential(() => op.run(i++, facts), floor, seconds * 1000));
    const floorP50 = Object.values(r.floor).reduce((sum, f) => sum + f.p50us, 0);
    const parts = Object.entries(r.floor).map(([name, f]) => `${name} ${f.p50us.toFixed(0)}`).join(' + ');
    log(`${opName} @${facts}, sequential: p50 ${r.p50us.toFixed(0)} µs, p99 ${r.p99us.toFixed(0)} µs over ${r.n}; floor same loop ${floorP50.toFixed(0)} µs (${parts}): ${(r.p50us / floorP50).toFixed(2)}×; CPU µs/op: ${cpuText(r.cpuUsPerOp)}`);
  } else {
    const r = await withCpu({ ...target.processes(), bench: 'self' }, () =>
      measureConcurrent(() => op.run(i++, facts), inFlight, { count: 10_000_000, maxMs: seconds * 1000, warmup: 64 }),
    );
    measuredTo = monotonicUs();
    measuredOps = r.n;
    log(`${opName} @${facts}: ${r.opsPerSec.toFixed(0)} ops/s at ${inFlight}, p50 ${r.p50us.toFixed(0)} µs, ${r.errors} errors; CPU µs/op: ${cpuText(r.cpuUsPerOp)}`);
  }
  if (session) {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(join(benchProf, 'bench.cpuprofile'), JSON.stringify(profile));
    session.disconnect();
  }
  await cleanup.run(); // stops the host and router gracefully, so they write their profiles
  const show = (name: string, dir: string): void => {
    log(`${name}: busy time by module (the measured loop only):`);
    for (const l of summarizeByModule(dir, 14, measuredFrom)) log(`  ${l}`);
    log(`${name}: hottest functions by self time:`);
    for (const l of summarizeProfiles(dir, 30, measuredFrom)) log(`  ${l}`);
    log(`${name}: inclusive time of the request path's parts:`);
    for (const l of inclusiveTimes(dir, INCLUSIVE, measuredFrom)) log(`  ${l}`);
  };
  if (profiling) show('host', hostProf);
  if (profiling && op.kind === 'remember' && inFlight > 1 && measuredOps > 0) {
    log(`host: wall time per cycle of ${inFlight} writes (${measuredOps} writes), by stage; idle by the stage before it:`);
    for (const l of cyclePhases(hostProf, measuredFrom, measuredTo, measuredOps / inFlight)) log(`  ${l}`);
  }
  if (profiling && routerPid) show('router', routerProf);
  if (session) show('load generator', benchProf);
} finally {
  await cleanup.run();
  // SM_PROFILE_KEEP=1 keeps the .cpuprofile files (to open in a profiler UI).
  if (process.env['SM_PROFILE_KEEP']) process.stderr.write(`profiles kept in ${profDirs.join(' ')}\n`);
  else removeProfiles();
}

/**
 * `op` one at a time for `ms` (after 100 unrecorded), each followed by one call of every floor operation, timed
 * apart: the op's latencies and each floor operation's, from the same seconds (the CPU figures count both).
 */
async function pairedSequential(
  op: () => Promise<unknown>,
  floor: Readonly<Record<string, () => Promise<unknown>>>,
  ms: number,
): Promise<LatencySummary & { readonly floor: Readonly<Record<string, LatencySummary>> }> {
  for (let k = 0; k < 100; k++) await op();
  const rec = new LatencyRecorder();
  const floorRecs = Object.entries(floor).map(([name, f]) => [name, f, new LatencyRecorder()] as const);
  const deadline = performance.now() + ms;
  while (performance.now() < deadline) {
    const t0 = performance.now();
    await op();
    rec.record((performance.now() - t0) * 1000);
    for (const [, f, r] of floorRecs) {
      const t1 = performance.now();
      await f();
      r.record((performance.now() - t1) * 1000);
    }
  }
  return { ...rec.summary(), floor: Object.fromEntries(floorRecs.map(([name, , r]) => [name, r.summary()])) };
}

/**
 * The other checkout's bench host (`SM_PROFILE_AGAINST`) on a nats-server of its own, preloaded and restarted as this
 * one's is. Only its host and its bench target come from that checkout; the servers and the floor's probes are this
 * checkout's, so the two builds differ in what they run and in nothing they are measured against.
 */
async function startAgainst(dir: string, ours: BenchContext): Promise<{ target: ReturnType<typeof shardmindTarget>; probes: FloorProbes; readonly hostPid: number }> {
  const from = (file: string): string => pathToFileURL(join(resolve(dir), file)).href;
  const theirHost = (await import(from('bench/host.ts'))) as typeof import('./host.ts');
  const theirTarget = (await import(from('bench/shardmind.ts'))) as typeof import('./shardmind.ts');
  const nats = await startNatsServer({ name: 'profile-against' });
  ours.cleanup.add('stop the other checkout\'s nats-server', () => nats.destroy());
  const nc = await connect({ servers: nats.url, noEcho: true, noAsyncTraces: true });
  ours.cleanup.add('close the other checkout\'s connection', () => nc.close());
  await waitForJetStream(nc);
  const ctx: BenchContext = { ...ours, natsUrl: nats.url, natsPid: nats.pid!, nc };
  const host = await theirHost.startBenchHost(ctx);
  const target = theirTarget.shardmindTarget(nc, { router: false, processes: () => ({ host: host.pid }) });
  await target.preload(0, facts);
  await host.restart({});
  const probes = await startFloorProbes(ctx);
  return {
    target,
    probes,
    get hostPid() {
      return host.pid;
    },
  };
}

/**
 * This build's op and the other's, one at a time for `ms` (after 100 of each unrecorded), which goes first
 * alternating; after each pair the floor's operations, on one build's server and then the other's.
 */
async function pairedBuilds(
  ours: () => Promise<unknown>,
  theirs: () => Promise<unknown>,
  floors: readonly [Readonly<Record<string, () => Promise<unknown>>>, Readonly<Record<string, () => Promise<unknown>>>],
  ms: number,
): Promise<{ n: number; ours: LatencySummary; theirs: LatencySummary; differenceP50us: number; oursFaster: number; floor: Readonly<Record<string, LatencySummary>> }> {
  const timed = async (f: () => Promise<unknown>): Promise<number> => {
    const t0 = performance.now();
    await f();
    return (performance.now() - t0) * 1000;
  };
  for (let k = 0; k < 100; k++) {
    await ours();
    await theirs();
  }
  const [recOurs, recTheirs, differences] = [new LatencyRecorder(), new LatencyRecorder(), new LatencyRecorder()];
  const floorRecs = new Map<string, LatencyRecorder>();
  let oursFaster = 0;
  const deadline = performance.now() + ms;
  for (let k = 0; performance.now() < deadline; k++) {
    const oursFirst = k % 2 === 0;
    const first = await timed(oursFirst ? ours : theirs);
    const second = await timed(oursFirst ? theirs : ours);
    const [a, b] = oursFirst ? [first, second] : [second, first];
    recOurs.record(a);
    recTheirs.record(b);
    // Shifted so the recorder's sort sees non-negative numbers (a difference is far above -1 s).
    differences.record(a - b + 1e6);
    if (a < b) oursFaster++;
    for (const [name, f] of Object.entries(floors[k % 2]!)) {
      let rec = floorRecs.get(name);
      if (rec === undefined) floorRecs.set(name, (rec = new LatencyRecorder()));
      rec.record(await timed(f));
    }
  }
  const n = recOurs.size;
  return {
    n,
    ours: recOurs.summary(),
    theirs: recTheirs.summary(),
    differenceP50us: differences.summary().p50us - 1e6,
    oursFaster: n > 0 ? oursFaster / n : 0,
    floor: Object.fromEntries([...floorRecs].map(([name, r]) => [name, r.summary()])),
  };
}

/**
 * The host's main thread over the measured loop, µs per cycle: busy time by write-path stage, garbage collection
 * and the rest, and idle time by the stage that ran last before it (what the host was waiting on). From the
 * `.cpuprofile` of the main thread (sampling: a stage shorter than the interval is seen in proportion, so the
 * attribution of idle time is statistical; SM_CPU_PROF_INTERVAL sharpens it).
 */
function cyclePhases(dir: string, fromUs: number, toUs: number, cycles: number): string[] {
  // The main thread's profile is the busiest one (a worker thread's, idle throughout, may have more samples).
  const busy = (q: { nodes: ProfileNode[]; samples: number[] }): number => {
    const idle = new Set(q.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
    return q.samples.filter((id) => !idle.has(id)).length;
  };
  const profiles = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as { nodes: ProfileNode[]; startTime: number; samples: number[]; timeDeltas: number[] });
  const p = profiles.sort((a, b) => busy(b) - busy(a))[0];
  if (p === undefined) return [];
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stageOf = new Map<number, string>();
  const stage = (leaf: number): string => {
    const known = stageOf.get(leaf);
    if (known !== undefined) return known;
    const names = new Set<string>();
    for (let id: number | undefined = leaf; id !== undefined; id = parent.get(id)) names.add(byId.get(id)!.callFrame.functionName);
    const fn = byId.get(leaf)!.callFrame.functionName;
    const found = fn === '(idle)' ? 'idle' : fn === '(garbage collector)' ? 'garbage collection' : (STAGES.find(([, fns]) => fns.some((f) => names.has(f)))?.[0] ?? 'other');
    stageOf.set(leaf, found);
    return found;
  };
  const time = new Map<string, number>();
  let last = 'other';
  let at = p.startTime;
  let wall = 0;
  for (let i = 0; i < p.samples.length; i++) {
    at += p.timeDeltas[i] ?? 0;
    if (at < fromUs || at > toUs) continue;
    const us = p.timeDeltas[i + 1] ?? 0;
    wall += us;
    let s = stage(p.samples[i]!);
    if (s === 'idle') s = `idle after: ${last}`;
    // A socket write goes out after the stage that wrote: the wait after it is that stage's.
    else if (s !== 'socket writes' && STAGES.some(([name]) => name === s)) last = s;
    time.set(s, (time.get(s) ?? 0) + us);
  }
  return [
    `${(wall / cycles).toFixed(0)} µs per cycle`,
    ...[...time.entries()].sort((a, b) => b[1] - a[1]).map(([s, us]) => `${(us / cycles).toFixed(0).padStart(6)} µs  ${s}`),
  ];
}
