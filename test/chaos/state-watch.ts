/**
 * Watches every shard's state through the soak (each host's `sm.ctl.<node>.status`, once a second) and reports the
 * replicas that stay out of `leading`/`following` too long: one stuck in `claiming`, `bootstrapping`, `catchingUp`
 * or `aheadOfLog`, or going round between them, is no violation (nothing acknowledged is lost, and it may recover by
 * itself), but it is what a soak is for finding. The first run that saw one (seed 8001, §75) said only "mini-1 not
 * ready 60 s after its restart (email in claiming)"; now the event log gets, once a replica has not been ready for
 * `slowMs`, the states it went through, its `lastError` and the host's own last log lines about that domain, and
 * when it is ready again, how long it took. A host that is down or paused is not asked (its silence is the fault's,
 * and its episode ends there); one the nemesis has restarted is, while the nemesis still waits for it to be ready:
 * the slowest restarts are the ones to see.
 */
import type { HostCluster } from '../harness/hosts.ts';

/** Longer than any state a fault should cause by itself: a lease, a catch-up, a snapshot download. */
export const SLOW_STATE_MS = 20_000;
const POLL_MS = 1_000;
/** Host log lines about the domain put in the event log when a state turns slow. */
const EXCERPT_LINES = 12;

export interface SlowState {
  readonly node: string;
  readonly domain: string;
  /** The states it went through while not ready, each once; the last is the one it was last seen in. */
  readonly states: readonly string[];
  /** Seconds since the soak began when it was first seen not ready. */
  readonly atS: number;
  /** How long it lasted (seconds), or lasted so far when the run ended. */
  readonly forS: number;
  readonly lastError?: string;
  readonly ended: boolean;
}

export interface StateWatch {
  /** The slow states seen so far (ongoing ones with their duration so far). */
  slow(): SlowState[];
  stop(): void;
}

interface Episode {
  states: string[];
  since: number;
  lastError: string | undefined;
  reported: boolean;
}

export function watchStates(o: {
  readonly hosts: HostCluster;
  /** Whether the nemesis has this host paused (SIGSTOP) now. */
  readonly isPaused: (node: string) => boolean;
  readonly began: number;
  readonly log: (line: string) => void;
  readonly slowMs?: number;
}): StateWatch {
  const slowMs = o.slowMs ?? SLOW_STATE_MS;
  const current = new Map<string, Episode>();
  const done: SlowState[] = [];
  const secs = (t: number): number => Math.round((t - o.began) / 100) / 10;
  let polling = false;

  const close = (key: string, e: Episode, now: number, next: string): void => {
    current.delete(key);
    if (!e.reported) return;
    const [node, domain] = key.split(' ') as [string, string];
    done.push({ node, domain, states: e.states, atS: secs(e.since), forS: Math.round((now - e.since) / 1000), ...(e.lastError ? { lastError: e.lastError } : {}), ended: true });
    o.log(`slow state ended: ${node} ${domain} ${next} after ${Math.round((now - e.since) / 1000)} s not ready (${e.states.join(' / ')})`);
  };

  const poll = async (): Promise<void> => {
    if (polling) return;
    polling = true;
    try {
      await Promise.all(
        o.hosts.hosts.map(async (h) => {
          if (!h.running || o.isPaused(h.node)) {
            // Down or paused by the nemesis: its episodes end here (a restart starts new ones).
            for (const [key, e] of current) if (key.startsWith(`${h.node} `)) close(key, e, Date.now(), 'host down or paused');
            return;
          }
          const st = await h.status(POLL_MS).catch(() => undefined);
          if (!st) return;
          const now = Date.now();
          for (const s of st.shards) {
            const key = `${h.node} ${s.domain}`;
            const e = current.get(key);
            if (s.state === 'leading' || s.state === 'following') {
              if (e) close(key, e, now, s.state);
              continue;
            }
            const ep = e ?? { states: [], since: now, lastError: undefined, reported: false };
            if (ep.states.at(-1) !== s.state) ep.states = [...ep.states.filter((x) => x !== s.state), s.state];
            ep.lastError = s.lastError ?? ep.lastError;
            current.set(key, ep);
            if (!ep.reported && now - ep.since >= slowMs) {
              ep.reported = true;
              const excerpt = h
                .stderr()
                .split('\n')
                .filter((l) => l.includes(` ${s.domain} `))
                .slice(-EXCERPT_LINES)
                .map((l) => `    ${l.slice(0, 400)}`)
                .join('\n');
              o.log(`SLOW STATE: ${h.node} ${s.domain} not ready for ${Math.round((now - ep.since) / 1000)} s (since +${secs(ep.since)}s; ${ep.states.join(' / ')}), now ${s.state} at seq ${s.appliedSeq}${s.lastError ? ` (${s.lastError})` : ''}; its last lines:\n${excerpt}`);
            }
          }
        }),
      );
    } finally {
      polling = false;
    }
  };

  const timer = setInterval(() => void poll(), POLL_MS);
  return {
    slow: () => {
      const now = Date.now();
      const ongoing = [...current.entries()]
        .filter(([, e]) => e.reported)
        .map(([key, e]) => {
          const [node, domain] = key.split(' ') as [string, string];
          return { node, domain, states: e.states, atS: secs(e.since), forS: Math.round((now - e.since) / 1000), ...(e.lastError ? { lastError: e.lastError } : {}), ended: false };
        });
      return [...done, ...ongoing];
    },
    stop: () => clearInterval(timer),
  };
}

/** One line per slow state, for the soak's summary: `mini-1 email not ready 34 s at +123.4s (catchingUp / claiming: why)`. */
export function describeSlow(s: SlowState): string {
  return `${s.node} ${s.domain} not ready ${s.forS} s${s.ended ? '' : ' (still at the end)'} at +${s.atS}s (${s.states.join(' / ')}${s.lastError ? `: ${s.lastError.slice(0, 200)}` : ''})`;
}
