/** The wire protocol: error table, payload codec, subject names. What travels on NATS is defined here. */
export type { WireError } from "./errors.ts";
export type { Encoding } from "./codec.ts";
export type { HeadersRead, ReadableHeaders } from "./headers.ts";
export { ErrorCode, RETRYABLE, ShardmindError, isErrorCode, badRequest, toWireError } from "./errors.ts";
export { isPayloadTooLarge, maxPayloadOf, replyTooLarge } from "./reply-size.ts";
export { encodePayload, decodePayload, encodingOf, replyEncodingAfter, UnlabelledJsonError, JSON_CONTENT_TYPE, CONTENT_TYPE_HEADER } from "./codec.ts";
export { readHeaders, headersOrNone } from './headers.ts';
export { packRecallReply } from './fact-pack.ts';
export { packRememberReply } from './remember-reply-pack.ts';
export { packRecallBatchReply } from './recall-batch-pack.ts';
export type { PackedServed } from './fact-pack.ts';
export { RECALL_TABLE_COLUMNS, packRecallTable, parseKnownColumns, parseRecallLayout, recallTableBody } from './fact-table.ts';
export type { RecallTableColumn } from './fact-table.ts';
export { REPLY_TO_HEADER, ROUTER_NODE_HEADER, REFUSAL_CODES, isReplySubject } from './hand-off.ts';
export { CLIENT_INBOX_PREFIX, HOST_INBOX_PREFIX, FOREIGN_REPLY_REPORT_MS, ReplySubjectCheck, agentInboxPrefix, inboxPrefixForUser, isClientInboxPrefix, isInboxSubject } from './reply-subject.ts';
export { redactUrl } from './redact-url.ts';
export {
  memSubject,
  shardSubject,
  ctlSubject,
  logStream,
  logSubject,
  heartbeatSubject,
  clockSubject,
  snapshotBucket,
  eventSubject,
  replicaSubject,
  replicaNodeSubject,
  replicaQueue,
  REPLICA_FORWARD_HEADER,
  EPOCH_BUCKET,
  ROUTER_QUEUE,
  DOMAIN_NAME,
} from "./subjects.ts";
export type {
  WireSource,
  WireObject,
  WireFactInput,
  RememberRequest,
  RememberBatchRequest,
  RememberBatchItem,
  RememberBatchReply,
  RememberStatus,
  RememberReply,
  RecallRequest,
  WireFact,
  RecallReply,
  RecallLayout,
  RecallTableReply,
  RecallBatchRequest,
  RecallBatchReply,
  WireTableCell,
  ForgetRequest,
  RetractRequest,
  WriteReply,
  HistoryRequest,
  HistoryReply,
  GetRequest,
  EntityRequest,
  EntityReply,
  LookupRequest,
  LookupReply,
  WireEntity,
  WireEntityInput,
  WireChangeEvent,
  ChangeFeedMessage,
  GetReply,
  ReplicaServed,
  ClassifyRequest,
  ClassifyReply,
  TaskBeginRequest,
  TaskBeginReply,
  TaskObserveRequest,
  TaskObserveReply,
  TaskRerouteRequest,
  TaskEndRequest,
  WireTaskStep,
  WireTaskSummary,
  ErrorReply,
} from './wire.ts';
export { WIRE_VERSION } from './wire.ts';

// The edge: request validation, field checkers, limits, reply envelope, wire ↔ shard conversions.
export type { Check, StringRule, NumberRule } from './fields.ts';
export type { ShardOp, ReplicaOp, RecallBatchItem } from './validate.ts';
export type { WireHistoryFact } from './convert.ts';
export {
  checkSize,
  parseRememberRequest,
  parseRememberBatchRequest,
  parseRecallRequest,
  parseRecallBatchRequest,
  parseForgetRequest,
  parseRetractRequest,
  parseHistoryRequest,
  parseGetRequest,
  parseEntityRequest,
  parseLookupRequest,
  parseClassifyRequest,
  parseTaskBeginRequest,
  parseTaskObserveRequest,
  parseTaskRerouteRequest,
  parseTaskEndRequest,
  SHARD_REQUEST_PARSERS,
  SHARD_OPS,
  isShardOp,
  REPLICA_OPS,
  isReplicaOp,
} from './validate.ts';
export {
  describe,
  isRecord,
  record,
  optional,
  string,
  text,
  name,
  literal,
  id,
  domainName,
  number,
  unit,
  seq,
  boolean,
  oneOf,
  list,
  timestampMs,
  timestamp,
  seqMap,
} from './fields.ts';
export { DEFAULT_HISTORY_LIMIT, DEFAULT_MAX_PAYLOAD_BYTES, LIMITS, SAFE_ID, TASK_ID, CONTROL_CHARS } from './limits.ts';
export { errorReply, isErrorReply, unwrapReply } from './envelope.ts';
export {
  isoToMs,
  msToIso,
  toFactInput,
  toRecallQuery,
  toWireFact,
  toWireEntity,
  rememberStatus,
  rememberReply,
  writeReply,
} from './convert.ts';
