/**
 * Bootstrap from a snapshot: what a replica does when the log no longer holds the entry it needs next (the log was
 * compacted below `appliedSeq + 1`), including a brand-new replica with nothing. It downloads the domain's newest
 * snapshot beside its store, checks it (the object's SHA-256 while reading; then, opened in a worker, that the copy
 * is this version's format and holds exactly the sequence, tail hash and content digest the snapshot names), and
 * only then swaps it in for its store:
 *
 *   <store>-incoming/  ← download, fsync, verify
 *   <store>  → <store>-replaced     (rename)
 *   <store>-incoming → <store>      (rename)
 *   rm <store>-replaced
 *
 * At every instant the store's path holds the old store, nothing, or the whole verified new one: a crash midway
 * leaves no half store. Nothing there is an empty store, which needs a snapshot again; leftovers are removed at the
 * next open (`clearInstallLeftovers`). The caller then reopens the store (its tail hash comes with it) and catches
 * up from the snapshot's sequence + 1 as usual.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ErrorCode, ShardmindError } from '../protocol/index.ts';
import { FORMAT, type ShardStoreOptions } from '../shards/index.ts';
import { NeedsUpgradeError } from './log-level.ts';
import type { SnapshotBucket, SnapshotMeta } from './snapshot-bucket.ts';
import { DATA_FILE, inspectStoreCopy } from './snapshot-file.ts';

export interface InstallOptions {
  readonly bucket: SnapshotBucket;
  /** The store's directory and the options it is opened with. */
  readonly storePath: string;
  readonly storeOptions: Omit<ShardStoreOptions, 'path'>;
  /** The log's first sequence now: the snapshot must reach at least the entry before it. */
  readonly logFirstSeq: number;
  /** This replica's applied sequence: a snapshot not past it is of no use. */
  readonly position: number;
  /**
   * The log level this build understands. A snapshot holds what every message up to its seq did, at the level of
   * the build that took it (`SnapshotMeta.logLevel`, absent: 2): one above this is refused with `NeedsUpgradeError`
   * before anything is downloaded. Checked on the very listing that is installed, so a compaction in between cannot
   * slip an unchecked snapshot in.
   */
  readonly logLevel: number;
  /** Closes the current store (called once the new one is verified, right before the swap). */
  closeStore(): Promise<void>;
  log(line: string): void;
}

/**
 * The newest snapshot is of another store format than this build reads. Installing it is impossible and retrying
 * does not help (until a replica of this version takes a snapshot, which a failed bootstrap cannot wait for), so the
 * shard machine fails on it with this message rather than back off and try again.
 */
export class SnapshotFormatError extends Error {
  override readonly name = 'SnapshotFormatError';
  constructor(
    readonly domain: string,
    readonly snapshot: string,
    readonly seq: number,
    readonly found: number,
    readonly expected: number,
  ) {
    const remedy =
      found > expected
        ? 'upgrade shardmind on this Mini'
        : `run the version that took it, or restart this shard once a replica on this version has taken a newer snapshot`;
    super(`the newest ${domain} snapshot ${snapshot} (seq ${seq}) is store format ${found}, this version reads format ${expected}: not downloaded; ${remedy}`);
  }
}

// Not `<store>.incoming`: lmdb-js takes a path with an extension for a file, not an environment directory. Domain
// names hold no `-`, so these never collide with another domain's store.
const incomingDir = (storePath: string): string => `${storePath}-incoming`;
const replacedDir = (storePath: string): string => `${storePath}-replaced`;

/** Removes what an interrupted install left beside the store. */
export function clearInstallLeftovers(storePath: string): void {
  rmSync(incomingDir(storePath), { recursive: true, force: true });
  rmSync(replacedDir(storePath), { recursive: true, force: true });
}

/** Installs the newest snapshot in place of the store; resolves with what it installed. */
export async function installNewestSnapshot(o: InstallOptions): Promise<SnapshotMeta> {
  // A line per step, so a bootstrap that takes long says where it is (§81: one sat 57 s after "→ bootstrapping").
  o.log(`listing the ${o.bucket.domain} snapshots (the log starts at seq ${o.logFirstSeq}, this replica is at seq ${o.position})`);
  const listed = await o.bucket.list();
  const newest = listed.at(-1);
  if (!newest) {
    throw new ShardmindError(ErrorCode.UNAVAILABLE, `the ${o.bucket.domain} log starts at seq ${o.logFirstSeq} and there is no snapshot to start from`);
  }
  const { meta } = newest;
  o.log(`chose snapshot ${newest.name}, the newest of ${listed.length}: seq ${meta.seq}, ${meta.bytes} bytes, taken by ${meta.node} at ${meta.takenAt}`);
  const level = meta.logLevel ?? 2;
  if (level > o.logLevel) throw new NeedsUpgradeError(o.bucket.domain, meta.seq, level, o.logLevel, 'snapshot');
  // A snapshot is a byte copy of a store: one of another layout would be downloaded only for the check after it to
  // refuse it, again at every retry. Refused from its metadata instead, and for good (the shard fails).
  if (meta.format !== FORMAT) throw new SnapshotFormatError(o.bucket.domain, newest.name, meta.seq, meta.format, FORMAT);
  if (meta.seq + 1 < o.logFirstSeq) {
    throw new ShardmindError(ErrorCode.UNAVAILABLE, `the newest ${o.bucket.domain} snapshot (seq ${meta.seq}) does not reach the log, which starts at seq ${o.logFirstSeq}`);
  }
  if (meta.seq <= o.position) {
    throw new ShardmindError(ErrorCode.UNAVAILABLE, `the newest ${o.bucket.domain} snapshot (seq ${meta.seq}) is not past this replica (seq ${o.position})`);
  }
  const incoming = incomingDir(o.storePath);
  clearInstallLeftovers(o.storePath);
  mkdirSync(incoming, { recursive: true });
  try {
    const file = join(incoming, DATA_FILE);
    o.log(`downloading snapshot ${newest.name} (seq ${meta.seq}, ${meta.bytes} bytes)`);
    const started = Date.now();
    await o.bucket.download(newest, file);
    syncFile(file);
    o.log(`downloaded snapshot ${newest.name} in ${Date.now() - started} ms; checking the copy`);
    const facts = await inspectStoreCopy(incoming, o.storeOptions);
    const wrong =
      facts.format !== meta.format ? `format ${String(facts.format)}, not ${meta.format}`
      : facts.appliedSeq !== meta.seq ? `seq ${facts.appliedSeq}, not ${meta.seq}`
      : facts.tailHash !== meta.tailHash ? `tail hash ${String(facts.tailHash)}, not ${meta.tailHash}`
      : facts.digest !== meta.digest ? `content digest ${facts.digest}, not ${meta.digest}`
      : undefined;
    if (wrong) throw new ShardmindError(ErrorCode.INTERNAL, `snapshot ${newest.name} of ${o.bucket.domain} does not hold what it says: ${wrong}`);
    // lmdb-js left a lock file beside the copy while it was inspected; the store recreates its own.
    rmSync(join(incoming, 'lock.mdb'), { force: true });
    o.log(`installing snapshot ${newest.name}: the copy holds seq ${meta.seq} and its digest; swapping it in for the store`);
    await o.closeStore();
    if (existsSync(o.storePath)) renameSync(o.storePath, replacedDir(o.storePath));
    renameSync(incoming, o.storePath);
    syncDir(dirname(o.storePath));
    rmSync(replacedDir(o.storePath), { recursive: true, force: true });
    o.log(`installed snapshot ${newest.name}: seq ${meta.seq}, digest ${meta.digest.slice(0, 12)}…`);
    return meta;
  } catch (err) {
    rmSync(incoming, { recursive: true, force: true });
    throw err;
  }
}

/** The downloaded bytes on disk before the rename makes them the store. */
function syncFile(file: string): void {
  const fd = openSync(file, 'r+');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** The renames on disk (a directory's entries are synced through the directory). */
function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
