/** The router: domain classification, fan-out recall, and tasks that re-route mid-task, served on `sm.mem.*`. */
export type { Classifier, DomainProbability, NaiveBayesOptions } from './classifier.ts';
export type { CreateClassifier } from './load-classifier.ts';
export type { LabelledExample, SharedLearningOptions } from './learning.ts';
export type { Router, RouterOptions, RouterRecallReply } from './service.ts';
export type { SubscriptionCallback } from './guarded.ts';
export type { TaskContext, TaskEvent, TaskHistoryEntry, TaskInput, TaskState } from './task-machine.ts';
export type { TaskView } from './task-store.ts';
export type { TaskSummary, TaskMove } from './tasks.ts';

export { NaiveBayesClassifier, DEFAULT_NAIVE_BAYES, FULL_EVIDENCE_WORDS, fanOut } from './classifier.ts';
export { words, features, stem } from './tokenize.ts';
export { createConfiguredClassifier } from './load-classifier.ts';
export { SharedLearning, LEARNING_STREAM, LEARNING_SUBJECT } from './learning.ts';
export { startRouter, DEFAULT_RECALL_LIMIT, ROUTER_NODE_HEADER } from './service.ts';
export { ShardClient, isPlainSuccess } from './shard-client.ts';
export { ReplyMux, RequestFailed } from './reply-mux.ts';
export { taskMachine, evidenceShares, overtakingDomain, DEFAULT_EVIDENCE_DECAY } from './task-machine.ts';
export { TaskStore, TASK_BUCKET, newTask, stepTask } from './task-store.ts';
export { TaskService, CONTEXT_LIMIT, CONTEXT_SUBJECTS } from './tasks.ts';
export { LeaderBeats } from './leader-beats.ts';
export { WriteRoutes, WRITE_ROUTE_BUCKET, WRITE_ROUTE_MAX_AGE_MS } from './write-routes.ts';
export { guarded } from './guarded.ts';
