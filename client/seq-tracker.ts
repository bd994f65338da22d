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
  minSeqFor(domains: readonly string[] | undefined): Record<string, number> | undefined {
    const out: Record<string, number> = {};
    let any = false;
    // The edge accepts at most LIMITS.domainsPerRequest entries; a client that wrote to more domains than that
    // (rare) keeps read-your-writes for the ones it wrote to last.
    const names = domains ?? [...this.seqs.keys()].slice(-LIMITS.domainsPerRequest);
    for (const d of names) {
      const seq = this.seqs.get(d);
      if (seq !== undefined && seq > 0) {
        out[d] = seq;
        any = true;
      }
    }
    return any ? out : undefined;
  }
}
