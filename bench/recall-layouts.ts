/**
 * `node --import tsx bench/recall-layouts.ts [facts] [rounds] [phaseMs]`: the recall reply's two layouts
 * (decisions §28) side by side in one run — one nats-server, one host, the same preload — in interleaved phases,
 * so load from other work that comes and goes lands on all of them alike (on this shared 2-core box separate runs
 * of the same code differ by ±25% in CPU per op). Each round runs, per variant, a sequential loop (p50) and 64 in
 * flight (ops/s, CPU µs per op by process); medians over the rounds are printed, then each round's figures.
 * Variants: `objects` (the object layout, msgpack-decoded only: what the bench's load generator did before),
 * `objects+client` (the same reply turned into the client's facts: what an agent's recall did), `table+client`
 * (the table layout into the client's facts: what both do now).
 */
import { connect } from 'nats';
import { startNatsServer, waitForJetStream } from '../cli/index.ts';
import { fromRecallReply } from '../client/index.ts';
import { shardSubject, type RecallReply, type RecallTableReply } from '../protocol/index.ts';
import { Cleanup } from './cleanup.ts';
import { QUICK, type BenchContext } from './context.ts';
import { withCpu } from './cpu.ts';
import { startBenchHost } from './host.ts';
import { BENCH_DOMAIN, call, shardmindTarget } from './shardmind.ts';
import { measureConcurrent, measureSequential } from './stats.ts';
import { queryAt } from './workload.ts';

const [factsArg = '10000', roundsArg = '6', phaseArg = '2500'] = process.argv.slice(2);
const facts = Number(factsArg);
const rounds = Number(roundsArg);
const phaseMs = Number(phaseArg);

interface Figures {
  readonly p50: number[];
  readonly ops: number[];
  readonly host: number[];
  readonly nats: number[];
  readonly bench: number[];
}

const cleanup = new Cleanup();
process.once('SIGINT', () => void cleanup.run().then(() => process.exit(130)));
try {
  const nats = await startNatsServer({ name: 'recall-layouts' });
  cleanup.add('stop nats-server', () => nats.destroy());
  const nc = await connect({ servers: nats.url, noEcho: true, noAsyncTraces: true });
  cleanup.add('close connection', () => nc.close());
  await waitForJetStream(nc);
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const ctx: BenchContext = { natsUrl: nats.url, natsPid: nats.pid!, nc, cleanup, budgets: QUICK, quick: true, log };
  const host = await startBenchHost(ctx);
  await shardmindTarget(nc, { router: false, processes: () => ({}) }).preload(0, facts);
  await host.restart(); // measure the loops, not the preload's garbage
  const subject = shardSubject(BENCH_DOMAIN, 'recall');
  const body = (i: number, layout?: 'table'): object => ({
    v: 1,
    agent: 'bench',
    domain: BENCH_DOMAIN,
    query: queryAt(i, facts).text,
    limit: 10,
    ...(layout ? { layout } : {}),
  });
  const asReply = (r: unknown): RecallReply | RecallTableReply => r as RecallReply | RecallTableReply;
  const variants: Record<string, (i: number) => Promise<number>> = {
    objects: async (i) => (await call(nc, subject, body(i))).facts?.length ?? 0,
    'objects+client': async (i) => fromRecallReply(asReply(await call(nc, subject, body(i)))).facts.length,
    'table+client': async (i) => fromRecallReply(asReply(await call(nc, subject, body(i, 'table')))).facts.length,
  };
  const figures = new Map<string, Figures>();
  let i = 0;
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of Object.entries(variants)) {
      const f = figures.get(name) ?? { p50: [], ops: [], host: [], nats: [], bench: [] };
      figures.set(name, f);
      const seq = await measureSequential((k) => run(k < 0 ? 0 : i++), { count: 1_000_000, maxMs: phaseMs / 2, warmup: 20 });
      const tput = await withCpu({ host: host.pid, 'nats-server': nats.pid!, bench: 'self' }, () =>
        measureConcurrent(() => run(i++), 64, { count: 10_000_000, maxMs: phaseMs, warmup: 64 }),
      );
      f.p50.push(Math.round(seq.p50us));
      f.ops.push(Math.round(tput.opsPerSec));
      f.host.push(tput.cpuUsPerOp['host'] ?? NaN);
      f.nats.push(tput.cpuUsPerOp['nats-server'] ?? NaN);
      f.bench.push(tput.cpuUsPerOp['bench'] ?? NaN);
    }
  }
  const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  log(`recall at ${facts} facts, ${rounds} interleaved rounds (medians; then each round):`);
  for (const [name, f] of figures) {
    log(
      `  ${name.padEnd(15)} p50 ${median(f.p50)} µs, ${median(f.ops)} ops/s at 64, CPU µs/op host ${median(f.host)}, ` +
        `nats-server ${median(f.nats)}, bench ${median(f.bench)}  [p50 ${f.p50.join(' ')} | ops/s ${f.ops.join(' ')} | ` +
        `host ${f.host.join(' ')} | nats-server ${f.nats.join(' ')} | bench ${f.bench.join(' ')}]`,
    );
  }
} finally {
  await cleanup.run();
}
