/**
 * The cardinality the log last gave each predicate, kept in the store so that the `one`-value index is the same on
 * a replica that restarted as on one that did not, whatever each host's config says.
 *
 * Why: since log level 3 an assert carries the cardinality its leader resolved (`AssertEntry.cardinality`), and apply
 * supersedes by it. But the index of active `one` values (`WriteIndexes.activeValues`) lives in memory and a reopened
 * store rebuilds it from its facts; rebuilt from the host's own config, it would miss the active values of a predicate
 * the log says is `one` and the config says is `many` (or hold several where the log says `many`), and the replica
 * would then supersede differently from the others. Rebuilt by this record instead, it is what the log made it.
 *
 * The index's rule, on every replica and at every position: the active facts of each predicate whose effective
 * cardinality — the log's last word on it, else the store's options — is `one`. When a message changes a predicate's
 * effective cardinality (a transition: the first stamp that differs from the options, or a leader with another config
 * after a failover), the store commits what came before it, records the new value and rebuilds the index from its
 * facts, exactly as an open would, before applying it. A transition is an event of a config edit, not of a write:
 * its rebuild (one pass over the facts, seconds per million) is paid once per predicate per edit.
 *
 * Stored under the `meta` key `cardinalities` as msgpack of `[predicate, cardinality]` pairs sorted by predicate
 * (equal replicas, equal bytes: it is part of the digest). A store that never applied a level-3 entry has no record,
 * so older logs replay to the same bytes as before.
 */
import { decodeValue, encodeValue } from './codec.ts';
import type { Cardinality, LogMessage, PredicateSpec } from './types.ts';

export const CARDINALITIES_KEY = 'cardinalities';

/** What the store reads and writes the record through (its `meta` table). */
interface MetaTable {
  getBinary(key: string): Buffer | undefined;
  putSync(key: string, value: Buffer | Uint8Array): unknown;
}

export class LogCardinalities {
  private recorded = new Map<string, Cardinality>();
  /** Changed since the last `write`: the record is put with the batch that changed it. */
  private dirty = false;

  constructor(
    private readonly predicates: Readonly<Record<string, PredicateSpec>>,
    private readonly defaultPredicate: PredicateSpec,
  ) {}

  /** Reads the record as committed (at open, and after a failed batch: what ran ahead is dropped). */
  load(meta: MetaTable): void {
    const bytes = meta.getBinary(CARDINALITIES_KEY);
    this.recorded = new Map(bytes === undefined ? [] : decodeValue<[string, Cardinality][]>(bytes));
    this.dirty = false;
  }

  /** Whether the log has given any predicate a cardinality (applied a level-3 assert). */
  any(): boolean {
    return this.recorded.size > 0;
  }

  /** The cardinality the index follows for `predicate`: the log's, else the options' (own keys only, as apply's). */
  effective(predicate: string): Cardinality {
    const logged = this.recorded.get(predicate);
    if (logged !== undefined) return logged;
    const spec = Object.hasOwn(this.predicates, predicate) ? this.predicates[predicate] : undefined;
    return (spec ?? this.defaultPredicate).cardinality;
  }

  /**
   * Whether applying `message` changes some predicate's effective cardinality (the index must then be rebuilt first).
   * Looks only; `note` records.
   */
  transitions(message: LogMessage): boolean {
    // Malformed messages (not even an object) are the applier's to reject: they carry nothing here.
    if (!isObject(message)) return false;
    if (message.op === 'assert') return this.changes(message.fact, message.cardinality);
    if (message.op !== 'batch' || !Array.isArray(message.entries)) return false;
    for (const e of message.entries) if (isObject(e) && e.op === 'assert' && this.changes(e.fact, e.cardinality)) return true;
    return false;
  }

  /** Records the cardinalities `message` carries. */
  note(message: LogMessage): void {
    if (!isObject(message)) return;
    if (message.op === 'assert') this.record(message.fact, message.cardinality);
    else if (message.op === 'batch' && Array.isArray(message.entries)) {
      for (const e of message.entries) if (isObject(e) && e.op === 'assert') this.record(e.fact, e.cardinality);
    }
  }

  /** Puts the record when it changed (inside the batch's transaction). */
  write(meta: MetaTable): void {
    if (!this.dirty) return;
    const pairs = [...this.recorded].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    meta.putSync(CARDINALITIES_KEY, encodeValue(pairs));
    this.dirty = false;
  }

  private changes(fact: unknown, cardinality: unknown): boolean {
    const predicate = stampedPredicate(fact, cardinality);
    return predicate !== undefined && this.effective(predicate) !== cardinality;
  }

  private record(fact: unknown, cardinality: unknown): void {
    const predicate = stampedPredicate(fact, cardinality);
    if (predicate === undefined || this.recorded.get(predicate) === cardinality) return;
    this.recorded.set(predicate, cardinality as Cardinality);
    this.dirty = true;
  }
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null;
}

/** The predicate of an assert that carries a well-formed cardinality, or undefined (unstamped, or malformed). */
function stampedPredicate(fact: unknown, cardinality: unknown): string | undefined {
  if (cardinality !== 'one' && cardinality !== 'many') return undefined;
  if (!isObject(fact)) return undefined;
  const predicate = fact['predicate'];
  return typeof predicate === 'string' ? predicate : undefined;
}
