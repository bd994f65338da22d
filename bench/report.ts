/**
 * Turns one run's figures into what people read: the ratios against the floor and the targets they are held to,
 * a markdown table (every figure with its ratio), `results/latest.json`, and the SVG charts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { barChartSvg, lineChartSvg, type Series } from './chart.ts';
import type { FloorFigure, FloorResult } from './floor.ts';
import type { MachineInfo } from './machine.ts';
import type { LostWrites, ServerMemoryWriteFigure } from './peers/server-memory.ts';
import type { OpFigures, SizeFigures } from './plan.ts';
import { cpuText } from './cpu.ts';
import { ratio } from './stats.ts';

export interface BenchResults {
  readonly when: string;
  readonly mode: 'quick' | 'full';
  readonly durationS: number;
  readonly machine: MachineInfo;
  readonly floor?: FloorResult;
  readonly shardmind?: readonly SizeFigures[];
  /** Why shardmind was not measured, when it was not. */
  readonly shardmindSkipped?: string;
  readonly redis?: readonly SizeFigures[];
  readonly serverMemory?: { readonly writes: readonly ServerMemoryWriteFigure[]; readonly lostWrites: LostWrites };
  readonly shardmindLostWrites?: LostWrites;
  readonly notes: readonly string[];
}

export interface Target {
  readonly name: string;
  readonly ratio: number;
  readonly op: '≤' | '≥';
  readonly limit: number;
  readonly met: boolean;
  readonly what: string;
}

const at = (sizes: readonly SizeFigures[] | undefined, op: string, i = 0): OpFigures | undefined => sizes?.[i]?.ops[op];

/** The ratios the targets are stated in, at the smallest store size measured. */
export function computeRatios(r: BenchResults): Record<string, number> {
  const f = r.floor;
  const s = r.shardmind;
  if (!f) return {};
  return {
    recall_direct_p50: p50Ratio(at(s, 'recall_direct'), f.echo.seq.p50us),
    recall_router_p50: p50Ratio(at(s, 'recall_router'), f.echo.seq.p50us),
    remember_p50: p50Ratio(at(s, 'remember_direct'), f.rememberFloorP50us),
    remember_tput: ratio(at(s, 'remember_direct')?.tput[64]?.opsPerSec ?? NaN, f.jsPublish.tput.opsPerSec),
    recall_tput: ratio(at(s, 'recall_direct')?.tput[64]?.opsPerSec ?? NaN, f.echo.tput.opsPerSec),
    // Not the target (that is one request per write, as any language's client sends): the TypeScript SDK, whose
    // concurrent remembers to one shard travel together as remember_batch requests.
    remember_sdk_tput: ratio(at(s, 'remember_sdk')?.tput[64]?.opsPerSec ?? NaN, f.jsPublish.tput.opsPerSec),
    // Not the target either (that is one message per recall): the SDK, whose concurrent direct recalls to one shard
    // travel together as recall_batch requests.
    recall_sdk_tput: ratio(at(s, 'recall_sdk')?.tput[64]?.opsPerSec ?? NaN, f.echo.tput.opsPerSec),
    redis_recall_p50: p50Ratio(at(r.redis, 'recall'), f.echo.seq.p50us),
    redis_remember_p50: p50Ratio(at(r.redis, 'remember'), f.rememberFloorP50us),
    redis_remember_tput: ratio(at(r.redis, 'remember')?.tput[64]?.opsPerSec ?? NaN, f.jsPublish.tput.opsPerSec),
    redis_recall_tput: ratio(at(r.redis, 'recall')?.tput[64]?.opsPerSec ?? NaN, f.echo.tput.opsPerSec),
    // Not a target: what a service that appends each request on its own reaches, against the same raw publish rate.
    append_echo_tput: ratio(f.appendEcho?.tput.opsPerSec ?? NaN, f.jsPublish.tput.opsPerSec),
  };
}

/** p50 over the floor measured in the same loop (paired), or over the standalone floor when not paired. */
function p50Ratio(o: OpFigures | undefined, standaloneFloorUs: number): number {
  if (!o) return NaN;
  return ratio(o.seq.p50us, o.seq.pairedFloorP50us ?? standaloneFloorUs);
}

export function targets(r: BenchResults, ratios: Record<string, number>): Target[] {
  const t = (name: string, op: '≤' | '≥', limit: number, what: string): Target => {
    const v = ratios[name] ?? NaN;
    return { name, ratio: v, op, limit, what, met: Number.isFinite(v) && (op === '≤' ? v <= limit : v >= limit) };
  };
  const lost = r.shardmindLostWrites;
  return [
    t('recall_direct_p50', '≤', 1.5, 'recall straight to a shard, p50 / NATS echo p50'),
    t('recall_router_p50', '≤', 2.5, 'recall through the router, p50 / NATS echo p50'),
    t('remember_p50', '≤', 1.5, 'remember p50 / (echo + JetStream ack + fdatasync) p50'),
    t('remember_tput', '≥', 0.5, 'remember ops/s at 64 / JetStream publish ops/s at 64'),
    t('recall_tput', '≥', 0.5, 'recall ops/s at 64 / echo ops/s at 64'),
    {
      name: 'lost_writes', ratio: lost?.lost ?? NaN, op: '≤', limit: 0, what: 'acknowledged shardmind writes missing afterwards',
      met: lost !== undefined && lost.lost === 0,
    },
  ];
}

const us = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '–' : v >= 10_000 ? `${(v / 1000).toFixed(1)} ms` : `${v.toFixed(0)} µs`);
const ops = (v: number | undefined): string => (v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(0));
const x = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(2)}×` : '–');

export function markdownTable(r: BenchResults): string {
  const f = r.floor;
  const lines: string[] = [];
  const m = r.machine;
  lines.push(`Measured ${r.when} (${r.mode} run, ${r.durationS.toFixed(0)} s) on ${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB, ${m.os}, temp dir on ${m.tempFs}; Node ${m.node}, nats-server ${m.natsServer}, redis ${m.redis}, server-memory ${m.serverMemory}; load average at start ${m.loadAvg1m}; commit ${m.commit ?? 'unknown'}.`);
  lines.push('');
  lines.push('| measurement | facts stored | p50 | p99 | ops/s ×1 | ops/s ×16 | ops/s ×64 | floor p50, same loop | p50 ÷ floor | ops/s ×64 ÷ floor | CPU µs per op at ×64 |');
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  const floorRow = (name: string, fig: FloorFigure): void => {
    lines.push(`| floor: ${name} | | ${us(fig.seq.p50us)} | ${us(fig.seq.p99us)} | ${ops(fig.seq.opsPerSec)} | | ${ops(fig.tput.opsPerSec)} | | | | ${cpuText(fig.tput.cpuUsPerOp)} |`);
  };
  if (f) {
    floorRow('NATS echo, child process (recall floor)', f.echo);
    floorRow('NATS echo, same process', f.echoInProcess);
    floorRow('JetStream publish-ack, R1 file (remember tput floor)', f.jsPublish);
    floorRow('append 200 B + fdatasync', f.fdatasync);
    if (f.echoRequestApi) floorRow('NATS echo through nats.js `nc.request` (not a floor: what it was until §38)', f.echoRequestApi);
    if (f.jsPublishApi) floorRow('JetStream publish-ack through nats.js `js.publish` (not a floor: what it was until §38)', f.jsPublishApi);
    if (f.appendEcho) floorRow('echo that appends each request to JetStream, child process (a remember\'s shape, ungrouped)', f.appendEcho);
    lines.push(`| floor: echo + JetStream ack + fdatasync (remember floor) | | ${us(f.rememberFloorP50us)} | | | | | | | | |`);
  }
  const sysRows = (system: string, sizes: readonly SizeFigures[] | undefined): void => {
    for (const s of sizes ?? []) {
      for (const [name, o] of Object.entries(s.ops)) {
        const isRemember = name.startsWith('remember');
        const p50Floor = o.seq.pairedFloorP50us ?? (f ? (isRemember ? f.rememberFloorP50us : f.echo.seq.p50us) : NaN);
        const tputFloor = f ? (isRemember ? f.jsPublish.tput.opsPerSec : f.echo.tput.opsPerSec) : NaN;
        lines.push(
          `| ${system} ${name.replace('_', ' ')} | ${s.facts.toLocaleString('en')} | ${us(o.seq.p50us)} | ${us(o.seq.p99us)} | ${ops(o.seq.opsPerSec)} | ${ops(o.tput[16]?.opsPerSec)} | ${ops(o.tput[64]?.opsPerSec)} | ${us(p50Floor)} | ${x(ratio(o.seq.p50us, p50Floor))} | ${x(ratio(o.tput[64]?.opsPerSec ?? NaN, tputFloor))} | ${cpuText(o.tput[64]?.cpuUsPerOp)} |`,
        );
      }
    }
  };
  sysRows('shardmind', r.shardmind);
  sysRows('redis', r.redis);
  for (const w of r.serverMemory?.writes ?? []) {
    lines.push(`| server-memory create_entities (1 entity) | ${w.entities.toLocaleString('en')} entities | ${us(w.createEntity.p50us)} | ${us(w.createEntity.p99us)} | ${ops(w.createEntity.opsPerSec)} | | | ${f ? us(f.rememberFloorP50us) : '–'} | ${f ? x(ratio(w.createEntity.p50us, f.rememberFloorP50us)) : '–'} | | |`);
    lines.push(`| server-memory add_observations (1) | ${w.entities.toLocaleString('en')} entities | ${us(w.addObservation.p50us)} | ${us(w.addObservation.p99us)} | ${ops(w.addObservation.opsPerSec)} | | | ${f ? us(f.rememberFloorP50us) : '–'} | ${f ? x(ratio(w.addObservation.p50us, f.rememberFloorP50us)) : '–'} | | |`);
  }
  lines.push('');
  lines.push('| writes lost when two writers write at once | attempted | acknowledged | present afterwards | lost |');
  lines.push('| --- | ---: | ---: | ---: | ---: |');
  const lostRow = (name: string, l: LostWrites | undefined): void => {
    if (l) lines.push(`| ${name} | ${l.attempted} | ${l.acknowledged} | ${l.present} | **${l.lost}** |`);
  };
  lostRow('shardmind (2 connections, 16 in flight each, host restarted before reading back)', r.shardmindLostWrites);
  lostRow('server-memory (2 processes on one memory file, read back by a third)', r.serverMemory?.lostWrites);
  const ratios = computeRatios(r);
  lines.push('');
  lines.push('| target | ratio | goal | met |');
  lines.push('| --- | ---: | ---: | :---: |');
  for (const t of targets(r, ratios)) {
    lines.push(`| ${t.what} | ${t.name === 'lost_writes' ? (Number.isFinite(t.ratio) ? String(t.ratio) : '–') : x(t.ratio)} | ${t.op} ${t.limit} | ${t.met ? 'yes' : 'no'} |`);
  }
  if (r.notes.length) {
    lines.push('');
    for (const n of r.notes) lines.push(`- ${n}`);
  }
  return lines.join('\n') + '\n';
}

export function writeResults(dir: string, r: BenchResults): { json: string; md: string; charts: string[] } {
  mkdirSync(dir, { recursive: true });
  const ratios = computeRatios(r);
  const lost_writes = { shardmind: r.shardmindLostWrites?.lost ?? null, server_memory: r.serverMemory?.lostWrites.lost ?? null };
  const json = join(dir, 'latest.json');
  writeFileSync(json, JSON.stringify({ ...r, ratios, lost_writes, targets: targets(r, ratios) }, null, 2) + '\n');
  const md = join(dir, 'latest.md');
  writeFileSync(md, markdownTable(r));

  const charts: string[] = [];
  const recallSeries: Series[] = [];
  const sizesOf = (s: readonly SizeFigures[] | undefined, op: string): { x: number; y: number }[] =>
    (s ?? []).map((z) => ({ x: z.facts, y: (z.ops[op]?.seq.p50us ?? NaN) / 1000 }));
  if (r.shardmind) {
    recallSeries.push({ name: 'shardmind, direct', color: '#1f77b4', points: sizesOf(r.shardmind, 'recall_direct') });
    recallSeries.push({ name: 'shardmind, router', color: '#2ca02c', points: sizesOf(r.shardmind, 'recall_router') });
  }
  if (r.redis) recallSeries.push({ name: 'Redis (AOF always)', color: '#d62728', points: sizesOf(r.redis, 'recall') });
  const facts = (r.shardmind ?? r.redis ?? []).map((z) => z.facts);
  if (r.floor && facts.length) {
    recallSeries.push({ name: 'NATS echo (floor)', color: '#777', dashed: true, points: facts.map((n) => ({ x: n, y: r.floor!.echo.seq.p50us / 1000 })) });
  }
  if (recallSeries.length) {
    const p = join(dir, 'recall-latency.svg');
    writeFileSync(p, lineChartSvg({ title: 'Recall p50 latency vs facts stored', xLabel: 'facts stored', yLabel: 'p50 latency (ms)', series: recallSeries }));
    charts.push(p);
  }
  const groups = [
    ...(r.shardmindLostWrites ? [{ name: 'shardmind', l: r.shardmindLostWrites }] : []),
    ...(r.serverMemory ? [{ name: 'MCP server-memory', l: r.serverMemory.lostWrites }] : []),
  ].map(({ name, l }) => ({
    name,
    bars: [
      { label: 'acknowledged', value: l.acknowledged, color: '#1f77b4' },
      { label: 'lost', value: l.lost, color: '#d62728' },
    ],
  }));
  if (groups.length) {
    const p = join(dir, 'lost-writes.svg');
    writeFileSync(p, barChartSvg({ title: 'Writes lost when two writers write at once', yLabel: 'writes', groups }));
    charts.push(p);
  }
  return { json, md, charts };
}
