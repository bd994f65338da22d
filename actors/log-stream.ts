/**
 * A shard's replicated write-ahead log: the JetStream stream `SM_LOG_<domain>` on subject `sm.log.<domain>`.
 * Creating it, asking where its tail is (via stream info), asking the stream leader for one message (never a
 * replica's direct get), judging a tail that reads as below a replica, and reading it in order from a sequence, in
 * batches, for catch-up and for followers' tailing.
 */
import { RetentionPolicy, RequestStrategy, StorageType, DiscardPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type NatsConnection } from 'nats';
import { logStream, logSubject } from '../protocol/index.ts';
import type { LogMessage } from '../shards/index.ts';
import { decodeEntry, entryHash, PREV_HEADER } from './log-codec.ts';
import { LEVEL_HEADER, parseLevelHeader } from './log-level.ts';

/** How long JetStream remembers a `Nats-Msg-Id` to drop a duplicate append. */
export const DUPLICATE_WINDOW_MS = 120_000;
/** A catch-up read that gets no message for this long is restarted (see `LogReadOptions.stallMs`). */
export const DEFAULT_STALL_MS = 5_000;
/** Most entries applied in one LMDB transaction while reading the log. */
export const READ_BATCH = 512;

const NANOS_PER_MS = 1_000_000;
/** What the race for the next message yields when the read was stopped (stalled or aborted) instead. */
const STOPPED: unique symbol = Symbol('stopped');
/** Longest wait for a consumer to close once the read is over. */
const CLOSE_WAIT_MS = 2_000;
/** JetStream's "stream name already in use" (with a different config). */
const STREAM_NAME_IN_USE = 10058;
/** JetStream's "stream not found". */
const STREAM_NOT_FOUND = 10059;

/** Creates the domain's log stream if it is missing. Several hosts may race: creating an identical stream twice is fine. */
export async function ensureLogStream(jsm: JetStreamManager, domain: string, replicas: number): Promise<void> {
  const name = logStream(domain);
  try {
    await jsm.streams.add({
      name,
      subjects: [logSubject(domain)],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      num_replicas: replicas,
      duplicate_window: DUPLICATE_WINDOW_MS * NANOS_PER_MS,
      // The log is the shard: nobody deletes single entries from it.
      deny_delete: true,
    });
  } catch (err) {
    if (apiErrorCode(err) !== STREAM_NAME_IN_USE) throw err;
    // It exists with another config (replicas changed, or an older version made it): use it as it is.
  }
}

/** The stream's last sequence, as its leader knows it (0 when empty). */
export async function logTail(jsm: JetStreamManager, domain: string): Promise<number> {
  const info = await jsm.streams.info(logStream(domain));
  return info.state.last_seq;
}

/**
 * The stream's first and last sequences, as its leader knows them. After a compaction the log starts past seq 1:
 * `firstSeq` is the oldest entry still held (`lastSeq + 1` when every entry was purged; 0 for a stream never written).
 */
export async function logBounds(jsm: JetStreamManager, domain: string): Promise<{ firstSeq: number; lastSeq: number }> {
  const info = await jsm.streams.info(logStream(domain));
  return { firstSeq: info.state.first_seq, lastSeq: info.state.last_seq };
}

/** How long a question to the stream leader collects answers (`leaderMessage`). */
export const LEADER_READ_MS = 2_000;

/** One message of the log as the stream leader holds it. */
export interface HeldEntry {
  readonly seq: number;
  /** `entryHash` of the message's bytes. */
  readonly hash: string;
  readonly data: Uint8Array;
}

/** The stream leader's answer: the message, "it holds none" (JetStream's 10037), or no usable answer now. */
export type LeaderAnswer = { kind: 'found'; entry: HeldEntry } | { kind: 'missing' } | { kind: 'unanswered'; detail: string };

/** Which message of the log to ask for: the one at `seq`, the first held at or after it (`next`), or the last. */
export type LeaderQuery = { readonly seq: number; readonly next?: boolean } | { readonly last: true };

interface MsgGetReply {
  readonly error?: { readonly code?: number; readonly err_code?: number; readonly description?: string };
  readonly message?: { readonly seq: number; readonly data?: string };
}

/**
 * Asks the stream leader for one message of the log: JetStream's message-get API (`$JS.API.STREAM.MSG.GET.<stream>`;
 * on 2.9 too, with `next_by_subj` and `last_by_subj`), never a direct get, which any replica answers from its own
 * store. Every server of the cluster receives the request. The stream leader answers from its store; a member that
 * sees no leader (just restarted, or cut off from the others) answers 503 at once, never with a message; a leader
 * resumed from a freeze may answer "none" from its old state until it hears the new term. nats.js takes the first
 * answer, so a member's quick 503 hid the leader's message (the chaos soak, §82): here the answers within
 * `maxWaitMs` are collected, and a message wins over "none", which wins over an error.
 */
export async function leaderMessage(nc: NatsConnection, domain: string, query: LeaderQuery, maxWaitMs = LEADER_READ_MS): Promise<LeaderAnswer> {
  const subject = logSubject(domain);
  const body = 'last' in query ? { last_by_subj: subject } : query.next ? { seq: query.seq, next_by_subj: subject } : { seq: query.seq };
  let missing = false;
  let failure: string | undefined;
  try {
    const replies = await nc.requestMany(`$JS.API.STREAM.MSG.GET.${logStream(domain)}`, JSON.stringify(body), {
      strategy: RequestStrategy.Timer,
      maxWait: maxWaitMs,
      noMux: true,
    });
    for await (const m of replies) {
      let reply: MsgGetReply;
      try {
        reply = m.json<MsgGetReply>();
      } catch {
        failure ??= 'an answer that is not JSON';
        continue;
      }
      const found = reply.message;
      if (found && !reply.error) {
        const data = found.data ? new Uint8Array(Buffer.from(found.data, 'base64')) : new Uint8Array(0);
        return { kind: 'found', entry: { seq: found.seq, hash: entryHash(data), data } };
      }
      if (reply.error?.err_code === NO_MESSAGE_FOUND) missing = true;
      else failure ??= `${reply.error?.code ?? '?'} ${reply.error?.description ?? 'no message and no error'}`;
    }
  } catch (err) {
    failure ??= (err as Error)?.message ?? String(err);
  }
  if (missing) return { kind: 'missing' };
  return { kind: 'unanswered', detail: failure ?? `no answer within ${maxWaitMs} ms` };
}

/**
 * What the stream leader says of a reading of the log that ends below this replica's position:
 * - `stale`: it holds this replica's entry at `mine.seq` (the same bytes, when `mine.hash` is known), or entries past
 *   it (`mine.seq` purged by a compaction): the reading came from a server with an old state, and the bounds given
 *   are the leader's;
 * - `differs`: it holds another entry at `mine.seq` (bounds the leader's): not a short log, but not this replica's
 *   history either; the caller compares as it does for any log that reaches it;
 * - `lost`: it holds nothing at or past `mine.seq`: the log really ends below this replica;
 * - `unanswered`: no leader answered (none elected, or none reachable now): nothing is known.
 */
export type ShortTailVerdict =
  | { kind: 'stale' | 'differs'; firstSeq: number; lastSeq: number }
  | { kind: 'lost' }
  | { kind: 'unanswered'; detail: string };

/**
 * Judges a reading of the log's bounds whose `lastSeq` is below `mine.seq` (this replica's applied position) by
 * asking the stream leader for the first message at or after `mine.seq`, then for its last. A stream info is answered
 * by the leader, but also by any member that sees no leader, from its own store: a just-restarted server's stale
 * state read as a log that lost its tail (§75's seed 4002, §82). A message get is not answered from such a state.
 */
export async function judgeShortTail(
  nc: NatsConnection,
  domain: string,
  reading: { readonly firstSeq: number; readonly lastSeq: number },
  mine: { readonly seq: number; readonly hash?: string | undefined },
  maxWaitMs = LEADER_READ_MS,
): Promise<ShortTailVerdict> {
  const from = await leaderMessage(nc, domain, { seq: mine.seq, next: true }, maxWaitMs);
  if (from.kind === 'unanswered') return from;
  if (from.kind === 'missing') return { kind: 'lost' };
  const held = from.entry;
  const last = await leaderMessage(nc, domain, { last: true }, maxWaitMs);
  // The last message is at least the one just read; a leader that cannot say more now still says that much.
  const lastSeq = last.kind === 'found' ? Math.max(last.entry.seq, held.seq) : held.seq;
  // A log holding `mine.seq` starts at or below it; one that holds only later entries starts at the first of them
  // (nothing is deleted from the middle of the log: deny_delete).
  const firstSeq = held.seq === mine.seq ? Math.min(reading.firstSeq, mine.seq) : held.seq;
  const differs = held.seq === mine.seq && mine.hash !== undefined && held.hash !== mine.hash;
  return { kind: differs ? 'differs' : 'stale', firstSeq, lastSeq };
}

/** Whether entries were purged from the start of the log (a compaction ran); false when the stream does not exist. */
export async function logWasCompacted(jsm: JetStreamManager, domain: string): Promise<boolean> {
  try {
    return (await logBounds(jsm, domain)).firstSeq > 1;
  } catch (err) {
    if (apiErrorCode(err) === STREAM_NOT_FOUND) return false;
    throw err;
  }
}

/**
 * A replica needs an entry the log no longer holds (compacted away): it must bootstrap from a snapshot
 * (`snapshot-install.ts`) before it can catch up. The shard machine moves to `bootstrapping` on it.
 */
export class LogCompactedError extends Error {
  override readonly name = 'LogCompactedError';
  constructor(
    readonly domain: string,
    readonly needed: number,
    readonly firstSeq: number,
  ) {
    super(`the ${domain} log starts at seq ${firstSeq}; this replica needs seq ${needed}: bootstrapping from a snapshot`);
  }
}

/**
 * The log ends below what this replica has applied: it lost entries this replica holds, acknowledged writes among
 * them (a whole-cluster power loss before nats-server synced its tail, or the stream deleted or recreated). Nothing
 * can be caught up from such a log, and nothing in it may overwrite the store: the shard machine halts in
 * `aheadOfLog`, the store kept as it is, until an operator decides (docs/operations.md).
 */
export class LogTailLostError extends Error {
  override readonly name = 'LogTailLostError';
  constructor(
    readonly domain: string,
    /** The log's last sequence (0 for an empty stream). */
    readonly logTail: number,
    /** The last sequence this replica applied. */
    readonly appliedSeq: number,
  ) {
    super(
      `the ${domain} log ends at seq ${logTail} but this replica applied through seq ${appliedSeq}: the log lost entries ${logTail + 1}..${appliedSeq}, which this replica holds; its store is kept and it neither serves nor leads until an operator acts (docs/operations.md, "A store ahead of its log")`,
    );
  }
}

/**
 * The log holds another history than this replica applied: its entry at the sequence of this store's last
 * leadership marker is not that marker (the log was lost or recreated, and written again past this replica). A
 * rebuild would replace this store's writes — acknowledged ones the log no longer has among them — with that other
 * history, so the replica halts in `aheadOfLog` instead, its store kept, as for `LogTailLostError`.
 */
export class LogHistoryReplacedError extends Error {
  override readonly name = 'LogHistoryReplacedError';
  constructor(
    readonly domain: string,
    /** The sequence of this store's last leadership marker. */
    readonly markerSeq: number,
    /** This store's marker there, and what the log holds there, in words. */
    readonly mine: string,
    readonly logged: string,
    readonly appliedSeq: number,
  ) {
    super(
      `the ${domain} log's entry at seq ${markerSeq} is ${logged}, not this replica's ${mine}: the log holds another history than the one this replica applied through seq ${appliedSeq} (lost or recreated, then written again); its store is kept and it neither serves nor leads until an operator acts (docs/operations.md, "A store ahead of its log")`,
    );
  }
}

/** One message of the log; `entry` is undefined for bytes that are not a log entry (skipped by every replica). */
export interface LogRecord {
  readonly seq: number;
  readonly entry: LogMessage | undefined;
  /** `entryHash` of the message's bytes. */
  readonly hash: string;
  /** Its `Sm-Prev` header: the appender's `entryHash` of the entry at `seq - 1`, when it knew it. */
  readonly prev: string | undefined;
  /** Its `Sm-Level` header: the log level the message needs (1 when absent, `log-level.ts`). */
  readonly level: number;
}

export interface LogReadOptions {
  readonly fromSeq: number;
  /** Stop after this sequence (catch-up). Absent: follow the log until `signal` aborts (a follower). */
  readonly untilSeq?: number;
  readonly signal?: AbortSignal;
  /**
   * Catch-up only (`untilSeq` set): if no message arrives for this long while short of `untilSeq`, the read
   * rejects so the caller retries with a fresh consumer. An ordered consumer whose server was paused or cut off
   * can otherwise wait forever without an error. Default 5000 ms.
   */
  readonly stallMs?: number;
  /**
   * Following (no `untilSeq`): the stream's last sequence from its leader. With it, a tail that has been idle for
   * `stallMs` asks whether the log moved on; if it did, the read rejects so the caller re-reads with a fresh consumer.
   */
  readonly tail?: () => Promise<number>;
  /** Called in log order with runs of records; the next messages wait until it resolves. */
  onBatch(batch: readonly LogRecord[], pending: number): Promise<void>;
}

/**
 * Reads the log in order with an ordered consumer (it resets itself on gaps and reconnects), and checks that the
 * sequences it hands on are contiguous rather than trusting that. Batches flush when full, when the consumer has nothing more pending, or at `untilSeq`.
 */
export async function readLog(js: JetStreamClient, domain: string, o: LogReadOptions): Promise<void> {
  if (o.untilSeq !== undefined && o.fromSeq > o.untilSeq) return;
  if (o.signal?.aborted) return;
  const messages = await openConsumer(js, domain, o.fromSeq, o.stallMs ?? DEFAULT_STALL_MS);
  // Aborting stops the consumer and wakes the wait for the next message.
  let wakeAborted: (() => void) | undefined;
  const aborted = new Promise<void>((resolve) => (wakeAborted = resolve));
  const onAbort = (): void => {
    wakeAborted?.();
    void messages.stop();
  };
  o.signal?.addEventListener('abort', onAbort, { once: true });
  // The stall watchdog: re-armed by every message, it stops a consumer that delivers nothing while the log has more.
  // It does not rely on the library to end the iteration once stopped: a consumer whose internals broke while its
  // server was paused (seen once: a TypeError inside nats.js's ordered consumer) may never yield again, so the wait
  // for the next message is raced against the watchdog itself.
  let stalled = false;
  let wakeStalled: (() => void) | undefined;
  const stalledSignal = new Promise<void>((resolve) => (wakeStalled = resolve));
  let lastSeq = o.fromSeq - 1;
  let watchdog: NodeJS.Timeout | undefined;
  const stall = (): void => {
    stalled = true;
    wakeStalled?.();
    void messages.stop();
  };
  const arm = (): void => {
    if (o.untilSeq === undefined && !o.tail) return;
    if (watchdog) clearTimeout(watchdog);
    watchdog = setTimeout(() => {
      if (o.untilSeq !== undefined) return stall();
      // Idle is normal for a follower; idle while the log moved on is not.
      const seen = lastSeq;
      o.tail!().then(
        (tail) => (tail > seen && lastSeq === seen ? stall() : arm()),
        () => arm(),
      );
    }, o.stallMs ?? DEFAULT_STALL_MS);
    watchdog.unref?.();
  };
  arm();
  let batch: LogRecord[] = [];
  let gapAt: number | undefined;
  const iterator = messages[Symbol.asyncIterator]();
  const stopped = Promise.race([stalledSignal, aborted]).then((): typeof STOPPED => STOPPED);
  try {
    for (;;) {
      const pendingNext = iterator.next();
      // A wait that loses the race may still settle later; its rejection is not an error of this read.
      pendingNext.catch(() => undefined);
      const next = await Promise.race([pendingNext, stopped]);
      if (next === STOPPED || next.done) break;
      const m = next.value;
      arm();
      // The log is contiguous (no limits, nothing deleted; a compaction removes only a prefix, which a read from below
      // it meets as a jump, and the catch-up then finds the log compacted). A seq already read is a redelivery; a jump
      // is a message the consumer lost (seen after a paused server resumed). Applying past a hole would let this
      // replica diverge silently at the same appliedSeq, so stop and let the caller re-read from what it applied.
      if (m.seq <= lastSeq) continue;
      if (m.seq !== lastSeq + 1) {
        gapAt = m.seq;
        break;
      }
      lastSeq = m.seq;
      batch.push({
        seq: m.seq,
        entry: decodeEntry(m.data),
        hash: entryHash(m.data),
        prev: m.headers?.get(PREV_HEADER) || undefined,
        level: parseLevelHeader(m.headers?.get(LEVEL_HEADER)),
      });
      const pending = m.info.pending;
      const done = o.untilSeq !== undefined && m.seq >= o.untilSeq;
      if (batch.length >= READ_BATCH || pending === 0 || done) {
        const full = batch;
        batch = [];
        // Applying is not stalling: the watchdog sleeps while the batch is applied.
        if (watchdog) clearTimeout(watchdog);
        await o.onBatch(full, pending);
        arm();
      }
      if (done || o.signal?.aborted) break;
    }
  } finally {
    if (watchdog) clearTimeout(watchdog);
    o.signal?.removeEventListener('abort', onAbort);
    // Bounded: closing a consumer whose server is unreachable waits on a round trip that may never come back.
    await Promise.race([messages.close().catch(() => undefined), delay(CLOSE_WAIT_MS)]);
  }
  if (gapAt !== undefined) {
    throw new Error(`log read of ${domain} jumped from seq ${lastSeq} to ${gapAt}; re-reading from the applied position`);
  }
  if (stalled && !o.signal?.aborted && (o.untilSeq === undefined || lastSeq < o.untilSeq)) {
    throw new Error(`log read of ${domain} stalled at seq ${lastSeq} (no message for ${o.stallMs ?? DEFAULT_STALL_MS} ms)`);
  }
}

/**
 * An ordered consumer from `fromSeq`, or an error after `timeoutMs`: creating one is a few JetStream API requests,
 * which nats.js retries for as long as its server cannot reach the stream's leader (a paused or cut-off server held
 * a catch-up there for 30 s and more). A consumer that opens after the deadline is closed at once.
 */
async function openConsumer(js: JetStreamClient, domain: string, fromSeq: number, timeoutMs: number): Promise<ConsumerMessages> {
  const opening = js.consumers
    .get(logStream(domain), { opt_start_seq: Math.max(1, fromSeq) })
    .then((consumer) => consumer.consume({ max_messages: READ_BATCH }));
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`log read of ${domain}: no consumer from seq ${fromSeq} within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([opening, deadline]);
  } catch (err) {
    opening.then((late) => late.close().catch(() => undefined), () => undefined);
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref?.());
}

/** The JetStream API error code in a nats.js error (10071: wrong last sequence), if there is one. */
export function apiErrorCode(err: unknown): number | undefined {
  const api = (err as { api_error?: { err_code?: number } } | null)?.api_error;
  return typeof api?.err_code === 'number' ? api.err_code : undefined;
}

/** JetStream's answer to a direct get of a sequence the stream does not hold. */
export const NO_MESSAGE_FOUND = 10037;

/** JetStream's answer to `Nats-Expected-Last-Sequence` that does not match: another writer appended. */
export const WRONG_LAST_SEQUENCE = 10071;
