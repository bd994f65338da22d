/**
 * Log compaction by snapshot, leader side: copy the store at its applied sequence `s`, check that the copy's last
 * entry is the log's, upload it to the domain's snapshot bucket, confirm it is stored, and only then purge the log
 * below `s` (keeping `retainEntries` before it, so replicas a little behind catch up from the log rather than a
 * download). Old snapshots beyond `keepSnapshots` are deleted last.
 *
 * Why the leader takes it: every entry a leader applied is one the log acknowledged (its pipeline applies only what
 * JetStream acked, in order), so its copy cannot hold an entry the log did not keep — a follower's can, briefly
 * (see docs/decisions.md §16). The copy itself is LMDB's, on lmdb-js's worker thread, and the reading of it is in a
 * worker thread (snapshot-file.ts): the leader's event loop only streams the file to JetStream.
 *
 * No acknowledged write is lost: an acknowledged write is in the log at some seq ≤ the leader's applied position
 * when it is acknowledged; the purge removes only entries ≤ `s`, and runs after the snapshot holding all of them is
 * stored (every chunk and the meta message are acknowledged, replicated publishes) and listed back.
 */
import { rmSync, statSync, statfsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { JetStreamClient, JetStreamManager } from 'nats';
import { ErrorCode, ShardmindError, logStream } from '../protocol/index.ts';
import type { ShardStoreOptions } from '../shards/index.ts';
import type { Clock } from './clock.ts';
import { SnapshotBucket, type SnapshotMeta } from './snapshot-bucket.ts';
import { DATA_FILE, copyStore, fileBytes, inspectStoreCopy } from './snapshot-file.ts';

export interface CompactOptions {
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly domain: string;
  readonly node: string;
  /** Replicas of the snapshot bucket (the log's). */
  readonly replicas: number;
  /** The open store's directory, and the options to open a copy of it with. */
  readonly storePath: string;
  readonly storeOptions: Omit<ShardStoreOptions, 'path'>;
  /** Entries kept in the log below the snapshot's sequence. */
  readonly retainEntries: number;
  /** Snapshots kept in the bucket (≥ 1). */
  readonly keepSnapshots: number;
  /** The log level of this build, recorded in the snapshot (`SnapshotMeta.logLevel`). */
  readonly logLevel?: number;
  /** The connection's flush: paces the upload (see `SnapshotBucket.put`). */
  flush?(): Promise<void>;
  /** `entryHash` of the log's entry at `seq`, from the stream leader (undefined when it cannot say). */
  logHashAt(seq: number): Promise<string | undefined>;
  readonly clock: Clock;
  log(line: string): void;
}

/** What `sm.ctl.<node>.compact` answers. */
export interface CompactReport {
  readonly v: 1;
  readonly domain: string;
  readonly node: string;
  /** The snapshot's sequence (0: the store was empty, nothing was done). */
  readonly seq: number;
  readonly snapshot?: string;
  readonly bytes?: number;
  /** The log's first sequence after the purge, and how many entries the purge removed. */
  readonly firstSeq: number;
  readonly purged: number;
  /**
   * The log's last sequence after the purge, and the entries kept up to the snapshot (`compaction.retainEntries`):
   * with them the CLI says why a compaction purged nothing (absent from older hosts).
   */
  readonly lastSeq?: number;
  readonly retainEntries?: number;
  /** Older snapshots deleted. */
  readonly pruned: readonly string[];
  readonly ms: number;
}

/**
 * Where a compaction copies the store: beside it (no extension: lmdb-js would take the path for a file); uploaded,
 * then removed — and removed at the next start if a crash came first.
 */
export function snapshotCopyDir(storePath: string, domain: string): string {
  return join(dirname(storePath), `${domain}-snapshot`);
}

const MiB = 1024 * 1024;
/**
 * Free space a snapshot copy must leave beside it: the live store keeps committing while the copy is written, and
 * a commit that finds the disk full fails (docs/decisions.md §62). 16 MiB, or a tenth of the store if more.
 */
export function copyMarginBytes(storeBytes: number): number {
  return Math.max(16 * MiB, Math.ceil(storeBytes / 10));
}

/**
 * Why the filesystem under `copyDir` has no room for a copy of the store at `storePath` (its data file, plus
 * `copyMarginBytes`), or undefined when it has. A copy that filled the disk made the live store's commits fail: a
 * leader went down with half its disk holding live data (review session 11b, finding 3).
 */
export function copySpaceShortfall(storePath: string, copyDir: string): string | undefined {
  const storeBytes = statSync(join(storePath, DATA_FILE)).size;
  const fs = statfsSync(dirname(copyDir));
  const free = fs.bavail * fs.bsize;
  const needed = storeBytes + copyMarginBytes(storeBytes);
  if (free >= needed) return undefined;
  const mib = (bytes: number): string => (bytes / MiB).toFixed(1);
  return (
    `${mib(free)} MiB free under ${dirname(copyDir)}, and a snapshot copy needs ${mib(needed)} MiB ` +
    `(the store's ${mib(storeBytes)} MiB and ${mib(needed - storeBytes)} MiB to spare); the log keeps its entries until there is room`
  );
}

/** What `snapshotStore` needs: the store, how to open its copy, and how to ask the log for an entry's hash. */
export type SnapshotStoreOptions = Pick<CompactOptions, 'domain' | 'node' | 'storePath' | 'storeOptions' | 'logLevel' | 'logHashAt' | 'clock' | 'log'>;

/**
 * Copies the store into `copyDir` and reads what the copy holds: the data file and the snapshot's metadata, checked
 * against the log (the copy's last entry must be the log's own at its seq); undefined when the store is empty. The
 * first half of a compaction, and all of a backup (`backup.ts`). `step` names the step under way, for errors.
 * Throws `ShardmindError` (UNAVAILABLE when the disk has no room for the copy or the log cannot be asked); `doing` goes into them.
 */
export async function snapshotStore(
  o: SnapshotStoreOptions,
  copyDir: string,
  doing: 'compacting' | 'backing up',
  step: (name: string) => void = () => undefined,
): Promise<{ file: string; meta: SnapshotMeta } | undefined> {
  step('copy the store');
  // Checked before the copy: it would compete with the live store's commits for the last bytes of the disk.
  const shortfall = copySpaceShortfall(o.storePath, copyDir);
  if (shortfall !== undefined) {
    o.log(`not ${doing}: ${shortfall}`);
    throw new ShardmindError(ErrorCode.UNAVAILABLE, `not ${doing} ${o.domain}: ${shortfall}`);
  }
  const file = await copyStore(o.storePath, copyDir);
  step('read the copy');
  const facts = await inspectStoreCopy(copyDir, o.storeOptions);
  if (facts.appliedSeq === 0) return undefined;
  if (facts.tailHash === undefined || facts.format === undefined) {
    throw new ShardmindError(ErrorCode.INTERNAL, `the ${o.domain} store at seq ${facts.appliedSeq} has no recorded tail hash or format; not ${doing} it`);
  }
  // The copy's last entry must be the log's own: the snapshot's tail hash is where every installing replica's chain
  // check starts.
  step('check the copy against the log');
  const logged = await o.logHashAt(facts.appliedSeq);
  if (logged === undefined) throw new ShardmindError(ErrorCode.UNAVAILABLE, `cannot read seq ${facts.appliedSeq} of ${logStream(o.domain)} to check the snapshot`);
  if (logged !== facts.tailHash) {
    throw new ShardmindError(ErrorCode.INTERNAL, `the ${o.domain} store's entry at seq ${facts.appliedSeq} is not the log's; not ${doing} it`);
  }
  const meta: SnapshotMeta = {
    v: 1,
    domain: o.domain,
    seq: facts.appliedSeq,
    tailHash: facts.tailHash,
    format: facts.format,
    digest: facts.digest,
    epoch: facts.epoch,
    node: o.node,
    takenAt: new Date(o.clock.now()).toISOString(),
    bytes: fileBytes(file),
    ...(o.logLevel !== undefined ? { logLevel: o.logLevel } : {}),
  };
  return { file, meta };
}

/** Takes a snapshot of the store and purges the log below it. Throws `ShardmindError` when it cannot. */
export async function compactShard(o: CompactOptions): Promise<CompactReport> {
  const started = o.clock.now();
  const stream = logStream(o.domain);
  const copyDir = snapshotCopyDir(o.storePath, o.domain);
  // Which step failed goes into the error: "TIMEOUT" alone does not tell an operator where to look.
  let step = 'copy the store';
  try {
    const taken = await snapshotStore(o, copyDir, 'compacting', (name) => (step = name));
    if (taken === undefined) {
      const info = await o.jsm.streams.info(stream);
      return { v: 1, domain: o.domain, node: o.node, seq: 0, firstSeq: info.state.first_seq, purged: 0, pruned: [], ms: o.clock.now() - started };
    }
    const { file, meta } = taken;
    step = 'open the snapshot bucket';
    const bucket = await SnapshotBucket.open(o.js, o.domain, o.replicas, o.flush ? () => o.flush!() : undefined);
    step = 'upload the snapshot';
    const stored = await uploadWithRetry(bucket, file, meta, o.log);
    step = 'read the snapshot back';
    // Stored and readable: listed back with the same content digest before a single entry is purged.
    const back = await bucket.stat(stored.name);
    if (!back || back.objectDigest !== stored.objectDigest || back.meta.seq !== meta.seq) {
      throw new ShardmindError(ErrorCode.UNAVAILABLE, `snapshot ${stored.name} of ${o.domain} could not be read back; the log was not purged`);
    }
    step = 'purge the log';
    const keepFrom = Math.max(1, meta.seq + 1 - o.retainEntries);
    const before = await o.jsm.streams.info(stream);
    let purged = 0;
    if (keepFrom > before.state.first_seq) {
      // `seq`: removes every message below it, keeps it and later.
      purged = (await o.jsm.streams.purge(stream, { seq: keepFrom })).purged;
    }
    const after = await o.jsm.streams.info(stream);
    step = 'delete older snapshots';
    const pruned = await bucket.prune(Math.max(1, o.keepSnapshots));
    const report: CompactReport = {
      v: 1,
      domain: o.domain,
      node: o.node,
      seq: meta.seq,
      snapshot: stored.name,
      bytes: meta.bytes,
      firstSeq: after.state.first_seq,
      purged,
      lastSeq: after.state.last_seq,
      retainEntries: o.retainEntries,
      pruned,
      ms: o.clock.now() - started,
    };
    o.log(`compacted: snapshot ${stored.name} (${meta.bytes} bytes) at seq ${meta.seq}; log starts at ${report.firstSeq} (${purged} purged)`);
    return report;
  } catch (err) {
    if (err instanceof ShardmindError) throw err;
    throw new ShardmindError(ErrorCode.UNAVAILABLE, `compacting ${o.domain} failed (${step}): ${(err as Error)?.message ?? String(err)}`, { cause: err });
  } finally {
    rmSync(copyDir, { recursive: true, force: true });
  }
}

/** Upload attempts when JetStream does not acknowledge in time. */
const UPLOAD_ATTEMPTS = 3;

/**
 * `bucket.put`, tried again when JetStream times out: the first compaction of a domain creates its bucket, an R3
 * stream whose Raft group may still be electing a leader when the first chunks arrive (seen on a loaded 3-node
 * test cluster: the upload's acks timed out, the next try went through). Putting the same name again replaces
 * the object, so a retry cannot leave two snapshots at one sequence.
 */
async function uploadWithRetry(bucket: SnapshotBucket, file: string, meta: SnapshotMeta, log: (line: string) => void) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await bucket.put(file, meta);
    } catch (err) {
      const timedOut = (err as { code?: unknown })?.code === 'TIMEOUT' || /TIMEOUT|timed out/i.test((err as Error)?.message ?? '');
      if (!timedOut || attempt >= UPLOAD_ATTEMPTS) throw err;
      log(`snapshot upload of ${meta.domain} at seq ${meta.seq} timed out (attempt ${attempt}); trying again`);
    }
  }
}
