/**
 * How `shardmind host` writes its log lines. The host and its actors log plain lines — `[mini-1 email following]
 * message` for a shard, `[mini-1] message` for the host, a few untagged (`SIGTERM: draining …`) — and this file gives
 * each a UTC ISO-8601 time (date included, so a launchd log that spans days sorts and joins with nats-server's), a
 * level, and the node's tag when the line has none:
 *
 *     2026-11-25T04:53:36.338Z INFO  [mini-1 files following] the leader is silent past its lease: won epoch 5, promoting
 *     2026-11-25T04:53:36.400Z WARN  [mini-1 files leading] pipeline broke: resync: append failed: …
 *
 * or, with `--log-format json`, one JSON object a line: `{"ts","level","node","domain","state","msg"}` (domain and
 * state only on a shard's line). The message is kept as written, so what tests and operators grep for still matches.
 *
 * The level is read from the message, since the actors log text: `ERROR:` or `FATAL` is ERROR, `WARNING:` and the
 * wordings of a failure being retried (`failed`, `could not`, `broke`, `stalled`, …) are WARN, the rest INFO.
 */
import { FlagValueError } from './args.ts';

export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export type LogLevel = 'INFO' | 'WARN' | 'ERROR';

/** `--log-format`'s value, or `text` when absent; anything else is a flag error. */
export function logFormatFlag(raw: string | undefined): LogFormat {
  if (raw === undefined) return 'text';
  if ((LOG_FORMATS as readonly string[]).includes(raw)) return raw as LogFormat;
  throw new FlagValueError('log-format', raw, LOG_FORMATS.join(' or '));
}

/** `[node]` or `[node domain state]` at the start of a line. */
const TAG = /^\[([^\]\s]+)(?: ([^\]\s]+) ([^\]\s]+))?\] ?/;
const ERROR_WORDS = /\bERROR:|\bFATAL\b/;
const WARN_WORDS = /\bWARNING:|\bfailed\b|\bcould not\b|\bcannot\b|\bbroke\b|\bstalled\b|\bfenced\b|\bdeposed\b|\btimed out\b|\bTIMEOUT\b|\bhalt/;

export function levelOf(message: string): LogLevel {
  if (ERROR_WORDS.test(message)) return 'ERROR';
  if (WARN_WORDS.test(message)) return 'WARN';
  return 'INFO';
}

export interface LogRecord {
  readonly ts: string;
  readonly level: LogLevel;
  readonly node: string;
  readonly domain?: string;
  readonly state?: string;
  readonly msg: string;
}

/** Splits a host's line into its parts; a line with no tag is the host's (`node`). */
export function logRecord(line: string, node: string, at: Date): LogRecord {
  const tag = TAG.exec(line);
  const msg = tag ? line.slice(tag[0].length) : line;
  const base = { ts: at.toISOString(), level: levelOf(msg), node: tag?.[1] ?? node };
  return tag?.[2] !== undefined ? { ...base, domain: tag[2], state: tag[3], msg } : { ...base, msg };
}

/** The line as written to stderr, without its newline. */
export function formatLogLine(line: string, node: string, format: LogFormat, at = new Date()): string {
  const r = logRecord(line, node, at);
  if (format === 'json') return JSON.stringify(r);
  const tag = r.domain !== undefined ? `[${r.node} ${r.domain} ${r.state}]` : `[${r.node}]`;
  return `${r.ts} ${r.level.padEnd(5)} ${tag} ${r.msg}`;
}
