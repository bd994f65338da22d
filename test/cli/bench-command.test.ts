/**
 * `shardmind bench`: the CLI runs the bench scripts as child processes and passes their exit code on. A full run
 * takes minutes (`npm run bench`), so this checks the plumbing only: help, and a bad section name reported by the
 * bench itself with a non-zero exit, through the real `shardmind` executable.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const BIN = join(import.meta.dirname, '..', '..', 'cli', 'bin.mjs');
const shardmind = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', timeout: 60_000 });

test('shardmind bench - help, and the bench script’s own error and exit code come through', () => {
  const help = shardmind('bench', '--help');
  assert.is(help.status, 0, help.stderr);
  assert.match(help.stdout, /shardmind bench store \[--quick\]/);
  const bad = shardmind('bench', '--only', 'bogus');
  assert.is(bad.status, 1);
  assert.match(bad.stderr, /--only: unknown section "bogus"/);
  const listed = shardmind('help');
  assert.match(listed.stdout, /^ {2}bench {2,}run the benchmarks/m);
  assert.match(listed.stdout, /^ {2}mcp {2,}serve the memory to MCP clients/m);
});

test.run();
