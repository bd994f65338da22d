/**
 * `shardmind backup`, leader side: the first half of a compaction without its purge. The leader copies its store at
 * its applied sequence `s` (LMDB's consistent copy while writes go on), checks that the copy's last entry is the log's
 * own at `s`, and uploads it to the domain's backup bucket `sm_backup_<domain>`, from which the CLI downloads it into
 * a backup file and then deletes it (`cli/backup.ts`).
 *
 * Why not the snapshot bucket: replicas install the newest object there, a compaction prunes by count there, and the
 * automatic trigger counts from the newest snapshot; a backup must change none of that. Why one replica: the object
 * lives only until the CLI has read it; the file is the backup.
 */
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { JetStreamClient } from 'nats';
import { ErrorCode, ShardmindError } from '../protocol/index.ts';
import { snapshotStore, type SnapshotStoreOptions } from './compaction.ts';
import { SnapshotBucket, type SnapshotMeta } from './snapshot-bucket.ts';

/** The JetStream Object Store a domain's backups pass through on their way to the CLI. */
export const backupBucket = (domain: string): string => `sm_backup_${domain}`;

/** Replicas of the backup bucket: its objects are transient (see the file's header). */
export const BACKUP_BUCKET_REPLICAS = 1;

export interface BackupOptions extends SnapshotStoreOptions {
  readonly js: JetStreamClient;
  /** The connection's flush: paces the upload (see `SnapshotBucket.put`). */
  flush?(): Promise<void>;
}

/** What `sm.ctl.<node>.backup` answers. */
export interface BackupReport {
  readonly v: 1;
  readonly domain: string;
  readonly node: string;
  /** The backup's sequence (0: the store was empty, nothing was uploaded). */
  readonly seq: number;
  /** Where the CLI downloads it from, and the object's SHA-256 as JetStream stored it. */
  readonly bucket?: string;
  readonly object?: string;
  readonly objectDigest?: string;
  readonly meta?: SnapshotMeta;
  readonly ms: number;
}

/**
 * Where a backup copies the store: beside it, apart from a compaction's copy (the two may run at once); removed after
 * the upload, and at the next start if a crash came first.
 */
export function backupCopyDir(storePath: string, domain: string): string {
  return join(dirname(storePath), `${domain}-backup`);
}

/** The object's name: its sequence (zero-padded, so a listing reads oldest first) and when it was taken. */
export function backupObjectName(seq: number, at: number): string {
  return `backup-${String(seq).padStart(15, '0')}-${at}`;
}

/** Copies the store and uploads it to the backup bucket. Throws `ShardmindError` when it cannot. */
export async function backupShard(o: BackupOptions): Promise<BackupReport> {
  const started = o.clock.now();
  const copyDir = backupCopyDir(o.storePath, o.domain);
  let step = 'copy the store';
  try {
    const taken = await snapshotStore(o, copyDir, 'backing up', (name) => (step = name));
    if (taken === undefined) return { v: 1, domain: o.domain, node: o.node, seq: 0, ms: o.clock.now() - started };
    const { file, meta } = taken;
    step = 'open the backup bucket';
    const bucket = await SnapshotBucket.open(o.js, o.domain, BACKUP_BUCKET_REPLICAS, o.flush ? () => o.flush!() : undefined, backupBucket(o.domain));
    step = 'upload the backup';
    const stored = await bucket.put(file, meta, backupObjectName(meta.seq, started));
    o.log(`backup of ${o.domain} at seq ${meta.seq} (${meta.bytes} bytes) uploaded as ${stored.name}`);
    return {
      v: 1,
      domain: o.domain,
      node: o.node,
      seq: meta.seq,
      bucket: backupBucket(o.domain),
      object: stored.name,
      objectDigest: stored.objectDigest,
      meta,
      ms: o.clock.now() - started,
    };
  } catch (err) {
    if (err instanceof ShardmindError) throw err;
    throw new ShardmindError(ErrorCode.UNAVAILABLE, `backing up ${o.domain} failed (${step}): ${(err as Error)?.message ?? String(err)}`, { cause: err });
  } finally {
    rmSync(copyDir, { recursive: true, force: true });
  }
}
