/**
 * The peer a user would build instead of shardmind: one central Redis, facts as hashes, an inverted index as one
 * sorted set per word and a set per subject. Started by the bench on a free loopback port in a temp dir with
 * `--save '' --appendonly yes --appendfsync always`, so every acknowledged write has been fsynced to the AOF —
 * durability comparable to shardmind's logged, synced write.
 *
 * remember = MULTI; HSET fact:<id> …; ZADD w:<word> 1 <id> per word; SADD s:<subject> <id>; EXEC (one round trip).
 * recall   = ZUNIONSTORE tmp over the query's words (score = words matched); ZREVRANGE tmp 0 9; DEL tmp (one
 *            round trip), then HGETALL of the ten best (a second round trip).
 */
import { spawnSync } from 'node:child_process';
import { freePort } from '../../cli/index.ts';
import { waitForLine } from '../cleanup.ts';
import type { PeerContext } from '../context.ts';
import type { MemoryTarget, TargetOp } from '../target.ts';
import { factAt, queryAt } from '../workload.ts';
import { RespClient } from './resp.ts';

const RECALL_LIMIT = 10;

export function redisVersion(): string {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? (/v=(\S+)/.exec(r.stdout)?.[1] ?? r.stdout.trim()) : 'not installed';
}

export async function startRedisTarget(ctx: PeerContext): Promise<MemoryTarget> {
  const dir = ctx.cleanup.tempDir('redis');
  const port = await freePort();
  const child = ctx.cleanup.spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
    '--save', '', '--appendonly', 'yes', '--appendfsync', 'always', '--protected-mode', 'yes',
  ]);
  await waitForLine(child, /Ready to accept connections/, 15_000);
  const client = await RespClient.connect(port);
  ctx.cleanup.add('close redis client', () => client.close());
  let tmpKeys = 0;

  const rememberCommands = (i: number, now: number): (string | number)[][] => {
    const f = factAt(i);
    const id = `f${i}`;
    return [
      ['HSET', `fact:${id}`, 'text', f.text, 'subject', f.subject, 'predicate', f.predicate, 'object', f.object,
        'confidence', 0.8, 'recordedAt', now],
      ...f.words.map((w) => ['ZADD', `w:${w}`, 1, id]),
      ['SADD', `s:${f.subject}`, id],
    ];
  };

  const ops: TargetOp[] = [
    {
      name: 'remember',
      kind: 'remember',
      run: async (i) => {
        const replies = await client.pipeline([['MULTI'], ...rememberCommands(i, Date.now()), ['EXEC']]);
        if (!Array.isArray(replies[replies.length - 1])) throw new Error('redis: EXEC failed');
        return 1;
      },
    },
    {
      name: 'recall',
      kind: 'recall',
      run: async (i, stored) => {
        const q = queryAt(i, stored);
        const tmp = `tmp:${tmpKeys++}`;
        const [, ids] = await client.pipeline([
          ['ZUNIONSTORE', tmp, q.words.length, ...q.words.map((w) => `w:${w}`)],
          ['ZREVRANGE', tmp, 0, RECALL_LIMIT - 1],
          ['DEL', tmp],
        ]);
        if (!Array.isArray(ids)) throw new Error('redis: ZREVRANGE returned no list');
        if (ids.length === 0) return 0;
        const facts = await client.pipeline(ids.map((id) => ['HGETALL', `fact:${String(id)}`]));
        return facts.length;
      },
    },
  ];

  return {
    name: 'redis',
    ops,
    processes: () => ({ redis: child.pid! }),
    // Preloading is not measured: the AOF is fsynced once at the end instead of after every pipeline.
    preload: async (from, to) => {
      await client.call('CONFIG', 'SET', 'appendfsync', 'no');
      const BATCH = 500;
      const now = Date.now();
      const inFlight: Promise<unknown>[] = [];
      for (let start = from; start < to; start += BATCH) {
        const cmds: (string | number)[][] = [];
        for (let i = start; i < Math.min(to, start + BATCH); i++) cmds.push(...rememberCommands(i, now));
        inFlight.push(client.pipeline(cmds));
        if (inFlight.length >= 8) await inFlight.shift();
      }
      await Promise.all(inFlight);
      await client.call('CONFIG', 'SET', 'appendfsync', 'always');
    },
    close: async () => client.close(),
  };
}
