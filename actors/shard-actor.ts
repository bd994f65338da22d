/**
 * One shard (domain) on one node: the `ShardRuntime` behind `shardMachine`. It owns the shard's LMDB store, its
 * position in the log, the leader's write pipeline and subscription, and the follower's tail. The machine decides
 * when each piece runs; this file is how. It is the folder's engine file (hence its size): the pieces it wires —
 * `write-pipeline`, `log-stream`, `shard-service`, `failover`, `step-down-responder`, `replica-service`,
 * `freshness`, and log compaction: `compaction` (the leader's snapshot and purge), `compaction-trigger`,
 * `snapshot-install` (the `bootstrapping` state's work) — live in their own files.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createActor, type Actor } from 'xstate';
import type { JetStreamClient, JetStreamManager, NatsConnection, Subscription } from 'nats';
import { ErrorCode, ShardmindError, logSubject } from '../protocol/index.ts';
import { DEFAULT_REPLICA_MAX_STALE_MS, type DomainConfig } from '../config/index.ts';
import { StoreFormatError, type LogMessage, type MarkerEntry, type ShardStore, type ShardStoreOptions } from '../shards/index.ts';
import type { Clock } from './clock.ts';
import {
  ensureLogStream,
  judgeShortTail,
  leaderMessage,
  logBounds,
  logTail,
  logWasCompacted,
  readLog,
  LogCompactedError,
  LogHistoryReplacedError,
  LogTailLostError,
  type LogRecord,
} from './log-stream.ts';
import { compactShard, snapshotCopyDir, type CompactReport } from './compaction.ts';
import { backupCopyDir, backupShard, type BackupReport } from './backup.ts';
import { CompactionTrigger } from './compaction-trigger.ts';
import { SnapshotBucket } from './snapshot-bucket.ts';
import { clearInstallLeftovers, installNewestSnapshot } from './snapshot-install.ts';
import { SeqWaiters } from './seq-waiters.ts';
import type { Relay } from './relay.ts';
import type { LeaderSightings, Sighting } from './leader-sightings.ts';
import { startStepDownResponder } from './step-down-responder.ts';
import { ShardFailover, type FailoverStatus } from './failover.ts';
import { ClaimSteps } from './claim-steps.ts';
import { EpochClaimNoRoomError, type EpochRegistry } from './epoch.ts';
import { systemTimerClock, type TimerClock } from './timers.ts';
import { serveShard } from './shard-service.ts';
import { serveReplica } from './replica-service.ts';
import { FreshnessTracker } from './freshness.ts';
import { HeartbeatMonitor } from './heartbeat.ts';
import { shardMachine, type ShardEvent, type ShardRuntime, type ShardState } from './shard-machine.ts';
import { WritePipeline } from './write-pipeline.ts';
import { warmInTurn } from './store-warming.ts';
import { publishChanges } from './change-feed.ts';
import { decodeEntry, entriesOf } from './log-codec.ts';
import { bodyLevel, LOG_LEVEL, NeedsUpgradeError, RESOLVED_SPEC_LEVEL, upgradeRequired } from './log-level.ts';
import { specResolver } from './predicate-specs.ts';
import { ReplicaLevels, type ReplicaLevelsStatus } from './replica-levels.ts';

/** A domain's compaction settings, resolved (`compactionOf` in config/). */
export interface CompactionSettings {
  readonly everyEntries: number;
  readonly retainEntries: number;
  readonly keepSnapshots: number;
  /** Before each compaction, prune facts closed more than this many days ago (0: keep them). */
  readonly pruneInactiveDays?: number;
  /** Before each compaction, prune active facts decayed below this confidence (0: keep them). */
  readonly pruneDecayedBelow?: number;
}

/** What a prune did (`sm.ctl.<node>.prune`, and before a compaction when the config asks). */
export interface PruneReport {
  readonly v: 1;
  readonly domain: string;
  readonly node: string;
  /** Facts forgotten. */
  readonly pruned: number;
  /** Store positions examined (1 … the last one when the prune began), in `ranges` log entries. */
  readonly positions: number;
  readonly ranges: number;
  readonly ms: number;
}

/** Opens one shard's store: `openShardStore` from `shards/` in production. */
export type OpenStore = (o: ShardStoreOptions) => Promise<ShardStore> | ShardStore;

export interface ShardActorOptions {
  readonly node: string;
  readonly domain: DomainConfig;
  /** Placement says this node leads the domain. */
  readonly leader: boolean;
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly dataDir: string;
  readonly replicas: number;
  /** Failover duties (issue 5): heartbeats, lease, epoch claims in KV. */
  readonly failover: {
    readonly epochs: EpochRegistry;
    readonly leaseMs: number;
    readonly heartbeatMs: number;
    /** This node's position among the domain's standbys (0 = first). */
    readonly rank: number;
    /** Timers for heartbeats and leases; real time by default. */
    readonly clock?: TimerClock;
    /**
     * Cold start: until this time (host clock), a follower that has never heard its leader does not start the
     * lease countdown — the placement leader's host may simply be starting more slowly than this one.
     */
    readonly bootGraceUntil?: number;
    /** Heartbeats this host has heard, per domain. */
    readonly sightings?: LeaderSightings;
    /** Why this host must not take leadership now (its clock is off the cluster's), if it must not. */
    readonly clockProblem?: () => string | undefined;
  };
  readonly limits: {
    readonly maxPayloadBytes: number;
    readonly minSeqWaitMs: number;
    readonly maxRecallLimit: number;
    /** Replica reads without `maxStaleMs` may be this stale. Default `DEFAULT_REPLICA_MAX_STALE_MS`. */
    readonly replicaMaxStaleMs?: number;
  };
  /**
   * Log compaction (config `compaction`): the automatic trigger's threshold (0: off), the entries kept below a
   * snapshot, the snapshots kept. Default: no automatic trigger, 1000 kept, 2 snapshots.
   */
  readonly compaction?: CompactionSettings;
  readonly clock: Clock;
  readonly openStore: OpenStore;
  readonly log: (line: string) => void;
  /**
   * Where failover's commands to this actor (PROMOTE after a won claim, FENCED when deposed) go: the host's relay,
   * so they are counted and observable with every other inter-actor message. Default: straight to this actor.
   */
  readonly relay?: { readonly relay: Relay; readonly address: string };
  /** The log level this replica understands and may write (`log-level.ts`). Default `LOG_LEVEL`. */
  readonly logLevel?: number;
  /** The cluster's other nodes: the leader asks them which log level their replicas understand. Default none. */
  readonly peers?: readonly string[];
}

export interface ShardStatus {
  readonly domain: string;
  readonly role: 'leader' | 'follower' | 'none';
  readonly state: ShardState;
  readonly appliedSeq: number;
  readonly epoch: number;
  /** Follower: log entries not yet applied. Leader: appends in flight or awaiting apply. */
  readonly lag: number;
  readonly lastError?: string;
  readonly leaderNode?: string;
  readonly lastHeartbeatAt?: string;
  readonly leaseUntil?: string;
  readonly leadingSince?: string;
  /** Follower: its replica-read staleness bound now (ms); absent while it has none. */
  readonly staleMs?: number;
  /** The log level this replica understands (absent from hosts that predate levels: they understand 1). */
  readonly logLevel?: number;
  /** Leader: the highest level every replica heard from understands (it appends no higher), and each one's level. */
  readonly writeLevel?: ReplicaLevelsStatus['writeLevel'];
  readonly replicaLevels?: ReplicaLevelsStatus['replicaLevels'];
  /** Follower: the log level the leader's heartbeats advertise. */
  readonly leaderLogLevel?: number;
  /** The open store's read caches: being warmed since it opened (`ShardStore.warmUp`), or warm. */
  readonly warmUp?: 'warming' | 'warm';
  /** Why this replica's last compaction did not run or failed (not enough free space for the copy, …), until one succeeds. */
  readonly compactionError?: string;
}

const RETRY_MIN_MS = 100;
/** Longest wait for the leader's subscription to drain when it stops serving. */
const INTAKE_DRAIN_MAX_MS = 2_000;
const RETRY_MAX_MS = 2_000;
/** Longest back-off between epoch claims JetStream refuses for want of room: only an operator can make room. */
const NO_ROOM_RETRY_MAX_MS = 10_000;
/**
 * How long one claim keeps asking a KV that does not answer before it gives up and the machine catches up again
 * (which reads a marker another node appended meanwhile, and follows it): bounded, not "until it answers".
 */
const CLAIM_EPOCH_WITHIN_MS = 10_000;
/** Longest back-off between bootstrap attempts (no snapshot yet, a download that failed). */
const BOOTSTRAP_RETRY_MAX_MS = 5_000;
/**
 * A log that reads as ending below this replica's position is believed only when readings say so for this long
 * (and at least TAIL_LOST_READINGS times): a stream leader resumed from a freeze (SIGSTOP, a VM pause) answers with
 * its old, shorter state until it hears the new term. In CI two replicas halted on one such reading (log "ends at
 * 127" while it held 339) and stayed halted, leaving the domain one replica.
 */
const TAIL_LOST_CONFIRM_MS = 5_000;
const TAIL_LOST_READINGS = 3;
/** How often a replica halted in `aheadOfLog` asks the log again whether it holds this replica's history after all. */
const AHEAD_RECHECK_MS = 2_000;
/** How often, at most, a store that cannot commit (a full disk) is reported in the log while its apply is retried. */
const STORE_WRITE_LOG_EVERY_MS = 10_000;

/**
 * The store could not commit an applied batch (LMDB's commit failed: EIO or ENOSPC, which lmdb-js reports alike as
 * an I/O error when the disk is full). The entries stay in the log; the catch-up retries them with back-off.
 *
 * The message blames the disk only when the failure could be the disk's: a TypeError, ReferenceError or RangeError
 * thrown while applying is a fault in the code, and an operator told "its disk may be full" would look in the wrong
 * place (the chaos soak saw one from a half-edited tree reported as a full disk).
 */
export class StoreWriteError extends Error {
  override readonly name = 'StoreWriteError';
  constructor(domain: string, cause: unknown, detail: string) {
    const codeFault = cause instanceof TypeError || cause instanceof ReferenceError || cause instanceof RangeError;
    const why = codeFault ? `a fault in applying the entries (${(cause as Error).name}), not the disk` : 'its disk may be full';
    super(`the ${domain} store cannot write: ${detail}; ${why}`, { cause });
  }
}

/** How long to wait for lmdb-js's `commitError` to say what failed (it is settled by then; this only bounds it). */
const COMMIT_ERROR_WAIT_MS = 100;

/**
 * A failed commit's message. lmdb-js's own says only "Commit failed (see commitError for details)": the reason is on
 * its `commitError` promise (e.g. "Input/output error", code 5), read here.
 */
async function describeCommitFailure(err: unknown): Promise<string> {
  const message = (err as Error | undefined)?.message ?? String(err);
  const commitError = (err as { commitError?: unknown } | null)?.commitError;
  if (!(commitError instanceof Promise)) return message;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const reason: unknown = await Promise.race([
    commitError.then(
      () => undefined,
      (e: unknown) => e,
    ),
    new Promise((resolve) => (timer = setTimeout(resolve, COMMIT_ERROR_WAIT_MS))),
  ]);
  clearTimeout(timer);
  if (reason === undefined) return message;
  const code = (reason as { code?: unknown } | null)?.code;
  return `commit failed: ${(reason as Error)?.message ?? String(reason)}${code === undefined ? '' : ` (code ${String(code)})`}`;
}

/**
 * Store positions the leader puts in one prune entry (replicas accept up to shards' `MAX_PRUNE_SPAN`): each entry is one
 * synchronous transaction on every replica at once, so it must be short enough for heartbeats and leases to flow
 * between entries. At 1M facts, an entry of 2048 decayed facts applies in ~120 ms of CPU in merged segments and
 * ~30 ms in the open one (loaded 2-core box); 65 536 took seconds to minutes and froze the domain (review 11b, 9).
 */
export const PRUNE_ENTRY_SPAN = 2048;

export class ShardActor implements ShardRuntime {
  private actor: Actor<typeof shardMachine> | undefined;
  private store: ShardStore | undefined;
  private pipeline: WritePipeline | undefined;
  private subscription: Subscription | undefined;
  private intakeDrained: Promise<void> = Promise.resolve();
  private readonly abort = new AbortController();
  /** `status().warmUp`: set when a store opens, until the next one does (`warmStore`). */
  private warmState: 'warming' | 'warm' | undefined;
  private readonly tasks = new Set<Promise<unknown>>();
  private readonly waiters = new SeqWaiters(() => this.position);
  private position = 0;
  private epoch = 0;
  private followLag = 0;
  /** Why the store's last commit failed, until one succeeds (shown as `status`'s lastError). */
  private storeWriteError: string | undefined;
  /** Why the last epoch claim failed, until one is answered (shown as `status`'s lastError while `claiming`). */
  private claimError: string | undefined;
  private storeWriteLoggedAt = Number.NEGATIVE_INFINITY;
  private compactionError: string | undefined;
  private drained: Promise<void> | undefined;
  private stoppedPromise: Promise<void> | undefined;
  private readonly failover: ShardFailover;
  private pendingHandOff:
    | { readonly to: string; resolve(r: { seq: number; epoch: number; intakeStoppedAt: string }): void; reject(e: unknown): void }
    | undefined;
  private intakeStoppedAt = 0;
  private stopRefusing: (() => void) | undefined;
  private claimFailures = 0;
  /** The last claim failed because JetStream had no room for the epoch bucket: back off longer. */
  private claimNoRoom = false;
  /** `entryHash` of the last entry applied here, when known (kept in the store across restarts): checked against `Sm-Prev`. */
  private lastHash: { readonly seq: number; readonly hash: string } | undefined;
  /** Set when this replica applied an entry the log did not keep: the next catch-up rebuilds it from seq 1. */
  private rebuildReason: string | undefined;
  /** The current run of readings that put the log's tail below this replica's position: since when, how many. */
  private tailBelow: { since: number; last: number; readings: number } | undefined;
  /** Replica reads (`sm.replica.<domain>.*`), served while leading or following. */
  private replicaSubscriptions: Subscription[] = [];
  private replicaDrained: Promise<void> = Promise.resolve();
  /** This replica's staleness bound, from the leader's heartbeats (kept while following). */
  private freshness: FreshnessTracker | undefined;
  /** The compaction under way on this leader (commanded or automatic): one at a time. */
  private compacting: Promise<CompactReport> | undefined;
  /** The backup under way on this leader (`sm.ctl.<node>.backup`): one at a time. */
  private backingUp: Promise<BackupReport> | undefined;
  /** The leader's automatic compaction trigger, while leading. */
  private compactionTrigger: CompactionTrigger | undefined;
  private bootstrapFailures = 0;
  /** While leading: which log level every replica understands (decides grouping and prune). */
  private replicaLevels: ReplicaLevels | undefined;
  /** While following: the level the leader's heartbeats advertise. */
  private leaderLogLevel: number | undefined;

  constructor(private readonly o: ShardActorOptions) {
    this.failover = new ShardFailover({
      nc: o.nc,
      epochs: o.failover.epochs,
      domain: o.domain.name,
      node: o.node,
      clock: o.failover.clock ?? systemTimerClock,
      leaseMs: o.failover.leaseMs,
      heartbeatMs: o.failover.heartbeatMs,
      rank: o.failover.rank,
      storeEpoch: () => this.store?.leadership()?.epoch ?? 0,
      position: () => this.position,
      positionHash: () => (this.lastHash?.seq === this.position ? this.lastHash.hash : undefined),
      promote: () => this.command({ type: 'PROMOTE' }),
      deposed: (detail) => this.command({ type: 'FENCED', detail }),
      log: (line) => this.log(line),
      // A renewal must reach the stream's Raft leader (a leader on the minority side of a split lets its lease lapse),
      // and a hand-off to this node counts only while it is the log's tail (not when replaying history).
      confirmQuorum: () => logTail(this.o.jsm, this.domain),
      // A tail past this leader's own appends means another node appended (it could not hear this leader): depose.
      appendedThrough: () => this.pipeline?.appendedThrough,
      logTail: () => logTail(this.o.jsm, this.domain),
      logLevel: this.logLevel,
      ...(o.failover.clockProblem ? { clockProblem: o.failover.clockProblem } : {}),
    });
  }

  /** The log level this replica understands and may write. */
  private get logLevel(): number {
    return this.o.logLevel ?? LOG_LEVEL;
  }

  get domain(): string {
    return this.o.domain.name;
  }

  get state(): ShardState {
    return (this.actor?.getSnapshot().value as ShardState | undefined) ?? 'starting';
  }

  /** Starts the machine. Harmless when already started. */
  start(): void {
    if (this.actor) return;
    this.actor = createActor(shardMachine, { input: { runtime: this, wantsLead: this.o.leader } });
    let last: string | undefined;
    this.actor.subscribe({
      next: (snap) => {
        const state = String(snap.value);
        if (state === last) return;
        last = state;
        const why = snap.context.lastError && (state === 'failed' || state === 'catchingUp' || state === 'needsUpgrade' || state === 'aheadOfLog') ? ` (${snap.context.lastError})` : '';
        this.log(`→ ${state}${why}`);
      },
      error: (err) => this.log(`machine error: ${String(err)}`),
    });
    this.actor.start();
  }

  /**
   * Starts failover's lease watch now, or — on a cold start, before any heartbeat of this domain was heard — once
   * one is heard or the boot grace ends, so hosts that start a few seconds apart do not take over each other's
   * shards. Returns a cancel for the wait.
   */
  private watchLeaderWhenDue(): () => void {
    const f = this.o.failover;
    const due = (): boolean =>
      f.bootGraceUntil === undefined || this.o.clock.now() >= f.bootGraceUntil || f.sightings?.get(this.domain) !== undefined;
    if (due()) {
      this.failover.startFollowing();
      return () => undefined;
    }
    this.log('cold start: waiting to hear the leader before watching its lease');
    const timer = setInterval(() => {
      if (!due()) return;
      clearInterval(timer);
      this.failover.startFollowing();
    }, f.heartbeatMs);
    timer.unref?.();
    return () => clearInterval(timer);
  }

  /**
   * Stops taking requests by draining the leader's subscription, not unsubscribing it: requests the server had
   * already routed to it are still handled (and answered) instead of being dropped by the client library.
   */
  private stopIntake(): void {
    const sub = this.subscription;
    this.subscription = undefined;
    if (!sub) return;
    // Bounded: a drain waits for a round trip to the server, which a broken connection never completes.
    this.intakeDrained = withinDrainCap(sub.drain().catch(() => undefined));
  }

  /** Failover's commands, through the relay when there is one. */
  private command(event: ShardEvent): void {
    const r = this.o.relay;
    if (r) r.relay.send(`failover:${this.o.node}:${this.domain}`, r.address, event);
    else this.send(event);
  }

  /** Delivers a machine event (the host's relay calls this). */
  send(event: ShardEvent): void {
    this.actor?.send(event);
  }

  /** Drains and stops; resolves when the machine is `stopped`. Idempotent. */
  stop(): Promise<void> {
    if (this.stoppedPromise) return this.stoppedPromise;
    const actor = this.actor;
    if (!actor) return (this.stoppedPromise = this.drain());
    this.stoppedPromise = new Promise<void>((resolve) => {
      const sub = actor.subscribe({
        next: (snap) => {
          if (snap.value === 'stopped') {
            sub.unsubscribe();
            resolve();
          }
        },
        complete: () => resolve(),
      });
      if (actor.getSnapshot().status !== 'active') resolve();
    });
    actor.send({ type: 'STOP' });
    return this.stoppedPromise;
  }

  /** The store's content digest and this replica's position (replicas that agree on both hold the same memory). */
  digest(): { appliedSeq: number; digest: string } {
    if (!this.store || this.drained) throw new ShardmindError(ErrorCode.UNAVAILABLE, `the ${this.domain} store is not open`);
    return { appliedSeq: this.position, digest: this.store.digest() };
  }

  /**
   * Planned migration, leader side: stop intake, finish in-flight writes, append a hand-off marker naming `to`,
   * then follow. Resolves with the marker's sequence once it is applied here.
   */
  handOffTo(to: string): Promise<{ seq: number; epoch: number; intakeStoppedAt: string }> {
    if (to === this.o.node) return Promise.reject(new ShardmindError(ErrorCode.BAD_REQUEST, `to: ${to} already leads ${this.domain}`));
    if (this.state !== 'leading' || this.pendingHandOff) {
      return Promise.reject(new ShardmindError(ErrorCode.NOT_LEADER, `${this.o.node} does not lead ${this.domain} (${this.state})`));
    }
    return new Promise((resolve, reject) => {
      this.pendingHandOff = { to, resolve, reject };
      this.send({ type: 'HANDOFF', to });
    });
  }

  /**
   * `sm.ctl.<node>.compact`, and the automatic trigger: snapshot this leader's store into the domain's snapshot
   * bucket, then purge the log below it (`compaction.ts`). A compaction under way is joined, not repeated.
   */
  compact(): Promise<CompactReport> {
    if (this.compacting) return this.compacting;
    if (this.state !== 'leading' || !this.store) {
      return Promise.reject(new ShardmindError(ErrorCode.NOT_LEADER, `${this.o.node} does not lead ${this.domain} (${this.state}): compact on its leader`));
    }
    const { path, ...storeOptions } = this.storeOptions();
    const c = this.compactionSettings;
    // The memory's own compaction first (config `pruneInactiveDays` / `pruneDecayedBelow`), so the snapshot is of
    // what remains.
    const pruneFirst =
      (c.pruneInactiveDays ?? 0) > 0 || (c.pruneDecayedBelow ?? 0) > 0
        ? this.prune({
            ...((c.pruneInactiveDays ?? 0) > 0 ? { inactiveDays: c.pruneInactiveDays! } : {}),
            ...((c.pruneDecayedBelow ?? 0) > 0 ? { decayedBelow: c.pruneDecayedBelow! } : {}),
          }).catch((err: unknown) => {
            // A replica that does not understand prune yet: compact what there is, prune once every Mini is upgraded.
            if ((err as ShardmindError | null)?.code !== ErrorCode.UPGRADE_REQUIRED) throw err;
            this.log(`compacting without the configured prune: ${(err as Error).message}`);
            return undefined;
          })
        : Promise.resolve(undefined);
    const run = pruneFirst.then(() => compactShard({
      js: this.o.js,
      jsm: this.o.jsm,
      domain: this.domain,
      node: this.o.node,
      replicas: this.o.replicas,
      storePath: path,
      storeOptions,
      retainEntries: c.retainEntries,
      keepSnapshots: c.keepSnapshots,
      logLevel: this.logLevel,
      logHashAt: (seq) => this.logHashAt(seq),
      flush: () => this.o.nc.flush(),
      clock: this.o.clock,
      log: (line) => this.log(line),
    })).finally(() => {
      this.compacting = undefined;
    });
    this.compacting = this.track(run);
    run.then(
      (r) => {
        this.compactionError = undefined;
        this.compactionTrigger?.compacted(r.seq);
      },
      (err: unknown) => {
        this.compactionError = (err as Error)?.message ?? String(err);
      },
    );
    return run;
  }

  /**
   * `sm.ctl.<node>.backup`: copy this leader's store and upload it to the domain's backup bucket for the CLI to
   * download (`backup.ts`); no purge, no snapshot a replica would install. A backup under way is joined.
   */
  backup(): Promise<BackupReport> {
    if (this.backingUp) return this.backingUp;
    if (this.state !== 'leading' || !this.store) {
      return Promise.reject(new ShardmindError(ErrorCode.NOT_LEADER, `${this.o.node} does not lead ${this.domain} (${this.state}): back up on its leader`));
    }
    const { path, ...storeOptions } = this.storeOptions();
    const run = backupShard({
      js: this.o.js,
      domain: this.domain,
      node: this.o.node,
      storePath: path,
      storeOptions,
      logLevel: this.logLevel,
      logHashAt: (seq) => this.logHashAt(seq),
      flush: () => this.o.nc.flush(),
      clock: this.o.clock,
      log: (line) => this.log(line),
    }).finally(() => {
      this.backingUp = undefined;
    });
    this.backingUp = this.track(run);
    return run;
  }

  /**
   * Compacts the memory itself (`PruneEntry`): the leader appends prune entries over every store position up to the
   * last one now, `PRUNE_ENTRY_SPAN` at a time, all stamped with one time, so every replica forgets the same facts.
   * `inactiveDays` (closed facts older than that) defaults to never; `decayedBelow` to keeping decayed facts.
   */
  async prune(o: { readonly inactiveDays?: number; readonly decayedBelow?: number }): Promise<PruneReport> {
    const notLeading = (): ShardmindError =>
      new ShardmindError(ErrorCode.NOT_LEADER, `${this.o.node} does not lead ${this.domain} (${this.state}): prune on its leader`);
    if (this.state !== 'leading' || !this.store) throw notLeading();
    // Every replica must understand prune entries (level 2) or it would skip or halt on them; the pipeline refuses
    // them too, this says which shard. A census still waiting for a peer's first answer (a leader that just started)
    // is waited for, at most about a window, rather than read as a refusal.
    await this.replicaLevels?.settled();
    if (this.state !== 'leading' || !this.store) throw notLeading();
    const writeLevel = this.pipeline?.writeLevel ?? 1;
    if (writeLevel < 2) throw upgradeRequired('prune', 2, writeLevel, this.domain);
    const startedAt = this.o.clock.now();
    const last = this.store.stats().lastPosition;
    let pruned = 0;
    let ranges = 0;
    for (let from = 1; from <= last; from += PRUNE_ENTRY_SPAN) {
      const pipeline = this.pipeline;
      if (this.state !== 'leading' || !pipeline) throw notLeading();
      const r = await this.track(
        pipeline.submit({
          v: 1,
          op: 'prune',
          opId: `prune-${this.domain}-${this.o.node}-${startedAt}-${from}`,
          recordedAt: startedAt,
          source: { agent: 'shardmind', node: this.o.node },
          fromPosition: from,
          toPosition: Math.min(from + PRUNE_ENTRY_SPAN, last + 1),
          // Days: "never" is a span longer than any clock has run.
          inactiveDays: o.inactiveDays ?? 1e9,
          ...(o.decayedBelow !== undefined ? { decayedBelow: o.decayedBelow } : {}),
        }),
      );
      pruned += r.pruned ?? 0;
      ranges++;
    }
    const report: PruneReport = { v: 1, domain: this.domain, node: this.o.node, pruned, positions: last, ranges, ms: this.o.clock.now() - startedAt };
    this.log(`pruned ${pruned} facts over ${last} positions (${ranges} entries) in ${report.ms} ms`);
    return report;
  }

  private get compactionSettings(): CompactionSettings {
    return this.o.compaction ?? { everyEntries: 0, retainEntries: 1_000, keepSnapshots: 2 };
  }

  status(): ShardStatus {
    const state = this.state;
    const lastError = this.storeWriteError ?? (state === 'claiming' ? this.claimError : undefined) ?? this.actor?.getSnapshot().context.lastError;
    const f: FailoverStatus = this.failover.status();
    return {
      ...f,
      domain: this.domain,
      role: state === 'leading' || state === 'handingOff' ? 'leader' : state === 'following' ? 'follower' : 'none',
      state,
      appliedSeq: this.position,
      epoch: Math.max(this.epoch, f.epoch),
      lag: state === 'leading' ? (this.pipeline?.depth ?? 0) : this.followLag,
      ...(lastError ? { lastError } : {}),
      ...(this.compactionError ? { compactionError: this.compactionError } : {}),
      ...this.followerStaleness(state),
      logLevel: this.logLevel,
      ...(state === 'leading' && this.replicaLevels ? this.replicaLevels.status() : {}),
      ...(state === 'following' && this.leaderLogLevel !== undefined ? { leaderLogLevel: this.leaderLogLevel } : {}),
      ...(this.store !== undefined && this.warmState !== undefined ? { warmUp: this.warmState } : {}),
    };
  }

  // ---- ShardRuntime: the work behind each state -------------------------------------------------------------

  async open(): Promise<void> {
    await this.openLocalStore();
    await this.retrying('ensure stream', () => ensureLogStream(this.o.jsm, this.domain, this.o.replicas));
  }

  private storeOptions(): ShardStoreOptions {
    const d = this.o.domain;
    return {
      path: join(this.o.dataDir, this.o.node, d.name),
      domain: d.name,
      ...(d.predicates ? { predicates: d.predicates } : {}),
      ...(d.defaultPredicate ? { defaultPredicate: d.defaultPredicate } : {}),
    };
  }

  private async openLocalStore(): Promise<void> {
    // A snapshot install that a crash interrupted leaves its download and the store it replaced beside the store;
    // a compaction leaves its copy of the store.
    clearInstallLeftovers(this.storeOptions().path);
    rmSync(snapshotCopyDir(this.storeOptions().path, this.domain), { recursive: true, force: true });
    rmSync(backupCopyDir(this.storeOptions().path, this.domain), { recursive: true, force: true });
    try {
      this.store = await this.o.openStore(this.storeOptions());
    } catch (err) {
      // Written by another version in another layout: the replica is derived from the log, so rebuild it — unless the
      // log was compacted: then the log alone cannot rebuild it, and the snapshots are in that other layout too.
      // Keep the store for the version that can read it (or a converter) rather than delete the only full copy here.
      if (!(err instanceof StoreFormatError)) throw err;
      if (await this.logCompacted()) {
        throw new Error(`${err.message}; the ${this.domain} log was compacted, so it cannot be rebuilt from the log: the store is kept (run the version that wrote it, or convert it)`);
      }
      this.log(`rebuilding this replica from the log: ${err.message}`);
      rmSync(err.path, { recursive: true, force: true });
      this.store = await this.o.openStore(this.storeOptions());
    }
    this.position = this.store.appliedSeq;
    this.epoch = this.store.leadership()?.epoch ?? 0;
    // What this replica applied last, as recorded with it (none for a store written before tails were kept): the
    // chain check, the check before claiming and the leader's heartbeats compare against it, restart or not.
    const tail = this.store.tailHash();
    this.lastHash = tail === undefined || this.position === 0 ? undefined : { seq: this.position, hash: tail };
    // A (re)opened store starts with no staleness bound: nothing is known about it until the next heartbeat.
    this.freshness = new FreshnessTracker(this.timerClock, { epoch: this.epoch, appliedSeq: this.position });
    this.warmStore(this.store);
  }

  /**
   * Warms the just-opened store's read caches a slice at a time between other work (`ShardStore.warmUp`, queued
   * with every other store of this process: `store-warming.ts`): reopened after a restart, a failover or a snapshot
   * install, a 1M-fact store otherwise answered its first recalls slower while each query word and subject was read
   * from the index blocks on first use (docs/decisions.md §48).
   */
  private warmStore(store: ShardStore): void {
    this.warmState = 'warming';
    warmInTurn({
      store,
      wanted: () => this.store === store && !this.abort.signal.aborted,
      ended: (ms, slices) => {
        if (this.store === store) this.warmState = 'warm';
        if (slices > 1) this.log(`warming the store ended after ${Math.round(ms)} ms of slices (${slices})`);
      },
      failed: (err) => {
        if (this.store === store) this.warmState = undefined;
        this.log(`warming the store stopped: ${(err as Error)?.message ?? String(err)}`);
      },
    });
  }

  /** Whether the log was compacted, asked until JetStream answers (false when stopping). */
  private async logCompacted(): Promise<boolean> {
    let compacted = false;
    await this.retrying('read where the log starts', async () => {
      compacted = await logWasCompacted(this.o.jsm, this.domain);
    });
    return compacted;
  }

  /**
   * This replica applied an entry the log did not keep (see `applyRecords`): its LMDB cannot be trusted from that
   * point, and LMDB cannot take one entry back, so it is wiped and replayed from the log's first entry (or, once the
   * log was compacted, bootstraps from the newest snapshot).
   */
  private async rebuildStore(why: string): Promise<void> {
    this.log(`rebuilding this replica from the log: ${why}`);
    // A compaction or backup that began while this node led may still be copying the store's directory: let it finish.
    await this.compacting?.catch(() => undefined);
    await this.backingUp?.catch(() => undefined);
    await this.store?.close();
    this.store = undefined;
    rmSync(this.storeOptions().path, { recursive: true, force: true });
    await this.openLocalStore();
  }

  async catchUp(): Promise<void> {
    let compacted: LogCompactedError | undefined;
    let halted: NeedsUpgradeError | undefined;
    let lost: LogTailLostError | LogHistoryReplacedError | undefined;
    await this.retrying('catch up', async () => {
      let { firstSeq, lastSeq: tail } = await logBounds(this.o.jsm, this.domain);
      // The log ends below what this replica applied: it lost entries only this store holds (acknowledged writes
      // among them). Reading on from there would skip the log's next entries at those sequences, and a rebuild would
      // delete the only copy of them: halt with the store as it is (the machine's `aheadOfLog`), before any rebuild,
      // once the stream leader says so for long enough (`shortTail`; it throws, and so retries, until then).
      if (tail < this.position) {
        const judged = await this.shortTail({ firstSeq, lastSeq: tail });
        if (judged instanceof LogTailLostError) {
          const why = this.rebuildReason;
          this.rebuildReason = undefined;
          lost = judged;
          this.log(`ERROR: ${lost.message}${why === undefined ? '' : ` (a rebuild was due and is not done: ${why})`}`);
          return;
        }
        ({ firstSeq, lastSeq: tail } = judged);
      }
      this.tailBelow = undefined;
      const why = this.rebuildReason;
      if (why !== undefined) {
        // Asked first (a failure to ask is retried with the rebuild still due): a log that is another history
        // altogether must not replace this store either.
        const replaced = await this.logReplacedHistory();
        this.rebuildReason = undefined;
        if (replaced) {
          lost = replaced;
          this.log(`ERROR: ${replaced.message} (a rebuild was due and is not done: ${why})`);
          return;
        }
        await this.rebuildStore(why);
      }
      // The log was compacted past what this replica needs next (a newcomer, a wiped or rebuilt replica, one that was
      // down through a compaction): it bootstraps from a snapshot (the machine's `bootstrapping` state), not the log.
      if (firstSeq > this.position + 1) {
        compacted = new LogCompactedError(this.domain, this.position + 1, firstSeq);
        return;
      }
      try {
        await this.track(
          readLog(this.o.js, this.domain, {
            fromSeq: this.position + 1,
            untilSeq: tail,
            signal: this.abort.signal,
            onBatch: (batch, pending) => this.applyRecords(batch, pending),
          }),
        );
      } catch (err) {
        // Not a transient failure: reading again would stop at the same message.
        if (!(err instanceof NeedsUpgradeError)) throw err;
        halted = err;
        return;
      }
      if (this.position < tail && !this.abort.signal.aborted) throw new Error(`read stopped at ${this.position} of ${tail}`);
    });
    if (halted && !this.abort.signal.aborted) {
      this.noteHaltWithWonEpoch(halted);
      throw halted;
    }
    if (lost && !this.abort.signal.aborted) throw lost;
    if (compacted && !this.abort.signal.aborted) throw compacted;
  }

  /**
   * A standby that won an epoch (a lapsed lease, a hand-off) and then halts in `needsUpgrade` on its way to leading
   * never appends its marker nor beats: the other standbys wait out that epoch's lease before the next claim. Said
   * plainly, since it looks like a slow failover.
   */
  private noteHaltWithWonEpoch(halt: NeedsUpgradeError): void {
    if (!this.failover.hasWonEpoch) return;
    this.log(
      `won an epoch of ${this.domain} but cannot lead: ${halt.message}; failover waits about one lease (${this.o.failover.leaseMs} ms) until another standby claims the next epoch`,
    );
  }

  /**
   * Installs the domain's newest snapshot in place of this replica's store (`snapshot-install.ts`: downloaded,
   * verified, swapped atomically), reopens it, and leaves the rest to the next catch-up (from the snapshot's seq + 1).
   */
  async bootstrap(): Promise<void> {
    if (this.bootstrapFailures > 0) {
      await abortableDelay(Math.min(RETRY_MIN_MS * 2 ** this.bootstrapFailures, BOOTSTRAP_RETRY_MAX_MS), this.abort.signal);
    }
    if (this.abort.signal.aborted) return;
    const work = (async () => {
      // A compaction or backup that began while this node led may still be copying the store it is about to replace.
      await this.compacting?.catch(() => undefined);
      await this.backingUp?.catch(() => undefined);
      const { firstSeq } = await logBounds(this.o.jsm, this.domain);
      const bucket = await SnapshotBucket.find(this.o.js, this.o.jsm, this.domain, this.o.replicas);
      if (!bucket) throw new ShardmindError(ErrorCode.UNAVAILABLE, `the ${this.domain} log starts at seq ${firstSeq} and there is no snapshot bucket to start from`);
      const { path, ...storeOptions } = this.storeOptions();
      await installNewestSnapshot({
        bucket,
        storePath: path,
        storeOptions,
        logFirstSeq: firstSeq,
        position: this.position,
        // A snapshot taken by a build of a higher level is refused (NeedsUpgradeError: the machine's needsUpgrade).
        logLevel: this.logLevel,
        closeStore: async () => {
          await this.store?.close();
          this.store = undefined;
        },
        log: (line) => this.log(line),
      });
      // Stopping meanwhile: drain closes what is open, and opens nothing new.
      if (this.abort.signal.aborted) return;
      await this.openLocalStore();
      this.advance(this.position);
      // A replica replaying the log tells failover of each marker it applies; one installed from a snapshot learns of
      // the snapshot's last marker here: a hand-off to this node that is still the log's last word promotes it.
      const mark = this.store?.leadership();
      if (mark?.kind === 'handoff' && mark.to === this.o.node) {
        this.failover.onMarker(
          { v: 1, op: 'marker', kind: 'handoff', epoch: mark.epoch, node: mark.node, to: mark.to, opId: `snapshot-handoff-${mark.seq}`, recordedAt: 0, source: { agent: 'shardmind', node: mark.node } },
          mark.seq,
        );
      }
    })();
    try {
      // Tracked: a drain waits for an install under way before it closes the store.
      await this.track(work);
      this.bootstrapFailures = 0;
    } catch (err) {
      this.bootstrapFailures++;
      if (err instanceof NeedsUpgradeError) this.noteHaltWithWonEpoch(err);
      throw err;
    }
  }

  /**
   * Every step is bounded (the leader check by a lease, the back-off, each JetStream request by its timeout, the
   * epoch claim by CLAIM_EPOCH_WITHIN_MS), so a claim that cannot finish gives up and the machine catches up and
   * tries again, or follows the leader it then finds; each step that waits says so (`ClaimSteps`), and each claim
   * ends with one line of its steps' times.
   */
  async claim(): Promise<void> {
    this.stopRefusing?.();
    this.pipeline?.close();
    const steps = new ClaimSteps({ log: (line) => this.log(line) });
    try {
      // Not a failure, so no back-off: a placement leader that came back while another node leads follows it.
      const leader = await steps.run('looking for a live leader elsewhere', () => this.liveLeaderElsewhere());
      if (leader) {
        throw new ShardmindError(
          ErrorCode.NOT_LEADER,
          `${leader.node} leads ${this.domain} in epoch ${leader.epoch}: following it (\`shardmind apply\` moves the shard back with a hand-off)`,
        );
      }
      // A claim that failed for a transient reason (JetStream electing, a timeout) comes back here through
      // catchingUp: back off so the loop cannot spin.
      if (this.claimFailures > 0) {
        const ms = Math.min(RETRY_MIN_MS * 2 ** (this.claimFailures - 1), this.claimNoRoom ? NO_ROOM_RETRY_MAX_MS : RETRY_MAX_MS);
        await steps.run('backing off', () => abortableDelay(ms, this.abort.signal));
      }
      try {
        await this.claimOnce(steps);
        this.claimFailures = 0;
        this.claimNoRoom = false;
      } catch (err) {
        this.claimFailures++;
        this.claimNoRoom = err instanceof EpochClaimNoRoomError || (err as Error)?.cause instanceof EpochClaimNoRoomError;
        throw err;
      }
      this.log(steps.summary(`claimed epoch ${this.epoch} at seq ${this.position}`));
    } catch (err) {
      this.log(steps.summary(`claim gave up at ${steps.lastStep ?? 'its start'} (${(err as Error)?.message ?? String(err)})`));
      throw err;
    }
  }

  /**
   * Asked between epoch claim attempts: a leader heard within its lease that makes this claim pointless, said as
   * the reason to step aside. The one `liveLeaderElsewhere` waits for, or any other node leading in an epoch above
   * the last marker this replica applied (the log has moved on past the tail it caught up to: its marker would be
   * fenced, or its claim lost).
   */
  private leaderHeardElsewhere(): string | undefined {
    const sightings = this.o.failover.sightings;
    const s = sightings?.get(this.domain);
    if (!s || s.node === this.o.node || !sightings!.isLive(this.domain)) return undefined;
    const last = this.store?.leadership();
    const newer = s.epoch > (last?.epoch ?? 0);
    const placed = last !== undefined && last.node !== this.o.node && !this.failover.hasWonEpoch && s.epoch >= last.epoch;
    if (!newer && !placed) return undefined;
    return `${s.node} leads ${this.domain} in epoch ${s.epoch} (heard while the epoch claim went unanswered): following it`;
  }

  /**
   * A claim this node did not win first (config placement at start-up, not a lapsed lease or a hand-off to it) is
   * dropped when the log's last leader is another node that is still heartbeating: taking the shard back would cost
   * the clients an unplanned gap, while `shardmind apply` moves it back with a hand-off. Waits at most one lease to
   * hear that leader (a host that just started may not have heard a beat yet).
   */
  private async liveLeaderElsewhere(): Promise<Sighting | undefined> {
    const sightings = this.o.failover.sightings;
    const last = this.store?.leadership();
    if (!sightings || !last || last.node === this.o.node || this.failover.hasWonEpoch) return undefined;
    const deadline = this.o.clock.now() + this.o.failover.leaseMs;
    for (;;) {
      const s = sightings.get(this.domain);
      if (s && s.node !== this.o.node && s.epoch >= last.epoch && sightings.isLive(this.domain)) return s;
      if (sightings.isLive(this.domain) === false || this.o.clock.now() >= deadline || this.abort.signal.aborted) return undefined;
      await abortableDelay(Math.max(10, this.o.failover.heartbeatMs / 4), this.abort.signal);
    }
  }

  private async claimOnce(steps: ClaimSteps): Promise<void> {
    // The entry this node caught up to is what its epoch marker will name as its predecessor, and what it will serve
    // from: it must be the log's. A catch-up whose last message came from a server just resumed from a freeze can
    // end on an entry the log never kept (no later entry in that read to reveal it).
    await steps.run(`checking the log holds seq ${this.position}`, () => this.checkAppliedTail());
    const pipeline = new WritePipeline({
      nc: this.o.nc,
      subject: logSubject(this.domain),
      store: this.requireStore(),
      lastSeq: this.position,
      // Until the census (started in `lead`) has heard the replicas: the level the log already holds (a marker and
      // plain writes are level 1), since a replica below it stops at that message anyway (`logLevelHeld`).
      logLevel: this.logLevelHeld(),
      resolveSpecs: specResolver(this.o.domain),
      ...(this.lastHash?.seq === this.position ? { lastHash: this.lastHash.hash } : {}),
      onApplied: (seq, hash) => {
        this.lastHash = { seq, hash };
        this.advance(seq);
      },
      onCommitted: (applied) => publishChanges(this.o.nc, this.domain, applied, (factId) => this.store?.getFact(factId)),
    });
    this.pipeline = pipeline;
    // The KV bucket may not be writable yet (a cluster that just started, a stream leader being elected): tried
    // again for CLAIM_EPOCH_WITHIN_MS, then the machine catches up and claims anew. Not until it answers: the claim
    // would sit in `claiming` while another node leads (decisions §83).
    let epoch: number | undefined;
    try {
      epoch = await steps.run('claiming an epoch in KV', () =>
        this.failover.takeEpoch({
          withinMs: CLAIM_EPOCH_WITHIN_MS,
          signal: this.abort.signal,
          stepAside: () => this.leaderHeardElsewhere(),
          onAttemptFailed: (err, attempt) => {
            const why = (err as Error)?.message ?? String(err);
            // Each new reason, and every fifth attempt of the same (a full JetStream can last hours).
            if (attempt === 1 || attempt % 5 === 0 || why !== this.claimError) this.log(`epoch claim attempt ${attempt} failed: ${why}`);
            this.claimError = why;
          },
        }),
      );
      this.claimError = undefined;
    } catch (err) {
      pipeline.close();
      throw err;
    }
    if (epoch === undefined) {
      pipeline.close();
      throw new ShardmindError(ErrorCode.NOT_LEADER, `another node claimed the next epoch of ${this.domain}`);
    }
    // An epoch won before the catch-up can be overtaken during it: while this node was catching up (slowly, its
    // server half cut off), another standby claimed a later epoch and led. Its marker is now in this store; leading
    // in the older epoch would put an older epoch's marker after a newer one's and serve beside the real leader
    // until its next append was fenced (seen in the pause-nats-server fault test). Epoch markers only go up.
    const logged = this.requireStore().leadership();
    if (logged && logged.epoch >= epoch) {
      pipeline.close();
      throw new ShardmindError(
        ErrorCode.NOT_LEADER,
        `epoch ${epoch} of ${this.domain} is stale: the log already has ${logged.node}'s marker of epoch ${logged.epoch}`,
      );
    }
    this.epoch = epoch;
    try {
      // Through the pipeline, so it carries `Nats-Expected-Last-Sequence` = the tail we caught up to: if anyone
      // appended since, it is rejected and we never serve. Bounded by the pipeline's publish timeout.
      await steps.run(`appending the epoch ${epoch} marker after seq ${this.position}`, () => this.track(pipeline.submit(this.marker('epoch'))));
    } catch (err) {
      await pipeline.settled();
      const why = pipeline.breakReason;
      if (why?.kind === 'fenced') throw new ShardmindError(ErrorCode.NOT_LEADER, why.detail);
      throw new Error(why ? `${why.kind}: ${why.detail}` : (err as Error)?.message ?? String(err));
    }
  }

  lead(send: (e: ShardEvent) => void): () => void {
    const pipeline = this.pipeline;
    if (!pipeline) {
      send({ type: 'FAILED', detail: 'lead without a claimed pipeline' });
      return () => undefined;
    }
    let left = false;
    this.subscription = serveShard(this.o.nc, {
      domain: this.domain,
      node: this.o.node,
      clock: this.o.clock,
      ...this.o.limits,
      store: this.requireStore(),
      submit: (entry) => pipeline.submit(entry),
      write: (entry, done) => pipeline.write(entry, done),
      waitForSeq: (seq, ms) => this.waiters.waitFor(seq, ms),
      position: () => this.position,
      readGate: () => this.readGate(),
      onInternalError: (err, op) => this.log(`internal error in ${op}: ${(err as Error)?.stack ?? String(err)}`),
    });
    // Replica reads too: a leader is fresh (staleness 0) while its lease holds, and refuses as for its own reads.
    this.startReplicaReads(() => 0, () => this.readGate());
    // Heartbeats, the lease, and stepping down when a later epoch shows up (issue 5).
    this.failover.startLeading(this.epoch);
    const trigger = this.startCompactionTrigger();
    const levels = this.startReplicaLevels(pipeline);
    const stopHeartbeat = (): void => {
      levels.stop();
      trigger.stop();
      this.failover.stopLeading();
    };
    this.log(`serving sm.shard.${this.domain}.* at epoch ${this.epoch}, seq ${this.position}`);
    pipeline.onBroken((why) => {
      if (left) return;
      this.log(`pipeline broke: ${why.kind}: ${why.detail}`);
      stopHeartbeat();
      // Refusals start before the subscription goes, so no request falls between them.
      this.refuseUntilNextLeader();
      this.stopIntake();
      this.stopReplicaReads();
      send(
        why.kind === 'fenced'
          ? { type: 'FENCED', detail: why.detail }
          : why.kind === 'resync'
            ? { type: 'RESYNC', detail: why.detail }
            : { type: 'FAILED', detail: why.detail },
      );
    });
    return () => {
      left = true;
      this.intakeStoppedAt = this.o.clock.now();
      stopHeartbeat();
      // Refusals start before the subscription goes, so no request falls between them.
      this.refuseUntilNextLeader();
      this.stopIntake();
      this.stopReplicaReads();
    };
  }

  follow(send: (e: ShardEvent) => void): () => void {
    const stopWatching = this.watchLeaderWhenDue();
    const stopBeats = this.trackFreshness((detail) => send({ type: 'TAIL_ENDED', detail }));
    this.startReplicaReads(() => this.freshness?.staleness() ?? Number.POSITIVE_INFINITY);
    const stop = new AbortController();
    const onAbort = (): void => stop.abort();
    this.abort.signal.addEventListener('abort', onAbort, { once: true });
    this.track(
      readLog(this.o.js, this.domain, {
        fromSeq: this.position + 1,
        signal: stop.signal,
        // A tail that goes quiet while the log moves on (its server was paused or cut off) is restarted.
        tail: () => logTail(this.o.jsm, this.domain),
        onBatch: (batch, pending) => this.applyRecords(batch, pending),
      }).then(
        () => {
          if (!stop.signal.aborted) send({ type: 'TAIL_ENDED', detail: 'the log tail ended' });
        },
        (err: unknown) => {
          if (stop.signal.aborted) return;
          if (err instanceof NeedsUpgradeError) send({ type: 'NEEDS_UPGRADE', detail: err.message });
          else send({ type: 'TAIL_ENDED', detail: `tail failed: ${(err as Error)?.message ?? String(err)}` });
        },
      ),
    );
    return () => {
      stopWatching();
      stopBeats();
      this.stopReplicaReads();
      this.failover.stopFollowing();
      this.abort.signal.removeEventListener('abort', onAbort);
      stop.abort();
    };
  }

  async handOff(to: string): Promise<void> {
    const pending = this.pendingHandOff;
    this.pendingHandOff = undefined;
    try {
      const pipeline = this.pipeline;
      if (!pipeline) throw new Error('handOff outside leading');
      // Requests the server had already sent to the leader's subscription are handled before the marker.
      await this.intakeDrained;
      await pipeline.settled();
      const r = await pipeline.submit({ ...this.marker('handoff'), to });
      pipeline.close();
      await pipeline.settled();
      this.log(`handed off to ${to} at seq ${r.seq}`);
      pending?.resolve({ seq: r.seq, epoch: this.epoch, intakeStoppedAt: new Date(this.intakeStoppedAt || this.o.clock.now()).toISOString() });
    } catch (err) {
      pending?.reject(err);
      throw err;
    }
  }

  drain(): Promise<void> {
    if (this.drained) return this.drained;
    this.drained = (async () => {
      this.abort.abort();
      this.failover.close();
      this.stopIntake();
      this.stopReplicaReads();
      await this.intakeDrained;
      await this.replicaDrained;
      if (this.pipeline) {
        this.pipeline.close();
        await this.pipeline.settled();
      }
      await Promise.allSettled([...this.tasks]);
      this.stopRefusing?.();
      this.waiters.cancelAll(new ShardmindError(ErrorCode.UNAVAILABLE, `the ${this.domain} shard is stopping`));
      await this.store?.close();
    })();
    return this.drained;
  }

  // ---- helpers -------------------------------------------------------------------------------------------------

  private async applyRecords(batch: readonly LogRecord[], pending: number): Promise<void> {
    // A message above this build's log level: apply what comes before it, nothing from it, and stop (`needsUpgrade`).
    // Its header says so; a body this build decodes can only be above it when the build runs below `LOG_LEVEL` (tests
    // simulating an older build, or a header-less group from a leader before levels).
    const understood = this.logLevel;
    const checkBody = understood < LOG_LEVEL;
    const above = batch.findIndex((r) => r.level > understood || (checkBody && r.entry !== undefined && bodyLevel(r.entry) > understood));
    if (above >= 0) {
      const r = batch[above]!;
      if (above > 0) await this.applyRecords(batch.slice(0, above), pending + batch.length - above);
      const halt = new NeedsUpgradeError(this.domain, r.seq, Math.max(r.level, r.entry ? bodyLevel(r.entry) : 1), this.logLevel);
      this.log(`${halt.message}: applied up to seq ${this.position}, stopping here until this host runs a build that understands it`);
      throw halt;
    }
    await this.checkChain(batch);
    // Applied entries are contiguous from seq 1: a batch that starts past this replica's position comes from a read
    // that outlived a rebuild or a restart of the position (e.g. a stopped tail whose apply was still under way).
    const first = batch.find((r) => r.seq > this.position);
    if (first !== undefined && first.seq !== this.position + 1) {
      throw new Error(`log read of ${this.domain}: batch starts at seq ${first.seq}, this replica is at ${this.position}`);
    }
    const entries: { seq: number; entry: LogMessage }[] = [];
    for (const r of batch) {
      if (r.entry) entries.push({ seq: r.seq, entry: r.entry });
      else this.log(`seq ${r.seq} is not a log entry; skipped`);
    }
    const store = this.requireStore();
    // The batch's last entry's hash is kept with it, so that after a restart the chain check still knows the tail.
    const lastRecord = batch[batch.length - 1];
    const tailHash = lastRecord !== undefined && lastRecord.seq === entries[entries.length - 1]?.seq ? lastRecord.hash : undefined;
    // A prune entry is a transaction's worth of work by itself (`PRUNE_ENTRY_SPAN`): a replica catching up applies
    // each in a batch of its own, so its event loop runs between them rather than once after all of them.
    for (let start = 0, i = 0; i < entries.length; i++) {
      const end = i + 1;
      if (end < entries.length && !entriesOf(entries[i]!.entry).some((e) => e.op === 'prune')) continue;
      const part = start === 0 && end === entries.length ? entries : entries.slice(start, end);
      const partHash = end === entries.length ? tailHash : batch.find((r) => r.seq === entries[i]!.seq)?.hash;
      start = end;
      try {
        await store.applyBatch(part, partHash === undefined ? undefined : { tailHash: partHash });
      } catch (err) {
        throw this.storeCannotWrite(err, await describeCommitFailure(err));
      }
      this.storeWriteError = undefined;
      if (store !== this.store) return;
    }
    // A rebuild replaced the store while this batch was applied (to the old one): nothing here is this replica's now.
    if (store !== this.store) return;
    // After the apply, so a promotion triggered by a hand-off marker starts from a store that has it.
    for (const { seq, entry: message } of entries) {
      // The leader appends markers alone, but a marker inside a group is a marker all the same.
      for (const entry of entriesOf(message)) {
        // Only a marker the store could have accepted moves failover state (a malformed one was applied as a rejection).
        if (entry.op !== 'marker' || typeof entry.epoch !== 'number' || typeof entry.node !== 'string') continue;
        this.freshness?.onEpoch(entry.epoch);
        this.failover.onMarker(entry, seq);
      }
    }
    this.followLag = pending;
    const last = batch[batch.length - 1];
    if (last) {
      // Two reads can overlap (a stopped tail still applying while the catch-up starts): the later seq wins.
      if (last.seq >= this.position) this.lastHash = { seq: last.seq, hash: last.hash };
      this.advance(last.seq);
    }
  }

  /**
   * Checks the batch's `Sm-Prev` chain (each entry names the hash of the one before it) from this replica's last
   * applied entry through the batch. A break means a message read at or before it is not the one the log kept — seen
   * when a consumer sat on a nats-server just resumed from a freeze, which delivered a deposed leader's never-committed
   * append. Where it breaks, the stream leader's copy of the entry before decides:
   * - it is what was read: the log itself carries the break (a writer that knew its predecessor wrong); the log is
   *   the truth, so apply as logged;
   * - it is not, and the bad message is in this batch: apply nothing, read again from a fresh consumer (throws);
   * - it is not, and this replica already applied it: rebuild the replica from the log (throws; see `catchUp`).
   */
  private async checkChain(batch: readonly LogRecord[]): Promise<void> {
    let known = this.lastHash;
    let index = 0;
    for (; index < batch.length; index++) {
      const r = batch[index]!;
      if (r.prev !== undefined && known !== undefined && known.seq === r.seq - 1 && r.prev !== known.hash) break;
      known = { seq: r.seq, hash: r.hash };
    }
    if (index === batch.length || known === undefined) return;
    const at = known.seq;
    const logged = await this.logHashAt(at);
    if (logged === undefined) throw new Error(`log read of ${this.domain}: the chain breaks after seq ${at} and JetStream cannot say why now; reading again`);
    if (logged === known.hash) {
      // Only if the entry after it is the log's too: a message the log did not keep can carry a wrong Sm-Prev itself.
      const next = batch[index]!;
      if ((await this.logHashAt(next.seq)) !== next.hash) {
        throw new Error(`log read of ${this.domain}: the message read at seq ${next.seq} is not the one the log kept; reading again`);
      }
      this.log(`the log's own Sm-Prev chain breaks after seq ${at}; applying the log as it is`);
      return;
    }
    const tail = this.lastHash;
    const tailHolds = this.position === 0 || (index > 0 && tail !== undefined && tail.seq === this.position && (await this.logHashAt(tail.seq)) === tail.hash);
    if (tailHolds) throw new Error(`log read of ${this.domain}: the message read at seq ${at} is not the one the log kept; reading again`);
    this.rebuildReason = `the entry this replica applied at or before seq ${this.position} is not the one the log kept (the chain breaks after seq ${at})`;
    throw new Error(this.rebuildReason);
  }

  /**
   * Asks the stream leader for the entry at this replica's position. Throws: a rebuild due when it differs;
   * `LogTailLostError` when the log ends below it; plain errors when the log cannot be asked now, or no longer holds
   * that one entry (deleted from the stream). An entry compacted away cannot be compared: nothing to check.
   */
  private async checkAppliedTail(when = 'checked before claiming'): Promise<void> {
    const mine = this.lastHash;
    if (mine === undefined || mine.seq !== this.position || this.position === 0) return;
    const logged = await this.logEntryAt(mine.seq);
    if (logged.kind === 'unanswered') throw new Error(`cannot ask the log for its entry at seq ${mine.seq} now: ${logged.detail}`);
    if (logged.kind === 'missing') {
      const { firstSeq, lastSeq } = await logBounds(this.o.jsm, this.domain);
      if (lastSeq < mine.seq) {
        const judged = await this.shortTail({ firstSeq, lastSeq });
        if (judged instanceof LogTailLostError) throw judged;
        throw new Error(`the ${this.domain} log's stream leader had no entry at seq ${mine.seq} and now has: asking again`);
      }
      if (firstSeq > mine.seq) return;
      throw new Error(`the log has no entry at seq ${mine.seq}, which this replica applied (it holds ${firstSeq}..${lastSeq}): it was deleted from the stream`);
    }
    this.tailBelow = undefined; // the log reaches this replica's position
    if (logged.hash === mine.hash) return;
    this.rebuildReason = `the entry this replica applied at seq ${mine.seq} is not the one the log kept (${when})`;
    throw new Error(this.rebuildReason);
  }

  /**
   * Before a rebuild: the log's entry at this store's last leadership marker must still be that marker. A replica
   * that applied entries the log did not keep (a deposed leader's last appends, delivered by a server resumed from a
   * freeze) diverges only after its last marker, and is rebuilt; a log that holds something else there is another
   * history (lost or recreated, then written again): the error to halt with. Undefined, and the rebuild goes ahead,
   * when there is no marker or the log was compacted past it. Throws when the log cannot be asked now.
   */
  private async logReplacedHistory(): Promise<LogHistoryReplacedError | undefined> {
    const mark = this.store?.leadership();
    if (!mark || mark.seq > this.position) return undefined;
    const mine = `${mark.kind} marker of epoch ${mark.epoch} by ${mark.node}`;
    const logged = await this.logEntryAt(mark.seq);
    if (logged.kind === 'unanswered') throw new Error(`cannot ask the log for its entry at seq ${mark.seq} now: ${logged.detail}`);
    if (logged.kind === 'missing') {
      const { firstSeq } = await logBounds(this.o.jsm, this.domain);
      return firstSeq > mark.seq ? undefined : new LogHistoryReplacedError(this.domain, mark.seq, mine, 'missing', this.position);
    }
    // Markers are appended alone, never inside a group.
    const message = decodeEntry(logged.data);
    const m = message?.op === 'marker' ? message : undefined;
    if (m && m.kind === mark.kind && m.epoch === mark.epoch && m.node === mark.node) return undefined;
    const found = m ? `a ${m.kind} marker of epoch ${m.epoch} by ${m.node}` : message ? `a ${message.op} entry` : 'not a log entry';
    return new LogHistoryReplacedError(this.domain, mark.seq, mine, found, this.position);
  }

  /**
   * A reading of the log's bounds that ends below this replica's position, put to the stream leader
   * (`judgeShortTail`). A stream info is answered by any member that sees no leader, from its own store: two replicas
   * halted for a minute on a just-restarted server's stale state (§75, seed 4002; §82). The leader's bounds come back
   * when it holds this replica's entry, or another entry there (then a rebuild is due, compared as for any log that
   * reaches this replica); the error to halt with once the leader has said "nothing there" long enough
   * (`confirmTailLost`). Throws a plain error, asking again and never halting, when no leader answers.
   */
  private async shortTail(reading: { firstSeq: number; lastSeq: number }): Promise<{ firstSeq: number; lastSeq: number } | LogTailLostError> {
    const mine = this.lastHash?.seq === this.position ? this.lastHash.hash : undefined;
    const verdict = await judgeShortTail(this.o.nc, this.domain, reading, { seq: this.position, hash: mine });
    if (verdict.kind === 'unanswered') {
      throw new Error(
        `the ${this.domain} log reads as ending at seq ${reading.lastSeq}, below this replica's ${this.position}, and no stream leader answers to confirm it (${verdict.detail}): asking again, not halting`,
      );
    }
    if (verdict.kind === 'lost') return this.confirmTailLost(reading.lastSeq);
    this.tailBelow = undefined;
    if (verdict.kind === 'differs') {
      this.rebuildReason ??= `the entry this replica applied at seq ${this.position} is not the one the log kept (asked of the stream leader after a reading of the log ended below it)`;
    }
    const held = verdict.kind === 'stale' ? "this replica's entry (or later ones)" : 'another entry';
    this.log(
      `the ${this.domain} log read as ending at seq ${reading.lastSeq}, below this replica's ${this.position}, but its stream leader holds ${held} there and ends at ${verdict.lastSeq}: a server's stale state, not a lost tail`,
    );
    return { firstSeq: verdict.firstSeq, lastSeq: verdict.lastSeq };
  }

  /**
   * One more reading of the log's tail below this replica's position: the error to halt with once such readings
   * have agreed for TAIL_LOST_CONFIRM_MS, TAIL_LOST_READINGS times or more; until then it throws a plain error, which
   * the caller's retry (catch-up) or the next attempt (claim, heartbeat check) turns into another reading.
   */
  private confirmTailLost(tail: number): LogTailLostError {
    const now = performance.now(); // a duration: a stepped wall clock must not shorten or stretch it
    // A reading long after the last one starts a new run: the readings must agree across the whole window.
    const run = this.tailBelow !== undefined && now - this.tailBelow.last <= TAIL_LOST_CONFIRM_MS ? this.tailBelow : { since: now, last: now, readings: 0 };
    this.tailBelow = { since: run.since, last: now, readings: run.readings + 1 };
    if (this.tailBelow.readings >= TAIL_LOST_READINGS && now - run.since >= TAIL_LOST_CONFIRM_MS) {
      this.tailBelow = undefined;
      return new LogTailLostError(this.domain, tail, this.position);
    }
    throw new Error(
      `the ${this.domain} log reads as ending at seq ${tail}, below this replica's ${this.position}: asking again before halting (a stream leader resumed from a freeze answers with its old state for a moment)`,
    );
  }

  /**
   * Halted in `aheadOfLog`: every AHEAD_RECHECK_MS, asks whether the log holds this replica's last entry (same bytes
   * at the same sequence) and its last leadership marker after all; if so, the reading that halted it was stale and
   * LOG_HOLDS sends it back to catching up, whose chain check still stands between it and anything the log did not
   * keep. A replica that cannot name its last entry's hash stays halted: there is nothing to compare.
   */
  watchAhead(send: (e: ShardEvent) => void): () => void {
    const stop = new AbortController();
    const onAbort = (): void => stop.abort();
    this.abort.signal.addEventListener('abort', onAbort, { once: true });
    const watching = (async () => {
      while (!stop.signal.aborted) {
        await abortableDelay(AHEAD_RECHECK_MS, stop.signal);
        if (stop.signal.aborted) return;
        const mine = this.lastHash;
        if (mine === undefined || mine.seq !== this.position || this.position === 0) continue;
        try {
          const logged = await this.logEntryAt(mine.seq);
          if (logged.kind !== 'found' || logged.hash !== mine.hash) continue;
          if ((await this.logReplacedHistory()) !== undefined) continue;
        } catch {
          continue; // the log cannot be asked now: ask again next time
        }
        if (stop.signal.aborted) return;
        const detail = `the ${this.domain} log holds this replica's entry at seq ${mine.seq} and its last marker after all (the reading that halted it was stale): catching up`;
        this.log(detail);
        send({ type: 'LOG_HOLDS', detail });
        return;
      }
    })();
    this.track(watching);
    return () => {
      stop.abort();
      this.abort.signal.removeEventListener('abort', onAbort);
    };
  }

  /** `entryHash` of the log's message at `seq`, asked of the stream leader; undefined when it does not answer. */
  private async logHashAt(seq: number): Promise<string | undefined> {
    const r = await this.logEntryAt(seq);
    return r.kind === 'found' ? r.hash : undefined;
  }

  /** The log's message at `seq`, asked of the stream leader: its hash, "the log has none", or "no answer now". */
  private async logEntryAt(
    seq: number,
  ): Promise<{ kind: 'found'; hash: string; data: Uint8Array } | { kind: 'missing' } | { kind: 'unanswered'; detail: string }> {
    // Collected, not the first answer: a member that sees no leader answers 503 before the leader answers at all.
    const r = await leaderMessage(this.o.nc, this.domain, { seq });
    return r.kind === 'found' ? { kind: 'found', hash: r.entry.hash, data: r.entry.data } : r;
  }

  private advance(seq: number): void {
    if (seq > this.position) this.position = seq;
    this.compactionTrigger?.onApplied(this.position);
    this.freshness?.onApplied(this.position);
    this.waiters.advanced();
  }

  /**
   * While leading: asks the other nodes which log level their replicas of this domain understand, and lets the
   * pipeline write at the highest level all of them do (`replica-levels.ts`). Stopped when it stops leading.
   */
  private startReplicaLevels(pipeline: WritePipeline): ReplicaLevels {
    this.replicaLevels?.stop();
    const leaseMs = this.o.failover.leaseMs;
    const levels = new ReplicaLevels({
      nc: this.o.nc,
      domain: this.domain,
      peers: (this.o.peers ?? []).filter((n) => n !== this.o.node),
      ownLevel: this.logLevel,
      // Read again at each decision: once this leader's own level-4 writes are in the log, a replica that shows up
      // at level 3 stops at them anyway, so the census no longer drops back for it (§78).
      logHolds: () => this.logLevelHeld(),
      clock: this.timerClock,
      intervalMs: Math.max(1_000, leaseMs),
      windowMs: 3 * Math.max(1_000, leaseMs),
      requestTimeoutMs: Math.max(500, leaseMs / 2),
      onChange: (level) => {
        this.log(`replicas understand log level ${level}: ${level >= 2 ? 'grouping writes, prune allowed' : 'one write per message, prune refused'}`);
        pipeline.useLogLevel(level);
      },
      log: (line) => this.log(line),
    });
    this.replicaLevels = levels;
    levels.start();
    return levels;
  }

  /**
   * The highest log level this replica knows the log holds, within this build's: the highest level an applied entry
   * said it was written at (4 and up, §78), else 3 once it applied an assert carrying a leader's resolved cardinality,
   * else 1 (the store keeps both across restarts and snapshots, equal on every replica). A new leader writes at it
   * from its first write instead of below it until its census settles: writes in that window lost what the level
   * gives (review-session10b finding 2 for 3; §71's rules for 4), while a replica below it stops at the entry already
   * in the log whatever is written after it.
   */
  private logLevelHeld(): number {
    const store = this.store;
    if (store === undefined) return 1;
    const held = Math.max(store.appliedWrittenLevel() ?? 1, store.appliedResolvedSpecs() ? RESOLVED_SPEC_LEVEL : 1);
    return Math.min(held, this.logLevel);
  }

  /** The leader's automatic compaction (config `compaction.everyEntries`); stopped when it stops leading. */
  private startCompactionTrigger(): CompactionTrigger {
    this.compactionTrigger?.stop();
    const trigger = new CompactionTrigger({
      everyEntries: this.compactionSettings.everyEntries,
      clock: this.o.clock,
      newestSnapshotSeq: async () => (await (await SnapshotBucket.find(this.o.js, this.o.jsm, this.domain, this.o.replicas))?.newest())?.meta.seq ?? 0,
      compact: async () => (await this.compact()).seq,
      log: (line) => this.log(line),
    });
    this.compactionTrigger = trigger;
    trigger.start();
    return trigger;
  }

  /** The clock of heartbeats and leases (real time unless a test injects one). */
  private get timerClock(): TimerClock {
    return this.o.failover.clock ?? systemTimerClock;
  }

  /**
   * Serves `sm.replica.<domain>.*` with this staleness bound (and the leader's lease gate), until
   * `stopReplicaReads`. Idempotent per role change: a running subscription is drained first.
   */
  private startReplicaReads(staleness: () => number, readGate?: () => Promise<void> | undefined): void {
    this.stopReplicaReads();
    const actor = this;
    this.replicaSubscriptions = serveReplica(this.o.nc, {
      domain: this.domain,
      node: this.o.node,
      clock: this.o.clock,
      maxPayloadBytes: this.o.limits.maxPayloadBytes,
      minSeqWaitMs: this.o.limits.minSeqWaitMs,
      maxRecallLimit: this.o.limits.maxRecallLimit,
      defaultMaxStaleMs: this.o.limits.replicaMaxStaleMs ?? DEFAULT_REPLICA_MAX_STALE_MS,
      // A getter: a rebuild replaces the store, and reads still draining must not use the closed one.
      get store() {
        return actor.requireStore();
      },
      position: () => this.position,
      staleness,
      ...(readGate ? { readGate } : {}),
      waitForSeq: (seq, ms) => this.waiters.waitFor(seq, ms),
      onInternalError: (err, op) => this.log(`internal error in replica ${op}: ${(err as Error)?.stack ?? String(err)}`),
    });
  }

  /** Stops replica reads the way `stopIntake` stops the leader's: requests already routed here are still answered. */
  private stopReplicaReads(): void {
    const subs = this.replicaSubscriptions;
    this.replicaSubscriptions = [];
    if (subs.length === 0) return;
    const drained = Promise.all(subs.map((sub) => sub.drain().catch(() => undefined))).then(() => undefined);
    this.replicaDrained = withinDrainCap(drained);
  }

  /**
   * While following: feeds the leader's heartbeats to the staleness bound, and compares the leader's entry at its
   * `seq` with this replica's (`diverged` when the stream leader confirms they differ). Returns the stop.
   */
  private trackFreshness(diverged: (detail: string) => void): () => void {
    let checking = false;
    const monitor = new HeartbeatMonitor({
      nc: this.o.nc,
      domain: this.domain,
      clock: this.timerClock,
      // The tracker itself ignores older epochs (and forgets on newer ones).
      minEpoch: () => 0,
      onHeartbeat: (hb, receivedAt) => {
        if (hb.node === this.o.node) return;
        this.leaderLogLevel = hb.level;
        this.freshness?.onHeartbeat({ epoch: hb.epoch, seq: hb.seq, sentAt: Date.parse(hb.at), lease: hb.lease === true }, receivedAt);
        // The chain check (checkChain) sees a message the log did not keep only when the next entry arrives; on an
        // idle shard the leader's beat says what the entry at this replica's position should be, so it is caught now.
        const mine = this.lastHash;
        if (checking || hb.hash === undefined || !hb.lease || hb.seq !== this.position || mine?.seq !== this.position || mine.hash === hb.hash) return;
        checking = true;
        void this.checkAppliedTail(`the leader's heartbeat names another entry at seq ${hb.seq}`).then(
          () => (checking = false),
          (err: unknown) => {
            checking = false;
            // Only a confirmed difference (rebuildReason), or a log that lost this entry, ends the tail (the catch-up
            // decides: rebuild, or halt in `aheadOfLog`); "cannot ask the log now" is left to the next beat.
            if (this.rebuildReason !== undefined || err instanceof LogTailLostError) diverged(`leader ${hb.node}'s beat: ${(err as Error).message}`);
          },
        );
      },
    });
    monitor.start();
    return () => monitor.stop();
  }

  private followerStaleness(state: ShardState): { staleMs?: number } {
    if (state !== 'following') return {};
    const staleMs = this.freshness?.staleness();
    return staleMs === undefined || !Number.isFinite(staleMs) ? {} : { staleMs: Math.ceil(staleMs) };
  }

  /** Between leaders: refuse (retryably, at once) what clients still send here, until the next leader beats. */
  private refuseUntilNextLeader(): void {
    this.stopRefusing?.();
    const handingOff = this.pendingHandOff !== undefined || this.state === 'handingOff';
    this.stopRefusing = startStepDownResponder({
      nc: this.o.nc,
      domain: this.domain,
      code: handingOff ? ErrorCode.SHARD_MOVED : ErrorCode.NOT_LEADER,
      message: handingOff
        ? `${this.domain} is moving from ${this.o.node}; retry`
        : `${this.o.node} no longer leads ${this.domain}; retry`,
      epoch: this.epoch,
      maxMs: this.o.failover.leaseMs * 2,
    });
  }

  /** A leader answers reads only while its lease holds; a fresh leader waits briefly for its first beat. */
  private readGate(): Promise<void> | undefined {
    if (this.failover.leaseValid()) return undefined;
    return this.failover.waitForLease(Math.min(this.o.limits.minSeqWaitMs, this.o.failover.leaseMs)).then((ok) => {
      if (!ok) throw new ShardmindError(ErrorCode.NOT_LEADER, `the ${this.domain} leader's lease has lapsed; retry`);
    });
  }

  private marker(kind: 'epoch' | 'handoff'): MarkerEntry {
    return {
      v: 1,
      op: 'marker',
      kind,
      epoch: this.epoch,
      node: this.o.node,
      opId: `${kind}-${this.domain}-${this.o.node}-${this.epoch}-${this.position}`,
      recordedAt: this.o.clock.now(),
      source: { agent: 'shardmind', node: this.o.node },
    };
  }

  private requireStore(): ShardStore {
    if (!this.store) throw new Error(`the ${this.domain} store is not open`);
    return this.store;
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.tasks.add(p);
    const done = (): void => void this.tasks.delete(p);
    p.then(done, done);
    return p;
  }

  /** Retries work that fails while NATS or JetStream is briefly unavailable; gives up only when stopping. */
  /**
   * A commit that failed, as the error the catch-up retries (`retrying`): noted for `status` and logged at most every
   * `STORE_WRITE_LOG_EVERY_MS`, since a full disk fails every retry until space returns.
   */
  private storeCannotWrite(err: unknown, detail: string): StoreWriteError {
    const failure = new StoreWriteError(this.domain, err, detail);
    this.storeWriteError = failure.message;
    const now = this.o.clock.now();
    if (now - this.storeWriteLoggedAt >= STORE_WRITE_LOG_EVERY_MS) {
      this.storeWriteLoggedAt = now;
      this.log(`ERROR: ${failure.message} (applied up to seq ${this.position}; retrying)`);
    }
    return failure;
  }

  /** `maxWaitFor` caps the back-off by the failure (default `RETRY_MAX_MS`). */
  private async retrying(what: string, work: () => Promise<void>, maxWaitFor?: (err: unknown) => number): Promise<void> {
    for (let attempt = 0, wait = RETRY_MIN_MS; ; attempt++) {
      try {
        await work();
        return;
      } catch (err) {
        if (this.abort.signal.aborted) return;
        // A store that cannot commit reports itself (`storeCannotWrite`), at its own pace.
        if (attempt % 5 === 0 && !(err instanceof StoreWriteError)) this.log(`${what} failed (retrying): ${(err as Error)?.message ?? String(err)}`);
        await abortableDelay(wait, this.abort.signal);
        if (this.abort.signal.aborted) return;
        wait = Math.min(wait * 2, maxWaitFor?.(err) ?? RETRY_MAX_MS);
      }
    }
  }

  private log(message: string): void {
    this.o.log(`[${this.o.node} ${this.domain} ${this.state}] ${message}`);
  }
}

/**
 * A subscription drain, bounded by `INTAKE_DRAIN_MAX_MS`. The cap's timer is cleared once the drain is done: a
 * live timer kept the stopped host's process alive for its full length (2 s) after every stop.
 */
function withinDrainCap(drain: Promise<void>): Promise<void> {
  const cap = new AbortController();
  return Promise.race([drain.finally(() => cap.abort()), abortableDelay(INTAKE_DRAIN_MAX_MS, cap.signal)]);
}

/** Waits `ms`, or less when `signal` aborts; the timer never outlives a stop. */
function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
