/**
 * `shardmind prune <domain> --inactive-days N [--decayed-below C]`: the memory's own compaction, on demand. Facts
 * superseded or retracted more than N days ago, and (with `--decayed-below`) active facts whose confidence has
 * decayed below C, are forgotten on every replica: their text leaves the store, recall and history; tombstones stay.
 * Finds the domain's leader (`sm.ctl.<node>.status`) and asks it (`sm.ctl.<leader>.prune`). The config's
 * `compaction.pruneInactiveDays` / `pruneDecayedBelow` do the same before every compaction.
 */
import type { NatsConnection } from 'nats';
import { DOMAIN_NAME, ErrorCode, ShardmindError } from '../protocol/index.ts';
import { numberFlag, orConfigError, parseCommandFlags, readFlagValues } from './args.ts';
import type { Command } from './command.ts';
import { connectCluster, resolveTarget } from './cluster-connect.ts';
import { ctlRequest, waitForLeader } from './control-client.ts';
import { stdio, type Io } from './status.ts';

/** What the leader answers (actors/shard-actor.ts `PruneReport`). */
export interface PruneResult {
  readonly domain: string;
  readonly node: string;
  readonly pruned: number;
  readonly positions: number;
  readonly ranges: number;
  readonly ms: number;
}

export interface PruneDomainOptions {
  readonly domain: string;
  readonly nodes: readonly string[];
  readonly domains?: readonly string[];
  readonly inactiveDays?: number;
  readonly decayedBelow?: number;
  /** How long to look for a leader. Default 10 s. */
  readonly leaderWaitMs?: number;
  /** How long the leader may take. Default 120 s. */
  readonly timeoutMs?: number;
}

/** Asks the domain's leader to prune; throws `ShardmindError` (BAD_REQUEST, UNKNOWN_DOMAIN, UNAVAILABLE, …). */
export async function pruneDomain(nc: NatsConnection, o: PruneDomainOptions): Promise<PruneResult> {
  if (o.domains && !o.domains.includes(o.domain)) {
    throw new ShardmindError(ErrorCode.UNKNOWN_DOMAIN, `domain "${o.domain}" is not in the cluster config (${o.domains.join(', ')})`);
  }
  const body = {
    domain: o.domain,
    ...(o.inactiveDays !== undefined ? { inactiveDays: o.inactiveDays } : {}),
    ...(o.decayedBelow !== undefined ? { decayedBelow: o.decayedBelow } : {}),
  };
  const leader = await waitForLeader(nc, o.nodes, o.domain, o.leaderWaitMs);
  return ctlRequest<PruneResult>(nc, leader, 'prune', body, o.timeoutMs ?? 120_000);
}

const USAGE = `usage: shardmind prune <domain> [--inactive-days N] [--decayed-below C] [--config FILE] [--servers URL,…] [--nodes NAME,…] [--json]

Forgets, on every replica, facts superseded or retracted more than N days ago (--inactive-days; 0 forgets every
closed fact) and active facts whose confidence decayed below C (--decayed-below, 0 < C < 1). At least one of the
two. Their text leaves the store, recall and history; a tombstone stays under each id. There is no undo.`;

export async function runPrune(argv: readonly string[], io: Io = stdio): Promise<number> {
  const parsed = parseCommandFlags(
    argv,
    {
      config: { type: 'string' },
      servers: { type: 'string' },
      nodes: { type: 'string' },
      json: { type: 'boolean' },
      'inactive-days': { type: 'string' },
      'decayed-below': { type: 'string' },
    },
    USAGE,
    io,
    1,
  );
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const domain = positionals[0];
  const usage = (message: string): number => {
    io.err(`${message}\n${USAGE}\n`);
    return 2;
  };
  if (!domain) return usage('<domain> is required');
  if (!DOMAIN_NAME.test(domain)) return usage(`<domain>: "${domain}" must match ${DOMAIN_NAME}`);
  // Strict readers: an empty `--inactive-days=` (a script's unset $DAYS) was Number('') = 0, "forget every closed fact".
  const flags = readFlagValues(io, 'prune', () => ({
    days: numberFlag('inactive-days', values['inactive-days'], { min: 0 }, 'a number of days ≥ 0 (0 forgets every closed fact)'),
    below: numberFlag('decayed-below', values['decayed-below'], { min: 0, max: 1, minExclusive: true, maxExclusive: true }, 'a confidence in (0, 1)'),
  }));
  if (typeof flags === 'number') return flags;
  const { days, below } = flags;
  if (days === undefined && below === undefined) return usage('say what to prune: --inactive-days N, --decayed-below C, or both');
  const target = await orConfigError(io, () => resolveTarget(values));
  if (target === 1) return 1;
  let nc: NatsConnection | undefined;
  try {
    nc = await connectCluster(target.servers, 'shardmind prune');
    const r = await pruneDomain(nc, {
      domain,
      nodes: target.nodes,
      ...(target.config ? { domains: target.config.domains.map((d) => d.name) } : {}),
      ...(days !== undefined ? { inactiveDays: days } : {}),
      ...(below !== undefined ? { decayedBelow: below } : {}),
    });
    if (values.json) io.out(`${JSON.stringify(r)}\n`);
    else io.out(`${domain}: ${r.node} forgot ${r.pruned} fact${r.pruned === 1 ? '' : 's'} (examined store positions 1–${r.positions}, in ${r.ranges} log entr${r.ranges === 1 ? 'y' : 'ies'}, ${r.ms} ms)\n`);
    return 0;
  } catch (err) {
    if (err instanceof ShardmindError) {
      io.err(`prune failed: ${err.code}: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    await nc?.close();
  }
}

/** The dispatcher row (`cli/main.ts`). */
export const pruneCommand: Command = {
  summary: 'forget facts closed long ago or decayed away, on every replica (the memory\'s own compaction)',
  usage: USAGE,
  run: (args) => runPrune(args),
};
