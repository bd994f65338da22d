/**
 * `shardmind backup <domain> [--out FILE]`, `backup --all [--out DIR]`, `backup --verify FILE`: a consistent copy of
 * one domain's memory from a live cluster, writes going on. Finds the domain's leader, asks it to `backup`
 * (`sm.ctl.<leader>.backup`: it copies its store at its applied sequence, checks the copy's last entry against the
 * log, and uploads it to the domain's backup bucket, `actors/backup.ts`), downloads the object into a backup file
 * (`backup-file.ts`) and deletes it. `--verify` checks a file without a cluster.
 */
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { NatsConnection } from 'nats';
import { backupBucket, BACKUP_BUCKET_REPLICAS, SnapshotBucket, type BackupReport } from '../actors/index.ts';
import { DOMAIN_NAME, ErrorCode, ShardmindError } from '../protocol/index.ts';
import { durationFlag, MAX_TIMEOUT_MS, orConfigError, parseCommandFlags, readFlagValues } from './args.ts';
import { verifyBackupFile, writeBackupFile, type BackupHeader } from './backup-file.ts';
import type { Command } from './command.ts';
import { connectCluster, resolveTarget } from './cluster-connect.ts';
import { clusterStatus, ctlRequest, domainViews, waitForLeader } from './control-client.ts';
import { stdio, type Io } from './status.ts';

/** What one domain's backup came to. `path` is absent when the store was empty (nothing written). */
export interface BackupResult {
  readonly domain: string;
  readonly node: string;
  readonly seq: number;
  readonly path?: string;
  readonly bytes?: number;
  readonly header?: BackupHeader;
  readonly ms: number;
}

export interface BackupDomainOptions {
  readonly domain: string;
  readonly nodes: readonly string[];
  /** The domains the config knows (checked before asking anyone), when there is a config. */
  readonly domains?: readonly string[];
  /** The file to write; a directory (existing, or ending in `/`) gets the default name in it. Default: the cwd. */
  readonly out?: string;
  /** How long to look for a leader. Default 10 s. */
  readonly leaderWaitMs?: number;
  /** How long the leader may take (copy, read, upload). Default 300 s. */
  readonly timeoutMs?: number;
  readonly now?: () => Date;
}

/** `email-seq1234-20261125T101800Z.smbackup`: sorts by domain, then sequence. */
export function defaultBackupName(domain: string, seq: number, at: Date): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `${domain}-seq${seq}-${stamp}.smbackup`;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** Backs up one domain into a file. Throws `ShardmindError` (BAD_REQUEST, UNKNOWN_DOMAIN, UNAVAILABLE, …). */
export async function backupDomain(nc: NatsConnection, o: BackupDomainOptions): Promise<BackupResult> {
  const started = Date.now();
  if (!DOMAIN_NAME.test(o.domain)) throw new ShardmindError(ErrorCode.BAD_REQUEST, `domain: "${o.domain}" must match ${DOMAIN_NAME}`);
  if (o.domains && !o.domains.includes(o.domain)) {
    throw new ShardmindError(ErrorCode.UNKNOWN_DOMAIN, `domain "${o.domain}" is not in the cluster config (${o.domains.join(', ')})`);
  }
  const leader = await waitForLeader(nc, o.nodes, o.domain, o.leaderWaitMs);
  const r = await ctlRequest<BackupReport>(nc, leader, 'backup', { domain: o.domain }, o.timeoutMs ?? 300_000);
  if (r.seq === 0 || !r.object || !r.meta) return { domain: o.domain, node: r.node, seq: 0, ms: Date.now() - started };
  const now = (o.now ?? (() => new Date()))();
  const out = resolve(o.out === undefined || o.out.endsWith('/') || isDirectory(o.out) ? join(o.out ?? '.', defaultBackupName(o.domain, r.seq, now)) : o.out);
  mkdirSync(dirname(out), { recursive: true });
  const bucket = await SnapshotBucket.open(nc.jetstream(), o.domain, BACKUP_BUCKET_REPLICAS, undefined, backupBucket(o.domain));
  const data = `${out}.data.part`;
  try {
    const stored = await bucket.stat(r.object);
    if (!stored || stored.objectDigest !== r.objectDigest) {
      throw new ShardmindError(ErrorCode.UNAVAILABLE, `the backup ${r.object} of ${o.domain} is not in ${backupBucket(o.domain)} as ${r.node} stored it; run the backup again`);
    }
    // nats.js checks the object's SHA-256 while it reads; the file gets its own over the same bytes.
    await bucket.download(stored, data);
    const { header, bytes } = await writeBackupFile(out, data, stored.meta, now);
    return { domain: o.domain, node: r.node, seq: r.seq, path: out, bytes, header, ms: Date.now() - started };
  } finally {
    rmSync(data, { force: true });
    // The file is the backup; the object was only its way here.
    await bucket.remove(r.object).catch(() => undefined);
  }
}

/** Every domain a backup `--all` covers: the config's, or what the hosts run when there is no config. */
async function allDomains(nc: NatsConnection, nodes: readonly string[], configured: readonly string[] | undefined): Promise<string[]> {
  if (configured) return [...configured];
  return [...domainViews(await clusterStatus(nc, nodes)).keys()].sort();
}

/** A size a person reads: bytes below 10 KiB, else KiB or MiB with one decimal. */
export function humanBytes(n: number): string {
  if (n < 10 * 1024) return `${n} bytes`;
  if (n < 10 * 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

function describe(r: BackupResult): string {
  if (r.path === undefined || r.header === undefined) return `${r.domain}: the store on ${r.node} is empty; nothing to back up\n`;
  return `${r.domain}: backup at seq ${r.seq} by ${r.node} -> ${r.path} (${humanBytes(r.bytes ?? 0)}, digest ${r.header.digest}, sha256 ${r.header.dataSha256.slice(0, 16)}…) in ${r.ms} ms\n`;
}

const USAGE = `usage: shardmind backup <domain> [--out FILE|DIR] [--config FILE] [--servers URL,…] [--nodes NAME,…] [--timeout DURATION] [--json]
       shardmind backup --all [--out DIR] […]
       shardmind backup --verify FILE [--json]

Copies one domain's memory, as of one applied log sequence, into one file, while agents keep writing: the domain's
leader copies its store (LMDB's consistent copy) and checks its last entry against the log; the file holds that
store with a header naming the domain, the sequence, the store format and log level, the content digest and the
shardmind version. Prints where it went, its sequence, size and digest. --out: the file, or a directory for the
default name (<domain>-seq<N>-<time>.smbackup; default: the current directory). --all: every domain of the config
(or that the hosts run), one file each, into --out as a directory. --verify FILE: checks a file without a cluster
(its length and SHA-256, then that its store opens with the sequence and content digest it names). --timeout: how long
the leader may take (default 5m). Restore with shardmind restore FILE.`;

export async function runBackup(argv: readonly string[], io: Io = stdio): Promise<number> {
  const parsed = parseCommandFlags(
    argv,
    {
      out: { type: 'string' },
      all: { type: 'boolean' },
      verify: { type: 'string' },
      config: { type: 'string' },
      servers: { type: 'string' },
      nodes: { type: 'string' },
      timeout: { type: 'string' },
      json: { type: 'boolean' },
    },
    USAGE,
    io,
    1,
  );
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (values.verify !== undefined) {
    if (positionals.length > 0 || values.all) {
      io.err(`--verify takes only the file to check\n${USAGE}\n`);
      return 2;
    }
    return runVerify(values.verify, values.json === true, io);
  }
  const domain = positionals[0];
  if ((domain === undefined) === (values.all !== true)) {
    io.err(`name one domain, or --all\n${USAGE}\n`);
    return 2;
  }
  const flags = readFlagValues(io, 'backup', () => ({ timeoutMs: durationFlag('timeout', values.timeout, 1, MAX_TIMEOUT_MS) }));
  if (typeof flags === 'number') return flags;
  const target = await orConfigError(io, () => resolveTarget(values));
  if (target === 1) return 1;
  let nc: NatsConnection | undefined;
  try {
    // Checked before connecting: bad input needs no cluster to be refused.
    if (domain !== undefined && !DOMAIN_NAME.test(domain)) throw new ShardmindError(ErrorCode.BAD_REQUEST, `domain: "${domain}" must match ${DOMAIN_NAME}`);
    if (values.all && values.out !== undefined && !values.out.endsWith('/') && !isDirectory(values.out)) {
      mkdirSync(values.out, { recursive: true });
    }
    nc = await connectCluster(target.servers, 'shardmind backup');
    const configured = target.config?.domains.map((d) => d.name);
    const domains = domain !== undefined ? [domain] : await allDomains(nc, target.nodes, configured);
    if (domains.length === 0) throw new ShardmindError(ErrorCode.UNAVAILABLE, `no host of ${target.nodes.join(', ')} runs a domain to back up`);
    const results: BackupResult[] = [];
    for (const d of domains) {
      const r = await backupDomain(nc, {
        domain: d,
        nodes: target.nodes,
        ...(configured ? { domains: configured } : {}),
        ...(values.all ? { out: `${values.out ?? '.'}/` } : values.out !== undefined ? { out: values.out } : {}),
        ...(flags.timeoutMs !== undefined ? { timeoutMs: flags.timeoutMs } : {}),
      });
      results.push(r);
      if (!values.json) io.out(describe(r));
    }
    if (values.json) io.out(`${JSON.stringify(values.all ? results : results[0])}\n`);
    return 0;
  } catch (err) {
    if (err instanceof ShardmindError) {
      io.err(`backup failed: ${err.code}: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    await nc?.close();
  }
}

/** `backup --verify FILE`: exit 0 when the file is whole and its store is what it says, 1 (with why) otherwise. */
async function runVerify(file: string, json: boolean, io: Io): Promise<number> {
  // No dot in the name: lmdb-js takes a path with an extension for a file, not an environment directory.
  const work = join(dirname(resolve(file)), `smbackup-verify-${process.pid}-${Date.now()}`);
  try {
    const { header, fileBytes } = await verifyBackupFile(file, work);
    if (json) io.out(`${JSON.stringify({ ok: true, file, bytes: fileBytes, header })}\n`);
    else {
      io.out(
        `${file}: ${header.domain} at seq ${header.seq} (store format ${header.format}, log level ${header.logLevel ?? 2}), taken ${header.takenAt} by ${header.node}, ` +
          `shardmind ${header.shardmindVersion}, ${humanBytes(fileBytes)}: SHA-256 matches, the store opens with digest ${header.digest}\n`,
      );
    }
    return 0;
  } catch (err) {
    if (err instanceof ShardmindError) {
      io.err(`verify failed: ${err.code}: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The dispatcher row (`cli/main.ts`). */
export const backupCommand: Command = {
  summary: "copy one domain's memory (or --all) into a backup file while it runs; --verify checks one",
  usage: USAGE,
  run: (args) => runBackup(args),
};
