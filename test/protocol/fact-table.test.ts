/**
 * The table layout of a recall reply (`protocol/fact-table.ts`): its msgpack decodes to exactly the JSON body, it
 * is plain msgpack (no extensions) and about half the object layout's size, and the client reads it into the same
 * facts as the object layout — for facts of every shape, with columns reordered or missing, and timestamps of any
 * size as integers.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fromRecallReply } from '../../client/index.ts';
import {
  RECALL_TABLE_COLUMNS,
  ShardmindError,
  decodePayload,
  encodePayload,
  packRecallReply,
  packRecallTable,
  parseKnownColumns,
  parseRecallLayout,
  recallTableBody,
  type RecallReply,
  type RecallTableReply,
} from '../../protocol/index.ts';
import type { RecalledFact } from '../../shards/index.ts';
import { fact, prng } from './recalled-facts.ts';

const served = { servedBy: 'mini-2', staleMs: 250 };

test('the msgpack decodes to the JSON body, for facts of every shape', () => {
  const r = prng(21);
  for (let round = 0; round < 300; round++) {
    const facts = Array.from({ length: Math.floor(r() * 20) }, (_, i) => fact(r, round * 100 + i));
    const s = round % 2 === 0 ? served : undefined;
    const packed = packRecallTable('email', facts, round, s);
    const body = recallTableBody('email', facts, round, s);
    assert.equal(decodePayload(packed, 'msgpack'), JSON.parse(JSON.stringify(body)), `round ${round}`);
  }
});

test('the client reads a table into the same facts as the object layout', () => {
  const r = prng(5);
  for (let round = 0; round < 200; round++) {
    const facts = Array.from({ length: 1 + Math.floor(r() * 12) }, (_, i) => fact(r, round * 100 + i));
    const objects = decodePayload(packRecallReply('email', facts, 7, served), 'msgpack') as RecallReply;
    const table = decodePayload(packRecallTable('email', facts, 7, served), 'msgpack') as RecallTableReply;
    assert.equal(fromRecallReply(table), fromRecallReply(objects), `round ${round}`);
    // Key for key, in the same order (a fact of the common shapes is made in one literal, the others grown).
    const keys = (result: ReturnType<typeof fromRecallReply>): string[][] => result.facts.map((f) => [...Object.keys(f), '|', ...Object.keys(f.source)]);
    assert.equal(keys(fromRecallReply(table)), keys(fromRecallReply(objects)), `round ${round}: key order`);
    // The same through JSON, as a client asking with content-type: application/json gets it.
    const json = JSON.parse(JSON.stringify(recallTableBody('email', facts, 7, served))) as RecallTableReply;
    assert.equal(fromRecallReply(json), fromRecallReply(objects));
  }
});

test('columns are found by name: reordered, extra or missing columns still read', () => {
  const r = prng(9);
  const facts = Array.from({ length: 5 }, (_, i) => fact(r, i));
  const table = recallTableBody('email', facts, 3);
  const expected = fromRecallReply(decodePayload(packRecallReply('email', facts, 3), 'msgpack') as RecallReply);
  const order = [...RECALL_TABLE_COLUMNS.keys()].reverse();
  const columns = [...order.map((i) => RECALL_TABLE_COLUMNS[i]!), 'futureColumn'];
  const rows = table.rows.map((row) => [...order.map((i) => row[i]!), 'extra']);
  assert.equal(fromRecallReply({ ...table, columns, rows }), expected);
  // A reply without `task` (an older or newer writer) reads every fact as having none.
  const without = RECALL_TABLE_COLUMNS.indexOf('task');
  const trimmed = { ...table, columns: table.columns!.filter((_, i) => i !== without), rows: table.rows.map((row) => row.filter((_, i) => i !== without)) };
  for (const f of fromRecallReply(trimmed).facts) assert.is(f.source.task, undefined);
});

test('without columns (the request knows them): the same reply less its column names, read into the same facts', () => {
  const r = prng(13);
  for (let round = 0; round < 100; round++) {
    const facts = Array.from({ length: Math.floor(r() * 12) }, (_, i) => fact(r, round * 100 + i));
    const s = round % 2 === 0 ? served : undefined;
    const named = packRecallTable('email', facts, round, s);
    const bare = packRecallTable('email', facts, round, s, false);
    const { columns, ...rest } = decodePayload(named, 'msgpack') as RecallTableReply;
    assert.equal(columns, [...RECALL_TABLE_COLUMNS]);
    assert.equal(decodePayload(bare, 'msgpack'), rest, `round ${round}`);
    assert.equal(JSON.parse(JSON.stringify(recallTableBody('email', facts, round, s, false))), rest);
    assert.is(named.length - bare.length, encodePayload('columns', 'msgpack').length + encodePayload(columns, 'msgpack').length, 'only the column names go');
    assert.equal(fromRecallReply(decodePayload(bare, 'msgpack') as RecallTableReply), fromRecallReply(decodePayload(named, 'msgpack') as RecallTableReply));
  }
});

test('knownColumns: the whole list leaves columns out, any other count keeps them, anything else is BAD_REQUEST', () => {
  const n = RECALL_TABLE_COLUMNS.length;
  assert.is(parseKnownColumns({ v: 1 }), false);
  assert.is(parseKnownColumns({ v: 1, knownColumns: null }), false, 'null is absent, as for every optional field');
  assert.is(parseKnownColumns({ v: 1, knownColumns: n }), true);
  for (const other of [0, 1, n - 1, n + 1]) assert.is(parseKnownColumns({ v: 1, knownColumns: other }), false, String(other));
  for (const bad of [String(n), 1.5, -1, true]) {
    try {
      parseKnownColumns({ v: 1, knownColumns: bad });
      assert.unreachable(`${JSON.stringify(bad)} accepted`);
    } catch (err) {
      assert.instance(err, ShardmindError);
      assert.is((err as ShardmindError).code, 'BAD_REQUEST');
      assert.match((err as ShardmindError).message, /knownColumns/);
    }
  }
});

test('plain msgpack, about half the size of the object layout at 10 facts', () => {
  const t = 1_795_491_943_579;
  const facts = Array.from(
    { length: 10 },
    (_, i) =>
      ({
        id: `bench:${(1000 + i).toString(36).padStart(10, '0')}:0`,
        domain: 'bench',
        text: 'kaloremi tusane vodipa qezufi gohywa kalomi',
        subject: `ent${i}`,
        predicate: 'rel12',
        object: 'val123',
        confidence: 0.8,
        halfLifeDays: 30,
        observedAt: t + i,
        validFrom: t + i,
        recordedAt: t + i,
        reinforcedAt: t + i,
        confirmations: 1,
        source: { agent: 'bench', node: 'bench-1' },
        status: 'active',
        seq: 1000 + i,
        effectiveConfidence: 0.79 - i / 1000,
        score: 2.3 - i / 10,
        hop: 0,
      }) as RecalledFact,
  );
  const table = packRecallTable('bench', facts, 42);
  const objects = packRecallReply('bench', facts, 42);
  assert.ok(table.length < objects.length * 0.55, `${table.length} vs ${objects.length} bytes`);
  // No msgpack extension types (0xc7–0xc9, 0xd4–0xd8): what msgpackr writes for the same body has none either,
  // and the two decode alike.
  const generic = encodePayload(recallTableBody('bench', facts, 42), 'msgpack');
  assert.equal(decodePayload(generic, 'msgpack'), decodePayload(table, 'msgpack'));
});

test('timestamps are integers of any size (uint64 past 2^32, int64 below -2^31)', () => {
  const r = prng(1);
  for (const ms of [0, 1, 2 ** 32 - 1, 2 ** 32, 1_795_491_943_579, 8.64e15, -1, -(2 ** 31), -(2 ** 31) - 1, -62_135_596_800_000]) {
    const f = { ...fact(r, 1), validFrom: ms, observedAt: ms, recordedAt: ms, reinforcedAt: ms } as RecalledFact;
    const bytes = packRecallTable('email', [f], 1);
    const row = (decodePayload(bytes, 'msgpack') as RecallTableReply).rows[0]!;
    assert.is(row[RECALL_TABLE_COLUMNS.indexOf('validFrom')], ms);
    if (ms > 2 ** 32 - 1 || ms < -(2 ** 31)) assert.ok(Buffer.from(bytes).includes(ms > 0 ? 0xcf : 0xd3), `${ms} as a 64-bit integer`);
    assert.equal(fromRecallReply(decodePayload(bytes, 'msgpack') as RecallTableReply).facts[0]!.validFrom, new Date(ms));
  }
});

test('layout: "objects" (default) or "table"; anything else is BAD_REQUEST naming the field', () => {
  assert.is(parseRecallLayout({ v: 1, query: 'x' }), 'objects');
  assert.is(parseRecallLayout({ v: 1, query: 'x', layout: 'objects' }), 'objects');
  assert.is(parseRecallLayout({ v: 1, query: 'x', layout: 'table' }), 'table');
  for (const bad of ['rows', 1, null, { table: true }]) {
    try {
      parseRecallLayout({ v: 1, query: 'x', layout: bad });
      assert.unreachable(`accepted ${JSON.stringify(bad)}`);
    } catch (err) {
      assert.instance(err, ShardmindError);
      assert.is((err as ShardmindError).code, 'BAD_REQUEST');
      assert.match((err as ShardmindError).message, /layout/);
    }
  }
});

test.run();
