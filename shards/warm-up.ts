/**
 * Warming a reopened store: the reads its first recalls would do on first use, done ahead of them a slice at a time
 * (`ShardStore.warmUp`).
 *
 * Why: a store loaded in this process holds every word's and subject's merged postings decoded (`merged-postings.ts`,
 * `complete`) and every fact's words (`fact-words.ts`). One reopened — after a restart, a failover or a snapshot
 * install, when a shard is most in demand — holds neither, and each query word or subject is read from its blocks on
 * first use (~65–150 µs at 1M facts), each page of fact words from its 4096 records (~6 ms). Measured at 1M facts,
 * the first 1500 recalls after reopening: mean 79–118 µs warmed against 154–177 unwarmed, p99 208–263 against
 * 351–1004 (docs/decisions.md §48).
 *
 * Most queries' needs first:
 * 1. words whose df reaches a query's per-word cap (common words, which every free-text query brings);
 * 2. the subjects of the newest active facts when the store opened (the last 2 × SEGMENT_SEQS positions: subject
 *    filters ask mostly for what is recent, and not every subject is an entity record);
 * 3. the other words, in key order;
 * 4. the words of the facts older than this process, 512 facts a step.
 * The first three stop once the decoded entries fill half their budget (`MergedPostingsCache.roomToWarm`). Each
 * step is the read a recall's first use would do under the same conditions, so no answer changes.
 */
import type { PageReader } from './fact-words.ts';
import type { PostingIndex } from './postings.ts';
import { subjectTerm } from './records.ts';

type Phase = 'common-words' | 'subjects' | 'other-words' | 'fact-words' | 'done';

export class StoreWarmer {
  private phase: Phase = 'common-words';
  /** The last df key the current words phase warmed. */
  private after: string | undefined;
  /** The next of `subjects` to warm. */
  private subject = 0;

  /** `subjects`: the newest active facts' subjects when the store opened; dropped once the subjects phase is past. */
  constructor(
    private readonly postings: PostingIndex,
    private readonly readTexts: PageReader,
    private subjects: string[],
  ) {}

  /** Warms until `until` (a `performance.now()` time), a step at least (so it ends however short the slices); true while some is left. */
  warm(until: number): boolean {
    do {
      if (!this.step(until)) return false;
    } while (performance.now() < until);
    return true;
  }

  /** One step of the current phase; false once every phase is done. */
  private step(until: number): boolean {
    switch (this.phase) {
      case 'common-words':
      case 'other-words': {
        const r = this.postings.warmWords(this.phase === 'common-words', this.after, until);
        this.after = r.after;
        if (r.full) this.next('fact-words');
        else if (r.done) this.next(this.phase === 'common-words' ? 'subjects' : 'fact-words');
        return true;
      }
      case 'subjects': {
        const subject = this.subjects[this.subject++];
        if (subject === undefined) this.next('other-words');
        else if (!this.postings.warmMerged(subjectTerm(subject))) this.next('fact-words');
        return true;
      }
      case 'fact-words':
        if (!this.postings.words.fillNext(this.readTexts)) this.next('done');
        return true;
      case 'done':
        return false;
    }
  }

  /**
   * Starts over (after a failed batch, which drops what was warmed). The subjects are warmed again only if their
   * phase had not passed: the list is not kept past it.
   */
  restart(): void {
    this.phase = 'common-words';
    this.after = undefined;
    this.subject = 0;
  }

  private next(phase: Phase): void {
    this.phase = phase;
    this.after = undefined;
    // Not kept for the store's life: with many subjects the list is large.
    if (phase !== 'subjects') this.subjects = [];
  }
}
