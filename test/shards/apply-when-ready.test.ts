/**
 * `applyBatchWhenReady`: the commit's transaction is opened before its batch is known (a leader's append awaiting its
 * ack, decisions §87). Until the batch is given nothing is applied and reads answer from what is committed; given,
 * it is applied as `applyBatch` applies it; given nothing, the transaction is aborted empty and the store goes on.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore, type LogEntry, type ReadyBatch, type ShardStore } from '../../shards/index.ts';
import { DAY, PREDICATES, T0, assertEntry, tempDir } from './helpers.ts';

type Batch = { seq: number; entry: LogEntry }[];

function facts(from: number, n: number): Batch {
  return Array.from({ length: n }, (_, i) => ({
    seq: from + i,
    entry: assertEntry({ text: `fact ${from + i} about coffee`, subject: `s${from + i}`, predicate: 'p0', object: `v${from + i}` }, { opId: `op-${from + i}`, recordedAt: T0 + from + i }),
  }));
}

/** Resolves once lmdb-js has run the store's transaction callback and it waits for its batch (or rejects at 5 s). */
async function transactionOpen(store: ShardStore): Promise<void> {
  // lmdb-js's native environment holds the write transaction while a transaction callback runs or waits.
  const env = (store as unknown as { t: { env: { env: { writeTxn?: unknown } } } }).t.env.env;
  const deadline = Date.now() + 5_000;
  while (!env.writeTxn) {
    if (Date.now() > deadline) throw new Error('the transaction was not opened within 5 s');
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function later(): { ready: Promise<ReadyBatch | undefined>; give(batch: ReadyBatch | undefined): void } {
  let give!: (batch: ReadyBatch | undefined) => void;
  const ready = new Promise<ReadyBatch | undefined>((resolve) => (give = resolve));
  return { ready, give };
}

function reads(store: ShardStore): unknown {
  return {
    seq: store.appliedSeq,
    recall: store.recall({ query: 'coffee', now: T0 + DAY, limit: 50 }).facts.map((f) => f.id),
    history: store.history('s4', 'p0').map((f) => [f.id, f.status]),
    result: store.resultOf('op-4') ?? null,
  };
}

test('a batch given once its transaction is open is applied as applyBatch applies it, reads before that answering from what is committed', async () => {
  const [a, b] = [tempDir(), tempDir()];
  const plain = openShardStore({ path: a.path, domain: 'd', predicates: PREDICATES, durability: 'meta' });
  const ahead = openShardStore({ path: b.path, domain: 'd', predicates: PREDICATES, durability: 'meta' });
  try {
    for (const store of [plain, ahead]) await store.applyBatch(facts(1, 3));
    const expected = await plain.applyBatch(facts(4, 2), { tailHash: 'h5' });
    const before = reads(ahead);
    const { ready, give } = later();
    const applying = ahead.applyBatchWhenReady!(ready);
    await transactionOpen(ahead);
    assert.equal(reads(ahead), before, 'reads in the open transaction see only what is committed');
    give({ batch: facts(4, 2), options: { tailHash: 'h5' } });
    assert.equal(await applying, expected);
    assert.is(ahead.appliedSeq, 5);
    assert.is(ahead.tailHash(), 'h5');
    assert.is(ahead.digest(), plain.digest());
    assert.equal(reads(ahead), reads(plain));
  } finally {
    await plain.close();
    await ahead.close();
    a.remove();
    b.remove();
  }
});

test('a batch known before lmdb-js opens the transaction is applied in it at once', async () => {
  const dir = tempDir();
  const store = openShardStore({ path: dir.path, domain: 'd', predicates: PREDICATES, durability: 'meta' });
  try {
    const results = await store.applyBatchWhenReady!(Promise.resolve({ batch: facts(1, 4) }));
    assert.equal(results?.map((r) => [r.seq, r.opId, r.status]), facts(1, 4).map((f) => [f.seq, f.entry.opId, 'created']));
    assert.is(store.appliedSeq, 4);
  } finally {
    await store.close();
    dir.remove();
  }
});

test('given nothing, the open transaction is aborted empty: nothing applied, and the next batch commits', async () => {
  const dir = tempDir();
  const store = openShardStore({ path: dir.path, domain: 'd', predicates: PREDICATES, durability: 'meta' });
  try {
    await store.applyBatch(facts(1, 3));
    const digest = store.digest();
    const { ready, give } = later();
    const applying = store.applyBatchWhenReady!(ready);
    await transactionOpen(store);
    give(undefined);
    assert.is(await applying, undefined);
    assert.is(store.appliedSeq, 3);
    assert.is(store.digest(), digest);
    const [r] = await store.applyBatch(facts(4, 1));
    assert.is(r?.status, 'created');
    assert.is(store.appliedSeq, 4);
  } finally {
    await store.close();
    dir.remove();
  }
});

test('a batch applyBatch would refuse is refused the same way, and nothing is applied', async () => {
  const dir = tempDir();
  const store = openShardStore({ path: dir.path, domain: 'd', predicates: PREDICATES, durability: 'meta' });
  try {
    await store.applyBatch(facts(1, 2));
    const { ready, give } = later();
    const applying = store.applyBatchWhenReady!(ready);
    await transactionOpen(store);
    give({ batch: [...facts(4, 1), ...facts(3, 1)] });
    await applying.then(
      () => assert.unreachable('sequences that do not increase are refused'),
      (err: Error) => assert.match(err.message, 'sequences must increase'),
    );
    assert.is(store.appliedSeq, 2);
    assert.is((await store.applyBatch(facts(3, 1)))[0]?.status, 'created');
  } finally {
    await store.close();
    dir.remove();
  }
});

test('close() while the transaction waits for its batch closes once the batch is given', async () => {
  const dir = tempDir();
  const store = openShardStore({ path: dir.path, domain: 'd', predicates: PREDICATES, durability: 'meta' });
  await store.applyBatch(facts(1, 1));
  const { ready, give } = later();
  const applying = store.applyBatchWhenReady!(ready);
  await transactionOpen(store);
  let closed = false;
  const closing = store.close().then(() => (closed = true));
  await new Promise((resolve) => setImmediate(resolve));
  assert.is(closed, false, 'the store waits for the open transaction');
  give({ batch: facts(2, 1) });
  assert.is((await applying)?.[0]?.status, 'created');
  await closing;
  const reopened = openShardStore({ path: dir.path, domain: 'd', predicates: PREDICATES, durability: 'meta' });
  try {
    assert.is(reopened.appliedSeq, 2, 'the batch given before the close was committed');
  } finally {
    await reopened.close();
    dir.remove();
  }
});

test('without a write thread (durability none) the batch is applied the ordinary way', async () => {
  const dir = tempDir();
  const store = openShardStore({ path: dir.path, domain: 'd', predicates: PREDICATES, durability: 'none' });
  try {
    const { ready, give } = later();
    const applying = store.applyBatchWhenReady!(ready);
    give({ batch: facts(1, 2) });
    assert.is((await applying)?.length, 2);
    assert.is(store.appliedSeq, 2);
    assert.is(await store.applyBatchWhenReady!(Promise.resolve(undefined)), undefined);
    assert.is(store.appliedSeq, 2);
  } finally {
    await store.close();
    dir.remove();
  }
});

test.run();
