/**
 * How log entries sit in a shard's JetStream stream: plain msgpack of the `LogEntry` (with `v: 1`), readable by
 * any language's msgpack library. A message that does not decode to an entry is skipped by every replica alike.
 */
import { Packr } from 'msgpackr';
import type { LogEntry } from '../shards/index.ts';

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false, int64AsType: 'number' });

const OPS = new Set(['assert', 'reinforce', 'retract', 'forget', 'entity', 'marker']);

export function encodeEntry(entry: LogEntry): Uint8Array {
  return packr.pack(entry);
}

/** The entry, or undefined when the bytes are not a version-1 log entry (a foreign or corrupt message). */
export function decodeEntry(data: Uint8Array): LogEntry | undefined {
  try {
    const value = packr.unpack(data) as Partial<LogEntry> | null;
    if (!value || typeof value !== 'object' || value.v !== 1) return undefined;
    if (typeof value.op !== 'string' || !OPS.has(value.op) || typeof value.opId !== 'string') return undefined;
    if (typeof value.recordedAt !== 'number') return undefined;
    return value as LogEntry;
  } catch {
    return undefined;
  }
}
