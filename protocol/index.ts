/** The wire protocol: error table, payload codec, subject names. What travels on NATS is defined here. */
export type { WireError } from "./errors.ts";
export type { Encoding } from "./codec.ts";
export { ErrorCode, RETRYABLE, ShardmindError, isErrorCode, badRequest, toWireError } from "./errors.ts";
export { encodePayload, decodePayload, encodingOf, JSON_CONTENT_TYPE, CONTENT_TYPE_HEADER } from "./codec.ts";
export {
  memSubject,
  shardSubject,
  ctlSubject,
  logStream,
  logSubject,
  heartbeatSubject,
  EPOCH_BUCKET,
  ROUTER_QUEUE,
  DOMAIN_NAME,
} from "./subjects.ts";
export type {
  WireSource,
  WireObject,
  WireFactInput,
  RememberRequest,
  RememberStatus,
  RememberReply,
  RecallRequest,
  WireFact,
  RecallReply,
  ForgetRequest,
  RetractRequest,
  WriteReply,
  HistoryRequest,
  HistoryReply,
  GetRequest,
  ClassifyRequest,
  ClassifyReply,
  TaskBeginRequest,
  TaskBeginReply,
  TaskObserveRequest,
  TaskObserveReply,
  TaskRerouteRequest,
  TaskEndRequest,
  ErrorReply,
} from './wire.ts';
export { WIRE_VERSION } from './wire.ts';
