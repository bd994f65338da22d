/** The shape of one `shardmind` subcommand in the dispatcher table (`cli/main.ts`). */

export interface Command {
  /** One line for `shardmind help`. */
  readonly summary: string;
  /** Full usage text for `shardmind <command> --help` and usage errors. */
  readonly usage: string;
  /** Runs the command; resolves with the process exit code. Throw `UsageError` for bad flags. */
  run(args: readonly string[]): Promise<number>;
}
