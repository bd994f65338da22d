/**
 * The host: the one process per Mini. It connects to NATS (its node's URLs, its own server first), waits for
 * JetStream, and runs one shard actor per domain placed on its node — leader or standby — plus the control
 * subjects and the unknown-domain guard. `drain()` stops intake, lets every actor finish what is in flight and
 * close its LMDB, then drains the NATS connection.
 *
 * @example
 * const host = new Host({ config, node: 'mini-1', openStore: openShardStore });
 * await host.start();
 * process.once('SIGTERM', () => void host.drain());
 */
import { connect, type JetStreamClient, type JetStreamManager, type NatsConnection, type Subscription } from 'nats';
import { compactionOf, configDigest, nodeByName, placementsOf, type ClusterConfig, type DomainConfig } from '../config/index.ts';
import { ErrorCode, HOST_INBOX_PREFIX, ShardmindError, redactUrl } from '../protocol/index.ts';
import { systemClock, type Clock } from './clock.ts';
import { serveControl, type HostStatusReply, type PruneOptions } from './control.ts';
import { handOffBeforeStopping } from './drain-hand-off.ts';
import { describeError, type GuardReport } from './guarded.ts';
import { Relay } from './relay.ts';
import { ShardActor, type OpenStore, type PruneReport, type ShardStatus } from './shard-actor.ts';
import { serveShardGuard } from './shard-guard.ts';
import { LeaderSightings } from './leader-sightings.ts';
import { EpochRegistry } from './epoch.ts';
import { standbyRank } from './lease.ts';
import { hostLogLevel } from './log-level.ts';
import { ClockPeers, describeOffset } from './clock-peers.ts';
import { systemTimerClock, type TimerHandle } from './timers.ts';

/** Something else a host runs on its connection (the router): started after the shard actors, stopped first. */
export interface HostService {
  stop(): Promise<void>;
}

export interface HostServiceContext {
  readonly nc: NatsConnection;
  readonly config: ClusterConfig;
  readonly node: string;
  readonly log: (line: string) => void;
}

export type StartHostService = (ctx: HostServiceContext) => Promise<HostService>;

export interface HostOptions {
  readonly config: ClusterConfig;
  readonly node: string;
  readonly openStore: OpenStore;
  /** Overrides the node's `nats` URLs (tests, `up`). */
  readonly servers?: readonly string[];
  /** NATS user and password, on a cluster that requires them (user `host`). */
  readonly credentials?: { readonly user: string; readonly pass: string };
  /** TLS, on a cluster whose servers require it (`nats-config --tls`): the CA the servers' certificates chain to. */
  readonly tls?: { readonly caFile: string };
  readonly clock?: Clock;
  /** Where log lines go; stderr by default. */
  readonly log?: (line: string) => void;
  /** Services to run next to the shard actors (the CLI passes the router). */
  readonly services?: readonly StartHostService[];
  /** How long to wait for JetStream at start. Default 30 s. */
  readonly jetStreamTimeoutMs?: number;
  /**
   * Tests only: run as a build that understands this log level (below `LOG_LEVEL`) — an older build, simulated.
   * Default: `SHARDMIND_SIMULATE_LOG_LEVEL`, else `LOG_LEVEL` (`log-level.ts`).
   */
  readonly logLevel?: number;
}

/** States in which a shard actor serves its role. */
const SETTLED = new Set(['leading', 'following']);

/** How often a host whose clock is off looks for shards it leads to hand to a host whose clock is not. */
const CLOCK_HAND_OFF_EVERY_MS = 5_000;

export class Host {
  readonly relay = new Relay();
  private nc: NatsConnection | undefined;
  private readonly actors = new Map<string, ShardActor>();
  private subscriptions: Subscription[] = [];
  private sightings: LeaderSightings | undefined;
  private clockPeers: ClockPeers | undefined;
  private clockHandOffTimer: TimerHandle | undefined;
  private clockHandingOff = false;
  private readonly services: HostService[] = [];
  private readonly unregister = new Map<string, () => void>();
  private actorsStartedAt = 0;
  private servicesStarting: Promise<void> = Promise.resolve();
  private links: { nc: NatsConnection; js: JetStreamClient; jsm: JetStreamManager; epochs: EpochRegistry } | undefined;
  private started: Promise<void> | undefined;
  private drained: Promise<void> | undefined;
  private readonly clock: Clock;
  private readonly log: (line: string) => void;
  private readonly startedAt: number;
  private readonly logLevel: number;
  /** `status().configDigest`: the config is fixed for the host's life, so it is hashed once. */
  private readonly configDigest: string;
  /** Logs an exception nothing caught before Node exits (installed while the host runs). */
  private readonly onFatal: (err: unknown, origin: string) => void;
  /** Where the subscription guards report what they caught (`guarded.ts`). */
  private readonly report: GuardReport;

  constructor(private readonly o: HostOptions) {
    nodeByName(o.config, o.node); // a node that is not in the config is a usage error: fail before connecting
    this.clock = o.clock ?? systemClock;
    this.log = o.log ?? ((line) => process.stderr.write(`${line}\n`));
    this.startedAt = this.clock.now();
    this.logLevel = o.logLevel ?? hostLogLevel();
    this.configDigest = configDigest(o.config);
    this.report = (err, where) => this.log(`[${o.node}] ${where}: ${describeError(err)}`);
    this.onFatal = (err, origin) => this.logFatal(err, origin);
  }

  get node(): string {
    return this.o.node;
  }

  /** Connects and starts every placed actor. Resolves once they are started (not yet caught up). Idempotent. */
  start(): Promise<void> {
    if (this.started === undefined) {
      // A monitor only watches: Node's own handling (print, exit 1) goes on. A bug that throws where nothing catches
      // it — a write's reply callback, which the write pipeline re-throws on purpose — then leaves a line in the
      // host's log saying which host died and what it was doing, not just a bare stack on stderr.
      process.on('uncaughtExceptionMonitor', this.onFatal);
      this.started = this.boot();
    }
    return this.started;
  }

  private logFatal(err: unknown, origin: string): void {
    try {
      const roles = [...this.actors].map(([domain, a]) => `${domain} ${a.state}`).join(', ') || 'no shards';
      const what = origin === 'unhandledRejection' ? 'unhandled rejection' : 'uncaught exception';
      // Only an 'uncaughtException' listener (none in `shardmind host`; some tests) keeps the process going.
      const then = process.listenerCount('uncaughtException') === 0 ? 'the process exits' : 'an uncaughtException handler takes it';
      this.log(`[${this.o.node}] FATAL ${what} (shards: ${roles}); ${then}: ${describeError(err)}`);
    } catch {
      // Node prints the error itself next.
    }
  }

  private async boot(): Promise<void> {
    const { config, node } = this.o;
    const servers = [...(this.o.servers ?? nodeByName(config, node).nats)];
    const nc = await connect({
      servers,
      name: `shardmind-host-${node}`,
      // The node's own server first, as the config lists them (nats.js shuffles by default): NATS prefers a queue
      // subscriber on the publisher's server, which is how an agent's replica read finds the replica on its Mini.
      noRandomize: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      pingInterval: 5_000,
      // Every write is a JetStream publish (a request): building a stack trace per request for a timeout that
      // almost never happens costs ~8% of the host's CPU.
      noAsyncTraces: true,
      // The host's own requests (JetStream, KV) wait on inboxes no service answers (services answer only
      // `_INBOX.…`, decisions §69): an agent cannot direct a shard's answer into a pending JetStream request.
      inboxPrefix: HOST_INBOX_PREFIX,
      ...(this.o.credentials ? { user: this.o.credentials.user, pass: this.o.credentials.pass } : {}),
      ...(this.o.tls ? { tls: { caFile: this.o.tls.caFile } } : {}),
    });
    this.nc = nc;
    this.watchConnection(nc).catch(() => undefined);
    const jsm = await nc.jetstreamManager({ checkAPI: false });
    await waitForJetStream(jsm, this.o.jetStreamTimeoutMs ?? 30_000);
    const js = nc.jetstream();
    // Right after a cluster (re)start JetStream answers before it has elected every stream's leader: keep trying.
    const epochs = await this.untilDrained('open the epoch registry', () => EpochRegistry.open(js, { replicas: config.replication.replicas }));
    if (!epochs) return;

    const sightings = new LeaderSightings(this.clock, config.replication.leaseMs, config.domains.map((d) => d.name));
    sightings.listen(nc);
    this.sightings = sightings;
    const clockPeers = new ClockPeers({
      nc,
      node,
      nodes: config.nodes.map((n) => n.name),
      wallClock: this.clock,
      timers: systemTimerClock,
      onChange: (r) =>
        this.log(
          r.off
            ? `[${node}] WARNING: this host's clock is ${describeOffset(r.offsetMs ?? 0)} the other hosts' (${r.peers} peers): it takes no leadership and hands off what it leads until its time is fixed (NTP)`
            : `[${node}] this host's clock agrees with the other hosts' again`,
        ),
    });
    clockPeers.start();
    this.clockPeers = clockPeers;
    this.scheduleClockHandOff();
    this.subscriptions.push(
      ...serveShardGuard(nc, config.domains.map((d) => d.name), sightings, (domain) => this.actors.get(domain)?.state === 'leading', this.report),
      ...serveControl(nc, {
        node,
        nodes: config.nodes.map((n) => n.name),
        report: this.report,
        now: () => this.clock.now(),
        status: () => this.status(),
        digest: (domain) => ({ v: 1, node, domain, ...this.actorOf(domain).digest() }),
        follow: (domain) => this.follow(domain),
        unfollow: (domain) => this.unfollow(domain),
        // The control layer has checked `to` (a node of the cluster, not this one, holding a replica that can take over).
        handoff: async (domain, to) => ({ v: 1, node, domain, to, ...(await this.actorOf(domain).handOffTo(to)) }),
        compact: (domain) => this.compact(domain),
        backup: (domain) => this.backup(domain),
        prune: (domain, o) => this.prune(domain, o),
      }),
    );
    this.links = { nc, js, jsm, epochs };
    this.actorsStartedAt = this.clock.now();
    for (const { domain, role } of placementsOf(config, node)) this.spawn(domain, role === 'leader');
    // Services (the router) start in the background, retrying: a slow JetStream must not keep the shards down.
    this.servicesStarting = Promise.all(
      (this.o.services ?? []).map(async (start) => {
        const service = await this.untilDrained('start a host service', () => start({ nc, config, node, log: this.log }));
        if (!service) return;
        if (this.drained) await service.stop();
        else this.services.push(service);
      }),
    ).then(() => undefined);
    this.log(`[${node}] host up: ${[...this.actors.keys()].join(', ') || 'no shards placed here'} via ${redactUrl(servers[0] ?? '')}`);
  }

  /** Starts a shard actor for `domain` on this host (placement at boot, or a `follow` command). */
  private spawn(domain: DomainConfig, leader: boolean): ShardActor {
    const { config, node } = this.o;
    const links = this.links;
    if (!links) throw new Error('host not connected');
    const actor = new ShardActor({
      node,
      domain,
      leader,
      nc: links.nc,
      js: links.js,
      jsm: links.jsm,
      dataDir: config.dataDir,
      replicas: config.replication.replicas,
      failover: {
        epochs: links.epochs,
        leaseMs: config.replication.leaseMs,
        heartbeatMs: config.replication.heartbeatMs,
        // Nodes added by `follow` rank after every configured standby.
        rank: standbyRank(config.placement[domain.name]?.standbys ?? [], node),
        bootGraceUntil: this.actorsStartedAt + bootGraceMs(config.replication.leaseMs),
        ...(this.sightings ? { sightings: this.sightings } : {}),
        ...(this.clockPeers ? { clockProblem: this.clockPeers.problem.bind(this.clockPeers) } : {}),
      },
      limits: config.limits,
      compaction: compactionOf(config, domain.name),
      clock: this.clock,
      openStore: this.o.openStore,
      log: this.log,
      relay: { relay: this.relay, address: shardAddress(domain.name) },
      logLevel: this.logLevel,
      peers: config.nodes.map((n) => n.name),
    });
    this.actors.set(domain.name, actor);
    this.unregister.set(domain.name, this.relay.register(shardAddress(domain.name), (e) => actor.send(e)));
    actor.start();
    return actor;
  }

  /** `sm.ctl.<node>.follow`: tail a domain here (a migration target). Idempotent. */
  follow(domain: string): ShardStatus {
    const existing = this.actors.get(domain);
    if (existing) return existing.status();
    const d = this.o.config.domains.find((x) => x.name === domain);
    if (!d) throw new ShardmindError(ErrorCode.UNKNOWN_DOMAIN, `domain "${domain}" is not in the cluster config`);
    if (this.drained) throw new ShardmindError(ErrorCode.UNAVAILABLE, `host ${this.o.node} is stopping`);
    this.log(`[${this.o.node}] follow ${domain} (control command)`);
    return this.spawn(d, false).status();
  }

  /** `sm.ctl.<node>.unfollow`: stop a follower here. A leader must hand off first. */
  async unfollow(domain: string): Promise<{ v: 1; node: string; domain: string; stopped: boolean }> {
    const actor = this.actors.get(domain);
    if (!actor) return { v: 1, node: this.o.node, domain, stopped: false };
    if (actor.status().role === 'leader' || actor.state === 'claiming') {
      throw new ShardmindError(ErrorCode.BAD_REQUEST, `${this.o.node} leads ${domain}: migrate it away before unfollowing`);
    }
    this.log(`[${this.o.node}] unfollow ${domain} (control command)`);
    this.actors.delete(domain);
    this.unregister.get(domain)?.();
    this.unregister.delete(domain);
    await actor.stop();
    return { v: 1, node: this.o.node, domain, stopped: true };
  }

  /** `sm.ctl.<node>.compact`: snapshot and compact a domain this host leads. */
  compact(domain: string): ReturnType<ShardActor['compact']> {
    return this.onLeader(domain, 'compact', (actor) => actor.compact());
  }

  /** `sm.ctl.<node>.backup`: copy a domain this host leads into its backup bucket, for `shardmind backup`. */
  backup(domain: string): ReturnType<ShardActor['backup']> {
    return this.onLeader(domain, 'backup', (actor) => actor.backup());
  }

  /** `sm.ctl.<node>.prune`: forget what the domain's memory no longer needs, on the leader. */
  prune(domain: string, o: PruneOptions): Promise<PruneReport> {
    return this.onLeader(domain, 'prune', (actor) => actor.prune(o));
  }

  /** Runs a leader-only control `op` on this host's shard of `domain` (which refuses it unless it leads). */
  private onLeader<T>(domain: string, op: string, work: (actor: ShardActor) => Promise<T>): Promise<T> {
    if (!this.o.config.domains.some((d) => d.name === domain)) {
      return Promise.reject(new ShardmindError(ErrorCode.UNKNOWN_DOMAIN, `domain "${domain}" is not in the cluster config`));
    }
    if (this.drained) return Promise.reject(new ShardmindError(ErrorCode.UNAVAILABLE, `host ${this.o.node} is stopping`));
    const actor = this.actors.get(domain);
    if (!actor) return Promise.reject(new ShardmindError(ErrorCode.NOT_LEADER, `${this.o.node} holds no ${domain} shard: ${op} on its leader`));
    this.log(`[${this.o.node}] ${op} ${domain} (control command)`);
    return work(actor);
  }

  private actorOf(domain: string): ShardActor {
    const actor = this.actors.get(domain);
    if (!actor) throw new ShardmindError(ErrorCode.NOT_FOUND, `no ${domain} shard on ${this.o.node}`);
    return actor;
  }

  /** Retries `work` (with a capped backoff, logging now and then) until it succeeds or the host drains. */
  private async untilDrained<T>(what: string, work: () => Promise<T>): Promise<T | undefined> {
    for (let attempt = 0, wait = 100; ; attempt++, wait = Math.min(wait * 2, 2_000)) {
      try {
        return await work();
      } catch (err) {
        if (this.drained) return undefined;
        if (attempt % 5 === 0) this.log(`[${this.o.node}] could not ${what} (retrying): ${(err as Error)?.message ?? String(err)}`);
        await new Promise((r) => setTimeout(r, wait).unref?.());
        if (this.drained) return undefined;
      }
    }
  }

  /** Every placed shard's role, state, appliedSeq, epoch and lag. */
  status(): HostStatusReply {
    return {
      v: 1,
      node: this.o.node,
      pid: process.pid,
      startedAt: new Date(this.startedAt).toISOString(),
      shards: [...this.actors.values()].map((a) => a.status()),
      relay: this.relay.stats(),
      ...(this.drained ? { draining: true } : {}),
      logLevel: this.logLevel,
      configDigest: this.configDigest,
      ...(this.clockPeers ? { clock: this.clockPeers.reading() } : {}),
    };
  }

  /**
   * While this host's clock is off the cluster's, every shard it leads goes to a caught-up standby whose clock is
   * not (the drain's hand-off); one with no such standby stays here, since a leader with a wrong clock still beats
   * a domain with none. Checked every few seconds: the clock can go off after the host took leadership, and a
   * placement leader claims at start, before it has heard anyone's clock.
   */
  private scheduleClockHandOff(): void {
    this.clockHandOffTimer = systemTimerClock.setTimeout(() => {
      void this.handOffForClock().finally(() => {
        if (!this.drained) this.scheduleClockHandOff();
      });
    }, CLOCK_HAND_OFF_EVERY_MS);
  }

  private async handOffForClock(): Promise<void> {
    const peers = this.clockPeers;
    const problem = peers?.problem();
    if (!peers || problem === undefined || this.clockHandingOff || this.drained || !this.nc || this.nc.isClosed()) return;
    const leading = [...this.actors.values()].filter((a) => a.state === 'leading');
    if (leading.length === 0) return;
    this.clockHandingOff = true;
    try {
      await handOffBeforeStopping({
        nc: this.nc,
        node: this.o.node,
        leading,
        candidates: (domain) => {
          const standbys = this.o.config.placement[domain]?.standbys ?? [];
          const all = [...standbys, ...this.o.config.nodes.map((n) => n.name).filter((n) => !standbys.includes(n))];
          return all.filter((n) => n !== this.o.node && !peers.isPeerOff(n));
        },
        log: this.log,
        why: 'clock off',
      });
    } finally {
      this.clockHandingOff = false;
    }
  }

  /** Whether every placed actor is leading or following. */
  get ready(): boolean {
    return [...this.actors.values()].every((a) => SETTLED.has(a.state));
  }

  /** Resolves once every actor leads or follows; rejects after `timeoutMs` naming the ones that did not. */
  async whenReady(timeoutMs = 30_000): Promise<void> {
    await this.start();
    const deadline = Date.now() + timeoutMs;
    while (!this.ready) {
      if (Date.now() > deadline) {
        const stuck = [...this.actors.values()].filter((a) => !SETTLED.has(a.state)).map((a) => `${a.domain}=${a.state}`);
        throw new Error(`host ${this.o.node} not ready within ${timeoutMs} ms: ${stuck.join(', ')}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Sends a command to a shard actor through the relay (`HANDOFF`, `PROMOTE`, `STOP`). */
  command(domain: string, event: Parameters<ShardActor['send']>[0]): boolean {
    return this.relay.send(`host:${this.o.node}`, shardAddress(domain), event);
  }

  /** Stops intake, drains every actor (in-flight appends and applies finish, LMDB closes), drains NATS. Idempotent. */
  drain(): Promise<void> {
    this.drained ??= (async () => {
      await this.started?.catch(() => undefined);
      // Services (the router) first: their in-flight requests to shards finish while the shards still serve.
      await this.servicesStarting;
      await Promise.allSettled(this.services.splice(0).map((s) => s.stop()));
      // Then the shards this host leads go to caught-up standbys, so agents see a hand-off, not a lease expiry.
      if (this.nc && !this.nc.isClosed()) {
        await handOffBeforeStopping({
          nc: this.nc,
          node: this.o.node,
          leading: [...this.actors.values()].filter((a) => a.state === 'leading'),
          candidates: (domain) => {
            const standbys = this.o.config.placement[domain]?.standbys ?? [];
            return [...standbys, ...this.o.config.nodes.map((n) => n.name).filter((n) => !standbys.includes(n))];
          },
          log: this.log,
        });
      }
      for (const s of this.subscriptions) s.unsubscribe();
      this.subscriptions = [];
      this.sightings?.stop();
      this.clockPeers?.stop();
      if (this.clockHandOffTimer !== undefined) systemTimerClock.clearTimeout(this.clockHandOffTimer);
      await Promise.all([...this.actors.values()].map((a) => a.stop()));
      if (this.nc && !this.nc.isClosed()) await this.nc.drain().catch(() => this.nc?.close());
      process.off('uncaughtExceptionMonitor', this.onFatal);
      this.log(`[${this.o.node}] host stopped`);
    })();
    return this.drained;
  }

  /** `stop()` is `drain()`: a host never drops in-flight work. */
  stop(): Promise<void> {
    return this.drain();
  }

  private async watchConnection(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect' || s.type === 'reconnect') this.log(`[${this.o.node}] NATS ${s.type} ${String(s.data)}`);
    }
  }
}

/**
 * How long after a host starts its standbys wait to hear a leader before they may claim one of its shards: hosts of
 * a cluster start seconds apart (and `tsx` compiles on start), and a standby that wins the race would only be
 * deposed again by the placement leader a moment later.
 */
export function bootGraceMs(leaseMs: number): number {
  return Math.max(4 * leaseMs, 5_000);
}

/** The relay address of a shard actor on this host. */
export function shardAddress(domain: string): string {
  return `shard:${domain}`;
}

/** Waits until JetStream answers (a fresh cluster elects its meta leader seconds after accepting connections). */
async function waitForJetStream(jsm: JetStreamManager, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await jsm.getAccountInfo();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`JetStream did not become ready within ${timeoutMs} ms: ${String(err)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

