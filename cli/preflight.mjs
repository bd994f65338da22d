#!/usr/bin/env node
/**
 * Runs before `npm start` and `npm test` (npm's pre-scripts), so that the README's two commands work on a fresh
 * clone: installs the npm packages when they are missing or stale, and makes sure nats-server (and, for the tests,
 * python3 and libfaketime) are on PATH — installing them with apt-get when we are root on Debian/Ubuntu, otherwise
 * printing the exact command to run.
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

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;

/**
 * Makes sure `command` is on PATH: installs the Debian package `aptPackage` with apt-get when we are root on
 * Debian/Ubuntu, otherwise prints the exact command (`hint`) and exits.
 */
function ensure(command, aptPackage, why, hint) {
  if (has(command)) return;
  if (platform() === 'linux' && isRoot && has('apt-get')) {
    console.error(`preflight: ${command} is missing; installing ${aptPackage} with apt-get…`);
    run('apt-get', ['update', '-qq']);
    const r = run('apt-get', ['install', '-y', '-qq', aptPackage], {
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
    if (r.status === 0 && has(command)) return;
  }
  console.error(`shardmind needs ${why}. Install it with:\n\n    ${hint}\n`);
  process.exit(1);
}

if (!process.env.NATS_SERVER) {
  ensure(
    'nats-server',
    'nats-server',
    'nats-server (2.9 or newer) on PATH',
    platform() === 'darwin' ? 'brew install nats-server' : 'sudo apt-get update && sudo apt-get install -y nats-server',
  );
} else if (!has(process.env.NATS_SERVER)) {
  console.error(`NATS_SERVER=${process.env.NATS_SERVER} does not run (\`${process.env.NATS_SERVER} --version\` failed).`);
  process.exit(1);
}

// The tests also run the shipped Python client (test/e2e/python-agent) and a host whose wall clock is wrong, made
// so by libfaketime (test/failover/clock-off): both need a tool that `npm start` does not.
if (process.env.npm_lifecycle_event === 'pretest') {
  ensure('python3', 'python3', 'python3 for the tests', platform() === 'darwin' ? 'brew install python' : 'sudo apt-get install -y python3');
  ensure('faketime', 'faketime', 'libfaketime for the tests (a host with a wrong clock)', platform() === 'darwin' ? 'brew install libfaketime' : 'sudo apt-get install -y faketime');
}
