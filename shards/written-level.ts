/**
 * The highest log level the log's entries said they were written at (`level` on an `assert` or `entity`, from log
 * level 4 on: decisions §71), kept in the store so that a new leader knows it from its first write (§78).
 *
 * Why: a replica below that level stops at the first such entry (`needsUpgrade`), and that entry is already in the log;
 * so a leader that takes over may write at that level at once, instead of at a lower one until its census of the
 * replicas has heard every peer (about three seconds with a Mini down, the usual failover), during which new entries
 * lost level 4's rules. Nothing in memory and nothing in a process's history can say it after a restart or a snapshot
 * install; the store can, since it applied the log.
 *
 * Stored under the `meta` key `writtenLevel` as msgpack of the number, put in the transaction of the message that
 * raised it, whatever apply did with the entry (a rejected entry is in the log all the same). Equal logs, equal bytes:
 * it is part of the digest. A store that never applied such an entry has no record, so older logs replay to the same
 * bytes as before (the `cardinalities` record of §52 came the same way, without a format change).
 */
import { decodeValue, encodeValue } from './codec.ts';
import type { LogMessage } from './types.ts';

export const WRITTEN_LEVEL_KEY = 'writtenLevel';

/** What the store reads and writes the record through (its `meta` table). */
interface MetaTable {
  getBinary(key: string): Buffer | undefined;
  putSync(key: string, value: Buffer | Uint8Array): unknown;
}

export class WrittenLevel {
  private highest: number | undefined;
  /** Raised since the last `write`: the record is put with the batch that raised it. */
  private dirty = false;

  /** Reads the record as committed (at open, and after a failed batch: what ran ahead is dropped). */
  load(meta: MetaTable): void {
    const bytes = meta.getBinary(WRITTEN_LEVEL_KEY);
    this.highest = bytes === undefined ? undefined : decodeValue<number>(bytes);
    this.dirty = false;
  }

  /** The highest level an applied entry said it was written at, or undefined when none said one. */
  get level(): number | undefined {
    return this.highest;
  }

  /** Records the level `message` (or a member of it, for a group) says it was written at. */
  note(message: LogMessage): void {
    if (!isObject(message)) return;
    if (message.op !== 'batch') this.raise(message);
    else if (Array.isArray(message.entries)) for (const e of message.entries) this.raise(e);
  }

  /** Puts the record when it was raised (inside the batch's transaction). */
  write(meta: MetaTable): void {
    if (!this.dirty || this.highest === undefined) return;
    meta.putSync(WRITTEN_LEVEL_KEY, encodeValue(this.highest));
    this.dirty = false;
  }

  private raise(entry: unknown): void {
    if (!isObject(entry) || (entry['op'] !== 'assert' && entry['op'] !== 'entity')) return;
    const level = entry['level'];
    // The shape validation accepts (validate.ts): anything else is a malformed entry, and says nothing.
    if (typeof level !== 'number' || !Number.isSafeInteger(level) || level < 1) return;
    if (this.highest !== undefined && level <= this.highest) return;
    this.highest = level;
    this.dirty = true;
  }
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null;
}
