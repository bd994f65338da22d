/** The router: domain classification, fan-out recall, and tasks that re-route mid-task, served on `sm.mem.*`. */
export type { Classifier, DomainProbability, NaiveBayesOptions } from './classifier.ts';
export { NaiveBayesClassifier, DEFAULT_NAIVE_BAYES, fanOut } from './classifier.ts';
export { words, features, stem } from './tokenize.ts';
