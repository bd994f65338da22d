/**
 * The edge's limits: how long each kind of string may be, which characters ids may use, how big numbers may get.
 * One place, so `docs/protocol.md`, the validators and the client agree. The payload size limit itself is per
 * cluster (`limits.maxPayloadBytes` in the config); `DEFAULT_MAX_PAYLOAD_BYTES` is its default.
 */

/** Largest request payload accepted when the config does not say (TOO_LARGE above). */
export const DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024;

/** Facts in one `history` page when the request does not say (`limit`); older ones are paged with `before`. */
export const DEFAULT_HISTORY_LIMIT = 100;

export const LIMITS = {
  /** `fact.text`, `query`, classify and task text: a memory is a sentence or a paragraph, not a document. */
  textChars: 16_384,
  /** Ids: agent, node, opId, factId. */
  idChars: 128,
  /** Entity names and aliases (`subject`, `object.entity`) and predicates. */
  nameChars: 256,
  /** A literal `object` value. */
  literalChars: 2_048,
  /** Domains named in one recall, and entries in one `minSeq` map. */
  domainsPerRequest: 64,
  /** Items in one `remember_batch` (the request must also fit the payload limit). */
  batchItems: 256,
  /**
   * Recalls in one `recall_batch` (the request must also fit the payload limit, and the reply the server's
   * `max_payload`). 64: the most a client keeps in flight in the bench's ×64 loop; each item is a whole recall on
   * the shard's event loop, so a bigger batch would hold other requests behind it for longer.
   */
  recallBatchItems: 64,
  /** Upper bound of `recall.limit` at the edge; shards may clamp lower (`limits.maxRecallLimit`). */
  recallLimit: 1_000,
  /**
   * Upper bound of `history.limit`. A page is read, decoded and encoded on the shard's event loop: 1 000 facts take
   * milliseconds, where a busy subject's whole history (100k facts: ~1–3 s) outlasted the leader's lease.
   */
  historyLimit: 1_000,
  /** Graph expansion hops. */
  hops: 3,
  /** An entity's aliases (the store keeps at most 100) and attributes. */
  entityAliases: 100,
  entityAttributes: 64,
  /** A fact's half-life: one day to a century. */
  halfLifeDaysMin: 1 / 24,
  halfLifeDaysMax: 36_500,
} as const;

/**
 * Ids (agent, node, opId, factId): letters, digits and `_ - . : @ =`, starting with a letter, digit or `_`.
 * Safe in log lines, LMDB keys and JSON without escaping; `:` is in fact ids (`email:000000002a:0`).
 */
export const SAFE_ID = /^[A-Za-z0-9_][A-Za-z0-9_.:@=-]*$/;

/**
 * Task ids are also NATS KV keys (the router keeps task state there): no `:` or `@`, and no `.` (KV keys may not
 * start or end with one, nor double it; leaving dots out is simpler than explaining that).
 */
export const TASK_ID = /^[A-Za-z0-9_=-]+$/;

/** Control characters (except tab, newline, carriage return) have no business in memory text. */
export const CONTROL_CHARS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;
