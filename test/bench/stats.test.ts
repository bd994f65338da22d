import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LatencyRecorder, measureConcurrent, measureSequential, percentile, ratio } from '../../bench/stats.ts';

test('percentile - nearest rank on an ascending array', () => {
  const xs = Float64Array.from({ length: 100 }, (_, i) => i + 1);
  assert.is(percentile(xs, 0.5), 50);
  assert.is(percentile(xs, 0.99), 99);
  assert.is(percentile(xs, 1), 100);
  assert.is(percentile(Float64Array.of(7), 0.99), 7);
  assert.ok(Number.isNaN(percentile(new Float64Array(0), 0.5)));
});

test('LatencyRecorder - sorts numerically and stops at capacity', () => {
  const rec = new LatencyRecorder(4);
  for (const v of [100, 9, 30, 2, 5000]) rec.record(v);
  const s = rec.summary();
  assert.is(s.n, 4);
  assert.is(s.p50us, 9);
  assert.is(s.maxUs, 100);
  assert.is(s.meanUs, (100 + 9 + 30 + 2) / 4);
});

test('measureSequential - runs at most count operations, one at a time', async () => {
  let inFlight = 0;
  let most = 0;
  const s = await measureSequential(async () => {
    inFlight++;
    most = Math.max(most, inFlight);
    await new Promise((r) => setImmediate(r));
    inFlight--;
  }, { count: 50, maxMs: 5_000, warmup: 3 });
  assert.is(s.n, 50);
  assert.is(most, 1);
  assert.ok(s.opsPerSec > 0);
});

test('measureSequential - paired baselines run once after each op and are timed apart from it', async () => {
  let ops = 0;
  let baseA = 0;
  let baseB = 0;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const s = await measureSequential(async () => void ops++, { count: 20, maxMs: 5_000 }, [
    async () => { baseA++; await sleep(2); },
    async () => { baseB++; await sleep(3); },
  ]);
  assert.is(s.n, 20);
  assert.is(baseA, 20);
  assert.is(baseB, 20);
  assert.ok(s.pairedFloorP50us! >= 5_000, `floor ${s.pairedFloorP50us} µs covers both baselines`);
  assert.ok(s.p50us < 2_000, `the op's own latency ${s.p50us} µs excludes the baselines`);
});

test('measureConcurrent - keeps the concurrency, counts errors, stops on the time budget', async () => {
  let inFlight = 0;
  let most = 0;
  const s = await measureConcurrent(async (i) => {
    inFlight++;
    most = Math.max(most, inFlight);
    await new Promise((r) => setTimeout(r, 2));
    inFlight--;
    if (i % 10 === 0) throw new Error('every tenth fails');
  }, 8, { count: 1_000_000, maxMs: 200 });
  assert.is(most, 8);
  assert.ok(s.errors > 0, 'errors are counted');
  assert.ok(s.n + s.errors < 1_000_000, 'the time budget ended the loop');
  assert.is(s.concurrency, 8);
});

test('ratio - rounds to two places and is NaN for missing figures', () => {
  assert.is(ratio(3, 2), 1.5);
  assert.is(ratio(1, 3), 0.33);
  assert.ok(Number.isNaN(ratio(NaN, 2)));
  assert.ok(Number.isNaN(ratio(1, 0)));
});

test.run();
