/**
 * What the soak checks once every fault is healed and the writers have stopped:
 * - every replica of each domain has applied the whole log, and all three have the same `digest` (§21) at the
 *   same applied sequence;
 * - each writer's subjects read the same, field for field, from every replica (history through
 *   `sm.replica.<domain>.history.<node>`, the answer checked to come from that node): that is the acknowledged
 *   writes "on every replica", and the `one` predicate's history identical everywhere;
 * - in that history: every acknowledged write is there under its factId with its text; every fact is one the
 *   ledger attempted (nothing invented); no text twice and one confirmation per unique fact (an opId applied twice
 *   would reinforce it or write it again); a repeated fact's confirmations between its acknowledged and attempted
 *   opIds; at most one active value of a `one` predicate.
 * Unacknowledged writes may or may not be present.
 */
import type { NatsConnection } from 'nats';
import { decodePayload, encodePayload, replicaNodeSubject, unwrapReply } from '../../protocol/index.ts';
import { logStream } from '../../protocol/index.ts';
import { digests, eventually, leaderOf, shardOn, streamTail } from '../failover/fault-kit.ts';
import { ITEMS_PER_WRITER, ONE_PREDICATE, type Violation, type WriteRecord } from './workload.ts';

interface HistoryFact {
  readonly id: string;
  readonly text: string;
  readonly status: string;
  readonly confirmations: number;
  readonly [k: string]: unknown;
}

export interface CheckSummary {
  readonly violations: Violation[];
  /** Each domain's log as `first..last` (first > 1 once compaction purged its head). */
  readonly tails: Record<string, string>;
  readonly factsCompared: number;
  readonly ackedChecked: number;
}

/** Waits (bounded) until each domain has a leader and all its replicas applied the log with equal digests. */
export async function waitConverged(nc: NatsConnection, nodes: readonly string[], domains: readonly string[], timeoutMs: number, log: (s: string) => void): Promise<Violation[]> {
  const violations: Violation[] = [];
  for (const domain of domains) {
    try {
      await eventually(`a leader of ${domain}`, () => leaderOf(nc, domain, nodes), timeoutMs);
      let last = '';
      await eventually(
        `${domain}'s replicas to apply the whole log with equal digests`,
        async () => {
          const tail = await streamTail(nc, domain);
          const views = await Promise.all(nodes.map((n) => shardOn(nc, n, domain)));
          last = `tail ${tail}; ${nodes.map((n, i) => `${n}: ${views[i] ? `${views[i]!.state} at ${views[i]!.appliedSeq}${views[i]!.lastError ? ` (${views[i]!.lastError})` : ''}` : 'no answer'}`).join(', ')}`;
          if (!views.every((v) => v && v.appliedSeq >= tail && (v.state === 'leading' || v.state === 'following'))) return undefined;
          const ds = await digests(nc, nodes, domain);
          last += `; digests ${ds.map((d) => `${d.node}@${d.appliedSeq}=${d.digest.slice(0, 12)}`).join(' ')}`;
          return new Set(ds.map((d) => `${d.appliedSeq}/${d.digest}`)).size === 1 ? true : undefined;
        },
        timeoutMs,
      ).catch((err: unknown) => {
        throw new Error(`${(err as Error).message}: ${last}`);
      });
      log(`converged: ${domain} — ${last}`);
    } catch (err) {
      violations.push({ check: 'convergence', detail: (err as Error).message });
    }
  }
  return violations;
}

/** Every page of a subject's history from one node's replica; throws when another node answers. */
async function replicaHistory(nc: NatsConnection, node: string, domain: string, subject: string, predicate: string): Promise<HistoryFact[]> {
  const out: HistoryFact[] = [];
  let before: number | undefined;
  for (;;) {
    const body = { v: 1, domain, subject, predicate, limit: 1000, maxStaleMs: 600_000, ...(before !== undefined ? { before } : {}) };
    const m = await nc.request(replicaNodeSubject(domain, 'history', node), encodePayload(body, 'msgpack'), { timeout: 10_000 });
    const reply = unwrapReply<{ facts: HistoryFact[]; next?: number; servedBy?: string }>(decodePayload(m.data, 'msgpack'));
    if (reply.servedBy !== node) throw new Error(`history of ${subject} asked of ${node} was answered by ${reply.servedBy ?? 'no one named'}`);
    // Pages come newest first as pages, each oldest first: older pages go in front.
    out.unshift(...reply.facts);
    if (reply.next === undefined) return out;
    before = reply.next;
  }
}

/** The ids one node's replica recalls for (subject, predicate), sorted. */
async function replicaRecallIds(nc: NatsConnection, node: string, domain: string, subject: string, predicate: string): Promise<string[]> {
  const body = { v: 1, domain, subject, predicate, limit: 50, maxStaleMs: 600_000 };
  const m = await nc.request(replicaNodeSubject(domain, 'recall', node), encodePayload(body, 'msgpack'), { timeout: 10_000 });
  const reply = unwrapReply<{ facts: { id: string; subject?: string; predicate?: string }[]; servedBy?: string }>(decodePayload(m.data, 'msgpack'));
  if (reply.servedBy !== node) throw new Error(`recall asked of ${node} was answered by ${reply.servedBy ?? 'no one named'}`);
  return reply.facts.filter((f) => f.subject === subject && f.predicate === predicate).map((f) => f.id).sort();
}

export async function checkLedger(
  nc: NatsConnection,
  nodes: readonly string[],
  domains: readonly string[],
  writers: number,
  ledger: readonly WriteRecord[],
): Promise<CheckSummary> {
  const violations: Violation[] = [];
  const v = (check: string, detail: string): void => void violations.push({ check, detail });
  const tails: Record<string, string> = {};
  let factsCompared = 0;
  let ackedChecked = 0;

  for (const domain of domains) {
    const jsm = await nc.jetstreamManager({ checkAPI: false });
    const { first_seq: first, last_seq: last } = (await jsm.streams.info(logStream(domain))).state;
    tails[domain] = `${first}..${last}`;
  }

  // Every (domain, subject, predicate) the writers used.
  const subjects: { domain: string; subject: string; predicate: string }[] = [];
  for (const domain of domains) {
    for (let w = 0; w < writers; w++) {
      subjects.push({ domain, subject: `w${w}`, predicate: 'note' }, { domain, subject: `w${w}-habit`, predicate: 'likes' });
      for (let i = 0; i < ITEMS_PER_WRITER; i++) subjects.push({ domain, subject: `w${w}-item${i}`, predicate: ONE_PREDICATE });
    }
  }
  const byKey = new Map<string, WriteRecord[]>();
  for (const r of ledger) {
    const key = `${r.domain}|${r.subject}|${r.predicate}`;
    const list = byKey.get(key) ?? [];
    list.push(r);
    byKey.set(key, list);
  }

  for (const s of subjects) {
    const where = `${s.domain} ${s.subject}/${s.predicate}`;
    let histories: HistoryFact[][];
    try {
      histories = await Promise.all(nodes.map((n) => replicaHistory(nc, n, s.domain, s.subject, s.predicate)));
    } catch (err) {
      v('replica-read', `${where}: ${(err as Error).message}`);
      continue;
    }
    const canonical = histories.map((h) => JSON.stringify(h));
    for (let i = 1; i < nodes.length; i++) {
      if (canonical[i] !== canonical[0]) v('replicas-identical', `${where}: ${nodes[i]} differs from ${nodes[0]} (${histories[i]!.length} vs ${histories[0]!.length} facts)`);
    }
    const facts = histories[0]!;
    factsCompared += facts.length * nodes.length;
    const records = byKey.get(`${s.domain}|${s.subject}|${s.predicate}`) ?? [];
    const attemptedTexts = new Set(records.map((r) => r.text));
    const byId = new Map(facts.map((f) => [f.id, f]));
    const texts = new Map<string, number>();
    for (const f of facts) {
      texts.set(f.text, (texts.get(f.text) ?? 0) + 1);
      if (!attemptedTexts.has(f.text)) v('no-phantom', `${where}: ${f.id} "${f.text}" was never written`);
    }
    for (const [text, n] of texts) if (n > 1) v('applied-once', `${where}: "${text}" stored ${n} times`);
    if (s.predicate === ONE_PREDICATE) {
      const active = facts.filter((f) => f.status === 'active');
      if (active.length > 1) v('one-active', `${where}: ${active.length} active values (${active.map((f) => f.id).join(', ')})`);
      // Recall answers from in-memory windows and indexes that the digest does not cover: each replica must name
      // the value history calls active.
      try {
        const recalled = await Promise.all(nodes.map((n) => replicaRecallIds(nc, n, s.domain, s.subject, s.predicate)));
        const want = active.map((f) => f.id).sort().join(',');
        recalled.forEach((ids, i) => {
          if (ids.join(',') !== want) v('recall-current', `${where}: ${nodes[i]} recalls [${ids.join(', ')}], history's active value is [${want}]`);
        });
      } catch (err) {
        v('replica-read', `${where} recall: ${(err as Error).message}`);
      }
    }
    for (const r of records) {
      if (!r.ack) continue;
      ackedChecked++;
      const f = byId.get(r.ack.factId);
      if (!f) v('acked-present', `${where}: ${r.opId} acknowledged at seq ${r.ack.seq} as ${r.ack.factId} is missing (${facts.length} facts there)`);
      else if (f.text !== r.text) v('acked-present', `${where}: ${r.ack.factId} reads "${f.text}", acknowledged as "${r.text}"`);
    }
    if (s.predicate === 'likes') {
      const acked = new Set(records.filter((r) => r.ack).map((r) => r.opId)).size;
      const attempted = records.length;
      const total = facts.reduce((n, f) => n + f.confirmations, 0);
      if (total < acked || total > attempted) v('applied-once', `${where}: ${total} confirmations for ${acked} acknowledged and ${attempted} attempted opIds`);
    } else {
      for (const f of facts) if (f.confirmations !== 1) v('applied-once', `${where}: ${f.id} "${f.text}" has ${f.confirmations} confirmations`);
    }
  }
  return { violations, tails, factsCompared, ackedChecked };
}
