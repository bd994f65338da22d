/** Flag parsing shared by the subcommands: `node:util` parseArgs with errors a person can act on. */
import { parseArgs, type ParseArgsConfig } from 'node:util';

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
