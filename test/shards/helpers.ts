/**
 * Test helpers for shard stores: temp dirs that are always removed, and log entries with defaults.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FactInput, LogEntry, Source } from '../../shards/index.ts';

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
