/**
 * Latency recording and the two measurement loops every bench section uses: sequential (one request at a time,
 * for p50/p99) and closed-loop concurrent (N requests in flight, for throughput). Every loop is bounded by a count
 * AND a time budget, so a slow target shortens a run instead of hanging it.
 */
import { performance } from 'node:perf_hooks';

/** Percentiles of latencies in microseconds, plus how many samples they came from. */
export interface LatencySummary {
  readonly n: number;
  readonly p50us: number;
  readonly p99us: number;
  readonly meanUs: number;
  readonly maxUs: number;
}

/** One request at a time: the latencies, and the throughput a single client gets. */
export interface SequentialSummary extends LatencySummary {
  readonly opsPerSec: number;
  /** CPU µs each process spent per operation (see `cpu.ts`), when measured. */
  readonly cpuUsPerOp?: Readonly<Record<string, number>>;
  /** Sum of the p50s of the baselines run interleaved with this loop (see `measureSequential`), when paired. */
  readonly pairedFloorP50us?: number;
}

export interface ThroughputSummary extends LatencySummary {
  readonly concurrency: number;
  readonly opsPerSec: number;
  readonly errors: number;
  readonly cpuUsPerOp?: Readonly<Record<string, number>>;
}

/** Collects latencies (µs) up to a fixed capacity; percentiles by sorting a copy (exact, no bucketing error). */
export class LatencyRecorder {
  private readonly samples: Float64Array;
  private count = 0;

  constructor(capacity = 1_000_000) {
    this.samples = new Float64Array(capacity);
  }

  record(us: number): void {
    if (this.count < this.samples.length) this.samples[this.count++] = us;
  }

  get size(): number {
    return this.count;
  }

  summary(): LatencySummary {
    const sorted = this.samples.slice(0, this.count).sort();
    let sum = 0;
    for (const v of sorted) sum += v;
    return {
      n: this.count,
      p50us: percentile(sorted, 0.5),
      p99us: percentile(sorted, 0.99),
      meanUs: this.count ? sum / this.count : NaN,
      maxUs: this.count ? sorted[this.count - 1]! : NaN,
    };
  }
}

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentile(sorted: Float64Array | readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank]!;
}

export interface LoopBounds {
  /** Most operations to run. */
  readonly count: number;
  /** Stop starting new operations after this long. */
  readonly maxMs: number;
  /** Operations run first and not recorded (JIT, connection and cache warm-up). */
  readonly warmup?: number;
}

/**
 * `op(i)` one at a time; latency of each. A thrown error ends the loop (a sequential failure is a bug).
 *
 * With `baselines`, each `op` is followed by one call of every baseline, timed apart: the loop then also reports
 * the sum of the baselines' p50s measured in the same seconds as the op (`pairedFloorP50us`), so a ratio of the
 * two does not move when other load on the machine comes and goes during a run. Throughput counts only the op's
 * own time.
 */
export async function measureSequential(
  op: (i: number) => Promise<unknown>,
  b: LoopBounds,
  baselines: readonly (() => Promise<unknown>)[] = [],
): Promise<SequentialSummary> {
  for (let i = 0; i < (b.warmup ?? 0); i++) await op(-1 - i);
  const rec = new LatencyRecorder(b.count);
  const base = baselines.map(() => new LatencyRecorder(b.count));
  let opTimeMs = 0;
  const deadline = performance.now() + b.maxMs * (1 + baselines.length);
  for (let i = 0; i < b.count && performance.now() < deadline; i++) {
    const t0 = performance.now();
    await op(i);
    const dt = performance.now() - t0;
    opTimeMs += dt;
    rec.record(dt * 1000);
    for (let k = 0; k < baselines.length; k++) {
      const t1 = performance.now();
      await baselines[k]!();
      base[k]!.record((performance.now() - t1) * 1000);
    }
  }
  const summary = { ...rec.summary(), opsPerSec: rec.size / (opTimeMs / 1000) };
  if (baselines.length === 0) return summary;
  return { ...summary, pairedFloorP50us: base.reduce((sum, r) => sum + r.summary().p50us, 0) };
}

/**
 * `concurrency` workers, each running `op` back to back (a closed loop), until `count` operations have started or
 * `maxMs` has passed. Throughput = completed operations / elapsed time. Errors are counted, not thrown, so one
 * timeout under load does not discard the run; a run where most operations fail is the caller's to report.
 */
export async function measureConcurrent(
  op: (i: number) => Promise<unknown>,
  concurrency: number,
  b: LoopBounds,
): Promise<ThroughputSummary> {
  const warm = b.warmup ?? 0;
  if (warm > 0) await Promise.all(Array.from({ length: Math.min(concurrency, warm) }, (_, k) => op(-1 - k)));
  const rec = new LatencyRecorder(b.count);
  let next = 0;
  let errors = 0;
  const start = performance.now();
  const deadline = start + b.maxMs;
  const worker = async (): Promise<void> => {
    while (next < b.count && performance.now() < deadline) {
      const i = next++;
      const t0 = performance.now();
      try {
        await op(i);
        rec.record((performance.now() - t0) * 1000);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedS = (performance.now() - start) / 1000;
  return { ...rec.summary(), concurrency, opsPerSec: rec.size / elapsedS, errors };
}

/** `a / b`, rounded for tables; NaN-safe. */
export function ratio(a: number, b: number): number {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return NaN;
  return Math.round((a / b) * 100) / 100;
}
