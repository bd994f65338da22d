/**
 * Applying log entries: the only code that changes a shard. Runs inside one LMDB write transaction per batch and is
 * deterministic — it reads only the entry, its sequence and the store (no clock, no randomness), so the same entries
 * in the same order leave the same bytes on every replica, whatever the batch boundaries.
 *
 * A log message is one entry or a group of them (`BatchEntry`, the leader's group commit). Each entry takes one
 * store *position*, which keys everything it writes (fact ids, episodes, postings, op results); positions equal log
 * sequences until a batch puts several entries under one sequence (see `StoreState.offset`). Results carry the log
 * sequence, which is what clients compare with `appliedSeq`.
 */
import { decodeValue, encodeValue } from './codec.ts';
import { challengerWins, placeLateValue, type RecordedValue } from './conflict.ts';
import { combineConfidence, DAY_MS, effectiveConfidence } from './decay.ts';
import { ShardValidationError } from './errors.ts';
import { episodeIdFor, factIdFor, factSeqIn, seqKey, seqOfFactId } from './ids.ts';
import { hashString } from './key-index.ts';
import { NO_MERGE, type PostingIndex } from './postings.ts';
import { blankFact, decodeFact, encodeFact, peekStanding, readIdentityFields, supersededBytes, type IdentityFields, type StandingNumbers } from './fact-codec.ts';
import type { FactChanges } from './fact-changes.ts';
import type { FactGroups } from './fact-groups.ts';
import type { ActiveRecords } from './active-records.ts';
import type { KeyIndex } from './key-index.ts';
import type { OpResults } from './op-results.ts';
import type { ScoreNumbers } from './score-numbers.ts';
import type { FactSubjects } from './fact-subjects.ts';
import {
  encodeEpisode,
  identityHash,
  isActive,
  sameIdentity,
  subjectPredicateHash,
  subjectPredicateTerm,
  withChanges,
  type Episode,
  type Mutable,
} from './records.ts';
import { FactTerms } from './fact-terms.ts';
import type { Tables } from './tables.ts';
import type {
  ApplyResult,
  AssertEntry,
  Cardinality,
  Entity,
  EntityEntry,
  Fact,
  FactObject,
  ForgetEntry,
  PruneEntry,
  BatchEntry,
  LogEntry,
  LogMessage,
  MarkerEntry,
  PredicateSpec,
  ReinforceEntry,
  RetractEntry,
  LeadershipMark,
} from './types.ts';
import { batchProblem, DEFAULT_CONFIDENCE, validateEntry, type ResolvedOptions } from './validate.ts';

/** Counters and the applied sequence, stored together as `meta/state` in every batch's transaction. */
export interface StoreState {
  /** The last log sequence applied. */
  appliedSeq: number;
  /**
   * How far store positions run ahead of log sequences. Facts, episodes, postings and op results are keyed by
   * position: the message at log sequence s takes positions s + offset … s + offset + k − 1 (k: the entries of a
   * batch, else 1), then offset grows by k − 1. 0 until the log holds a batch, so a log without batches keys
   * everything by its sequence, as stores always did.
   */
  offset: number;
  facts: number;
  activeFacts: number;
  entities: number;
  /**
   * Observations kept: each fact's creating one (held by its record) and each reinforcement's episode record. A
   * forgotten fact's are gone, the creating one included.
   */
  episodes: number;
  /** Facts with indexed words, and the sum of their lengths: BM25's average document length. */
  docs: number;
  docLength: number;
  /** Blocks of the segment being merged already written, or NO_MERGE (see `postings.ts`). */
  mergedTerms: number;
  /** Changes to stored facts so far: the key of the last one (`fact-changes.ts`). */
  changes: number;
}

export const EMPTY_STATE: StoreState = { appliedSeq: 0, offset: 0, facts: 0, activeFacts: 0, entities: 0, episodes: 0, docs: 0, docLength: 0, mergedTerms: NO_MERGE, changes: 0 };

/** The last store position used: reads bound postings and fact keys by it. */
export function appliedPosition(s: StoreState): number {
  return s.appliedSeq + s.offset;
}

/**
 * The stored form. `offset` is written only once a batch has made it non-zero, so a store fed no batches holds the
 * bytes it always did (and one written before batches existed reads offset 0).
 */
export function stateRecord(s: StoreState): Partial<StoreState> {
  return {
    appliedSeq: s.appliedSeq,
    ...(s.offset !== 0 && { offset: s.offset }),
    facts: s.facts,
    activeFacts: s.activeFacts,
    entities: s.entities,
    episodes: s.episodes,
    docs: s.docs,
    docLength: s.docLength,
    mergedTerms: s.mergedTerms,
    changes: s.changes,
  };
}

/**
 * The write path's in-memory lookups (see `key-index.ts`): active facts by identity hash, and the active value of
 * each `one` (subject, predicate) by its hash. Derived from the facts; `store.ts` rebuilds them at open.
 */
export interface WriteIndexes {
  readonly identities: KeyIndex;
  readonly activeValues: KeyIndex;
  /** The active values' records, so superseding one needs no read of the store (`active-records.ts`). */
  readonly activeRecords: ActiveRecords;
  /** Every fact's scoring numbers, for recall (`score-numbers.ts`): set whenever a fact record is written. */
  readonly scores: ScoreNumbers;
  /** Every fact's subject identity, for recall (`fact-subjects.ts`): filed when a fact is created. */
  readonly subjects: FactSubjects;
}

/**
 * Entries `prefetch` looks at a time: their opId and identity hashes are computed and their slots in the write
 * indexes loaded together, and those cache lines stay in the processor's caches until the entries apply.
 */
export const PREFETCH_ENTRIES = 64;
const AHEAD_OP = 1;
const AHEAD_IDENTITY = 2;

/**
 * The log level whose rules apply follows for an entry that says it (`level`, written by leaders from level 4 on;
 * decisions §71): a new value of a `one` (subject, predicate) with no active value takes its place among the recorded
 * ones, an entity's own id resolves before any alias, and an entity never takes a key that names another entity. An
 * entry without the field applies by the rules before, so logs already written replay to the same bytes.
 */
export const STAMPED_RULES_LEVEL = 4;

/** Whether the entry was written for level 4's rules (see STAMPED_RULES_LEVEL). */
function stampedRules(e: { readonly level?: number | undefined }): boolean {
  return e.level !== undefined && e.level >= STAMPED_RULES_LEVEL;
}

/** Scratch for reading a standing `one` value from its bytes (applying is synchronous). */
const STANDING: StandingNumbers = { validFrom: 0, latestValidFrom: undefined, validTo: undefined, recordedAt: 0 };
const IDENTITY: IdentityFields = { active: false, subject: undefined, predicate: undefined, object: undefined, objectIsEntity: false, text: '' };

export class Applier {
  /** The id of the fact the entry being applied created, if it did (its op result then need not store it). */
  private created: string | undefined;
  /** The fact being created by `assert` (see there); the fields it does not set are the same for every new fact. */
  private readonly draft: Mutable<Fact>;
  /** The log sequence of the message being applied: every result of it carries this one, not a store position. */
  private seq = 0;
  /** The standing value's bytes, found by `activeValueOf`. */
  private incumbentBytes: Buffer | undefined;
  /** The index terms of the fact being filed, reused by every assert and forget. */
  private readonly terms = new FactTerms();
  /**
   * The predicates' specs by name: a Map, because an object's keyed lookup by a string read from an entry (not an
   * internalized literal) was ~0.2 µs a fact, most of it for predicates without a spec. Only the object's own keys: a
   * predicate named like an `Object.prototype` member has no spec either.
   */
  private readonly specs: ReadonlyMap<string, PredicateSpec>;
  /**
   * What `prefetch` computed for the next entries, in the order they will apply: the entries themselves (to match
   * them), which hashes are known, each opId's `hashString` and each fact's `identityHash` (of its subject and object
   * as written: `assert` takes it only when resolving entities changed neither).
   */
  private readonly ahead: unknown[] = new Array<unknown>(PREFETCH_ENTRIES).fill(undefined);
  /** How many of `ahead` are this round's (a count, not the array's length: setting that freed its store each round). */
  private aheadCount = 0;
  private readonly aheadKnown = new Uint8Array(PREFETCH_ENTRIES);
  private readonly aheadOps = new Int32Array(PREFETCH_ENTRIES);
  private readonly aheadIdentities = new Int32Array(PREFETCH_ENTRIES);
  private aheadNext = 0;
  /** The identity hash `prefetch` computed for the entry being applied, if any. */
  private identityAhead: number | undefined;
  /** The touched slots' sum: kept, so the loads that bring them into the caches are not optimized away. */
  touched = 0;

  constructor(
    private readonly t: Tables,
    private readonly postings: PostingIndex,
    private readonly indexes: WriteIndexes,
    private readonly ops: OpResults,
    private readonly facts: FactGroups,
    private readonly changes: FactChanges,
    private readonly options: ResolvedOptions,
    readonly state: StoreState,
    /**
     * A predicate's cardinality for an assert that does not carry one: the log's last word on it, else the options'
     * (`log-cardinalities.ts`, the rule the store's `one`-value index follows). Deciding by the options alone, an
     * unstamped assert after the log stamped the predicate otherwise moved the index away from what a reopened store
     * rebuilds, and the two replicas diverged (review-session10b finding 1).
     */
    private readonly cardinalityOf: (predicate: string) => Cardinality = (predicate) =>
      (this.specs.get(predicate) ?? this.options.defaultPredicate).cardinality,
  ) {
    this.specs = new Map(Object.entries(options.predicates));
    this.draft = blankFact(options.domain);
    this.draft.confirmations = 1;
    // The record only notes that a new fact has an episode (its creating observation): `decodeFact` names it from the
    // fact's id.
    this.draft.episodeId = '';
  }

  /**
   * Applies the log message at `seq` (already known to be above appliedSeq), pushing one result per op onto
   * `results`: a plain entry, or each entry of a batch at consecutive store positions. A malformed batch (see
   * `batchProblem`) is one rejected op. Never throws for bad entries.
   */
  applyMessage(seq: number, message: LogMessage, results: ApplyResult[]): void {
    this.seq = seq;
    const first = seq + this.state.offset;
    if (isBatch(message)) {
      const problem = batchProblem(message);
      if (problem !== undefined) results.push(this.applyAt(first, message, problem));
      else {
        const entries = message.entries;
        for (let i = 0; i < entries.length; i++) {
          if (i % PREFETCH_ENTRIES === 0) this.prefetchEntries(entries, i);
          results.push(this.applyAt(first + i, entries[i]!, undefined));
        }
        this.state.offset += entries.length - 1;
      }
    } else results.push(this.applyAt(first, message, undefined));
    this.state.appliedSeq = seq;
  }

  /**
   * Before applying `messages` from index `from` (those above appliedSeq): computes the hashes of up to
   * PREFETCH_ENTRIES plain entries and loads the write indexes' slots they will look up, all in one loop. At 1M
   * facts the opId and identity tables are 16 MB each, and their lookups, one per entry as it applied, were each a
   * cache miss waited for alone (~0.35 µs a fact in the profile); loaded together, the misses overlap. Returns the
   * index of the first message not covered: a grouped message prefetches its own entries as it applies.
   */
  prefetch(messages: readonly { readonly seq: number; readonly entry: LogMessage }[], from: number): number {
    this.aheadCount = 0;
    this.aheadNext = 0;
    let m = from;
    for (; m < messages.length && this.aheadCount < PREFETCH_ENTRIES; m++) {
      const { seq, entry } = messages[m]!;
      if (seq <= this.state.appliedSeq) continue;
      if (isBatch(entry)) {
        if (this.aheadCount === 0) return m + 1;
        break;
      }
      this.aheadOf(entry);
    }
    this.touchAhead();
    return m;
  }

  /** `prefetch` for the entries of a grouped message, from index `from`. */
  private prefetchEntries(entries: readonly unknown[], from: number): void {
    this.aheadCount = 0;
    this.aheadNext = 0;
    for (let i = from; i < entries.length && i < from + PREFETCH_ENTRIES; i++) this.aheadOf(entries[i]);
    this.touchAhead();
  }

  /**
   * Loads the slots of every hash computed ahead, in a loop of nothing else: with the hashing between them, each
   * load was still a miss waited for alone; back to back, the processor has many in flight at once.
   */
  private touchAhead(): void {
    const ops = this.ops;
    const identities = this.indexes.identities;
    const known = this.aheadKnown;
    let touched = 0;
    for (let k = 0; k < this.aheadCount; k++) {
      if ((known[k]! & AHEAD_OP) !== 0) touched += ops.touch(this.aheadOps[k]!);
      if ((known[k]! & AHEAD_IDENTITY) !== 0) touched += identities.touch(this.aheadIdentities[k]!);
    }
    this.touched += touched;
  }

  /** Files `raw` as the next entry to apply, with the hashes it will need (nothing is validated yet: only typed reads). */
  private aheadOf(raw: unknown): void {
    const k = this.aheadCount++;
    this.ahead[k] = raw;
    let known = 0;
    if (typeof raw === 'object' && raw !== null) {
      const e = raw as { opId?: unknown; op?: unknown; fact?: unknown };
      if (typeof e.opId === 'string' && e.opId !== '') {
        const hash = hashString(e.opId);
        this.aheadOps[k] = hash;
        known |= AHEAD_OP;
      }
      const f = e.op === 'assert' && typeof e.fact === 'object' && e.fact !== null ? (e.fact as Record<string, unknown>) : undefined;
      if (f !== undefined && typeof f['text'] === 'string') {
        const { subject, predicate, object } = f;
        const objectOk = object === undefined || typeof object === 'string' || (typeof object === 'object' && object !== null && typeof (object as { entity?: unknown }).entity === 'string');
        if ((subject === undefined || typeof subject === 'string') && (predicate === undefined || typeof predicate === 'string') && objectOk) {
          const hash = identityHash(subject, predicate, object as FactObject | undefined, f['text']);
          this.aheadIdentities[k] = hash;
          known |= AHEAD_IDENTITY;
        }
      }
    }
    this.aheadKnown[k] = known;
  }

  /** Applies one op at store position `pos`; `malformed`: what is wrong with it, already known (a bad batch). */
  private applyAt(pos: number, raw: LogEntry | BatchEntry, malformed: string | undefined): ApplyResult {
    const opId = typeof raw?.opId === 'string' && raw.opId !== '' ? raw.opId : `seq:${seqKey(pos)}`;
    // The hashes `prefetch` computed for this entry, if it is the next one it saw.
    let known = 0;
    const k = this.aheadNext;
    if (k < this.aheadCount && this.ahead[k] === raw) {
      known = this.aheadKnown[k]!;
      this.aheadNext = k + 1;
    }
    this.identityAhead = (known & AHEAD_IDENTITY) !== 0 ? this.aheadIdentities[k]! : undefined;
    // Every position moves the segment forward, duplicates included: start-up rebuilds the open segment of the
    // applied position, so an earlier segment must already be merged by then.
    this.postings.rollTo(pos);
    const prior = (known & AHEAD_OP) !== 0 ? this.ops.find(opId, this.aheadOps[k]!) : this.ops.find(opId);
    if (prior !== undefined) return { ...prior, duplicate: true };
    let result: ApplyResult;
    this.created = undefined;
    if (malformed !== undefined) result = { seq: this.seq, opId, status: 'rejected', error: { code: 'BAD_REQUEST', message: malformed } };
    else {
      try {
        const entry = validateEntry(raw);
        result = this.dispatch(pos, entry);
      } catch (err) {
        if (!(err instanceof ShardValidationError)) throw err;
        result = { seq: this.seq, opId, status: 'rejected', error: { code: 'BAD_REQUEST', message: err.message } };
      }
    }
    this.ops.record(opId, result, pos, result.factId !== undefined && result.factId === this.created);
    return result;
  }

  private dispatch(pos: number, e: LogEntry): ApplyResult {
    switch (e.op) {
      case 'assert':
        return this.assert(pos, e);
      case 'reinforce':
        return this.reinforceById(pos, e);
      case 'retract':
        return this.retract(e);
      case 'forget':
        return this.forget(e);
      case 'entity':
        return this.upsertEntity(e);
      case 'marker':
        return this.marker(e);
      case 'prune':
        return this.prune(e);
    }
  }

  /**
   * The fact with this id as the batch being applied left it, its uncommitted changes included: for applying only.
   * Readers take facts from their snapshot (`LmdbShardStore.getFact`).
   */
  private getFact(id: string): Fact | undefined {
    const seq = factSeqIn(this.options.domain, id);
    return seq === undefined ? undefined : this.factAt(seq);
  }

  /** The fact created at store position `seq`, as it now stands in the applier's transaction. */
  private factAt(seq: number): Fact | undefined {
    const bytes = this.changes.read(seq);
    return bytes === undefined ? undefined : decodeFact(bytes, this.options.domain);
  }

  /** A stored fact changed (numbers only: status, times, confidence …): see `changeFactBytes`. */
  private changeFact(f: Fact): void {
    this.changeFactBytes(f.seq, encodeFact(f));
  }

  /**
   * Every change to a stored fact goes through here, so its scoring numbers follow. The record is not rewritten:
   * the change is appended (`fact-changes.ts`), so only forgetting (which must remove the text) writes an old page.
   */
  private changeFactBytes(seq: number, bytes: Buffer): void {
    this.changes.record(++this.state.changes, bytes);
    this.indexes.scores.set(seq, bytes);
    this.indexes.activeRecords.change(seq, bytes);
  }

  /** A new fact's id is above every stored one (time-ordered ids): LMDB appends it without a search or a split. */
  private appendFact(f: Fact): void {
    this.facts.appendFact(f);
    this.indexes.scores.setNumbers(f.seq, f);
  }

  /**
   * The entity id a fact names. `idsFirst` (level 4): an entity's own id names it even where an alias given before
   * aliases were checked took its lower-cased key (walkthrough session 12, F1); looked up only when the alias table
   * names another entity, so the common case stays one read.
   */
  private resolveEntity(idOrAlias: string, idsFirst: boolean): string {
    // No entity defined yet means no alias to resolve: skip the lookup (state is part of the replicated data).
    if (this.state.entities === 0) return idOrAlias;
    const bytes = this.t.aliases.getBinary(idOrAlias.toLowerCase());
    if (bytes === undefined) return idOrAlias;
    const id = decodeValue<string>(bytes);
    return id === idOrAlias || !idsFirst || this.t.entities.getBinary(idOrAlias) === undefined ? id : idOrAlias;
  }

  private spec(predicate: string | undefined): PredicateSpec {
    return (predicate !== undefined ? this.specs.get(predicate) : undefined) ?? this.options.defaultPredicate;
  }

  private assert(pos: number, e: AssertEntry): ApplyResult {
    const f = e.fact;
    const rules4 = stampedRules(e);
    const subject = f.subject === undefined ? undefined : this.resolveEntity(f.subject, rules4);
    const object: FactObject | undefined =
      f.object === undefined || typeof f.object === 'string' ? f.object : resolvedObject(f.object, this.resolveEntity(f.object.entity, rules4));
    const observedAt = f.observedAt ?? e.recordedAt;
    const confidence = f.confidence ?? DEFAULT_CONFIDENCE;
    const spec = this.spec(f.predicate);

    // Computed ahead (`prefetch`) from the subject and object as written: the same arguments unless an alias resolved.
    const ahead = this.identityAhead;
    const identity = ahead !== undefined && subject === f.subject && object === f.object ? ahead : identityHash(subject, f.predicate, object, f.text);
    const same = this.activeWithIdentity(identity, subject, f.predicate, object, f.text);
    if (same !== undefined) {
      this.reinforce(same, pos, e, confidence, observedAt, f.text, f.validFrom ?? observedAt);
      return resolvedNames({ seq: this.seq, opId: e.opId, status: 'reinforced', factId: same.id }, f, subject, object);
    }

    const id = factIdFor(this.options.domain, pos);
    this.created = id;
    // Filled in place (absent optionals as undefined: encodeFact writes them as null, so the bytes are the same as with
    // the keys left out). The fact is encoded, scanned for terms and dropped, so one object serves every assert: a
    // literal per fact, with its boxed numbers, was the largest allocation of the load.
    const draft = this.draft;
    draft.id = id;
    draft.text = f.text;
    draft.subject = subject;
    draft.predicate = f.predicate;
    draft.object = object;
    draft.confidence = confidence;
    draft.halfLifeDays = f.halfLifeDays ?? spec.halfLifeDays;
    draft.observedAt = observedAt;
    draft.validFrom = f.validFrom ?? observedAt;
    draft.validTo = f.validTo;
    draft.recordedAt = e.recordedAt;
    draft.reinforcedAt = observedAt;
    draft.source = e.source;
    draft.seq = pos;
    draft.invalidatedAt = undefined;
    draft.status = 'active';
    const fact: Fact = draft;

    let result: ApplyResult = { seq: this.seq, opId: e.opId, status: 'created', factId: id };
    // Whether this fact becomes the active value of its `one` (subject, predicate): its record is then kept.
    let activeValue = false;
    // The cardinality the leader resolved, when the entry carries it (log level 3): every replica decides alike,
    // whatever its own config says. Entries from before level 3 decide by this store's specs, as they always did.
    if (subject !== undefined && f.predicate !== undefined && (e.cardinality ?? this.cardinalityOf(f.predicate)) === 'one') {
      const key = subjectPredicateHash(subject, f.predicate);
      // The standing value is read from its bytes (no decoded fact): it is superseded by patching a copy of them.
      const incumbent = this.activeValueOf(key, subject, f.predicate);
      if (incumbent !== 0) {
        const bytes = this.incumbentBytes!;
        const s = peekStanding(bytes, STANDING);
        const standingFrom = s.latestValidFrom ?? s.validFrom;
        // The sources only decide a complete tie: decode them only then.
        const tie = fact.validFrom === standingFrom && fact.recordedAt === s.recordedAt;
        const standing = { validFrom: standingFrom, recordedAt: s.recordedAt, source: tie ? decodeFact(bytes, this.options.domain).source : fact.source };
        if (challengerWins(fact, standing)) {
          const validTo = Math.min(s.validTo ?? fact.validFrom, fact.validFrom);
          const i = IDENTITY;
          const identity = identityHash(i.subject, i.predicate, i.object === undefined ? undefined : i.objectIsEntity ? { entity: i.object } : i.object, i.text);
          this.changeFactBytes(incumbent, supersededBytes(bytes, validTo, e.recordedAt));
          this.indexes.identities.remove(identity, incumbent);
          this.state.activeFacts--;
          this.indexes.activeValues.remove(key, incumbent);
          this.indexes.activeRecords.drop(incumbent);
          this.indexes.activeValues.add(key, pos);
          activeValue = true;
          result = { seq: this.seq, opId: e.opId, status: 'superseded_previous', factId: id, supersededIds: [factIdFor(this.options.domain, incumbent)] };
        } else {
          // The active value is valid later in world time: this one is history the moment it arrives, in its place
          // among the values recorded before (it ends where the next one begins; one before it ends where it begins).
          const placed = placeLateValue(fact, standingFrom, this.supersededValues(subject, f.predicate, incumbent, pos));
          for (const v of placed.shortened) this.endValueAt(v.seq, fact.validFrom);
          // On the draft itself, not a copy with the changes: the encoder's loads see one shape (`encodeFact`'s NORMAL).
          draft.validTo = placed.validTo;
          draft.invalidatedAt = e.recordedAt;
          draft.status = 'superseded';
          result = { seq: this.seq, opId: e.opId, status: 'recorded_superseded', factId: id };
        }
      } else {
        if (rules4) {
          // No active value, but a value closed earlier (superseded by a scheduled change since called off, retracted
          // "until Dec 4") may still hold past this one's start: this one takes its place among the recorded values as
          // a late one does, so a `one` pair never holds two values at once (review session 12, finding 2). Level 4
          // only: entries from before apply as they did. A read of the pair's postings per new value with no active
          // one: a pair's first value, or the next after its value was retracted or forgotten.
          const placed = placeLateValue(fact, Infinity, this.recordedValues(subject, f.predicate, pos));
          for (const v of placed.shortened) this.endValueAt(v.seq, fact.validFrom);
          if (placed.validTo !== Infinity) draft.validTo = placed.validTo;
        }
        this.indexes.activeValues.add(key, pos);
        activeValue = true;
      }
    }

    this.appendFact(fact);
    if (activeValue) this.indexes.activeRecords.keep(pos, this.facts.newest());
    if (isActive(fact.status)) this.indexes.identities.add(identity, pos);
    // The creating observation is an episode too: the fact's record keeps it as first written (see `reinforce`).
    this.state.episodes++;
    this.state.facts++;
    if (isActive(fact.status)) this.state.activeFacts++;
    const length = this.terms.scan(fact);
    this.postings.addFact(this.terms, pos);
    this.indexes.subjects.fileTerms(pos, this.terms);
    if (length > 0) {
      this.state.docs++;
      this.state.docLength += length;
    }
    return resolvedNames(result, f, subject, object);
  }

  /** The active fact with this identity: candidates by hash from memory, confirmed against the stored fact. */
  private activeWithIdentity(hash: number, subject: string | undefined, predicate: string | undefined, object: FactObject | undefined, text: string): Fact | undefined {
    if (!this.indexes.identities.has(hash)) return undefined; // a new fact, nearly always
    let found: Fact | undefined;
    this.indexes.identities.find(hash, (seq) => {
      const f = this.factAt(seq);
      if (f === undefined || !isActive(f.status) || !sameIdentity(f, subject, predicate, object, text)) return false;
      found = f;
      return true;
    });
    return found;
  }

  /**
   * The sequence of the active value of a `one` (subject, predicate), or 0. Its bytes are left in `incumbentBytes`
   * (a reused read buffer: valid until the next read) and its identity fields in IDENTITY.
   */
  private activeValueOf(hash: number, subject: string, predicate: string): number {
    this.incumbentBytes = undefined;
    if (!this.indexes.activeValues.has(hash)) return 0;
    return this.indexes.activeValues.find(hash, (seq) => {
      const bytes = this.indexes.activeRecords.get(seq) ?? this.changes.read(seq);
      if (bytes === undefined) return false;
      const f = readIdentityFields(bytes, IDENTITY);
      if (!f.active || f.subject !== subject || f.predicate !== predicate) return false;
      this.incumbentBytes = bytes;
      return true;
    });
  }

  /**
   * The superseded values of a `one` (subject, predicate) created before `pos`, from its subject-and-predicate
   * postings (the standing value `incumbent` apart). Read only when a value arrives late in world time, which is
   * rare: a read per value the pair ever had.
   */
  private supersededValues(subject: string, predicate: string, incumbent: number, pos: number): RecordedValue[] {
    const seqs: number[] = [];
    this.postings.forNewest(subjectPredicateTerm(subject, predicate), Number.MAX_SAFE_INTEGER, pos, (seq) => void seqs.push(seq));
    const values: RecordedValue[] = [];
    for (const seq of seqs) {
      if (seq === incumbent) continue;
      const v = this.factAt(seq);
      if (v === undefined || v.status !== 'superseded' || v.subject !== subject || v.predicate !== predicate) continue;
      values.push({ seq, validFrom: v.validFrom, validTo: v.validTo, recordedAt: v.recordedAt, source: v.source });
    }
    return values;
  }

  /**
   * The values of a `one` (subject, predicate) created before `pos` that still claim a world interval: superseded or
   * retracted (a forgotten one has no postings), not of zero length (a scheduled value called off). For a new value
   * when the pair has no active one (level 4).
   */
  private recordedValues(subject: string, predicate: string, pos: number): RecordedValue[] {
    const seqs: number[] = [];
    this.postings.forNewest(subjectPredicateTerm(subject, predicate), Number.MAX_SAFE_INTEGER, pos, (seq) => void seqs.push(seq));
    const values: RecordedValue[] = [];
    for (const seq of seqs) {
      const v = this.factAt(seq);
      if (v === undefined || (v.status !== 'superseded' && v.status !== 'retracted') || v.subject !== subject || v.predicate !== predicate) continue;
      if (v.validTo !== undefined && v.validTo <= v.validFrom) continue;
      values.push({ seq, validFrom: v.validFrom, validTo: v.validTo, recordedAt: v.recordedAt, source: v.source });
    }
    return values;
  }

  /** A superseded value now ends at `validTo`, where a value that arrived late begins (`placeLateValue`). */
  private endValueAt(seq: number, validTo: number): void {
    this.changeFact(withChanges(this.factAt(seq)!, { validTo }));
  }

  /** A fact left the active set (superseded, retracted, forgotten): its identity no longer reinforces it. */
  private releaseIdentity(f: Fact): void {
    this.indexes.identities.remove(identityHash(f.subject, f.predicate, f.object, f.text), f.seq);
  }

  private putEpisode(factId: string, pos: number, e: LogEntry, text: string, observedAt: number, confidence: number): void {
    const ep: Episode = { id: episodeIdFor(factId, pos), factId, seq: pos, text, source: e.source, observedAt, recordedAt: e.recordedAt, confidence };
    this.t.episodes.putSync(ep.id, encodeEpisode(ep));
    this.state.episodes++;
  }

  /**
   * Independent evidence: the old confidence, decayed to the new observation, combined with the new one. An
   * observation older than the last reinforcement does not decay the old value (time never runs backwards here).
   */
  private reinforce(f: Fact, pos: number, e: LogEntry, confidence: number, observedAt: number, text: string, validFrom?: number): void {
    // The creating observation needs no episode record: the fact's record keeps it (text, source, times, confidence)
    // as first written, since changes are appended beside it (`fact-changes.ts`).
    const old = effectiveConfidence(f, observedAt);
    const latest = Math.max(f.latestValidFrom ?? f.validFrom, validFrom ?? f.validFrom);
    this.changeFact(
      withChanges(f, {
        confidence: combineConfidence(old, confidence),
        reinforcedAt: Math.max(f.reinforcedAt, observedAt),
        confirmations: f.confirmations + 1,
        ...(latest > f.validFrom && { latestValidFrom: latest }),
      }),
    );
    this.putEpisode(f.id, pos, e, text, observedAt, confidence);
  }

  private notFound(opId: string, factId: string): ApplyResult {
    return { seq: this.seq, opId, status: 'rejected', factId, error: { code: 'NOT_FOUND', message: `no fact ${factId} in domain ${this.options.domain}` } };
  }

  private reinforceById(pos: number, e: ReinforceEntry): ApplyResult {
    const f = this.getFact(e.factId);
    if (f === undefined || f.status === 'forgotten') return this.notFound(e.opId, e.factId);
    if (!isActive(f.status)) {
      return { seq: this.seq, opId: e.opId, status: 'rejected', factId: f.id, error: { code: 'BAD_REQUEST', message: `fact ${f.id} is ${f.status}, not active` } };
    }
    this.reinforce(f, pos, e, e.confidence ?? DEFAULT_CONFIDENCE, e.observedAt ?? e.recordedAt, f.text);
    return { seq: this.seq, opId: e.opId, status: 'reinforced', factId: f.id };
  }

  private retract(e: RetractEntry): ApplyResult {
    const f = this.getFact(e.factId);
    if (f === undefined || f.status === 'forgotten') return this.notFound(e.opId, e.factId);
    if (isActive(f.status)) {
      const validTo = Math.max(f.validFrom, e.validTo ?? e.recordedAt);
      this.changeFact(withChanges(f, { validTo: Math.min(validTo, f.validTo ?? validTo), invalidatedAt: e.recordedAt, status: 'retracted' }));
      this.state.activeFacts--;
      this.clearActivePointer(f);
      this.releaseIdentity(f);
    }
    return { seq: this.seq, opId: e.opId, status: 'retracted', factId: f.id };
  }

  private clearActivePointer(f: Fact): void {
    if (f.subject === undefined || f.predicate === undefined) return;
    this.indexes.activeValues.remove(subjectPredicateHash(f.subject, f.predicate), f.seq);
    this.indexes.activeRecords.drop(f.seq);
  }

  /** The text leaves the fact, every index entry and every episode; a tombstone with ids and times stays. */
  private forget(e: ForgetEntry): ApplyResult {
    const f = this.getFact(e.factId);
    const createdSeq = seqOfFactId(e.factId);
    if (f === undefined || createdSeq === undefined) return this.notFound(e.opId, e.factId);
    if (f.status !== 'forgotten') {
      const postings = new Map<string, number[]>();
      this.forgetFact(f, createdSeq, e.recordedAt, postings);
      this.postings.removeAll(postings);
    }
    return { seq: this.seq, opId: e.opId, status: 'forgotten', factId: f.id };
  }

  /**
   * Compacts the memory over a range of positions (see `PruneEntry`): closed facts older than `inactiveDays`, and
   * with `decayedBelow` active ones decayed below it, are forgotten. Times are the entry's, never the clock's.
   */
  private prune(e: PruneEntry): ApplyResult {
    const closedBefore = e.recordedAt - e.inactiveDays * DAY_MS;
    // Chosen first, forgotten after: a tombstone rewrites the record, which a cursor over the table must not see.
    // The facts of this batch so far are stored first, so the scan sees them.
    this.facts.flush();
    const chosen: { fact: Fact; position: number }[] = [];
    for (const [key, value] of this.facts.entries(e.fromPosition, e.toPosition)) {
      const f = decodeFact(this.changes.current(key, value), this.options.domain);
      if (f.status === 'forgotten') continue;
      const closedLongAgo = !isActive(f.status) && (f.invalidatedAt ?? f.recordedAt) < closedBefore;
      const decayedAway = isActive(f.status) && e.decayedBelow !== undefined && effectiveConfidence(f, e.recordedAt) < e.decayedBelow;
      if (closedLongAgo || decayedAway) chosen.push({ fact: f, position: key });
    }
    // The postings go last, all at once: a common word is in most of the chosen facts, and removing them one fact
    // at a time walked its postings once per fact — quadratic (50k facts took 8 s; review 11b, finding 9).
    const postings = new Map<string, number[]>();
    for (const { fact, position } of chosen) this.forgetFact(fact, position, e.recordedAt, postings);
    this.postings.removeAll(postings);
    return { seq: this.seq, opId: e.opId, status: 'pruned', pruned: chosen.length };
  }

  /**
   * Removes a fact's text from the store, leaving a tombstone (`forget`, `prune`); its postings are added to
   * `postings` (term → the facts' creating sequences, ascending), which the caller removes from the index.
   */
  private forgetFact(f: Fact, createdSeq: number, recordedAt: number, postings: Map<string, number[]>): void {
    const terms = this.terms;
    const length = terms.scan(f);
    for (let i = 0; i < terms.count; i++) {
      const term = terms.name(i);
      const seqs = postings.get(term);
      if (seqs === undefined) postings.set(term, [createdSeq]);
      else seqs.push(createdSeq);
    }
    if (length > 0) {
      this.state.docs--;
      this.state.docLength -= length;
    }
    for (const key of this.t.episodes.getKeys({ start: f.id + '/', end: f.id + '0' })) {
      this.t.episodes.removeSync(key);
      this.state.episodes--;
    }
    // And the creating observation, counted when the fact was created: its text leaves the record below.
    this.state.episodes--;
    if (isActive(f.status)) this.state.activeFacts--;
    this.clearActivePointer(f);
    this.releaseIdentity(f);
    const tombstone: Fact = {
      id: f.id,
      domain: f.domain,
      text: '',
      ...(f.subject !== undefined && { subject: f.subject }),
      ...(f.predicate !== undefined && { predicate: f.predicate }),
      confidence: f.confidence,
      halfLifeDays: f.halfLifeDays,
      observedAt: f.observedAt,
      validFrom: f.validFrom,
      ...(f.validTo !== undefined && { validTo: f.validTo }),
      recordedAt: f.recordedAt,
      invalidatedAt: f.invalidatedAt ?? recordedAt,
      reinforcedAt: f.reinforcedAt,
      confirmations: f.confirmations,
      source: f.source,
      status: 'forgotten',
      seq: f.seq,
    };
    // The text leaves the record itself; the tombstone's header is also its newest change, so no older change
    // (superseded, reinforced …) is read over it.
    const bytes = encodeFact(tombstone);
    this.facts.rewrite(f.seq, bytes);
    this.changeFactBytes(f.seq, bytes);
  }

  getEntity(idOrAlias: string): Entity | undefined {
    const direct = this.t.entities.getBinary(idOrAlias);
    if (direct !== undefined) return decodeValue<Entity>(direct);
    const id = this.t.aliases.getBinary(idOrAlias.toLowerCase());
    if (id === undefined) return undefined;
    const bytes = this.t.entities.getBinary(decodeValue<string>(id));
    return bytes === undefined ? undefined : decodeValue<Entity>(bytes);
  }

  /** The entity a lower-cased name's key in the alias table names, if it is not `self`. */
  private otherEntityAt(key: string, self: string): string | undefined {
    const bytes = this.t.aliases.getBinary(key);
    if (bytes === undefined) return undefined;
    const id = decodeValue<string>(bytes);
    return id === self ? undefined : id;
  }

  /**
   * Level 4 (§71): what makes an entity write take a name another entity holds — a new entity whose id, or a new
   * alias, is (case-insensitively) another entity's id or alias. The leader refuses these before appending
   * (`shard-service.ts`); this catches two writes that raced past that check, so the first to reach the log keeps the
   * name on every replica.
   */
  private entityConflict(input: EntityEntry['entity'], old: Entity | undefined): string | undefined {
    if (old === undefined) {
      const other = this.otherEntityAt(input.id.toLowerCase(), input.id);
      if (other !== undefined) return `entity.id: "${input.id}" already names entity "${other}"`;
    }
    const own = old?.aliases ?? [];
    const given = input.aliases ?? [];
    for (let i = 0; i < given.length; i++) {
      const a = given[i]!;
      if (own.includes(a)) continue;
      const other = this.otherEntityAt(a.toLowerCase(), input.id);
      if (other !== undefined) return `entity.aliases[${i}]: "${a}" already names entity "${other}"`;
    }
    return undefined;
  }

  /** Upsert: name and type replace, aliases union (in first-seen order), attributes merge key by key. */
  private upsertEntity(e: EntityEntry): ApplyResult {
    const input = e.entity;
    const bytes = this.t.entities.getBinary(input.id);
    const old = bytes === undefined ? undefined : decodeValue<Entity>(bytes);
    const rules4 = stampedRules(e);
    if (rules4) {
      const conflict = this.entityConflict(input, old);
      if (conflict !== undefined) return { seq: this.seq, opId: e.opId, status: 'rejected', error: { code: 'BAD_REQUEST', message: conflict } };
    }
    const aliases = [...(old?.aliases ?? [])];
    for (const a of input.aliases ?? []) if (!aliases.includes(a)) aliases.push(a);
    const attributes: Record<string, string | number | boolean> = { ...(old?.attributes ?? {}) };
    for (const k of Object.keys(input.attributes ?? {}).sort()) attributes[k] = input.attributes![k]!;
    const sorted: Record<string, string | number | boolean> = {};
    for (const k of Object.keys(attributes).sort()) sorted[k] = attributes[k]!;
    const type = input.type ?? old?.type;
    const entity: Entity = {
      id: input.id,
      name: input.name ?? old?.name ?? input.id,
      ...(type !== undefined && { type }),
      aliases,
      attributes: sorted,
      updatedAt: e.recordedAt,
    };
    this.t.entities.putSync(entity.id, encodeValue(entity));
    if (old === undefined) this.state.entities++;
    const id = encodeValue(entity.id);
    this.t.aliases.putSync(entity.id.toLowerCase(), id);
    // Level 4: an alias never takes a key that names another entity (an id, or an alias it holds): one stored before
    // aliases were checked stays in the list but resolves to whom it resolved to. Before level 4: last write wins.
    for (const a of aliases) {
      const key = a.toLowerCase();
      if (!rules4 || this.otherEntityAt(key, entity.id) === undefined) this.t.aliases.putSync(key, id);
    }
    return { seq: this.seq, opId: e.opId, status: 'entity' };
  }

  private marker(e: MarkerEntry): ApplyResult {
    const mark: LeadershipMark = { kind: e.kind, epoch: e.epoch, node: e.node, ...(e.to !== undefined && { to: e.to }), seq: this.seq };
    this.t.meta.putSync('leadership', encodeValue(mark));
    return { seq: this.seq, opId: e.opId, status: 'marker' };
  }
}

/** A grouped message (group commit), told apart from an entry by its op; anything else applies as an entry. */
function isBatch(message: LogMessage): message is BatchEntry {
  return typeof message === 'object' && message !== null && message.op === 'batch';
}

/** The entity object of a fact, the input's own when its entity id needed no resolving (no object per fact). */
function resolvedObject(input: { readonly entity: string }, entity: string): FactObject {
  return entity === input.entity ? input : { entity };
}

/**
 * The subject and object as stored, on the live result, when an alias resolved them to an entity's id (rare: the
 * common write names no alias and its result keeps its four fields). The change feed reports what was stored.
 */
function resolvedNames(result: ApplyResult, f: AssertEntry['fact'], subject: string | undefined, object: FactObject | undefined): ApplyResult {
  if (subject === f.subject && object === f.object) return result;
  return { ...result, subject, object };
}
