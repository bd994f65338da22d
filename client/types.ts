/**
 * What a TypeScript caller of the client sees: camelCase, `Date` for times, arrays instead of optional lists.
 * The wire shapes (ISO strings, `v: 1`) are in `protocol/wire.ts`; `client/convert.ts` maps between them.
 */
import type { NatsConnection } from 'nats';
import type { Encoding, WireChangeEvent, WireTaskStep, WireTaskSummary } from '../protocol/index.ts';
import type { RetryPolicy } from './retry.ts';

export interface ConnectOptions {
  /** NATS server URL(s): any Mini's server will do. Ignored when `connection` is given. */
  readonly servers?: string | readonly string[];
  /** Use this NATS connection instead of opening one (the client then does not close it). */
  readonly connection?: NatsConnection;
  /**
   * NATS user and password, on a cluster that requires them (`shardmind nats-config --auth`: the shared user `agent`,
   * or the agent's own login from `--agents`). With a user, replies come to `_INBOX.<user>.…` (unless `inboxPrefix`
   * says otherwise), the one namespace an agent's own login may read.
   */
  readonly user?: string;
  readonly pass?: string;
  /**
   * Where replies to this client's requests go: `_INBOX` or a subject under it (hosts answer nothing else). Default
   * `_INBOX.<user>` when `user` is one subject token, else `_INBOX`. Ignored when `connection` is given (its own
   * `inboxPrefix` applies).
   */
  readonly inboxPrefix?: string;
  /**
   * TLS, on a cluster whose servers require it (`shardmind nats-config --tls`): `caFile` is the cluster CA the
   * servers' certificates chain to (`ca.pem`); a client certificate is not needed.
   */
  readonly tls?: { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string };
  /** Who is speaking: recorded as the source of every fact this client remembers. */
  readonly agent: string;
  /** The Mini the agent runs on, recorded with its facts. */
  readonly node?: string;
  /** Longest wait for one reply. Default 2000 ms. */
  readonly timeoutMs?: number;
  /**
   * Longest time one call may take, retries included, counted from the call (a `remember` waiting for its turn to
   * be sent counts too). Default 10 000 ms.
   */
  readonly deadlineMs?: number;
  /** Wire encoding. Default msgpack. */
  readonly encoding?: Encoding;
  /** Talk to shards directly (`sm.shard.<domain>.<op>`) instead of through the router. Default false. */
  readonly direct?: boolean;
  /**
   * Direct remembers to one shard that are outstanding at once go in one `remember_batch` request (default true).
   * A lone call is never delayed. False sends one request per call.
   */
  readonly batchRemember?: boolean;
  /**
   * Recalls outstanding at once go in one `recall_batch` request (default true): direct ones to one shard to that
   * shard, routed ones to the router (`sm.mem.recall_batch`, each routed and merged as a lone recall), each with its
   * own result, error and deadline; a lone call is never delayed and goes as a plain `recall`. Replica reads
   * naming one domain (`maxStaleMs`) are not batched. False sends one request per call.
   */
  readonly batchRecall?: boolean;
  /**
   * Estimated bytes of facts that may wait in the client to be sent to one place (a shard, or the router with one
   * domain) while earlier requests to it are outstanding. A `remember` past it fails at once with a retryable
   * UNAVAILABLE, not sent (the place is slow or down); `rememberMany` waits for room instead. Default 32 MiB.
   */
  readonly maxQueuedBytes?: number;
  readonly retry?: Partial<RetryPolicy>;
  /** Called before each retry (for logging). */
  readonly onRetry?: (info: { readonly subject: string; readonly code: string; readonly attempt: number }) => void;
}

export interface CloseOptions {
  /**
   * How long `close()` waits for the calls already made to settle before it gives them up (each then fails with an
   * `OutcomeUnknownError` carrying its opId). Default: the client's `deadlineMs`, which every call ends by anyway.
   */
  readonly timeoutMs?: number;
}

/** The object of a fact: a literal, or another entity (a graph edge). */
export type FactObject = string | { readonly entity: string };

export interface FactInput {
  readonly text: string;
  readonly subject?: string;
  readonly predicate?: string;
  readonly object?: FactObject;
  /** 0..1; the shard's default is 0.8. */
  readonly confidence?: number;
  /**
   * When the agent learned it (decay counts from here). Default: now, on the shard. Times are Dates, or ISO-8601
   * strings with a zone (`'2026-11-24T10:00:00Z'`, as a model's JSON has them), which the server checks.
   */
  readonly observedAt?: Date | string;
  /** When it became true in the world. Default: `observedAt`. */
  readonly validFrom?: Date | string;
  /** When it stopped being true in the world, if known. */
  readonly validTo?: Date | string;
  readonly halfLifeDays?: number;
}

/** Where a call goes. */
export interface Routing {
  /** The shard's domain; required with `direct`. Without it the router classifies. */
  readonly domain?: string;
  /** Send to `sm.shard.<domain>.<op>` rather than the router. Default: the client's `direct`. */
  readonly direct?: boolean;
}

/**
 * Where a read goes. With `maxStaleMs` and one known domain it goes to the shard's replicas
 * (`sm.replica.<domain>.<op>`): the nearest replica that is at most that stale answers (a too-stale one passes it
 * to the leader); without a known domain, to the router with `maxStaleMs`.
 */
export interface ReadRouting extends Routing {
  /** How stale (ms) the answer may be; absent: the leader answers, as fresh as it gets. */
  readonly maxStaleMs?: number;
  /**
   * Positions to wait for beyond this client's own writes, `{ domain: seq }`: another agent's `client.seqs()`, handed
   * over with its work, so this read sees what that agent wrote (read-your-writes across agents).
   */
  readonly minSeq?: Readonly<Record<string, number>>;
}

export interface HistoryOptions extends ReadRouting {
  readonly domain: string;
  /** Only this predicate's facts (the same as the positional argument: `history('user', { domain, predicate })`). */
  readonly predicate?: string;
  /** Facts in the page: 1..1000, default 100. */
  readonly limit?: number;
  /** A previous page's `next`: this page holds the facts recorded before it. */
  readonly before?: number;
}

/** One page of a history: oldest first by validFrom; `next` is the `before` of the page of older facts, if any. */
export interface HistoryPage {
  readonly facts: Fact[];
  readonly next?: number;
}

export interface RememberOptions extends Routing {
  /** The task this fact was learned in; through the router it goes to the task's current domain. */
  readonly task?: string;
  /** Operation id; made for you. Pass one only to retry a write yourself across client restarts. */
  readonly opId?: string;
}

export type RememberStatus = 'created' | 'reinforced' | 'superseded_previous' | 'recorded_superseded';

export interface RememberResult {
  readonly domain: string;
  readonly seq: number;
  readonly factId: string;
  readonly status: RememberStatus;
  /** Facts this write closed. */
  readonly superseded: readonly string[];
  /** The opId had been applied before (a retry); this is the original result. */
  readonly duplicate: boolean;
  readonly opId: string;
  /**
   * Set when the write is stored but something around it failed: with a `task`, noting the fact in the task (its
   * history and context miss it). The write itself succeeded: do not send it again with a new opId.
   */
  readonly warning?: string;
}

export interface WriteResult {
  readonly domain: string;
  readonly seq: number;
  readonly factId: string;
  readonly status: 'forgotten' | 'retracted';
  readonly duplicate: boolean;
  readonly opId: string;
}

export interface RecallQuery {
  readonly query?: string;
  readonly subject?: string;
  readonly predicate?: string;
  /** A domain, several, or none (the router decides and fans out when unsure). One domain with `direct`. */
  readonly domain?: string | readonly string[];
  readonly task?: string;
  /**
   * What we now know held at this time (world time), among the facts recorded by then: not what was believed then,
   * since a fact learned later can close a value retroactively (docs/protocol.md, "recall › Time"). A Date, or an
   * ISO-8601 string with a zone.
   */
  readonly asOf?: Date | string;
  readonly minConfidence?: number;
  readonly limit?: number;
  readonly hops?: number;
  readonly includeInactive?: boolean;
  readonly direct?: boolean;
  /** Let a replica answer, at most this stale (ms); see `ReadRouting`. */
  readonly maxStaleMs?: number;
  /** Positions to wait for beyond this client's own writes (another agent's `client.seqs()`); see `ReadRouting`. */
  readonly minSeq?: Readonly<Record<string, number>>;
}

export interface Source {
  readonly agent: string;
  readonly task?: string;
  readonly node?: string;
}

export type FactStatus = 'active' | 'superseded' | 'retracted' | 'forgotten';

/** A stored fact, as history and get return it. */
export interface Fact {
  readonly id: string;
  readonly domain: string;
  readonly text: string;
  readonly subject?: string;
  readonly predicate?: string;
  readonly object?: FactObject;
  readonly confidence: number;
  readonly validFrom: Date;
  readonly validTo?: Date;
  readonly observedAt: Date;
  readonly recordedAt: Date;
  readonly invalidatedAt?: Date;
  readonly reinforcedAt: Date;
  readonly confirmations: number;
  readonly status: FactStatus;
  readonly source: Source;
}

/** A fact as recall ranks it. */
export interface RecalledFact extends Fact {
  /** Confidence after decay, at `asOf` or now. */
  readonly effectiveConfidence: number;
  readonly score: number;
}

/**
 * A domain that did not answer a read or write sent to several: the answer is partial. Branch on `code` and
 * `retryable` (a read with `minSeq` that comes back with a retryable one did not see your writes there: retry it).
 */
export interface MissingDomain {
  readonly domain: string;
  /** `CODE: message`, for a log line. */
  readonly error: string;
  /** The error's code, message and whether to retry (every router of this tree sends them; older ones only `error`). */
  readonly code?: string;
  readonly message?: string;
  readonly retryable?: boolean;
}

export interface RecallResult {
  readonly domains: readonly string[];
  /** Best first. */
  readonly facts: readonly RecalledFact[];
  /** Domains that did not answer in time: the result is partial. */
  readonly missing: readonly MissingDomain[];
  /** The sequence each domain's answer reflects. */
  readonly seqs: Readonly<Record<string, number>>;
  /** A replica read: the node that answered, and its bound on how stale the answer may be (ms; 0 = the leader). */
  readonly servedBy?: string;
  readonly staleMs?: number;
  /**
   * True when a bound on a shard's work left facts unexamined that could have matched (a busy subject's query word
   * with more mentions than were looked at, a walk past dead facts at its budget: docs/protocol.md, "What a recall
   * looks at"); absent on a complete answer. Narrow the query (a `predicate`, rarer words) to look further.
   */
  readonly partial?: true;
}

export interface DomainScore {
  readonly domain: string;
  readonly p: number;
}

export interface TaskInfo {
  readonly task: string;
  readonly domain: string;
}

export interface TaskStart extends TaskInfo {
  /** Facts from the task's domain that bear on it. */
  readonly context: readonly RecalledFact[];
}

export interface TaskObservation extends TaskInfo {
  readonly rerouted: null | { readonly from: string; readonly to: string };
  /** Facts from the new domain that bear on the task (empty unless rerouted). */
  readonly context: readonly RecalledFact[];
}

/** One step of a task's history (`task.get`, `task.end`), oldest first. */
/** One step of a task's history: the wire's step (protocol/wire.ts `WireTaskStep`) with `at` as a Date. */
export type TaskStep = Omit<WireTaskStep, 'at'> & {
  /** When the router recorded it (the wire's epoch milliseconds, as a Date). */
  readonly at: Date;
};

/** What a task is now and how it got there: `task.get`, and `task.end`'s answer. */
/** Where a task is and where it has been: the wire's summary (`WireTaskSummary`) without `v`, its steps' times as Dates. */
export type TaskSummary = Omit<WireTaskSummary, 'v' | 'history'> & { readonly history: readonly TaskStep[] };

/** An entity to create or update: one global id across shards; aliases and attributes merge with what is there. */
export interface EntityInput {
  readonly id: string;
  readonly name?: string;
  readonly type?: string;
  /** Other names it goes by ("Bob", "bob@example.com"): a recall or lookup by any of them finds it. */
  readonly aliases?: readonly string[];
  readonly attributes?: Readonly<Record<string, string | number | boolean>>;
}

export interface Entity {
  readonly id: string;
  readonly name: string;
  readonly type?: string;
  readonly aliases: readonly string[];
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
  readonly updatedAt: Date;
}

export interface EntityResult {
  /** Domains that took the write (every domain unless the call named some). */
  readonly domains: readonly string[];
  /** The entity as the first of them now holds it. */
  readonly entity: Entity;
  readonly missing: readonly MissingDomain[];
}

/** One domain's view of an entity. */
export interface EntityView extends Entity {
  readonly domain: string;
}

/**
 * One change another agent (or this one) made, as the shard's leader announced it (`watch`): the wire's event
 * (`op`, `status`, `factId`, `text`, `subject`, `predicate`, `object`, `superseded`, `entity`, `agent`, `node`,
 * `task`; docs/protocol.md, the change feed) with the domain it happened in.
 */
export interface Change extends Omit<WireChangeEvent, 'op' | 'status'> {
  readonly domain: string;
  readonly op: ChangeOp;
  readonly status: ChangeStatus;
}

/** The log op a change came from (`reinforce` is not written by any request today). */
export type ChangeOp = 'assert' | 'forget' | 'retract' | 'reinforce' | 'entity';
/** What a change did: a remember's status, or what a forget, retract or entity write did. */
export type ChangeStatus = RememberStatus | 'forgotten' | 'retracted' | 'entity';

export interface WatchOptions {
  /** One domain; all of them when absent. */
  readonly domain?: string;
  /**
   * Only changes about this subject: remembers, reinforcements, forgets and retracts of its facts, and its entity's
   * changes. Matched against the subject as stored (an entity's id, what `get` and `recall` say) and, for a write
   * that named it by an alias, as written: `'bob-smith'` hears a fact written about `'Bob'`, and `'Bob'` hears only
   * what was written as `'Bob'`.
   */
  readonly subject?: string;
  /**
   * Called when a stretch of a domain's log went by unannounced to this watcher (a missed message, a change of
   * leader): read the memory itself for `fromSeq..toSeq` if it matters. The first message of each domain only
   * starts the count.
   */
  readonly onGap?: (gap: { readonly domain: string; readonly fromSeq: number; readonly toSeq: number }) => void;
  /**
   * Called with what `onChange` or `onGap` threw, or what an async `onChange` rejected with; the feed goes on either
   * way. Without it the error is written to stderr: thrown from the subscription's callback it would end nats.js's
   * read loop, and the connection with it; an unhandled rejection would end the process.
   */
  readonly onError?: (err: unknown) => void;
}
