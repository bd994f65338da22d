/** Flag parsing shared by the subcommands: `node:util` parseArgs with errors a person can act on. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError } from '../config/index.ts';

/** A usage mistake: printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export function parseFlags<O extends NonNullable<ParseArgsConfig['options']>>(
  args: readonly string[],
  options: O,
): ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>> {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** A `--port`-like flag as an integer in range, or a UsageError naming it. */
export function intFlag(name: string, value: string | undefined, fallback: number, min = 1, max = 65535): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name}: "${value}" must be an integer in ${min}..${max}`);
  return n;
}

/** Where a command writes: stdout and stderr, or a test's buffers. */
interface Output {
  out(s: string): void;
  err(s: string): void;
}

const HELP_FLAG = { help: { type: 'boolean', short: 'h' } } as const;

/**
 * Flag parsing for the operator commands that report on `io` and return their exit code (their tests call them
 * directly rather than through `main`): a usage mistake prints the message and the usage (exit 2), `--help` the
 * usage (exit 0); in both cases the number comes back for the caller to return.
 */
export function parseCommandFlags<O extends NonNullable<ParseArgsConfig['options']>>(
  args: readonly string[],
  options: O,
  usage: string,
  io: Output,
  maxPositionals = 0,
): ReturnType<typeof parseFlags<O & typeof HELP_FLAG>> | number {
  let parsed;
  try {
    parsed = parseFlags(args, { ...options, ...HELP_FLAG });
    if (parsed.positionals.length > maxPositionals) {
      throw new UsageError(`unexpected argument "${parsed.positionals[maxPositionals]}"`);
    }
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.err(`${err.message}\n${usage}\n`);
    return 2;
  }
  // parseArgs' generic value type does not see through the spread; HELP_FLAG guarantees the field.
  if ((parsed.values as { help?: boolean }).help) {
    io.out(`${usage}\n`);
    return 0;
  }
  return parsed;
}

/** Runs `step`, reporting a config error on `io` as exit code 1 (what `main` does for the other commands). */
export async function orConfigError<T>(io: Output, step: () => Promise<T>): Promise<T | 1> {
  try {
    return await step();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.err(`config error: ${err.message}\n`);
    return 1;
  }
}
