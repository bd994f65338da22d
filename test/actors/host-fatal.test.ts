/**
 * A host process that meets an exception nothing catches (a bug: e.g. a write's reply callback, which the write
 * pipeline re-throws on purpose) still exits as Node makes it, but first logs one line naming the host, its shards'
 * states and the error — with a real nats-server and a real child process.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNatsServer } from '../../cli/index.ts';

const CHILD = fileURLToPath(new URL('./host-fatal-child.ts', import.meta.url));

test('an uncaught exception is logged with the host and its shards before the process exits', async () => {
  const server = await startNatsServer();
  const dir = mkdtempSync(join(tmpdir(), 'sm-host-fatal-'));
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, server.url, dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => void (stderr = (stderr + b.toString()).slice(-65_536)));
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the child did not exit within 60 s:\n${stderr}`)), 60_000);
      child.once('close', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    assert.is(code, 1, stderr);
    const fatal = stderr.split('\n').find((l) => l.includes('FATAL'));
    assert.ok(fatal, `no FATAL line in:\n${stderr}`);
    assert.match(fatal, /^\[solo\] FATAL uncaught exception \(shards: email leading\); the process exits: Error: a reply callback bug/);
    assert.ok(stderr.indexOf('FATAL') < stderr.lastIndexOf('a reply callback bug'), "Node's own report follows");
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await server.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
