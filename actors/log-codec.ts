/**
 * How log entries sit in a shard's JetStream stream: plain msgpack, readable by any language's msgpack library.
 * A message holds one `LogEntry` (with `v: 1`), or a group of them — `{ v: 1, op: 'batch', opId, recordedAt,
 * entries: [LogEntry…] }` — when the leader grouped concurrent writes into one append (group commit, decisions §26).
 * A message that does not decode to either is skipped by every replica alike; the store judges each entry inside.
 */
import { createHash } from 'node:crypto';
import { Packr } from 'msgpackr';
import type { BatchEntry, LogEntry, LogMessage } from '../shards/index.ts';

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false, int64AsType: 'number' });

const OPS = new Set(['assert', 'reinforce', 'retract', 'forget', 'entity', 'marker', 'prune', 'batch']);

export function encodeEntry(entry: LogMessage): Uint8Array {
  return packr.pack(entry);
}

/**
 * The bytes of `{ v: 1, op: 'batch', opId, recordedAt, entries }` built from entries already encoded one by one
 * (msgpack composes: an array is its header followed by its items' bytes), so grouping costs no second encoding.
 * `decodeEntry` of the result gives the same value as `encodeEntry` of the object would.
 */
const ENTRIES_KEY = packr.pack('entries');

export function encodeBatch(opId: string, recordedAt: number, encodedEntries: readonly Uint8Array[]): Uint8Array {
  const head = packr.pack({ v: 1, op: 'batch', opId, recordedAt });
  const n = encodedEntries.length;
  // The head is a map of 4 (msgpackr writes map16, `de 00 04`; a fixmap `84` is handled too); the batch is the
  // same map with a fifth key, `entries`, last.
  const fixmap = head[0] === 0x84;
  if (!fixmap && !(head[0] === 0xde && head[1] === 0 && head[2] === 4)) throw new Error('unexpected msgpack map header for a batch');
  const key = ENTRIES_KEY;
  const arrayHeader = n < 16 ? [0x90 | n] : n < 0x10000 ? [0xdc, n >> 8, n & 0xff] : [0xdd, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
  let size = head.length + key.length + arrayHeader.length;
  for (const e of encodedEntries) size += e.length;
  const out = new Uint8Array(size);
  out.set(head, 0);
  if (fixmap) out[0] = 0x85;
  else out[2] = 5;
  let at = head.length;
  out.set(key, at);
  at += key.length;
  out.set(arrayHeader, at);
  at += arrayHeader.length;
  for (const e of encodedEntries) {
    out.set(e, at);
    at += e.length;
  }
  return out;
}

/** The entry or group, or undefined when the bytes are not a version-1 log message (a foreign or corrupt one). */
export function decodeEntry(data: Uint8Array): LogMessage | undefined {
  try {
    const value = packr.unpack(data) as Partial<LogEntry> | Partial<BatchEntry> | null;
    if (!value || typeof value !== 'object' || value.v !== 1) return undefined;
    if (typeof value.op !== 'string' || !OPS.has(value.op) || typeof value.opId !== 'string') return undefined;
    if (typeof value.recordedAt !== 'number') return undefined;
    return value as LogMessage;
  } catch {
    return undefined;
  }
}

/**
 * The entries a log message carries, in order: itself, or a group's members that are objects (the store judges the
 * rest of their shape; a member that is not even an object is nothing a caller can look into).
 */
export function entriesOf(message: LogMessage): readonly LogEntry[] {
  if (message.op !== 'batch') return [message];
  if (!Array.isArray(message.entries)) return [];
  const members: unknown[] = message.entries;
  return members.every(isEntryObject) ? (members as LogEntry[]) : (members.filter(isEntryObject) as LogEntry[]);
}

function isEntryObject(x: unknown): boolean {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
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
