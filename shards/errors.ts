/**
 * The store's one error callers branch on: bad input, naming the field. The wire layer maps it to `BAD_REQUEST`
 * (the `code` is the same string as the protocol table's, without importing `protocol/`, so `shards/` stays pure).
 */
export class ShardValidationError extends Error {
  override readonly name = 'ShardValidationError';
  readonly code = 'BAD_REQUEST' as const;

  constructor(
    /** Dotted path of the offending field, e.g. `fact.confidence`. */
    readonly field: string,
    /** What is wrong with it, e.g. `must be a number between 0 and 1`. */
    readonly problem: string,
  ) {
    super(`${field}: ${problem}`);
  }
}

/**
 * The directory holds a store written in another layout (an older version of shardmind). Its contents are derived
 * from the shard's log, so a replica can be rebuilt: the shard actor wipes the directory and replays the log.
 */
export class StoreFormatError extends Error {
  override readonly name = 'StoreFormatError';

  constructor(
    readonly path: string,
    readonly found: number,
    readonly expected: number,
  ) {
    super(`${path} holds store format ${found}, this version reads format ${expected}: remove the directory and let the shard rebuild it from the log`);
  }
}
