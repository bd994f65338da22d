/**
 * `applyBatch(…, { tailHash })`: the caller's hash of the entry at the batch's last sequence is kept with
 * `appliedSeq` in the same transaction, survives a reopen, is forgotten (undefined) once a later batch carries none,
 * moves with a rejected entry too, and is not memory: stores that differ only in it have the same digest.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { openShardStore, type LogEntry } from '../../shards/index.ts';
import { PREDICATES, randomLog, tempDir } from './helpers.ts';

test('tailHash - kept with appliedSeq, across a reopen, not in the digest', async () => {
  const log = randomLog(40, 7);
  const dirA = tempDir('shardmind-tail-');
  const dirB = tempDir('shardmind-tail-');
  try {
    let a = openShardStore({ path: dirA.path, domain: 'tail', predicates: PREDICATES });
    const b = openShardStore({ path: dirB.path, domain: 'tail', predicates: PREDICATES });
    assert.is(a.tailHash(), undefined, 'an empty store knows no tail');

    await a.applyBatch(log.slice(0, 20), { tailHash: 'hash-of-20' });
    await b.applyBatch(log.slice(0, 20));
    assert.is(a.tailHash(), 'hash-of-20');
    assert.is(b.tailHash(), undefined, 'a batch without one records none');
    assert.is(a.digest(), b.digest(), 'the tail hash is bookkeeping, not memory');

    // Replayed entries change nothing, the recorded tail included.
    assert.equal(await a.applyBatch(log.slice(0, 20), { tailHash: 'other' }), []);
    assert.is(a.tailHash(), 'hash-of-20');

    await a.close();
    a = openShardStore({ path: dirA.path, domain: 'tail', predicates: PREDICATES });
    assert.is(a.appliedSeq, log[19]!.seq);
    assert.is(a.tailHash(), 'hash-of-20', 'it survives a reopen');

    // An entry the store rejects (an unknown op) is still applied, as a rejection: the tail moves with it.
    const bad = { ...log[20]!, entry: { ...log[20]!.entry, op: 'no-such-op' } as unknown as LogEntry };
    const [rejected] = await a.applyBatch([bad], { tailHash: 'hash-of-21' });
    await b.applyBatch([bad]);
    assert.is(rejected?.status, 'rejected');
    assert.is(a.tailHash(), 'hash-of-21');

    await a.applyBatch(log.slice(21, 30));
    assert.is(a.tailHash(), undefined, 'a later batch without one leaves the store not knowing its tail');
    await a.applyBatch(log.slice(30), { tailHash: 'hash-of-40' });
    await b.applyBatch(log.slice(21));
    assert.is(a.tailHash(), 'hash-of-40');
    assert.is(a.digest(), b.digest());
    await a.close();
    await b.close();
  } finally {
    dirA.remove();
    dirB.remove();
  }
});

test.run();
