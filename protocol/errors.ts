/**
 * The one error table. The same codes travel on the wire (`{ v: 1, error: { code, message, retryable } }`), are
 * thrown by the client, and are what callers branch on.
 */

export const ErrorCode = {
  /** Malformed bytes, a missing or mistyped field. Fix the request. */
  BAD_REQUEST: 'BAD_REQUEST',
  /** The payload is over the configured limit (default 64 KiB). */
  TOO_LARGE: 'TOO_LARGE',
  /** No such domain in the cluster config. */
  UNKNOWN_DOMAIN: 'UNKNOWN_DOMAIN',
  /** This actor is not (or no longer) the shard's leader; retry, the leader is elsewhere or being elected. */
  NOT_LEADER: 'NOT_LEADER',
  /** The shard is moving or moved to another node; retry. */
  SHARD_MOVED: 'SHARD_MOVED',
  /** The shard or a dependency (JetStream) cannot serve right now; retry. */
  UNAVAILABLE: 'UNAVAILABLE',
  /** A bounded wait (e.g. for `minSeq`) ran out; retry. */
  TIMEOUT: 'TIMEOUT',
  /** The request names something that does not exist (a fact id, a task). */
  NOT_FOUND: 'NOT_FOUND',
  /** The caller may not do this (e.g. a control command from an unknown node). */
  FORBIDDEN: 'FORBIDDEN',
  /** A bug on our side; the message says what. */
  INTERNAL: 'INTERNAL',
  /**
   * A replica of the shard runs a build too old for this (e.g. `prune` while a Mini still runs an older shardmind):
   * upgrade every Mini that holds the domain, then retry.
   */
  UPGRADE_REQUIRED: 'UPGRADE_REQUIRED',
  /**
   * What the request would replace is there already (e.g. `shardmind restore` into a domain whose log holds facts):
   * nothing was changed; the message says what is there and what to do instead.
   */
  CONFLICT: 'CONFLICT',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Whether a client should retry (with the same opId) after this code. */
export const RETRYABLE: Readonly<Record<ErrorCode, boolean>> = {
  BAD_REQUEST: false,
  TOO_LARGE: false,
  UNKNOWN_DOMAIN: false,
  NOT_LEADER: true,
  SHARD_MOVED: true,
  UNAVAILABLE: true,
  TIMEOUT: true,
  NOT_FOUND: false,
  FORBIDDEN: false,
  INTERNAL: false,
  UPGRADE_REQUIRED: false,
  CONFLICT: false,
};

export interface WireError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly retryable: boolean;
}

/** An error callers branch on by `code`. Thrown inside hosts and by the client; serialized as a `WireError`. */
export class ShardmindError extends Error {
  override readonly name = 'ShardmindError';
  readonly retryable: boolean;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown; retryable?: boolean },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.retryable = options?.retryable ?? RETRYABLE[code];
  }

  toWire(): WireError {
    return { code: this.code, message: this.message, retryable: this.retryable };
  }

  static fromWire(e: WireError): ShardmindError {
    const code = isErrorCode(e.code) ? e.code : ErrorCode.INTERNAL;
    return new ShardmindError(code, String(e.message), { retryable: Boolean(e.retryable) });
  }
}

export function isErrorCode(x: unknown): x is ErrorCode {
  return typeof x === 'string' && Object.hasOwn(ErrorCode, x);
}

/** Shorthand for the most common edge error: `badRequest('fact.text', 'must be a non-empty string')`. */
export function badRequest(field: string, problem: string): ShardmindError {
  return new ShardmindError(ErrorCode.BAD_REQUEST, `${field}: ${problem}`);
}

/** Any thrown value as a `WireError`; unknown errors become INTERNAL with their message. */
export function toWireError(err: unknown): WireError {
  if (err instanceof ShardmindError) return err.toWire();
  const message = err instanceof Error ? err.message : String(err);
  return { code: ErrorCode.INTERNAL, message, retryable: false };
}
