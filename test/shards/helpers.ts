/**
 * Test helpers for shard stores: temp dirs that are always removed, log entries with defaults, and random logs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FactInput, LogEntry, Source } from '../../shards/index.ts';
import { prng } from '../../bench/store-workload.ts';

/** The store bench's seeded PRNG (mulberry32): one definition for the bench's loads and these tests. */
export { prng };

export const DAY = 86_400_000;
export const T0 = Date.UTC(2026, 10, 24);

export function tempDir(prefix = 'shardmind-shards-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

let counter = 0;
export function assertEntry(fact: FactInput, opts: { recordedAt?: number; source?: Source; opId?: string } = {}): LogEntry {
  return {
    v: 1,
    op: 'assert',
    opId: opts.opId ?? `op-${++counter}`,
    recordedAt: opts.recordedAt ?? fact.observedAt ?? T0,
    source: opts.source ?? { agent: 'agent-a', node: 'mini-1' },
    fact,
  };
}

export function entry<E extends LogEntry>(e: Omit<E, 'v' | 'opId' | 'source' | 'recordedAt'> & Partial<LogEntry>): LogEntry {
  return { v: 1, opId: `op-${++counter}`, recordedAt: T0, source: { agent: 'agent-a' }, ...e } as LogEntry;
}


export const PREDICATES = { p0: { cardinality: 'one', halfLifeDays: 10 }, p1: { cardinality: 'one', halfLifeDays: 30 } } as const;

/** A random log with every kind of entry, small value spaces (so conflicts and reinforcements happen) and repeats. */
export function randomLog(n: number, seed: number, gap = 3000): { seq: number; entry: LogEntry }[] {
  const rnd = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const words = ['pdf', 'link', 'tea', 'coffee', 'oslo', 'paris', 'morning', 'report', 'budget', 'meeting'];
  const log: { seq: number; entry: LogEntry }[] = [];
  let seq = 0;
  for (let i = 0; i < n; i++) {
    seq += 1 + (rnd() < 0.01 ? gap : 0); // gaps cross index segments (and epochs, with a large gap)
    const recordedAt = T0 + i * 1000;
    const source = { agent: pick(['a', 'b', 'c']), node: pick(['mini-1', 'mini-2']) };
    const opId = rnd() < 0.02 && i > 0 ? log[Math.floor(rnd() * log.length)]!.entry.opId : `op-${seed}-${i}`;
    const r = rnd();
    const target = () => `d:${Math.floor(rnd() * seq).toString(36).padStart(10, '0')}:0`;
    let entry: LogEntry;
    if (r < 0.75) {
      const subject = `s${Math.floor(rnd() * 30)}`;
      entry = {
        v: 1, op: 'assert', opId, recordedAt, source,
        fact: rnd() < 0.2
          ? { text: `${pick(words)} ${pick(words)} note` }
          : { text: `${subject} ${pick(words)} ${pick(words)}`, subject, predicate: pick(['p0', 'p1', 'p2']), object: pick(words), confidence: 0.3 + rnd() * 0.7, validFrom: T0 + Math.floor(rnd() * 100) * DAY },
      };
    } else if (r < 0.83) entry = { v: 1, op: 'reinforce', opId, recordedAt, source, factId: target() };
    else if (r < 0.89) entry = { v: 1, op: 'retract', opId, recordedAt, source, factId: target() };
    else if (r < 0.94) entry = { v: 1, op: 'forget', opId, recordedAt, source, factId: target() };
    else if (r < 0.98) entry = { v: 1, op: 'entity', opId, recordedAt, source, entity: { id: `s${Math.floor(rnd() * 30)}`, aliases: [`alias${Math.floor(rnd() * 40)}`] } };
    else entry = { v: 1, op: 'marker', opId, recordedAt, source, kind: 'epoch', epoch: i, node: source.node };
    log.push({ seq, entry });
  }
  return log;
}
