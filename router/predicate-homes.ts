/**
 * Which domains declare each predicate in their `predicates` specs (cluster.config.ts): a predicate's homes.
 *
 * A `one` predicate supersedes only inside one shard, so a new value written to another domain leaves the old one
 * active (walkthrough-session12 F10). The operator's declaration says where a predicate lives; the router routes a
 * write without `domain` by it before asking the classifier, and a recall with a `predicate` filter and no query
 * text asks the predicate's homes. `defaultPredicate` declares nothing: every domain has one.
 *
 * Decision record: docs/decisions.md §73.
 */
import type { DomainConfig } from '../config/index.ts';

export class PredicateHomes {
  /** A Map, not an object: a predicate named like an `Object.prototype` member is declared by no domain. */
  private readonly homes = new Map<string, readonly string[]>();

  constructor(domains: readonly Pick<DomainConfig, 'name' | 'predicates'>[]) {
    for (const d of domains) {
      for (const predicate of Object.keys(d.predicates ?? {})) this.homes.set(predicate, [...(this.homes.get(predicate) ?? []), d.name]);
    }
  }

  /**
   * The domains that declare `predicate`, in config order; empty when none does (or no predicate was given).
   * @example
   * new PredicateHomes(config.domains).of('prefers_attachment_format'); // ['email'] with the shipped config
   */
  of(predicate: string | undefined): readonly string[] {
    return (predicate === undefined ? undefined : this.homes.get(predicate)) ?? [];
  }
}
