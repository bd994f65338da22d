/**
 * A shard store as one file, for snapshots: a consistent copy of the open LMDB environment (`mdb_env_copy2` through
 * lmdb-js `backup`, which copies under one read transaction on a worker thread while writes go on), and what a copy
 * holds (applied seq, tail hash, format, content digest), read in a worker thread.
 *
 * Why a worker: opening a store rebuilds its in-memory indexes and `digest()` reads every record — seconds of CPU
 * at a million facts. On the leader that would stall heartbeats past the lease (a failover), and on any host it
 * would stall the other shards it runs.
 *
 * The store does not expose its environment, so the copy opens the same path with lmdb-js, which shares the
 * process's already-open environment for that path (reference counted; closing this handle leaves the store's open).
 */
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { open } from 'lmdb';
import type { ShardStoreOptions } from '../shards/index.ts';

/** Longest a store copy's inspection may take: seconds at a million facts, so minutes means it is stuck. */
const INSPECT_TIMEOUT_MS = 5 * 60_000;

/** The data file of an LMDB environment directory. */
export const DATA_FILE = 'data.mdb';

/** What a store copy holds, as its own bytes say. */
export interface StoreFacts {
  readonly appliedSeq: number;
  readonly tailHash: string | undefined;
  /** The stored `meta/format`; undefined for an empty store that never committed. */
  readonly format: number | undefined;
  readonly digest: string;
  readonly epoch: number;
}

/** Why a copy could not be read as a store (another format, a damaged file). */
export class StoreCopyError extends Error {
  override readonly name = 'StoreCopyError';
}

/**
 * Copies the open store at `storePath` into the empty directory `toDir` (created; replaced if present) and returns
 * the copied data file's path. The copy is one committed state of the store (LMDB's read snapshot), whichever it
 * was when the copy began.
 */
export async function copyStore(storePath: string, toDir: string): Promise<string> {
  rmSync(toDir, { recursive: true, force: true });
  mkdirSync(toDir, { recursive: true });
  // Read-only, or lmdb-js opens the main database in a synchronous write transaction on this thread — which waits for
  // LMDB's writer lock while lmdb-js's write thread holds it waiting for this thread to run the store's batch: a
  // deadlock (seen: the leader froze at the first compaction under load). The copy itself takes the writer lock
  // only for a moment, on lmdb-js's worker thread, to read the meta pages.
  const env = open({ path: storePath, readOnly: true });
  try {
    await env.backup(toDir, false);
  } finally {
    await env.close();
  }
  const file = join(toDir, DATA_FILE);
  if (!existsSync(file)) throw new StoreCopyError(`copying ${storePath} produced no ${DATA_FILE}`);
  return file;
}

/** Bytes of a file. */
export function fileBytes(file: string): number {
  return statSync(file).size;
}

/**
 * Opens the store copy in directory `dir` in a worker thread and reports what it holds. Rejects with
 * `StoreCopyError` when it is not a store this version can open (another format, damaged).
 */
export function inspectStoreCopy(dir: string, options: Omit<ShardStoreOptions, 'path'>): Promise<StoreFacts> {
  const worker = new URL('./snapshot-inspect-worker.ts', import.meta.url).href;
  // Workers do not inherit tsx's loader for a .ts entry: load it through tsx's API, as the host itself runs.
  // Resolved here, not in the worker: an eval'd worker resolves bare specifiers from the process's cwd.
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then(({ tsImport }) => tsImport(${JSON.stringify(worker)}, ${JSON.stringify(import.meta.url)}))`;
  return new Promise((resolve, reject) => {
    const w = new Worker(boot, { eval: true, workerData: { dir, options } });
    let settled = false;
    // A wedged worker must not hold a compaction (and every later one, and the host's drain) forever.
    const deadline = setTimeout(() => {
      if (settled) return;
      settled = true;
      void w.terminate();
      reject(new StoreCopyError(`inspecting ${dir}: no answer within ${INSPECT_TIMEOUT_MS / 1000} s`));
    }, INSPECT_TIMEOUT_MS);
    deadline.unref();
    w.once('message', (m: { ok: true; facts: StoreFacts } | { ok: false; error: string }) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      if (m.ok) resolve(m.facts);
      else reject(new StoreCopyError(m.error));
      void w.terminate();
    });
    w.once('error', (err) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      reject(new StoreCopyError(`inspecting ${dir} failed: ${err.message}`));
    });
    w.once('exit', (code) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      reject(new StoreCopyError(`inspecting ${dir}: the worker exited (${code}) without an answer`));
    });
  });
}
