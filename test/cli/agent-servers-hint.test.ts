/**
 * `remember`, `recall` and `mcp` without --servers when the config's servers cannot be reached, or there is no config
 * where the command runs (walkthrough-session13 F9): they say what `status` says — against `shardmind up`, pass
 * --servers — instead of a bare "cannot connect" or "file … does not exist". `mcp` runs as an MCP client starts it:
 * a child process in another directory.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, runRecall, runRemember } from '../../cli/index.ts';
import shipped from '../../cluster.config.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const HINT = '(against `shardmind up`, pass --servers nats://127.0.0.1:4222)';

function capture() {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { out: (s: string) => void out.push(s), err: (s: string) => void err.push(s) }, err: () => err.join('') };
}

test('recall and remember - the config\'s servers unreachable: the error gives the --servers hint; given --servers, it does not', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sm-agent-hint-'));
  try {
    // A free port nobody listens on: the config's server refuses the connection at once.
    const url = `nats://127.0.0.1:${await freePort()}`;
    const config = join(dir, 'cluster.config.mjs');
    writeFileSync(config, `export default ${JSON.stringify({ ...shipped, nodes: shipped.nodes.map((n) => ({ ...n, nats: [url] })) })};\n`);

    const recall = capture();
    assert.is(await runRecall(['meetings', '--config', config], recall.io), 1);
    assert.match(recall.err(), /^UNAVAILABLE: cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+: .*\n$/);
    assert.ok(recall.err().trimEnd().endsWith(HINT), recall.err());

    const remember = capture();
    assert.is(await runRemember(['The user likes tea', '--config', config], remember.io), 1);
    assert.ok(remember.err().trimEnd().endsWith(HINT), remember.err());

    const given = capture();
    assert.is(await runRecall(['meetings', '--servers', url], given.io), 1);
    assert.match(given.err(), /^UNAVAILABLE: cannot connect to NATS/);
    assert.not.ok(given.err().includes('pass --servers'), 'servers the user gave: the hint would repeat them');

    const missing = capture();
    assert.is(await runRecall(['meetings', '--config', join(dir, 'nowhere.config.ts')], missing.io), 1);
    assert.match(missing.err(), /^config error: config: file \S+nowhere\.config\.ts does not exist: pass --servers URL,… \(against `shardmind up`, pass --servers nats:\/\/127\.0\.0\.1:4222\), or --config with the cluster config's path\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** `cli/bin.mjs mcp …` run in `cwd` with stdin closed at once, as an MCP client that gave up would leave it. */
async function mcp(args: readonly string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'cli', 'bin.mjs'), 'mcp', ...args], { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.end();
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
  // A server that did connect would wait on its input forever were it not closed; the guard is for one that hangs.
  const guard = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearTimeout(guard);
  return { code, stdout, stderr };
}

test('mcp - the config\'s servers unreachable: the error gives the --servers hint', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sm-mcp-hint-'));
  try {
    const url = `nats://127.0.0.1:${await freePort()}`;
    const config = join(dir, 'cluster.config.mjs');
    writeFileSync(config, `export default ${JSON.stringify({ ...shipped, nodes: shipped.nodes.map((n) => ({ ...n, nats: [url] })) })};\n`);
    const r = await mcp(['--config', config, '--agent', 'desktop'], dir);
    assert.is(r.code, 1, r.stderr);
    assert.match(r.stderr, /^shardmind mcp: cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+: /);
    assert.ok(r.stderr.trimEnd().endsWith(HINT), r.stderr);
    assert.is(r.stdout, '', 'stdout carries protocol messages only');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mcp - started from another directory without --servers: the error says to pass --servers or --config', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sm-mcp-cwd-'));
  try {
    const { code, stdout, stderr } = await mcp(['--agent', 'desktop'], dir);
    assert.is(code, 1, stderr);
    assert.match(stderr, /config: file \S+\/cluster\.config\.ts does not exist: pass --servers URL,… /);
    assert.ok(stderr.includes(`${HINT}, or --config with the cluster config's path`), stderr);
    assert.is(stdout, '', 'stdout carries protocol messages only');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
