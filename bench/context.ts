/**
 * What every bench section is handed: the shared nats-server and connection, the cleanup registry, a logger, and
 * the loop budgets for this mode (`--quick` keeps the whole run under three minutes on a 2-core machine).
 */
import type { NatsConnection } from 'nats';
import type { Cleanup } from './cleanup.ts';
import type { LoopBounds } from './stats.ts';

export interface Budgets {
  /** Sequential latency loops (p50/p99). */
  readonly seq: LoopBounds;
  /** Concurrent throughput loops. */
  readonly tput: LoopBounds;
  /** Facts preloaded before each set of shardmind and Redis measurements. */
  readonly factSizes: readonly number[];
  /** Entities in the MCP memory file at which a write is timed. */
  readonly serverMemorySizes: readonly number[];
  /** Writes each of the two concurrent writers makes in the lost-writes test. */
  readonly concurrentWrites: number;
  /** Concurrency levels for shardmind and Redis throughput. */
  readonly clients: readonly number[];
}

export const QUICK: Budgets = {
  seq: { count: 1_500, maxMs: 1_200, warmup: 100 },
  tput: { count: 20_000, maxMs: 1_200, warmup: 64 },
  factSizes: [10_000, 100_000],
  serverMemorySizes: [1_000, 10_000],
  concurrentWrites: 200,
  clients: [1, 16, 64],
};

export const FULL: Budgets = {
  seq: { count: 5_000, maxMs: 5_000, warmup: 200 },
  tput: { count: 200_000, maxMs: 5_000, warmup: 64 },
  factSizes: [10_000, 100_000, 1_000_000],
  serverMemorySizes: [1_000, 10_000, 50_000],
  concurrentWrites: 1_000,
  clients: [1, 16, 64],
};

export interface BenchContext {
  readonly natsUrl: string;
  /** The nats-server's pid, for CPU accounting. */
  readonly natsPid: number;
  readonly nc: NatsConnection;
  readonly cleanup: Cleanup;
  readonly budgets: Budgets;
  readonly quick: boolean;
  log(line: string): void;
}

/** What the peers need: no NATS. */
export type PeerContext = Pick<BenchContext, 'cleanup' | 'budgets' | 'quick' | 'log'>;
