/**
 * What the leader writes into an assert so that apply decides with the log's values, not each host's config: the
 * fact's half-life (when the request left it out) and its predicate's cardinality, both resolved from the leader's
 * `predicates` and `defaultPredicate`.
 *
 * Why: apply resolved both from the options its host was started with, so two replicas whose `cluster.config.ts`
 * differed (an edited config copied to the Minis one by one, restarted at leisure) applied the same log differently —
 * one closed the old value of a `one` predicate, the other kept both — and answers changed after a failover. With the
 * values in the entry, the same log gives the same state whatever each host's config says.
 *
 * Only at log level 3 (`log-level.ts`): a level-2 build would ignore `cardinality` and apply by its own config, so the
 * pipeline resolves entries only while every replica it hears from understands level 3, and writes them as before
 * otherwise (the same bytes, the same `entryHash`).
 */
import { DEFAULT_PREDICATE } from '../shards/index.ts';
import type { AssertEntry, Cardinality, PredicateSpec } from '../shards/index.ts';

export class PredicateSpecs {
  /** A Map of the config's own keys: a predicate named like an `Object.prototype` member has no spec (as in apply). */
  private readonly specs: ReadonlyMap<string, PredicateSpec>;
  private readonly fallback: PredicateSpec;

  constructor(predicates: Readonly<Record<string, PredicateSpec>> | undefined, defaultPredicate: PredicateSpec | undefined) {
    this.specs = new Map(Object.entries(predicates ?? {}));
    this.fallback = defaultPredicate ?? DEFAULT_PREDICATE;
  }

  /** The spec apply would use for `predicate` on a store opened with this config. */
  specOf(predicate: string | undefined): PredicateSpec {
    return (predicate !== undefined ? this.specs.get(predicate) : undefined) ?? this.fallback;
  }

  /**
   * The entry with its half-life filled in (when the fact has none) and, for a fact with a subject and a predicate
   * (the only ones cardinality decides for), `cardinality`. A new object; the fact's other fields are kept as given.
   */
  resolve(entry: AssertEntry): AssertEntry {
    const f = entry.fact;
    const spec = this.specOf(f.predicate);
    const fact = f.halfLifeDays === undefined ? { ...f, halfLifeDays: spec.halfLifeDays } : f;
    const cardinality: Cardinality | undefined = f.subject !== undefined && f.predicate !== undefined ? spec.cardinality : undefined;
    return cardinality === undefined ? { ...entry, fact } : { ...entry, fact, cardinality };
  }
}

/** The pipeline's `resolveSpecs` for a domain's config (`predicates`, `defaultPredicate`). */
export function specResolver(domain: { readonly predicates?: Readonly<Record<string, PredicateSpec>>; readonly defaultPredicate?: PredicateSpec }): (entry: AssertEntry) => AssertEntry {
  const specs = new PredicateSpecs(domain.predicates, domain.defaultPredicate);
  return (entry) => specs.resolve(entry);
}
