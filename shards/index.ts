/**
 * The memory core: a temporal knowledge graph in LMDB. Pure library — no NATS, no actors.
 */
export type {
  Cardinality,
  PredicateSpec,
  Source,
  FactObject,
  FactInput,
  EntityInput,
  AssertEntry,
  ReinforceEntry,
  RetractEntry,
  ForgetEntry,
  PruneEntry,
  EntityEntry,
  MarkerEntry,
  LogEntry,
  BatchEntry,
  LogMessage,
  ApplyStatus,
  ApplyResult,
  FactStatus,
  Fact,
  HistoryPage,
  Entity,
  RecallQuery,
  RecalledFact,
  RecallResult,
  ShardStoreOptions,
  ShardStats,
  LeadershipMark,
  ShardStore,
  ApplyBatchOptions,
  ReadyBatch,
} from './types.ts';
export type { Episode } from './records.ts';
export type { Contender } from './conflict.ts';

export { LmdbShardStore, openShardStore } from './store.ts';
export { ShardValidationError, StoreFormatError } from './errors.ts';
export {
  validateEntry,
  validateFactInput,
  validateEntityInput,
  validateRecallQuery,
  DEFAULT_CONFIDENCE,
  MAX_PRUNE_SPAN,
  DEFAULT_LIMIT,
  DEFAULT_PREDICATE,
  DEFAULT_RECALL_FLOOR,
  MAX_LIMIT,
  MAX_BATCH_ENTRIES,
  batchProblem,
  MAX_TEXT_BYTES,
} from './validate.ts';
export { effectiveConfidence, combineConfidence, recencyWeight, DAY_MS } from './decay.ts';
// Recall's world time against record time, and the clock skew an agent's observedAt may have.
export { CLOCK_SKEW_MS, observedAtProblem } from './world-time.ts';
export { tokenize, normalizeText } from './text.ts';
export { factIdFor, seqOfFactId } from './ids.ts';
// The index layout's sizes and the fact record format, for tests and tools that read a store's bytes.
export { SEGMENT_SEQS, MERGE_SPAN } from './postings.ts';
// The store layout this version reads and writes (`meta/format`): a snapshot of another one cannot be installed.
export { FORMAT } from './tables.ts';
export { encodeFact, decodeFact, factByteLength, peekFact, readIdentityFields } from './fact-codec.ts';
export type { FactNumbers, IdentityFields } from './fact-codec.ts';
export { challengerWins } from './conflict.ts';
// The index terms of a fact, hashed in one pass, and the hash they must agree with (readers hash query words).
export { FactTerms } from './fact-terms.ts';
export { hashTerm } from './term-table.ts';
