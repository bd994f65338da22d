/**
 * `shardmind bench [--quick] [--only …] [--out DIR]` and `shardmind bench store [--quick]`: the benchmarks
 * (`bench/main.ts`, `bench/store.ts`, the same as `npm run bench` and `npm run bench:store`) from the CLI, as the
 * design lists them. Each runs in its own Node process with `--expose-gc` (the store bench collects garbage between
 * phases), its output straight to this terminal; the exit code is the bench's.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Command } from './command.ts';
import { tether } from './tether.ts';

const ROOT = join(import.meta.dirname, '..');

const USAGE = `usage: shardmind bench [--quick] [--only floor,shardmind,redis,server-memory] [--profile] [--out DIR]
       shardmind bench store [--quick]

The first measures the floor (NATS echo, JetStream ack, fdatasync), shardmind and its peers in one run and writes
bench/results/ (or --out); the second, one shard store in process: load rate, recall p50/p99 at 10k/100k/1M facts,
RSS, data size. Methods and figures: bench/README.md.`;

/** Runs one bench script to completion; resolves with its exit code. */
export function runBench(args: readonly string[]): Promise<number> {
  const store = args[0] === 'store';
  const script = join(ROOT, 'bench', store ? 'store.ts' : 'main.ts');
  const child = spawn(process.execPath, ['--import', 'tsx', '--expose-gc', script, ...args.slice(store ? 1 : 0)], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  // Ctrl-C reaches the child too (same process group); it cleans up what it started and exits. This process killed
  // alone (SIGKILL, or a SIGTERM, which it does not catch) takes the child with it through the watchdog: SIGTERM,
  // which the bench also cleans up on.
  const tie = tether(child);
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      tie.release();
      resolve(code ?? (signal ? 128 + 2 : 1));
    });
    child.once('error', () => resolve(1));
  });
}

export const benchCommand: Command = {
  summary: 'run the benchmarks (the floor, shardmind and its peers; or `bench store` for one store in process)',
  usage: USAGE,
  async run(args) {
    if (args.includes('--help') || args.includes('-h')) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    return runBench(args);
  },
};
