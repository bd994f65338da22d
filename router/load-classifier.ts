/**
 * The classifier a router uses: the built-in naive Bayes, or the operator's own from `config.router.classifierModule`
 * (a module exporting `createClassifier(config)`, sync or async — e.g. a wrapper around a local model on the Mini).
 * A module that does not load or does not export that function stops the router at start, with a message that
 * says which, rather than routing with a classifier nobody chose.
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ClusterConfig } from '../config/index.ts';
import { NaiveBayesClassifier, type Classifier } from './classifier.ts';

/** What a `classifierModule` must export. */
export type CreateClassifier = (config: ClusterConfig) => Classifier | Promise<Classifier>;

/**
 * @example
 * // my-classifier.ts
 * export function createClassifier(config) { return new MyModelClassifier(config.domains); }
 * // cluster.config.ts: router: { classifierModule: './my-classifier.ts' }
 */
export async function createConfiguredClassifier(config: ClusterConfig, baseDir = process.cwd()): Promise<Classifier> {
  const path = config.router.classifierModule;
  if (!path) return new NaiveBayesClassifier(config.domains);
  const url = pathToFileURL(isAbsolute(path) ? path : resolve(baseDir, path)).href;
  let mod: { createClassifier?: unknown };
  try {
    mod = (await import(url)) as { createClassifier?: unknown };
  } catch (cause) {
    throw new Error(`router.classifierModule: cannot load ${path}: ${(cause as Error).message}`, { cause });
  }
  if (typeof mod.createClassifier !== 'function') {
    throw new Error(`router.classifierModule: ${path} does not export a createClassifier(config) function`);
  }
  const classifier = await (mod.createClassifier as CreateClassifier)(config);
  const names = config.domains.map((d) => d.name).sort().join(',');
  if ([...classifier.domains].sort().join(',') !== names) {
    throw new Error(`router.classifierModule: ${path} classifies into [${classifier.domains.join(', ')}], the config has [${names}]`);
  }
  return classifier;
}
