/**
 * One shard (domain) on one node: the `ShardRuntime` behind `shardMachine`. It owns the shard's LMDB store, its
 * position in the log, the leader's write pipeline and subscription, and the follower's tail. The machine decides
 * when each piece runs; this file is how.
 */
import { join } from 'node:path';
import { createActor, type Actor } from 'xstate';
import type { JetStreamClient, JetStreamManager, NatsConnection, Subscription } from 'nats';
import { ErrorCode, ShardmindError, logSubject } from '../protocol/index.ts';
import type { DomainConfig } from '../config/index.ts';
import type { LogEntry, MarkerEntry, ShardStore, ShardStoreOptions } from '../shards/index.ts';
import type { Clock } from './clock.ts';
import { ensureLogStream, logTail, readLog, type LogRecord } from './log-stream.ts';
import { SeqWaiters } from './seq-waiters.ts';
import { HeartbeatPublisher } from './heartbeat.ts';
import { systemTimerClock } from './timers.ts';
import { serveShard } from './shard-service.ts';
import { shardMachine, type ShardEvent, type ShardRuntime, type ShardState } from './shard-machine.ts';
import { WritePipeline } from './write-pipeline.ts';

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
  /** How often a leader heartbeats on `sm.hb.<domain>`. */
  readonly heartbeatMs: number;
  readonly limits: { readonly maxPayloadBytes: number; readonly minSeqWaitMs: number; readonly maxRecallLimit: number };
  readonly clock: Clock;
  readonly openStore: OpenStore;
  readonly log: (line: string) => void;
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
}

const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 2_000;

export class ShardActor implements ShardRuntime {
  private actor: Actor<typeof shardMachine> | undefined;
  private store: ShardStore | undefined;
  private pipeline: WritePipeline | undefined;
  private subscription: Subscription | undefined;
  private readonly abort = new AbortController();
  private readonly tasks = new Set<Promise<unknown>>();
  private readonly waiters = new SeqWaiters(() => this.position);
  private position = 0;
  private epoch = 0;
  private followLag = 0;
  private drained: Promise<void> | undefined;
  private stoppedPromise: Promise<void> | undefined;

  constructor(private readonly o: ShardActorOptions) {}

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
        const why = snap.context.lastError && (state === 'failed' || state === 'catchingUp') ? ` (${snap.context.lastError})` : '';
        this.log(`→ ${state}${why}`);
      },
      error: (err) => this.log(`machine error: ${String(err)}`),
    });
    this.actor.start();
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

  status(): ShardStatus {
    const state = this.state;
    const lastError = this.actor?.getSnapshot().context.lastError;
    return {
      domain: this.domain,
      role: state === 'leading' || state === 'handingOff' ? 'leader' : state === 'following' ? 'follower' : 'none',
      state,
      appliedSeq: this.position,
      epoch: this.epoch,
      lag: state === 'leading' ? (this.pipeline?.depth ?? 0) : this.followLag,
      ...(lastError ? { lastError } : {}),
    };
  }

  // ---- ShardRuntime: the work behind each state -------------------------------------------------------------

  async open(): Promise<void> {
    const d = this.o.domain;
    this.store = await this.o.openStore({
      path: join(this.o.dataDir, this.o.node, d.name),
      domain: d.name,
      ...(d.predicates ? { predicates: d.predicates } : {}),
      ...(d.defaultPredicate ? { defaultPredicate: d.defaultPredicate } : {}),
    });
    this.position = this.store.appliedSeq;
    this.epoch = this.store.leadership()?.epoch ?? 0;
    await this.retrying('ensure stream', () => ensureLogStream(this.o.jsm, d.name, this.o.replicas));
  }

  async catchUp(): Promise<void> {
    await this.retrying('catch up', async () => {
      const tail = await logTail(this.o.jsm, this.domain);
      await this.track(
        readLog(this.o.js, this.domain, {
          fromSeq: this.position + 1,
          untilSeq: tail,
          signal: this.abort.signal,
          onBatch: (batch, pending) => this.applyRecords(batch, pending),
        }),
      );
      if (this.position < tail && !this.abort.signal.aborted) throw new Error(`read stopped at ${this.position} of ${tail}`);
    });
  }

  async claim(): Promise<void> {
    this.pipeline?.close();
    const pipeline = new WritePipeline({
      js: this.o.js,
      subject: logSubject(this.domain),
      store: this.requireStore(),
      lastSeq: this.position,
      onApplied: (seq) => this.advance(seq),
    });
    this.pipeline = pipeline;
    this.epoch = this.nextEpoch();
    try {
      // Through the pipeline, so it carries `Nats-Expected-Last-Sequence` = the tail we caught up to: if anyone
      // appended since, it is rejected and we never serve.
      await this.track(pipeline.submit(this.marker('epoch')));
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
      waitForSeq: (seq, ms) => this.waiters.waitFor(seq, ms),
      position: () => this.position,
      onInternalError: (err, op) => this.log(`internal error in ${op}: ${(err as Error)?.stack ?? String(err)}`),
    });
    // Issue 3 heartbeats so every host's shard guard knows a leader is serving. Issue 5's ShardFailover takes this
    // over (it also renews the lease from each beat's round trip): then this publisher goes.
    const heartbeat = new HeartbeatPublisher({
      nc: this.o.nc,
      domain: this.domain,
      node: this.o.node,
      clock: systemTimerClock,
      heartbeatMs: this.o.heartbeatMs,
      state: () => ({ epoch: this.epoch, seq: this.position }),
      onRenew: () => undefined,
    });
    heartbeat.start();
    const stopHeartbeat = (): void => heartbeat.stop();
    this.log(`serving sm.shard.${this.domain}.* at epoch ${this.epoch}, seq ${this.position}`);
    pipeline.onBroken((why) => {
      if (left) return;
      this.log(`pipeline broke: ${why.kind}: ${why.detail}`);
      stopHeartbeat();
      this.subscription?.unsubscribe();
      this.subscription = undefined;
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
      stopHeartbeat();
      this.subscription?.unsubscribe();
      this.subscription = undefined;
    };
  }

  follow(send: (e: ShardEvent) => void): () => void {
    const stop = new AbortController();
    const onAbort = (): void => stop.abort();
    this.abort.signal.addEventListener('abort', onAbort, { once: true });
    this.track(
      readLog(this.o.js, this.domain, {
        fromSeq: this.position + 1,
        signal: stop.signal,
        onBatch: (batch, pending) => this.applyRecords(batch, pending),
      }).then(
        () => {
          if (!stop.signal.aborted) send({ type: 'TAIL_ENDED', detail: 'the log tail ended' });
        },
        (err: unknown) => {
          if (!stop.signal.aborted) send({ type: 'TAIL_ENDED', detail: `tail failed: ${(err as Error)?.message ?? String(err)}` });
        },
      ),
    );
    return () => {
      this.abort.signal.removeEventListener('abort', onAbort);
      stop.abort();
    };
  }

  async handOff(to: string): Promise<void> {
    const pipeline = this.pipeline;
    if (!pipeline) throw new Error('handOff outside leading');
    await pipeline.settled();
    await pipeline.submit({ ...this.marker('handoff'), to });
    pipeline.close();
    await pipeline.settled();
  }

  drain(): Promise<void> {
    if (this.drained) return this.drained;
    this.drained = (async () => {
      this.abort.abort();
      this.subscription?.unsubscribe();
      this.subscription = undefined;
      if (this.pipeline) {
        this.pipeline.close();
        await this.pipeline.settled();
      }
      await Promise.allSettled([...this.tasks]);
      this.waiters.cancelAll(new ShardmindError(ErrorCode.UNAVAILABLE, `the ${this.domain} shard is stopping`));
      await this.store?.close();
    })();
    return this.drained;
  }

  // ---- helpers -------------------------------------------------------------------------------------------------

  private async applyRecords(batch: readonly LogRecord[], pending: number): Promise<void> {
    const entries: { seq: number; entry: LogEntry }[] = [];
    for (const r of batch) {
      if (r.entry) entries.push({ seq: r.seq, entry: r.entry });
      else this.log(`seq ${r.seq} is not a log entry; skipped`);
    }
    if (entries.length > 0) await this.requireStore().applyBatch(entries);
    this.followLag = pending;
    const last = batch[batch.length - 1];
    if (last) this.advance(last.seq);
  }

  private advance(seq: number): void {
    if (seq > this.position) this.position = seq;
    this.waiters.advanced();
  }

  /**
   * The epoch this node leads in. Issue 3: one past the last epoch marker in the log, or the same epoch when this
   * node was the last to lead (a resync). Issue 5 replaces this with a `kv.create` claim of `<domain>.<epoch>`.
   */
  private nextEpoch(): number {
    const mark = this.store?.leadership();
    if (mark && mark.kind === 'epoch' && mark.node === this.o.node && mark.epoch === this.epoch) return this.epoch;
    return Math.max(this.epoch, mark?.epoch ?? 0) + 1;
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
  private async retrying(what: string, work: () => Promise<void>): Promise<void> {
    for (let attempt = 0, wait = RETRY_MIN_MS; ; attempt++, wait = Math.min(wait * 2, RETRY_MAX_MS)) {
      try {
        await work();
        return;
      } catch (err) {
        if (this.abort.signal.aborted) return;
        if (attempt % 5 === 0) this.log(`${what} failed (retrying): ${(err as Error)?.message ?? String(err)}`);
        await abortableDelay(wait, this.abort.signal);
        if (this.abort.signal.aborted) return;
      }
    }
  }

  private log(message: string): void {
    this.o.log(`[${this.o.node} ${this.domain} ${this.state}] ${message}`);
  }
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
