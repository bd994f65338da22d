/**
 * What every `Classifier` must do, as one suite run against each implementation (the built-in naive Bayes, an
 * operator's module): a distribution over exactly the configured domains, best first, summing to 1, the same answer
 * for the same text, and `learn` that never throws — and, for classifiers that learn online, learns.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import type { Classifier } from '../../router/index.ts';

export interface ContractOptions {
  /** Whether `learn` is expected to move the distribution (a frozen model may ignore it). */
  readonly learns: boolean;
}

export function classifierContract(name: string, make: () => Promise<Classifier>, options: ContractOptions): void {
  const s = suite(`classifier contract: ${name}`);

  s('classify - one probability per configured domain, best first, summing to 1', async () => {
    const c = await make();
    for (const text of ['book a meeting with Alice on Tuesday', 'forward the invoice by email', 'zz', '']) {
      const d = await c.classify(text);
      assert.equal(d.map((x) => x.domain).sort(), [...c.domains].sort(), text);
      for (const x of d) assert.ok(x.p >= 0 && x.p <= 1, `${x.domain}=${x.p}`);
      for (let i = 1; i < d.length; i++) assert.ok(d[i - 1]!.p >= d[i]!.p);
      assert.ok(Math.abs(d.reduce((sum, x) => sum + x.p, 0) - 1) < 1e-6);
    }
  });

  s('classify - the same text gets the same answer', async () => {
    const c = await make();
    assert.equal(await c.classify('save the spreadsheet to the shared drive'), await c.classify('save the spreadsheet to the shared drive'));
  });

  s('learn - never throws, not even for a domain that does not exist', async () => {
    const c = await make();
    c.learn('the quokka renders are big', c.domains[0]!);
    c.learn('anything', 'no_such_domain');
    assert.equal((await c.classify('anything')).length, c.domains.length);
  });

  if (options.learns) {
    s('learn - repeated labelled examples make their domain the top class for that text', async () => {
      const c = await make();
      const target = c.domains[c.domains.length - 1]!;
      for (let i = 0; i < 5; i++) c.learn('wombat ledger reconciliation', target);
      assert.is((await c.classify('wombat ledger reconciliation'))[0]!.domain, target);
    });
  }

  s.run();
}
