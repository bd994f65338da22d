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
    super(`${field} ${problem}`);
  }
}
