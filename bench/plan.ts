/**
 * The measurement plan shared by shardmind and Redis: for each store size, preload up to it, then for each
 * operation a sequential run (p50/p99, and the throughput of one client) and closed-loop runs at each concurrency
 * level. Remembers always write fact indices never used before, so they create rather than reinforce.
 */
import { performance } from 'node:perf_hooks';
import type { PeerContext } from './context.ts';
import { cpuText, withCpu } from './cpu.ts';
import { measureConcurrent, measureSequential, type SequentialSummary, type ThroughputSummary } from './stats.ts';
import type { MemoryTarget } from './target.ts';

export interface OpFigures {
  readonly seq: SequentialSummary;
  /** Keyed by concurrent clients (16, 64, …); concurrency 1 is `seq`. */
  readonly tput: Readonly<Record<number, ThroughputSummary>>;
}

export interface SizeFigures {
  readonly facts: number;
  readonly preloadMs: number;
  readonly ops: Readonly<Record<string, OpFigures>>;
}

/** Remembers during measurement use indices from here up, far above any preload. */
const FRESH_BASE = 100_000_000;

export interface TargetFigures {
  readonly sizes: SizeFigures[];
  /** Why the plan stopped before its last size, if it did (the sizes measured before are kept). */
  readonly error?: string;
}

/** The floor operations to interleave with each sequential loop, by kind (see `measureSequential`). */
export type PairedBaselines = Readonly<Record<'remember' | 'recall', readonly (() => Promise<unknown>)[]>>;

export async function measureTarget(
  ctx: PeerContext,
  target: MemoryTarget,
  opts: { readonly freshBase?: number; readonly baselines?: PairedBaselines } = {},
): Promise<TargetFigures> {
  const sizes: SizeFigures[] = [];
  try {
    await measureSizes(ctx, target, opts.freshBase ?? FRESH_BASE, opts.baselines, sizes);
    return { sizes };
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    ctx.log(`${target.name}: stopped after ${sizes.length} size(s): ${error}`);
    return { sizes, error };
  }
}

async function measureSizes(
  ctx: PeerContext,
  target: MemoryTarget,
  freshBase: number,
  baselines: PairedBaselines | undefined,
  out: SizeFigures[],
): Promise<void> {
  let loaded = 0;
  let fresh = freshBase;
  let queries = 0;
  for (const size of ctx.budgets.factSizes) {
    const t0 = performance.now();
    await target.preload(loaded, size);
    const preloadMs = performance.now() - t0;
    ctx.log(`${target.name}: preloaded ${loaded}..${size} in ${(preloadMs / 1000).toFixed(1)} s (${(((size - loaded) / preloadMs) * 1000).toFixed(0)} facts/s)`);
    loaded = size;
    const ops: Record<string, OpFigures> = {};
    for (const op of target.ops) {
      const stored = size;
      const run = op.kind === 'remember' ? () => op.run(fresh++, stored) : () => op.run(queries++, stored);
      const procs = { ...target.processes(), bench: 'self' as const };
      const seq = await withCpu(procs, () => measureSequential(run, ctx.budgets.seq, baselines?.[op.kind]));
      const tput: Record<number, ThroughputSummary> = {};
      for (const c of ctx.budgets.clients) {
        if (c === 1) continue;
        tput[c] = await withCpu(procs, () => measureConcurrent(run, c, ctx.budgets.tput));
      }
      ops[op.name] = { seq, tput };
      const t = Object.entries(tput).map(([c, s]) => `${s.opsPerSec.toFixed(0)}/s@${c}${s.errors ? ` (${s.errors} errors)` : ''}`);
      const paired = seq.pairedFloorP50us ? ` (floor in the same loop ${seq.pairedFloorP50us.toFixed(0)} µs)` : '';
      ctx.log(`${target.name} ${op.name} @${size}: p50 ${seq.p50us.toFixed(0)} µs${paired}, p99 ${seq.p99us.toFixed(0)} µs, ${seq.opsPerSec.toFixed(0)}/s@1, ${t.join(', ')}; CPU µs/op at ${Math.max(...ctx.budgets.clients)}: ${cpuText(tput[Math.max(...ctx.budgets.clients)]?.cpuUsPerOp)}`);
    }
    out.push({ facts: size, preloadMs, ops });
  }
}

