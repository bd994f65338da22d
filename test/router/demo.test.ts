/**
 * `npm run demo` as a person runs it: a child process that starts three Minis, tells the story, checks it, and
 * cleans up. The demo asserts its own story (exit 1 if it goes wrong); this test holds it to exit 0, to every
 * chapter, and to leaving no temp dir behind.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..');
const demoDirs = (): string[] => readdirSync(tmpdir()).filter((n) => n.startsWith('shardmind-demo-'));

test('demo - tells the whole story, checks it, exits 0 and cleans up', async () => {
  const before = new Set(demoDirs());
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'demo', 'main.ts')], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(timer);

  assert.is(code, 0, out);
  for (const line of [
    '1. A preference learned on mini-1 is used on mini-3',
    '2. A rule about meetings, learned in passing',
    '3. An email that turns out to be a meeting request',
    're-routed email → calendar',
    '• The user never takes meetings before 10am',
    '4. The user changes their mind; the past stays on record',
    'superseded_previous',
    "5. mini-1 restarts for an upgrade; nobody notices",
    "answered by mini-3's own replica",
    'mini-1 handed calendar to mini-2',
    'The story came out as told.',
  ]) {
    assert.ok(out.includes(line), `missing "${line}" in:\n${out}`);
  }
  assert.is(out.split('✓').length - 1, 7, 'seven checked claims');
  assert.equal(demoDirs().filter((d) => !before.has(d)), []);
});

test.run();
