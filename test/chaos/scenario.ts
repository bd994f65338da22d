/**
 * One soak: a 3-node nats-server cluster (JetStream, R3 logs), three `shardmind host` processes leading two domains
 * from different Minis, the writers of `workload.ts` and the nemesis of `nemesis.ts` for `seconds`, then every fault
 * healed, convergence awaited and the checks of `checks.ts` run. Replicas that stay out of `leading`/`following`
 * too long are reported as they happen (`state-watch.ts`) and in the result's `slow`: not violations, findings.
 * Everything started is stopped and removed whatever happens; with `keepDir`, the LMDB files, host logs and event
 * log of a run that failed, or had troubles or slow states, are copied there first.
 */
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterConfigInput } from '../../config/index.ts';
import { logStream } from '../../protocol/index.ts';
import { startThreeMinis, type FaultCluster } from '../failover/fault-kit.ts';
import { checkLedger, waitConverged } from './checks.ts';
import { startLogAuditor, type LogAudit, type LogAuditor } from './log-auditor.ts';
import { startNemesis, type FaultKind, type Nemesis } from './nemesis.ts';
import { Prng } from './prng.ts';
import { describeSlow, watchStates, type SlowState, type StateWatch } from './state-watch.ts';
import { ONE_PREDICATE, startWorkload, type Violation, type Workload } from './workload.ts';

export const NODES = ['mini-1', 'mini-2', 'mini-3'] as const;
export const DOMAINS = ['email', 'files'] as const;
const LEASE_MS = 1500;
const WRITERS = 4;
const COMPACT_EVERY = 800;

export interface SoakOptions {
  readonly seed: number;
  readonly seconds: number;
  /** Where a failed run's data and logs are copied (a fresh folder under it). */
  readonly keepDir?: string;
  /** Progress lines (default: stderr). */
  readonly log?: (line: string) => void;
  /** Pause between faults' starts (ms). */
  readonly gapMs?: readonly [number, number];
  /** Host faults at once (default 1). */
  readonly maxHostFaults?: number;
  /** How long convergence may take after healing. Default 90 s. */
  readonly convergeMs?: number;
}

export interface SoakResult {
  readonly seed: number;
  readonly seconds: number;
  readonly faults: Record<FaultKind, number>;
  readonly troubles: readonly string[];
  /** Replicas that were not ready (leading or following) for `SLOW_STATE_MS` or more, and why (`state-watch.ts`). */
  readonly slow: readonly SlowState[];
  readonly writes: { attempted: number; acknowledged: number; failed: number; ackedChecked: number; byKind: Record<string, number> };
  readonly reads: { checked: number; replica: number; failed: number };
  readonly tails: Record<string, string>;
  /** What the live log audit read, skipped and found (`log-auditor.ts`). */
  readonly logAudit?: { read: number; skipped: number; breaks: readonly string[]; unconfirmed: readonly string[] };
  readonly violations: readonly Violation[];
  readonly events: readonly string[];
  readonly keptIn?: string;
  readonly wallMs: number;
}

function soakConfig(urls: readonly string[]): ClusterConfigInput {
  const predicates = { [ONE_PREDICATE]: { cardinality: 'one' as const, halfLifeDays: 30 } };
  return {
    cluster: { name: 'chaos' },
    nodes: NODES.map((name, i) => ({ name, nats: [urls[i]!, ...urls.filter((_, j) => j !== i)] })),
    domains: [
      { name: 'email', description: 'mail', seeds: ['send an email'], predicates },
      { name: 'files', description: 'documents', seeds: ['save the file'], predicates },
    ],
    placement: {
      email: { leader: 'mini-1', standbys: ['mini-2', 'mini-3'] },
      files: { leader: 'mini-2', standbys: ['mini-3', 'mini-1'] },
    },
    replication: { replicas: 3, leaseMs: LEASE_MS, heartbeatMs: 250 },
    // Compaction often enough that snapshots are taken, logs purged and restarted hosts bootstrap from a snapshot
    // while faults go on (the shipped default, every 100k entries, never happens in a soak).
    compaction: { everyEntries: COMPACT_EVERY, retainEntries: 100 },
  };
}

export function reproduceCommand(o: { seed: number; seconds: number; maxHostFaults?: number }): string {
  const hostFaults = o.maxHostFaults !== undefined && o.maxHostFaults !== 1 ? ` --host-faults ${o.maxHostFaults}` : '';
  return `node --import tsx test/chaos/soak.ts --seconds ${o.seconds} --seed ${o.seed}${hostFaults}`;
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  const began = Date.now();
  const events: string[] = [];
  const out = o.log ?? ((s: string) => void process.stderr.write(`${s}\n`));
  const log = (line: string): void => {
    const stamped = `[chaos +${((Date.now() - began) / 1000).toFixed(1)}s] ${line}`;
    events.push(stamped);
    out(stamped);
  };
  log(`seed ${o.seed}, ${o.seconds} s of faults (reproduce: ${reproduceCommand(o)})`);
  const rng = new Prng(o.seed);
  const violations: Violation[] = [];
  const onViolation = (v: Violation): void => {
    violations.push(v);
    log(`VIOLATION ${v.check}: ${v.detail}`);
  };

  let cluster: FaultCluster | undefined;
  let workload: Workload | undefined;
  let nemesis: Nemesis | undefined;
  let auditor: LogAuditor | undefined;
  let states: StateWatch | undefined;
  let audit: LogAudit | undefined;
  let keptIn: string | undefined;
  let summary: Awaited<ReturnType<typeof checkLedger>> | undefined;
  try {
    cluster = await startThreeMinis(soakConfig);
    log(`cluster up: nats ${cluster.nats.urls.join(' ')}; hosts ${cluster.hosts.hosts.map((h) => `${h.node}=${h.pid}`).join(' ')}`);
    auditor = startLogAuditor(cluster.nc, DOMAINS);
    workload = await startWorkload({ urls: cluster.nats.urls, domains: DOMAINS, rng: rng.fork(100), writers: WRITERS, onViolation });
    nemesis = startNemesis({
      rng: rng.fork(200),
      hosts: cluster.hosts,
      nats: cluster.nats,
      nc: cluster.nc,
      nodes: NODES,
      domains: DOMAINS,
      leaseMs: LEASE_MS,
      log,
      diagnose: () => logStuck(cluster!, log),
      ...(o.gapMs ? { gapMs: o.gapMs } : {}),
      ...(o.maxHostFaults !== undefined ? { maxHostFaults: o.maxHostFaults } : {}),
    });
    states = watchStates({ hosts: cluster.hosts, isPaused: (node) => nemesis!.isPaused(node), began, log });
    // A host that exits while the nemesis has not killed it crashed: a violation (with its last words); it is
    // started again so the soak goes on.
    const restarting = new Set<string>();
    const crashWatch = setInterval(() => {
      for (const h of cluster!.hosts.hosts) {
        if (h.running || nemesis!.isOut(h.node) || restarting.has(h.node)) continue;
        onViolation({ check: 'host-crashed', detail: `${h.node} exited on its own: ${h.stderr().slice(-1_500)}` });
        restarting.add(h.node);
        h.start(60_000).then(
          () => log(`crashed host ${h.node} restarted and ready`),
          async (err: unknown) => {
            log(`crashed host ${h.node} not ready after its restart: ${(err as Error).message.split('\n')[0]}`);
            await logStuck(cluster!, log);
          },
        ).finally(() => restarting.delete(h.node));
      }
    }, 1_000);
    const statusEvery = setInterval(() => {
      const acked = workload!.ledger.filter((r) => r.ack).length;
      log(`progress: ${workload!.ledger.length} writes, ${acked} acknowledged; faults ${JSON.stringify(nemesis!.counts)}`);
    }, 30_000);
    try {
      await new Promise((r) => setTimeout(r, o.seconds * 1_000));
      log('faults stop; waiting for the ones in progress to heal');
      await nemesis.stop();
    } finally {
      clearInterval(statusEvery);
      clearInterval(crashWatch);
    }
    await heal(cluster, log);
    const healedAt = Date.now();
    // Writes go on a little on the healed cluster: a fault's aftermath (a replica rebuilding, a leader stepping
    // down late) shows while they run.
    await new Promise((r) => setTimeout(r, 5_000));
    await workload.stop();
    log(`writers stopped: ${workload.ledger.length} writes, ${workload.ledger.filter((r) => r.ack).length} acknowledged`);
    if (!workload.ledger.some((r) => r.ack && r.ack.at > healedAt)) {
      onViolation({ check: 'writes-after-heal', detail: 'no write was acknowledged in the 5 s after every fault healed' });
    }
    violations.push(...(await waitConverged(cluster.nc, NODES, DOMAINS, o.convergeMs ?? 90_000, log)));
    summary = await checkLedger(cluster.nc, NODES, DOMAINS, WRITERS, workload.ledger);
    for (const v of summary.violations) onViolation(v);
    audit = await auditor.finish(60_000);
    auditor = undefined;
    for (const b of audit.breaks) onViolation({ check: 'log-chain', detail: `${b}: the entry's Sm-Prev does not name the entry the log kept before it` });
    log(`log audit: ${JSON.stringify(audit)}`);
  } catch (err) {
    onViolation({ check: 'soak-ran', detail: `the soak itself failed: ${(err as Error).stack ?? String(err)}` });
  } finally {
    await nemesis?.stop().catch(() => undefined);
    states?.stop();
    await auditor?.finish(0).catch(() => undefined);
    for (const h of cluster?.hosts.hosts ?? []) h.kill('SIGCONT');
    await workload?.stop().catch(() => undefined);
    const troubled = violations.length > 0 || (nemesis?.troubles.length ?? 0) > 0 || (states?.slow().length ?? 0) > 0;
    if (cluster && troubled && o.keepDir) keptIn = await keep(cluster, o.keepDir, events).catch(() => undefined);
    if (cluster && violations.length > 0 && !o.keepDir) out(cluster.hosts.stderr().slice(-30_000));
    await cluster?.destroy();
  }
  const ledger = workload?.ledger ?? [];
  const byKind: Record<string, number> = {};
  for (const r of ledger) byKind[r.kind] = (byKind[r.kind] ?? 0) + 1;
  const result: SoakResult = {
    seed: o.seed,
    seconds: o.seconds,
    faults: nemesis?.counts ?? { 'kill-host': 0, 'pause-host': 0, 'kill-nats': 0, 'pause-nats': 0, migrate: 0 },
    troubles: nemesis?.troubles ?? [],
    slow: states?.slow() ?? [],
    writes: {
      attempted: ledger.length,
      acknowledged: ledger.filter((r) => r.ack).length,
      failed: ledger.filter((r) => r.error).length,
      ackedChecked: summary?.ackedChecked ?? 0,
      byKind,
    },
    reads: { ...(workload?.reads ?? { checked: 0, replica: 0, failed: 0 }) },
    tails: summary?.tails ?? {},
    ...(audit
      ? {
          logAudit: {
            read: Object.values(audit.read).reduce((a, b) => a + b, 0),
            skipped: Object.values(audit.skipped).reduce((a, b) => a + b, 0),
            breaks: audit.breaks,
            unconfirmed: audit.unconfirmed,
          },
        }
      : {}),
    violations,
    events,
    ...(keptIn ? { keptIn } : {}),
    wallMs: Date.now() - began,
  };
  if (violations.length > 0) out(`[chaos] FAILED with seed ${o.seed}: ${violations.length} violation(s); reproduce: ${reproduceCommand(o)}`);
  for (const s of result.slow) out(`[chaos] slow: ${describeSlow(s)}`);
  return result;
}

/** Brings back every process the nemesis left down or paused (normally none: each fault heals itself). */
async function heal(cluster: FaultCluster, log: (s: string) => void): Promise<void> {
  for (const h of cluster.hosts.hosts) h.kill('SIGCONT');
  for (const s of cluster.nats.servers) {
    if (!s.running) {
      log(`heal: starting nats ${s.name}`);
      await s.start(30_000);
    }
  }
  try {
    for (const h of cluster.hosts.hosts) {
      if (!h.running) {
        log(`heal: starting host ${h.node}`);
        await h.start(60_000);
      }
    }
    await cluster.hosts.waitReady(60_000);
  } catch (err) {
    await logStuck(cluster, log);
    throw err;
  }
  log('healed: every server and host runs and is ready');
}

/**
 * What a host that does not become ready may be waiting on: each shard's state and error, and the JetStream side of
 * a bootstrap (the snapshot bucket's stream and its consumers — an object store listing is an ordered consumer that
 * ends only when it has delivered the last meta message).
 */
async function logStuck(cluster: FaultCluster, log: (s: string) => void): Promise<void> {
  for (const h of cluster.hosts.hosts) {
    const st = await h.status(2_000).catch(() => undefined);
    log(`stuck? ${h.node}: ${st ? st.shards.map((x) => `${x.domain}=${x.state} at ${x.appliedSeq}${x.lastError ? ` (${x.lastError})` : ''}`).join(', ') : 'no status'}`);
  }
  try {
    const jsm = await cluster.nc.jetstreamManager({ checkAPI: false });
    for (const d of DOMAINS) {
      const name = `OBJ_sm_snap_${d}`;
      const info = await jsm.streams.info(name).catch((e: unknown) => (e as Error).message);
      log(`stuck? ${name}: ${typeof info === 'string' ? info : JSON.stringify({ state: info.state, cluster: info.cluster })}`);
      for await (const c of jsm.consumers.list(name)) {
        log(`stuck? ${name} consumer ${c.name}: ${JSON.stringify({ pending: c.num_pending, delivered: c.delivered, ack: c.ack_floor, waiting: c.num_waiting, redelivered: c.num_redelivered, cluster: c.cluster, push_bound: c.push_bound, config: { deliver_policy: c.config.deliver_policy, filter: c.config.filter_subject } })}`);
      }
      const log_ = await jsm.streams.info(logStream(d)).catch(() => undefined);
      if (log_) log(`stuck? ${logStream(d)}: ${JSON.stringify({ first: log_.state.first_seq, last: log_.state.last_seq, cluster: log_.cluster })}`);
    }
  } catch (err) {
    log(`stuck? JetStream diagnostics failed: ${(err as Error).message}`);
  }
}

async function keep(cluster: FaultCluster, dir: string, events: readonly string[]): Promise<string> {
  await Promise.all(cluster.hosts.hosts.map((h) => h.stop().catch(() => undefined)));
  const to = join(dir, `chaos-${Date.now()}`);
  mkdirSync(to, { recursive: true });
  cpSync(cluster.hosts.dataDir, join(to, 'data'), { recursive: true });
  writeFileSync(join(to, 'hosts.log'), cluster.hosts.stderr());
  writeFileSync(join(to, 'events.log'), events.join('\n') + '\n');
  return to;
}

export type { Violation };
