/**
 * `shardmind restore <file> [--domain D] [--dry-run]`: puts a backup (`shardmind backup`) into a cluster, as the log
 * and snapshot a compaction with `retainEntries: 0` would have left: the backup's store as the domain's newest
 * snapshot at its sequence S, and a log whose first sequence is S + 1 and whose last is S. Hosts that then start the
 * domain find their stores behind the log's first entry, install the snapshot (`bootstrapping`, as after any
 * compaction; checked against the backup's content digest), catch up from S + 1 and lead or follow; the new leader's
 * epoch marker lands at S + 1 (chained to the backup's tail hash) and new writes go on top of it.
 *
 * Only into a domain that holds nothing yet, with no host running it (decisions §85):
 * - its log holds no facts (only leadership markers, or nothing, or no stream yet) and no marker at S or later: every
 *   store a host has of it is then behind S and bootstraps, and nothing acknowledged is thrown away;
 * - no host runs it (none lists a replica, no leader beats): a running replica would read the log while it is
 *   rewritten, and one that read past the markers could never bootstrap.
 * A log is moved to S by publishing placeholder messages up to S and purging through S: nats-server 2.9 standalone
 * keeps its expected-last-sequence counter at the old tail after a purge past the tail + 1 (the next append then lands
 * at first_seq while the counter says otherwise), so that purge is never asked for. Anything refused changes nothing.
 */
import { rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { JetStreamManager, NatsConnection, StoredMsg } from 'nats';
import { Packr } from 'msgpackr';
import { apiErrorCode, DATA_FILE, decodeEntry, ensureLogStream, LOG_LEVEL, parseHeartbeat, SnapshotBucket, snapshotName } from '../actors/index.ts';
import type { ClusterConfig } from '../config/index.ts';
import { DOMAIN_NAME, ErrorCode, ShardmindError, heartbeatSubject, logStream, logSubject } from '../protocol/index.ts';
import { integerFlag, orConfigError, parseCommandFlags, readFlagValues } from './args.ts';
import { readBackupHeader, snapshotMetaOf, verifyBackupFile, type BackupHeader } from './backup-file.ts';
import type { Command } from './command.ts';
import { connectCluster, resolveTarget } from './cluster-connect.ts';
import { clusterStatus } from './control-client.ts';
import { stdio, type Io } from './status.ts';

/** JetStream's "stream not found" and "no message found". */
const STREAM_NOT_FOUND = 10059;
const NO_MESSAGE_FOUND = 10037;
/** Placeholder appends in flight at once while the log is moved to the backup's sequence. */
const PLACEHOLDER_WINDOW = 256;
/** How long restore listens for a leader's heartbeat before it trusts that no host runs the domain. */
export const DEFAULT_HEARTBEAT_WAIT_MS = 1_000;

const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

/**
 * What a placeholder message holds: not a log entry (`decodeEntry` refuses its op, so a replica would skip it), and
 * named after the restore it serves, so a second run of an interrupted restore of the same backup recognizes it.
 */
export function placeholderBody(domain: string, seq: number): Uint8Array {
  return packr.pack({ v: 1, op: 'restore-placeholder', domain, seq });
}

function isPlaceholder(data: Uint8Array, domain: string, seq: number): boolean {
  try {
    const v = packr.unpack(data) as Record<string, unknown> | null;
    return !!v && v['op'] === 'restore-placeholder' && v['domain'] === domain && v['seq'] === seq;
  } catch {
    return false;
  }
}

export interface RestoreOptions {
  readonly file: string;
  /** The domain the caller expects the file to hold (refused when it holds another). */
  readonly domain?: string;
  readonly nodes: readonly string[];
  readonly config?: ClusterConfig;
  /** Check everything, change nothing. */
  readonly dryRun?: boolean;
  /** Replicas of the log when restore creates it (default: the config's `replication.replicas`). */
  readonly replicas?: number;
  readonly heartbeatWaitMs?: number;
  /** Where the file's store data is unpacked to be checked and uploaded. Default: beside the file. */
  readonly workDir?: string;
}

export interface RestoreResult {
  readonly domain: string;
  readonly seq: number;
  readonly digest: string;
  readonly dryRun: boolean;
  /** The log's last sequence before, and whether restore created the stream. */
  readonly logLastBefore: number;
  readonly createdLog: boolean;
  /** Placeholder messages published (or that would be) to move the log to `seq`. */
  readonly placeholders: number;
  readonly snapshot: string;
  readonly ms: number;
}

const conflict = (message: string): ShardmindError => new ShardmindError(ErrorCode.CONFLICT, `${message}; nothing was changed`);

/** Restores a backup file into the cluster. Throws `ShardmindError` naming what is wrong; anything refused changes nothing. */
export async function restoreBackup(nc: NatsConnection, o: RestoreOptions): Promise<RestoreResult> {
  const started = Date.now();
  // No dot in the name: lmdb-js takes a path with an extension for a file, not an environment directory.
  const work = o.workDir ?? join(dirname(resolve(o.file)), `smbackup-restore-${process.pid}-${Date.now()}`);
  try {
    const { header } = await verifyBackupFile(o.file, work);
    const { domain, seq } = header;
    if (o.domain !== undefined && o.domain !== domain) {
      throw new ShardmindError(
        ErrorCode.BAD_REQUEST,
        `--domain: ${o.file} holds a backup of ${domain}, not ${o.domain} (a store keeps its domain's name: restore it as ${domain}); nothing was changed`,
      );
    }
    const configured = o.config?.domains.map((d) => d.name);
    if (configured && !configured.includes(domain)) {
      throw new ShardmindError(ErrorCode.UNKNOWN_DOMAIN, `${o.file} holds ${domain}, which is not in the cluster config (${configured.join(', ')}): add it to the config first; nothing was changed`);
    }
    const level = header.logLevel ?? 2;
    if (level > LOG_LEVEL) {
      throw new ShardmindError(ErrorCode.UPGRADE_REQUIRED, `${o.file} was taken by a build at log level ${level}; this one understands ${LOG_LEVEL}: restore it with that version or newer; nothing was changed`);
    }
    const jsm = await nc.jetstreamManager();
    const log = await readLogState(jsm, header);
    await refuseIfRunning(nc, o, domain);
    const replicas = o.replicas ?? o.config?.replication.replicas;
    if (!log.exists && replicas === undefined) {
      throw new ShardmindError(
        ErrorCode.BAD_REQUEST,
        `--config: the ${domain} log (${logStream(domain)}) does not exist yet, and restore creates it with the config's replication.replicas: pass the cluster config (or --replicas); nothing was changed`,
      );
    }
    const logReplicas = log.replicas ?? replicas!;
    const snapshot = snapshotName(seq);
    await refuseNewerSnapshots(nc, jsm, header, logReplicas);
    const placeholders = log.movedAlready ? 0 : seq - log.last;
    const result = (createdLog: boolean): RestoreResult => ({
      domain, seq, digest: header.digest, dryRun: o.dryRun === true, logLastBefore: log.last, createdLog, placeholders, snapshot, ms: Date.now() - started,
    });
    if (o.dryRun) return result(!log.exists);

    if (!log.exists) await ensureLogStream(jsm, domain, logReplicas);
    // The snapshot first: a log moved past the hosts' stores with no snapshot to install would leave them waiting.
    const bucket = await SnapshotBucket.open(nc.jetstream(), domain, logReplicas, () => nc.flush());
    const stored = await bucket.put(join(work, DATA_FILE), snapshotMetaOf(header), snapshot);
    const back = await bucket.stat(stored.name);
    if (!back || back.objectDigest !== stored.objectDigest || back.meta.seq !== seq) {
      await bucket.remove(stored.name).catch(() => undefined);
      throw new ShardmindError(ErrorCode.UNAVAILABLE, `the snapshot ${stored.name} of ${domain} could not be read back; the log was not changed, run the restore again`);
    }
    try {
      if (log.movedAlready) return result(false);
      await appendPlaceholders(nc, header, log.last);
      const purged = await jsm.streams.purge(logStream(domain), { seq: seq + 1 });
      const after = await jsm.streams.info(logStream(domain));
      if (after.state.first_seq !== seq + 1 || after.state.last_seq !== seq) {
        throw new ShardmindError(
          ErrorCode.INTERNAL,
          `after the purge (${purged.purged} removed) the ${domain} log holds ${after.state.first_seq}..${after.state.last_seq}, not an empty log after seq ${seq}: did a host start it meanwhile?`,
        );
      }
    } catch (err) {
      // Without the log at S the snapshot is one no replica should install: a later compaction's would be older.
      await bucket.remove(stored.name).catch(() => undefined);
      if (err instanceof ShardmindError) throw err;
      throw new ShardmindError(ErrorCode.UNAVAILABLE, `moving the ${domain} log to seq ${seq} failed: ${(err as Error)?.message ?? String(err)}; run the restore again`, { cause: err });
    }
    return result(!log.exists);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The log as restore finds it: whether it exists, its last sequence, and its replicas. */
interface LogState {
  readonly exists: boolean;
  readonly last: number;
  readonly replicas?: number;
  /** The log is already empty after the backup's sequence (this restore ran to its end before): nothing to move. */
  readonly movedAlready?: boolean;
}

/**
 * Reads the domain's log and refuses (CONFLICT) one that holds anything but leadership markers and this restore's
 * own placeholders, or a marker at or past the backup's sequence (a store at that position could not bootstrap).
 * A log with facts is found at its first fact; only a log of markers is read through.
 */
async function readLogState(jsm: JetStreamManager, header: BackupHeader): Promise<LogState> {
  const { domain, seq } = header;
  const stream = logStream(domain);
  let info;
  try {
    info = await jsm.streams.info(stream);
  } catch (err) {
    if (apiErrorCode(err) === STREAM_NOT_FOUND) return { exists: false, last: 0 };
    throw new ShardmindError(ErrorCode.UNAVAILABLE, `cannot read the ${domain} log (${stream}): ${(err as Error)?.message ?? String(err)}`, { cause: err });
  }
  const { first_seq: first, last_seq: last, messages } = info.state;
  let lastMarker = 0;
  for (let s = Math.max(first, 1); messages > 0 && s <= last; s++) {
    let m: StoredMsg;
    try {
      m = await jsm.streams.getMessage(stream, { seq: s });
    } catch (err) {
      if (apiErrorCode(err) === NO_MESSAGE_FOUND) continue;
      throw new ShardmindError(ErrorCode.UNAVAILABLE, `cannot read seq ${s} of ${stream}: ${(err as Error)?.message ?? String(err)}`, { cause: err });
    }
    if (isPlaceholder(m.data, domain, seq)) continue;
    const entry = decodeEntry(m.data);
    if (entry?.op !== 'marker') {
      const what = entry ? `a ${entry.op} entry` : 'a message that is not a log entry';
      throw conflict(
        `the ${domain} log already holds data: ${messages} messages (seq ${first}–${last}), ${what} at seq ${s}; restore goes only into a domain whose log holds no facts yet ` +
          `(a fresh cluster, or a domain just added to the config, before its hosts start it)`,
      );
    }
    lastMarker = s;
  }
  // A host's store may stand at any sequence the log reached: its last marker, or the last purged one (a compacted or
  // restored log starts after it).
  const reached = Math.max(lastMarker, first - 1);
  if (reached === seq && lastMarker === 0) return { exists: true, last, replicas: info.config.num_replicas, movedAlready: true };
  if (reached >= seq) {
    const how = lastMarker === reached ? 'with leadership markers' : '(its entries up to there were purged by a compaction or an earlier restore)';
    throw conflict(
      `the ${domain} log already reaches seq ${reached} ${how}, at or past the backup's seq ${seq}, so the hosts' stores of it would not be behind the restored log; ` +
        `with every host of ${domain} stopped, delete the log (nats stream rm ${stream}) and each host's ${domain} store directory, then restore`,
    );
  }
  return { exists: true, last, replicas: info.config.num_replicas };
}

/** Refuses (UNAVAILABLE) while any host runs the domain: one lists a replica of it, or a leader's heartbeat is heard. */
async function refuseIfRunning(nc: NatsConnection, o: RestoreOptions, domain: string): Promise<void> {
  const heard = new Set<string>();
  const sub = nc.subscribe(heartbeatSubject(domain), {
    callback: (_err, msg) => heard.add(parseHeartbeat(msg.data)?.node ?? 'a host'),
  });
  try {
    // Several beats' worth: a leader beats every heartbeatMs (250 ms shipped, 500 on Wi-Fi).
    const wait = o.heartbeatWaitMs ?? Math.max(DEFAULT_HEARTBEAT_WAIT_MS, 4 * (o.config?.replication.heartbeatMs ?? 0));
    const [statuses] = await Promise.all([clusterStatus(nc, o.nodes), new Promise((r) => setTimeout(r, wait))]);
    const running: string[] = [];
    for (const s of statuses) {
      if (!s.ok) continue;
      const shard = s.status.shards.find((x) => x.domain === domain && x.state !== 'stopped');
      if (shard) running.push(`${s.node} (${shard.state})`);
    }
    for (const node of heard) if (!running.some((r) => r.startsWith(`${node} `))) running.push(`${node} (its heartbeats)`);
    if (running.length > 0) {
      throw new ShardmindError(
        ErrorCode.UNAVAILABLE,
        `${domain} runs on ${running.join(', ')}: stop the hosts that run ${domain} (or restore before they first start it), then restore, then start them; nothing was changed`,
        { retryable: false },
      );
    }
  } finally {
    sub.unsubscribe();
  }
}

/** Refuses (CONFLICT) when the snapshot bucket holds a snapshot at or past the backup's sequence. */
async function refuseNewerSnapshots(nc: NatsConnection, jsm: JetStreamManager, header: BackupHeader, replicas: number): Promise<void> {
  const bucket = await SnapshotBucket.find(nc.jetstream(), jsm, header.domain, replicas);
  if (!bucket) return;
  for (const s of await bucket.list()) {
    // The same snapshot from an interrupted run of this restore is replaced; anything else at or past S is not ours.
    const ours = s.meta.seq === header.seq && s.meta.digest === header.digest && s.meta.tailHash === header.tailHash;
    if (s.meta.seq >= header.seq && !ours) {
      throw conflict(`the ${header.domain} snapshot bucket already holds ${s.name} (seq ${s.meta.seq}), at or past the backup's seq ${header.seq}: this domain held data`);
    }
  }
}

/** Appends placeholders after `last` up to the backup's sequence, each expecting the one before it. */
async function appendPlaceholders(nc: NatsConnection, header: BackupHeader, last: number): Promise<void> {
  const js = nc.jetstream();
  const body = placeholderBody(header.domain, header.seq);
  const subject = logSubject(header.domain);
  let next = last + 1;
  while (next <= header.seq) {
    const end = Math.min(header.seq, next + PLACEHOLDER_WINDOW - 1);
    const acks: Promise<unknown>[] = [];
    for (let s = next; s <= end; s++) acks.push(js.publish(subject, body, { expect: { lastSequence: s - 1 } }));
    // Each append expects the one before it: one refused (someone else appended) refuses every later one too.
    const settled = await Promise.allSettled(acks);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      throw new ShardmindError(ErrorCode.UNAVAILABLE, `appending placeholders to the ${header.domain} log failed near seq ${next}: ${(failed.reason as Error)?.message ?? String(failed.reason)}`, { cause: failed.reason });
    }
    next = end + 1;
  }
}

const USAGE = `usage: shardmind restore <file> [--domain D] [--dry-run] [--config FILE] [--servers URL,…] [--nodes NAME,…] [--replicas N] [--json]

Puts a backup (shardmind backup) into a cluster: its store becomes the domain's snapshot at the backup's sequence S,
and the domain's log continues at S + 1. Only into a domain that holds nothing yet (a fresh cluster, or a domain just
added to the config) and that no host runs: start the nats-servers, restore, then start the hosts; each installs the
snapshot (state bootstrapping, checked against the backup's content digest), then leads or follows, and new writes go
on top. Refused, changing nothing: a file that is truncated, damaged or not a backup (BAD_REQUEST), one of another
domain than --domain (BAD_REQUEST), a domain whose log holds facts (CONFLICT), one a host runs (UNAVAILABLE).
--dry-run: check the file and the cluster, change nothing. The file is checked first as backup --verify does.
--replicas: the log's replicas when restore creates it (default: the config's replication.replicas; 1 behind
shardmind up).`;

export async function runRestore(argv: readonly string[], io: Io = stdio): Promise<number> {
  const parsed = parseCommandFlags(
    argv,
    {
      domain: { type: 'string' },
      'dry-run': { type: 'boolean' },
      config: { type: 'string' },
      servers: { type: 'string' },
      nodes: { type: 'string' },
      replicas: { type: 'string' },
      json: { type: 'boolean' },
    },
    USAGE,
    io,
    1,
  );
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const file = positionals[0];
  if (!file) {
    io.err(`${USAGE}\n`);
    return 2;
  }
  const flags = readFlagValues(io, 'restore', () => ({ replicas: integerFlag('replicas', values.replicas, 1, 5, 'a replica count in 1..5') }));
  if (typeof flags === 'number') return flags;
  const target = await orConfigError(io, () => resolveTarget(values));
  if (target === 1) return 1;
  let nc: NatsConnection | undefined;
  try {
    if (values.domain !== undefined && !DOMAIN_NAME.test(values.domain)) {
      throw new ShardmindError(ErrorCode.BAD_REQUEST, `--domain: "${values.domain}" must match ${DOMAIN_NAME}`);
    }
    // A missing, foreign or truncated file needs no cluster to be refused (its SHA-256 and store are checked next).
    readBackupHeader(file);
    nc = await connectCluster(target.servers, 'shardmind restore');
    const r = await restoreBackup(nc, {
      file,
      nodes: target.nodes,
      ...(values.domain !== undefined ? { domain: values.domain } : {}),
      ...(target.config ? { config: target.config } : {}),
      ...(values['dry-run'] ? { dryRun: true } : {}),
      ...(flags.replicas !== undefined ? { replicas: flags.replicas } : {}),
    });
    if (values.json) io.out(`${JSON.stringify(r)}\n`);
    else if (r.dryRun) {
      io.out(
        `${r.domain}: would restore seq ${r.seq} (digest ${r.digest}) as ${r.snapshot}, ${r.createdLog ? 'creating the log' : `moving the log from seq ${r.logLastBefore}`} ` +
          `to start at seq ${r.seq + 1} (${r.placeholders} placeholder appends, then purged); nothing was changed\n`,
      );
    } else {
      io.out(
        `${r.domain}: restored seq ${r.seq} (digest ${r.digest}) as snapshot ${r.snapshot}; the log now starts at seq ${r.seq + 1} in ${r.ms} ms. ` +
          `Start the hosts that run ${r.domain}: each installs the snapshot, then leads or follows\n`,
      );
    }
    return 0;
  } catch (err) {
    if (err instanceof ShardmindError) {
      io.err(`restore failed: ${err.code}: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    await nc?.close();
  }
}

/** The dispatcher row (`cli/main.ts`). */
export const restoreCommand: Command = {
  summary: 'put a backup file into a domain that holds nothing yet (its hosts not running); --dry-run checks only',
  usage: USAGE,
  run: (args) => runRestore(args),
};
