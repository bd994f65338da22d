/**
 * `shardmind apply [--dry-run]`: the config is the source of truth. Compares each domain's placement in
 * `cluster.config.ts` (leader + standbys) with what the running cluster reports, and carries out the difference,
 * add before remove: missing followers first, then a migration for a domain led by the wrong node, then
 * `unfollow` for replicas the config no longer places. A domain the config has and no host runs (one just added to
 * the file) is a `restart` step it cannot take itself: hosts read the config only at start.
 */
import { orConfigError, parseCommandFlags } from './args.ts';
import type { Command } from './command.ts';
import type { NatsConnection, JetStreamManager } from 'nats';
import { ErrorCode, ShardmindError } from '../protocol/index.ts';
import { configDigest, configWarnings, type ClusterConfig } from '../config/index.ts';
import { clusterStatus, ctlRequest, domainViews, noNodeAnswered, noNodeAnsweredMessage, UP_NODE, type DomainView } from './control-client.ts';
import { connectCluster, resolveTarget } from './cluster-connect.ts';
import { migrateShard, renderProgress } from './migrate.ts';
import { stdio, renderTable, type Io } from './status.ts';

export type PlanStep =
  | { readonly op: 'follow'; readonly domain: string; readonly node: string }
  | { readonly op: 'migrate'; readonly domain: string; readonly from: string | undefined; readonly to: string }
  | { readonly op: 'unfollow'; readonly domain: string; readonly node: string }
  /**
   * Done by hand, not by apply: the config has `domain`, and no host that answered runs it, though `nodes` (the
   * placed ones that answered) should. Hosts read the config only at start, so every host must be restarted with
   * this file: the placed ones start the domain's shards, and every router learns the domain (docs/operations.md,
   * "Adding a domain").
   */
  | { readonly op: 'restart'; readonly domain: string; readonly nodes: readonly string[] };

/**
 * The steps that take the cluster from `views` to the config's placement, in a safe order: every `follow` first
 * (a new standby or migration target starts catching up), then migrations, then `unfollow`s — including the
 * old leader of a migration when the config does not keep it as a standby. A domain no answering host runs while a
 * placed host answered is a `restart` step, listed first (a host runs its placed actors from start, so such a host
 * runs another config: a `follow` would be refused as an unknown domain); one whose placed hosts all stayed silent
 * is left out (the warnings name them). A domain with no leader is not migrated (failover is in progress: apply
 * again later).
 */
export function planPlacement(config: ClusterConfig, views: ReadonlyMap<string, DomainView>, live: ReadonlySet<string>): PlanStep[] {
  const restarts: PlanStep[] = [];
  const follows: PlanStep[] = [];
  const migrations: PlanStep[] = [];
  const unfollows: PlanStep[] = [];
  for (const d of config.domains) {
    const want = config.placement[d.name];
    const v = views.get(d.name);
    if (!want) continue;
    if (!v) {
      const placed = [want.leader, ...want.standbys].filter((node) => live.has(node));
      if (placed.length > 0) restarts.push({ op: 'restart', domain: d.name, nodes: placed });
      continue;
    }
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
  return [...restarts, ...follows, ...migrations, ...unfollows];
}

/**
 * The plan as a table, and below it what each `restart` step asks of the operator. `digests` (the hosts' config
 * digests against this file's) says whether the hosts already run this file.
 */
export function renderPlan(steps: readonly PlanStep[], digests?: { readonly file: string; readonly hosts: ReadonlyMap<string, string> }): string {
  if (steps.length === 0) return 'the cluster matches the config: nothing to do\n';
  const table = renderTable(
    ['#', 'STEP', 'DOMAIN', 'NODE'],
    steps.map((s, i) => [
      String(i + 1),
      s.op === 'restart' ? 'restart (by hand)' : s.op,
      s.domain,
      s.op === 'migrate' ? `${s.from ?? '?'} → ${s.to}` : s.op === 'restart' ? `every host (placed: ${s.nodes.join(', ')})` : s.node,
    ]),
  );
  const restarts = steps.filter((s) => s.op === 'restart');
  if (restarts.length === 0) return table;
  const stale = digests === undefined ? [] : [...digests.hosts].filter(([, digest]) => digest !== digests.file).map(([node]) => node);
  const running =
    digests === undefined
      ? ''
      : stale.length > 0
        ? ` ${stale.join(', ')} ${stale.length === 1 ? 'runs' : 'run'} another config than this file (${digests.file}).`
        : ' The hosts that answered report this file\'s config digest, so their shard for it did not start: see their logs.';
  const lines = restarts.map(
    (s) =>
      `${s.domain}: in the config, but no host that answered runs it (placed on ${s.nodes.join(', ')}).${running} Hosts read ` +
      `cluster.config.ts only at start: copy this file to every Mini and restart the hosts one at a time (each hands ` +
      `off what it leads on SIGTERM); the placed ones start ${s.domain}'s shards, and every router learns the domain. ` +
      `Then run apply again (docs/operations.md, "Adding a domain").\n`,
  );
  return `${table}\n${lines.join('')}`;
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
    if (s.op === 'restart') {
      io.out(`${n} restart every host with this config for ${s.domain}: left to you (see above)\n`);
    } else if (s.op === 'follow' || s.op === 'unfollow') {
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
stop following. --dry-run prints the plan and changes nothing. A domain in the config that no host runs (a new one)
needs every host restarted with the file: apply says so, carries out the rest, and exits 1.
It takes no --nodes (status, migrate, compact and prune do): the nodes it asks are the config's, since their
placement is what it applies. \`shardmind up\` runs one node, ${UP_NODE}, leading every domain: it has no placement to apply.`;

/** Why `apply` refuses `--nodes`, said instead of parseArgs' "Unknown option" (walkthrough-session13 F10). */
const NODES_REFUSAL =
  `shardmind apply: --nodes: apply asks the config's nodes, because their placement is what it applies (a node left ` +
  `out would be planned for as if it were down). Against \`shardmind up\` there is nothing to apply: it runs every ` +
  `domain on its one node, ${UP_NODE} (see \`shardmind status --nodes ${UP_NODE}\`).\n`;

export async function runApply(argv: readonly string[], io: Io = stdio): Promise<number> {
  const parsed = parseCommandFlags(
    argv,
    { config: { type: 'string' }, servers: { type: 'string' }, nodes: { type: 'string' }, 'dry-run': { type: 'boolean' }, json: { type: 'boolean' } },
    USAGE,
    io,
  );
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  if (values.nodes !== undefined) {
    io.err(NODES_REFUSAL);
    return 2;
  }
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
    // With no node answering there is nothing to compare the placement with: "the cluster matches the config:
    // nothing to do" was said against a `shardmind up` (node local) all the same.
    if (noNodeAnswered(statuses)) {
      io.err(`apply failed: ${ErrorCode.UNAVAILABLE}: ${noNodeAnsweredMessage(statuses, false)}; nothing to compare the config's placement with. \`shardmind up\` runs one node, ${UP_NODE}, leading every domain: it has no placement to apply\n`);
      return 1;
    }
    const live = new Set(statuses.filter((s) => s.ok).map((s) => s.node));
    for (const s of statuses) if (!s.ok) io.err(`warning: ${s.node} did not answer (${s.error}); it is left out of the plan\n`);
    const steps = planPlacement(config, domainViews(statuses), live);
    const hostDigests = new Map(statuses.flatMap((s) => (s.ok && s.status.configDigest !== undefined ? [[s.node, s.status.configDigest] as const] : [])));
    if (values.json) io.out(JSON.stringify({ v: 1, dryRun: Boolean(values['dry-run']), steps }) + '\n');
    else io.out(renderPlan(steps, { file: configDigest(config), hosts: hostDigests }));
    // A restart is the operator's to do: the cluster does not match the config until it is done.
    const byHand = steps.some((s) => s.op === 'restart');
    if (values['dry-run'] || steps.length === 0) return 0;
    const jsm = await nc.jetstreamManager({ checkAPI: false, timeout: 2_000 });
    await executePlan(nc, jsm, steps, target.nodes, values.json ? { out: () => {}, err: io.err } : io);
    return byHand ? 1 : 0;
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
