import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FloorFigure, FloorResult } from '../../bench/floor.ts';
import type { SizeFigures } from '../../bench/plan.ts';
import { computeRatios, markdownTable, targets, writeResults, type BenchResults } from '../../bench/report.ts';

const lat = (p50us: number, opsPerSec: number) => ({ n: 100, p50us, p99us: p50us * 3, meanUs: p50us, maxUs: p50us * 5, opsPerSec });
const fig = (p50us: number, tput: number): FloorFigure => ({ seq: lat(p50us, 1e6 / p50us), tput: { ...lat(p50us * 4, tput), concurrency: 64, errors: 0 } });
const floor: FloorResult = {
  echo: fig(100, 20_000),
  echoInProcess: fig(80, 25_000),
  jsPublish: fig(150, 30_000),
  fdatasync: fig(250, 8_000),
  rememberFloorP50us: 500,
  payloadBytes: 200,
};
const op = (p50us: number, tput64: number) => ({ seq: lat(p50us, 1e6 / p50us), tput: { 64: { ...lat(p50us * 5, tput64), concurrency: 64, errors: 0 } } });
const sizes = (scale: number): SizeFigures[] => [
  { facts: 10_000, preloadMs: 1000, ops: { recall_direct: op(140, 12_000), recall_router: op(300, 8_000), remember_direct: op(800, 14_000) } },
  { facts: 100_000, preloadMs: 9000, ops: { recall_direct: op(140 * scale, 9_000), recall_router: op(320, 7_000), remember_direct: op(900, 13_000) } },
];
const results: BenchResults = {
  when: '2026-11-24T00:00:00.000Z',
  mode: 'quick',
  durationS: 100,
  machine: { cpu: 'test cpu', cores: 2, memGiB: 24, os: 'linux', node: 'v20', natsServer: '2.9.10', redis: '7', serverMemory: 'x', tempFs: 'ext4', commit: 'abc1234', loadAvg1m: 0.5 },
  floor,
  shardmind: sizes(2),
  shardmindLostWrites: { writers: 2, attempted: 20, acknowledged: 20, present: 20, lost: 0 },
  serverMemory: { writes: [], lostWrites: { writers: 2, attempted: 20, acknowledged: 20, present: 12, lost: 8 } },
  notes: ['a note'],
};

test('report - ratios are shardmind figures over the floor at the smallest size', () => {
  const r = computeRatios(results);
  assert.is(r['recall_direct_p50'], 1.4);
  assert.is(r['recall_router_p50'], 3);
  assert.is(r['remember_p50'], 1.6);
  assert.is(r['remember_tput'], 0.47);
  assert.is(r['recall_tput'], 0.6);
  // The SDK's recall (concurrent calls batched) is its own ratio to the same echo, not the target's.
  const withSdk = { ...results, shardmind: [{ ...sizes(1)[0]!, ops: { ...sizes(1)[0]!.ops, recall_sdk: op(150, 16_000) } }] };
  assert.is(computeRatios(withSdk)['recall_sdk_tput'], 0.8);
  assert.is(computeRatios(withSdk)['recall_tput'], 0.6);
  const met = Object.fromEntries(targets(results, r).map((t) => [t.name, t.met]));
  assert.equal(met, { recall_direct_p50: true, recall_router_p50: false, remember_p50: false, remember_tput: false, recall_tput: true, lost_writes: true });
});

test('report - a loop with a paired floor is divided by that floor, not the standalone one', () => {
  const paired = { ...results, shardmind: [{ ...sizes(1)[0]!, ops: { ...sizes(1)[0]!.ops, recall_direct: { ...op(140, 12_000), seq: { ...lat(140, 7000), pairedFloorP50us: 200 } } } }] };
  assert.is(computeRatios(paired)['recall_direct_p50'], 0.7);
  assert.match(markdownTable(paired), /\| shardmind recall direct \| 10,000 \| 140 µs \| 420 µs \| 7000 \| – \| 12000 \| 200 µs \| 0.70× \|/);
});

test('report - writes latest.json with ratios and lost_writes, a table, and two SVG charts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shardmind-report-test-'));
  try {
    const out = writeResults(dir, results);
    const json = JSON.parse(readFileSync(out.json, 'utf8')) as { ratios: Record<string, number>; lost_writes: Record<string, number>; machine: { cpu: string } };
    assert.equal(Object.keys(json.ratios).slice(0, 5), ['recall_direct_p50', 'recall_router_p50', 'remember_p50', 'remember_tput', 'recall_tput']);
    assert.equal(json.lost_writes, { shardmind: 0, server_memory: 8 });
    assert.is(json.machine.cpu, 'test cpu');
    assert.is(out.charts.length, 2);
    const recall = readFileSync(out.charts[0]!, 'utf8');
    assert.match(recall, /^<svg[^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    assert.is((recall.match(/<polyline/g) ?? []).length, 3, 'direct, router, and the echo floor');
    assert.match(readFileSync(out.charts[1]!, 'utf8'), />8<\/text>/);
    const table = markdownTable(results);
    assert.match(table, /\| shardmind recall direct \| 10,000 \| 140 µs \|/);
    assert.match(table, /\| server-memory \(2 processes on one memory file, read back by a third\) \| 20 \| 20 \| 12 \| \*\*8\*\* \|/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
