/**
 * The data directory's lock (cli/data-lock.ts): one holder at a time, named in the refusal; released on request;
 * a lock left by a process that is no longer running (kill -9) is taken over.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataDirLockedError, LOCK_FILE, lockDataDir } from '../../cli/data-lock.ts';

function withDir(run: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'sm-lock-'));
  try {
    run(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a second lock on the same directory is refused, naming the holder; after release it is taken', () =>
  withDir((dir) => {
    const first = lockDataDir(join(dir, 'data'), 'shardmind up');
    const held = JSON.parse(readFileSync(first.path, 'utf8')) as { pid: number; command: string };
    assert.is(held.pid, process.pid);
    try {
      lockDataDir(join(dir, 'data'), 'shardmind host --node mini-1');
      assert.unreachable('the second lock was granted');
    } catch (err) {
      assert.instance(err, DataDirLockedError);
      assert.match((err as Error).message, new RegExp(`in use by shardmind up \\(pid ${process.pid},`));
    }
    first.release();
    first.release();
    assert.is(existsSync(first.path), false);
    const second = lockDataDir(join(dir, 'data'), 'shardmind up');
    assert.ok(existsSync(second.path));
    second.release();
  }));

test('a lock left by a process that no longer runs is taken over; an unreadable fresh one is not', () =>
  withDir((dir) => {
    // A real pid that has exited: a child that ran and was reaped.
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: gone, host: hostname(), command: 'shardmind up', since: 'earlier' }));
    const lock = lockDataDir(dir, 'shardmind up');
    assert.is((JSON.parse(readFileSync(lock.path, 'utf8')) as { pid: number }).pid, process.pid);
    lock.release();

    // This process's own pid, but written by an earlier process that had it (a container's pid 1 after a kill -9):
    // this process does not hold it, so it is stale.
    writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ pid: process.pid, host: hostname(), command: 'shardmind up', since: 'before the restart' }));
    const again = lockDataDir(dir, 'shardmind up');
    assert.is((JSON.parse(readFileSync(again.path, 'utf8')) as { since: string }).since === 'before the restart', false);
    again.release();

    // Empty, as between another start's create and its write: refused while that young.
    writeFileSync(join(dir, LOCK_FILE), '');
    assert.throws(() => lockDataDir(dir, 'shardmind up'), (err: Error) => err instanceof DataDirLockedError && /being taken/.test(err.message));
  }));

test.run();
