/**
 * `LmdbShardStore`: one domain's memory on one machine — the `ShardStore` over LMDB.
 *
 * Writes: `applyBatch` runs the whole batch in one lmdb-js asynchronous `childTransaction()`. Its callback runs on
 * this thread (reads see the batch's own writes), but the commit and its fsync happen on lmdb-js's write thread, so
 * a durable commit does not block the event loop (a `transactionSync` would hold it for the whole fsync,
 * milliseconds per batch on these disks). Batches are chained, so they commit in call order. A child transaction,
 * not a plain `transaction()`: lmdb-js's batched write transaction cannot be aborted, so an error thrown midway
 * through a batch used to commit the entries applied before it without `appliedSeq` (a replay then applied them
 * again); the child is aborted instead, and the in-memory state is rebuilt from what committed. With durability
 * `none` (bulk loads, tests) there is no fsync to keep off the event loop, and a batch is a `transactionSync`.
 * The tests of aborted batches and restarts run both ways (reads racing a commit need the asynchronous one).
 *
 * @example
 * const store = openShardStore({ path: '/var/lib/shardmind/email', domain: 'email' });
 * await store.apply({ v: 1, op: 'assert', opId: 'op-1', recordedAt: now, source: { agent: 'a' }, fact: { text } }, 1);
 * store.recall({ query: 'attachment or link?', now: Date.now() });
 */
import { createHash } from 'node:crypto';
import { mkdirSync, statSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ActiveRecords } from './active-records.ts';
import { Applier, appliedPosition, EMPTY_STATE, stateRecord, type StoreState, type WriteIndexes } from './apply.ts';
import { decodeValue, encodeValue } from './codec.ts';
import { StoreFormatError } from './errors.ts';
import { FactChanges } from './fact-changes.ts';
import { FactGroups } from './fact-groups.ts';
import { KeyIndex } from './key-index.ts';
import { OpResults } from './op-results.ts';
import { ScoreNumbers, type ScoredNumbers } from './score-numbers.ts';
import { FactSubjects } from './fact-subjects.ts';
import { PostingIndex, SEGMENT_SEQS, segmentOf } from './postings.ts';
import { readFactTexts, recallFacts, type RecallWalk } from './recall.ts';
import { decodeFact, readIdentityFields, readSubjectFields, type IdentityFields } from './fact-codec.ts';
import { FactTerms } from './fact-terms.ts';
import { factSeqIn } from './ids.ts';
import { identityHash, subjectPredicateHash } from './records.ts';
import { StoreWarmer } from './warm-up.ts';
import { FORMAT, openTables, TABLE_NAMES, type Table, type Tables } from './tables.ts';
import type {
  ApplyBatchOptions,
  ApplyResult,
  Entity,
  Fact,
  FactObject,
  HistoryPage,
  LeadershipMark,
  LogMessage,
  ReadyBatch,
  RecallQuery,
  RecallResult,
  ShardStats,
  ShardStore,
  ShardStoreOptions,
} from './types.ts';
import { resolveOptions, validateRecallQuery, type ResolvedOptions } from './validate.ts';
import { LogCardinalities } from './log-cardinalities.ts';
import { WrittenLevel } from './written-level.ts';

type FactAdder = (terms: FactTerms, seq: number) => void;

/** `meta` key of the caller's hash of the entry at `appliedSeq` (`applyBatch`'s `tailHash`): not part of the digest. */
const TAIL_KEY = 'tail';

export class LmdbShardStore implements ShardStore {
  readonly domain: string;
  private readonly options: ResolvedOptions;
  private readonly t: Tables;
  private readonly postings: PostingIndex;
  private readonly indexes: WriteIndexes = { identities: new KeyIndex(), activeValues: new KeyIndex(), activeRecords: new ActiveRecords(), scores: new ScoreNumbers(), subjects: new FactSubjects() };
  private readonly ops: OpResults;
  private readonly facts: FactGroups;
  private readonly changes: FactChanges;
  /** The tables as readers see them: fact records with their changes applied. */
  private readonly readerTables: Tables;
  private applier: Applier;
  /** Committed state: what reads report. The applier's copy runs ahead while a batch is in its transaction. */
  private committed: StoreState;
  private chain: Promise<unknown> = Promise.resolve();
  /** The state record `snapshotState` decoded last, and its bytes. */
  private lastStateBytes: Buffer | undefined;
  private lastState: Readonly<StoreState> = EMPTY_STATE;
  /** `resolveEntity` for recall's context, made once (a closure per recall also costs tsx's naming of it). */
  private readonly resolveForRecall = (idOrAlias: string): string => this.resolveEntity(idOrAlias);
  private closed: Promise<void> | undefined;
  /** `warmUp`'s progress (`warm-up.ts`). */
  private readonly warmer: StoreWarmer;
  /** The cardinality the log last gave each predicate: what the `one`-value index follows (`log-cardinalities.ts`). */
  private readonly cardinalities: LogCardinalities;
  /** The highest level the log's entries said they were written at (`written-level.ts`): a new leader starts there. */
  private readonly writtenLevel = new WrittenLevel();
  /**
   * The latest `recordedAt` this store has seen: the newest fact's at open, then every entry applied since. Memory
   * only (not in the state record, so a store's bytes stay what the log alone makes them): the floor a leader stamps
   * new entries at, so `recordedAt` never goes backwards in the log (§71).
   */
  private newestRecorded = 0;

  constructor(options: ShardStoreOptions) {
    this.options = resolveOptions(options);
    this.domain = this.options.domain;
    mkdirSync(this.options.path, { recursive: true });
    this.t = openTables(this.options);
    this.checkFormat();
    this.postings = new PostingIndex(this.t.blocks, this.t.df);
    this.ops = new OpResults(this.t.ops, this.domain);
    this.facts = new FactGroups(this.t.facts);
    this.changes = new FactChanges(this.facts, this.t.changes);
    this.readerTables = { ...this.t, facts: this.changes.reads() };
    this.committed = this.readState();
    this.cardinalities = new LogCardinalities(this.options.predicates, this.options.defaultPredicate);
    this.cardinalities.load(this.t.meta);
    this.writtenLevel.load(this.t.meta);
    this.applier = this.newApplier();
    // The subjects of the newest active facts, gathered while the write indexes are rebuilt, for warming
    // (`warm-up.ts`). Not every fact's: a Set of 1M facts' subjects added ~5% to opening, which a failover waits for.
    const subjects = { from: Math.max(0, appliedPosition(this.committed) - WARM_SUBJECT_POSITIONS), seen: new Set<string>() };
    this.rebuildDerived(subjects);
    this.warmer = new StoreWarmer(this.postings, (from, to, add) => readFactTexts(this.readerTables, from, to, add), [...subjects.seen]);
  }

  /** A store written with another layout cannot be read correctly: refuse it (the log rebuilds a replica). */
  private checkFormat(): void {
    const bytes = this.t.meta.getBinary('format');
    const format = bytes === undefined ? undefined : decodeValue<number>(bytes);
    const empty = this.t.meta.getBinary('state') === undefined;
    if (format === FORMAT || (format === undefined && empty)) return;
    void this.t.env.close();
    throw new StoreFormatError(this.options.path, format ?? 1, FORMAT);
  }

  /** What lives in memory and is derived from the stored records: the open index segment, the write and op indexes. */
  private rebuildDerived(subjects?: SubjectsToWarm): void {
    this.facts.reset();
    this.changes.rebuild();
    this.rebuildOpenSegment();
    this.rebuildWriteIndexes(subjects);
    this.ops.rebuild();
  }

  /**
   * The write indexes from every active fact, and every fact's scoring numbers: one pass over the facts at open
   * (a few seconds per million facts on these machines, see docs/decisions.md). A `one` predicate's active value is
   * its (subject, predicate)'s only active fact, so the same specs give the same index a replica that never restarted holds.
   * At open, also gathers the subjects of the active facts from position `subjects.from` on (for warming).
   */
  private rebuildWriteIndexes(subjects: SubjectsToWarm | undefined): void {
    const { identities, activeValues, activeRecords, scores, subjects: factSubjects } = this.indexes;
    identities.clear();
    activeValues.clear();
    activeRecords.clear();
    scores.clear();
    factSubjects.clear();
    const fields: IdentityFields = { active: false, subject: undefined, predicate: undefined, object: undefined, objectIsEntity: false, text: '' };
    let newest = -1;
    for (const [key, value] of this.facts.entries()) {
      const bytes = this.changes.current(key, value);
      scores.set(key, bytes);
      newest = key;
      const f = readIdentityFields(bytes, fields);
      if (!f.active) {
        // `readIdentityFields` stops at an inactive fact; its subject is filed all the same (recall, `fact-subjects.ts`).
        const g = readSubjectFields(bytes, fields);
        factSubjects.file(key, g.subject, g.predicate);
        continue;
      }
      factSubjects.file(key, f.subject, f.predicate);
      if (subjects !== undefined && key >= subjects.from && f.subject !== undefined) subjects.seen.add(f.subject);
      const object: FactObject | undefined = f.object === undefined ? undefined : f.objectIsEntity ? { entity: f.object } : f.object;
      identities.add(identityHash(f.subject, f.predicate, object, f.text), key);
      if (f.subject === undefined || f.predicate === undefined) continue;
      // The log's cardinality for the predicate when it gave one (level 3), else the options' (own keys only, as apply's
      // lookup: a predicate named like an Object member has no spec of its own).
      if (this.cardinalities.effective(f.predicate) === 'one') {
        activeValues.add(subjectPredicateHash(f.subject, f.predicate), key);
        activeRecords.keep(key, bytes);
      }
    }
    if (newest >= 0 && scores.read(newest, NEWEST)) this.newestRecorded = Math.max(this.newestRecorded, NEWEST.recordedAt);
  }

  get appliedSeq(): number {
    return this.committed.appliedSeq;
  }

  private readState(): StoreState {
    const bytes = this.t.meta.getBinary('state');
    return bytes === undefined ? { ...EMPTY_STATE } : { ...EMPTY_STATE, ...decodeValue<StoreState>(bytes) };
  }

  /**
   * `readState` for reads, which only look: the state record of the reader's LMDB snapshot, decoded again only
   * when its bytes differ from the last ones decoded. The record changes once per commit while every recall reads
   * it, and reading it as a copy and decoding it was ~6% of a host's CPU per recall (profile-op, 10k facts).
   */
  private snapshotState(): Readonly<StoreState> {
    // lmdb-js's reused read buffer: its `length` is this value's, and it is only valid until the next read.
    const bytes = this.t.meta.getBinaryFast('state');
    if (bytes === undefined) return EMPTY_STATE;
    const last = this.lastStateBytes;
    const n = bytes.length;
    if (last !== undefined && last.length === n) {
      let same = true;
      for (let i = 0; i < n; i++) {
        if (bytes[i] !== last[i]) {
          same = false;
          break;
        }
      }
      if (same) return this.lastState;
    }
    const copy = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) copy[i] = bytes[i]!;
    this.lastState = Object.freeze({ ...EMPTY_STATE, ...decodeValue<StoreState>(copy) });
    this.lastStateBytes = copy;
    return this.lastState;
  }

  /**
   * The open segment's postings are derived from its facts (at most SEGMENT_SEQS of them), never the whole store;
   * so are the previous segment's while it is still being merged.
   */
  private rebuildOpenSegment(): void {
    const pos = appliedPosition(this.committed);
    const segment = segmentOf(pos);
    this.postings.reset(pos, this.committed.mergedTerms, (add) => this.addSegmentPostings(segment - 1, segment, add));
    this.addSegmentPostings(segment, undefined, (terms, s) => this.postings.addFact(terms, s));
  }

  /** Re-adds the postings of the facts created in segments [from, to) (to the end of the store when undefined). */
  private addSegmentPostings(from: number, to: number | undefined, add: FactAdder): void {
    const terms = new FactTerms();
    for (const [, value] of this.facts.entries(from * SEGMENT_SEQS, to === undefined ? undefined : to * SEGMENT_SEQS)) {
      const f = decodeFact(value, this.domain);
      if (f.status === 'forgotten') continue;
      terms.scan(f);
      add(terms, f.seq);
    }
  }

  applyBatch(batch: readonly { readonly seq: number; readonly entry: LogMessage }[], options: ApplyBatchOptions = {}): Promise<ApplyResult[]> {
    if (this.closed !== undefined) return Promise.reject(new Error(`shard store ${this.domain} is closed`));
    // Checked before the transaction starts: a throw inside it would leave half a batch to roll back.
    const problem = batchProblem(batch);
    if (problem !== undefined) return Promise.reject(problem);
    const run = this.chain.then(() => this.commitAcrossTransitions(batch, options.tailHash));
    this.chain = run.catch(() => undefined);
    return run;
  }

  applyBatchWhenReady(ready: Promise<ReadyBatch | undefined>): Promise<ApplyResult[] | undefined> {
    // No write thread to hand over to (durability none), or nothing to open: the batch goes the ordinary way.
    if (this.closed !== undefined || this.options.durability === 'none') {
      return ready.then((b) => (b === undefined ? undefined : this.applyBatch(b.batch, b.options)));
    }
    const run = this.chain.then(() => this.commitWhenReady(ready));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /**
   * The transaction is asked of lmdb-js's write thread now; its callback waits for `ready` and applies the batch in
   * it. Until then the callback has written nothing: reads meanwhile (which lmdb-js runs in the open write
   * transaction) see exactly what is committed, and a batch that is not to be applied aborts a transaction that
   * holds no change. A batch that needs more than one commit (a cardinality transition) or that is malformed is not
   * taken in it: the empty transaction is aborted and the batch goes the ordinary way.
   */
  private async commitWhenReady(ready: Promise<ReadyBatch | undefined>): Promise<ApplyResult[] | undefined> {
    let known: { readonly batch: ReadyBatch | undefined } | undefined;
    void ready.then((batch) => void (known = { batch }));
    let taken: ReadyBatch | undefined;
    let instead: ReadyBatch | undefined;
    const results: ApplyResult[] = [];
    const take = (b: ReadyBatch | undefined): void => {
      if (b === undefined) throw NOT_TAKEN;
      if (batchProblem(b.batch) !== undefined || this.transitionFrom(b.batch, 0) >= 0) {
        instead = b;
        throw NOT_TAKEN;
      }
      taken = b;
      this.applyInTransaction(b.batch, b.options?.tailHash, results);
    };
    try {
      await this.t.env.childTransaction(() => (known !== undefined ? take(known.batch) : ready.then(take)));
      await this.t.env.flushed;
    } catch (err) {
      if (taken !== undefined) {
        this.recoverFromFailedCommit(err);
        throw err;
      }
      if (instead !== undefined) {
        const problem = batchProblem(instead.batch);
        if (problem !== undefined) throw problem;
        return this.commitAcrossTransitions(instead.batch, instead.options?.tailHash);
      }
      if (err === NOT_TAKEN) return undefined;
      throw err;
    }
    this.afterCommit(taken!.batch);
    return results;
  }

  /**
   * `commit`, split before each message that changes a predicate's effective cardinality (`log-cardinalities.ts`):
   * what comes before it is committed, the new value recorded and the `one`-value index rebuilt from the facts, as an
   * open would, so a replica that never restarts holds the index one that restarted rebuilds. No transition (every
   * message but the few after a config edit): one commit, as before. The parts before a transition carry no tail hash
   * (`tailHash()` is then unknown until the batch's last part commits).
   */
  private async commitAcrossTransitions(batch: readonly { readonly seq: number; readonly entry: LogMessage }[], tailHash: string | undefined): Promise<ApplyResult[]> {
    let at = this.transitionFrom(batch, 0);
    if (at < 0) return this.commit(batch, tailHash);
    const results: ApplyResult[] = [];
    let from = 0;
    while (at >= 0) {
      if (at > from) results.push(...(await this.commit(batch.slice(from, at), undefined)));
      this.cardinalities.note(batch[at]!.entry);
      this.rebuildWriteIndexes(undefined);
      from = at;
      at = this.transitionFrom(batch, at + 1);
    }
    results.push(...(await this.commit(batch.slice(from), tailHash)));
    return results;
  }

  /** The index of the first message from `from` not applied yet that is a cardinality transition, or -1. */
  private transitionFrom(batch: readonly { readonly seq: number; readonly entry: LogMessage }[], from: number): number {
    const applied = this.applier.state.appliedSeq;
    for (let i = from; i < batch.length; i++) {
      const { seq, entry } = batch[i]!;
      if (seq > applied && this.cardinalities.transitions(entry)) return i;
    }
    return -1;
  }

  private async commit(batch: readonly { readonly seq: number; readonly entry: LogMessage }[], tailHash: string | undefined): Promise<ApplyResult[]> {
    const results: ApplyResult[] = [];
    try {
      const run = (): void => this.applyInTransaction(batch, tailHash, results);
      if (this.options.durability === 'none') {
        // Nothing to sync, so nothing to wait for off the event loop: a plain synchronous transaction (it aborts on
        // a throw too) commits without the hand-offs to and from lmdb-js's write thread — ~10% of a bulk load's
        // CPU. The batch's results then come back with the commit already visible.
        this.t.env.transactionSync(run);
      } else {
        await this.t.env.childTransaction(run);
        await this.t.env.flushed;
      }
    } catch (err) {
      this.recoverFromFailedCommit(err);
      throw err;
    }
    this.afterCommit(batch);
    return results;
  }

  /** The batch applied inside the open write transaction, its results pushed to `results`. */
  private applyInTransaction(batch: readonly { readonly seq: number; readonly entry: LogMessage }[], tailHash: string | undefined, results: ApplyResult[]): void {
    const state = this.applier.state;
    const before = state.appliedSeq;
    // The applier computes the next entries' hashes ahead and loads its index slots for them together (`prefetch`).
    for (let i = 0, prefetched = 0; i < batch.length; i++) {
      const { seq, entry } = batch[i]!;
      if (seq <= state.appliedSeq) continue;
      if (i >= prefetched) prefetched = this.applier.prefetch(batch, i);
      this.applier.applyMessage(seq, entry, results);
      this.cardinalities.note(entry);
      this.writtenLevel.note(entry);
    }
    if (state.appliedSeq !== before) {
      this.ops.flush();
      this.facts.flush();
      state.mergedTerms = this.postings.mergedTerms();
      this.cardinalities.write(this.t.meta);
      this.writtenLevel.write(this.t.meta);
      this.t.meta.putSync('state', encodeValue(stateRecord(state)));
      if (tailHash !== undefined) this.t.meta.putSync(TAIL_KEY, encodeValue({ seq: state.appliedSeq, hash: tailHash }));
      if (this.committed.appliedSeq === 0) this.t.meta.putSync('format', encodeValue(FORMAT));
    }
  }

  /** After a batch's commit is synced: reads report it. */
  private afterCommit(batch: readonly { readonly seq: number; readonly entry: LogMessage }[]): void {
    this.committed = { ...this.applier.state };
    this.postings.committed();
    this.newestRecorded = latestRecordedAt(batch, this.newestRecorded);
  }

  /** A transaction that did not commit: what ran ahead in memory is dropped, and the store starts again from disk. */
  private recoverFromFailedCommit(err: unknown): void {
    // A failed commit leaves two more rejected promises in lmdb-js that nobody holds: the error's `commitError`
    // (the EIO or ENOSPC itself), and the commit promise of the event-turn batch that carried this transaction
    // (lmdb/write.js: `writeBatchStart`'s `commitPromise`, still `env.committed`). Observed here, the failure
    // reaches the caller once, as this rejection, and never the process's unhandled-rejection handler (on a full
    // disk that handler ended the host; docs/decisions.md §62).
    observeCommitError(err);
    this.t.env.committed.then(
      () => undefined,
      () => undefined,
    );
    this.committed = this.readState();
    this.cardinalities.load(this.t.meta);
    this.writtenLevel.load(this.t.meta);
    this.applier = this.newApplier();
    this.rebuildDerived();
    // That dropped what warming had read: it starts over on the next `warmUp`.
    this.warmer.restart();
  }

  newestRecordedAt(): number {
    return this.newestRecorded;
  }

  async apply(entry: LogMessage, seq: number): Promise<ApplyResult> {
    const [result] = await this.applyBatch([{ seq, entry }]);
    if (result !== undefined) return result;
    // At or below appliedSeq: replay. Report what that opId (a batch's first entry's) got, if it is ours.
    const inner: unknown = entry.op === 'batch' ? entry.entries : undefined;
    const first = Array.isArray(inner) ? (inner[0] as { opId?: unknown } | undefined) : entry;
    const opId = typeof first?.opId === 'string' ? first.opId : entry.opId;
    const prior = this.resultOf(opId);
    return prior !== undefined ? { ...prior, duplicate: true } : { seq, opId, status: 'rejected', duplicate: true, error: { code: 'BAD_REQUEST', message: `sequence ${seq} was already applied` } };
  }

  resultOf(opId: string): ApplyResult | undefined {
    return this.ops.find(opId);
  }

  recall(query: RecallQuery): RecallResult {
    const q = validateRecallQuery(query);
    // The counters and applied position of the LMDB snapshot this read sees — not `this.committed`, which trails a
    // commit the write thread has already made visible: postings above the snapshot's applied position (a batch
    // still committing) are left out, and those up to it always have their facts.
    const s = this.snapshotState();
    const walk: RecallWalk = { partial: false };
    const facts = recallFacts(
      {
        t: this.readerTables,
        postings: this.postings,
        domain: this.domain,
        recallFloor: this.options.recallFloor,
        docs: s.docs,
        docLength: s.docLength,
        appliedPosition: appliedPosition(s),
        mergedTerms: s.mergedTerms,
        // The in-memory numbers are the applier's: only a snapshot at the applier's own sequence may use them.
        scores: s.appliedSeq === this.applier.state.appliedSeq ? this.indexes.scores : undefined,
        // A fact's subject never changes: good for every snapshot that holds the fact.
        subjects: this.indexes.subjects,
        resolveEntity: this.resolveForRecall,
      },
      q,
      walk,
    );
    // Only when cut, so a complete answer keeps the shape it had.
    return walk.partial ? { facts, appliedSeq: s.appliedSeq, partial: true } : { facts, appliedSeq: s.appliedSeq };
  }

  /**
   * An entity's own id names it; another spelling resolves through the alias table. The table is read first (the
   * common case: one lookup), and only when it names another entity is the name looked up as an id: a store written
   * before aliases were checked may map an id's lower-cased key to an entity that took it as an alias (§71).
   */
  private resolveEntity(idOrAlias: string): string {
    const bytes = this.t.aliases.getBinary(idOrAlias.toLowerCase());
    if (bytes === undefined) return idOrAlias;
    const id = decodeValue<string>(bytes);
    return id === idOrAlias || this.t.entities.getBinary(idOrAlias) === undefined ? id : idOrAlias;
  }

  getFact(id: string): Fact | undefined {
    const seq = factSeqIn(this.domain, id);
    return seq === undefined ? undefined : this.storedFact(seq);
  }

  /**
   * The fact created at `seq` as this read's LMDB snapshot holds it: record and changes both from the snapshot, not
   * the applier's (whose group of facts being filled may hold a batch still committing).
   */
  private storedFact(seq: number): Fact | undefined {
    const bytes = this.changes.readStored(seq);
    return bytes === undefined ? undefined : decodeFact(bytes, this.domain);
  }

  history(subject: string, predicate?: string): Fact[] {
    return this.historyPage(subject, predicate, Number.MAX_SAFE_INTEGER).facts;
  }

  historyPage(subject: string, predicate: string | undefined, limit: number, before?: number): HistoryPage {
    const s = this.resolveEntity(subject);
    const term = predicate === undefined ? `s:${s}` : `p:${s}\x1f${predicate}`;
    const applied = appliedPosition(this.snapshotState());
    const below = before === undefined ? applied : Math.min(applied, before - 1);
    // One posting past the page says whether an older one is left, without reading it.
    const postings = below < 1 ? [] : this.postings.newest(term, limit === Number.MAX_SAFE_INTEGER ? limit : limit + 1, below);
    const more = postings.length > limit;
    if (more) postings.length = limit;
    const facts: Fact[] = [];
    for (const p of postings) {
      const f = this.storedFact(p.seq);
      if (f !== undefined) facts.push(f);
    }
    facts.sort((a, b) => a.validFrom - b.validFrom || a.recordedAt - b.recordedAt || a.seq - b.seq);
    return more ? { facts, next: postings[postings.length - 1]!.seq } : { facts };
  }

  getEntity(idOrAlias: string): Entity | undefined {
    return this.applier.getEntity(idOrAlias);
  }

  appliedResolvedSpecs(): boolean {
    return this.cardinalities.any();
  }

  appliedWrittenLevel(): number | undefined {
    return this.writtenLevel.level;
  }

  tailHash(): string | undefined {
    const bytes = this.t.meta.getBinary(TAIL_KEY);
    if (bytes === undefined) return undefined;
    const tail = decodeValue<{ seq: number; hash: string }>(bytes);
    return tail.seq === this.committed.appliedSeq ? tail.hash : undefined;
  }

  leadership(): LeadershipMark | undefined {
    const bytes = this.t.meta.getBinary('leadership');
    return bytes === undefined ? undefined : decodeValue<LeadershipMark>(bytes);
  }

  digest(): string {
    const hash = createHash('sha256');
    const frame = Buffer.alloc(4);
    const add = (bytes: Uint8Array): void => {
      frame.writeUInt32BE(bytes.length);
      hash.update(frame);
      hash.update(bytes);
    };
    for (const name of TABLE_NAMES) {
      add(Buffer.from(name));
      for (const { key, value } of (this.t[name] as Table).getRange({})) {
        if (name === 'meta' && key === TAIL_KEY) continue; // the caller's bookkeeping (`tailHash`), not memory
        // Block keys are raw bytes; the others are strings or sequence numbers.
        add(Buffer.isBuffer(key) ? key : Buffer.from(String(key)));
        add(value);
      }
    }
    return hash.digest('hex');
  }

  stats(): ShardStats {
    const s = this.committed;
    return {
      appliedSeq: s.appliedSeq,
      lastPosition: appliedPosition(s),
      facts: s.facts,
      activeFacts: s.activeFacts,
      entities: s.entities,
      episodes: s.episodes,
      terms: (this.t.df.getStats() as { entryCount: number }).entryCount,
      bytes: dataBytes(this.options.path),
    };
  }

  /** An applier from the committed state; unstamped asserts decide by the cardinality the index follows. */
  private newApplier(): Applier {
    return new Applier(this.t, this.postings, this.indexes, this.ops, this.facts, this.changes, this.options, { ...this.committed }, (p) => this.cardinalities.effective(p));
  }

  warmUp(until: number): boolean {
    return this.closed === undefined && this.warmer.warm(until);
  }

  close(): Promise<void> {
    this.closed ??= this.chain.then(() => this.t.env.close());
    return this.closed;
  }
}

/** Thrown inside a transaction opened ahead (`commitWhenReady`) whose batch is not applied in it: aborts it. */
const NOT_TAKEN = new Error('the batch was not taken in the transaction opened for it');

/** Why a batch cannot be applied (sequences not positive whole numbers, or not increasing), or undefined. */
function batchProblem(batch: readonly { readonly seq: number }[]): Error | undefined {
  for (let i = 0; i < batch.length; i++) {
    const seq = batch[i]!.seq;
    if (!Number.isSafeInteger(seq) || seq <= 0) return new Error(`applyBatch: bad sequence ${seq}`);
    if (i > 0 && !(seq > batch[i - 1]!.seq)) return new Error('applyBatch: sequences must increase');
  }
  return undefined;
}

function dataBytes(dir: string): number {
  let total = 0;
  for (const name of readdirSync(dir)) total += statSync(join(dir, name)).size;
  return total;
}

/** Facts whose subjects opening gathers for warming: the newest two index segments' worth of positions. */
const WARM_SUBJECT_POSITIONS = 2 * SEGMENT_SEQS;

interface SubjectsToWarm {
  readonly from: number;
  readonly seen: Set<string>;
}

/** Opens (creating if needed) the shard store at `options.path`. Throws `ShardValidationError` on bad options, `StoreFormatError` for a store of another layout. */
export function openShardStore(options: ShardStoreOptions): ShardStore {
  return new LmdbShardStore(options);
}

/** Marks the promise lmdb-js hangs on a failed commit's error (`commitError`) as handled; its reason is the cause. */
function observeCommitError(err: unknown): void {
  const commitError = (err as { commitError?: unknown } | null)?.commitError;
  if (commitError instanceof Promise) commitError.catch(() => undefined);
}

/** Scratch for the newest fact's numbers at open. */
const NEWEST: ScoredNumbers = { status: 'active', confidence: 0, halfLifeDays: 0, validFrom: 0, validTo: undefined, recordedAt: 0, invalidatedAt: undefined, reinforcedAt: 0, since: 0, until: 0 };

/** The latest `recordedAt` among the messages (a group's entries included) and `floor`. */
function latestRecordedAt(batch: readonly { readonly entry: LogMessage }[], floor: number): number {
  let latest = floor;
  for (const { entry } of batch) {
    // A malformed message (rejected by apply) says nothing.
    if (typeof entry !== 'object' || entry === null) continue;
    if (entry.op === 'batch') {
      const entries: unknown = entry.entries;
      if (Array.isArray(entries)) {
        for (const e of entries as { recordedAt?: unknown }[]) if (typeof e?.recordedAt === 'number' && e.recordedAt > latest) latest = e.recordedAt;
      }
    } else if (typeof entry.recordedAt === 'number' && entry.recordedAt > latest) latest = entry.recordedAt;
  }
  return latest;
}
