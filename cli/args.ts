/** Flag parsing shared by the subcommands: `node:util` parseArgs with errors a person can act on. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError } from '../config/index.ts';
import { ErrorCode } from '../protocol/index.ts';

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

/**
 * A flag whose value is not what the flag takes (an empty `--inactive-days=`, `--timeout 5x`, `--max-lag abc`). The
 * message names the flag, quotes what it got and says what it must be; commands print it as one coded line
 * (`shardmind prune: BAD_REQUEST: --inactive-days: "" must be …`) and exit 2 before doing anything. Every numeric
 * flag goes through the readers below: `Number()` reads "" and " " as 0 and "0x10" as 16, so a script's unset
 * `$DAYS` once meant "forget every closed fact" (review session 11, finding 0).
 */
export class FlagValueError extends UsageError {
  readonly code = ErrorCode.BAD_REQUEST;
  constructor(
    readonly flag: string,
    readonly value: string,
    expected: string,
    reason?: string,
  ) {
    super(`--${flag}: ${JSON.stringify(value)} must be ${expected}${reason ? ` (${reason})` : ''}`);
  }
}

/** Bounds of a numeric flag; a bound left out is open. */
export interface FlagRange {
  readonly min?: number;
  readonly max?: number;
  /** `min` itself is refused (a confidence in (0, 1)). */
  readonly minExclusive?: boolean;
  readonly maxExclusive?: boolean;
}

/** Plain decimal notation only: no sign but `-`, no exponent, no hex, no spaces. */
const DECIMAL = /^-?(\d+(\.\d*)?|\.\d+)$/;

function inRange(n: number, r: FlagRange): boolean {
  if (r.min !== undefined && (r.minExclusive ? n <= r.min : n < r.min)) return false;
  if (r.max !== undefined && (r.maxExclusive ? n >= r.max : n > r.max)) return false;
  return true;
}

/** Why `raw` is not a number at all, or undefined when it is one. */
function notANumber(raw: string): string | undefined {
  if (raw.trim() === '') return 'an empty value';
  if (!DECIMAL.test(raw)) return 'not a number';
  return undefined;
}

/**
 * A number flag (`--decayed-below 0.05`): undefined when absent, else a plain decimal within `range`; `expected`
 * says what the flag takes, for the error ("a confidence in (0, 1)").
 *
 * @example
 * const below = numberFlag('decayed-below', values['decayed-below'], { min: 0, max: 1, minExclusive: true, maxExclusive: true }, 'a confidence in (0, 1)');
 */
export function numberFlag(name: string, raw: string | undefined, range: FlagRange, expected: string): number | undefined {
  if (raw === undefined) return undefined;
  const why = notANumber(raw);
  if (why) throw new FlagValueError(name, raw, expected, why);
  const n = Number(raw);
  if (!inRange(n, range)) throw new FlagValueError(name, raw, expected, 'out of range');
  return n;
}

/**
 * A whole-number flag (`--max-lag 64`, `--limit 10`): undefined when absent, else an integer in `min..max`.
 *
 * @example
 * const maxLag = integerFlag('max-lag', values['max-lag'], 0, 1_000_000);
 */
export function integerFlag(name: string, raw: string | undefined, min: number, max: number, expected = `an integer in ${min}..${max}`): number | undefined {
  if (raw === undefined) return undefined;
  const why = notANumber(raw);
  if (why) throw new FlagValueError(name, raw, expected, why);
  const n = Number(raw);
  if (!Number.isInteger(n)) throw new FlagValueError(name, raw, expected, 'not a whole number');
  if (n < min || n > max) throw new FlagValueError(name, raw, expected, n < min ? `below ${min}` : `above ${max}`);
  return n;
}

/** A `--port`-like flag as an integer in range (the fallback when absent), or a FlagValueError naming it. */
export function intFlag(name: string, value: string | undefined, fallback: number, min = 1, max = 65535): number {
  return integerFlag(name, value, min, max) ?? fallback;
}

const DURATION_UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
const DURATION = /^(\d+(?:\.\d+)?)([a-zA-Z]*)$/;

/**
 * A duration flag (`--timeout`) in milliseconds: `500ms`, `5s`, `2m`, `1h`, or a bare number of milliseconds (what
 * the flags took before units), within `min..max` ms.
 *
 * @example
 * const timeoutMs = durationFlag('timeout', values.timeout, 1, 86_400_000); // "5s" → 5000
 */
export function durationFlag(name: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const expected = `a duration such as 500ms, 5s or 2m (a bare number is milliseconds), from ${formatMs(min)} to ${formatMs(max)}`;
  if (raw.trim() === '') throw new FlagValueError(name, raw, expected, 'an empty value');
  const m = DURATION.exec(raw);
  if (!m) throw new FlagValueError(name, raw, expected, raw.startsWith('-') ? 'negative' : 'not a duration');
  const unit = m[2] === '' ? 'ms' : m[2]!;
  const factor = DURATION_UNITS[unit];
  if (factor === undefined) throw new FlagValueError(name, raw, expected, `unknown unit "${unit}": use ms, s, m or h`);
  const ms = Number(m[1]) * factor;
  if (!Number.isInteger(ms)) throw new FlagValueError(name, raw, expected, 'not a whole number of milliseconds');
  if (ms < min || ms > max) throw new FlagValueError(name, raw, expected, 'out of range');
  return ms;
}

function formatMs(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1_000 === 0) return `${ms / 1_000}s`;
  return `${ms}ms`;
}

/** The longest `--timeout` any command takes: a day. */
export const MAX_TIMEOUT_MS = 86_400_000;

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

/**
 * Reads a command's flag values with `read` (which calls the readers above); a FlagValueError is printed on `io` as
 * one coded line and comes back as exit code 2, so the command stops before it connects to anything.
 *
 * @example
 * const flags = readFlagValues(io, 'prune', () => ({ days: numberFlag('inactive-days', values['inactive-days'], { min: 0 }, 'a number of days ≥ 0') }));
 * if (typeof flags === 'number') return flags;
 */
export function readFlagValues<T extends object>(io: Output, command: string, read: () => T): T | 2 {
  try {
    return read();
  } catch (err) {
    if (!(err instanceof FlagValueError)) throw err;
    io.err(`${flagValueLine(command, err)}\n`);
    return 2;
  }
}

/** `shardmind <command>: BAD_REQUEST: --flag: "value" must be …`. */
export function flagValueLine(command: string, err: FlagValueError): string {
  return `shardmind ${command}: ${err.code}: ${err.message}`;
}
