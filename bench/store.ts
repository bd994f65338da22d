/**
 * `npm run bench:store [-- --quick]`: how fast one shard store loads and answers as it grows.
 *
 * Loads realistic synthetic facts (subjects from a few thousand entities, a few dozen predicates, text drawn from a
 * Zipf-distributed vocabulary) through `applyBatch` in batches of 1000, and at 10k, 100k and 1M facts measures
 * recall latency (p50/p99) over a mix of text and subject queries, RSS and the data file size. Prints a table; the
 * last line is one JSON object (`load_facts_per_s`, `recall_p50_us_10k`, `recall_p50_us_1m`, `rss_mb_1m`, …, with
 * `load_cpu_us_per_fact` and the machine's `load_average`, since the box is shared), and `open_ms`: the time to
 * reopen the loaded store (its in-memory indexes are rebuilt from the facts).
 * `--quick` runs half the queries but still reaches 1M facts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { openShardStore, type LogEntry, type RecallQuery } from '../shards/index.ts';

const QUICK = process.argv.includes('--quick');
const started = performance.now();
const CHECKPOINTS = (process.env['SM_BENCH_CHECKPOINTS'] ?? '10000,100000,1000000').split(',').map(Number);
const BATCH = 1000;
// p50 of a few hundred queries moved ±50% between runs on the shared machine; a thousand cost ~1 s per checkpoint.
const QUERIES = QUICK ? 1000 : 2000;
const ENTITIES = 3000;
const VOCABULARY = 20_000;
const T0 = Date.UTC(2026, 0, 1);

/** mulberry32: a small seeded PRNG, so every run loads the same facts. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(42);

const SYLLABLES = ['ka', 'lo', 'mi', 'ne', 'ru', 'ta', 'vo', 'shi', 'en', 'dar', 'pel', 'gor', 'fin', 'bri', 'zu', 'qua'];
const words: string[] = [];
for (let i = 0; words.length < VOCABULARY; i++) {
  let w = '';
  for (let n = i + 1; n > 0; n = Math.floor(n / SYLLABLES.length)) w += SYLLABLES[n % SYLLABLES.length];
  words.push(w + (i % 7 === 0 ? 'x' : ''));
}
// Zipf (s = 1) sampling by binary search over the cumulative weights.
const cumulative: number[] = [];
let total = 0;
for (let r = 1; r <= VOCABULARY; r++) cumulative.push((total += 1 / r));
function zipfIndex(): number {
  const x = random() * total;
  let lo = 0;
  let hi = VOCABULARY - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (cumulative[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;

const predicates = Array.from({ length: 40 }, (_, i) => `rel_${i}`);
const onePredicates = Object.fromEntries(predicates.slice(0, 8).map((p) => [p, { cardinality: 'one' as const, halfLifeDays: 60 }]));
const entity = (i: number): string => `person-${i}`;

function makeEntry(seq: number): LogEntry {
  const n = 6 + Math.floor(random() * 8);
  const text: string[] = [];
  for (let i = 0; i < n; i++) text.push(words[zipfIndex()]!);
  const recordedAt = T0 + seq * 50;
  const source = { agent: `agent-${seq % 7}`, node: `mini-${seq % 3}` };
  const opId = `agent-${seq % 7}-${seq.toString(36).padStart(10, '0')}`;
  if (random() < 0.15) return { v: 1, op: 'assert', opId, recordedAt, source, fact: { text: text.join(' ') } };
  const subject = entity(Math.floor(random() ** 2 * ENTITIES));
  const predicate = pick(predicates);
  const object = random() < 0.3 ? { entity: entity(Math.floor(random() * ENTITIES)) } : words[zipfIndex()]!;
  return {
    v: 1, op: 'assert', opId, recordedAt, source,
    fact: { text: `${subject} ${text.join(' ')}`, subject, predicate, object, confidence: 0.5 + random() * 0.5 },
  };
}

function makeQuery(now: number): RecallQuery {
  const q = Array.from({ length: 2 + Math.floor(random() * 3) }, () => words[zipfIndex()]!).join(' ');
  if (random() < 0.2) return { query: q, subject: entity(Math.floor(random() ** 2 * ENTITIES)), now, limit: 10 };
  return { query: q, now, limit: 10 };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const dir = mkdtempSync(join(tmpdir(), 'shardmind-bench-store-'));
const rows: string[][] = [];
const summary: Record<string, number | string | boolean> = { quick: QUICK };
try {
  // The growth run loads like a follower catching up in bulk (`durability: 'none'`); the synced rate is measured
  // separately below, because at 1M facts the per-batch fsync of these disks, not the store, sets the pace.
  const store = openShardStore({ path: dir, domain: 'bench', predicates: onePredicates, durability: 'none' });
  let seq = 0;
  let loadMs = 0;
  // CPU time of the whole process (this thread and lmdb-js's write thread) while loading: on a shared machine it
  // drifts far less than wall-clock time.
  let loadCpuUs = 0;
  for (const target of CHECKPOINTS) {
    while (seq < target) {
      const batch: { seq: number; entry: LogEntry }[] = [];
      for (let i = 0; i < BATCH; i++) batch.push({ seq: ++seq, entry: makeEntry(seq) });
      const started = performance.now();
      const cpu = process.cpuUsage();
      await store.applyBatch(batch);
      const used = process.cpuUsage(cpu);
      loadCpuUs += used.user + used.system;
      loadMs += performance.now() - started;
    }
    const now = T0 + seq * 50;
    // The load's garbage is not the queries' cost: collect it before timing them (`--expose-gc` in package.json).
    (globalThis as { gc?: () => void }).gc?.();
    for (let i = 0; i < 50; i++) store.recall(makeQuery(now)); // warm-up
    const times: number[] = [];
    let hits = 0;
    for (let i = 0; i < QUERIES; i++) {
      const q = makeQuery(now);
      const started = performance.now();
      hits += store.recall(q).facts.length;
      times.push((performance.now() - started) * 1000);
    }
    times.sort((a, b) => a - b);
    const stats = store.stats();
    const label = target >= 1_000_000 ? '1m' : `${target / 1000}k`;
    const p50 = Math.round(percentile(times, 50));
    const p99 = Math.round(percentile(times, 99));
    const rss = Math.round(process.memoryUsage().rss / 2 ** 20);
    const mb = Math.round(stats.bytes / 2 ** 20);
    rows.push([label, String(Math.round(seq / (loadMs / 1000))), String(p50), String(p99), (hits / QUERIES).toFixed(1), String(rss), String(mb)]);
    summary[`recall_p50_us_${label}`] = p50;
    summary[`recall_p99_us_${label}`] = p99;
    summary[`rss_mb_${label}`] = rss;
    summary[`data_mb_${label}`] = mb;
  }
  summary['load_facts_per_s'] = Math.round(seq / (loadMs / 1000));
  summary['load_cpu_us_per_fact'] = Number((loadCpuUs / seq).toFixed(1));
  await store.close();

  // Opening rebuilds what the store keeps in memory (the write path's indexes from every fact, the open index
  // segment from its facts): a restart or a failover pays this before the shard serves.
  const openStarted = performance.now();
  const reopened = openShardStore({ path: dir, domain: 'bench', predicates: onePredicates, durability: 'none' });
  summary['open_ms'] = Math.round(performance.now() - openStarted);
  summary['open_facts'] = reopened.stats().facts;
  await reopened.close();

  // Synced load (`durability: 'meta'`, the default): every 1000-fact batch resolves only once its data pages are
  // fsynced. lmdb-js commits and syncs on its write thread, so the event loop stays free meanwhile.
  const syncedDir = mkdtempSync(join(tmpdir(), 'shardmind-bench-store-meta-'));
  try {
    const synced = openShardStore({ path: syncedDir, domain: 'bench', predicates: onePredicates, durability: 'meta' });
    const n = QUICK ? 20_000 : 100_000;
    const started = performance.now();
    for (let s = 0; s < n; ) {
      const batch: { seq: number; entry: LogEntry }[] = [];
      for (let i = 0; i < BATCH; i++) batch.push({ seq: ++s, entry: makeEntry(s) });
      await synced.applyBatch(batch);
    }
    summary['load_facts_per_s_meta'] = Math.round(n / ((performance.now() - started) / 1000));
    await synced.close();
  } finally {
    rmSync(syncedDir, { recursive: true, force: true });
  }
  summary['recall_ratio_1m_10k'] = Number(((summary['recall_p50_us_1m'] as number) / (summary['recall_p50_us_10k'] as number)).toFixed(2));
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const header = ['facts', 'load/s', 'p50 µs', 'p99 µs', 'hits/q', 'rss MB', 'data MB'];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (r: string[]): string => r.map((c, i) => c.padStart(widths[i]!)).join('  ');
console.log(line(header));
for (const r of rows) console.log(line(r));
summary['load_durability'] = 'none';
// Other work on the machine skews every figure above: report the 1-minute load average at the end.
summary['load_average'] = Number(loadavg()[0]!.toFixed(2));
summary['elapsed_s'] = Math.round((performance.now() - started) / 1000);
console.log(JSON.stringify(summary));
