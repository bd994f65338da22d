/**
 * The classifier contract run against the built-in naive Bayes and against an operator's module loaded through
 * `config.router.classifierModule` (a keyword classifier written to a temp dir), so the seam holds for both.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveConfig } from '../../config/index.ts';
import { NaiveBayesClassifier, createConfiguredClassifier } from '../../router/index.ts';
import shipped from '../../cluster.config.ts';
import { classifierContract } from './classifier-contract.ts';

const dir = mkdtempSync(join(tmpdir(), 'sm-classifier-contract-'));
process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
const modulePath = join(dir, 'keywords.mjs');
writeFileSync(
  modulePath,
  `// A frozen keyword classifier: the shape an operator's model wrapper would have.
   const KEYWORDS = { calendar: ['meeting', 'tuesday', 'book'], email: ['email', 'invoice', 'reply'], files: ['spreadsheet', 'drive', 'folder'] };
   export function createClassifier(config) {
     const domains = config.domains.map((d) => d.name);
     return {
       domains,
       async classify(text) {
         const t = text.toLowerCase();
         const hits = domains.map((d) => 1 + (KEYWORDS[d] ?? []).filter((k) => t.includes(k)).length);
         const total = hits.reduce((a, b) => a + b, 0);
         return domains.map((domain, i) => ({ domain, p: hits[i] / total })).sort((a, b) => b.p - a.p || a.domain.localeCompare(b.domain));
       },
       learn() {},
     };
   }\n`,
);

classifierContract('naive Bayes', async () => new NaiveBayesClassifier(shipped.domains), { learns: true });
classifierContract(
  'operator module',
  () => createConfiguredClassifier(resolveConfig({ ...shipped, router: { ...shipped.router, classifierModule: modulePath } })),
  { learns: false },
);
