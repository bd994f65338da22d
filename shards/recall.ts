/**
 * Recall: which facts bear on a question, best first.
 *
 * score = relevance × effective confidence × recency, where relevance is BM25 over the words of the fact's text
 * (document frequencies are stored counters, see `postings.ts`), effective confidence is the decayed confidence at
 * `asOf ?? now`, and recency favours recently recorded facts.
 *
 * The work per query is bounded and independent of the store's size — the tradeoff: each query term contributes
 * only its TERM_CAP newest postings, a subject/predicate filter only its FILTER_CAP newest facts, and at most
 * max(40, 4 × limit) facts are read (the best by BM25 first). An old fact that matches only very common words can be missed; recent and
 * distinctive facts are always found. For agent memory, which is read for what is true now, that is the right end
 * to give up.
 *
 * Those windows count facts the query can return, not dead ones (`walkLive`): a subject whose `one` value changed
 * 45 times, or a word in 100 retracted notes, would otherwise fill its window with facts that can never pass the
 * filters and hide an older true one (review session 12, finding 9). A subject filter's window skips, from the
 * in-memory numbers, facts that are not true at the query's time or are below its floor, and walks older postings
 * until it holds its count of live ones or has examined WALK_FACTOR windows; a free-text query whose answer is short
 * walks its truncated words the same way. When a walk stops at its budget the result says so (`RecallWalk.partial`).
 *
 * A subject's window is its newest live facts, so a subject with more than a window of them (the user of a personal
 * assistant) would hide an older one even from a query naming it: with query words, the subject's older facts among
 * the words' TERM_CAP newest postings join the window (`addSubjectMentions`), known by their subjects in memory
 * (`fact-subjects.ts`); a word with more postings than that makes the result partial.
 */
import { addMergedRun, addRelevance, bestCandidates, bm25, candidateCount, K1, resetRelevance, startRun, type Candidate } from './candidates.ts';
import { subjectKey, type FactSubjects, type SubjectKey } from './fact-subjects.ts';
import type { MergedVisitor } from './merged-postings.ts';
import { DAY_MS, effectiveConfidence, recencyWeight } from './decay.ts';
import type { PostingIndex } from './postings.ts';
import { decodeFact, factByteLength, peekFact, readFactText } from './fact-codec.ts';
import { FactTerms } from './fact-terms.ts';
import { MANY_WORDS, NO_WORD, TOO_MANY, wordHash, type PageReader } from './fact-words.ts';
import type { PostingVisitor } from './segment.ts';
import { objectEntityTerm, subjectPredicateTerm, subjectTerm, WORD, wordTerm } from './records.ts';
import { hashTerm, TERM_HASH } from './term-table.ts';
import type { ScoreNumbers, ScoredNumbers } from './score-numbers.ts';
import type { Tables } from './tables.ts';
import { tokenize } from './text.ts';
import type { Fact, RecallQuery, RecalledFact } from './types.ts';
import { DEFAULT_LIMIT } from './validate.ts';
import { believedTrueAt, currentSince, currentUntil, trueNow } from './world-time.ts';

export const TERM_CAP = 96;
export const FILTER_CAP = 64;
export const MAX_FETCH = 1000;
/**
 * Postings a window's walk past dead facts may examine, in windows: a subject filter's 40 (64 at limit ≥ 16) become
 * at most 640 (1024) numbers read, a truncated query word's 96 at most 384 (TEXT_WALK_FACTOR). A subject with 100k
 * dead facts answered in 45–150 µs of CPU (p50; ~1.1 ms with `asOf`, whose superseded facts' records are read),
 * against 12–16 µs for the old window of 40 that found nothing behind them (decisions §70).
 */
export const WALK_FACTOR = 16;
export const TEXT_WALK_FACTOR = 4;
/** Facts read per query: enough to fill `limit` after filters, never more than MAX_FETCH. */
const fetchCap = (limit: number): number => Math.min(MAX_FETCH, Math.max(40, limit * 4));
const MAX_QUERY_TERMS = 16;
const HOP_ENTITIES = 16;
const HOP_FACTS_PER_ENTITY = 32;
/** Each hop away from a direct match halves relevance. */
const HOP_DECAY = 0.5;
/** A subject-filtered fact that shares no word with the query still counts a little: the subject matched. */
const SUBJECT_MATCH_RELEVANCE = 0.1;

export interface RecallContext {
  readonly t: Tables;
  readonly postings: PostingIndex;
  readonly domain: string;
  readonly recallFloor: number;
  readonly docs: number;
  readonly docLength: number;
  /** The committed store position: postings above it belong to a batch still committing, and reads leave them out. */
  readonly appliedPosition: number;
  /** The snapshot's progress through an index merge (`postings.ts`), for document frequencies. */
  readonly mergedTerms: number;
  /** Every fact's scoring numbers in memory, when they are those of this snapshot (`score-numbers.ts`). */
  readonly scores: ScoreNumbers | undefined;
  /** Every fact's subject identity (`fact-subjects.ts`), good for any snapshot; without it a subject's window is all. */
  readonly subjects: FactSubjects | undefined;
  resolveEntity(idOrAlias: string): string;
}

/** What a recall's walks past dead facts found (`walkLive`): filled by `recallFacts` when given. */
export interface RecallWalk {
  /**
   * A window's walk stopped at its budget (WALK_FACTOR windows examined) before it held its count of live facts:
   * older facts of that subject (or word) were not considered, and a true one among them may be missing.
   */
  partial: boolean;
}

export function recallFacts(ctx: RecallContext, q: RecallQuery, walk?: RecallWalk): RecalledFact[] {
  const facts = recallOnce(ctx, q, false, walk);
  // A short free-text answer may be short because dead facts took its words' windows or its best candidates'
  // places (they never pass the filters): once more, with only the facts that can pass.
  if (q.subject !== undefined || facts.length >= (q.limit ?? DEFAULT_LIMIT) || !textCut) return facts;
  return recallOnce(ctx, q, true, walk);
}

/** Whether the last free-text `recallOnce` left postings out: a word's beyond TERM_CAP, or candidates beyond the best. */
let textCut = false;

function recallOnce(ctx: RecallContext, q: RecallQuery, liveOnly: boolean, walk: RecallWalk | undefined): RecalledFact[] {
  const at = q.asOf ?? q.now;
  const floor = q.minConfidence ?? ctx.recallFloor;
  const limit = q.limit ?? DEFAULT_LIMIT;
  const subject = q.subject === undefined ? undefined : ctx.resolveEntity(q.subject);
  const words = [...new Set(tokenize(q.query ?? ''))].slice(0, MAX_QUERY_TERMS);
  const maxSeq = q.asOf === undefined ? ctx.appliedPosition : lastSeqRecordedBy(ctx, q.asOf);
  const avgLength = ctx.docs > 0 ? ctx.docLength / ctx.docs : 1;
  const dfs = words.map((w) => ctx.postings.df(wordTerm(w), ctx.appliedPosition, ctx.mergedTerms, ctx.scores !== undefined));
  const idf = new Map(words.map((w, i) => [w, inverseDocumentFrequency(ctx.docs, dfs[i]!)]));
  const bm25With = (weight: number, tf: number, len: number): number => bm25(weight, tf, len, avgLength);

  // Candidates: a subject (and predicate) list when filtering by subject, else the query words' posting lists.
  let candidates: Candidate[];
  const textScoredLater = subject !== undefined;
  if (subject !== undefined) {
    const list = q.predicate !== undefined ? subjectPredicateTerm(subject, q.predicate) : subjectTerm(subject);
    // Only the first fetchCap are scored: taking more (up to FILTER_CAP) was work for nothing, most at 1M facts.
    const window = Math.min(FILTER_CAP, fetchCap(limit));
    const filtered: Candidate[] = (candidates = []);
    ctx.postings.forNewest(list, window, maxSeq, (seq) => void filtered.push({ seq, relevance: 0 }), (postings, start, count, take) => {
      for (let i = 0, at = start; i < take; i++) {
        filtered.push({ seq: postings[at * 2]!, relevance: 0 });
        if (++at === count) at = 0;
      }
    });
    // A full window: the subject's list may go on past it.
    if (filtered.length === window) {
      // Every posting of the list from the newest down to this one was examined: the window or dead.
      let examinedTo = filtered[window - 1]!.seq;
      const live = new LiveTest(ctx, q, at, floor);
      // A full window may hold dead facts (superseded, retracted, decayed): they give their places to older live ones.
      if (q.includeInactive !== true) {
        ctx.scores?.touch(filtered, window);
        let kept = 0;
        for (const c of filtered) if (live.passes(c.seq)) filtered[kept++] = c;
        if (kept < window) {
          filtered.length = kept;
          walkedTo = examinedTo;
          const cut = walkLive(ctx, list, window, kept, window, window * WALK_FACTOR, maxSeq, live, (seq) => void filtered.push({ seq, relevance: 0 }));
          examinedTo = walkedTo;
          if (cut && walk !== undefined) walk.partial = true;
        }
      }
      // Older facts of the subject that hold a query word join them, however many newer facts it has.
      if (words.length > 0 && ctx.subjects !== undefined) {
        const key = subjectKey(subject, q.predicate);
        const cut = addSubjectMentions(ctx, key, words, dfs, idf, avgLength, examinedTo, maxSeq, live, fetchCap(limit), filtered);
        if (cut && walk !== undefined) walk.partial = true;
      }
    }
  } else if (liveOnly) {
    // The second pass of a short answer (`recallFacts`): each word's window holds its cap of live postings.
    resetRelevance();
    const live = new LiveTest(ctx, q, at, floor);
    for (let i = 0; i < words.length; i++) {
      const weight = idf.get(words[i]!) ?? 0;
      const budget = Math.min(dfs[i]!, TERM_CAP * TEXT_WALK_FACTOR);
      const add: PostingVisitor = (seq, tf, len) => addRelevance(seq, bm25With(weight, tf, len));
      const cut = walkLive(ctx, wordTerm(words[i]!), TERM_CAP, 0, 0, budget, maxSeq, live, add);
      // A budget of the word's whole list (its document frequency) that ran out left nothing out.
      if (cut && budget < dfs[i]! && walk !== undefined) walk.partial = true;
    }
    candidates = bestCandidates(fetchCap(limit));
  } else {
    textCut = false;
    resetRelevance();
    for (let i = 0; i < words.length; i++) {
      const weight = idf.get(words[i]!) ?? 0;
      // A word's document frequency counts all its postings: once that many are found, older segments hold none.
      const cap = Math.min(TERM_CAP, dfs[i]!);
      if (dfs[i]! > TERM_CAP) textCut = true;
      // Postings below the open segment come as runs of the decoded entries, summed in a loop (`addMergedRun`).
      startRun(weight, avgLength);
      ctx.postings.forNewest(wordTerm(words[i]!), cap, maxSeq, (seq, tf, len) => addRelevance(seq, bm25With(weight, tf, len)), addMergedRun);
    }
    if (candidateCount() > fetchCap(limit)) textCut = true;
    candidates = bestCandidates(fetchCap(limit));
  }

  // Score the best candidates from the numbers in their bytes; build whole facts only for the `limit` returned.
  // Free-text candidates come best relevance first and a score never exceeds its relevance (effective confidence
  // and recency are ≤ 1), so once `limit` facts score above the next candidate's relevance, nothing later can
  // enter. (Not with graph expansion, which must know every matched fact to leave it out.)
  const scored: Scored[] = [];
  const best: number[] = [];
  const seen = new Set<number>();
  const expanding = (q.hops ?? 0) > 0;
  const needsFact = textScoredLater || q.predicate !== undefined;
  let terms: QueryTerms | undefined;
  // A subject-filtered candidate's relevance is known only from its text; this bounds it from above (each BM25
  // term is below idf × (k1 + 1)), so a fact whose bound cannot reach the top k is never decoded.
  let textBound = SUBJECT_MATCH_RELEVANCE;
  for (const w of words) textBound += (idf.get(w) ?? 0) * (K1 + 1);
  textBound = words.length === 0 ? 1 : textBound * (1 + 1e-9);
  // A subject filter scores its window and the older facts that hold a query word (`addSubjectMentions`), each bounded.
  const n = textScoredLater ? candidates.length : Math.min(candidates.length, fetchCap(limit));
  const scores = ctx.scores;
  const fromMemory = scores !== undefined && q.asOf === undefined;
  // A subject filter's candidates are scored from memory, and read only where they may enter (`scoreByWords`).
  const byWords = textScoredLater && fromMemory && q.predicate === undefined;
  if (byWords) scoreByWords(ctx, q, { candidates, n, words, idf, bm25With, at, floor, limit, expanding, scored, best, seen });
  // Each candidate's numbers are a cache miss at 1M facts: loaded in a loop of their own first, the misses overlap
  // (~7 µs of a free-text recall at 1M; nothing at 10k, where they are cached).
  else if (fromMemory) scores.touch(candidates, n);
  for (let i = 0; i < n && !byWords; i++) {
    const c = candidates[i]!;
    const full = best.length === limit && !expanding;
    if (full && !textScoredLater && c.relevance < best[limit - 1]!) break;
    // Scored from memory when it can (no `asOf`: that reads times only the records hold), else from the record's
    // bytes — lmdb-js's reused read buffer: read what is needed before the next read.
    let bytes: Buffer | undefined;
    let numbers: ScoredNumbers;
    if (fromMemory) {
      if (!scores.read(c.seq, PEEKED)) continue;
      numbers = PEEKED;
    } else {
      bytes = ctx.t.facts.getBinaryFast(c.seq);
      if (bytes === undefined) continue;
      peekFact(bytes, PEEKED);
      numbers = withWindow(PEEKED);
    }
    if (!visible(numbers, q, at)) continue;
    // Effective confidence never exceeds the stored one and recency never exceeds 1, so relevance × confidence
    // bounds the score (rounding is monotonic): below the k-th best it could neither enter nor tie, and its decay
    // need not be computed. (Not for subject filters, whose relevance is known only later.)
    if (full && !textScoredLater && c.relevance * numbers.confidence < best[limit - 1]!) continue;
    const effective = effectiveConfidence(numbers, at);
    if (effective < floor) continue;
    const recency = recencyWeight(numbers.recordedAt, at);
    let relevance = c.relevance;
    let fact: Fact | undefined;
    if (needsFact) {
      if (full && (textScoredLater ? textBound : relevance) * effective * recency < best[limit - 1]!) continue;
      const f = (fact = readFact(ctx, c.seq)!);
      if (q.predicate !== undefined && f.predicate !== q.predicate) continue;
      if (textScoredLater) {
        if (words.length === 0) relevance = 1;
        else relevance = relevanceOfText(f.text, (terms ??= queryTerms(words, idf)), bm25With) + SUBJECT_MATCH_RELEVANCE;
      }
    }
    if (relevance <= 0) continue;
    const score = relevance * effective * recency;
    if (expanding) seen.add(c.seq); // only graph expansion asks
    // A fact that enters the top k keeps a copy of its bytes, so the answer needs no second lookup.
    const entered = keepBest(best, score, limit);
    // One that did not enter (nor ties the k-th, which its sequence may still beat) can never be among the k best.
    if (!entered && score !== best[limit - 1]) continue;
    scored.push({ seq: c.seq, score, effective, fact, bytes: entered && fact === undefined && bytes !== undefined ? Buffer.from(bytes.subarray(0, factByteLength(bytes))) : undefined });
  }
  scored.sort((a, b) => b.score - a.score || b.seq - a.seq);
  const direct: RecalledFact[] = [];
  for (let i = 0; i < scored.length && i < limit; i++) {
    const s = scored[i]!;
    const f = s.fact ?? (s.bytes !== undefined ? decodeFact(s.bytes, ctx.domain) : readFact(ctx, s.seq));
    if (f !== undefined) direct.push(recalled(f, s.effective, s.score, 0));
  }
  const expanded = expand(ctx, q, direct, seen, at, floor);
  return expanded.length === 0 ? direct : [...direct, ...expanded].sort(byScore).slice(0, limit);
}

/** What a recall's scoring shares with `scoreByWords`. */
interface Scoring {
  readonly candidates: readonly Candidate[];
  readonly n: number;
  readonly words: readonly string[];
  readonly idf: ReadonlyMap<string, number>;
  readonly bm25With: (weight: number, tf: number, len: number) => number;
  readonly at: number;
  readonly floor: number;
  readonly limit: number;
  readonly expanding: boolean;
  readonly scored: Scored[];
  readonly best: number[];
  readonly seen: Set<number>;
}

/**
 * A subject filter's candidates, scored from memory: their text relevance is bounded by their words' hashes
 * (`fact-words.ts`), and they are read only when that bound can still reach the top k. (A function of its own:
 * inside `recallFacts` it made V8 compile the free-text path worse.)
 */
function scoreByWords(ctx: RecallContext, q: RecallQuery, s: Scoring): void {
  const { candidates, n, words, idf, bm25With, at, floor, limit, expanding, scored, best, seen } = s;
  const scores = ctx.scores!;
  const terms = queryTerms(words, idf);
  const weights = terms.weights;
  let loose = SUBJECT_MATCH_RELEVANCE;
  for (const w of weights) loose += w * (K1 + 1);
  const hashes = words.map((_, k) => wordHash(terms.ident[k * 3]!));
  for (const h of hashes) QUERY_HASHES[h >>> 5] = QUERY_HASHES[h >>> 5]! | (1 << (h & 31));
  // What an entry word with a query word's hash is: that word when it is the one word filed with the hash. The
  // candidates' entries first, so that their words are among those filed.
  const filed = ctx.postings.words;
  const readTexts: PageReader = (from, to, add) => readFactTexts(ctx.t, from, to, add);
  filed.fillFor(s.candidates, s.n, readTexts);
  const known = new Uint8Array(words.length);
  for (let k = 0; k < words.length; k++) {
    const h = hashes[k]!;
    const count = filed.wordsOfHash(h);
    const ident = terms.ident;
    known[k] = count === NO_WORD ? NOT_IT : count === MANY_WORDS ? SHARED : filed.isTheWord(h, ident[k * 3]!, ident[k * 3 + 1]!, ident[k * 3 + 2]!) ? IS_IT : NOT_IT;
  }
  const queryWords: QueryWords = { hashes, weights, known, loose: loose * (1 + 1e-9), readTexts };
  try {
    scoreCandidates(ctx, q, s, terms, queryWords);
  } finally {
    for (const h of hashes) QUERY_HASHES[h >>> 5] = 0;
  }
}

/** `scoreByWords` once its query words are filed (`QUERY_HASHES`). */
function scoreCandidates(ctx: RecallContext, q: RecallQuery, s: Scoring, terms: QueryTerms, queryWords: QueryWords): void {
  const { candidates, n, words, bm25With, at, floor, limit, expanding, scored, best, seen } = s;
  const scores = ctx.scores!;
  const pending: Pending[] = [];
  // Each candidate's numbers and words are a cache miss at 1M facts: loaded together first, they are waited for once.
  scores.touch(candidates, n);
  ctx.postings.words.touch(candidates, n);
  // Candidates holding no query word (relevance exactly SUBJECT_MATCH_RELEVANCE), by index, scored after the others.
  let plain = 0;
  for (let i = 0; i < n; i++) {
    const seq = candidates[i]!.seq;
    if (!scores.read(seq, PEEKED) || !visible(PEEKED, q, at)) continue;
    exactRelevance = NaN;
    const bound = words.length === 0 ? 1 : relevanceBound(ctx, seq, queryWords, bm25With);
    if (bound === SUBJECT_MATCH_RELEVANCE || words.length === 0 || exactRelevance === 0) {
      // No query word (certain: a word always has the same hash, and a hash only other words have is not it), or no
      // words asked: the relevance is exact.
      PLAIN[plain++] = i;
      continue;
    }
    const effective = effectiveConfidence(PEEKED, at);
    if (effective < floor) continue;
    const recency = recencyWeight(PEEKED.recordedAt, at);
    // Its relevance known from its entry: its score is too, the one reading it would give (the same operations).
    if (exactRelevance === exactRelevance) pending.push({ seq, bound: (exactRelevance + SUBJECT_MATCH_RELEVANCE) * effective * recency, effective, recency, exact: true });
    else pending.push({ seq, bound: bound * effective * recency, effective, recency, exact: false });
  }
  // Best bound first: once the k-th best score beats the next bound, no later candidate can enter.
  pending.sort((a, b) => b.bound - a.bound || b.seq - a.seq);
  for (const c of pending) {
    if (best.length === limit && !expanding && c.bound < best[limit - 1]!) break;
    if (c.exact) {
      // Scored without its record; read at the end if it is returned, as the others that hold no query word are.
      if (expanding) seen.add(c.seq);
      if (keepBest(best, c.bound, limit) || c.bound === best[limit - 1]) scored.push({ seq: c.seq, score: c.bound, effective: c.effective, fact: undefined, bytes: undefined });
      continue;
    }
    const fact = readFact(ctx, c.seq)!;
    const score = (relevanceOfText(fact.text, terms, bm25With) + SUBJECT_MATCH_RELEVANCE) * c.effective * c.recency;
    if (expanding) seen.add(c.seq);
    if (keepBest(best, score, limit) || score === best[limit - 1]) scored.push({ seq: c.seq, score, effective: c.effective, fact, bytes: undefined });
  }
  // Then the rest, whose scores are known without reading them. After the others their decay is mostly not needed:
  // those that hold query words usually fill the top k with scores that relevance x stored confidence cannot reach.
  // (The top k does not depend on the order candidates are scored in: whatever is skipped or not kept had k better.)
  for (let j = 0; j < plain; j++) {
    const seq = candidates[PLAIN[j]!]!.seq;
    scores.read(seq, PEEKED);
    const bound = words.length === 0 ? 1 : SUBJECT_MATCH_RELEVANCE;
    // Below the k-th best even at its stored confidence and full recency: it can neither enter nor tie.
    if (best.length === limit && !expanding && bound * PEEKED.confidence < best[limit - 1]!) continue;
    const effective = effectiveConfidence(PEEKED, at);
    if (effective < floor) continue;
    const score = bound * effective * recencyWeight(PEEKED.recordedAt, at);
    if (expanding) seen.add(seq);
    if (keepBest(best, score, limit) || score === best[limit - 1]) scored.push({ seq, score, effective, fact: undefined, bytes: undefined });
  }
}

/**
 * The current subject-filtered query's word hashes (`wordHash`) as bits: most candidates hold none of them, and one
 * pass over a candidate's words against these says so, where comparing each word with each query word took a pass per
 * query word. Set and cleared by `scoreByWords`; a bit left set would only cost that comparison.
 */
const QUERY_HASHES = new Uint32Array(65536 / 32);

/** Indices of a subject filter's candidates that hold no query word (`scoreByWords`: its window and older mentions). */
const PLAIN = new Int32Array(FILTER_CAP + MAX_FETCH);

/** A query's distinct words as the index identifies them (`hashTerm`: h1, h2, shape), with their BM25 weights. */
export interface QueryTerms {
  readonly ident: Int32Array;
  readonly weights: readonly number[];
}

/** `words` (distinct, at most 32) with their weights from `idf`, for `relevanceOfText`. */
export function queryTerms(words: readonly string[], idf: ReadonlyMap<string, number>): QueryTerms {
  if (words.length > 32) throw new RangeError('too many query words');
  const ident = new Int32Array(words.length * 3);
  for (let k = 0; k < words.length; k++) ident.set(hashTerm(WORD, words[k]!, '', TERM_HASH), k * 3);
  return { ident, weights: words.map((w) => idf.get(w) ?? 0) };
}

/** Reused by every `relevanceOfText` (recall is synchronous); made on first use, after the shards' import cycle. */
let textTerms: FactTerms | undefined;

/**
 * A fact's BM25 relevance to the query words from its text: each query word it holds, in the order its first
 * occurrence comes, with its frequency, over the text's length in words — the sum a map of its tokens gave, added in
 * the same order, so the same bits. The text is scanned as the index scans it (`FactTerms`: one pass, no string per
 * token) and its words are matched by identity, as the index matches them: tokenizing into strings and comparing
 * them cost ~20% more (a profile of subject-filtered recalls at 1M facts). Two words of one identity are one term
 * everywhere in the index (their postings and document frequency are shared); here too, so both recall paths agree.
 */
export function relevanceOfText(text: string, q: QueryTerms, bm25With: (weight: number, tf: number, len: number) => number): number {
  const t = (textTerms ??= new FactTerms());
  t.scan({ text, subject: undefined, predicate: undefined, object: undefined });
  const { ident, weights } = q;
  const n = weights.length;
  const scanned = t.ident;
  let sum = 0;
  let counted = 0;
  // Terms come in first-occurrence order, each once with its frequency (only words: nothing else was scanned).
  for (let i = 0; i < t.count; i++) {
    const h1 = scanned[i * 3]!;
    let k = 0;
    while (k < n && (ident[k * 3] !== h1 || ident[k * 3 + 1] !== scanned[i * 3 + 1] || ident[k * 3 + 2] !== scanned[i * 3 + 2])) k++;
    if (k === n || (counted & (1 << k)) !== 0) continue;
    counted |= 1 << k;
    sum += bm25With(weights[k]!, t.tf[i]!, t.length);
  }
  return sum;
}

interface Pending {
  readonly seq: number;
  /** Its score's upper bound: relevance bound × effective confidence × recency; its score when `exact`. */
  readonly bound: number;
  readonly effective: number;
  readonly recency: number;
  /** Its relevance was known from its entry (`relevanceBound`): `bound` is its score and it need not be read. */
  readonly exact: boolean;
}

/** Per query word (`QueryWords.known`): several words filed share its hash, so an entry word with it may be either. */
const SHARED = 0;
/** The one word filed with its hash is this query word: an entry word with the hash is it. */
const IS_IT = 1;
/** No word, or one other word, is filed with its hash: an entry word with the hash is not it. */
const NOT_IT = 2;

/**
 * `relevanceBound`'s second answer (NaN when it has none): the candidate's relevance, exactly as `relevanceOfText`
 * would compute it from the text, when its entry alone says it — every entry word with a query word's hash is known
 * to be or not to be that word (`known`), and no frequency or length saturated. The entry's words come in their first
 * occurrence's order with their frequencies, so the sum is the same additions in the same order.
 */
let exactRelevance = NaN;

const WORDS_AT = { pool: new Uint8Array(0), at: 0 };

/** A subject-filtered query's words as `relevanceBound` needs them, built once per query. */
interface QueryWords {
  readonly hashes: readonly number[];
  readonly weights: readonly number[];
  /** Per query word: SHARED, IS_IT or NOT_IT. */
  readonly known: Uint8Array;
  /** The bound of a fact nothing is known about: every word at its largest (idf × (k1 + 1)). */
  readonly loose: number;
  readonly readTexts: PageReader;
}

/**
 * A subject-filtered candidate's text relevance bound from its words' hashes: SUBJECT_MATCH_RELEVANCE exactly when it
 * holds no query word, else the BM25 sum its hashes give (its relevance, unless hashes collide), with a margin for
 * the order of addition; a word whose frequency or length saturated counts at its largest. Unknown facts (no entry,
 * too many words) get the loosest bound, so they are read.
 */
function relevanceBound(ctx: RecallContext, seq: number, b: QueryWords, bm25With: (weight: number, tf: number, len: number) => number): number {
  const { hashes, weights, loose } = b;
  if (!ctx.postings.words.find(seq, b.readTexts, WORDS_AT)) return loose;
  const { pool, at } = WORDS_AT;
  const len = pool[at]!;
  const n = pool[at + 1]!;
  if (n === TOO_MANY) return loose;
  const end = at + 2 + n * 3;
  let o = at + 2;
  for (; o < end; o += 3) {
    const h = (pool[o]! << 8) | pool[o + 1]!;
    if ((QUERY_HASHES[h >>> 5]! & (1 << (h & 31))) !== 0) break;
  }
  if (o === end) return SUBJECT_MATCH_RELEVANCE;
  let sum = 0;
  let any = false;
  for (let j = 0; j < hashes.length; j++) {
    const h = hashes[j]!;
    // Every word with this hash, not the first: two words' hashes may collide, and BM25 grows with the frequency,
    // so only the highest is a bound.
    let tf = -1;
    for (let p = at + 2; p < end; p += 3) {
      if (((pool[p]! << 8) | pool[p + 1]!) === h && pool[p + 2]! > tf) tf = pool[p + 2]!;
    }
    if (tf < 0) continue;
    any = true;
    sum += tf >= 255 || len >= 255 ? weights[j]! * (K1 + 1) : bm25With(weights[j]!, tf, len);
  }
  if (len < 255) exactRelevance = exactOfEntry(pool, at + 2, end, b, len, bm25With);
  return any ? (sum + SUBJECT_MATCH_RELEVANCE) * (1 + 1e-9) : SUBJECT_MATCH_RELEVANCE;
}

/** The relevance an entry's words [from, end) give when each one with a query word's hash is known (else NaN). */
function exactOfEntry(pool: Uint8Array, from: number, end: number, b: QueryWords, len: number, bm25With: (weight: number, tf: number, len: number) => number): number {
  const { hashes, weights, known } = b;
  let sum = 0;
  for (let p = from; p < end; p += 3) {
    const h = (pool[p]! << 8) | pool[p + 1]!;
    if ((QUERY_HASHES[h >>> 5]! & (1 << (h & 31))) === 0) continue;
    for (let k = 0; k < hashes.length; k++) {
      if (hashes[k] !== h || known[k] === NOT_IT) continue;
      const tf = pool[p + 2]!;
      if (known[k] === SHARED || tf >= 255) return NaN;
      sum += bm25With(weights[k]!, tf, len);
    }
  }
  return sum;
}

/** The texts of the facts created in [from, to), for `fact-words.ts` to file what was indexed before this process. */
export function readFactTexts(t: Tables, from: number, to: number, add: (seq: number, text: string) => void): void {
  // Only the text: decoding whole facts was a third of the time a page of fact words took to fill.
  for (const { key, value } of t.facts.getRange({ start: from, end: to })) add(key, readFactText(value));
}

/**
 * Walks `term`'s postings newest first past the `start` already examined (of which `live` passed), handing `take`
 * each one that passes `test` until `want` have, or `budget` postings were examined; true when the budget ran out
 * first (older postings were left). `forNewest` cannot stop at a count of its own visits, so the walk goes in rounds
 * of twice the last, each visiting the previous rounds' postings again without testing them (visiting is a loop
 * over arrays; the test reads a fact's numbers): at most twice the postings examined are visited.
 */
function walkLive(ctx: RecallContext, term: string, want: number, live: number, start: number, budget: number, maxSeq: number, test: LiveTest, take: PostingVisitor): boolean {
  let examined = start;
  let rounds = 0;
  while (live < want) {
    if (examined >= budget) return true;
    // From nothing, the window itself. After a window with a few dead facts, twice as many more as are missing
    // (and a few): in the bench's 1M store a subject's window of 40 holds ~2 superseded values, and the next 12 or so
    // postings replace them. After that, twice what was examined: a list of dead facts reaches the budget in
    // ~log2(WALK_FACTOR) rounds.
    const missing = want - live;
    const cap = Math.min(budget, examined === 0 ? want : rounds++ === 0 ? examined + 2 * missing + 8 : Math.max(examined * 2, examined + 2 * missing));
    const from = examined;
    let i = 0;
    let got = 0;
    const visited = ctx.postings.forNewest(term, cap, maxSeq, (seq, tf, len) => {
      if (i++ < from) return;
      WALKED_SEQS[got] = seq;
      WALKED_TF_LEN[got++] = tf * 65536 + len;
    });
    // The round's numbers loaded first, in a loop of their own: at 1M facts each is a cache miss, waited for together.
    test.touch(WALKED_SEQS, got);
    for (let k = 0; k < got && live < want; k++) {
      examined++;
      const seq = (walkedTo = WALKED_SEQS[k]!);
      if (!test.passes(seq)) continue;
      live++;
      const x = WALKED_TF_LEN[k]!;
      take(seq, x >>> 16, x & 0xffff);
    }
    if (visited < cap) return false; // the list ended
  }
  return false;
}

/** The sequence of the last posting `walkLive` examined (left as it was when it examined none). */
let walkedTo = 0;

/**
 * A subject-filtered recall's candidates beyond its window: the facts of its subject (and predicate) older than every
 * posting the window examined (`before`) that hold a query word, found among each word's TERM_CAP newest postings by
 * their subjects in memory (`fact-subjects.ts`), the live ones best BM25 first, at most `cap`, appended to `out`.
 * Without them a subject with more than a window of newer live facts hid an older one from a query naming it. True
 * when a word has postings older than those looked at: a fact of the subject holding only such words may be missing.
 */
function addSubjectMentions(ctx: RecallContext, key: SubjectKey, words: readonly string[], dfs: readonly number[], idf: ReadonlyMap<string, number>, avgLength: number, before: number, maxSeq: number, live: LiveTest, cap: number, out: Candidate[]): boolean {
  let cut = false;
  resetRelevance();
  const m = MENTIONS;
  m.subjects = ctx.subjects!;
  m.key = key;
  m.before = before;
  m.avgLength = avgLength;
  m.live = live;
  try {
    for (let i = 0; i < words.length; i++) {
      const df = dfs[i]!;
      if (df > TERM_CAP) cut = true;
      m.weight = idf.get(words[i]!) ?? 0;
      ctx.postings.forNewestBefore(wordTerm(words[i]!), Math.min(TERM_CAP, df), maxSeq, before, addMention, addMentionRun);
    }
  } finally {
    m.live = undefined;
  }
  if (candidateCount() === 0) return cut;
  // Best relevance first, as a free-text query's candidates: what the cap leaves out had `cap` more relevant ones.
  for (const c of bestCandidates(cap)) out.push({ seq: c.seq, relevance: 0 });
  return cut;
}

/**
 * What `addMention` and `addMentionRun` test and add with: module state, not closures made per query word (each
 * closure a function object, and under tsx a name set on it: ~3 µs of a subject-filtered query at 1M facts).
 */
const MENTIONS: { subjects: FactSubjects | undefined; key: SubjectKey | undefined; before: number; weight: number; avgLength: number; live: LiveTest | undefined } = {
  subjects: undefined,
  key: undefined,
  before: 0,
  weight: 0,
  avgLength: 1,
  live: undefined,
};

/** A query word's posting, taken when it is a live fact of the subject older than its window (`addSubjectMentions`). */
const addMention: PostingVisitor = (seq, tf, len) => {
  const m = MENTIONS;
  // Only the subject's facts are tested for life (in the bench's 1M store 0.04 a query).
  if (seq < m.before && m.subjects!.is(seq, m.key!) && m.live!.passes(seq)) addRelevance(seq, bm25(m.weight, tf, len, m.avgLength));
};

/**
 * `addMention` of a decoded merged entry's `take` newest postings. They come newest first, so those older than the
 * window — the only ones that can be taken — are the run's last ones: found from its end, one look when there are
 * none (a common word's newest postings are all newer than a busy subject's window), in the order memory holds them
 * (a bisection's dependent probes into a cold run cost more).
 */
const addMentionRun: MergedVisitor = (postings, start, count, take) => {
  const m = MENTIONS;
  const before = m.before;
  let lo = take;
  for (let at = (start + take - 1) % count; lo > 0 && postings[at * 2]! < before; at = at === 0 ? count - 1 : at - 1) lo--;
  if (lo === take) return;
  const subjects = m.subjects!;
  subjects.touchRun(postings, start, count, lo, take);
  let at = start + lo;
  if (at >= count) at -= count;
  for (let k = lo; k < take; k++) {
    const seq = postings[at * 2]!;
    if (subjects.is(seq, m.key!) && m.live!.passes(seq)) {
      const x = postings[at * 2 + 1]!;
      addRelevance(seq, bm25(m.weight, x >>> 8, x & 255, m.avgLength));
    }
    if (++at === count) at = 0;
  }
};

/** A walk's round of postings (`walkLive`): at most a budget's, 16 windows of 64. */
const WALKED_SEQS = new Float64Array(FILTER_CAP * WALK_FACTOR);
const WALKED_TF_LEN = new Uint32Array(FILTER_CAP * WALK_FACTOR);

/**
 * Whether a fact can pass a recall's filters, from its numbers in memory (`score-numbers.ts`), or from its record's
 * when the snapshot is not the applier's — the same numbers, so the same answer on every replica. False only for a
 * fact the scoring would leave out. With `asOf`, a fact ended when it was closed (`until` −Infinity) may have been
 * true then, and only its record's times say: it is read (as the scoring reads every candidate of an `asOf` query).
 */
class LiveTest {
  /** Its numbers' scratch, shared (recall is synchronous). */
  private readonly n: ScoredNumbers = WALK_NUMBERS;

  constructor(
    private readonly ctx: RecallContext,
    private readonly q: RecallQuery,
    private readonly at: number,
    private readonly floor: number,
  ) {}

  /** Loads the numbers of `seqs`' first `n` ahead of `passes` (`ScoreNumbers.touchSeqs`). */
  touch(seqs: Float64Array, n: number): void {
    this.ctx.scores?.touchSeqs(seqs, n);
  }

  passes(seq: number): boolean {
    const n = this.n;
    const scores = this.ctx.scores;
    if (scores !== undefined) {
      if (!scores.read(seq, n)) return false;
    } else {
      const bytes = this.ctx.t.facts.getBinaryFast(seq);
      if (bytes === undefined) return false;
      peekFact(bytes, n);
      withWindow(n);
    }
    if (n.status === 'forgotten') return false;
    const q = this.q;
    if (q.includeInactive !== true) {
      if (q.asOf === undefined) {
        if (!trueNow(n.since, n.until, this.at)) return false;
      } else {
        if (n.since > q.asOf || (n.until <= q.asOf && n.until !== -Infinity)) return false;
        // Ended when it was closed: whether that was by `asOf` only its record's times say (read as the scoring does).
        if (n.until === -Infinity) {
          const bytes = this.ctx.t.facts.getBinaryFast(seq);
          if (bytes === undefined || !believedTrueAt(peekFact(bytes, n), q.asOf)) return false;
        }
      }
    }
    // Within one half-life it keeps at least half its confidence (2^−x ≥ 0.5 exactly for x ≤ 1): no power needed.
    if (n.confidence >= 2 * this.floor && this.at - n.reinforcedAt <= n.halfLifeDays * DAY_MS) return true;
    return effectiveConfidence(n, this.at) >= this.floor;
  }
}

interface Scored {
  readonly seq: number;
  readonly score: number;
  readonly effective: number;
  /** The fact when it was decoded for scoring, or its bytes when it entered the top k. */
  readonly fact: Fact | undefined;
  readonly bytes: Buffer | undefined;
}

const PEEKED: ScoredNumbers = { status: 'active', confidence: 0, halfLifeDays: 0, validFrom: 0, validTo: undefined, recordedAt: 0, invalidatedAt: undefined, reinforcedAt: 0, since: 0, until: 0 };
/** A walked fact's numbers (`LiveTest`). */
const WALK_NUMBERS: ScoredNumbers = { ...PEEKED };
/** A whole fact's numbers for `visible` (graph expansion). */
const EXPANDED: ScoredNumbers = { ...PEEKED };

/** `n`, numbers peeked from a record, with the bounds of its world interval for a plain recall (`world-time.ts`). */
function withWindow(n: ScoredNumbers): ScoredNumbers {
  n.since = currentSince(n);
  n.until = currentUntil(n);
  return n;
}

function factNumbers(f: Fact): ScoredNumbers {
  const n = EXPANDED;
  n.status = f.status;
  n.confidence = f.confidence;
  n.halfLifeDays = f.halfLifeDays;
  n.validFrom = f.validFrom;
  n.validTo = f.validTo;
  n.recordedAt = f.recordedAt;
  n.invalidatedAt = f.invalidatedAt;
  n.reinforcedAt = f.reinforcedAt;
  return withWindow(n);
}

/** Keeps `best` the highest `limit` scores, descending; true when `score` entered. */
function keepBest(best: number[], score: number, limit: number): boolean {
  if (best.length === limit && score <= best[limit - 1]!) return false;
  let i = best.length === limit ? limit - 1 : best.length;
  while (i > 0 && best[i - 1]! < score) {
    best[i] = best[i - 1]!;
    i--;
  }
  best[i] = score;
  return true;
}

/** The fact as recall returns it: its own fields, then the scores (the same keys, in the same order, as before). */
function recalled(f: Fact, effectiveConfidence: number, score: number, hop: number): RecalledFact {
  const r = f as { -readonly [K in keyof RecalledFact]: RecalledFact[K] };
  r.effectiveConfidence = effectiveConfidence;
  r.score = score;
  r.hop = hop;
  return r;
}

function byScore(a: RecalledFact, b: RecalledFact): number {
  return b.score - a.score || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
}

function inverseDocumentFrequency(docs: number, df: number): number {
  return Math.log(1 + (docs - df + 0.5) / (df + 0.5));
}

/** The fact created at `seq` (decoded at once from lmdb-js's reused read buffer). */
function readFact(ctx: RecallContext, seq: number): Fact | undefined {
  const bytes = ctx.t.facts.getBinaryFast(seq);
  return bytes === undefined ? undefined : decodeFact(bytes, ctx.domain);
}

/**
 * Believed at the recall's time and true then in the world (`world-time.ts`), whatever the status: a value recorded
 * as superseded by one valid later is the true one until then, and an active value valid from a later time is not
 * true yet. A plain recall knows everything the shard recorded; one `asOf` only what was recorded by then. With
 * `includeInactive`, every fact recorded by then that is not forgotten.
 */
function visible(f: ScoredNumbers, q: RecallQuery, at: number): boolean {
  if (f.status === 'forgotten') return false;
  if (q.asOf !== undefined) return q.includeInactive === true ? f.recordedAt <= q.asOf : believedTrueAt(f, q.asOf);
  return q.includeInactive === true || trueNow(f.since, f.until, at);
}

function score(f: Fact, relevance: number, at: number, floor: number, hop: number): RecalledFact | undefined {
  const effective = effectiveConfidence(f, at);
  if (effective < floor || relevance <= 0) return undefined;
  return recalled(f, effective, relevance * effective * recencyWeight(f.recordedAt, at), hop);
}

/** Graph expansion: facts about the entities the direct matches mention, hop by hop, with bounded fan-out. */
function expand(ctx: RecallContext, q: RecallQuery, direct: RecalledFact[], seen: Set<number>, at: number, floor: number): RecalledFact[] {
  const hops = q.hops ?? 0;
  if (hops === 0 || direct.length === 0) return [];
  const base = Math.max(...direct.map((f) => (f.score > 0 ? f.score / (f.effectiveConfidence * recencyWeight(f.recordedAt, at)) : 0)));
  const out: RecalledFact[] = [];
  const visited = new Set<string>();
  let frontier = entitiesOf(direct);
  for (let hop = 1; hop <= hops && frontier.length > 0; hop++) {
    const next: string[] = [];
    for (const entity of frontier.slice(0, HOP_ENTITIES)) {
      if (visited.has(entity)) continue;
      visited.add(entity);
      for (const term of [subjectTerm(entity), objectEntityTerm(entity)]) {
        for (const p of ctx.postings.newest(term, HOP_FACTS_PER_ENTITY, ctx.appliedPosition)) {
          const f = readFact(ctx, p.seq);
          if (f === undefined || seen.has(f.seq) || !visible(factNumbers(f), q, at)) continue;
          const scored = score(f, base * HOP_DECAY ** hop, at, floor, hop);
          if (scored === undefined) continue;
          seen.add(f.seq);
          out.push(scored);
          next.push(...entitiesOf([f]));
        }
      }
    }
    frontier = next.filter((e) => !visited.has(e));
  }
  return out;
}

function entitiesOf(facts: readonly Fact[]): string[] {
  const out: string[] = [];
  for (const f of facts) {
    if (f.subject !== undefined) out.push(f.subject);
    if (f.object !== undefined && typeof f.object !== 'string') out.push(f.object.entity);
  }
  return [...new Set(out)];
}

/**
 * The last sequence recorded at or before `time`, by binary search over the time-ordered fact ids (the leader
 * stamps `recordedAt` in log order, so it grows with the sequence). Bounds `asOf` scans without a time index.
 */
function lastSeqRecordedBy(ctx: RecallContext, time: number): number {
  let lo = 0;
  let hi = ctx.appliedPosition;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    const first = firstFactFrom(ctx, mid);
    if (first !== undefined && first.recordedAt <= time) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function firstFactFrom(ctx: RecallContext, seq: number): Fact | undefined {
  for (const { value } of ctx.t.facts.getRange({ start: seq, limit: 1 })) {
    return decodeFact(value, ctx.domain);
  }
  return undefined;
}
