/**
 * Reads the `.cpuprofile` files node wrote (`--cpu-prof`) and lists where CPU time went by self time, grouped by
 * function and file — enough to say what bounds a missed target without opening a profiler UI.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** The `top` functions by self time across every profile in `dir`, as "12.3% fn (file:line)" of busy time. */
export function summarizeProfiles(dir: string, top: number): string[] {
  return ranked(dir, (fn, url, line) => `${fn || '(anonymous)'} (${url ? `${url.split('/').slice(-2).join('/')}:${line}` : 'native'})`, top);
}

/**
 * Busy time by where the code lives: a package under node_modules (`nats`, `lmdb`, `msgpackr`), a project folder
 * (`shards/`, `actors/`, `protocol/`), node internals, or the garbage collector.
 */
export function summarizeByModule(dir: string, top = 12): string[] {
  return ranked(dir, (fn, url) => {
    if (!url) return fn === '(garbage collector)' ? 'garbage collector' : `native ${fn}`;
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
    if (pkg) return pkg[1]!;
    if (url.startsWith('node:')) return 'node internals';
    const folder = /\/(shards|actors|protocol|router|config|cli|client)\//.exec(url);
    return folder ? `${folder[1]}/` : url.split('/').slice(-2).join('/');
  }, top);
}

/** Self time grouped by `keyOf`, idle and program excluded, as percentages of the busy time. */
function ranked(dir: string, keyOf: (fn: string, url: string, line: number) => string, top: number): string[] {
  const self = new Map<string, number>();
  let total = 0;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    const p = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    p.samples.forEach((id, i) => {
      const n = byId.get(id);
      const fn = n?.callFrame.functionName ?? '';
      if (!n || fn === '(idle)' || fn === '(program)') return;
      const dt = p.timeDeltas[i] ?? 0;
      const url = n.callFrame.url.replace(/^file:\/\//, '');
      const key = keyOf(fn, url, n.callFrame.lineNumber + 1);
      self.set(key, (self.get(key) ?? 0) + dt);
      total += dt;
    });
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, v]) => `${((v / total) * 100).toFixed(1)}% ${k}`);
}
