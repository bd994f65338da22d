/**
 * A store that cannot commit says what it could be: the disk for an I/O failure (lmdb-js reports ENOSPC and EIO as
 * plain errors, and a failed commit carries `commitError`), a fault in the code for a TypeError, ReferenceError or
 * RangeError thrown while applying — which the chaos soak (§75) saw reported as "its disk may be full".
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StoreWriteError } from '../../actors/index.ts';

test('an I/O failure of the commit blames the disk', () => {
  const commit = Object.assign(new Error('Commit failed (see commitError for details)'), { commitError: Promise.resolve() });
  for (const [cause, detail] of [
    [commit, 'commit failed: No space left on device (code ENOSPC)'],
    [new Error('MDB_MAP_FULL: Environment mapsize limit reached'), 'MDB_MAP_FULL: Environment mapsize limit reached'],
  ] as const) {
    const e = new StoreWriteError('email', cause, detail);
    assert.is(e.message, `the email store cannot write: ${detail}; its disk may be full`);
    assert.is(e.cause, cause);
  }
});

test('a fault in the code applying the entries does not blame the disk', () => {
  for (const cause of [new TypeError("Cannot read properties of undefined (reading 'seq')"), new ReferenceError('x is not defined'), new RangeError('Invalid array length')]) {
    const e = new StoreWriteError('files', cause, cause.message);
    assert.ok(e.message.startsWith(`the files store cannot write: ${cause.message}; a fault in applying the entries (${cause.name})`), e.message);
    assert.not.match(e.message, /disk may be full/);
  }
});

test.run();
