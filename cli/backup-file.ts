/**
 * The backup file (`shardmind backup`, `restore`): one domain's store as of one applied log sequence, in one file.
 *
 *   shardmind-backup 1\n          the magic line: what the file is, and its layout version
 *   {header JSON}\n               `BackupHeader`: domain, seq, tail hash, store format, log level, digests, …
 *   <data.mdb bytes>              the LMDB file a leader's snapshot copy made (`actors/backup.ts`)
 *
 * The header is JSON on a line of its own so `head -2 file` shows it. Two digests: `dataSha256` over the bytes
 * after the header (a truncated or damaged file fails it without opening anything), and `digest`, the store's content
 * digest (`ShardStore.digest()`, equal on every replica at `seq`), checked by opening the data as a store in a worker.
 */
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, createWriteStream, fsyncSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DATA_FILE, inspectStoreCopy, type SnapshotMeta, type StoreFacts } from '../actors/index.ts';
import { DOMAIN_NAME, ErrorCode, ShardmindError } from '../protocol/index.ts';

/** The first line of every backup file. */
export const BACKUP_MAGIC = 'shardmind-backup 1\n';
/** The longest header line read: a header is a few hundred bytes, so anything longer is not a backup. */
const MAX_HEADER_BYTES = 64 * 1024;

/** What a backup file says about itself (its second line). */
export interface BackupHeader {
  readonly v: 1;
  readonly domain: string;
  /** The log sequence the store had applied: it holds every entry up to and including it. */
  readonly seq: number;
  /** `entryHash` of the log entry at `seq`: where the restored log's chain check starts. */
  readonly tailHash: string;
  /** The store's layout version (`meta/format`): only a build reading this format can restore it. */
  readonly format: number;
  /** The log level of the build that took it (what the store may hold); absent: 2, as for snapshots. */
  readonly logLevel?: number;
  /** The store's content digest at `seq` (`ShardStore.digest()`): every restored replica reaches it. */
  readonly digest: string;
  /** The latest leadership epoch in the store, and the leader that took it. */
  readonly epoch: number;
  readonly node: string;
  /** When the leader copied the store, and when this file was written (ISO). */
  readonly takenAt: string;
  readonly createdAt: string;
  /** The shardmind version that wrote the file (`package.json`). */
  readonly shardmindVersion: string;
  /** Bytes and SHA-256 (hex) of the data after the header. */
  readonly dataBytes: number;
  readonly dataSha256: string;
}

/** A file that is not a whole, readable backup: refused before anything is changed. */
function badFile(path: string, problem: string): ShardmindError {
  return new ShardmindError(ErrorCode.BAD_REQUEST, `${path}: ${problem}; nothing was changed`);
}

/** This build's version, as the header records it. */
export function shardmindVersion(): string {
  const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

/** SHA-256 (hex) of a file's bytes from `start`. */
export async function sha256Of(path: string, start = 0): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { start })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Writes the backup file at `out` from the LMDB data file `dataFile` and the snapshot's metadata: to `<out>.part`,
 * synced, then renamed, so `out` is either absent or whole. Returns the header written and the file's size.
 */
export async function writeBackupFile(out: string, dataFile: string, meta: SnapshotMeta, now = new Date()): Promise<{ header: BackupHeader; bytes: number }> {
  const header: BackupHeader = {
    v: 1,
    domain: meta.domain,
    seq: meta.seq,
    tailHash: meta.tailHash,
    format: meta.format,
    ...(meta.logLevel !== undefined ? { logLevel: meta.logLevel } : {}),
    digest: meta.digest,
    epoch: meta.epoch,
    node: meta.node,
    takenAt: meta.takenAt,
    createdAt: now.toISOString(),
    shardmindVersion: shardmindVersion(),
    dataBytes: statSync(dataFile).size,
    dataSha256: await sha256Of(dataFile),
  };
  const part = `${out}.part`;
  try {
    const sink = createWriteStream(part);
    sink.write(BACKUP_MAGIC + JSON.stringify(header) + '\n');
    await pipeline(createReadStream(dataFile), sink);
    const fd = openSync(part, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(part, out);
  } catch (err) {
    rmSync(part, { force: true });
    throw err;
  }
  return { header, bytes: statSync(out).size };
}

/** Reads and checks a backup file's header; `dataOffset` is where the LMDB bytes start. Throws BAD_REQUEST. */
export function readBackupHeader(path: string): { header: BackupHeader; dataOffset: number; fileBytes: number } {
  let fileBytes: number;
  try {
    fileBytes = statSync(path).size;
  } catch (err) {
    throw new ShardmindError(ErrorCode.NOT_FOUND, `${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); nothing was changed`);
  }
  const head = Buffer.alloc(Math.min(fileBytes, BACKUP_MAGIC.length + MAX_HEADER_BYTES));
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  if (head.subarray(0, BACKUP_MAGIC.length).toString('latin1') !== BACKUP_MAGIC) {
    throw badFile(path, `not a shardmind backup (it does not start with "${BACKUP_MAGIC.trim()}")`);
  }
  const end = head.indexOf(0x0a, BACKUP_MAGIC.length);
  if (end < 0) throw badFile(path, 'the header line is cut off (a truncated file?)');
  let raw: unknown;
  try {
    raw = JSON.parse(head.subarray(BACKUP_MAGIC.length, end).toString('utf8'));
  } catch {
    throw badFile(path, 'the header is not JSON (a damaged file?)');
  }
  const header = parseHeader(path, raw);
  const dataOffset = end + 1;
  if (fileBytes - dataOffset !== header.dataBytes) {
    const cut = fileBytes - dataOffset < header.dataBytes ? 'truncated' : 'longer than its header says';
    throw badFile(path, `${cut}: ${fileBytes - dataOffset} bytes of store data, the header says ${header.dataBytes}`);
  }
  return { header, dataOffset, fileBytes };
}

function parseHeader(path: string, raw: unknown): BackupHeader {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw badFile(path, 'the header is not an object');
  const h = raw as Record<string, unknown>;
  const wrong = (field: string, problem: string): ShardmindError => badFile(path, `header.${field}: ${problem}`);
  const text = (field: string): string => {
    const v = h[field];
    if (typeof v !== 'string' || v === '') throw wrong(field, 'must be a non-empty string');
    return v;
  };
  const count = (field: string, min = 0): number => {
    const v = h[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw wrong(field, `must be a whole number ≥ ${min}`);
    return v;
  };
  if (h['v'] !== 1) throw wrong('v', `is ${JSON.stringify(h['v'])}; this build reads backup header version 1`);
  const domain = text('domain');
  if (!DOMAIN_NAME.test(domain)) throw wrong('domain', `"${domain}" is not a domain name`);
  const sha = text('dataSha256');
  if (!/^[0-9a-f]{64}$/.test(sha)) throw wrong('dataSha256', 'must be 64 hex digits');
  const logLevel = h['logLevel'] === undefined ? undefined : count('logLevel', 1);
  return {
    v: 1,
    domain,
    seq: count('seq', 1),
    tailHash: text('tailHash'),
    format: count('format', 1),
    ...(logLevel !== undefined ? { logLevel } : {}),
    digest: text('digest'),
    epoch: count('epoch'),
    node: text('node'),
    takenAt: text('takenAt'),
    createdAt: text('createdAt'),
    shardmindVersion: text('shardmindVersion'),
    dataBytes: count('dataBytes', 1),
    dataSha256: sha,
  };
}

/** A checked backup: its header, and (when asked) the store data extracted to `dataDir/data.mdb`. */
export interface VerifiedBackup {
  readonly header: BackupHeader;
  readonly fileBytes: number;
  /** What the extracted store holds, read by opening it (equal to the header's by then). */
  readonly facts: StoreFacts;
}

/**
 * Checks a backup file without a cluster: the header, the data's length and SHA-256, and then, opening the data as a
 * store in a worker (in `workDir`, made and left for the caller: `restore` uploads from it), that it is this build's
 * store format holding exactly the sequence, tail hash and content digest the header names. Throws BAD_REQUEST
 * naming what is wrong.
 */
export async function verifyBackupFile(path: string, workDir: string): Promise<VerifiedBackup> {
  const { header, dataOffset, fileBytes } = readBackupHeader(path);
  const sha = await sha256Of(path, dataOffset);
  if (sha !== header.dataSha256) throw badFile(path, `the store data's SHA-256 is ${sha.slice(0, 16)}…, the header says ${header.dataSha256.slice(0, 16)}… (a damaged file)`);
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  await pipeline(createReadStream(path, { start: dataOffset }), createWriteStream(join(workDir, DATA_FILE)));
  let facts: StoreFacts;
  try {
    facts = await inspectStoreCopy(workDir, { domain: header.domain });
  } catch (err) {
    throw badFile(path, `its store data does not open as a ${header.domain} store of this build: ${(err as Error).message}`);
  }
  // lmdb-js leaves a lock file beside what it opened; the data alone is what a restore uploads.
  rmSync(join(workDir, 'lock.mdb'), { force: true });
  const wrong =
    facts.format !== header.format ? `store format ${String(facts.format)}, the header says ${header.format}`
    : facts.appliedSeq !== header.seq ? `seq ${facts.appliedSeq}, the header says ${header.seq}`
    : facts.tailHash !== header.tailHash ? `tail hash ${String(facts.tailHash)}, the header says ${header.tailHash}`
    : facts.digest !== header.digest ? `content digest ${facts.digest}, the header says ${header.digest}`
    : undefined;
  if (wrong) throw badFile(path, `the store does not hold what its header says: ${wrong}`);
  return { header, fileBytes, facts };
}

/** The header as the snapshot metadata a replica checks when it installs it (`actors/snapshot-install.ts`). */
export function snapshotMetaOf(header: BackupHeader): SnapshotMeta {
  return {
    v: 1,
    domain: header.domain,
    seq: header.seq,
    tailHash: header.tailHash,
    format: header.format,
    digest: header.digest,
    epoch: header.epoch,
    node: header.node,
    takenAt: header.takenAt,
    bytes: header.dataBytes,
    ...(header.logLevel !== undefined ? { logLevel: header.logLevel } : {}),
  };
}
