/**
 * How log entries sit in a shard's JetStream stream: plain msgpack of the `LogEntry` (with `v: 1`), readable by
 * any language's msgpack library. A message that does not decode to an entry is skipped by every replica alike.
 */
import { createHash } from 'node:crypto';
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

/**
 * The header each append carries with `entryHash` of the log entry before it (when the appender knows it): a chain
 * that lets a replica notice that the message it applied at some seq is not the one the log kept there. nats-server
 * 2.9 was seen delivering, right after a frozen server resumed, a message its majority never committed (a deposed
 * leader's append at a seq the new leader's epoch marker took); the next entry's `Sm-Prev` then disagrees.
 */
export const PREV_HEADER = 'Sm-Prev';

/** A short, stable fingerprint of a log message's bytes (96 bits of SHA-1; collisions only hide a fork). */
export function entryHash(data: Uint8Array): string {
  return createHash('sha1').update(data).digest('base64url').slice(0, 16);
}
