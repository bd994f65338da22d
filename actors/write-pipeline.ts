/**
 * The leader's fenced, pipelined write path: dedup by opId → append to the shard's stream with
 * `Nats-Expected-Last-Sequence` (each append expects the one before it: previous + 1) and `Nats-Msg-Id` = the
 * write's opId (a group's is `group:<first opId>:<n>`, so within a group the store's opId check is what dedups) →
 * apply acknowledged entries to LMDB in sequence order, grouped into one transaction per contiguous run.
 *
 * Group commit (decisions §26): while `GROUP_WHEN_IN_FLIGHT` appends await their acks, new writes wait and then go
 * out together as ONE log message (`{ op: 'batch', entries }`), so under load one JetStream append, one ack and one
 * hash cover many writes. A lone writer never waits: with fewer appends in flight than that, its entry goes out at the
 * end of the current tick (a microtask), with whatever else arrived in the same socket read.
 * Leadership markers always travel alone, so a marker's sequence is its own.
 *
 * Many appends are in flight at once; one connection keeps their publish order, and JetStream checks each
 * expectation in that order. The first anomaly decides what the chain of expectations means:
 * - `10071 wrong last sequence` first: someone else appended — we are fenced. Every write behind it fails too.
 * - a JetStream duplicate (`ack.duplicate`), a timeout or an unexpected seq first: the entry's slot was not
 *   consumed (or we do not know), so everything behind it is rejected for our own reason, not a rival's. The
 *   pipeline asks for a resync (catch up from the stream, then lead again).
 * Either way every write that has no applied result gets NOT_LEADER (retryable): a retry with the same opId is
 * answered from the log, applied once.
 * - JetStream refusing an append for want of room (`AppendError.noRoom`: its store is full) first: nothing was
 *   appended, and the appends behind it, whose expectations chain from it, cannot have been either. Their writes
 *   get UNAVAILABLE saying the log is full, new writes get it too until the last of them is answered, and then the
 *   pipeline expects the log's tail where it was and tries again with the next write. No resync: this replica
 *   still holds the log's whole history, keeps its lease and keeps serving reads (decisions §66). Leader-side dedup (LMDB `resultOf` + the in-flight map) keeps duplicates
 * from reaching JetStream in normal operation.
 */
import type { NatsConnection } from 'nats';
import { ErrorCode, ShardmindError } from '../protocol/index.ts';
import { CLOCK_SKEW_MS } from '../shards/index.ts';
import type { ApplyResult, AssertEntry, LogEntry, LogMessage, ReadyBatch, ShardStore } from '../shards/index.ts';
import { LogAppender, type AppendAck, type AppendError } from './log-appender.ts';
import { decodeEntry, encodeBatch, encodeEntry, entriesOf, entryHash } from './log-codec.ts';
import { appendLevel, entryLevel, LOG_LEVEL, RESOLVED_SPEC_LEVEL, stampLevel, upgradeRequired } from './log-level.ts';
import { WRONG_LAST_SEQUENCE } from './log-stream.ts';

/** Most acknowledged log messages applied in one LMDB transaction (fewer when they are groups: see `APPLY_ENTRIES`). */
export const APPLY_BATCH = 1024;
/** Most writes applied in one LMDB transaction, counting a group's members. */
export const APPLY_ENTRIES = 4096;
export const DEFAULT_PUBLISH_TIMEOUT_MS = 5_000;
/**
 * Appends awaiting their ack before new writes are held back to be grouped. Measured with 64 writers
 * (`bench/profile-op.ts remember_direct`, one box under load): 1 → 7.0k/s, 2 → 6.5k, 4 → 7.0–9.0k, 8 → 8.1–9.2k,
 * 16 → 9.4k; ungrouped 5.0–5.7k. Eight keeps JetStream busy while groups still average several writes.
 */
export const GROUP_WHEN_IN_FLIGHT = 8;
/** Most writes in one grouped log message. */
export const MAX_GROUP_ENTRIES = 256;
/** Most bytes of one grouped log message: half nats-server's default `max_payload` of 1 MB (less if it is set lower). */
export const MAX_GROUP_BYTES = 512 * 1024;

export type PipelineBreak =
  | { readonly kind: 'fenced'; readonly detail: string }
  | { readonly kind: 'resync'; readonly detail: string }
  | { readonly kind: 'failed'; readonly detail: string };

export interface WritePipelineOptions {
  /** The connection appends go out on (one connection keeps their order). */
  readonly nc: NatsConnection;
  readonly subject: string;
  readonly store: ShardStore;
  /** The stream's last sequence when this leader took over (after catch-up). */
  readonly lastSeq: number;
  /** `entryHash` of the entry at `lastSeq`, when this node knows it: the first append's `Sm-Prev`. */
  readonly lastHash?: string;
  readonly publishTimeoutMs?: number;
  /** Appends in flight before writes are held back to be grouped (default `GROUP_WHEN_IN_FLIGHT`). */
  readonly groupWhenInFlight?: number;
  /** False appends every write as its own message, as before group commit (for comparisons). Default true. */
  readonly group?: boolean;
  /**
   * The highest log level this pipeline may append (`log-level.ts`), until `useLogLevel` changes it. Below 2 it
   * neither groups nor takes `prune` entries. Default `LOG_LEVEL`.
   */
  readonly logLevel?: number;
  /**
   * At log level 3 and above, what each `assert` is written as: the leader's resolved predicate spec filled in
   * (`predicate-specs.ts`), so apply decides with the log's values. Below 3 entries are written as submitted.
   */
  readonly resolveSpecs?: (entry: AssertEntry) => AssertEntry;
  /** After every LMDB commit, with the highest sequence now applied and the `entryHash` of its entry. */
  onApplied(seq: number, hash: string): void;
  /**
   * After every LMDB commit, once its writers' replies have been sent (in a later turn of the event loop, in commit
   * order): what each entry did (the change feed).
   */
  onCommitted?(applied: readonly { entry: LogEntry; result: ApplyResult }[]): void;
}

/** What a write's caller hears, exactly once: its applied result, or why it has none. */
export type WriteDone = (err: ShardmindError | undefined, result: ApplyResult | undefined) => void;

/**
 * One write waiting for its result. A class with methods rather than an object of closures, and a callback rather
 * than a promise: with 64 writers per commit, the promises and closures per write were a measurable part of a
 * remember's host CPU (decisions §39).
 */
class Pending {
  /** Callers that submitted the same opId while this write was in flight: they hear its result as a duplicate. */
  private also: WriteDone[] | undefined;
  /** Answered already: a write hears exactly one outcome, whichever path reaches it first. */
  private settled = false;

  constructor(
    readonly entry: LogEntry,
    /** `encodeEntry(entry)`: a message of its own, or one member of a group. */
    readonly bytes: Uint8Array,
    private readonly done: WriteDone,
    private readonly inFlight: Map<string, Pending>,
  ) {}

  follow(done: WriteDone): void {
    (this.also ??= []).push(done);
  }

  resolve(r: ApplyResult): void {
    if (this.settled) return;
    this.settled = true;
    this.inFlight.delete(this.entry.opId);
    settle(this.done, undefined, r);
    if (this.also) for (const d of this.also) settle(d, undefined, { ...r, duplicate: true });
  }

  reject(e: ShardmindError): void {
    if (this.settled) return;
    this.settled = true;
    this.inFlight.delete(this.entry.opId);
    settle(this.done, e, undefined);
    if (this.also) for (const d of this.also) settle(d, e, undefined);
  }
}

/** Calls a write's callback; one that throws must not stop the others in its commit from hearing theirs. */
function settle(done: WriteDone, err: ShardmindError | undefined, result: ApplyResult | undefined): void {
  try {
    done(err, result);
  } catch (thrown) {
    queueMicrotask(() => {
      throw thrown;
    });
  }
}

/**
 * One log message on its way, appended expecting `expected`. Its hash and its decoded form are worked out once its
 * bytes are on their way to JetStream (`prepare`), while the ack is awaited.
 */
interface Append {
  readonly bytes: Uint8Array;
  /** Its `Nats-Msg-Id`: a lone write's opId, a group's `group:<first opId>:<n>`. */
  readonly msgId: string;
  readonly members: readonly Pending[];
  readonly expected: number;
  /** What the store applies: decoded from the appended bytes, so the leader applies exactly what followers read. */
  message: LogMessage | undefined;
  /** `entryHash(bytes)`: the next append's `Sm-Prev`, and this replica's tail hash once applied. */
  hash: string | undefined;
  /** The bytes did not decode to these members (a bug, never expected): what the members were told. */
  failure: ShardmindError | undefined;
}

/** A message JetStream acknowledged at `seq`, decoded, waiting for its turn to be applied. */
interface Acked {
  readonly append: Append;
  readonly message: LogMessage;
  readonly seq: number;
}

/**
 * The store's transaction asked for while an append awaits its ack (`ShardStore.applyBatchWhenReady`): `give` hands
 * it the acknowledged message, or undefined to apply nothing.
 */
interface Ahead {
  readonly append: Append;
  readonly give: (batch: ReadyBatch | undefined) => void;
  readonly results: Promise<ApplyResult[] | undefined>;
}

/** `append.hash`, computed on first use. */
function hashOf(append: Append): string {
  return (append.hash ??= entryHash(append.bytes));
}

export class WritePipeline {
  private nextExpected: number;
  private nextApply: number;
  private readonly inFlight = new Map<string, Pending>();
  private readonly acked = new Map<number, Acked>();
  /** Writes held back while appends are in flight, in submit order; `queuedBytes` is their encoded size. */
  private queued: Pending[] = [];
  private queuedBytes = 0;
  private flushScheduled = false;
  private readonly groupWhenInFlight: number;
  /** `MAX_GROUP_BYTES`, or half the server's `max_payload` when that is smaller: a group must fit in one message. */
  private readonly maxGroupBytes: number;
  private publishing = 0;
  private applying: Promise<void> | undefined;
  /** The transaction opened for a lone append while it awaits its ack (`openAhead`). */
  private ahead: Ahead | undefined;
  private broken: PipelineBreak | undefined;
  private brokenReported = false;
  private closed = false;
  private settledWaiters: (() => void)[] = [];
  private brokenListener: ((why: PipelineBreak) => void) | undefined;
  private readonly appender: LogAppender;
  /**
   * `entryHash` of the last entry submitted (the next append's `Sm-Prev`), undefined until known; or, while
   * `lastAppend` is set, of the entry before it: the last message appended, whose hash is not worked out yet.
   */
  private chainHash: string | undefined;
  private lastAppend: Append | undefined;
  /** `entryHash` of the last message JetStream acknowledged (the log's tail while this pipeline leads). */
  private ackedHash: string | undefined;
  /**
   * Set when JetStream refused an append for want of room, until every append behind it is answered: the log's
   * tail (`expected` of the refused append) and what the writes meanwhile are told.
   */
  private refusedForRoom: { readonly tail: number; readonly error: ShardmindError } | undefined;
  /** The log level every replica understands (`useLogLevel`), and whether that, and the options, allow grouping. */
  private level = 1;
  private grouping = false;
  /**
   * The latest `recordedAt` in the log this pipeline appends to: what the store had seen when it started leading,
   * then each entry it takes. An entry stamped earlier (this host's clock behind the last leader's, an NTP step back)
   * is written at this time instead, so `recordedAt` never decreases along the log, which `asOf` recall's search by
   * record time relies on (review session 12, finding 1; §71). Only within CLOCK_SKEW_MS: a floor further ahead of
   * this clock means some clock was badly wrong, and holding every later stamp at it would freeze record time (and
   * decay, which counts from a default `observedAt` = `recordedAt`) until the clock caught up; the log then steps
   * back once, as it could before, and grows from there.
   */
  private recordedFloor: number;

  constructor(private readonly o: WritePipelineOptions) {
    this.chainHash = o.lastHash;
    this.ackedHash = o.lastHash;
    this.recordedFloor = o.store.newestRecordedAt();
    this.nextExpected = o.lastSeq;
    this.nextApply = o.lastSeq + 1;
    this.appender = new LogAppender(o.nc, o.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS);
    this.groupWhenInFlight = Math.max(1, o.groupWhenInFlight ?? GROUP_WHEN_IN_FLIGHT);
    const serverMax = o.nc.info?.max_payload;
    this.maxGroupBytes = serverMax !== undefined && serverMax > 0 ? Math.min(MAX_GROUP_BYTES, Math.floor(serverMax / 2)) : MAX_GROUP_BYTES;
    this.useLogLevel(o.logLevel ?? LOG_LEVEL);
  }

  /**
   * The highest log level every replica understands now (the leader's census, `replica-levels.ts`): below 2 writes
   * go out one per message and `prune` is refused. Writes already waiting to be grouped go out one by one, except
   * those that alone need more than `level` (a `prune` taken while grouping): they get UPGRADE_REQUIRED.
   */
  useLogLevel(level: number): void {
    this.level = level;
    this.grouping = this.o.group !== false && level >= 2;
    if (this.grouping || this.queued.length === 0) return;
    const waiting = this.queued;
    this.queued = [];
    this.queuedBytes = 0;
    for (const p of waiting) {
      const needs = appendLevel(1, p.entry.op);
      if (needs > level) p.reject(upgradeRequired(`a ${p.entry.op} entry`, needs, level));
      else this.appendMessage([p]);
    }
  }

  /**
   * The message's `Sm-Level`: by its ops, or higher when a member carries a field of a higher level (a resolved
   * `cardinality`). Every member is looked at, whatever the level now: one resolved while the level was 3 and still
   * queued when it dropped must say so, so that a level-2 replica stops at it rather than apply it by its own config.
   */
  private levelOf(members: readonly Pending[]): number {
    let level = appendLevel(members.length, members[0]!.entry.op);
    for (let i = 0; i < members.length; i++) level = Math.max(level, entryLevel(members[i]!.entry));
    return level;
  }

  /** The highest log level this pipeline appends now. */
  get writeLevel(): number {
    return this.level;
  }

  /** Appends and applies the entry; resolves with its applied result. A known opId returns the first result. */
  submit(entry: LogEntry): Promise<ApplyResult> {
    return new Promise((resolve, reject) => this.write(entry, (err, r) => (err ? reject(err) : resolve(r!))));
  }

  /**
   * `submit` with a callback, for the request path: `done` is called exactly once, with the applied result (a known
   * opId's first result, marked `duplicate`) or the error — synchronously when the answer is known at once (a
   * duplicate, a refusal), otherwise when the write's commit is synced.
   */
  write(entry: LogEntry, done: WriteDone): void {
    // In flight first: the store knows a write's result as soon as its transaction has run, before the commit is
    // durable, and a write leaves `inFlight` only once its commit resolved. A retry in that window hears the result
    // with the original, when it is synced.
    const running = this.inFlight.get(entry.opId);
    if (running) return running.follow(done);
    const prior = this.o.store.resultOf(entry.opId);
    if (prior) return settle(done, undefined, { ...prior, duplicate: true });
    if (this.broken || this.closed) return settle(done, notLeader('this shard actor is stepping down'), undefined);
    if (this.refusedForRoom) return settle(done, this.refusedForRoom.error, undefined);
    // Not grouping means a replica may not understand level 2: then only level-1 entries are taken (plain writes
    // never get past the first test while grouping).
    if (!this.grouping && appendLevel(1, entry.op) > this.level) {
      return settle(done, upgradeRequired(`a ${entry.op} entry`, appendLevel(1, entry.op), this.level), undefined);
    }

    if (entry.op === 'assert' && this.level >= RESOLVED_SPEC_LEVEL && this.o.resolveSpecs !== undefined) entry = this.o.resolveSpecs(entry);
    entry = stampLevel(entry, this.level);
    if (entry.recordedAt < this.recordedFloor && this.recordedFloor - entry.recordedAt <= CLOCK_SKEW_MS) entry = { ...entry, recordedAt: this.recordedFloor };
    else this.recordedFloor = entry.recordedAt;
    const pending = new Pending(entry, encodeEntry(entry), done, this.inFlight);
    this.inFlight.set(entry.opId, pending);
    if (!this.grouping) {
      this.appendMessage([pending]);
    } else if (entry.op === 'marker') {
      // A marker is appended alone and in order: what was submitted before it goes first.
      this.flushQueued();
      this.appendMessage([pending]);
    } else {
      if (this.queuedBytes + pending.bytes.length > this.maxGroupBytes) this.flushQueued();
      this.queued.push(pending);
      this.queuedBytes += pending.bytes.length;
      if (this.queued.length >= MAX_GROUP_ENTRIES) this.flushQueued();
      else if (this.publishing < this.groupWhenInFlight) this.scheduleFlush();
    }
  }

  /**
   * Flushes at the end of this tick rather than now: the NATS client hands over every request that arrived in one
   * socket read synchronously, so writes that came together go out together.
   */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      if (this.publishing < this.groupWhenInFlight) this.flushQueued();
    });
  }

  /** Appends what is queued as one log message (a plain entry when it is one write). */
  private flushQueued(): void {
    if (this.queued.length === 0) return;
    const members = this.queued;
    this.queued = [];
    this.queuedBytes = 0;
    this.appendMessage(members);
  }

  private appendMessage(members: readonly Pending[]): void {
    if (this.broken) {
      for (const p of members) p.reject(notLeader('this shard actor is stepping down'));
      return;
    }
    if (this.refusedForRoom) {
      for (const p of members) p.reject(this.refusedForRoom.error);
      return;
    }
    const first = members[0]!;
    const msgId = members.length === 1 ? first.entry.opId : `group:${first.entry.opId}:${members.length}`;
    const bytes = members.length === 1 ? first.bytes : encodeBatch(msgId, first.entry.recordedAt, members.map((p) => p.bytes));
    const expected = this.nextExpected++;
    // Messages are appended in order, each expecting the one before: the previous message is its predecessor.
    const prev = this.lastAppend !== undefined ? hashOf(this.lastAppend) : this.chainHash;
    const append: Append = { bytes, msgId, members, expected, message: undefined, hash: undefined, failure: undefined };
    this.lastAppend = append;
    const alone = this.publishing === 0 && this.applying === undefined && this.acked.size === 0 && this.nextApply === expected + 1;
    this.publishing++;
    this.appender.append(this.o.subject, bytes, msgId, expected, (err, ack) => this.appended(append, err, ack), prev, this.levelOf(members));
    // nats.js writes the publish to the socket in a microtask it queued just now; this one runs after it, so the
    // hash and the decode below run while the ack is awaited instead of before the message leaves.
    queueMicrotask(() => this.prepare(append));
    if (alone) this.openAhead(append);
  }

  /**
   * With nothing else appended, acknowledged or being applied, the store's transaction for this append is asked for
   * now (decisions §87): lmdb-js opens it on its write thread and hands it back to this thread (~80-100 µs), and that
   * now happens while JetStream stores the message. The entry still reaches LMDB only after its ack — the
   * transaction waits for it, writes nothing before, and is aborted empty when the append fails — so the order
   * ack → apply → synced commit → reply is the same. Only alone: under load the commits run back to back, and a
   * transaction held open would make the next one wait.
   */
  private openAhead(append: Append): void {
    const store = this.o.store;
    if (store.applyBatchWhenReady === undefined || this.ahead !== undefined || this.broken) return;
    let give!: (batch: ReadyBatch | undefined) => void;
    const ready = new Promise<ReadyBatch | undefined>((resolve) => (give = resolve));
    this.ahead = { append, give, results: store.applyBatchWhenReady(ready) };
  }

  /** The transaction opened for `append` applies nothing: its append failed, or came back out of order. */
  private dropAhead(append: Append): void {
    const ahead = this.ahead;
    if (ahead === undefined || ahead.append !== append) return;
    this.ahead = undefined;
    ahead.give(undefined);
    // Applying nothing cannot fail for the writes; a store error meanwhile is the next commit's to report.
    ahead.results.catch(() => undefined);
  }

  /**
   * Hashes the message and decodes it, as every follower will. The leader applies exactly the bytes followers
   * decode, so every replica's LMDB gets the same input. Bytes that do not decode to their members cannot happen
   * with `encodeEntry`'s own output; if they ever did, the message is in the log already, so the pipeline asks for a
   * resync (catch up from the log, as a follower reads it) and the members are told what every replica will do with
   * it: INTERNAL when it does not decode (all skip it), NOT_LEADER when it decoded to other members (all apply
   * those: a retry reads its result). Idempotent; the decoded message, or undefined when it cannot be applied.
   */
  private prepare(append: Append): LogMessage | undefined {
    if (append.message !== undefined || append.failure !== undefined) return append.message;
    if (append === this.lastAppend) {
      // Its hash is all the next append needs of it: keep that, not the bytes.
      this.chainHash = hashOf(append);
      this.lastAppend = undefined;
    }
    hashOf(append);
    const message = decodeEntry(append.bytes);
    if (message && entriesOf(message).length === append.members.length) return (append.message = message);
    // Undecodable: no replica applies it, so INTERNAL is the truth. Decoded to other members: followers apply what
    // decoded, and so will this leader once it resyncs, so the writer is told to retry and reads its result.
    append.failure = message
      ? notLeader(`log message ${append.msgId} decoded to ${entriesOf(message).length} entries, not ${append.members.length}: retry to read the result`)
      : new ShardmindError(ErrorCode.INTERNAL, `log message ${append.msgId} does not round-trip`);
    this.breakWith({ kind: 'resync', detail: append.failure.message });
    rejectAll(append, append.failure);
    return undefined;
  }

  /** JetStream's answer to one append, in append order (one connection, one stream). */
  private appended(append: Append, err: AppendError | undefined, ack: AppendAck | undefined): void {
    this.publishing--;
    const { expected } = append;
    if (err !== undefined && (err.noRoom || (this.refusedForRoom !== undefined && err.apiCode === WRONG_LAST_SEQUENCE))) {
      // Refused for room, or behind such a refusal and expecting a tail that never came: not appended either way.
      // A rival's append is not hidden by this: the first append after the rewind expects the old tail and is fenced.
      this.refusedForRoom ??= { tail: expected, error: logFull(this.o.subject, err) };
      rejectAll(append, this.refusedForRoom.error);
    } else if (this.refusedForRoom !== undefined && err === undefined && ack !== undefined) {
      // Appended behind a refused append: only possible when someone else appended in between.
      this.breakWith({ kind: 'resync', detail: `append expecting seq ${expected} was acknowledged at ${ack.seq} behind one refused for room` });
      rejectAll(append, notLeader('the log moved under this leader'));
    } else if (err !== undefined || ack === undefined) {
      if (err?.apiCode === WRONG_LAST_SEQUENCE) {
        this.breakWith({ kind: 'fenced', detail: `append expecting last seq ${expected} was rejected: ${err.message}` });
      } else {
        this.breakWith({ kind: 'resync', detail: `append failed: ${err?.message ?? 'no ack'}` });
      }
      rejectAll(append, notLeader('this shard actor lost the right to append'));
    } else if (ack.duplicate) {
      this.breakWith({ kind: 'resync', detail: `JetStream reported ${append.msgId} as a duplicate of seq ${ack.seq}` });
      rejectAll(append, notLeader('the write was already in the log; retry to read its result'));
    } else if (ack.seq !== expected + 1) {
      this.breakWith({ kind: 'resync', detail: `append expected seq ${expected + 1}, got ${ack.seq}` });
      rejectAll(append, notLeader('the log moved under this leader'));
    } else {
      const message = this.broken ? undefined : this.prepare(append);
      if (message === undefined) {
        // In the log, but after the break: whoever catches up applies it; the client's retry reads the result.
        rejectAll(append, notLeader('this shard actor is stepping down'));
      } else {
        this.acked.set(ack.seq, { append, message, seq: ack.seq });
        this.ackedHash = hashOf(append);
        this.kickApply();
      }
    }
    // Taken by the apply when it was acknowledged in order; otherwise its transaction applies nothing.
    this.dropAhead(append);
    // An ack frees a slot: what waited meanwhile goes out as one group.
    if (this.publishing < this.groupWhenInFlight) this.flushQueued();
    if (this.refusedForRoom !== undefined && this.publishing === 0) this.rewindAfterRefusal(this.refusedForRoom.tail);
    this.checkSettled();
  }

  /**
   * Every append behind the one refused for room is answered: the log's tail is where that one expected it. The next
   * write appends expecting it, chained to the last acknowledged message.
   */
  private rewindAfterRefusal(tail: number): void {
    this.refusedForRoom = undefined;
    this.nextExpected = tail;
    this.chainHash = this.ackedHash;
    this.lastAppend = undefined;
  }

  /**
   * Calls `listener` once, after the first anomaly, when every in-flight append has settled and every acked entry
   * is applied — at once if that already happened.
   */
  onBroken(listener: (why: PipelineBreak) => void): void {
    this.brokenListener = listener;
    this.checkSettled();
  }

  /** Why the pipeline stopped taking writes, once it has. */
  get breakReason(): PipelineBreak | undefined {
    return this.broken;
  }

  /** Log messages in flight or acknowledged but not yet applied, plus writes waiting to be grouped. */
  get depth(): number {
    return this.publishing + this.acked.size + this.queued.length;
  }

  /**
   * The sequence of the last message this pipeline appended, acknowledged or still in flight (the log's tail it took
   * over at, before its first append). A log whose tail is past it was appended to by someone else.
   */
  get appendedThrough(): number {
    return this.nextExpected;
  }

  /** The highest sequence this pipeline has applied. */
  get appliedSeq(): number {
    return this.nextApply - 1;
  }

  /** Refuses new writes; `settled()` then resolves once what is in flight (and queued) is appended and applied. */
  close(): void {
    this.closed = true;
    this.flushQueued();
    this.checkSettled();
  }

  /** Resolves when nothing is in flight (immediately when idle). */
  settled(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return (
      this.publishing === 0 &&
      this.queued.length === 0 &&
      this.applying === undefined &&
      (this.acked.size === 0 || this.broken !== undefined)
    );
  }

  private breakWith(why: PipelineBreak): void {
    if (!this.broken) this.broken = why;
    this.rejectQueued();
  }

  /** Writes held back for a group never reach the log once the pipeline broke: their callers retry elsewhere. */
  private rejectQueued(): void {
    const left = this.queued;
    this.queued = [];
    this.queuedBytes = 0;
    for (const p of left) p.reject(notLeader('this shard actor is stepping down'));
  }

  private kickApply(): void {
    if (this.applying || !this.acked.has(this.nextApply)) return;
    this.applying = this.applyRuns().finally(() => {
      this.applying = undefined;
      if (this.acked.has(this.nextApply)) this.kickApply();
      this.checkSettled();
    });
  }

  /** Applies contiguous acknowledged runs from `nextApply`, one transaction each. */
  private async applyRuns(): Promise<void> {
    for (;;) {
      const run: Acked[] = [];
      let entries = 0;
      const ahead = this.ahead;
      for (let s = this.nextApply; run.length < APPLY_BATCH && entries < APPLY_ENTRIES; s++) {
        const a = this.acked.get(s);
        if (!a) break;
        // The append a transaction was opened for goes into it alone.
        if (ahead !== undefined && run.length > 0 && (a.append === ahead.append || run[0]!.append === ahead.append)) break;
        this.acked.delete(s);
        run.push(a);
        entries += a.append.members.length;
      }
      if (run.length === 0) return;
      let results: ApplyResult[];
      try {
        // The last message's hash goes with it, so this replica still knows its tail after a restart.
        const batch = run.map((a) => ({ seq: a.seq, entry: a.message }));
        const options = { tailHash: hashOf(run[run.length - 1]!.append) };
        if (ahead !== undefined && run[0]!.append === ahead.append) {
          this.ahead = undefined;
          ahead.give({ batch, options });
          const taken = await ahead.results;
          if (taken === undefined) throw new Error('the transaction opened ahead applied nothing');
          results = taken;
        } else {
          // The store's commits are chained: one still waiting for a batch would hold this one back for good.
          if (ahead !== undefined) this.dropAhead(ahead.append);
          results = await this.o.store.applyBatch(batch, options);
        }
      } catch (err) {
        const failure = new ShardmindError(ErrorCode.UNAVAILABLE, `LMDB apply failed: ${(err as Error).message}`, { cause: err });
        for (const a of run) rejectAll(a.append, failure);
        // The entries are in the log, so durable there, and their writers retry with the same opIds: this replica
        // stops leading and catches up like a follower, retrying until its store commits again (a full disk, once
        // space returns), while a replica that can write takes the lease. It must not end the shard for good.
        this.breakWith({ kind: 'resync', detail: failure.message });
        return;
      }
      const last = run[run.length - 1]!;
      this.nextApply = last.seq + 1;
      // The store answers one result per entry, in order: each member takes the next one that is its own. The change
      // feed gets the entries as the log holds them (decoded), like every replica's store.
      const applied: { entry: LogEntry; result: ApplyResult }[] = [];
      let i = 0;
      for (const a of run) {
        const logged = entriesOf(a.message);
        for (const [k, p] of a.append.members.entries()) {
          const candidate = results[i];
          const r = candidate !== undefined && candidate.opId === p.entry.opId ? (i++, candidate) : this.o.store.resultOf(p.entry.opId);
          if (r) {
            p.resolve(r);
            applied.push({ entry: logged[k] ?? p.entry, result: r });
          } else p.reject(new ShardmindError(ErrorCode.INTERNAL, `seq ${a.seq} was applied without a result for ${p.entry.opId}`));
        }
      }
      this.o.onApplied(last.seq, hashOf(last.append));
      // The change feed waits until the replies above are on the wire (they go out in microtasks; an immediate runs
      // after them): with 64 writers in one commit, encoding its events first held every reply back ~0.2 ms.
      const onCommitted = this.o.onCommitted;
      if (onCommitted) setImmediate(onCommitted, applied);
    }
  }

  private checkSettled(): void {
    if (!this.isIdle()) return;
    // Nothing more will be appended through this pipeline: stop listening for acks.
    if (this.broken || this.closed) this.appender.close();
    if (this.broken) {
      // Acked entries stranded behind a gap never reach LMDB through this pipeline: the caller retries.
      for (const a of this.acked.values()) rejectAll(a.append, notLeader('this shard actor is stepping down'));
      this.acked.clear();
      if (!this.brokenReported && this.brokenListener) {
        this.brokenReported = true;
        this.brokenListener(this.broken);
      }
    }
    const waiters = this.settledWaiters;
    this.settledWaiters = [];
    for (const w of waiters) w();
  }
}

function rejectAll(append: Append, error: ShardmindError): void {
  for (const p of append.members) p.reject(error);
}

/**
 * What a write hears when JetStream has no room for the log: retryable (room may be made), and what to do about it.
 * The refusal names no server; for a replicated log it may be any server holding a replica.
 */
function logFull(subject: string, err: AppendError): ShardmindError {
  const domain = subject.startsWith('sm.log.') ? subject.slice('sm.log.'.length) : subject;
  return new ShardmindError(
    ErrorCode.UNAVAILABLE,
    `the ${domain} log cannot take writes: JetStream has no room (nats-server: "${err.message}", err_code ${err.apiCode ?? 'none'}); ` +
      'free disk space or raise jetstream max_file_store on the servers holding the log, or compact it (compaction.retainEntries); retry',
    { cause: err },
  );
}

function notLeader(message: string): ShardmindError {
  return new ShardmindError(ErrorCode.NOT_LEADER, message);
}
