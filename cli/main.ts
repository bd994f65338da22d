/**
 * The `shardmind` command line: a small dispatcher table. Each subcommand lives in its own file and exports a
 * `Command`; add one by importing it and adding a row to `COMMANDS`.
 *
 * @example
 * shardmind up --port 4222
 * shardmind host --node mini-2 --config ./cluster.config.ts
 */
import { ConfigError } from '../config/index.ts';
import { ShardmindError } from '../protocol/index.ts';
import { FlagValueError, flagValueLine, UsageError } from './args.ts';
import type { Command } from './command.ts';
import { hostCommand } from './host.ts';
import { upCommand } from './up.ts';
import { statusCommand } from './status.ts';
import { migrateCommand } from './migrate.ts';
import { compactCommand } from './compact.ts';
import { backupCommand } from './backup.ts';
import { restoreCommand } from './restore.ts';
import { pruneCommand } from './prune.ts';
import { applyCommand } from './apply.ts';
import { natsConfigCommand } from './nats-config.ts';
import { natsTlsCommand } from './nats-tls.ts';
import { forgetCommand, historyCommand, recallCommand, rememberCommand } from './memory.ts';
import { mcpCommand } from './mcp.ts';
import { benchCommand } from './bench.ts';
import { demoCommand } from '../demo/index.ts';

export const COMMANDS: Readonly<Record<string, Command>> = {
  up: upCommand,
  host: hostCommand,
  status: statusCommand,
  migrate: migrateCommand,
  compact: compactCommand,
  backup: backupCommand,
  restore: restoreCommand,
  prune: pruneCommand,
  apply: applyCommand,
  'nats-config': natsConfigCommand,
  'nats-tls': natsTlsCommand,
  remember: rememberCommand,
  recall: recallCommand,
  history: historyCommand,
  forget: forgetCommand,
  mcp: mcpCommand,
  bench: benchCommand,
  demo: demoCommand,
};

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  const rows = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return ['usage: shardmind <command> [options]', '', 'commands:', ...rows, '', 'shardmind <command> --help for its options'].join('\n');
}

export async function main(argv: readonly string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(`${usage()}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`shardmind: unknown command "${name}"\n\n${usage()}\n`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${command.usage}\n`);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    // A flag's value that is not what it takes: one coded line naming the flag and what it got.
    if (err instanceof FlagValueError) {
      process.stderr.write(`${flagValueLine(name, err)}\n`);
      return 2;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`shardmind ${name}: ${err.message}\n\n${command.usage}\n`);
      return 2;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`shardmind ${name}: config error: ${err.message}\n`);
      return 1;
    }
    // A coded error is the answer (UNAVAILABLE, NOT_FOUND, …): one line. Anything else is a bug: its stack.
    if (err instanceof ShardmindError) {
      process.stderr.write(`shardmind ${name}: ${err.code}: ${err.message}\n`);
      return 1;
    }
    process.stderr.write(`shardmind ${name}: ${(err as Error)?.stack ?? String(err)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
