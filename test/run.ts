/**
 * Runs every `test/**\/*.test.ts` file in its own Node process (one at a time: tests start real nats-servers and
 * these machines have two cores), reads each file's uvu summary, and ends with the one line CI reads:
 * `N passed, N failed`.
 *
 * `node --import tsx test/run.ts store e2e` runs only the files whose path contains one of the words.
 * A file that crashes or times out before uvu prints its summary counts as one failure.
 */
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const FILE_TIMEOUT_MS = Number(process.env['SM_TEST_FILE_TIMEOUT_MS'] ?? 300_000);
const root = join(import.meta.dirname, '..');

function findTests(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...findTests(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

interface FileResult {
  file: string;
  passed: number;
  failed: number;
  skipped: number;
  ms: number;
}

function runFile(file: string): Promise<FileResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      process.stdout.write(b);
    });
    child.stderr.on('data', (b: Buffer) => process.stderr.write(b));
    const timer = setTimeout(() => {
      process.stderr.write(`\n${relative(root, file)}: timed out after ${FILE_TIMEOUT_MS} ms, killing it\n`);
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }, FILE_TIMEOUT_MS);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const num = (label: string): number | undefined => {
        const m = out.match(new RegExp(`${label}:\\s+(\\d+)`));
        return m ? Number(m[1]) : undefined;
      };
      const total = num('Total');
      const passed = num('Passed');
      const skipped = num('Skipped') ?? 0;
      const rel = relative(root, file);
      if (total === undefined || passed === undefined) {
        resolve({ file: rel, passed: 0, failed: 1, skipped: 0, ms: Date.now() - started });
        return;
      }
      // uvu's Total counts the tests that ran; skipped ones are reported apart.
      let failed = Math.max(0, total - passed);
      // uvu's runner returns from a `finally`, so an error thrown by a `before` hook vanishes: no test runs, none
      // is marked failed, nothing is printed. Say so, or the file just reads "0 passed".
      if (failed > 0 && !out.includes('FAIL')) {
        process.stdout.write(`${rel}: ${failed} test(s) did not run and uvu printed no error: a before hook probably threw (uvu hides it)\n`);
      }
      // uvu exits non-zero on failure; a non-zero exit with a clean summary still means something broke.
      if (failed === 0 && code !== 0) failed = 1;
      resolve({ file: rel, passed, failed, skipped, ms: Date.now() - started });
    });
  });
}

const filters = process.argv.slice(2);
const files = findTests(join(root, 'test')).filter(
  (f) => filters.length === 0 || filters.some((w) => relative(root, f).includes(w)),
);
const results: FileResult[] = [];
for (const file of files) {
  process.stdout.write(`\n▶ ${relative(root, file)}\n`);
  results.push(await runFile(file));
}
const passed = results.reduce((n, r) => n + r.passed, 0);
const failed = results.reduce((n, r) => n + r.failed, 0);
const skipped = results.reduce((n, r) => n + r.skipped, 0);
process.stdout.write('\n');
for (const r of results) {
  process.stdout.write(
    `${r.failed ? 'FAIL' : 'ok  '} ${r.file.padEnd(48)} ${String(r.passed).padStart(4)} passed ${r.failed} failed ${(r.ms / 1000).toFixed(1)}s\n`,
  );
}
process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
process.exitCode = failed > 0 || files.length === 0 ? 1 : 0;
