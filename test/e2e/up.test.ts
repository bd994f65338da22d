/**
 * `shardmind up` as a person runs it: a child process on a free port with a temp data dir. It prints where to
 * connect, serves JSON remember/recall on `sm.shard.<domain>.*`, refuses a busy port with a clear message, and on
 * SIGINT drains, stops nats-server and exits 0 — and the memory is still there when it comes back.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, headers } from 'nats';
import { freePort } from '../../cli/index.ts';

const ROOT = join(import.meta.dirname, '..', '..');

interface Up {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function startUp(args: string[]): Up {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'cli', 'main.ts'), 'up', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

async function waitFor(what: string, up: Up, pattern: RegExp, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void up.exited.then(() => (exited = true));
  while (!pattern.test(up.output())) {
    if (exited) throw new Error(`up exited before ${what}:\n${up.output()}`);
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}:\n${up.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ port, host: '127.0.0.1' });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

async function jsonRequest(url: string, subject: string, body: unknown): Promise<Record<string, unknown>> {
  const nc = await connect({ servers: url });
  try {
    const h = headers();
    h.set('content-type', 'application/json');
    const msg = await nc.request(subject, new TextEncoder().encode(JSON.stringify(body)), { timeout: 5_000, headers: h });
    assert.is(msg.headers?.get('content-type'), 'application/json');
    return JSON.parse(new TextDecoder().decode(msg.data)) as Record<string, unknown>;
  } finally {
    await nc.close();
  }
}

test('shardmind up - serves JSON remember/recall, drains on SIGINT, keeps the data', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sm-up-'));
  const port = await freePort();
  const url = `nats://127.0.0.1:${port}`;
  let up: Up | undefined;
  let busy: Up | undefined;
  try {
    up = startUp(['--port', String(port), '--data', dir]);
    await waitFor('the banner', up, /shardmind is up/);
    assert.match(up.output(), new RegExp(`NATS:\\s+${url.replace(/\./g, '\\.')}`));
    assert.match(up.output(), /nats -s .* req sm\.mem\.remember -H 'content-type:application\/json'/);
    assert.match(up.output(), /nats -s .* req sm\.shard\.email\.recall -H 'content-type:application\/json'/);

    const r = await jsonRequest(url, 'sm.shard.email.remember', {
      v: 1,
      agent: 'me',
      opId: 'up-1',
      fact: { text: 'The user prefers PDF attachments over links', subject: 'user', predicate: 'prefers_attachment_format', object: 'pdf' },
    });
    assert.is(r['status'], 'created', JSON.stringify(r));
    const recall = await jsonRequest(url, 'sm.shard.email.recall', { v: 1, query: 'attachment or link', minSeq: { email: r['seq'] } });
    assert.is((recall['facts'] as { text: string }[])[0]?.text, 'The user prefers PDF attachments over links');
    // The router runs in the same process: sm.mem.recall finds it too.
    const routed = await jsonRequest(url, 'sm.mem.recall', { v: 1, query: 'send Bob the report: PDF attachment or link?', domain: 'email', minSeq: { email: r['seq'] } });
    assert.is((routed['facts'] as { id: string }[])[0]?.id, r['factId'] as string, JSON.stringify(routed));

    busy = startUp(['--port', String(port), '--data', join(dir, 'other')]);
    assert.is(await busy.exited, 1);
    assert.match(busy.output(), new RegExp(`port ${port} is already in use.*--port ${port + 1}`));

    // The same data on another port: refused before a second nats-server or leader touches it (cli/data-lock.ts).
    const otherPort = await freePort();
    busy = startUp(['--port', String(otherPort), '--data', dir]);
    assert.is(await busy.exited, 1, busy.output());
    assert.match(busy.output(), new RegExp(`is in use by shardmind up \\(pid ${up.child.pid}`));
    assert.is(await portOpen(otherPort), false, 'no second nats-server');

    up.child.kill('SIGINT');
    assert.is(await up.exited, 0, up.output());
    assert.match(up.output(), /draining/);
    // One node, no standbys: the stop says so, rather than promising a take-over nobody can make.
    assert.match(up.output(), /email has no standby placed/);
    assert.not.match(up.output(), /no standby ready/);
    assert.is(await portOpen(port), false, 'nats-server stopped');

    up = startUp(['--port', String(port), '--data', dir]);
    await waitFor('the banner again', up, /shardmind is up/);
    const again = await jsonRequest(url, 'sm.shard.email.recall', { v: 1, query: 'attachment or link' });
    assert.is((again['facts'] as { id: string }[])[0]?.id, r['factId'] as string);
    up.child.kill('SIGTERM');
    assert.is(await up.exited, 0, up.output());
    assert.is(existsSync(join(dir, 'shardmind.lock')), false, 'the lock is released on a drained stop');
  } finally {
    // SIGTERM, not SIGKILL: `up` then stops the nats-server it started too.
    for (const u of [up, busy]) {
      if (!u || u.child.exitCode !== null || u.child.signalCode !== null) continue;
      u.child.kill('SIGTERM');
      const timer = setTimeout(() => u.child.kill('SIGKILL'), 10_000);
      await u.exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
