/**
 * Follows each domain's log while the soak runs and checks its `Sm-Prev` chain (§16): every entry that names its
 * predecessor's hash names the entry the log kept before it. Read live, because compaction purges the log's head a
 * few hundred entries behind the tail, so a check at the end would see only the last stretch. A break seen through a
 * consumer is confirmed against the stream leader's own copies before it counts (a server just back from a freeze
 * can deliver a message the log did not keep); one whose entries were purged before they could be confirmed is
 * counted apart. Reads are retried through faults; what could not be read before compaction removed it is counted
 * as skipped.
 */
import type { NatsConnection } from 'nats';
import { PREV_HEADER, entryHash } from '../../actors/index.ts';
import { logStream } from '../../protocol/index.ts';

export interface LogAudit {
  /** Entries read, per domain. */
  readonly read: Record<string, number>;
  /** Entries purged before the auditor read them, per domain. */
  readonly skipped: Record<string, number>;
  /** Confirmed breaks: `domain@seq`. */
  readonly breaks: string[];
  /** Breaks seen that could not be confirmed or refuted (the entries were purged or unreadable). */
  readonly unconfirmed: string[];
}

export interface LogAuditor {
  /** Reads on to each domain's tail as it is now, stops and answers what it found. */
  finish(timeoutMs: number): Promise<LogAudit>;
}

export function startLogAuditor(nc: NatsConnection, domains: readonly string[]): LogAuditor {
  const audit: LogAudit = { read: {}, skipped: {}, breaks: [], unconfirmed: [] };
  const seen = new Map<string, { seq: number; hash: string | undefined }>(domains.map((d) => [d, { seq: 0, hash: undefined }]));
  let running = true;

  /** Reads what `domain`'s log holds past where the auditor got to, up to `until` (default: its tail now). */
  const readOn = async (domain: string, until?: number): Promise<boolean> => {
    const js = nc.jetstream();
    const jsm = await nc.jetstreamManager({ checkAPI: false, timeout: 3_000 });
    const { first_seq: first, last_seq: last } = (await jsm.streams.info(logStream(domain))).state;
    const at = seen.get(domain)!;
    if (at.seq < first - 1) {
      audit.skipped[domain] = (audit.skipped[domain] ?? 0) + (first - 1 - at.seq);
      seen.set(domain, { seq: first - 1, hash: undefined });
    }
    const target = until ?? last;
    if (seen.get(domain)!.seq >= target) return true;
    const consumer = await js.consumers.get(logStream(domain), { opt_start_seq: seen.get(domain)!.seq + 1 });
    const batch = await consumer.fetch({ max_messages: 512, expires: 1_000 });
    for await (const m of batch) {
      const now = seen.get(domain)!;
      if (m.seq !== now.seq + 1) break;
      const prev = m.headers?.get(PREV_HEADER);
      if (prev && now.hash !== undefined && prev !== now.hash) await confirm(domain, m.seq);
      seen.set(domain, { seq: m.seq, hash: entryHash(m.data) });
      audit.read[domain] = (audit.read[domain] ?? 0) + 1;
    }
    return seen.get(domain)!.seq >= target;
  };

  const confirm = async (domain: string, seq: number): Promise<void> => {
    try {
      const jsm = await nc.jetstreamManager({ checkAPI: false, timeout: 3_000 });
      const [before, at] = await Promise.all([jsm.streams.getMessage(logStream(domain), { seq: seq - 1 }), jsm.streams.getMessage(logStream(domain), { seq })]);
      if (at.header?.get(PREV_HEADER) !== entryHash(before.data)) audit.breaks.push(`${domain}@${seq}`);
    } catch {
      audit.unconfirmed.push(`${domain}@${seq}`);
    }
  };

  const loop = (async () => {
    while (running) {
      for (const d of domains) await readOn(d).catch(() => undefined); // a fault in the way: read again next round
      await new Promise((r) => setTimeout(r, 500));
    }
  })();

  return {
    async finish(timeoutMs) {
      running = false;
      await loop;
      const deadline = Date.now() + timeoutMs;
      const jsm = await nc.jetstreamManager({ checkAPI: false });
      for (const d of domains) {
        const tail = (await jsm.streams.info(logStream(d))).state.last_seq;
        while (!(await readOn(d, tail).catch(() => false))) {
          if (Date.now() > deadline) throw new Error(`the log auditor could not read ${d} to seq ${tail} (at ${seen.get(d)!.seq})`);
        }
      }
      return audit;
    },
  };
}
