/**
 * The shapes of a shard's memory: what callers pass in, what the log carries, what reads return.
 *
 * This file is the seam between `shards/` and everything above it (`actors/` applies log entries and serves reads;
 * nothing above imports the store's internals). Times are epoch milliseconds (integers) everywhere in this folder;
 * the wire layer converts to and from ISO-8601 strings.
 */

/** `one`: a new value retires the old one (a user has one preferred format). `many`: values coexist (attendees). */
export type Cardinality = 'one' | 'many';

export interface PredicateSpec {
  readonly cardinality: Cardinality;
  /** Confidence halves every `halfLifeDays` unless the fact is seen again. */
  readonly halfLifeDays: number;
}

/** Who learned a fact, in which task, on which Mini. */
export interface Source {
  readonly agent: string;
  readonly task?: string;
  readonly node?: string;
}

/** The object of a fact: a literal value, or a reference to another entity (a graph edge). */
export type FactObject = string | { readonly entity: string };

/** A fact as an agent states it. Only `text` is required; the rest makes it a graph edge. */
export interface FactInput {
  readonly text: string;
  /** Entity id or alias ("user", "bob"); normalized to an entity id by the store. */
  readonly subject?: string;
  readonly predicate?: string;
  readonly object?: FactObject;
  /** 0..1, default 0.8. */
  readonly confidence?: number;
  /** When the agent learned it; decay counts from here. Default: the entry's `recordedAt`. */
  readonly observedAt?: number;
  /** When it became true in the world. Default: `observedAt`. */
  readonly validFrom?: number;
  /** When it stopped being true in the world, if known. */
  readonly validTo?: number;
  /** Overrides the predicate's half-life for this fact. */
  readonly halfLifeDays?: number;
}

export interface EntityInput {
  /** Stable, global id ("user", "bob-smith"); the same person has one id in every shard. */
  readonly id: string;
  readonly name?: string;
  readonly type?: string;
  readonly aliases?: readonly string[];
  readonly attributes?: Readonly<Record<string, string | number | boolean>>;
}

// ---------------------------------------------------------------------------------------------------------------
// Log entries: the only way a shard changes. The leader stamps `recordedAt` before appending, so applying the same
// entries in the same order gives the same bytes on every replica, whenever and wherever it happens.
// ---------------------------------------------------------------------------------------------------------------

interface EntryBase {
  readonly v: 1;
  /** Client operation id: a retried write carries the same one and is applied once. */
  readonly opId: string;
  /** Leader's clock when it accepted the write (transaction time). */
  readonly recordedAt: number;
  readonly source: Source;
}

/** Remember a fact: creates, reinforces, or supersedes per the conflict rules. */
export interface AssertEntry extends EntryBase {
  readonly op: 'assert';
  readonly fact: FactInput;
  /**
   * The predicate's cardinality as the leader's config resolved it when it appended the entry (log level 3; see
   * docs/decisions.md, "the log carries what apply decides with"): apply decides supersession by it, so replicas
   * whose configs differ still converge. Entries written before level 3 lack it and apply with the store's own
   * `predicates`, as they always did.
   */
  readonly cardinality?: Cardinality;
  /**
   * The log level the leader wrote the entry at, from level 4 on (decisions §71): apply follows that level's rules for
   * it (a new value of a `one` pair with no active value takes its place among the recorded ones; an entity's own id
   * resolves before aliases). Entries without it apply by the rules before, so logs already written replay alike.
   */
  readonly level?: number;
}

/** Seeing a known fact again, by id. */
export interface ReinforceEntry extends EntryBase {
  readonly op: 'reinforce';
  readonly factId: string;
  readonly confidence?: number;
  readonly observedAt?: number;
}

/** One page of a subject's history (`ShardStore.historyPage`). */
export interface HistoryPage {
  readonly facts: Fact[];
  /** Where the next page starts (its `before`); absent when no older fact is left. */
  readonly next?: number;
}

/** The fact stopped being true (or was wrong): closes it, keeps it in history. */
export interface RetractEntry extends EntryBase {
  readonly op: 'retract';
  readonly factId: string;
  /** World time it stopped being true; default `recordedAt`. */
  readonly validTo?: number;
}

/** The user asked us to forget: text and index entries are removed, a tombstone stays. */
export interface ForgetEntry extends EntryBase {
  readonly op: 'forget';
  readonly factId: string;
}

/** Create or update an entity (name, type, aliases, attributes merge). */
export interface EntityEntry extends EntryBase {
  readonly op: 'entity';
  readonly entity: EntityInput;
  /**
   * The log level the leader wrote the entry at, from level 4 on (§71): then the entity never takes a name (id or
   * alias, case-insensitively) another entity holds: such a write is rejected, naming it.
   */
  readonly level?: number;
}

/**
 * Control markers written by shard actors: `epoch` when a leader starts serving, `handoff` when a leader passes
 * the shard to `to`. The store records the latest one so every replica knows who led at which sequence.
 */
export interface MarkerEntry extends EntryBase {
  readonly op: 'marker';
  readonly kind: 'epoch' | 'handoff';
  readonly epoch: number;
  readonly node: string;
  readonly to?: string;
}

/**
 * Compaction of the memory itself (DESIGN: facts leave history "until compaction"): every fact stored at a position
 * in [`fromPosition`, `toPosition`) that is closed — superseded or retracted — more than `inactiveDays` before
 * `recordedAt`, or (with `decayedBelow`) active but decayed below that confidence at `recordedAt`, is forgotten as
 * `forget` forgets one: its text leaves the store and the index, a tombstone stays. Deterministic: it reads only the
 * entry and the store. The leader appends it in ranges (`MAX_PRUNE_SPAN` positions at most) so no one transaction
 * holds the writer long.
 */
export interface PruneEntry extends EntryBase {
  readonly op: 'prune';
  readonly fromPosition: number;
  readonly toPosition: number;
  readonly inactiveDays: number;
  readonly decayedBelow?: number;
}

export type LogEntry = AssertEntry | ReinforceEntry | RetractEntry | ForgetEntry | EntityEntry | MarkerEntry | PruneEntry;

/**
 * Several writes the leader grouped into one log message (group commit); applied in order, one store position each.
 * A batch is not a LogEntry: a batch nested inside a batch is a rejected inner entry.
 */
export interface BatchEntry {
  readonly v: 1;
  readonly op: 'batch';
  /** Only a fallback label for a malformed batch's result; each inner entry has its own opId. */
  readonly opId: string;
  readonly recordedAt: number;
  readonly entries: readonly LogEntry[];
}

/** What one log message holds: one entry, or a group of them. */
export type LogMessage = LogEntry | BatchEntry;

export type ApplyStatus =
  | 'created'
  | 'reinforced'
  | 'superseded_previous'
  | 'recorded_superseded'
  | 'retracted'
  | 'forgotten'
  | 'entity'
  | 'marker'
  /** A prune ran over its range (`pruned`: how many facts it forgot). */
  | 'pruned'
  /** A deterministic no-op: the entry referred to something that does not exist (see `error`). */
  | 'rejected';

export interface ApplyResult {
  /**
   * The LOG sequence of the message that carried the op (every entry of a batch shares it): clients compare it with
   * `appliedSeq` for read-your-writes, so it never counts store positions.
   */
  readonly seq: number;
  readonly opId: string;
  readonly status: ApplyStatus;
  readonly factId?: string;
  /** Facts this entry closed (a superseded `one` value). */
  readonly supersededIds?: readonly string[];
  /** True when the opId had been applied before: the original result is returned and nothing changes. */
  readonly duplicate?: boolean;
  readonly error?: { readonly code: 'NOT_FOUND' | 'BAD_REQUEST'; readonly message: string };
  /** A prune's count of facts forgotten (the live result only: a retried prune's stored result omits it). */
  readonly pruned?: number;
  /**
   * An assert's subject and object as stored, when an alias resolved one of them to an entity's id (the change feed
   * reports them). The live result only: a repeat (`duplicate`) has neither.
   */
  readonly subject?: string;
  readonly object?: FactObject;
}

// ---------------------------------------------------------------------------------------------------------------
// Reads
// ---------------------------------------------------------------------------------------------------------------

export type FactStatus = 'active' | 'superseded' | 'retracted' | 'forgotten';

/** A fact as stored, with its provenance and both time axes. */
export interface Fact {
  /** Time-ordered, unique across shards: `<domain>:<seq base36, 10 wide>:<index>`. */
  readonly id: string;
  readonly domain: string;
  /** Empty once forgotten. */
  readonly text: string;
  readonly subject?: string;
  readonly predicate?: string;
  readonly object?: FactObject;
  /** Combined confidence at `reinforcedAt`, before decay. */
  readonly confidence: number;
  readonly halfLifeDays: number;
  readonly observedAt: number;
  readonly validFrom: number;
  readonly validTo?: number;
  /**
   * The latest world time a confirmation said it held from, when later than `validFrom` (set by reinforcement).
   * A `one` predicate's challenger must be newer than this to close the fact, so replicas converge on the value
   * with the latest world time whatever order the confirmations arrived in.
   */
  readonly latestValidFrom?: number;
  readonly recordedAt: number;
  readonly invalidatedAt?: number;
  readonly reinforcedAt: number;
  /** Independent confirmations (1 when first seen). */
  readonly confirmations: number;
  readonly source: Source;
  readonly status: FactStatus;
  /**
   * The store position that created it; equal to the log sequence until the log holds grouped writes (a batch at
   * log sequence s takes one position per entry, so later positions run ahead of their sequences).
   */
  readonly seq: number;
  /** The episode (raw observation) it came from. */
  readonly episodeId?: string;
}

export interface Entity {
  readonly id: string;
  readonly name: string;
  readonly type?: string;
  readonly aliases: readonly string[];
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
  readonly updatedAt: number;
}

export interface RecallQuery {
  /** Free text; ranked by relevance from the inverted index. `query` or `subject` is required. */
  readonly query?: string;
  readonly subject?: string;
  readonly predicate?: string;
  /** What was believed true at this time (transaction time ≤ asOf, not invalidated by then, valid in the world then). */
  readonly asOf?: number;
  /** Facts whose effective confidence is below this are left out. Default: the store's floor (0.05). */
  readonly minConfidence?: number;
  /** Default 10, at most 1000. */
  readonly limit?: number;
  /** Graph expansion: also return facts about entities within this many hops of the matched ones. Default 0. */
  readonly hops?: number;
  /** Include superseded and retracted facts (history views). */
  readonly includeInactive?: boolean;
  /** Reader's clock, for decay and recency. */
  readonly now: number;
}

export interface RecalledFact extends Fact {
  /** `confidence × 2^(−(at − reinforcedAt) / halfLife)`, at = asOf ?? now. */
  readonly effectiveConfidence: number;
  /** Relevance × effective confidence × recency; best first. */
  readonly score: number;
  /** Hops from a matched entity (0 for direct matches). */
  readonly hop: number;
}

export interface RecallResult {
  readonly facts: readonly RecalledFact[];
  /** The sequence the answer reflects. */
  readonly appliedSeq: number;
  /**
   * Present when a window's walk past dead facts stopped at its budget (`recall.ts` WALK_FACTOR): older facts of the
   * subject (or query word) were not considered, and a true one among them may be missing. Not on the wire.
   */
  readonly partial?: true;
}

export interface ShardStoreOptions {
  /** Directory of the LMDB environment (created if missing). */
  readonly path: string;
  readonly domain: string;
  /** Per-predicate rules; predicates not listed use `defaultPredicate`. */
  readonly predicates?: Readonly<Record<string, PredicateSpec>>;
  /** Default `{ cardinality: 'many', halfLifeDays: 30 }`. */
  readonly defaultPredicate?: PredicateSpec;
  /** Effective confidence under which facts leave recall. Default 0.05. */
  readonly recallFloor?: number;
  /**
   * Commit durability. `'meta'` (default): data pages are fsynced, the meta page is not — the last commit can be lost
   * in a power cut but the file is never corrupt, and the log replays it. `'full'`: both. `'none'`: tests, bulk loads.
   */
  readonly durability?: 'full' | 'meta' | 'none';
  /** LMDB map size cap in bytes (grows on demand up to this). */
  readonly mapSize?: number;
}

export interface ShardStats {
  readonly appliedSeq: number;
  /** The last store position used (equal to `appliedSeq` until the log holds grouped writes): prune ranges end here. */
  readonly lastPosition: number;
  readonly facts: number;
  readonly activeFacts: number;
  readonly entities: number;
  readonly episodes: number;
  readonly terms: number;
  readonly bytes: number;
}

/** The latest control marker applied: who led the shard at which sequence. */
export interface LeadershipMark {
  readonly kind: 'epoch' | 'handoff';
  readonly epoch: number;
  readonly node: string;
  readonly to?: string;
  readonly seq: number;
}

/**
 * One domain's memory on one machine. Writes only through `applyBatch` (log order); reads any time.
 * Implementations: `LmdbShardStore` (the real one). Every implementation must pass `test/shards/contract.ts`.
 */
export interface ApplyBatchOptions {
  /**
   * The caller's hash of the log entry at the batch's last sequence, kept with `appliedSeq` in the same transaction,
   * so that a replica that restarts still knows what it applied last (actors check it against the log).
   */
  readonly tailHash?: string;
}

/** A batch for `applyBatchWhenReady`, once it is known. */
export interface ReadyBatch {
  readonly batch: readonly { readonly seq: number; readonly entry: LogMessage }[];
  readonly options?: ApplyBatchOptions;
}

export interface ShardStore {
  readonly domain: string;
  /** Highest log sequence applied (0 when empty). Written in the same transaction as each change. */
  readonly appliedSeq: number;
  /**
   * Applies log messages in one transaction and resolves once it is durable (per `durability`). Sequences must
   * increase; messages at or below `appliedSeq` are skipped (replay is idempotent). Deterministic: no clock, no
   * randomness. Results are flat, in input order: one per plain entry, one per inner entry of a batch (all with the
   * batch's log sequence), one `rejected` for a malformed batch.
   */
  applyBatch(batch: readonly { readonly seq: number; readonly entry: LogMessage }[], options?: ApplyBatchOptions): Promise<ApplyResult[]>;
  /**
   * `applyBatch` of a batch that is not known yet (a leader's append awaiting its ack): the commit's transaction is
   * asked for now and the batch is applied in it once `ready` gives it, so the wait for the store's write thread to
   * open the transaction overlaps the wait for `ready`. Nothing is applied, and reads see only what is committed,
   * until `ready` resolves; undefined from `ready` applies nothing and resolves undefined. `ready` must settle: the
   * store's writes wait for it. Optional: a store without it is given the batch through `applyBatch`.
   */
  applyBatchWhenReady?(ready: Promise<ReadyBatch | undefined>): Promise<ApplyResult[] | undefined>;
  /**
   * The `tailHash` recorded with the batch that brought the store to `appliedSeq`, or undefined when that batch
   * carried none. Bookkeeping for the caller's log checks, not memory: it is not part of `digest()`.
   */
  tailHash(): string | undefined;
  /**
   * Whether the log this store applied carried a leader's resolved cardinality for some predicate (an assert written
   * at log level 3): a new leader then writes level 3 at once, since a replica below it stops at that entry anyway.
   */
  appliedResolvedSpecs(): boolean;
  /**
   * The highest log level an applied entry said it was written at (`level`, from log level 4 on), or undefined when
   * none did: a new leader writes at it at once, since a replica below it stops at that entry anyway (§78). Recorded
   * in the store with the message that raised it, so it survives restarts and snapshots and is equal on every replica.
   */
  appliedWrittenLevel(): number | undefined;
  /**
   * `applyBatch` of one message. For a batch, the result of its first entry (`applyBatch` gives them all); at or
   * below `appliedSeq`, what that (first) opId got, marked `duplicate`.
   */
  apply(entry: LogMessage, seq: number): Promise<ApplyResult>;
  /** The result an opId got when it was applied, for idempotent retries. */
  resultOf(opId: string): ApplyResult | undefined;
  recall(q: RecallQuery): RecallResult;
  /**
   * Does, until `until` (a `performance.now()` time), reads a reopened store's first recalls would otherwise do on
   * first use: common words' merged postings decoded into memory, then subjects' and other words' (up to half the
   * decoded postings' budget), then the words of facts older than this process. Unwarmed, a 1M-fact store reopened
   * (a restart, a failover) answered its first 1500 recalls at a mean of 154–177 µs against 79–118 warmed, p99
   * 351–1004 against 208–263. Takes one step at least, so it ends however short the slices. True while some is left: call again later (the shard host does, between requests). Changes
   * nothing stored and no answer. After a failed batch, which drops what was read, it starts over.
   */
  warmUp(until: number): boolean;
  getFact(id: string): Fact | undefined;
  /** Every fact ever recorded for (subject, predicate), oldest first by validFrom then recordedAt. */
  history(subject: string, predicate?: string): Fact[];
  /**
   * A page of `history`, read no further than it returns: the `limit` facts recorded most recently before position
   * `before` (or the newest), oldest first by validFrom then recordedAt; `next` (when older ones remain) is the
   * `before` of the next page. Work and answer are bounded by `limit`, whatever the subject holds.
   */
  historyPage(subject: string, predicate: string | undefined, limit: number, before?: number): HistoryPage;
  getEntity(idOrAlias: string): Entity | undefined;
  /** Latest epoch/handoff marker applied, if any. */
  leadership(): LeadershipMark | undefined;
  /** SHA-256 over every key and value in log-visible order: equal digests mean equal content. */
  digest(): string;
  /**
   * The latest `recordedAt` the store has seen: its newest fact's at open, then every entry applied since (memory
   * only). A leader stamps no entry earlier, so record time grows along the log (§71).
   */
  newestRecordedAt(): number;
  stats(): ShardStats;
  /** Waits for pending commits, then closes the environment. Idempotent. */
  close(): Promise<void>;
}
