/** The TypeScript SDK for shardmind: `connect()` and the types its calls take and return. */
export type {
  CloseOptions,
  ConnectOptions,
  FactObject,
  FactInput,
  Routing,
  ReadRouting,
  HistoryOptions,
  HistoryPage,
  RememberOptions,
  RememberStatus,
  RememberResult,
  WriteResult,
  RecallQuery,
  Source,
  FactStatus,
  Fact,
  RecalledFact,
  RecallResult,
  MissingDomain,
  DomainScore,
  TaskInfo,
  TaskStart,
  TaskObservation,
  TaskSummary,
  TaskStep,
  EntityInput,
  Entity,
  EntityResult,
  EntityView,
  Change,
  ChangeOp,
  ChangeStatus,
  WatchOptions,
} from './types.ts';
export type { RetryPolicy } from './retry.ts';
export type { OpIdSource } from './op-id.ts';
export { connect, ShardmindClient, domainOfFactId, DEFAULT_TIMEOUT_MS, DEFAULT_DEADLINE_MS } from './client.ts';
export { createOpIdSource } from './op-id.ts';
export { fromRecallReply } from './recall-reply.ts';
export { Transport } from './transport.ts';
export { ReplyInbox } from './reply-inbox.ts';
export { backoffDelay, withRetry, DEFAULT_RETRY_POLICY, OutcomeUnknownError } from './retry.ts';
export { DEFAULT_MAX_QUEUED_BYTES } from './remember-batcher.ts';
export { ShardmindError, ErrorCode } from '../protocol/index.ts';
