/**
 * The nemesis: a seeded loop that injects one fault at a time (two at most, never two on the same kind of process),
 * each healed by its own timer:
 * - `kill-host`: SIGKILL a host process (leader or follower of either domain), restart it 1–6 s later;
 * - `pause-host`: SIGSTOP a host for longer than the lease (lease + 0.2–3 s), then SIGCONT;
 * - `kill-nats`: SIGKILL a nats-server (maybe a stream or meta leader), restart it 1–8 s later on the same store;
 * - `pause-nats`: SIGSTOP a nats-server for 1–6 s, then SIGCONT;
 * - `migrate`: move a domain to another Mini (`migrateShard`, as `shardmind migrate` does).
 * With at most one host (`maxHostFaults`, default 1) and one nats-server out at once, a quorum of servers and a
 * host usually remain. The kind
 * is drawn from the seed whatever is in progress (a kind whose slot is taken is skipped), so a seed replays the
 * same plan; when each fault heals still depends on the box's timing. Not
 * injected: network partitions or delays (all on loopback), disk faults, clock jumps, faults of the test's own
 * connection.
 */
import type { NatsConnection } from 'nats';
import { migrateShard, type NatsCluster } from '../../cli/index.ts';
import type { HostCluster } from '../harness/hosts.ts';
import type { Prng } from './prng.ts';

/** How long a restarted host may take to be ready before it is a trouble, and how much longer it is waited for. */
const NOT_READY_MS = 60_000;
const EXTRA_READY_MS = 120_000;

export type FaultKind = 'kill-host' | 'pause-host' | 'kill-nats' | 'pause-nats' | 'migrate';

/** What the nemesis draws from, weighted by repetition. */
const PLAN: readonly FaultKind[] = ['kill-host', 'kill-host', 'pause-host', 'pause-host', 'kill-nats', 'kill-nats', 'pause-nats', 'migrate', 'migrate'];

export interface NemesisOptions {
  readonly rng: Prng;
  readonly hosts: HostCluster;
  readonly nats: NatsCluster;
  readonly nc: NatsConnection;
  readonly nodes: readonly string[];
  readonly domains: readonly string[];
  readonly leaseMs: number;
  /** Log one line (with the time since the soak began). */
  readonly log: (line: string) => void;
  /** Pause between faults' starts (ms): drawn from [min, max]. */
  readonly gapMs?: readonly [number, number];
  /** Says what a host that is not ready in time is waiting on (its shards, the JetStream side): into the event log. */
  readonly diagnose?: (node: string) => Promise<void>;
  /** Host faults at once (default 1; 2 leaves one host to lead both domains). */
  readonly maxHostFaults?: number;
}

export interface Nemesis {
  /** Faults started, by kind. */
  readonly counts: Record<FaultKind, number>;
  /** Heals that did not succeed at once (a host not ready in time, a migration that failed): logged, retried at heal. */
  readonly troubles: string[];
  /** Whether the nemesis has this host down or paused now (a host that exited otherwise crashed). */
  isOut(node: string): boolean;
  /** Whether the nemesis has this host stopped with SIGSTOP now (it answers nothing until SIGCONT). */
  isPaused(node: string): boolean;
  /** Stops starting faults, waits for the ones in progress to heal. */
  stop(): Promise<void>;
}

export function startNemesis(o: NemesisOptions): Nemesis {
  const counts: Record<FaultKind, number> = { 'kill-host': 0, 'pause-host': 0, 'kill-nats': 0, 'pause-nats': 0, migrate: 0 };
  const troubles: string[] = [];
  const [minGap, maxGap] = o.gapMs ?? [1_000, 4_000];
  // Faults in progress per kind of target; a host fault takes a host out of the draw until it heals.
  const busy = { host: 0, nats: 0, migrate: 0 };
  const limit = { host: o.maxHostFaults ?? 1, nats: 1, migrate: 1 };
  const maxFaults = limit.host + 1;
  const hostsOut = new Set<string>();
  const hostsPaused = new Set<string>();
  const inFlight = new Set<Promise<void>>();
  let running = true;
  let wake: (() => void) | undefined;
  const sleep = (ms: number): Promise<void> =>
    new Promise((r) => {
      const t = setTimeout(r, ms);
      wake = () => {
        clearTimeout(t);
        r();
      };
    });
  const track = (p: Promise<void>): void => {
    const q = p.catch((err: unknown) => void troubles.push(`fault task failed: ${(err as Error).message}`)).finally(() => inFlight.delete(q));
    inFlight.add(q);
  };

  /** A host to fault: drawn among all, then the next one not already out (the draw stays the seed's). */
  const pickHost = () => {
    const all = o.hosts.hosts;
    const start = all.indexOf(o.rng.pick(all));
    for (let i = 0; i < all.length; i++) {
      const h = all[(start + i) % all.length]!;
      if (!hostsOut.has(h.node) && h.running) return h;
    }
    return undefined;
  };

  const killHost = async (): Promise<void> => {
    const h = pickHost();
    const downMs = o.rng.int(1_000, 6_000);
    if (h === undefined) return;
    hostsOut.add(h.node);
    o.log(`kill-host ${h.node} (SIGKILL), restart in ${downMs} ms`);
    h.kill('SIGKILL');
    await h.waitExit();
    await delay(downMs);
    const restartedAt = Date.now();
    try {
      await h.start(NOT_READY_MS);
      o.log(`kill-host ${h.node}: restarted and ready`);
    } catch (err) {
      // Said now, with what it waits on; then waited for longer, so the run says how long it took (or that it never
      // came back), and no other host fault piles on meanwhile.
      o.log(`kill-host ${h.node}: not ready ${NOT_READY_MS / 1000} s after its restart (${firstLine(err)})`);
      await o.diagnose?.(h.node).catch(() => undefined);
      const readyAfter = await h.waitReady(EXTRA_READY_MS).then(
        () => Math.round((Date.now() - restartedAt) / 1000),
        () => undefined,
      );
      const outcome = readyAfter === undefined ? `still not ready ${Math.round((Date.now() - restartedAt) / 1000)} s after it` : `ready ${readyAfter} s after it`;
      troubles.push(`${h.node} not ready ${NOT_READY_MS / 1000} s after its restart (${firstLine(err)}); ${outcome}`);
      o.log(`kill-host ${h.node}: ${outcome}`);
    } finally {
      hostsOut.delete(h.node);
    }
  };

  const pauseHost = async (): Promise<void> => {
    const h = pickHost();
    const pauseMs = o.leaseMs + o.rng.int(200, 3_000);
    if (h === undefined) return;
    hostsOut.add(h.node);
    o.log(`pause-host ${h.node} (SIGSTOP) for ${pauseMs} ms`);
    hostsPaused.add(h.node);
    h.kill('SIGSTOP');
    try {
      await delay(pauseMs);
    } finally {
      h.kill('SIGCONT');
      hostsPaused.delete(h.node);
      hostsOut.delete(h.node);
      o.log(`pause-host ${h.node}: SIGCONT`);
    }
  };

  const killNats = async (): Promise<void> => {
    const s = o.rng.pick(o.nats.servers.filter((x) => x.running));
    const downMs = o.rng.int(1_000, 8_000);
    o.log(`kill-nats ${s.name} (SIGKILL), restart in ${downMs} ms`);
    s.kill('SIGKILL');
    await s.waitExit();
    await delay(downMs);
    await s.start(30_000);
    o.log(`kill-nats ${s.name}: restarted`);
  };

  const pauseNats = async (): Promise<void> => {
    const s = o.rng.pick(o.nats.servers.filter((x) => x.running));
    const pauseMs = o.rng.int(1_000, 6_000);
    o.log(`pause-nats ${s.name} (SIGSTOP) for ${pauseMs} ms`);
    s.kill('SIGSTOP');
    try {
      await delay(pauseMs);
    } finally {
      s.kill('SIGCONT');
      o.log(`pause-nats ${s.name}: SIGCONT`);
    }
  };

  const migrate = async (): Promise<void> => {
    const domain = o.rng.pick(o.domains);
    const to = o.rng.pick(o.nodes);
    o.log(`migrate ${domain} → ${to}`);
    try {
      const jsm = await o.nc.jetstreamManager({ checkAPI: false });
      const r = await migrateShard(o.nc, jsm, { domain, to, nodes: o.nodes, domains: o.domains, timeoutMs: 20_000 });
      o.log(`migrate ${domain} → ${to}: ${r.unchanged ? 'already there' : `done from ${r.from}, epoch ${r.epoch}`}`);
    } catch (err) {
      // Refused or timed out under another fault: allowed, as long as nothing acknowledged is lost.
      o.log(`migrate ${domain} → ${to}: failed (${firstLine(err)})`);
    }
  };

  const loop = (async () => {
    await sleep(o.rng.int(minGap, maxGap));
    while (running) {
      const kind = o.rng.pick(PLAN);
      const slot: keyof typeof busy = kind === 'kill-nats' || kind === 'pause-nats' ? 'nats' : kind === 'migrate' ? 'migrate' : 'host';
      const faultsNow = busy.host + busy.nats + busy.migrate;
      // A migration waits for the hosts to be whole (it needs its target and the leader to answer); a host fault
      // during a migration is allowed.
      if (faultsNow < maxFaults && busy[slot] < limit[slot] && !(kind === 'migrate' && busy.host > 0)) {
        counts[kind]++;
        busy[slot]++;
        const run = { 'kill-host': killHost, 'pause-host': pauseHost, 'kill-nats': killNats, 'pause-nats': pauseNats, migrate }[kind];
        track(run().finally(() => busy[slot]--));
      }
      await sleep(o.rng.int(minGap, maxGap));
    }
  })();

  return {
    counts,
    troubles,
    isOut: (node) => hostsOut.has(node),
    isPaused: (node) => hostsPaused.has(node),
    async stop() {
      running = false;
      wake?.();
      await loop;
      while (inFlight.size > 0) await Promise.all([...inFlight]);
    },
  };
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.slice(0, 200);
}
