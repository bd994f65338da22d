/**
 * Where a shard's snapshots live: the JetStream Object Store bucket `sm_snap_<domain>` (replicated like the log),
 * one object per snapshot, named by the log sequence it holds, with what a replica needs to trust it in the object's
 * metadata. Upload streams the LMDB copy from disk; download streams it to disk (nats.js checks the object's
 * SHA-256 as it reads). Works on nats-server 2.9.x: Object Store needs 2.6.3, and the metadata travels in the
 * object's own meta message, not in stream metadata (2.10).
 */
import { createWriteStream } from 'node:fs';
import { open as openFile } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { JetStreamClient, JetStreamManager, ObjectInfo, ObjectStore } from 'nats';
import { ErrorCode, ShardmindError, snapshotBucket } from '../protocol/index.ts';

/** What a snapshot is, as stored with it. Every field is checked by the replica that installs it. */
export interface SnapshotMeta {
  readonly v: 1;
  readonly domain: string;
  /** The log sequence the store had applied: the snapshot holds every entry up to and including it. */
  readonly seq: number;
  /** `entryHash` of the log entry at `seq` (the store's `tailHash()`): the chain check's start after install. */
  readonly tailHash: string;
  /** The store's layout version (`meta/format`): a replica of another format cannot use the file. */
  readonly format: number;
  /** The store's content digest (`ShardStore.digest()`): equal on every replica at `seq`. */
  readonly digest: string;
  /** The latest leadership marker in the store, and the node that took the snapshot. */
  readonly epoch: number;
  readonly node: string;
  readonly takenAt: string;
  /** Size of the LMDB file in bytes. */
  readonly bytes: number;
  /**
   * The log level of the build that took it (`log-level.ts`): the store may hold what messages up to that level did,
   * so a replica that understands less does not install it (it stops in `needsUpgrade`). Absent from snapshots taken
   * before levels: every such build understood level 2 (compaction came after group commit).
   */
  readonly logLevel?: number;
}

/** A snapshot as listed: its metadata and the object's name and SHA-256 (checked on download). */
export interface StoredSnapshot {
  readonly name: string;
  readonly meta: SnapshotMeta;
  readonly objectDigest: string;
}

/** Bytes read from the file per chunk handed to nats.js (its own chunks are 128 KiB). */
const READ_BYTES = 128 * 1024;
/** Bytes uploaded between two waits for the server to have taken them (see `put`). */
const PACE_BYTES = 8 * 1024 * 1024;
/** Each chunk's acknowledgement may take this long: JetStream stores a large object behind other writes. */
const CHUNK_ACK_TIMEOUT_MS = 30_000;

/** JetStream's "stream not found". */
const STREAM_NOT_FOUND = 10059;

/** Object names sort by sequence (zero-padded) so a listing reads oldest first. */
export function snapshotName(seq: number): string {
  return `snapshot-${String(seq).padStart(15, '0')}`;
}

export class SnapshotBucket {
  private constructor(
    readonly domain: string,
    private readonly os: ObjectStore,
    private readonly flush: (() => Promise<void>) | undefined,
  ) {}

  /**
   * Opens (creating on first use) the domain's bucket with `replicas` copies. `flush` (the connection's) paces
   * uploads; without it an upload hands nats.js the whole file at once. `bucket`: another bucket holding snapshots
   * of the domain that replicas never install from (`shardmind backup`'s transfer bucket, `backup.ts`).
   */
  static async open(js: JetStreamClient, domain: string, replicas: number, flush?: () => Promise<void>, bucket = snapshotBucket(domain)): Promise<SnapshotBucket> {
    try {
      const os = await withHandledPublishes(js).views.os(bucket, { replicas, description: `shardmind snapshots of ${domain}` });
      return new SnapshotBucket(domain, os, flush);
    } catch (err) {
      throw new ShardmindError(ErrorCode.UNAVAILABLE, `cannot open the snapshot bucket of ${domain}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
  }

  /**
   * Uploads the LMDB file at `file` as the snapshot `meta` describes, and returns it as stored once JetStream has
   * acknowledged every chunk and the meta message (each an acknowledged, replicated publish).
   */
  async put(file: string, meta: SnapshotMeta, name = snapshotName(meta.seq)): Promise<StoredSnapshot> {
    const handle = await openFile(file, 'r');
    let offset = 0;
    let sinceFlush = 0;
    const flush = this.flush;
    // nats.js publishes each chunk as soon as it has read it and awaits the acks only at the end, each with its own
    // timeout from the moment it was sent: handed a 100 MB file at once, it queued all of it in memory and the last
    // chunks' acks came close to the default 5 s. Reading waits for the server to have taken every PACE_BYTES.
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (flush && sinceFlush >= PACE_BYTES) {
          await flush();
          sinceFlush = 0;
        }
        const buf = Buffer.allocUnsafe(READ_BYTES);
        const { bytesRead } = await handle.read(buf, 0, READ_BYTES, offset);
        if (bytesRead === 0) {
          controller.close();
          return;
        }
        offset += bytesRead;
        sinceFlush += bytesRead;
        controller.enqueue(buf.subarray(0, bytesRead));
      },
    });
    try {
      const info = await this.os.put(
        { name, description: `${this.domain} at seq ${meta.seq}`, metadata: toMetadata(meta) },
        body,
        { timeout: CHUNK_ACK_TIMEOUT_MS },
      );
      return { name: info.name, meta, objectDigest: info.digest };
    } finally {
      await handle.close();
    }
  }

  /**
   * The domain's bucket if it exists, without creating it: a replica looking for a snapshot, or a leader asking where
   * the newest one is, must not add a replicated stream per domain that never compacted.
   */
  static async find(js: JetStreamClient, jsm: JetStreamManager, domain: string, replicas: number): Promise<SnapshotBucket | undefined> {
    try {
      // nats.js names an Object Store's stream `OBJ_<bucket>`.
      await jsm.streams.info(`OBJ_${snapshotBucket(domain)}`);
    } catch (err) {
      if ((err as { api_error?: { err_code?: number } }).api_error?.err_code === STREAM_NOT_FOUND) return undefined;
      throw err;
    }
    return SnapshotBucket.open(js, domain, replicas);
  }

  /** Every readable snapshot, oldest first; objects whose metadata is not a snapshot's are left out. */
  async list(): Promise<StoredSnapshot[]> {
    const infos = await this.os.list();
    const out: StoredSnapshot[] = [];
    for (const info of infos) {
      const s = fromInfo(this.domain, info);
      if (s) out.push(s);
    }
    return out.sort((a, b) => a.meta.seq - b.meta.seq);
  }

  /** The newest snapshot, if any. */
  async newest(): Promise<StoredSnapshot | undefined> {
    return (await this.list()).at(-1);
  }

  /** The stored object's info now (undefined when missing): proof that an upload is readable. */
  async stat(name: string): Promise<StoredSnapshot | undefined> {
    const info = await this.os.info(name);
    return info ? fromInfo(this.domain, info) : undefined;
  }

  /**
   * Streams the snapshot to `file`. Rejects when the object is missing, short, or its SHA-256 differs from the one
   * stored with it (nats.js checks it while reading and fails the stream).
   */
  async download(s: StoredSnapshot, file: string): Promise<void> {
    const result = await this.os.get(s.name);
    if (!result) throw new ShardmindError(ErrorCode.NOT_FOUND, `snapshot ${s.name} of ${this.domain} is gone`);
    if (result.info.digest !== s.objectDigest) {
      throw new ShardmindError(ErrorCode.UNAVAILABLE, `snapshot ${s.name} of ${this.domain} was replaced while it was read`);
    }
    await pipeline(Readable.fromWeb(result.data as unknown as WebReadableStream<Uint8Array>), createWriteStream(file));
    const failed = await result.error;
    if (failed) throw failed;
  }

  /** Deletes one object (a backup's, once downloaded). */
  async remove(name: string): Promise<void> {
    await this.os.delete(name);
  }

  /** Deletes all but the newest `keep` snapshots; returns the names deleted. */
  async prune(keep: number): Promise<string[]> {
    const all = await this.list();
    const old = all.slice(0, Math.max(0, all.length - keep));
    for (const s of old) await this.os.delete(s.name);
    return old.map((s) => s.name);
  }
}

/**
 * `js` with each `publish` promise marked handled as it is made. nats.js's `ObjectStore.put` publishes every chunk as
 * it reads it and awaits their acks only once the whole body is read: a chunk refused meanwhile (no responders while a
 * nats-server restarts, in the chaos soak, §75) rejected with no handler yet, and Node's unhandled-rejection rule ended
 * the host mid-compaction. The promise is returned as it is, so `put` still fails with that error when it awaits the
 * chunks (and `uploadWithRetry` tries again). The object inherits everything else from `js`.
 */
function withHandledPublishes(js: JetStreamClient): JetStreamClient {
  const handled = Object.create(js) as JetStreamClient;
  handled.publish = (...args: Parameters<JetStreamClient['publish']>) => {
    const ack = js.publish(...args);
    ack.catch(() => undefined);
    return ack;
  };
  return handled;
}

function toMetadata(meta: SnapshotMeta): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta)) out[k] = String(v);
  return out;
}

/** Reads a snapshot's metadata back; undefined when a field is missing or malformed (not a snapshot of this domain). */
function fromInfo(domain: string, info: ObjectInfo): StoredSnapshot | undefined {
  const m = info.metadata ?? {};
  const int = (k: string): number | undefined => {
    const n = Number(m[k]);
    return m[k] !== undefined && Number.isSafeInteger(n) && n >= 0 ? n : undefined;
  };
  const seq = int('seq');
  const format = int('format');
  const epoch = int('epoch');
  const bytes = int('bytes');
  const logLevel = int('logLevel');
  const { tailHash, digest, node, takenAt } = m;
  if (info.deleted || m['domain'] !== domain || m['v'] !== '1') return undefined;
  if (seq === undefined || format === undefined || epoch === undefined || bytes === undefined) return undefined;
  if (!tailHash || !digest || node === undefined || takenAt === undefined) return undefined;
  return {
    name: info.name,
    objectDigest: info.digest,
    meta: { v: 1, domain, seq, tailHash, format, digest, epoch, node, takenAt, bytes, ...(logLevel !== undefined && logLevel >= 1 ? { logLevel } : {}) },
  };
}
