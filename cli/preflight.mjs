#!/usr/bin/env node
/**
 * Runs before `npm start` and `npm test` (npm's pre-scripts), so that the README's two commands work on a fresh
 * clone: installs the npm packages when they are missing or stale, and makes sure nats-server is on PATH —
 * installing it with apt-get when we are root on Debian/Ubuntu, otherwise printing the exact command to run.
 *
 * Plain JavaScript with no dependencies: it must run before `npm ci` has.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { platform } from 'node:os';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { stdio: 'inherit', cwd: root, ...opts });
const has = (cmd) => spawnSync(cmd, ['--version'], { stdio: 'ignore' }).status === 0;

const [major] = process.versions.node.split('.').map(Number);
if (major < 20) {
  console.error(`shardmind needs Node.js 20 or newer; this is ${process.version}.`);
  process.exit(1);
}

// npm writes node_modules/.package-lock.json on every install: older than package-lock.json means stale.
const installed = join(root, 'node_modules', '.package-lock.json');
const lock = join(root, 'package-lock.json');
if (!existsSync(installed) || statSync(installed).mtimeMs < statSync(lock).mtimeMs) {
  console.error('preflight: installing npm packages (npm ci)…');
  if (run('npm', ['ci', '--no-audit', '--no-fund']).status !== 0) process.exit(1);
}

if (!has(process.env.NATS_SERVER ?? 'nats-server')) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (platform() === 'linux' && isRoot && has('apt-get')) {
    console.error('preflight: nats-server is missing; installing it with apt-get…');
    run('apt-get', ['update', '-qq']);
    const r = run('apt-get', ['install', '-y', '-qq', 'nats-server'], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    if (r.status !== 0 || !has('nats-server')) process.exit(1);
  } else {
    const hint =
      platform() === 'darwin' ? 'brew install nats-server' : 'sudo apt-get update && sudo apt-get install -y nats-server';
    console.error(`shardmind needs nats-server (2.9 or newer) on PATH. Install it with:\n\n    ${hint}\n`);
    process.exit(1);
  }
}
