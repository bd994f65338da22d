/**
 * One process per data directory: a lock file holding the owner's pid, taken before anything in the directory is
 * opened.
 *
 * Why: LMDB lets several processes open one environment, and nats-server 2.9 does not lock its JetStream store dir,
 * so two `shardmind up` runs on the same `--data` (two terminals, a different `--port` each) both started, both led
 * every domain at different epochs, and acknowledged writes were lost when one of them restarted and rebuilt its
 * replica from a log the other had written to. A lock file with the pid (as PostgreSQL's postmaster.pid) names the
 * other process in the refusal, and a lock left by a process that no longer runs (kill -9, a crash) is taken over.
 */
import { closeSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

export const LOCK_FILE = 'shardmind.lock';

/** The lock files this process holds: a file naming this pid that is not among them was left by an earlier process
 * that had the same pid (a container's pid 1, restarted after a kill -9), not by this one. */
const held = new Set<string>();

interface LockOwner {
  readonly pid: number;
  readonly host: string;
  readonly command: string;
  readonly since: string;
}

/** Another live process holds the data directory. */
export class DataDirLockedError extends Error {
  override readonly name = 'DataDirLockedError';
}

export interface DataLock {
  readonly path: string;
  /** Removes the lock file if it is still this process's. Idempotent. */
  release(): void;
}

/**
 * Takes `<dir>/shardmind.lock` for this process (creating `dir`), or throws DataDirLockedError naming the process
 * that holds it. `command` says what holds it, for that message (e.g. "shardmind up").
 */
export function lockDataDir(dir: string, command: string): DataLock {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, LOCK_FILE);
  const me: LockOwner = { pid: process.pid, host: hostname(), command, since: new Date().toISOString() };
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (attempt >= 3) throw new DataDirLockedError(`${dir} is being taken by another process starting now (${path}): stop it first, or pass another data directory.`);
      const owner = readOwner(path);
      if (owner === undefined && justCreated(path)) {
        throw new DataDirLockedError(`${dir} is being taken by another process starting now (${path}): stop it first, or pass another data directory.`);
      }
      if (owner !== undefined && stillHolds(owner, held.has(path))) {
        const where = owner.host === me.host ? `pid ${owner.pid}` : `pid ${owner.pid} on ${owner.host}`;
        throw new DataDirLockedError(
          `${dir} is in use by ${owner.command} (${where}, since ${owner.since}): stop it first, or pass another data directory. ` +
            `(If that process is gone, delete ${path}.)`,
        );
      }
      // Left by a process that is no longer running: take it over — unless another start took it over meanwhile
      // (then the file names that process, and the next attempt refuses).
      if (readOwner(path)?.since !== owner?.since) continue;
      unlinkSync(path);
      continue;
    }
    try {
      writeSync(fd, JSON.stringify(me) + '\n');
    } finally {
      closeSync(fd);
    }
    held.add(path);
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      held.delete(path);
      process.off('exit', release);
      if (readOwner(path)?.pid === me.pid) unlinkSync(path);
    };
    // Also on an exit that skips the drain (a second Ctrl-C, an uncaught error): a kill -9 leaves it, and the next
    // start sees the pid is gone.
    process.on('exit', release);
    return { path, release };
  }
}

function readOwner(path: string): LockOwner | undefined {
  try {
    const owner = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockOwner>;
    if (typeof owner.pid !== 'number' || typeof owner.host !== 'string') return undefined;
    return { pid: owner.pid, host: owner.host, command: String(owner.command ?? 'shardmind'), since: String(owner.since ?? '?') };
  } catch {
    // Unreadable or half-written (a crash between create and write): nobody can be shown to hold it.
    return undefined;
  }
}

/** An unreadable lock file this young is another start between its create and its write, not a crash's leftover. */
function justCreated(path: string): boolean {
  try {
    return Date.now() - statSync(path).mtimeMs < 10_000;
  } catch {
    return false;
  }
}

/**
 * Whether the recorded owner may still be running. On another machine (a shared disk) we cannot tell: assume so. This
 * pid holds it only if this process took it (`heldHere`): otherwise an earlier process with the same pid left it.
 */
function stillHolds(owner: LockOwner, heldHere: boolean): boolean {
  if (owner.host !== hostname()) return true;
  if (owner.pid === process.pid) return heldHere;
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
