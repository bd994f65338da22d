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

/** The `top` functions by self time across every profile in `dir`, as "12.3% fn (file:line)". */
export function summarizeProfiles(dir: string, top: number): string[] {
  const self = new Map<string, number>();
  let total = 0;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    const p = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    p.samples.forEach((id, i) => {
      const n = byId.get(id);
      if (!n) return;
      const dt = p.timeDeltas[i] ?? 0;
      const url = n.callFrame.url.replace(/^file:\/\//, '').split('/node_modules/').pop()!.split('/').slice(-2).join('/');
      const key = `${n.callFrame.functionName || '(anonymous)'} (${url || 'native'}${url ? `:${n.callFrame.lineNumber + 1}` : ''})`;
      self.set(key, (self.get(key) ?? 0) + dt);
      total += dt;
    });
  }
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([k, v]) => `${((v / total) * 100).toFixed(1)}% ${k}`);
}
