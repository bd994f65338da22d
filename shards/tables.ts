/**
 * The LMDB layout: one environment per shard, one named database per kind of record. Keys are strings
 * (lmdb-js ordered-binary, i.e. UTF-8 in byte order); values are raw bytes we encode ourselves (see `codec.ts`).
 *
 * | table    | key                          | value                         | insert pattern            |
 * |----------|------------------------------|-------------------------------|---------------------------|
 * | meta     | `state`, `leadership`        | counters, appliedSeq, offset; marker | overwrite          |
 * |          | `format`                     | FORMAT (written at creation)  | once                      |
 * | facts    | creating position / 16       | 16 positions' Facts (`fact-groups.ts`) | append, per batch |
 * | episodes | `factId/position36`          | Episode (see below)           | on reinforcement          |
 * | ops      | applying position / 64       | per position: opId hash, opId, ApplyResult | append, per batch |
 * | entities | entity id                    | Entity                        | upsert                    |
 * | aliases  | lower-cased alias or id      | entity id                     | upsert                    |
 * | blocks   | segment + bucket / term hash | bucket of small blocks, or a large block | append, per merge |
 * | df       | word term                    | df (uint32) + segment bitmap  | once per segment merge    |
 * | changes  | change number (StoreState.changes) | a changed fact's header (`fact-changes.ts`) | append |
 *
 * Which active fact has an identity, and which fact is the active value of a `one` (subject, predicate), are not
 * tables: they are derived from the facts and kept in memory for the write path (`key-index.ts`), rebuilt when the
 * store opens. As tables they cost a random B-tree read and write per fact (see docs/decisions.md).
 *
 * Records are keyed by store *position*, which is the log sequence until the log holds grouped messages (a batch at
 * log sequence s takes a position per entry; `StoreState.offset` in `apply.ts`).
 *
 * A fact's record is its creating episode (the observation's text, source, times and confidence are its fields as
 * first written, and changes are appended beside it), so an assert writes no episode record and a reinforcement
 * writes only its own. That saved a put and an encoding per new fact, and one per first reinforcement.
 *
 * `ops` records are keyed by the sequences that applied the ops (64 to a record), not by the client's opId: an opId
 * key was a random B-tree read and insert per write (clients' opIds need not be ordered). Which record holds an
 * opId is an in-memory index (`op-results.ts`), rebuilt at open like the write indexes.
 */
import { open, type Database, type RootDatabase } from 'lmdb';
import type { ResolvedOptions } from './validate.ts';

export const TABLE_NAMES = ['aliases', 'blocks', 'changes', 'df', 'entities', 'episodes', 'facts', 'meta', 'ops'] as const;

/**
 * The layout's version, stored as `meta/format`. 2: blocks keyed by epoch, df as uint32, no `ident` / `active`
 * tables. 3: blocks keyed by (segment, term hash) and appended; op results keyed by sequence. 4: a segment's small
 * blocks packed into hash buckets (`block-layout.ts`). 5: op results grouped 64 sequences to a record
 * (`op-results.ts`). 6: a word's df record carries a bitmap of the segments holding a block of it. 7: a change to a
 * stored fact is appended to `changes` instead of rewriting its record (`fact-changes.ts`). 8: the records of 16
 * positions share one value (`fact-groups.ts`); no episode record for a fact's creating observation. A store of
 * another format is refused at open (rebuild it from the log).
 */
export const FORMAT = 8;
export type TableName = (typeof TABLE_NAMES)[number];

export type Table = Database<Buffer, string>;
/** Facts are keyed by their creating position / FACT_GROUP (a number key: looked up ~3× faster than a string, measured). */
export type FactTable = Database<Buffer, number>;
/** Op results are keyed by the applying sequence / 64. */
export type OpTable = Database<Buffer, number>;
/** Fact changes are keyed by their number. */
export type ChangeTable = Database<Buffer, number>;
/** Posting blocks are keyed by 16 raw bytes (see `postings.ts`). */
export type BlockTable = Database<Buffer, Buffer>;

export interface Tables {
  readonly env: RootDatabase<Buffer, string>;
  readonly meta: Table;
  readonly facts: FactTable;
  readonly episodes: Table;
  readonly ops: OpTable;
  readonly entities: Table;
  readonly aliases: Table;
  readonly blocks: BlockTable;
  readonly df: Table;
  readonly changes: ChangeTable;
}

export function openTables(options: ResolvedOptions): Tables {
  const env = open<Buffer, string>({
    path: options.path,
    maxDbs: 16,
    mapSize: options.mapSize,
    encoding: 'binary',
    compression: false,
    // `meta`: the data pages are synced on commit, the meta page is not — a power cut may lose the last commit, which
    // the log replays. `none`: nothing is synced (tests, bulk loads).
    noMetaSync: options.durability === 'meta',
    noSync: options.durability === 'none',
  });
  const table = (name: TableName): Table => env.openDB<Buffer, string>(name, { encoding: 'binary' });
  return {
    env,
    meta: table('meta'),
    facts: env.openDB<Buffer, number>('facts', { encoding: 'binary' }),
    episodes: table('episodes'),
    ops: env.openDB<Buffer, number>('ops', { encoding: 'binary' }),
    entities: table('entities'),
    aliases: table('aliases'),
    blocks: env.openDB<Buffer, Buffer>('blocks', { encoding: 'binary', keyEncoding: 'binary' }),
    df: table('df'),
    changes: env.openDB<Buffer, number>('changes', { encoding: 'binary' }),
  };
}
