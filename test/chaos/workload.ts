/**
 * The soak's writers and read-your-writes readers. Each writer has its own NATS connection and SDK client (three
 * straight to the shards, one through the routers) and a seeded mix of writes to two domains:
 * - `unique`: a fact no one else writes (`w<i> note <k>`): must end with exactly one confirmation when acknowledged;
 * - `correction`: a new value of a `one` predicate (`status`) of one of four items: closes the previous value;
 * - `repeat`: the same fact again with a new opId (`w<i> likes tea`): reinforces, one confirmation per applied opId;
 * - `batch`: 2–5 unique facts through `rememberMany` (one `remember_batch`).
 * Every write is in the ledger with its opId, text and domain, and either its acknowledgement (factId, seq) or the
 * error the client gave up with. After some acknowledgements the same client reads the fact back (its minSeq makes
 * that read-your-writes), from the leader or a replica: an answer without the fact is a violation; an error is not.
 */
import { connect as natsConnect, type NatsConnection } from 'nats';
import { connect, type RememberResult, type ShardmindClient, ShardmindError } from '../../client/index.ts';
import type { Prng } from './prng.ts';

export type WriteKind = 'unique' | 'correction' | 'repeat' | 'batch';

export interface WriteRecord {
  readonly writer: number;
  readonly kind: WriteKind;
  readonly domain: string;
  /** For a batch item, the opId `rememberMany` made, once it answered. */
  opId: string;
  readonly text: string;
  readonly subject: string;
  readonly predicate: string;
  readonly object: string;
  readonly startedAt: number;
  /** Set when acknowledged. */
  ack?: { readonly factId: string; readonly seq: number; readonly status: string; readonly duplicate: boolean; readonly at: number };
  /** Set when the client gave up (error code: message). */
  error?: string;
}

export interface Violation {
  readonly check: string;
  readonly detail: string;
}

export interface WorkloadOptions {
  readonly urls: readonly string[];
  readonly domains: readonly string[];
  readonly rng: Prng;
  readonly writers?: number;
  /** Pause between one writer's operations (ms). */
  readonly everyMs?: number;
  readonly onViolation: (v: Violation) => void;
}

/** The predicate the config declares `one` in every domain. */
export const ONE_PREDICATE = 'status';
export const ITEMS_PER_WRITER = 4;

export interface Workload {
  readonly ledger: WriteRecord[];
  readonly reads: { checked: number; failed: number; replica: number };
  stop(): Promise<void>;
}

export async function startWorkload(o: WorkloadOptions): Promise<Workload> {
  const count = o.writers ?? 4;
  const ledger: WriteRecord[] = [];
  const reads = { checked: 0, failed: 0, replica: 0 };
  const conns: NatsConnection[] = [];
  const clients: ShardmindClient[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const ordered = [...o.urls.slice(i % o.urls.length), ...o.urls.slice(0, i % o.urls.length)];
      const nc = await natsConnect({ servers: ordered, maxReconnectAttempts: -1, reconnectTimeWait: 100, noRandomize: true });
      conns.push(nc);
      // Writer 3 goes through the routers (sm.mem.*); the others straight to the shards.
      clients.push(await connect({ connection: nc, agent: `chaos-${i}`, node: `mini-${(i % 3) + 1}`, direct: i !== 3, deadlineMs: 15_000, timeoutMs: 1_000 }));
    }
  } catch (err) {
    await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
    throw err;
  }
  let running = true;
  const loops = clients.map((client, writer) => writerLoop(client, writer, o.rng.fork(writer), () => running, ledger, reads, o));
  return {
    ledger,
    reads,
    async stop() {
      running = false;
      await Promise.all(loops);
      for (const c of clients) await c.close({ timeoutMs: 20_000 }).catch(() => undefined);
      await Promise.all(conns.map((c) => c.close().catch(() => undefined)));
    },
  };
}

async function writerLoop(
  client: ShardmindClient,
  writer: number,
  rng: Prng,
  running: () => boolean,
  ledger: WriteRecord[],
  reads: Workload['reads'],
  o: WorkloadOptions,
): Promise<void> {
  let k = 0;
  const next = (kind: WriteKind, domain: string): WriteRecord => {
    k++;
    if (kind === 'correction') {
      const item = rng.int(0, ITEMS_PER_WRITER - 1);
      const subject = `w${writer}-item${item}`;
      return { writer, kind, domain, opId: opIdOf(writer, k), subject, predicate: ONE_PREDICATE, object: `s${k}`, text: `chaos w${writer} item ${item} status ${k}`, startedAt: Date.now() };
    }
    if (kind === 'repeat') {
      // One habit per writer and domain: every repeat is the same fact, reinforced once per applied opId.
      return { writer, kind, domain, opId: opIdOf(writer, k), subject: `w${writer}-habit`, predicate: 'likes', object: 'tea', text: `chaos w${writer} likes tea`, startedAt: Date.now() };
    }
    return { writer, kind, domain, opId: opIdOf(writer, k), subject: `w${writer}`, predicate: 'note', object: `n${k}`, text: `chaos w${writer} note ${k}`, startedAt: Date.now() };
  };
  const fact = (r: WriteRecord) => ({ text: r.text, subject: r.subject, predicate: r.predicate, object: r.object });
  const settle = (r: WriteRecord, result: RememberResult | ShardmindError | unknown): void => {
    if (result instanceof Error) r.error = result instanceof ShardmindError ? `${result.code}: ${result.message}` : result.message;
    else {
      const a = result as RememberResult;
      if (a.opId !== r.opId) o.onViolation({ check: 'ack-opid', detail: `${r.opId} acknowledged as ${a.opId}` });
      r.ack = { factId: a.factId, seq: a.seq, status: a.status, duplicate: a.duplicate, at: Date.now() };
    }
  };

  while (running()) {
    const started = Date.now();
    const domain = rng.pick(o.domains);
    const roll = rng.next();
    const kind: WriteKind = roll < 0.5 ? 'unique' : roll < 0.7 ? 'correction' : roll < 0.85 ? 'repeat' : 'batch';
    let written: WriteRecord[];
    if (kind === 'batch') {
      written = Array.from({ length: rng.int(2, 5) }, () => ({ ...next('unique', domain), kind: 'batch' as const }));
      ledger.push(...written);
      try {
        // rememberMany makes its own opIds: the ledger takes them from the results (an error result names none,
        // so a failed batch item's opId is only known by its text, which is unique).
        const results = await client.rememberMany(written.map(fact), { domain });
        results.forEach((res, j) => {
          const r = written[j]!;
          if (res instanceof ShardmindError) r.error = `${res.code}: ${res.message}`;
          else {
            r.opId = res.opId;
            settle(r, res);
          }
        });
      } catch (err) {
        for (const r of written) r.error ??= (err as Error).message;
      }
    } else {
      const r = next(kind, domain);
      written = [r];
      ledger.push(r);
      try {
        settle(r, await client.remember(fact(r), { domain, opId: r.opId }));
      } catch (err) {
        settle(r, err);
      }
    }

    // Read one of this writer's acknowledged writes back: its client sends minSeq, so it must be visible.
    const acked = written.filter((r) => r.ack);
    if (acked.length > 0 && rng.chance(0.35)) {
      const r = rng.pick(acked);
      const replica = rng.chance(0.5);
      try {
        const f = await client.get(r.ack!.factId, replica ? { domain: r.domain, maxStaleMs: 2_000 } : { domain: r.domain });
        reads.checked++;
        if (replica) reads.replica++;
        if (f === undefined) o.onViolation({ check: 'read-your-writes', detail: `${r.opId} (${r.ack!.factId}, seq ${r.ack!.seq}) not found by its writer's ${replica ? 'replica' : 'leader'} read` });
        else if (f.text !== r.text) o.onViolation({ check: 'read-your-writes', detail: `${r.ack!.factId} reads "${f.text}", written "${r.text}"` });
      } catch {
        reads.failed++; // an error under faults is allowed; a wrong answer is not
      }
    }
    // A correction just acknowledged is the item's current value to its writer (the only one writing that item),
    // unless a later correction of the same item landed meanwhile (one this writer gave up on, applied anyway).
    const correction = written[0]!;
    if (correction.kind === 'correction' && correction.ack && rng.chance(0.5)) {
      const replica = rng.chance(0.5);
      try {
        const res = await client.recall({ subject: correction.subject, predicate: ONE_PREDICATE, domain: correction.domain, limit: 10, ...(replica ? { maxStaleMs: 2_000 } : {}) });
        reads.checked++;
        if (replica) reads.replica++;
        const k = Number(correction.object.slice(1));
        const current = res.facts.filter((f) => f.subject === correction.subject && f.predicate === ONE_PREDICATE);
        const seen = current.some((f) => f.id === correction.ack!.factId || Number(String(f.object).slice(1)) > k);
        if (!seen) {
          o.onViolation({
            check: 'read-your-writes',
            detail: `${correction.opId} (${correction.ack.factId}, seq ${correction.ack.seq}): a ${replica ? 'replica' : 'leader'} recall of ${correction.subject} answered [${current.map((f) => `${f.id}=${String(f.object)}`).join(', ')}] (seqs ${JSON.stringify(res.seqs)}${res.servedBy ? `, served by ${res.servedBy}` : ''})`,
          });
        }
      } catch {
        reads.failed++;
      }
    }
    const wait = (o.everyMs ?? 20) - (Date.now() - started);
    if (wait > 0) await new Promise((res) => setTimeout(res, wait));
  }
}

/** The soak's own opIds: unique per writer and operation, readable in a log; the random suffix keeps runs apart. */
function opIdOf(writer: number, k: number): string {
  return `chaos-w${writer}-${k}-${Math.random().toString(36).slice(2, 8)}`;
}
