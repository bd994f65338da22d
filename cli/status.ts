/**
 * `shardmind status [--config FILE] [--servers URL,…] [--nodes a,b] [--json]`: asks every node's
 * `sm.ctl.<node>.status` at once and prints one row per domain × node — role, machine state, applied sequence,
 * lag behind the stream's tail (from the stream leader), where the log now starts (past 1 once it was compacted),
 * epoch, how long ago the leader's heartbeat was heard, how stale a replica read answered there may be, and the log
 * level the replica's build understands (a leader's also says the level it writes at while a replica understands
 * less). Below the table, one line per replica stopped at a log message its build cannot read ("needs upgrade"), and
 * a warning naming the hosts whose config differs from the others' in what every host must agree on (`configDigest`).
 * A domain the config has and no host that answered runs (one just added to the file) gets a row and a line saying
 * what it needs. When no node asked answers at all, one line says so instead (with `--nodes local` against
 * `shardmind up`).
 */
import { durationFlag, MAX_TIMEOUT_MS, orConfigError, parseCommandFlags, readFlagValues } from './args.ts';
import type { Command } from './command.ts';
import type { JetStreamManager } from 'nats';
import { logStream } from '../protocol/index.ts';
import { clusterStatus, noNodeAnswered, noNodeAnsweredMessage, type NodeStatus } from './control-client.ts';
import { connectCluster, resolveTarget } from './cluster-connect.ts';
import { configWarnings, type ClusterConfig } from '../config/index.ts';
import { describeOffset } from '../actors/clock-peers.ts';

export interface Io {
  out(s: string): void;
  err(s: string): void;
}

export const stdio: Io = { out: (s) => void process.stdout.write(s), err: (s) => void process.stderr.write(s) };

/** A log's first and last sequence, from its stream's leader. */
export interface LogBounds {
  readonly first: number;
  readonly last: number;
  /** JetStream's view of the stream's servers: its Raft leader and the other replicas (absent on a lone server). */
  readonly servers?: { readonly leader?: string; readonly replicas: readonly { readonly name: string; readonly offline: boolean }[] };
}

/** Each domain's log bounds; domains whose stream is unreachable are left out. */
export async function streamBounds(jsm: JetStreamManager, domains: Iterable<string>): Promise<Map<string, LogBounds>> {
  const bounds = new Map<string, LogBounds>();
  await Promise.all(
    [...domains].map(async (d) => {
      try {
        const { state, cluster } = await jsm.streams.info(logStream(d));
        const replicas = (cluster?.replicas ?? []).map((r) => ({ name: r.name, offline: r.offline === true }));
        bounds.set(d, {
          first: state.first_seq,
          last: state.last_seq,
          ...(cluster ? { servers: { ...(cluster.leader ? { leader: cluster.leader } : {}), replicas } } : {}),
        });
      } catch {
        // No stream yet, or no JetStream quorum: the table shows the replica's own view.
      }
    }),
  );
  return bounds;
}

/** The stream's last sequence per domain, from each stream's leader; domains whose stream is unreachable are left out. */
export async function streamTails(jsm: JetStreamManager, domains: Iterable<string>): Promise<Map<string, number>> {
  return new Map([...(await streamBounds(jsm, domains))].map(([d, b]) => [d, b.last]));
}

export interface StatusRow {
  readonly domain: string;
  readonly node: string;
  readonly role: string;
  readonly state: string;
  readonly appliedSeq: number | undefined;
  readonly lag: number | undefined;
  /** The log's first sequence: 1 until a compaction purged what a snapshot holds. */
  readonly logFrom: number | undefined;
  readonly epoch: number | undefined;
  readonly lastHeartbeat: string;
  /**
   * How stale a replica read answered here may be (ms): 0 for a leader, the follower's bound from the leader's
   * heartbeats, undefined when it has none (it passes replica reads to the leader) or does not serve them.
   */
  readonly staleMs: number | undefined;
  /** The log level the replica's build understands (1 for hosts that predate levels); undefined when unreachable. */
  readonly level: number | undefined;
  /** Leader: the highest level every replica understands, which it writes at most. */
  readonly writeLevel: number | undefined;
  /** Why the replica stopped, when its state is `needsUpgrade` (or another halt with a reason). */
  readonly note: string | undefined;
}

/**
 * How far a replica is behind the log's tail. A leader is never behind its own log: it caught up before it claimed,
 * and every entry since is its own write, appended and then applied (its host reports the writes in flight as its
 * `lag`, in `--json` under `nodes`). Counting those made every leader show LAG 1–4 under steady writes, so the upgrade
 * procedure's "lag 0" never held (walkthrough-session12-ops F7). A leader that cannot apply stops leading.
 */
function lagOf(shard: { readonly state: string; readonly appliedSeq: number; readonly lag: number }, tail: number | undefined): number | undefined {
  if (shard.state === 'leading') return 0;
  // Ahead of its log, a replica is not behind anything: the line under the table says by how much it is ahead.
  if (shard.state === 'aheadOfLog') return undefined;
  return tail === undefined ? shard.lag : Math.max(0, tail - shard.appliedSeq);
}

/**
 * One row per domain × node (nodes that did not answer get one row saying so), and one row (node `-`, role `none`)
 * for each of `configured` that no host reports.
 */
export function statusRows(
  statuses: readonly NodeStatus[],
  logs: ReadonlyMap<string, LogBounds>,
  now: number,
  configured: readonly string[] = [],
): StatusRow[] {
  const rows: StatusRow[] = [];
  for (const domain of notRun(statuses, configured)) {
    rows.push({ domain, node: '-', role: 'none', state: 'not running', appliedSeq: undefined, lag: undefined, logFrom: logs.get(domain)?.first, epoch: undefined, lastHeartbeat: '-', staleMs: undefined, level: undefined, writeLevel: undefined, note: undefined });
  }
  for (const s of statuses) {
    if (!s.ok) {
      rows.push({ domain: '-', node: s.node, role: 'unreachable', state: s.error, appliedSeq: undefined, lag: undefined, logFrom: undefined, epoch: undefined, lastHeartbeat: '-', staleMs: undefined, level: undefined, writeLevel: undefined, note: undefined });
      continue;
    }
    for (const shard of s.status.shards) {
      const log = logs.get(shard.domain);
      const tail = log?.last ?? shard.streamLastSeq;
      rows.push({
        domain: shard.domain,
        node: s.node,
        role: shard.role,
        state: shard.state,
        appliedSeq: shard.appliedSeq,
        lag: lagOf(shard, tail),
        logFrom: log?.first,
        epoch: shard.epoch,
        lastHeartbeat: shard.lastHeartbeatAt ? `${Math.max(0, now - Date.parse(shard.lastHeartbeatAt))} ms ago` : '-',
        staleMs: shard.state === 'leading' ? 0 : shard.staleMs,
        level: shard.logLevel ?? 1,
        writeLevel: shard.state === 'leading' ? shard.writeLevel : undefined,
        note: shard.state === 'needsUpgrade' || shard.state === 'aheadOfLog' || shard.state === 'failed' || shard.state === 'claiming' ? shard.lastError : undefined,
      });
    }
  }
  return rows.sort((a, b) => a.domain.localeCompare(b.domain) || a.node.localeCompare(b.node));
}

/** The domains of `configured` that no host that answered reports, in config order. */
function notRun(statuses: readonly NodeStatus[], configured: readonly string[]): string[] {
  const run = new Set(statuses.flatMap((s) => (s.ok ? s.status.shards.map((sh) => sh.domain) : [])));
  return configured.filter((d) => !run.has(d));
}

/**
 * A warning line per domain whose log has a replica JetStream reports offline: how many of its servers are left, and
 * whether one more loss stops its writes (a majority must store each append). The config's `replicas` applies only
 * when a stream is created, so after a Mini is removed or lost the logs keep their old size with a dead peer; this
 * is what the table cannot show (walkthrough-session12-ops F4, F13). Undefined when every replica is online.
 */
export function logReplicaWarning(logs: ReadonlyMap<string, LogBounds>): string | undefined {
  const lines: string[] = [];
  for (const [domain, bounds] of [...logs].sort((a, b) => a[0].localeCompare(b[0]))) {
    const servers = bounds.servers;
    if (!servers) continue;
    const offline = servers.replicas.filter((r) => r.offline).map((r) => r.name);
    if (offline.length === 0) continue;
    const size = servers.replicas.length + 1;
    const up = size - offline.length;
    const majority = Math.floor(size / 2) + 1;
    const then = up > majority ? 'writes go on' : up === majority ? 'one more lost server stops its writes' : 'it has no majority: its writes stop';
    lines.push(`WARNING: the ${domain} log has ${up} of ${size} replicas online (${offline.join(', ')} offline): ${then}. Bring that Mini's nats-server back (a replacement Mini must keep the node's name: it then refills from its peers).\n`);
  }
  return lines.length === 0 ? undefined : lines.join('');
}

/**
 * A warning line per domain of the config that no host that answered runs (a domain just added to the file: hosts
 * read it only at start), with what to do; undefined when every configured domain runs somewhere.
 */
export function notRunWarning(statuses: readonly NodeStatus[], config: ClusterConfig): string | undefined {
  const silent = statuses.filter((s) => !s.ok).map((s) => s.node);
  const lines = notRun(statuses, config.domains.map((d) => d.name)).map((domain) => {
    const p = config.placement[domain];
    const placed = p ? [p.leader, ...p.standbys] : [];
    const down = placed.filter((n) => silent.includes(n));
    return (
      `WARNING: ${domain} is in the config but no host that answered runs it (placed on ${placed.join(', ')}` +
      `${down.length > 0 ? `; ${down.join(', ')} did not answer` : ''}). Hosts read cluster.config.ts only at start: ` +
      `copy the file to every Mini and restart the hosts one at a time; until then no router knows ${domain} ` +
      `(docs/operations.md, "Adding a domain").\n`
    );
  });
  return lines.length === 0 ? undefined : lines.join('');
}

export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n') + '\n';
}

export function renderStatus(rows: readonly StatusRow[]): string {
  const show = (n: number | undefined): string => (n === undefined ? '-' : String(n));
  // A leader held below its own level by a replica says so: that is why it neither groups nor prunes.
  const level = (r: StatusRow): string =>
    r.level !== undefined && r.writeLevel !== undefined && r.writeLevel < r.level ? `${r.level} (writes ${r.writeLevel})` : show(r.level);
  const table = renderTable(
    ['DOMAIN', 'NODE', 'ROLE', 'STATE', 'APPLIED', 'LAG', 'LOG FROM', 'EPOCH', 'LAST HEARTBEAT', 'STALE MS', 'LEVEL'],
    rows.map((r) => [r.domain, r.node, r.role, r.state, show(r.appliedSeq), show(r.lag), show(r.logFrom), show(r.epoch), r.lastHeartbeat, show(r.staleMs), level(r)]),
  );
  const notes = rows.filter((r) => r.note !== undefined).map((r) => `${r.node} ${r.domain} ${r.state}: ${r.note}\n`);
  return notes.length === 0 ? table : `${table}\n${notes.join('')}`;
}

/**
 * A warning line when the hosts that answered run configs that differ in what every host must agree on (domains,
 * predicate specs, placement, replication: `configDigest`), naming the hosts that differ from the most common one;
 * undefined when they agree. Hosts too old to report a digest are left out.
 */
export function configDriftWarning(statuses: readonly NodeStatus[]): string | undefined {
  const byDigest = new Map<string, string[]>();
  for (const s of statuses) {
    const digest = s.ok ? s.status.configDigest : undefined;
    if (digest === undefined) continue;
    const nodes = byDigest.get(digest) ?? [];
    nodes.push(s.node);
    byDigest.set(digest, nodes);
  }
  if (byDigest.size <= 1) return undefined;
  const groups = [...byDigest].sort((a, b) => b[1].length - a[1].length || a[0].localeCompare(b[0]));
  const runs = ([digest, nodes]: [string, string[]]): string => `${nodes.join(', ')} ${nodes.length === 1 ? 'runs' : 'run'} ${digest}`;
  // With a most common config, name the hosts that differ from it; with a tie, nobody is the odd one out.
  const [most, second] = [groups[0]!, groups[1]!];
  const who = most[1].length > second[1].length
    ? `${groups.slice(1).map(runs).join('; ')}, the others (${most[1].join(', ')}) ${most[0]}`
    : groups.map(runs).join('; ');
  return (
    `WARNING: config drift: ${who}. Domains, predicate specs, placement and replication must agree on every host: ` +
    `give them one cluster.config.ts and restart the hosts that differ.\n`
  );
}

/**
 * A warning line per host whose clock is off the others' (it takes no leadership and hands off what it leads until
 * its time is fixed); undefined when none is.
 */
export function clockWarning(statuses: readonly NodeStatus[]): string | undefined {
  const lines = statuses.flatMap((s) =>
    s.ok && s.status.clock?.off
      ? [
          `WARNING: ${s.node}'s clock is ${describeOffset(s.status.clock.offsetMs ?? 0)} the other hosts' (${s.status.clock.peers} peers). ` +
            `It takes no leadership and hands off what it leads until its time is fixed: check NTP on that Mini.\n`,
        ]
      : [],
  );
  return lines.length === 0 ? undefined : lines.join('');
}

const USAGE = `usage: shardmind status [--config FILE] [--servers URL,…] [--nodes NAME,…] [--json] [--timeout MS]

Asks every node (sm.ctl.<node>.status) and prints domains × nodes: role, machine state, appliedSeq, lag behind the
log's tail, epoch and the last heartbeat heard; --json adds each store's warm-up and more. A node that does not answer
within --timeout (1500ms, 2s, …; a bare number is ms; default 1500) is shown as such, and so is a domain of the
config that no host runs (exit 1 for either). Warnings about the config (a standby that cannot take over, pruning
that never runs by itself) go to stderr first.
  --config FILE         the cluster config (default ./cluster.config.ts): where to connect and which nodes to ask
  --servers, --nodes    instead of the config (against \`shardmind up\`: --servers nats://127.0.0.1:4222 --nodes local)`;

export async function runStatus(argv: readonly string[], io: Io = stdio): Promise<number> {
  const parsed = parseCommandFlags(
    argv,
    {
      config: { type: 'string' },
      servers: { type: 'string' },
      nodes: { type: 'string' },
      json: { type: 'boolean' },
      timeout: { type: 'string' },
    },
    USAGE,
    io,
  );
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  const flags = readFlagValues(io, 'status', () => ({ timeoutMs: durationFlag('timeout', values.timeout, 1, MAX_TIMEOUT_MS) }));
  if (typeof flags === 'number') return flags;
  const target = await orConfigError(io, () => resolveTarget(values));
  if (target === 1) return 1;
  // What the config gets wrong without being invalid (a standby that cannot take over, …): said first, to stderr.
  const warnings = target.config ? configWarnings(target.config) : [];
  for (const line of warnings) io.err(`WARNING: ${line}\n`);
  const nc = await connectCluster(target.servers, 'shardmind status');
  try {
    // The logs' tails first, then the hosts: read the other way round, a log that moved on in between showed
    // a leader LAG 1 under any steady load, and `lag 0` never held (walkthrough-session12-ops F7). A tail read
    // before the host's appliedSeq can only make a lag look smaller by what was written during the round trip.
    const jsm = await nc.jetstreamManager({ checkAPI: false, timeout: 1_500 });
    const logs = await streamBounds(jsm, target.config?.domains.map((d) => d.name) ?? []);
    const statuses = await clusterStatus(nc, target.nodes, flags.timeoutMs ?? 1_500);
    const unread = new Set<string>();
    for (const s of statuses) if (s.ok) for (const sh of s.status.shards) if (!logs.has(sh.domain)) unread.add(sh.domain);
    for (const [domain, bounds] of await streamBounds(jsm, unread)) logs.set(domain, bounds);
    // No node answering says nothing of which domains run: the names asked are not the hosts' (against `shardmind up`
    // without --nodes local), so "not running" rows and "restart the hosts" advice would send the reader astray.
    const silence = noNodeAnswered(statuses) ? noNodeAnsweredMessage(statuses) : undefined;
    const silent = silence === undefined ? undefined : `WARNING: ${silence}.\n`;
    const configured = silent ? [] : (target.config?.domains.map((d) => d.name) ?? []);
    const rows = statusRows(statuses, logs, Date.now(), configured);
    const tails = Object.fromEntries([...logs].map(([d, b]) => [d, b.last]));
    const drift = configDriftWarning(statuses);
    const clocks = clockWarning(statuses);
    const unrun = target.config && !silent ? notRunWarning(statuses, target.config) : undefined;
    const replicas = logReplicaWarning(logs);
    if (values.json) {
      io.out(
        JSON.stringify({
          v: 1,
          nodes: statuses,
          tails,
          rows,
          ...(drift ? { configDrift: drift.trim() } : {}),
          ...(clocks ? { clockWarnings: clocks.trim().split('\n') } : {}),
          ...(silence !== undefined ? { noNodeAnswered: silence } : {}),
          ...(unrun ? { notRunning: notRun(statuses, configured), notRunningWarnings: unrun.trim().split('\n') } : {}),
          ...(replicas ? { logReplicaWarnings: replicas.trim().split('\n') } : {}),
          ...(warnings.length > 0 ? { configWarnings: warnings } : {}),
        }) + '\n',
      );
    } else io.out([renderStatus(rows), silent, unrun, replicas, drift, clocks].filter((x) => x !== undefined).join('\n'));
    // A configured domain nobody serves is as unhealthy as a host that does not answer.
    return statuses.every((s) => s.ok) && unrun === undefined ? 0 : 1;
  } finally {
    await nc.close();
  }
}

/** The dispatcher row (`cli/main.ts`). */
export const statusCommand: Command = {
  summary: 'the cluster at a glance: every domain × node — role, state, applied seq, lag, epoch, last heartbeat',
  usage: USAGE,
  run: (args) => runStatus(args),
};
