/**
 * Epoch claims: who may become a shard's next leader. Key `<domain>.<epoch>` in KV bucket `sm_epochs`, created with
 * `kv.create()` — the first creator wins, keys are never updated or deleted. Correctness never rests on
 * `kv.update(revision)`, whose compare-and-set races in nats-server 2.9.x clusters; `create` is a publish with
 * `Nats-Expected-Last-Subject-Sequence: 0`, decided by the stream's Raft leader.
 *
 * Winning a claim only gives the right to *try*: the winner still has to append its epoch marker to the shard's log
 * with the expected last sequence. The log, not KV, says who leads.
 */
import type { JetStreamClient, KV } from 'nats';
import { EPOCH_BUCKET, ErrorCode, ShardmindError } from '../protocol/index.ts';
import { NO_ROOM_API_CODES } from './log-appender.ts';
import { apiErrorCode, WRONG_LAST_SEQUENCE } from './log-stream.ts';

/** The value stored under a claim (JSON, so `nats kv get sm_epochs calendar.3` is readable). */
export interface EpochClaim {
  readonly v: 1;
  readonly node: string;
  readonly at: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class EpochRegistry {
  private constructor(private readonly kv: KV) {}

  /**
   * Opens the bucket, creating it on first use. Hosts start together, so two may race to create it: the loser's
   * create fails or finds the stream; either way the second attempt binds to it.
   */
  static async open(js: JetStreamClient, o: { replicas: number }): Promise<EpochRegistry> {
    let lastErr: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const kv = await js.views.kv(EPOCH_BUCKET, { history: 1, replicas: o.replicas });
        return new EpochRegistry(kv);
      } catch (err) {
        lastErr = err;
        await new Promise((r) => setTimeout(r, 100 * (attempt + 1)));
      }
    }
    throw new ShardmindError(ErrorCode.UNAVAILABLE, `cannot open KV bucket ${EPOCH_BUCKET}: ${String(lastErr)}`, {
      cause: lastErr,
    });
  }

  /**
   * Claims `epoch` of `domain` for `node`: true when this call created the key, false when someone else had.
   * Other failures (no JetStream quorum) throw `UNAVAILABLE`.
   */
  async claim(domain: string, epoch: number, node: string, now = Date.now()): Promise<boolean> {
    const claim: EpochClaim = { v: 1, node, at: new Date(now).toISOString() };
    try {
      await this.kv.create(epochKey(domain, epoch), encoder.encode(JSON.stringify(claim)));
      return true;
    } catch (err) {
      const code = apiErrorCode(err);
      if (code === WRONG_LAST_SEQUENCE) return false;
      if (code !== undefined && NO_ROOM_API_CODES.has(code)) throw new EpochClaimNoRoomError(domain, epoch, err, code);
      throw new ShardmindError(ErrorCode.UNAVAILABLE, `epoch claim ${domain}.${epoch} failed: ${String(err)}`, {
        cause: err,
      });
    }
  }

  /** Who claimed `epoch` of `domain`, if anyone. */
  async holder(domain: string, epoch: number): Promise<EpochClaim | undefined> {
    const e = await this.kv.get(epochKey(domain, epoch));
    if (!e || e.operation !== 'PUT' || e.value.length === 0) return undefined;
    return JSON.parse(decoder.decode(e.value)) as EpochClaim;
  }

  /** The highest epoch claimed for `domain`, 0 when none. */
  async latest(domain: string): Promise<number> {
    let max = 0;
    const keys = await this.kv.keys(`${domain}.*`);
    for await (const k of keys) {
      const n = Number(k.slice(domain.length + 1));
      if (Number.isInteger(n) && n > max) max = n;
    }
    return max;
  }
}

export function epochKey(domain: string, epoch: number): string {
  return `${domain}.${epoch}`;
}

/** Longest wait for one epoch claim (its `kv.create`, and the read of the key's holder after a lost create). */
export const EPOCH_ATTEMPT_MS = 5_000;

/**
 * `work`, or `UNAVAILABLE` once it has not settled within `ms`: one KV request can wait out nats.js's timeout (5 s)
 * and the holder read after it another, and a claim must not hang on a bucket whose stream leader is paused or being
 * elected. The request itself is not cancelled: if it lands later, this node's next claim of the epoch finds the key
 * its own (`ShardFailover`'s holder check), and another candidate passes over it a lease later. `work`'s late
 * rejection is handled here, so it cannot become an unhandled rejection.
 */
export async function answeredWithin<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  work.catch(() => undefined);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ShardmindError(ErrorCode.UNAVAILABLE, `${what}: not answered within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * JetStream has no room for the epoch bucket's write (its store is full): this node cannot claim, and no node whose
 * claims go to that store can, until room is made. The shard actor backs off longer for it and shows it in status.
 */
export class EpochClaimNoRoomError extends ShardmindError {
  constructor(domain: string, epoch: number, cause: unknown, apiCode: number) {
    super(
      ErrorCode.UNAVAILABLE,
      `epoch claim ${domain}.${epoch} failed: JetStream has no room for the ${EPOCH_BUCKET} bucket (nats-server: "${(cause as Error)?.message ?? String(cause)}", err_code ${apiCode}); ` +
        'free disk space or raise jetstream max_file_store',
      { cause },
    );
  }
}
