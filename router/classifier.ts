/**
 * Which domain a text belongs to. `Classifier` is the seam (an operator can plug in a local model through
 * `config.router.classifierModule`); `NaiveBayesClassifier` is the built-in default: multinomial naive Bayes over
 * the words and bigrams of `tokenize.ts`, trained from each domain's description and seeds, and improved online by
 * `learn()` from labelled traffic (see `learning.ts` for how every router sees the same examples).
 *
 * Calibration: naive Bayes treats every word as independent evidence, so its raw posteriors saturate at 0 or 1 after
 * a handful of words. The log-likelihoods are divided by a temperature proportional to the number of known features
 * (a per-feature average) before the softmax, so a long text is not more "sure" than a short one merely for being
 * long, and the router's fan-out margin and floor select the domains that are honestly in play. The constants were
 * chosen on the labelled set in `test/fixtures/labelled.ts`: a hotter temperature widens recall fan-out (more
 * ambiguous cases reach every plausible domain), a colder one asks fewer shards; `test/router/classifier.test.ts`
 * prints both figures.
 */
import type { DomainConfig } from '../config/index.ts';
import { features, words } from './tokenize.ts';

export interface DomainProbability {
  readonly domain: string;
  readonly p: number;
}

/** A domain classifier. `classify` may be async so that a model-backed one fits the same seam. */
export interface Classifier {
  /** The domains it chooses among. */
  readonly domains: readonly string[];
  /** A distribution over `domains`, best first, summing to 1. */
  classify(text: string): readonly DomainProbability[] | Promise<readonly DomainProbability[]>;
  /** One labelled example (an explicit domain or an explicit re-route). Unknown domains are ignored. */
  learn(text: string, domain: string): void;
  /**
   * How much a text says, 0..1: a task weighs an observation's distribution by it, so a lone word ("meeting") moves
   * a task less than a sentence that is plainly about something. Absent: every text counts fully.
   */
  informativeness?(text: string): number;
}

/** Known words at which a text counts as fully informative. */
export const FULL_EVIDENCE_WORDS = 3;

export interface NaiveBayesOptions {
  /** Additive smoothing per feature. */
  readonly alpha?: number;
  /** How many times the one-sentence description counts, relative to one seed. */
  readonly descriptionWeight?: number;
  /** Temperature = base × (known features)^exponent. */
  readonly temperatureBase?: number;
  readonly temperatureExponent?: number;
}

export const DEFAULT_NAIVE_BAYES: Required<NaiveBayesOptions> = {
  alpha: 0.3,
  descriptionWeight: 2,
  temperatureBase: 2,
  temperatureExponent: 1,
};

interface ClassCounts {
  readonly counts: Map<string, number>;
  total: number;
}

export class NaiveBayesClassifier implements Classifier {
  readonly domains: readonly string[];
  private readonly options: Required<NaiveBayesOptions>;
  private readonly classes = new Map<string, ClassCounts>();
  /** Every feature seen in any class: the smoothing denominator and the "known word" test. */
  private readonly vocabulary = new Set<string>();

  constructor(domains: readonly Pick<DomainConfig, 'name' | 'description' | 'seeds'>[], options: NaiveBayesOptions = {}) {
    this.options = { ...DEFAULT_NAIVE_BAYES, ...options };
    this.domains = domains.map((d) => d.name);
    for (const d of domains) this.classes.set(d.name, { counts: new Map(), total: 0 });
    for (const d of domains) {
      this.add(d.description, d.name, this.options.descriptionWeight);
      this.add(d.name, d.name, this.options.descriptionWeight);
      for (const seed of d.seeds) this.add(seed, d.name, 1);
    }
  }

  learn(text: string, domain: string): void {
    this.add(text, domain, 1);
  }

  classify(text: string): readonly DomainProbability[] {
    const known = features(text).filter((f) => this.vocabulary.has(f));
    const v = this.vocabulary.size;
    const { alpha, temperatureBase, temperatureExponent } = this.options;
    const logLikelihoods = this.domains.map((domain) => {
      const c = this.classes.get(domain)!;
      let sum = 0;
      for (const f of known) sum += Math.log(((c.counts.get(f) ?? 0) + alpha) / (c.total + alpha * v));
      return sum;
    });
    const temperature = temperatureBase * Math.max(1, known.length) ** temperatureExponent;
    return softmax(logLikelihoods, temperature)
      .map((p, i) => ({ domain: this.domains[i]!, p }))
      .sort((a, b) => b.p - a.p);
  }

  informativeness(text: string): number {
    const known = words(text).filter((w) => this.vocabulary.has(w)).length;
    return Math.min(1, known / FULL_EVIDENCE_WORDS);
  }

  private add(text: string, domain: string, weight: number): void {
    const c = this.classes.get(domain);
    if (!c) return;
    for (const f of features(text)) {
      c.counts.set(f, (c.counts.get(f) ?? 0) + weight);
      c.total += weight;
      this.vocabulary.add(f);
    }
  }
}

/** Uniform class priors: how often agents wrote to a domain says nothing about what the next text is about. */
function softmax(logits: readonly number[], temperature: number): number[] {
  const scaled = logits.map((l) => l / temperature);
  const max = Math.max(...scaled);
  const exps = scaled.map((s) => Math.exp(s - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/**
 * The domains a recall asks: every domain with p ≥ max(floor, top − margin). The top domain is always in.
 */
export function fanOut(distribution: readonly DomainProbability[], margin: number, floor: number): string[] {
  const top = distribution[0];
  if (!top) return [];
  const threshold = Math.max(floor, top.p - margin);
  return distribution.filter((d, i) => i === 0 || d.p >= threshold).map((d) => d.domain);
}
