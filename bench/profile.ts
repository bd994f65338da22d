/**
 * Reads the `.cpuprofile` files node wrote (`--cpu-prof`) and lists where CPU time went by self time, grouped by
 * function and file, and the inclusive time under chosen functions — enough to say what bounds a missed target
 * without opening a profiler UI. `sinceUs` (a `process.hrtime` reading in µs: V8's profile clock is the same
 * monotonic clock) drops samples from before the measured loop, such as the process's start-up.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** One busy sample: its leaf node, the node's ancestors (leaf first) and its duration in µs. */
interface Sample {
  readonly stack: readonly ProfileNode[];
  readonly us: number;
}

/** The monotonic clock the profiles use, in µs. */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** The `top` functions by self time across every profile in `dir`, as "12.3% fn (file:line)" of busy time. */
export function summarizeProfiles(dir: string, top: number, sinceUs = 0): string[] {
  return ranked(dir, sinceUs, (n) => `${n.callFrame.functionName || '(anonymous)'} (${where(n)})`, top);
}

/**
 * Busy time by where the code lives: a package under node_modules (`nats`, `lmdb`, `msgpackr`), a project folder
 * (`shards/`, `actors/`, `protocol/`), node internals, or the garbage collector.
 */
export function summarizeByModule(dir: string, top = 12, sinceUs = 0): string[] {
  return ranked(dir, sinceUs, (n) => {
    const fn = n.callFrame.functionName;
    const url = urlOf(n);
    if (!url) return fn === '(garbage collector)' ? 'garbage collector' : `native ${fn}`;
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    if (pkg) return pkg[1]!;
    if (url.startsWith('node:')) return 'node internals';
    const folder = /\/(shards|actors|protocol|router|config|cli|client)\//.exec(url);
    return folder ? `${folder[1]}/` : url.split('/').slice(-2).join('/');
  }, top);
}

/**
 * Inclusive time of the functions named in `names` (a sample counts once per name however deep the recursion), as
 * "41.0% recall" of busy time: how much one part of a request costs with everything it calls.
 */
export function inclusiveTimes(dir: string, names: readonly string[], sinceUs = 0): string[] {
  const wanted = new Set(names);
  const under = new Map<string, number>();
  let total = 0;
  for (const s of samples(dir, sinceUs)) {
    total += s.us;
    const seen = new Set<string>();
    for (const n of s.stack) {
      const fn = n.callFrame.functionName;
      if (wanted.has(fn) && !seen.has(fn)) {
        seen.add(fn);
        under.set(fn, (under.get(fn) ?? 0) + s.us);
      }
    }
  }
  return names.map((fn) => `${(((under.get(fn) ?? 0) / (total || 1)) * 100).toFixed(1)}% ${fn}`);
}

function urlOf(n: ProfileNode): string {
  return n.callFrame.url.replace(/^file:\/\//, '');
}

function where(n: ProfileNode): string {
  const url = urlOf(n);
  return url ? `${url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber + 1}` : 'native';
}

/** Every busy sample (idle and program excluded) taken at or after `sinceUs`. */
function* samples(dir: string, sinceUs: number): Generator<Sample> {
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    const p = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, ProfileNode>();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n);
    let at = p.startTime;
    for (let i = 0; i < p.samples.length; i++) {
      const dt = p.timeDeltas[i] ?? 0;
      at += dt;
      if (at < sinceUs) continue;
      const leaf = byId.get(p.samples[i]!);
      const fn = leaf?.callFrame.functionName ?? '';
      if (!leaf || fn === '(idle)' || fn === '(program)') continue;
      const stack: ProfileNode[] = [];
      for (let n: ProfileNode | undefined = leaf; n; n = parent.get(n.id)) stack.push(n);
      yield { stack, us: dt };
    }
  }
}

/** Self time grouped by `keyOf`, as percentages of the busy time. */
function ranked(dir: string, sinceUs: number, keyOf: (leaf: ProfileNode) => string, top: number): string[] {
  const self = new Map<string, number>();
  let total = 0;
  for (const s of samples(dir, sinceUs)) {
    const key = keyOf(s.stack[0]!);
    self.set(key, (self.get(key) ?? 0) + s.us);
    total += s.us;
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, v]) => `${((v / total) * 100).toFixed(1)}% ${k}`);
}
