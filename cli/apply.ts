/**
 * `shardmind apply [--dry-run]`: the config is the source of truth. Compares each domain's placement in
 * `cluster.config.ts` (leader + standbys) with what the running cluster reports, and carries out the difference,
 * add before remove: missing followers first, then a migration for a domain led by the wrong node, then
 * `unfollow` for replicas the config no longer places.
 */
import { orConfigError, parseCommandFlags } from './args.ts';
import type { Command } from './command.ts';
import type { NatsConnection, JetStreamManager } from 'nats';
import { ShardmindError } from '../protocol/index.ts';
import { configWarnings, type ClusterConfig } from '../config/index.ts';
import { clusterStatus, ctlRequest, domainViews, type DomainView } from './control-client.ts';
import { connectCluster, resolveTarget } from './cluster-connect.ts';
import { migrateShard, renderProgress } from './migrate.ts';
import { stdio, renderTable, type Io } from './status.ts';

export type PlanStep =
  | { readonly op: 'follow'; readonly domain: string; readonly node: string }
  | { readonly op: 'migrate'; readonly domain: string; readonly from: string | undefined; readonly to: string }
  | { readonly op: 'unfollow'; readonly domain: string; readonly node: string };

/**
 * The steps that take the cluster from `views` to the config's placement, in a safe order: every `follow` first
 * (a new standby or migration target starts catching up), then migrations, then `unfollow`s — including the
 * old leader of a migration when the config does not keep it as a standby. Domains nobody runs are left to the
 * hosts (they start their placed actors themselves); a domain with no leader is not migrated (failover is
 * in progress: apply again later).
 */
export function planPlacement(config: ClusterConfig, views: ReadonlyMap<string, DomainView>, live: ReadonlySet<string>): PlanStep[] {
  const follows: PlanStep[] = [];
  const migrations: PlanStep[] = [];
  const unfollows: PlanStep[] = [];
  for (const d of config.domains) {
    const want = config.placement[d.name];
    const v = views.get(d.name);
    if (!want || !v) continue;
    const wanted = new Set([want.leader, ...want.standbys]);
    const running = new Set([...(v.leader ? [v.leader] : []), ...v.followers]);
    for (const node of [want.leader, ...want.standbys]) {
      if (!running.has(node) && live.has(node)) follows.push({ op: 'follow', domain: d.name, node });
    }
    if (v.leader && v.leader !== want.leader && live.has(want.leader)) {
      migrations.push({ op: 'migrate', domain: d.name, from: v.leader, to: want.leader });
    }
    for (const node of running) {
      if (wanted.has(node)) continue;
      if (node === v.leader && !live.has(want.leader)) continue; // never remove the only leader
      unfollows.push({ op: 'unfollow', domain: d.name, node });
    }
  }
  return [...follows, ...migrations, ...unfollows];
}

export function renderPlan(steps: readonly PlanStep[]): string {
  if (steps.length === 0) return 'the cluster matches the config: nothing to do\n';
  return renderTable(
    ['#', 'STEP', 'DOMAIN', 'NODE'],
    steps.map((s, i) => [
      String(i + 1),
      s.op,
      s.domain,
      s.op === 'migrate' ? `${s.from ?? '?'} → ${s.to}` : s.node,
    ]),
  );
}

/** Carries out the plan step by step; stops at the first failure (the rest is still to do: run apply again). */
export async function executePlan(
  nc: NatsConnection,
  jsm: JetStreamManager,
  steps: readonly PlanStep[],
  nodes: readonly string[],
  io: Io,
): Promise<void> {
  for (const [i, s] of steps.entries()) {
    const n = `${i + 1}/${steps.length}`;
    if (s.op === 'follow' || s.op === 'unfollow') {
      await ctlRequest(nc, s.node, s.op, { domain: s.domain }, 10_000);
      io.out(`${n} ${s.op} ${s.domain} on ${s.node}: done\n`);
    } else {
      let last = 0;
      const r = await migrateShard(nc, jsm, {
        domain: s.domain,
        to: s.to,
        nodes,
        onProgress: (p) => {
          if (Date.now() - last > 1_000 || p.phase !== 'catching up') {
            last = Date.now();
            io.out(`${n}   ${renderProgress(p)}\n`);
          }
        },
      });
      io.out(`${n} migrate ${s.domain} ${r.from} → ${r.to}: done, gap ${r.gapCommandMs ?? 0} ms (probe ${r.gapProbeMs ?? 'n/a'} ms)\n`);
    }
  }
}

const USAGE = `usage: shardmind apply [--config FILE] [--servers URL,…] [--dry-run] [--json]

Makes the running cluster match the config's placement, add before remove: missing standbys start following first,
then each domain led by the wrong node migrates (as \`shardmind migrate\`), then replicas the config no longer places
stop following. --dry-run prints the plan and changes nothing.`;

export async function runApply(argv: readonly string[], io: Io = stdio): Promise<number> {
  const parsed = parseCommandFlags(
    argv,
    { config: { type: 'string' }, servers: { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } },
    USAGE,
    io,
  );
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  // `apply` always needs the config (it is what the cluster is compared against), even when --servers is given.
  const target = await orConfigError(io, () =>
    resolveTarget({ ...(values.config ? { config: values.config } : {}), ...(values.servers ? { servers: values.servers } : {}) }),
  );
  if (target === 1) return 1;
  const config: ClusterConfig = target.config!;
  for (const line of configWarnings(config)) io.err(`WARNING: ${line}\n`);
  const nc = await connectCluster(target.servers, 'shardmind apply');
  try {
    const statuses = await clusterStatus(nc, target.nodes);
    const live = new Set(statuses.filter((s) => s.ok).map((s) => s.node));
    for (const s of statuses) if (!s.ok) io.err(`warning: ${s.node} did not answer (${s.error}); it is left out of the plan\n`);
    const steps = planPlacement(config, domainViews(statuses), live);
    if (values.json) io.out(JSON.stringify({ v: 1, dryRun: Boolean(values['dry-run']), steps }) + '\n');
    else io.out(renderPlan(steps));
    if (values['dry-run'] || steps.length === 0) return 0;
    const jsm = await nc.jetstreamManager({ checkAPI: false, timeout: 2_000 });
    await executePlan(nc, jsm, steps, target.nodes, values.json ? { out: () => {}, err: io.err } : io);
    return 0;
  } catch (err) {
    if (err instanceof ShardmindError) {
      io.err(`apply failed: ${err.code}: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    await nc.close();
  }
}

/** The dispatcher row (`cli/main.ts`). */
export const applyCommand: Command = {
  summary: 'make the running cluster match cluster.config.ts placement (follow → migrate → unfollow); --dry-run plans',
  usage: USAGE,
  run: (args) => runApply(args),
};
