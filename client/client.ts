/**
 * The TypeScript SDK: `connect()` returns a `ShardmindClient` that remembers and recalls over NATS. It makes opIds,
 * retries within a deadline (same opId, so a retried write is applied once), keeps read-your-writes sequences per
 * domain, and throws `ShardmindError` with the wire's code. Requests go to the router (`sm.mem.<op>`) unless the
 * call (or the client) says `direct`, then to the shard (`sm.shard.<domain>.<op>`). A read with `maxStaleMs` and one
 * known domain goes to the shard's replicas: the one on the client's own node (`sm.replica.<domain>.<op>.<node>`)
 * when the client names its node and that node holds one, else any (`sm.replica.<domain>.<op>`).
 */
import { connect as natsConnect, ErrorCode as NatsErrorCode, NatsError, type NatsConnection } from 'nats';
import {
  ErrorCode,
  RECALL_TABLE_COLUMNS,
  ShardmindError,
  memSubject,
  eventSubject,
  decodePayload,
  inboxPrefixForUser,
  isClientInboxPrefix,
  replicaNodeSubject,
  replicaSubject,
  shardSubject,
  type ChangeFeedMessage,
  type ClassifyReply,
  type WireEntity,
  type HistoryReply,
  type RememberBatchItem,
  type RememberReply,
  type TaskBeginReply,
  type TaskObserveReply,
  type WireFact,
  type WireHistoryFact,
  type WireTaskSummary,
  type WriteReply,
  redactUrl,
  seqMap,
} from '../protocol/index.ts';
import { badRequest, defined, fromRememberReply, fromWireFact, fromWriteReply, optionalString, toWireFactInput, wireTime } from './convert.ts';
import { createOpIdSource, type OpIdSource } from './op-id.ts';
import { BATCH_IN_FLIGHT, DEFAULT_MAX_QUEUED_BYTES, RememberBatcher, type BatchTarget } from './remember-batcher.ts';
import { fromRecallReply, type AnyRecallReply } from './recall-reply.ts';
import { RecallBatcher, type RecallTarget } from './recall-batcher.ts';
import { DEFAULT_RETRY_POLICY, OutcomeUnknownError, isRefusal, withRetry, type RetryPolicy } from './retry.ts';
import { SeqTracker } from './seq-tracker.ts';
import { Transport } from './transport.ts';
import type {
  Change,
  CloseOptions,
  ConnectOptions,
  DomainScore,
  Entity,
  EntityInput,
  EntityResult,
  EntityView,
  Fact,
  FactInput,
  HistoryOptions,
  HistoryPage,
  RecallQuery,
  ReadRouting,
  RecallResult,
  RememberOptions,
  RememberResult,
  Routing,
  TaskObservation,
  TaskSummary,
  TaskStart,
  WatchOptions,
  WriteResult,
} from './types.ts';

export const DEFAULT_TIMEOUT_MS = 2_000;
export const DEFAULT_DEADLINE_MS = 10_000;
/** After its node answered "no responders" for a domain's replica, the client asks any replica for this long. */
const NO_LOCAL_REPLICA_RECHECK_MS = 30_000;
/** Where routed recalls go together: the router routes and merges each item as a lone `sm.mem.recall`. */
const ROUTER_RECALLS: RecallTarget = { name: 'the router', single: memSubject('recall'), batch: memSubject('recall_batch') };
/**
 * How long `close()` lets nats.js drain the connection before closing it outright. Draining only flushes what is
 * already written (every call has settled by then); while the server is unreachable nats.js 2.29's drain resolves
 * without closing, after its flush fails, so the connection is always closed after it.
 */
const DRAIN_BOUND_MS = 2_000;

/** A call this client accepted and that has not settled: `close()` waits for it, or at its bound gives it up. */
interface PendingCall {
  /** What to name in the error if it is given up: the subject, or `remember`. */
  readonly what: string;
  readonly opId: string | undefined;
  /** Rejects the caller's promise (set as the call starts). */
  giveUp?: (err: OutcomeUnknownError) => void;
}

/** How a call may be repeated: `idempotent` calls (reads, writes with an opId) on any retryable error; others
 * only when the server said it did nothing (NOT_LEADER, SHARD_MOVED, UNAVAILABLE, no responders). */
type Repeat = 'idempotent' | 'refusals-only';

/**
 * Connects to a shardmind cluster through any of its NATS servers.
 *
 * @example
 * ```ts
 * import { connect } from './client/index.ts'; // from the repository root
 *
 * const memory = await connect({ servers: 'nats://mini-1.local:4222', agent: 'mail-agent', node: 'mini-1' });
 * await memory.remember(
 *   { text: 'The user prefers PDF attachments over links', subject: 'user', predicate: 'prefers_attachment_format', object: 'pdf' },
 *   { domain: 'email' },
 * );
 * const { facts } = await memory.recall({ query: 'attachment or link?', domain: 'email' });
 * console.log(facts[0]?.text, facts[0]?.effectiveConfidence);
 * await memory.close();
 * ```
 */
export async function connect(options: ConnectOptions): Promise<ShardmindClient> {
  if (options.connection) return new ShardmindClient(options.connection, options, false);
  if (options.servers === undefined) throw new Error('connect: give `servers` (NATS URLs) or `connection`');
  const servers = typeof options.servers === 'string' ? [options.servers] : [...options.servers];
  const inboxPrefix = options.inboxPrefix ?? (options.user !== undefined ? inboxPrefixForUser(options.user) : undefined);
  if (options.inboxPrefix !== undefined && !isClientInboxPrefix(options.inboxPrefix)) {
    throw new Error(`connect: inboxPrefix: "${options.inboxPrefix}" is not _INBOX or a subject under it; hosts answer no other reply subject`);
  }
  let nc: NatsConnection;
  try {
    // An agent outlives server restarts: keep reconnecting (calls meanwhile fail over to retries, then errors).
    // No async traces: nats.js would capture a stack per request for a timeout that almost never happens (the
    // host measured ~8% of its CPU in that); a timeout still says which subject and how long.
    nc = await natsConnect({
      servers,
      name: `shardmind-client:${options.agent}`,
      maxReconnectAttempts: -1,
      noAsyncTraces: true,
      ...(options.user !== undefined ? { user: options.user, pass: options.pass ?? '' } : {}),
      // A named agent login may read only `_INBOX.<login>.>` (decisions §80): its replies must come there.
      ...(inboxPrefix !== undefined ? { inboxPrefix } : {}),
      ...(options.tls !== undefined ? { tls: { ...options.tls } } : {}),
    });
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    throw new ShardmindError(ErrorCode.UNAVAILABLE, `cannot connect to NATS at ${servers.map(redactUrl).join(', ')}: ${message}`, {
      cause,
      retryable: false,
    });
  }
  return new ShardmindClient(nc, options, true);
}

export class ShardmindClient {
  readonly agent: string;
  readonly node: string | undefined;
  private readonly transport: Transport;
  private readonly opIds: OpIdSource = createOpIdSource();
  private readonly seen = new SeqTracker();
  private readonly timeoutMs: number;
  private readonly deadlineMs: number;
  private readonly direct: boolean;
  private readonly policy: RetryPolicy;
  private readonly onRetry: ConnectOptions['onRetry'];
  private closing: Promise<void> | undefined;
  /** The calls in flight (made before `close()` and not settled). */
  private readonly pending = new Set<PendingCall>();
  /** Set while `close()` waits: called when the last pending call settles. */
  private onIdle: (() => void) | undefined;
  /** Domains whose replica is not on this client's node, until when (ms): replica reads go to any replica. */
  private readonly noLocalReplica = new Map<string, number>();
  /** Concurrent direct remembers to one shard, sent together (undefined when `batchRemember: false`). */
  private readonly batcher: RememberBatcher | undefined;
  /** Concurrent direct recalls to one shard, sent together (undefined when `batchRecall: false`). */
  private readonly recallBatcher: RecallBatcher | undefined;
  /** Each domain's recall subjects, made once. */
  private readonly recallTargets = new Map<string, RecallTarget>();

  /** Task calls, through the router: a task follows its work from domain to domain. */
  readonly task = {
    /** Starts a task in `domain`, or in the domain `text` is classified to; `context` is what that domain knows. */
    /**
     * Carries an opId, so a retry (after a lost reply, say) answers the task the first attempt made instead of making
     * a second; pass your own to repeat a call across restarts (the router keeps it 10 minutes).
     */
    begin: (text: string, options: { domain?: string; opId?: string } = {}): Promise<TaskStart> =>
      this.call<TaskBeginReply & { context?: readonly WireFact[] }>(
        memSubject('task.begin'),
        defined({ v: 1, agent: this.agent, text, domain: options.domain, opId: options.opId ?? this.opIds.next() }),
        'idempotent',
      ).then((r) => ({ task: r.task, domain: r.domain, context: (r.context ?? []).map((f) => fromWireFact(f)) })),
    /**
     * Tells the task what the agent just saw; it re-routes when the evidence says the work moved. Carries an opId, so
     * a retry (after a lost reply, say) is counted once; pass your own to repeat a call across restarts.
     */
    observe: (task: string, text: string, options: { opId?: string } = {}): Promise<TaskObservation> =>
      this.call<TaskObserveReply>(
        memSubject('task.observe'),
        { v: 1, task, text, opId: options.opId ?? this.opIds.next() },
        'idempotent',
      ).then(taskMove),
    /** Moves the task to a named domain. */
    reroute: (task: string, domain: string): Promise<TaskObservation> =>
      this.call<Partial<TaskObserveReply> & TaskBeginReply>(
        memSubject('task.reroute'),
        { v: 1, task, domain },
        'idempotent',
      ).then(taskMove),
    /** Ends the task; answers its summary (ending an ended task answers it again). */
    end: (task: string): Promise<TaskSummary> =>
      this.call<WireTaskSummary>(memSubject('task.end'), { v: 1, task }, 'idempotent').then(fromWireTaskSummary),
    /**
     * A task as it is now — its state, current domain, the domains it visited and its history — for any agent that
     * has its id (another agent's task included). NOT_FOUND when it was never begun or has expired.
     */
    get: (task: string): Promise<TaskSummary> =>
      this.call<WireTaskSummary>(memSubject('task.get'), { v: 1, task }, 'idempotent').then(fromWireTaskSummary),
  };

  constructor(
    readonly connection: NatsConnection,
    options: ConnectOptions,
    private readonly ownsConnection: boolean,
  ) {
    this.agent = options.agent;
    this.node = options.node;
    this.transport = new Transport(connection, options.encoding ?? 'msgpack');
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.deadlineMs = options.deadlineMs ?? DEFAULT_DEADLINE_MS;
    this.direct = options.direct ?? false;
    this.policy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    this.onRetry = options.onRetry;
    this.batcher =
      options.batchRemember === false
        ? undefined
        : new RememberBatcher(
            // Not tracked here: the caller's remember is (one tracked call each, whether it waits or is sent).
            (subject, body, deadline) => this.retrying(subject, 'idempotent', (timeoutMs) => this.transport.request(subject, body, timeoutMs), deadline),
            { agent: this.agent, node: this.node },
            BATCH_IN_FLIGHT,
            options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES,
          );
    this.recallBatcher =
      options.batchRecall === false
        ? undefined
        : new RecallBatcher((subject, body, deadline) => this.retrying(subject, 'idempotent', (timeoutMs) => this.transport.request(subject, body, timeoutMs), deadline));
  }

  /**
   * Remembers a fact. Without a domain (and not `direct`) the router classifies it. Remembers bound for the same
   * place (a shard, or the router with the same `domain`) that are outstanding at the same time go in one request
   * (`remember_batch`, see `remember-batcher.ts`), each still with its own opId, result and error. `deadlineMs`
   * counts from the call, time waiting for its turn included; when too many calls already wait for the same place
   * (more than `maxQueuedBytes` of facts: a shard that is down), the call fails at once with a retryable
   * UNAVAILABLE, not sent.
   */
  remember(fact: FactInput, options: RememberOptions = {}): Promise<RememberResult> {
    // Not async, and rememberItem's promise returned as it is: an async function returning a promise resolves a
    // few microtasks later, and the batcher's flush (a microtask) would then leave with fewer of the calls an
    // agent's loops make as their previous remembers resolve.
    let item: RememberBatchItem;
    try {
      item = defined({ opId: options.opId ?? this.opIds.next(), task: options.task, fact: toWireFactInput(fact) });
    } catch (err) {
      return Promise.reject(err);
    }
    return this.rememberItem(item, options);
  }

  /**
   * Remembers several facts at once: a result or an error per fact, in order (one bad fact fails only itself).
   * They travel in as few requests as the payload limit allows, and wait for room rather than fail when more are
   * queued for one place than the client holds (`maxQueuedBytes`): each fact's deadline counts from when it is queued.
   */
  async rememberMany(facts: readonly FactInput[], options: Omit<RememberOptions, 'opId'> = {}): Promise<(RememberResult | ShardmindError)[]> {
    const target = this.batcher === undefined ? undefined : this.batchTargetOrNone(options);
    const results: Promise<RememberResult | ShardmindError | undefined>[] = [];
    // A failure that is not a ShardmindError (a bug) fails the whole call, once every fact has settled; held here
    // rather than left in a rejected promise while the loop waits for room (Node would report it unhandled).
    let fatal: { err: unknown } | undefined;
    for (const f of facts) {
      let item: RememberBatchItem;
      try {
        item = defined({ opId: this.opIds.next(), task: options.task, fact: toWireFactInput(f) });
      } catch (err) {
        if (!(err instanceof ShardmindError)) throw err;
        results.push(Promise.resolve(err));
        continue;
      }
      // Awaited only when the queue is full, so that facts queued in one tick still go together.
      for (let room = target && this.batcher!.whenRoom(target, item); room !== undefined; room = this.batcher!.whenRoom(target!, item)) await room;
      results.push(
        this.rememberItem(item, options).catch((err: unknown) => {
          if (err instanceof ShardmindError) return err;
          fatal ??= { err };
          return undefined;
        }),
      );
    }
    const settled = await Promise.all(results);
    if (fatal !== undefined) throw fatal.err;
    return settled as (RememberResult | ShardmindError)[];
  }

  private async rememberItem(item: RememberBatchItem, options: RememberOptions): Promise<RememberResult> {
    let reply: RememberReply;
    if (this.batcher !== undefined) {
      const batcher = this.batcher;
      const target = this.batchTarget(options);
      const deadline = Date.now() + this.deadlineMs;
      // Not through track(): the batcher keeps what close() waits for and gives up (no bookkeeping per call).
      if (this.closing) throw closedError('remember');
      reply = await batcher.remember(target, item, deadline);
    } else {
      const body = defined({ v: 1, agent: this.agent, node: this.node, domain: options.domain, ...item });
      reply = await this.call<RememberReply>(this.subject('remember', options), body, 'idempotent');
    }
    this.seen.observe(reply.domain, reply.seq);
    return fromRememberReply(reply, item.opId);
  }

  /**
   * Recalls facts, best first; waits (bounded, on the shard) until this client's own writes are visible. Recalls
   * outstanding at the same time go in one `recall_batch` request (see `recall-batcher.ts`) — direct ones to their
   * shard, routed ones to the router — each with its own result, error and deadline; a lone one is a plain `recall`.
   */
  async recall(query: RecallQuery): Promise<RecallResult> {
    checkRecallQuery(query);
    const domains = query.domain === undefined ? undefined : typeof query.domain === 'string' ? [query.domain] : [...query.domain];
    const direct = query.direct ?? this.direct;
    if (direct && domains?.length !== 1) {
      throw new ShardmindError(ErrorCode.BAD_REQUEST, 'domain: a direct recall names exactly one domain');
    }
    const body = defined({
      v: 1,
      agent: this.agent,
      task: query.task,
      query: query.query,
      domain: query.domain,
      subject: query.subject,
      predicate: query.predicate,
      asOf: wireTime(query.asOf, 'asOf'),
      minConfidence: query.minConfidence,
      limit: query.limit,
      hops: query.hops,
      includeInactive: query.includeInactive,
      minSeq: this.seen.minSeqFor(domains, query.minSeq),
      maxStaleMs: query.maxStaleMs,
      // Rows instead of a map per fact (half the bytes); a router merging several shards still answers with maps.
      layout: 'table',
      // This client reads every column the shards write by position, so their names need not come back.
      knownColumns: RECALL_TABLE_COLUMNS.length,
    });
    let reply: AnyRecallReply;
    if (query.maxStaleMs !== undefined && domains?.length === 1) reply = await this.callReplica<AnyRecallReply>(domains[0]!, 'recall', body);
    else if (this.recallBatcher !== undefined) {
      // Concurrent recalls to one shard (direct) or through the router travel together (recall-batcher.ts); a lone
      // one as a plain recall. Not through track(): the batcher keeps what close() waits for and gives up.
      if (this.closing) throw closedError('recall');
      reply = await this.recallBatcher.recall(direct ? this.recallTarget(domains![0]!) : ROUTER_RECALLS, body, Date.now() + this.deadlineMs);
    } else reply = await this.call<AnyRecallReply>(direct ? shardSubject(domains![0]!, 'recall') : memSubject('recall'), body, 'idempotent');
    this.seen.observeAll(reply.seqs);
    return fromRecallReply(reply);
  }

  /**
   * Creates or updates an entity — one global id, its aliases and attributes — in every domain (or the ones named),
   * so a recall or lookup by any of its names finds it there. Retried with the same opId, applied once per domain.
   */
  async entity(input: EntityInput, options: { domain?: string | readonly string[]; opId?: string } = {}): Promise<EntityResult> {
    const opId = options.opId ?? this.opIds.next();
    const body = defined({ v: 1, agent: this.agent, opId, domain: options.domain, entity: input });
    const reply = await this.call<{ domains: string[]; entity: WireEntity; seqs: Record<string, number>; missing?: EntityResult['missing'] }>(
      memSubject('entity'),
      body,
      'idempotent',
    );
    this.seen.observeAll(reply.seqs);
    return { domains: reply.domains, entity: fromWireEntity(reply.entity), missing: reply.missing ?? [] };
  }

  /** An entity by id or alias: each domain's view (empty when no domain knows it). */
  async lookup(idOrAlias: string, options: { domain?: string | readonly string[] } = {}): Promise<EntityView[]> {
    const domains = options.domain === undefined ? undefined : typeof options.domain === 'string' ? [options.domain] : [...options.domain];
    const body = defined({ v: 1, entity: idOrAlias, domain: options.domain, minSeq: this.seen.minSeqFor(domains) });
    try {
      const reply = await this.call<{ views: (WireEntity & { domain: string })[] }>(memSubject('lookup'), body, 'idempotent');
      return reply.views.map((v) => ({ domain: v.domain, ...fromWireEntity(v) }));
    } catch (err) {
      if (err instanceof ShardmindError && err.code === ErrorCode.NOT_FOUND) return [];
      throw err;
    }
  }

  /** Removes a fact's text at the user's request (a tombstone stays). The domain defaults to the fact id's. */
  async forget(factId: string, options: Routing & { opId?: string } = {}): Promise<WriteResult> {
    const domain = options.domain ?? domainOfFactId(factId);
    const opId = options.opId ?? this.opIds.next();
    const body = { v: 1, agent: this.agent, opId, factId, domain };
    const reply = await this.call<WriteReply>(this.subject('forget', { ...options, domain }), body, 'idempotent');
    this.seen.observe(reply.domain, reply.seq);
    return fromWriteReply(reply, opId);
  }

  /** Marks a fact as no longer true from `validTo` (default now); it stays in history. */
  async retract(factId: string, options: Routing & { opId?: string; validTo?: Date | string } = {}): Promise<WriteResult> {
    const domain = options.domain ?? domainOfFactId(factId);
    const opId = options.opId ?? this.opIds.next();
    const body = defined({ v: 1, agent: this.agent, opId, factId, domain, validTo: wireTime(options.validTo, 'validTo') });
    const reply = await this.call<WriteReply>(this.subject('retract', { ...options, domain }), body, 'idempotent');
    this.seen.observe(reply.domain, reply.seq);
    return fromWriteReply(reply, opId);
  }

  /**
   * The facts recorded about (subject, predicate) in one domain, oldest first: what was believed when. One page: the
   * `limit` (default 100, at most 1000) recorded most recently; `historyPage` gives the cursor to read older ones.
   */
  async history(subject: string, predicateOrOptions: string | undefined | HistoryOptions, options?: HistoryOptions): Promise<Fact[]> {
    return (await this.historyPage(subject, predicateOrOptions, options)).facts;
  }

  /**
   * A page of `history` and, when older facts remain, `next`: pass it as `before` for the next page.
   *
   * @example
   * for (let before: number | undefined, page; (page = await client.historyPage('user', 'note', { domain: 'email', before })); ) {
   *   use(page.facts);
   *   if ((before = page.next) === undefined) break;
   * }
   */
  async historyPage(subject: string, predicateOrOptions: string | undefined | HistoryOptions, maybeOptions?: HistoryOptions): Promise<HistoryPage> {
    // (subject, predicate, options) as documented, or (subject, options) — the form callers reach for first.
    const options = typeof predicateOrOptions === 'object' && predicateOrOptions !== null ? predicateOrOptions : maybeOptions;
    if (typeof options !== 'object' || options === null || typeof options.domain !== 'string') {
      throw badRequest('domain', 'required: a history reads one domain (pass { domain })');
    }
    if (typeof subject !== 'string') throw badRequest('subject', 'must be a string', subject);
    const predicate = typeof predicateOrOptions === 'string' ? predicateOrOptions : options.predicate;
    optionalString(predicate, 'predicate');
    const body = defined({
      v: 1,
      subject,
      predicate,
      domain: options.domain,
      limit: options.limit,
      before: options.before,
      minSeq: this.seen.minSeqFor([options.domain], floorOf(options.minSeq)),
      maxStaleMs: options.maxStaleMs,
    });
    const reply =
      options.maxStaleMs !== undefined
        ? await this.callReplica<HistoryReply>(options.domain, 'history', body)
        : await this.call<HistoryReply>(this.subject('history', options), body, 'idempotent');
    const facts = reply.facts.map((f: WireHistoryFact) => fromWireFact(f));
    return reply.next !== undefined ? { facts, next: reply.next } : { facts };
  }

  /** One fact by id, or undefined when the shard has none. The domain defaults to the fact id's. */
  async get(factId: string, options: ReadRouting = {}): Promise<Fact | undefined> {
    const domain = options.domain ?? domainOfFactId(factId);
    const body = defined({ v: 1, factId, domain, minSeq: this.seen.minSeqFor([domain], floorOf(options.minSeq)), maxStaleMs: options.maxStaleMs });
    try {
      const reply =
        options.maxStaleMs !== undefined
          ? await this.callReplica<{ v: 1; fact: WireHistoryFact }>(domain, 'get', body)
          : await this.call<{ v: 1; fact: WireHistoryFact }>(this.subject('get', { ...options, domain }), body, 'idempotent');
      return fromWireFact(reply.fact);
    } catch (err) {
      if (err instanceof ShardmindError && err.code === ErrorCode.NOT_FOUND) return undefined;
      throw err;
    }
  }

  /** Which domains a text belongs to, most likely first. */
  async classify(text: string): Promise<DomainScore[]> {
    const reply = await this.call<ClassifyReply>(memSubject('classify'), { v: 1, text }, 'idempotent');
    return reply.domains.map((d) => ({ domain: d.domain, p: d.p }));
  }

  /**
   * Calls `onChange` for every change the shards' leaders announce (`sm.evt.<domain>`): what any agent remembers,
   * forgets, retracts or says about an entity, as it is committed. At most once — `onGap` says when a stretch went
   * by unannounced. Returns the stop. `onChange` may be async: what it rejects with goes to `onError` like what it
   * throws, and reactions to two changes then run concurrently (the next change does not wait for the last one's).
   * @example
   * const stop = memory.watch({ domain: 'email', subject: 'user' }, (c) => console.log(c.agent, c.status, c.text));
   */
  watch(options: WatchOptions, onChange: (change: Change) => unknown): () => void {
    const lastToSeq = new Map<string, number>();
    const sub = this.connection.subscribe(eventSubject(options.domain ?? '*'), {
      callback: (err, msg) => {
        if (err) return;
        let m: ChangeFeedMessage;
        try {
          m = decodePayload(msg.data, 'msgpack') as ChangeFeedMessage;
        } catch {
          return; // not ours
        }
        // Anyone who may publish on sm.evt.* can send anything: only the feed's shape is read, and nothing thrown
        // here (nor by the caller's callbacks) may reach nats.js, whose read loop would end with it.
        if (m?.v !== 1 || typeof m.domain !== 'string' || !Number.isSafeInteger(m.fromSeq) || !Number.isSafeInteger(m.toSeq) || !Array.isArray(m.events)) return;
        const report = (err: unknown): void => {
          if (options.onError) {
            try {
              options.onError(err);
              return;
            } catch (again) {
              err = again;
            }
          }
          process.stderr.write(`shardmind watch: a callback threw: ${(err as Error)?.stack ?? String(err)}\n`);
        };
        const last = lastToSeq.get(m.domain);
        if (last !== undefined && m.fromSeq > last + 1) {
          try {
            options.onGap?.({ domain: m.domain, fromSeq: last + 1, toSeq: m.fromSeq - 1 });
          } catch (err) {
            report(err);
          }
        }
        if (last === undefined || m.toSeq > last) lastToSeq.set(m.domain, m.toSeq);
        for (const e of m.events) {
          if (typeof e !== 'object' || e === null) continue;
          if (options.subject !== undefined && e.subject !== options.subject && e.subjectAsWritten !== options.subject) continue;
          try {
            // The feed's op and status are the closed sets `Change` names (actors/change-feed.ts publishes no others).
            const reaction: unknown = onChange({ domain: m.domain, ...e } as Change);
            // An async handler's rejection would otherwise be unhandled: Node ends the process on one.
            if (isThenable(reaction)) reaction.then(undefined, report);
          } catch (err) {
            report(err);
          }
        }
      },
    });
    return () => sub.unsubscribe();
  }

  /** The highest sequence this client has seen for a domain (its read-your-writes floor). */
  seenSeq(domain: string): number {
    return this.seen.get(domain);
  }
  /**
   * Every domain's highest sequence this client has seen, `{ domain: seq }`: hand it to another agent with the work,
   * and its reads with `minSeq` set to it see everything this client wrote before (read-your-writes across agents).
   */
  seqs(): Record<string, number> {
    return this.seen.snapshot();
  }


  /**
   * Stops taking calls (a call made after it fails with UNAVAILABLE "client is closed", not sent), waits for the
   * calls already made to settle — each ends by its own `deadlineMs`, so by default every one does — then drains
   * and closes the connection if the client opened it. A call still unsettled after `timeoutMs` is rejected with an
   * `OutcomeUnknownError` (TIMEOUT, retryable): it may have been applied, so retry it with its `opId` (the error
   * carries it). The connection is closed when this resolves, even if the server is unreachable. Idempotent.
   */
  close(options: CloseOptions = {}): Promise<void> {
    this.closing ??= this.shutDown(options.timeoutMs ?? this.deadlineMs);
    return this.closing;
  }

  private async shutDown(boundMs: number): Promise<void> {
    const deadline = Date.now() + boundMs;
    const settled = Promise.all([
      this.pending.size === 0 ? undefined : new Promise<void>((resolve) => void (this.onIdle = resolve)),
      this.batcher?.whenIdle(),
      this.recallBatcher?.whenIdle(),
    ]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([settled, new Promise<void>((resolve) => void (timer = setTimeout(resolve, boundMs)))]);
    clearTimeout(timer);
    this.onIdle = undefined;
    const givenUp = (what: string, opId: string | undefined): OutcomeUnknownError =>
      new OutcomeUnknownError(
        `${what}: the client closed before its reply came (close waited ${boundMs} ms); it may or may not have been applied` +
          (opId === undefined ? '' : ` — retry it with the same opId ${opId}, which applies it at most once`),
        opId,
      );
    for (const call of this.pending) call.giveUp?.(givenUp(call.what, call.opId));
    this.pending.clear();
    this.batcher?.abandon((item) => givenUp('remember', item.opId));
    this.recallBatcher?.abandon(() => givenUp('recall', undefined));
    // The drain counts against the same bound: close({ timeoutMs: 1500 }) with the server gone took 3.6 s (1.5 s for
    // the calls, then the drain's own 2 s).
    if (this.ownsConnection && !this.connection.isClosed()) await closeConnection(this.connection, Math.min(DRAIN_BOUND_MS, deadline - Date.now()));
  }

  /**
   * Runs a call the caller waits for, refused once `close()` has begun, counted until it settles so that `close()`
   * can wait for it (or give it up at its bound: the caller then gets the OutcomeUnknownError, whatever comes later).
   */
  private track<T>(what: string, opId: string | undefined, work: () => Promise<T>): Promise<T> {
    let call: PendingCall;
    try {
      call = this.admit(what, opId);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<T>((resolve, reject) => {
      call.giveUp = reject;
      work().then(
        (value) => {
          this.release(call);
          resolve(value);
        },
        (err: unknown) => {
          this.release(call);
          reject(err);
        },
      );
    });
  }

  /** Counts a call as pending, or refuses it once `close()` has begun. */
  private admit(what: string, opId: string | undefined): PendingCall {
    if (this.closing) throw closedError(what);
    const call: PendingCall = { what, opId };
    this.pending.add(call);
    return call;
  }

  private release(call: PendingCall): void {
    if (this.pending.delete(call) && this.pending.size === 0) this.onIdle?.();
  }

  /** Where a remember goes, for the batcher: the shard when direct, else the router (per named domain). */
  private batchTarget(routing: Routing): BatchTarget {
    const domain = routing.domain;
    if (routing.direct ?? this.direct) {
      return { key: `shard ${domain}`, single: this.subject('remember', routing), batch: this.subject('remember_batch', routing), domain };
    }
    return { key: `mem ${domain ?? ''}`, single: memSubject('remember'), batch: memSubject('remember_batch'), ...(domain === undefined ? {} : { domain }) };
  }

  private recallTarget(domain: string): RecallTarget {
    let target = this.recallTargets.get(domain);
    if (target === undefined) {
      target = { name: `the ${domain} shard`, single: shardSubject(domain, 'recall'), batch: shardSubject(domain, 'recall_batch') };
      if (this.recallTargets.size >= 256) this.recallTargets.clear(); // domains are few; names that are not, kept small
      this.recallTargets.set(domain, target);
    }
    return target;
  }

  /** The batch target, or undefined when there is none (each call then fails with the reason on its own). */
  private batchTargetOrNone(routing: Routing): BatchTarget | undefined {
    try {
      return this.batchTarget(routing);
    } catch (err) {
      if (err instanceof ShardmindError) return undefined;
      throw err;
    }
  }

  private subject(op: string, routing: Routing): string {
    if (!(routing.direct ?? this.direct)) return memSubject(op);
    if (routing.domain === undefined) {
      throw new ShardmindError(ErrorCode.BAD_REQUEST, `domain: required for a direct ${op}`);
    }
    return shardSubject(routing.domain, op);
  }

  private call<T>(subject: string, body: object, repeat: Repeat): Promise<T> {
    return this.attempts(subject, repeat, (timeoutMs) => this.transport.request<T>(subject, body, timeoutMs), body);
  }

  /**
   * A replica read: each attempt asks the replica on this client's node first (when the client names its node),
   * and any replica when that node holds none (no responders, remembered for a while).
   */
  private callReplica<T>(domain: string, op: string, body: object): Promise<T> {
    const any = replicaSubject(domain, op);
    const node = this.node;
    return this.attempts(any, 'idempotent', async (timeoutMs) => {
      if (node !== undefined && (this.noLocalReplica.get(domain) ?? 0) <= Date.now()) {
        try {
          return await this.transport.request<T>(replicaNodeSubject(domain, op, node), body, timeoutMs);
        } catch (err) {
          if (!(err instanceof ShardmindError && isNoResponders(err.cause))) throw err;
          this.noLocalReplica.set(domain, Date.now() + NO_LOCAL_REPLICA_RECHECK_MS);
        }
      }
      return this.transport.request<T>(any, body, timeoutMs);
    });
  }

  /** A call's attempts, tracked for `close()`; a write's opId is read from its body. */
  private attempts<T>(subject: string, repeat: Repeat, attempt: (timeoutMs: number) => Promise<T>, body?: object): Promise<T> {
    const opId = (body as { opId?: unknown } | undefined)?.opId;
    return this.track(subject, typeof opId === 'string' ? opId : undefined, () => this.retrying(subject, repeat, attempt));
  }

  private retrying<T>(subject: string, repeat: Repeat, attempt: (timeoutMs: number) => Promise<T>, deadline = Date.now() + this.deadlineMs): Promise<T> {
    return withRetry((remainingMs) => attempt(Math.min(this.timeoutMs, remainingMs)), {
      deadline,
      policy: this.policy,
      mayRetry: (err) => err.retryable && (repeat === 'idempotent' || isRefusal(err)),
      onRetry: (err, attempt) => this.onRetry?.({ subject, code: err.code, attempt }),
    });
  }
}

function closedError(what: string): ShardmindError {
  return new ShardmindError(ErrorCode.UNAVAILABLE, `${what}: client is closed; not sent`, { retryable: false });
}

/**
 * Drains, bounded, then closes: nats.js 2.29's `drain()` swallows the failure of its last flush while the server is
 * unreachable and resolves with the connection still open and reconnecting forever, which keeps the process alive.
 */
async function closeConnection(nc: NatsConnection, drainMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, drainMs));
  });
  try {
    if (drainMs > 0) await Promise.race([nc.drain(), bound]);
  } catch {
    // Draining failed (closed meanwhile, or it cannot flush): closing below is what is left to do.
  } finally {
    clearTimeout(timer);
  }
  if (!nc.isClosed()) await nc.close().catch(() => undefined);
}

function isNoResponders(err: unknown): boolean {
  return err instanceof NatsError && err.code === NatsErrorCode.NoResponders;
}

function taskMove(r: Partial<TaskObserveReply> & { task: string; domain: string }): TaskObservation {
  return {
    task: r.task,
    domain: r.domain,
    rerouted: r.rerouted ?? null,
    context: (r.context ?? []).map((f) => fromWireFact(f)),
  };
}

/** Fact ids are `<domain>:<seq>:<index>`; the domain prefix routes calls that name only a fact. */
export function domainOfFactId(factId: string): string {
  if (typeof factId !== 'string') throw badRequest('factId', 'must be a string', factId);
  const i = factId.indexOf(':');
  if (i <= 0) {
    throw new ShardmindError(ErrorCode.BAD_REQUEST, `factId: "${factId}" has no domain prefix; pass { domain }`);
  }
  return factId.slice(0, i);
}

function fromWireEntity(e: WireEntity): Entity {
  return {
    id: e.id,
    name: e.name,
    ...(e.type !== undefined ? { type: e.type } : {}),
    aliases: e.aliases,
    attributes: e.attributes,
    updatedAt: new Date(e.updatedAt),
  };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}

/** What `recall` reads itself before sending (the server checks the rest): refused as BAD_REQUEST naming the field. */
/** A `minSeq` floor handed in by the caller, checked as the shards check it (domain names, whole sequences). */
function floorOf(value: unknown): Record<string, number> | undefined {
  return value === undefined ? undefined : seqMap(value, 'minSeq');
}

function checkRecallQuery(query: RecallQuery): void {
  if (typeof query !== 'object' || query === null) throw badRequest('query', 'must be an object ({ query?, subject?, domain?, … })', query);
  floorOf(query.minSeq);
  optionalString(query.query, 'query');
  optionalString(query.subject, 'subject');
  optionalString(query.predicate, 'predicate');
  optionalString(query.task, 'task');
  const d: unknown = query.domain;
  if (d !== undefined && typeof d !== 'string' && !(Array.isArray(d) && d.every((x) => typeof x === 'string'))) {
    throw badRequest('domain', 'must be a domain name or a list of them', d);
  }
}

function fromWireTaskSummary(w: WireTaskSummary): TaskSummary {
  return {
    task: w.task,
    agent: w.agent,
    state: w.state,
    domain: w.domain,
    visited: [...w.visited],
    history: w.history.map((h) => ({ ...h, at: new Date(h.at) })),
  };
}
