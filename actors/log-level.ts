/**
 * Log levels: which kinds of log message a build understands, so that a rolling upgrade cannot make replicas drift.
 *
 * - Level 1: the entries of the first release — `assert`, `reinforce`, `retract`, `forget`, `entity`, `marker`.
 * - Level 2: group commit's `batch` messages (decisions §26) and `prune` entries (§31).
 * - Level 3: an `assert` that carries the leader's resolved `cardinality` (and its predicate's half-life filled in):
 *   a level-2 build would ignore the field and decide supersession by its own config, so it must stop instead.
 *   A field, not an op, raises this level: `entryLevel` looks at the entry, and only an entry that has the field
 *   is level 3, so every message without it keeps its level, its body bytes and its `entryHash`.
 * - Level 4: an `assert` with a subject, or an `entity`, that says `level: 4` — the rules apply follows for it
 *   (decisions §71): a new value of a `one` (subject, predicate) with no active value ends the recorded values whose
 *   world interval runs past its start; an entity's own id resolves before any alias; an entity entry never takes a
 *   key that names another entity. Apply keeps the old rules for an entry without the field, so logs written before
 *   replay to the same bytes, and a level-3 build stops at such an entry instead of applying it by the old rules.
 *
 * Every appended message says the level it needs in the `Sm-Level` header (absent: 1), so the body's bytes and
 * `entryHash` are what they always were. A replica that meets a message above the level it understands stops there
 * (`NeedsUpgradeError`, the shard machine's `needsUpgrade` state) instead of skipping it; a leader appends a level
 * only when every replica it hears from understands it (`replica-levels.ts`). The role CockroachDB's cluster version
 * and Kafka's `inter.broker.protocol.version` play, decided from what the replicas advertise rather than set by hand.
 */
import { ErrorCode, ShardmindError } from '../protocol/index.ts';
import type { LogEntry, LogMessage } from '../shards/index.ts';
import { entriesOf } from './log-codec.ts';

/** The highest log level this build reads and writes. */
export const LOG_LEVEL = 4;

/** The header an append carries with the level its message needs; absent means 1 (every message before levels). */
export const LEVEL_HEADER = 'Sm-Level';

/**
 * For tests only: a host started with this set to a lower level advertises and understands only that level — how
 * the tests run an older build honestly (it halts where that build would, writes what that build would). Never set
 * it in production: a host that understands less than it could only stops sooner.
 */
export const SIMULATED_LEVEL_ENV = 'SHARDMIND_SIMULATE_LOG_LEVEL';

/** The level each entry op first appeared at. An op not listed is foreign: the store rejects it (level 1 behaviour). */
const OP_LEVEL: Readonly<Record<string, number>> = {
  assert: 1,
  reinforce: 1,
  retract: 1,
  forget: 1,
  entity: 1,
  marker: 1,
  batch: 2,
  prune: 2,
};

/** The level at which an `assert` first carried the leader's resolved predicate spec (`cardinality`). */
export const RESOLVED_SPEC_LEVEL = 3;

/**
 * The level from which an entry says the level it was written at (`level`), and apply follows that level's rules
 * for it (§71): what apply decides for an entry must be tied to the entry, never to the build applying it.
 */
export const STAMPED_LEVEL = 4;

/**
 * The entry as a leader writing at `level` appends it: from STAMPED_LEVEL, an `assert` with a subject (the only
 * asserts whose apply changed) and every `entity` carry `level`; any other entry is returned as it is, so its bytes,
 * its level and its `entryHash` stay what they were.
 */
export function stampLevel(entry: LogEntry, level: number): LogEntry {
  if (level < STAMPED_LEVEL) return entry;
  if (entry.op === 'assert') return entry.fact.subject === undefined ? entry : { ...entry, level };
  return entry.op === 'entity' ? { ...entry, level } : entry;
}

/**
 * The level of a message of `count` writes whose (first) entry's op is `op`, by ops alone: what the leader puts in
 * `Sm-Level` unless a member carries a field of a higher level (`entryLevel`).
 */
export function appendLevel(count: number, op: string): number {
  return count > 1 ? OP_LEVEL['batch']! : (OP_LEVEL[op] ?? 1);
}

/**
 * The level one entry needs: its op's, `RESOLVED_SPEC_LEVEL` for an assert that carries a `cardinality`, or the
 * `level` it says it was written at (an assert or entity, STAMPED_LEVEL and up), whichever is highest.
 */
export function entryLevel(entry: LogEntry): number {
  let level = OP_LEVEL[entry.op] ?? 1;
  if (entry.op === 'assert' && entry.cardinality !== undefined) level = RESOLVED_SPEC_LEVEL;
  if ((entry.op === 'assert' || entry.op === 'entity') && typeof entry.level === 'number' && entry.level > level) level = entry.level;
  return level;
}

/** The level a decoded message's body needs: a group is at least `batch`'s, and as high as its highest member. */
export function bodyLevel(message: LogMessage): number {
  if (message.op !== 'batch') return entryLevel(message);
  let level = OP_LEVEL['batch']!;
  for (const e of entriesOf(message)) level = Math.max(level, entryLevel(e));
  return level;
}

/** `Sm-Level` as read: a positive integer, or 1 when absent or malformed (then the body alone decides). */
export function parseLevelHeader(value: string | undefined): number {
  if (value === undefined || value === '') return 1;
  const n = Number(value);
  return Number.isInteger(n) && n >= 1 ? n : 1;
}

/**
 * The level this host runs at: `LOG_LEVEL`, or the lower one `SHARDMIND_SIMULATE_LOG_LEVEL` asks for (tests).
 * A value that is not an integer in 1…LOG_LEVEL is a usage error.
 */
export function hostLogLevel(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[SIMULATED_LEVEL_ENV];
  if (raw === undefined || raw === '') return LOG_LEVEL;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > LOG_LEVEL) {
    throw new Error(`${SIMULATED_LEVEL_ENV}=${raw}: must be an integer from 1 to ${LOG_LEVEL} (it simulates an older build in tests)`);
  }
  return n;
}

/**
 * A replica met a log message above the level it understands. It applied everything before `seq` and nothing from
 * it: an upgraded build continues from there. The shard machine moves to `needsUpgrade` on it. Also what a bootstrap
 * meets when the newest snapshot was taken by a build of a higher level (it installs nothing).
 */
export class NeedsUpgradeError extends Error {
  override readonly name = 'NeedsUpgradeError';
  constructor(
    readonly domain: string,
    readonly seq: number,
    readonly level: number,
    readonly understood: number,
    /** What is at that level: a log message, or the snapshot a bootstrap would install. */
    readonly source: 'log' | 'snapshot' = 'log',
  ) {
    super(`needs upgrade: ${source} at level ${level} (seq ${seq}), this build understands ${understood}`);
  }
}

/** Why a leader refuses a write of `level`: a replica it hears from understands only `writeLevel`. */
export function upgradeRequired(what: string, level: number, writeLevel: number, domain?: string): ShardmindError {
  const shard = domain === undefined ? 'this shard' : domain;
  return new ShardmindError(
    ErrorCode.UPGRADE_REQUIRED,
    `${what} needs log level ${level}, but a replica of ${shard} understands only level ${writeLevel}: upgrade every Mini that holds ${shard} (\`shardmind status\` shows each one's LEVEL), then retry`,
  );
}
