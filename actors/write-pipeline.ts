/**
 * The leader's fenced, pipelined write path: dedup by opId → append to the shard's stream with
 * `Nats-Expected-Last-Sequence` (each append expects the one before it: previous + 1) and `Nats-Msg-Id` = opId →
 * apply acknowledged entries to LMDB in sequence order, grouped into one transaction per contiguous run.
 *
 * Many appends are in flight at once; one connection keeps their publish order, and JetStream checks each
 * expectation in that order. The first anomaly decides what the chain of expectations means:
 * - `10071 wrong last sequence` first: someone else appended — we are fenced. Every write behind it fails too.
 * - a JetStream duplicate (`ack.duplicate`), a timeout or an unexpected seq first: the entry's slot was not
 *   consumed (or we do not know), so everything behind it is rejected for our own reason, not a rival's. The
 *   pipeline asks for a resync (catch up from the stream, then lead again).
 * Either way every write that has no applied result gets NOT_LEADER (retryable): a retry with the same opId is
 * answered from the log, applied once. Leader-side dedup (LMDB `resultOf` + the in-flight map) keeps duplicates
 * from reaching JetStream in normal operation.
 */
import type { NatsConnection } from 'nats';
import { ErrorCode, ShardmindError } from '../protocol/index.ts';
import type { ApplyResult, LogEntry, ShardStore } from '../shards/index.ts';
import { LogAppender, type AppendAck, type AppendError } from './log-appender.ts';
import { decodeEntry, encodeEntry, entryHash } from './log-codec.ts';
import { WRONG_LAST_SEQUENCE } from './log-stream.ts';

/** Most acknowledged entries applied in one LMDB transaction. */
export const APPLY_BATCH = 1024;
export const DEFAULT_PUBLISH_TIMEOUT_MS = 5_000;

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
  /** After every LMDB commit, with the highest sequence now applied and the `entryHash` of its entry. */
  onApplied(seq: number, hash: string): void;
  /** After every LMDB commit, once its writers have their replies: what each entry did (the change feed). */
  onCommitted?(applied: readonly { entry: LogEntry; result: ApplyResult }[]): void;
}

interface Pending {
  readonly entry: LogEntry;
  readonly expected: number;
  readonly hash: string;
  readonly resolve: (r: ApplyResult) => void;
  readonly reject: (e: ShardmindError) => void;
  seq: number;
}

export class WritePipeline {
  private nextExpected: number;
  private nextApply: number;
  private readonly inFlight = new Map<string, Promise<ApplyResult>>();
  private readonly acked = new Map<number, Pending>();
  private publishing = 0;
  private applying: Promise<void> | undefined;
  private broken: PipelineBreak | undefined;
  private brokenReported = false;
  private closed = false;
  private settledWaiters: (() => void)[] = [];
  private brokenListener: ((why: PipelineBreak) => void) | undefined;
  private readonly appender: LogAppender;
  /** `entryHash` of the last entry submitted (the next append's `Sm-Prev`); undefined until known. */
  private chainHash: string | undefined;

  constructor(private readonly o: WritePipelineOptions) {
    this.chainHash = o.lastHash;
    this.nextExpected = o.lastSeq;
    this.nextApply = o.lastSeq + 1;
    this.appender = new LogAppender(o.nc, o.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS);
  }

  /** Appends and applies the entry; resolves with its applied result. A known opId returns the first result. */
  submit(entry: LogEntry): Promise<ApplyResult> {
    const prior = this.o.store.resultOf(entry.opId);
    if (prior) return Promise.resolve({ ...prior, duplicate: true });
    const running = this.inFlight.get(entry.opId);
    if (running) return running.then((r) => ({ ...r, duplicate: true }));
    if (this.broken || this.closed) return Promise.reject(notLeader('this shard actor is stepping down'));

    // The leader applies exactly the bytes followers decode, so every replica's LMDB gets the same input.
    const bytes = encodeEntry(entry);
    const logged = decodeEntry(bytes);
    if (!logged) return Promise.reject(new ShardmindError(ErrorCode.INTERNAL, `entry ${entry.opId} does not round-trip`));
    const expected = this.nextExpected++;
    const opId = entry.opId;
    // Entries are appended in submit order, each expecting the one before: the previous submit is its predecessor.
    const prev = this.chainHash;
    const hash = entryHash(bytes);
    this.chainHash = hash;
    let pending!: Pending;
    const result = new Promise<ApplyResult>((resolve, reject) => {
      pending = {
        entry: logged,
        expected,
        hash,
        resolve: (r) => {
          this.inFlight.delete(opId);
          resolve(r);
        },
        reject: (e) => {
          this.inFlight.delete(opId);
          reject(e);
        },
        seq: 0,
      };
    });
    this.inFlight.set(opId, result);
    this.publishing++;
    this.appender.append(this.o.subject, bytes, opId, expected, (err, ack) => this.appended(pending, err, ack), prev);
    return result;
  }

  /** JetStream's answer to one append, in append order (one connection, one stream). */
  private appended(pending: Pending, err: AppendError | undefined, ack: AppendAck | undefined): void {
    this.publishing--;
    const { expected } = pending;
    if (err !== undefined || ack === undefined) {
      if (err?.apiCode === WRONG_LAST_SEQUENCE) {
        this.breakWith({ kind: 'fenced', detail: `append expecting last seq ${expected} was rejected: ${err.message}` });
      } else {
        this.breakWith({ kind: 'resync', detail: `append failed: ${err?.message ?? 'no ack'}` });
      }
      pending.reject(notLeader('this shard actor lost the right to append'));
    } else if (ack.duplicate) {
      this.breakWith({ kind: 'resync', detail: `JetStream reported opId ${pending.entry.opId} as a duplicate of seq ${ack.seq}` });
      pending.reject(notLeader('the write was already in the log; retry to read its result'));
    } else if (ack.seq !== expected + 1) {
      this.breakWith({ kind: 'resync', detail: `append expected seq ${expected + 1}, got ${ack.seq}` });
      pending.reject(notLeader('the log moved under this leader'));
    } else if (this.broken) {
      // In the log, but after the break: whoever catches up applies it; the client's retry reads the result.
      pending.reject(notLeader('this shard actor is stepping down'));
    } else {
      pending.seq = ack.seq;
      this.acked.set(ack.seq, pending);
      this.kickApply();
    }
    this.checkSettled();
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

  /** Appends in flight plus entries acknowledged but not yet applied. */
  get depth(): number {
    return this.publishing + this.acked.size;
  }

  /** The highest sequence this pipeline has applied. */
  get appliedSeq(): number {
    return this.nextApply - 1;
  }

  /** Refuses new writes; `settled()` then resolves once what is in flight is appended and applied. */
  close(): void {
    this.closed = true;
    this.checkSettled();
  }

  /** Resolves when nothing is in flight (immediately when idle). */
  settled(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.publishing === 0 && this.applying === undefined && (this.acked.size === 0 || this.broken !== undefined);
  }

  private breakWith(why: PipelineBreak): void {
    if (!this.broken) this.broken = why;
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
      const run: Pending[] = [];
      for (let s = this.nextApply; run.length < APPLY_BATCH; s++) {
        const p = this.acked.get(s);
        if (!p) break;
        this.acked.delete(s);
        run.push(p);
      }
      if (run.length === 0) return;
      let results: ApplyResult[];
      try {
        // The last entry's hash goes with it, so this replica still knows its tail after a restart.
        results = await this.o.store.applyBatch(
          run.map((p) => ({ seq: p.seq, entry: p.entry })),
          { tailHash: run[run.length - 1]!.hash },
        );
      } catch (err) {
        const failure = new ShardmindError(ErrorCode.UNAVAILABLE, `LMDB apply failed: ${(err as Error).message}`, { cause: err });
        for (const p of run) p.reject(failure);
        this.breakWith({ kind: 'failed', detail: failure.message });
        return;
      }
      const last = run[run.length - 1]!;
      this.nextApply = last.seq + 1;
      const bySeq = new Map(results.map((r) => [r.seq, r]));
      const applied: { entry: LogEntry; result: ApplyResult }[] = [];
      for (const p of run) {
        const r = bySeq.get(p.seq) ?? this.o.store.resultOf(p.entry.opId);
        if (r) {
          p.resolve(r);
          applied.push({ entry: p.entry, result: r });
        } else p.reject(new ShardmindError(ErrorCode.INTERNAL, `seq ${p.seq} was applied without a result`));
      }
      this.o.onApplied(last.seq, last.hash);
      this.o.onCommitted?.(applied);
    }
  }

  private checkSettled(): void {
    if (!this.isIdle()) return;
    // Nothing more will be appended through this pipeline: stop listening for acks.
    if (this.broken || this.closed) this.appender.close();
    if (this.broken) {
      // Acked entries stranded behind a gap never reach LMDB through this pipeline: the caller retries.
      for (const p of this.acked.values()) p.reject(notLeader('this shard actor is stepping down'));
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

function notLeader(message: string): ShardmindError {
  return new ShardmindError(ErrorCode.NOT_LEADER, message);
}
