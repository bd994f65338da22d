/**
 * Where a shard's snapshots live: the JetStream Object Store bucket `sm_snap_<domain>` (replicated like the log),
 * one object per snapshot, named by the log sequence it holds, with what a replica needs to trust it in the object's
 * metadata. Upload streams the LMDB copy from disk; download writes it to disk and checks the object's SHA-256. Works on nats-server 2.9.x: Object Store needs 2.6.3, and the metadata travels in the
 * object's own meta message, not in stream metadata (2.10).
 *
 * Listing and downloading never wait on the server's count of what is pending (decisions §81): nats.js's
 * `ObjectStore.list()` and `get()` read through an ordered push consumer that ends only at a message the server says
 * has nothing pending after it, and on 2.9.10 that count is wrong after a nats-server of the stream restarts: a
 * listing placed on the restarted server named only the newest object, and consumers created there counted more
 * pending than there were objects, a listing that never ends (a replica sat in `bootstrapping` 57 s with no line
 * after it in the chaos soak, §75). So a listing asks the stream leader which meta subjects it holds and reads each one's
 * last message (requests, each with its timeout), and a download stops when it has the object's size, checks the
 * SHA-256 itself, and gives up when no byte has come for a while.
 */
import { createHash } from 'node:crypto';
import { open as openFile } from 'node:fs/promises';
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

/** Longest a listing may take, all its requests together (each has the connection's JetStream timeout too). */
const LIST_DEADLINE_MS = 30_000;
/** Meta messages read at once while listing. */
const LIST_READS_AT_ONCE = 16;
/**
 * Longest a download may go without a byte before it is given up (the bootstrap tries again, and says so). nats.js
 * notices a silent consumer after two missed 5 s heartbeats (10 s); a little past that, a new download is the
 * faster cure: the soak (§83) saw downloads get no byte for the whole of a 30 s bound right after the replica's own
 * nats-server restarted, and the next attempt finish in under 0.5 s.
 */
const DOWNLOAD_STALL_MS = 12_000;

/** JetStream's "stream not found" and "no message found". */
const STREAM_NOT_FOUND = 10059;
const NO_MESSAGE_FOUND = 10037;

/** Object names sort by sequence (zero-padded) so a listing reads oldest first. */
export function snapshotName(seq: number): string {
  return `snapshot-${String(seq).padStart(15, '0')}`;
}

/** An object's meta message as nats.js writes it (`ObjectInfo` without the bucket, which it adds when reading). */
type StoredObjectInfo = Pick<ObjectInfo, 'name' | 'digest' | 'deleted' | 'metadata'>;

export class SnapshotBucket {
  private constructor(
    readonly domain: string,
    private readonly os: ObjectStore,
    private readonly jsm: JetStreamManager,
    /** The bucket's name; nats.js names its stream `OBJ_<bucket>` and its meta subjects `$O.<bucket>.M.<name>`. */
    private readonly bucket: string,
    private readonly flush: (() => Promise<void>) | undefined,
    /** Longest a download may go without a byte (`DOWNLOAD_STALL_MS` unless a test asks for less). */
    private readonly downloadStallMs: number,
  ) {}

  /**
   * Opens (creating on first use) the domain's bucket with `replicas` copies. `flush` (the connection's) paces
   * uploads; without it an upload hands nats.js the whole file at once. `bucket`: another bucket holding snapshots
   * of the domain that replicas never install from (`shardmind backup`'s transfer bucket, `backup.ts`).
   * `downloadStallMs`: a shorter stall bound, so a test of it need not wait out the 12 s.
   */
  static async open(
    js: JetStreamClient,
    domain: string,
    replicas: number,
    flush?: () => Promise<void>,
    bucket = snapshotBucket(domain),
    options: { readonly downloadStallMs?: number } = {},
  ): Promise<SnapshotBucket> {
    try {
      const os = await withHandledPublishes(js).views.os(bucket, { replicas, description: `shardmind snapshots of ${domain}` });
      // The client's own options (its timeout, its API prefix), and no request to check the API: `os` just spoke to it.
      const jsm = await js.jetstreamManager(false);
      return new SnapshotBucket(domain, os, jsm, bucket, flush, options.downloadStallMs ?? DOWNLOAD_STALL_MS);
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

  /**
   * Every readable snapshot, oldest first; objects whose metadata is not a snapshot's are left out. Rejects with
   * UNAVAILABLE when the stream leader does not answer within `LIST_DEADLINE_MS` in all.
   */
  async list(): Promise<StoredSnapshot[]> {
    const metas = await withDeadline(this.readMetas(), LIST_DEADLINE_MS, `listing the snapshots of ${this.domain}`);
    const out: StoredSnapshot[] = [];
    for (const { info } of metas) {
      const s = fromInfo(this.domain, info);
      if (s) out.push(s);
    }
    return out.sort((a, b) => a.meta.seq - b.meta.seq);
  }

  /**
   * Each object's meta message, deleted objects' included, as the stream leader holds them: the meta subjects it has
   * (stream info, filtered) and the last message of each (a get by subject). Requests only, each bounded by the
   * connection's JetStream timeout, and no consumer (see the file's header).
   */
  private async readMetas(): Promise<{ subject: string; info: StoredObjectInfo }[]> {
    const stream = `OBJ_${this.bucket}`;
    const si = await this.jsm.streams.info(stream, { subjects_filter: `$O.${this.bucket}.M.>` });
    const subjects = Object.keys(si.state.subjects ?? {});
    const out: { subject: string; info: StoredObjectInfo }[] = [];
    for (let i = 0; i < subjects.length; i += LIST_READS_AT_ONCE) {
      const read = await Promise.all(
        subjects.slice(i, i + LIST_READS_AT_ONCE).map(async (subject) => {
          try {
            const m = await this.jsm.streams.getMessage(stream, { last_by_subj: subject });
            return { subject, info: m.json<StoredObjectInfo>() };
          } catch (err) {
            // Purged since the stream info (a prune): not there.
            if ((err as { api_error?: { err_code?: number } }).api_error?.err_code === NO_MESSAGE_FOUND) return undefined;
            throw err;
          }
        }),
      );
      for (const r of read) if (r && typeof r.info?.name === 'string') out.push(r);
    }
    return out;
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
   * Writes the snapshot to `file`. Rejects when the object is missing, short, or its SHA-256 differs from the one
   * stored with it, and with UNAVAILABLE when no byte came for `downloadStallMs` (12 s). Reads until it has the object's
   * size rather than until nats.js closes the stream, which waits for the server's pending count to reach 0.
   */
  async download(s: StoredSnapshot, file: string): Promise<void> {
    const result = await this.os.get(s.name);
    if (!result) throw new ShardmindError(ErrorCode.NOT_FOUND, `snapshot ${s.name} of ${this.domain} is gone`);
    // Settled by nats.js's reader whenever it stops, after this method may have given up on it.
    result.error.catch(() => undefined);
    const reader = result.data.getReader();
    try {
      if (result.info.digest !== s.objectDigest) {
        throw new ShardmindError(ErrorCode.UNAVAILABLE, `snapshot ${s.name} of ${this.domain} was replaced while it was read`);
      }
      const size = result.info.size;
      const sha = createHash('sha256');
      let received = 0;
      const out = await openFile(file, 'w');
      try {
        while (received < size) {
          const next = await withDeadline(reader.read(), this.downloadStallMs, `downloading snapshot ${s.name} of ${this.domain} (${received} of ${size} bytes in)`);
          if (next.done) break;
          sha.update(next.value);
          await out.write(next.value);
          received += next.value.length;
        }
      } finally {
        await out.close();
      }
      if (received !== size) throw new ShardmindError(ErrorCode.UNAVAILABLE, `snapshot ${s.name} of ${this.domain} ended after ${received} of ${size} bytes`);
      if (!sameSha256(result.info.digest, sha.digest())) {
        throw new ShardmindError(ErrorCode.UNAVAILABLE, `snapshot ${s.name} of ${this.domain} does not match its SHA-256 (${result.info.digest})`);
      }
    } finally {
      // Ends nats.js's consumer, finished or not.
      reader.cancel().catch(() => undefined);
    }
  }

  /** Deletes one object (a backup's, once downloaded). */
  async remove(name: string): Promise<void> {
    await this.os.delete(name);
  }

  /**
   * Deletes all but the newest `keep` snapshots; returns the names deleted. A deleted object's meta message (nats.js
   * keeps one saying "deleted") is purged too, so a listing reads only the snapshots kept (and those a crash left).
   */
  async prune(keep: number): Promise<string[]> {
    const metas = await withDeadline(this.readMetas(), LIST_DEADLINE_MS, `listing the snapshots of ${this.domain}`);
    const live = metas.flatMap(({ subject, info }) => {
      const s = fromInfo(this.domain, info);
      return s ? [{ subject, s }] : [];
    });
    live.sort((a, b) => a.s.meta.seq - b.s.meta.seq);
    const old = live.slice(0, Math.max(0, live.length - keep));
    for (const { s } of old) await this.os.delete(s.name);
    const stream = `OBJ_${this.bucket}`;
    const gone = [...old.map((o) => o.subject), ...metas.filter((m) => m.info.deleted).map((m) => m.subject)];
    for (const subject of gone) await this.jsm.streams.purge(stream, { filter: subject });
    return old.map((o) => o.s.name);
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

/**
 * `work`, or UNAVAILABLE once `ms` passed without it settling. What `work` does after that is left to its own
 * bounds; its failure then is handled here, not left unhandled.
 */
function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  work.catch(() => undefined);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ShardmindError(ErrorCode.UNAVAILABLE, `${what}: no answer within ${ms / 1000} s`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** nats.js writes `SHA-256=` and the digest in base64 (URL-safe, padded or not, by version); Node reads either. */
function sameSha256(stored: string, digest: Buffer): boolean {
  const prefix = 'SHA-256=';
  return stored.startsWith(prefix) && Buffer.from(stored.slice(prefix.length), 'base64').equals(digest);
}

function toMetadata(meta: SnapshotMeta): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta)) out[k] = String(v);
  return out;
}

/** Reads a snapshot's metadata back; undefined when a field is missing or malformed (not a snapshot of this domain). */
function fromInfo(domain: string, info: StoredObjectInfo): StoredSnapshot | undefined {
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
