/**
 * Worker thread behind `inspectStoreCopy` (snapshot-file.ts): opens a store copy, reads its applied seq, tail hash,
 * format, leadership epoch and content digest, closes it, and posts them back. Off the main thread because opening a
 * store and digesting it take seconds at a million facts.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { open } from 'lmdb';
import { unpack } from 'msgpackr';
import { openShardStore, type ShardStoreOptions } from '../shards/index.ts';
import type { StoreFacts } from './snapshot-file.ts';

const { dir, options } = workerData as { dir: string; options: Omit<ShardStoreOptions, 'path'> };

/** `meta/format` as stored (a msgpack number, see shards/tables.ts), read before the store would refuse it. */
async function storedFormat(path: string): Promise<number | undefined> {
  const env = open({ path, maxDbs: 16, readOnly: false });
  try {
    const bytes = env.openDB<Buffer, string>('meta', { encoding: 'binary' }).getBinary('format');
    return bytes === undefined ? undefined : (unpack(bytes) as number);
  } finally {
    await env.close();
  }
}

async function inspect(): Promise<StoreFacts> {
  const format = await storedFormat(dir);
  // Nothing is written to a copy being inspected, so nothing needs syncing.
  const store = openShardStore({ ...options, path: dir, durability: 'none' });
  try {
    return { appliedSeq: store.appliedSeq, tailHash: store.tailHash(), format, digest: store.digest(), epoch: store.leadership()?.epoch ?? 0 };
  } finally {
    await store.close();
  }
}

inspect().then(
  (facts) => parentPort?.postMessage({ ok: true, facts }),
  (err: unknown) => parentPort?.postMessage({ ok: false, error: (err as Error)?.message ?? String(err) }),
);
