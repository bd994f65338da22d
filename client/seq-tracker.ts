/**
 * Read-your-writes: the highest log sequence this client has seen per domain, from its own writes and from the
 * `seqs` of its reads. Sent as `minSeq` on later reads, so a shard (or a follower) answers only once it has applied
 * at least that much — an agent never fails to find what it just remembered, and never sees memory go backwards.
 */
import { LIMITS } from '../protocol/index.ts';

export class SeqTracker {
  private readonly seqs = new Map<string, number>();

  /** Raises the domain's sequence; never lowers it (replies can arrive out of order). */
  observe(domain: string, seq: number): void {
    const known = this.seqs.get(domain) ?? 0;
    if (seq <= known) return;
    this.seqs.delete(domain); // re-insert so iteration order is "most recently written last"
    this.seqs.set(domain, seq);
  }

  observeAll(seqs: Readonly<Record<string, number>> | undefined): void {
    // `for…in`, not `Object.entries`: every recall's reply comes through here.
    if (seqs) for (const domain in seqs) this.observe(domain, seqs[domain]!);
  }

  get(domain: string): number {
    return this.seqs.get(domain) ?? 0;
  }

  /**
   * The `minSeq` map for a read of these domains (every domain seen, when the router picks), or undefined when
   * there is nothing to wait for.
   */
  minSeqFor(domains: readonly string[] | undefined, floor?: Readonly<Record<string, number>>): Record<string, number> | undefined {
    const out: Record<string, number> = {};
    let any = false;
    // The edge accepts at most LIMITS.domainsPerRequest entries; a client that wrote to more domains than that
    // (rare) keeps read-your-writes for the ones it wrote to last.
    const names = domains ?? [...this.seqs.keys()].slice(-LIMITS.domainsPerRequest);
    for (const d of names) {
      const seq = Math.max(this.seqs.get(d) ?? 0, floor?.[d] ?? 0);
      if (seq > 0) {
        out[d] = seq;
        any = true;
      }
    }
    // A floor handed over by another agent names the domains it wrote to: when the router picks the domains, those
    // count too (their own floor is the point of passing it), ahead of this client's oldest ones.
    if (domains === undefined && floor !== undefined) {
      for (const d in floor) {
        const seq = floor[d]!;
        if (seq > 0 && out[d] === undefined) {
          out[d] = seq;
          any = true;
        }
      }
      const keys = Object.keys(out);
      for (let i = 0; keys.length - i > LIMITS.domainsPerRequest; i++) delete out[keys[i]!];
    }
    return any ? out : undefined;
  }

  /** Every domain's sequence seen so far: a position another agent can wait for (`minSeq` on its reads). */
  snapshot(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [d, seq] of this.seqs) out[d] = seq;
    return out;
  }
}
