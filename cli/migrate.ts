/**
 * `shardmind migrate <domain> --to <node>`: moves a shard's leadership with no lost write, add before remove.
 *
 * 1. the target follows the domain (`follow`, idempotent) and catches up — a progress bar shows seq and lag;
 * 2. the current leader is told to `handoff`: it stops intake, finishes in-flight writes, appends a hand-off marker
 *    naming the target and becomes a follower; the target, applying that marker, claims the next epoch, appends its
 *    epoch marker and serves;
 * 3. the command waits until the target reports itself leader and reports the gap: as the hosts saw it (leader
 *    stopped intake → target serving), as the command saw it, and as a probe client issuing reads throughout saw it.
 *
 * The old leader stays a follower (a standby); `apply` removes followers the config no longer wants.
 */
import { durationFlag, integerFlag, MAX_TIMEOUT_MS, orConfigError, parseCommandFlags, readFlagValues } from './args.ts';
import type { Command } from './command.ts';
import type { JetStreamManager, NatsConnection } from 'nats';
import { DOMAIN_NAME, ErrorCode, ShardmindError, ctlSubject, encodePayload, shardSubject, decodePayload, unwrapReply } from '../protocol/index.ts';
import { clusterStatus, ctlRequest, domainViews, waitForLeaderView, type DomainView, type ShardStatusWire } from './control-client.ts';
import { connectCluster, resolveTarget } from './cluster-connect.ts';
import { stdio, streamTails, type Io } from './status.ts';

export interface MigrateProgress {
  readonly phase: 'following' | 'catching up' | 'handing off' | 'done';
  readonly appliedSeq: number;
  readonly tail: number;
  readonly lag: number;
  readonly state: string;
}

export interface MigrateOptions {
  readonly domain: string;
  readonly to: string;
  /** Every node of the cluster, to find the leader. */
  readonly nodes: readonly string[];
  /** The domains the config knows (checked before anything is sent), when there is a config. */
  readonly domains?: readonly string[];
  /** Start the handoff once the target is within this many entries of the tail. Default 64. */
  readonly maxLag?: number;
  /** Whole command budget. Default 120 s. */
  readonly timeoutMs?: number;
  /** Run a probe client (reads on `sm.shard.<domain>.recall`) through the handoff. Default true. */
  readonly probe?: boolean;
  readonly onProgress?: (p: MigrateProgress) => void;
}

export interface MigrateReport {
  readonly domain: string;
  readonly from: string | undefined;
  readonly to: string;
  /** The target already led: nothing was done. */
  readonly unchanged: boolean;
  readonly handoffSeq?: number;
  readonly epoch: number;
  readonly catchUpMs: number;
  /** Leader stopped intake → target serving, from the hosts' own timestamps (their clocks). */
  readonly gapHostMs?: number;
  /** Handoff sent → target reported leading, as this command saw it (an upper bound). */
  readonly gapCommandMs?: number;
  /** The longest wait between two answered probe reads around the handoff, and the errors the probe saw. */
  readonly gapProbeMs?: number;
  readonly probeRequests?: number;
  readonly probeErrors?: number;
}

/** How long the leader may take to answer a handoff (it checks the target, stops intake, writes the marker). */
const HANDOFF_ANSWER_MS = 15_000;

/** Polls `check` every `everyMs` until it returns a value, or throws TIMEOUT at `deadline`. */
async function poll<T>(check: () => Promise<T | undefined>, deadline: number, everyMs: number, what: string): Promise<T> {
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new ShardmindError(ErrorCode.TIMEOUT, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

async function view(nc: NatsConnection, nodes: readonly string[], domain: string): Promise<DomainView | undefined> {
  return domainViews(await clusterStatus(nc, nodes, 1_000)).get(domain);
}

/**
 * Reads `sm.shard.<domain>.recall` back to back until stopped, recording when each answer arrived. The longest
 * interval between two answers is the gap a client saw (including its own retries, as a client would).
 */
function startProbe(nc: NatsConnection, domain: string) {
  const answered: number[] = [];
  let requests = 0;
  let errors = 0;
  let running = true;
  const body = encodePayload({ v: 1, query: 'shardmind migrate probe', limit: 1 }, 'msgpack');
  const loop = (async () => {
    while (running) {
      requests++;
      try {
        const m = await nc.request(shardSubject(domain, 'recall'), body, { timeout: 1_000 });
        unwrapReply(decodePayload(m.data, 'msgpack'));
        answered.push(Date.now());
      } catch {
        errors++;
        await new Promise((r) => setTimeout(r, 2));
      }
    }
  })();
  return {
    async stop(from: number, to: number) {
      running = false;
      await loop;
      const inWindow = answered.filter((t) => t >= from && t <= to);
      let gap = 0;
      for (let i = 1; i < answered.length; i++) {
        const a = answered[i - 1]!;
        const b = answered[i]!;
        if (b >= from && a <= to) gap = Math.max(gap, b - a);
      }
      return { gapMs: inWindow.length === 0 ? to - from : gap, requests, errors };
    },
  };
}

/** What the leader answers a `handoff` (actors/control.ts): the marker's seq, the epoch it led in, when it stopped. */
interface HandoffReply {
  readonly seq: number;
  readonly epoch: number;
  readonly intakeStoppedAt?: string;
}

/**
 * Runs a migration; throws `ShardmindError` when the cluster cannot do it (unknown domain or node, no leader, a
 * refused hand-off, another node leading after it, timeout).
 */
export async function migrateShard(nc: NatsConnection, jsm: JetStreamManager, o: MigrateOptions): Promise<MigrateReport> {
  const started = Date.now();
  const timeoutMs = o.timeoutMs ?? 120_000;
  const maxLag = o.maxLag ?? 64;
  // Guarded here too, not only by the CLI's flag readers: a NaN deadline never passes, and the command never gave up.
  if (!(Number.isInteger(timeoutMs) && timeoutMs > 0)) throw new ShardmindError(ErrorCode.BAD_REQUEST, `timeoutMs: ${String(o.timeoutMs)} must be a positive integer (ms)`);
  if (!(Number.isInteger(maxLag) && maxLag >= 0)) throw new ShardmindError(ErrorCode.BAD_REQUEST, `maxLag: ${String(o.maxLag)} must be an integer ≥ 0`);
  if (!DOMAIN_NAME.test(o.domain)) throw new ShardmindError(ErrorCode.BAD_REQUEST, `domain: "${o.domain}" must match ${DOMAIN_NAME}`);
  if (o.domains && !o.domains.includes(o.domain)) {
    throw new ShardmindError(ErrorCode.UNKNOWN_DOMAIN, `domain "${o.domain}" is not in the cluster config (${o.domains.join(', ')})`);
  }
  const deadline = started + timeoutMs;
  if (!o.nodes.includes(o.to)) {
    throw new ShardmindError(ErrorCode.BAD_REQUEST, `--to: "${o.to}" is not a node (${o.nodes.join(', ')})`);
  }
  // UNAVAILABLE naming the nodes asked (and the `--nodes local` a `shardmind up` needs) when none leads it: a bare
  // "timed out waiting for a leader" after 12 s said neither (walkthrough-session13 F3).
  const before = await waitForLeaderView(nc, o.nodes, o.domain, Math.max(1, Math.min(deadline - Date.now(), 10_000)));
  if (before.leader === o.to) {
    return { domain: o.domain, from: o.to, to: o.to, unchanged: true, epoch: before.epoch, catchUpMs: 0 };
  }
  const from = before.leader!;

  // 1. Add before remove: the target follows and catches up.
  await ctlRequest(nc, o.to, 'follow', { domain: o.domain }, 10_000);
  let progress: MigrateProgress = { phase: 'following', appliedSeq: 0, tail: 0, lag: 0, state: 'starting' };
  await poll(
    async () => {
      const [v, tails] = await Promise.all([view(nc, o.nodes, o.domain), streamTails(jsm, [o.domain])]);
      const st: ShardStatusWire | undefined = v?.replicas.get(o.to);
      const tail = tails.get(o.domain) ?? st?.streamLastSeq ?? 0;
      if (st) {
        const lag = Math.max(0, tail - st.appliedSeq);
        progress = { phase: 'catching up', appliedSeq: st.appliedSeq, tail, lag, state: st.state };
        o.onProgress?.(progress);
        if (st.state === 'following' && lag <= maxLag) return true;
      }
      return undefined;
    },
    deadline,
    100,
    `${o.to} to catch up on ${o.domain}`,
  );
  const catchUpMs = Date.now() - started;

  // 2. Hand off, with a probe client reading throughout. The reply is not waited for on its own: a leader killed
  // right after it wrote the marker never answers, yet the target leads (review session 11, finding 6).
  const probe = o.probe === false ? undefined : startProbe(nc, o.domain);
  if (probe) await new Promise((r) => setTimeout(r, 100)); // a baseline of answered reads before the handoff
  o.onProgress?.({ ...progress, phase: 'handing off' });
  const handoffSentAt = Date.now();
  let reply: HandoffReply | undefined;
  let handoffError: unknown;
  // Whether the leader answered at all: its refusal (any code, UNAVAILABLE included: "the target did not answer its
  // status") changed nothing and ends the command; its silence may mean it died after writing the marker.
  let answered = false;
  const handoff = nc
    .request(ctlSubject(from, 'handoff'), encodePayload({ v: 1, domain: o.domain, to: o.to }, 'msgpack'), { timeout: HANDOFF_ANSWER_MS })
    .then((m) => {
      answered = true;
      reply = unwrapReply<HandoffReply>(decodePayload(m.data, 'msgpack'));
    })
    .catch((err: unknown) => {
      handoffError = answered ? err : new ShardmindError(ErrorCode.UNAVAILABLE, `${from}: handoff: no answer within ${HANDOFF_ANSWER_MS} ms`, { cause: err });
    });

  // 3. Watch who leads until a node leads at a later epoch than before the hand-off: the target (done), or another
  // node that took over when the target died or stalled (fail at once, naming it, instead of waiting out the budget).
  let after: { node: string; status: ShardStatusWire };
  try {
    after = await poll(
      async () => {
        // A refusal (the target cannot take over or does not answer, a build too old) changed nothing: report it.
        if (answered && handoffError !== undefined) throw handoffError;
        const v = await view(nc, o.nodes, o.domain);
        const leader = v?.leader;
        const st = leader === undefined ? undefined : v!.replicas.get(leader);
        const since = Math.max(before.epoch, reply?.epoch ?? 0);
        if (leader === undefined || !st || st.state !== 'leading' || st.epoch <= since) return undefined;
        if (leader !== o.to) {
          throw new ShardmindError(
            ErrorCode.SHARD_MOVED,
            `the hand-off of ${o.domain} to ${o.to} did not complete; ${leader} now leads ${o.domain} (epoch ${st.epoch}). ` +
              `No acknowledged write was lost: writes are acknowledged once in the log, and ${leader} applied the log before it took over. ` +
              `Check ${o.to} (shardmind status), then run the migration again`,
          );
        }
        return { node: leader, status: st };
      },
      deadline,
      10,
      `${o.to} to lead ${o.domain}`,
    );
  } catch (err) {
    await probe?.stop(handoffSentAt, Date.now());
    if (err instanceof ShardmindError && err.code === ErrorCode.TIMEOUT) throw await timedOutAfterHandoff(nc, o, handoffError);
    throw err;
  }
  const leadingSeenAt = Date.now();
  // The leader's answer normally came before the target led; a leader that died after writing the marker never
  // answers, and the report then leaves out what only the answer says (the marker's seq, the hosts' gap).
  let graceTimer: NodeJS.Timeout | undefined;
  await Promise.race([handoff, new Promise((r) => (graceTimer = setTimeout(r, 1_000)))]);
  clearTimeout(graceTimer);
  let probeResult: { gapMs: number; requests: number; errors: number } | undefined;
  if (probe) {
    // Let the probe get an answer from the new leader before measuring.
    await new Promise((r) => setTimeout(r, 200));
    probeResult = await probe.stop(handoffSentAt, leadingSeenAt + 200);
  }
  const led = after.status;
  o.onProgress?.({ phase: 'done', appliedSeq: led.appliedSeq, tail: Math.max(led.appliedSeq, progress.tail), lag: 0, state: led.state });
  const intakeStoppedAt = (reply as HandoffReply | undefined)?.intakeStoppedAt;
  const hostGap = intakeStoppedAt && led.leadingSince ? Date.parse(led.leadingSince) - Date.parse(intakeStoppedAt) : undefined;
  const handoffSeq = (reply as HandoffReply | undefined)?.seq;
  return {
    domain: o.domain,
    from,
    to: o.to,
    unchanged: false,
    ...(handoffSeq !== undefined ? { handoffSeq } : {}),
    epoch: led.epoch,
    catchUpMs,
    ...(hostGap !== undefined ? { gapHostMs: hostGap } : {}),
    gapCommandMs: leadingSeenAt - handoffSentAt,
    ...(probeResult
      ? { gapProbeMs: probeResult.gapMs, probeRequests: probeResult.requests, probeErrors: probeResult.errors }
      : {}),
  };
}

/** The TIMEOUT after a hand-off, saying who leads now (if anyone) and what the leader answered. */
async function timedOutAfterHandoff(nc: NatsConnection, o: MigrateOptions, handoffError: unknown): Promise<ShardmindError> {
  const v = await view(nc, o.nodes, o.domain).catch(() => undefined);
  const now = v?.leader ? `${v.leader} leads ${o.domain} (epoch ${v.epoch})` : `no node leads ${o.domain} now`;
  const leaderSaid = handoffError instanceof Error ? `; the hand-off request: ${handoffError.message}` : '';
  return new ShardmindError(ErrorCode.TIMEOUT, `timed out waiting for ${o.to} to lead ${o.domain}: ${now}${leaderSaid}`);
}

/** `[#########-----------] seq 1200/1300 lag 100 (catching up)`. */
export function renderProgress(p: MigrateProgress, width = 30): string {
  const frac = p.tail === 0 ? 1 : Math.min(1, p.appliedSeq / p.tail);
  const filled = Math.round(frac * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] seq ${p.appliedSeq}/${p.tail} lag ${p.lag} (${p.phase}, ${p.state})`;
}

const USAGE =
  `usage: shardmind migrate <domain> --to <node> [--config FILE] [--servers URL,…] [--nodes NAME,…] [--max-lag N] [--timeout DURATION] [--no-probe] [--json]

Moves the domain's leadership to <node> with no acknowledged write lost: <node> follows the domain and catches up,
the leader stops intake, finishes its in-flight writes and hands off, and <node> serves from the next epoch. The old
leader stays as a standby (\`shardmind apply\` removes replicas the config no longer places).
  --max-lag N     hand off once <node> is within N log entries of the tail (default 64)
  --timeout D     the whole command's budget: 90s, 5m, 500ms, or a bare number of ms (default 2m)
  --no-probe      do not run the probe client that reads throughout and reports the gap clients saw
If <node> dies or stalls during the hand-off and another node takes the domain over, the command stops as soon as
it sees that, names the node that leads now and its epoch, and exits 1 (SHARD_MOVED).`;

export async function runMigrate(argv: readonly string[], io: Io = stdio): Promise<number> {
  const parsed = parseCommandFlags(
    argv,
    {
      to: { type: 'string' },
      config: { type: 'string' },
      servers: { type: 'string' },
      nodes: { type: 'string' },
      'max-lag': { type: 'string' },
      timeout: { type: 'string' },
      'no-probe': { type: 'boolean' },
      json: { type: 'boolean' },
    },
    USAGE,
    io,
    1,
  );
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const domain = positionals[0];
  if (!domain || !values.to) {
    io.err(`${USAGE}\n`);
    return 2;
  }
  const flags = readFlagValues(io, 'migrate', () => ({
    maxLag: integerFlag('max-lag', values['max-lag'], 0, 1_000_000_000),
    timeoutMs: durationFlag('timeout', values.timeout, 1, MAX_TIMEOUT_MS),
  }));
  if (typeof flags === 'number') return flags;
  const target = await orConfigError(io, () => resolveTarget(values));
  if (target === 1) return 1;
  // Checked before connecting: a typo'd domain waited for a leader that could never exist.
  const domains = target.config?.domains.map((d) => d.name);
  if (domains && !domains.includes(domain)) {
    io.err(`migrate failed: ${ErrorCode.UNKNOWN_DOMAIN}: domain "${domain}" is not in the cluster config (${domains.join(', ')})\n`);
    return 1;
  }
  const nc = await connectCluster(target.servers, 'shardmind migrate');
  const tty = !values.json && process.stdout.isTTY === true && io === stdio;
  let lastLine = 0;
  try {
    const jsm = await nc.jetstreamManager({ checkAPI: false, timeout: 2_000 });
    const report = await migrateShard(nc, jsm, {
      domain,
      to: values.to,
      nodes: target.nodes,
      ...(domains ? { domains } : {}),
      ...(flags.maxLag !== undefined ? { maxLag: flags.maxLag } : {}),
      ...(flags.timeoutMs !== undefined ? { timeoutMs: flags.timeoutMs } : {}),
      probe: !values['no-probe'],
      onProgress: (p) => {
        if (values.json) return;
        if (tty) io.out(`\r${renderProgress(p)}\x1b[K`);
        else if (Date.now() - lastLine > 1_000 || p.phase !== 'catching up') {
          lastLine = Date.now();
          io.out(`${renderProgress(p)}\n`);
        }
      },
    });
    if (tty) io.out('\n');
    if (values.json) {
      io.out(JSON.stringify(report) + '\n');
    } else if (report.unchanged) {
      io.out(`${domain} is already led by ${report.to}: nothing to do\n`);
    } else {
      const ms = (n: number | undefined): string => (n === undefined ? 'n/a' : `${n} ms`);
      io.out(
        `${domain}: ${report.from} → ${report.to}, epoch ${report.epoch}, ${report.handoffSeq !== undefined ? `handoff marker at seq ${report.handoffSeq}` : `the old leader did not confirm the handoff`}\n` +
          `  gap (hosts: intake stopped → target serving): ${ms(report.gapHostMs)}\n` +
          `  gap (this command: handoff sent → target leading): ${ms(report.gapCommandMs)}\n` +
          `  gap (probe client, longest wait between answers): ${ms(report.gapProbeMs)}` +
          (report.probeRequests !== undefined ? ` over ${report.probeRequests} reads, ${report.probeErrors} retried\n` : '\n'),
      );
    }
    return 0;
  } catch (err) {
    if (tty) io.out('\n');
    if (err instanceof ShardmindError) {
      io.err(`migrate failed: ${err.code}: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    await nc.close();
  }
}

/** The dispatcher row (`cli/main.ts`). */
export const migrateCommand: Command = {
  summary: "move a domain's leadership to another node under load (add before remove), reporting the gap",
  usage: USAGE,
  run: (args) => runMigrate(args),
};
