/**
 * Runs every `test/**\/*.test.ts` file in its own Node process, reads each file's uvu summary, and ends with the one
 * line CI reads: `N passed, N failed`.
 *
 * Two files run at once (`SM_TEST_JOBS`, default 2; 1 runs them one by one, printing as they go). Most files spend
 * their time waiting on real timeouts (leases, heartbeats, a frozen server), not on the CPU, so two lanes halve the
 * wall time without loading these 2-core machines much; each file's output is printed whole when it ends, so two
 * files' lines never interleave. A file whose own figures depend on having the machine to itself (a latency bound,
 * a fault soak's timing, a benchmark) says so with the line `// test-runner: alone` and runs after the others, by
 * itself (docs/decisions.md §89). Files share nothing else: each picks its own random ports and has its own sandbox.
 *
 * `node --import tsx test/run.ts store e2e` runs only the files whose path contains one of the words.
 * A file that crashes or times out before uvu prints its summary counts as one failure.
 *
 * Each file runs in a sandbox (test/harness/leaks.ts): its own temp root as `TMPDIR` and a marker in the
 * environment of everything it starts. After the file's process exits, a process it started that is still alive,
 * or anything left under its temp root, is printed as a `LEAK` line, killed or removed, and counted against the
 * file as one failure (docs/decisions.md §77); `SM_TEST_LEAKS=report` only prints them.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { TestSandbox, describeLeaks, leakCount, type Leaks } from './harness/leaks.ts';

const FILE_TIMEOUT_MS = Number(process.env['SM_TEST_FILE_TIMEOUT_MS'] ?? 300_000);
/** How long after a file's process exits its output pipes may stay open (a leaked child holding them) before the sweep. */
const PIPE_CLOSE_GRACE_MS = 2_000;
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

export interface FileResult {
  file: string;
  passed: number;
  failed: number;
  skipped: number;
  ms: number;
  /** What the file left behind (already killed and removed). */
  leaks: Leaks;
  /** Everything the file printed on stdout. */
  output: string;
  /** Everything the file printed on stderr. */
  errorOutput: string;
  /** What the runner has to say about the file (a hook that threw, the LEAK lines), for a caller that prints later. */
  notes: string[];
}

export interface RunFileOptions {
  /** Kill the file after this long. */
  readonly timeoutMs?: number;
  /** Echo the file's stdout/stderr and the LEAK lines to this process's (default true). */
  readonly echo?: boolean;
  /** Count a leak as a failure of the file (default: unless `SM_TEST_LEAKS=report`). */
  readonly failOnLeak?: boolean;
  /** Extra environment for the file's process. */
  readonly env?: Readonly<Record<string, string>>;
}

/** The sandboxes of the files running now, so an interrupted run still sweeps them. */
const running = new Set<{ sandbox: TestSandbox; pgid: number | undefined }>();
/** The line that makes a file run by itself, after the others (see the header). */
const ALONE_MARK = /^\/\/ test-runner: alone\b/m;
const JOBS = Math.max(1, Number(process.env['SM_TEST_JOBS'] ?? 2) || 1);

/** Runs one test file in its own process and sandbox; resolves once it has exited and what it left is cleaned. */
export function runFile(file: string, o: RunFileOptions = {}): Promise<FileResult> {
  const started = Date.now();
  const echo = o.echo ?? true;
  const timeoutMs = o.timeoutMs ?? FILE_TIMEOUT_MS;
  const failOnLeak = o.failOnLeak ?? process.env['SM_TEST_LEAKS'] !== 'report';
  const rel = relative(root, file);
  const sandbox = TestSandbox.create(rel.replace(/^test\//, '').replace(/\.test\.ts$/, ''));
  return new Promise<FileResult>((resolveResult) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: root,
      env: sandbox.env({ ...process.env, ...o.env, NO_COLOR: '1', FORCE_COLOR: '0' }),
      stdio: ['ignore', 'pipe', 'pipe'],
      // Its own process group: the sweep finds what the file started through it, even with a clean environment.
      detached: true,
    });
    const entry = { sandbox, pgid: child.pid };
    running.add(entry);
    let out = '';
    let errOut = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (echo) process.stdout.write(b);
    });
    child.stderr.on('data', (b: Buffer) => {
      errOut += b.toString();
      if (echo) process.stderr.write(b);
    });
    let isClosed = false;
    const closed = new Promise<void>((r) => child.once('close', () => r()));
    void closed.then(() => (isClosed = true));
    /** Resolves when every pipe is closed, or after `ms`, whichever comes first, leaving no timer behind. */
    const closedWithin = (ms: number): Promise<void> => {
      if (isClosed) return Promise.resolve();
      let timer: NodeJS.Timeout | undefined;
      return Promise.race([closed, new Promise<void>((r) => (timer = setTimeout(r, ms)))]).finally(() => clearTimeout(timer));
    };
    const notes: string[] = [];
    const timer = setTimeout(() => {
      notes.push(`${rel}: timed out after ${timeoutMs} ms, killing it`);
      if (echo) process.stderr.write(`\n${rel}: timed out after ${timeoutMs} ms, killing it\n`);
      // The file only: what it started is then found, named and killed by the sweep below.
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      void (async () => {
        // 'close' (every pipe drained) normally follows at once; a leaked child that inherited the pipes holds
        // them open until the sweep kills it, so wait a little, sweep, then wait for the rest of the output.
        await closedWithin(PIPE_CLOSE_GRACE_MS);
        const leaks = await sandbox.sweep(child.pid);
        await closedWithin(PIPE_CLOSE_GRACE_MS);
        running.delete(entry);
        const leakLines = describeLeaks(rel, leaks);
        if (echo && leakLines.length > 0) process.stdout.write(leakLines.join('\n') + '\n');
        const counts = summarize(rel, out, code);
        if (counts.note !== undefined) {
          notes.push(counts.note);
          if (echo) process.stdout.write(counts.note + '\n');
        }
        notes.push(...leakLines);
        resolveResult({ file: counts.file, passed: counts.passed, failed: counts.failed, skipped: counts.skipped, ms: Date.now() - started, leaks, output: out, errorOutput: errOut, notes });
      })().catch((err: unknown) => {
        running.delete(entry);
        process.stderr.write(`${rel}: sweeping after the file failed: ${String(err)}\n`);
        resolveResult({ file: rel, passed: 0, failed: 1, skipped: 0, ms: Date.now() - started, leaks: { processes: [], mounts: [], paths: [], uncleaned: [String(err)] }, output: out, errorOutput: errOut, notes });
      });
    });
  }).then((result) => {
    if (failOnLeak && (leakCount(result.leaks) > 0 || result.leaks.uncleaned.length > 0) && result.failed === 0) {
      return { ...result, failed: 1 };
    }
    return result;
  });
}

/** The file's counts from its uvu summary, and a note when they need one. */
function summarize(rel: string, out: string, code: number | null): Pick<FileResult, 'file' | 'passed' | 'failed' | 'skipped'> & { note?: string } {
  const num = (label: string): number | undefined => {
    const m = out.match(new RegExp(`${label}:\\s+(\\d+)`));
    return m ? Number(m[1]) : undefined;
  };
  const total = num('Total');
  const passed = num('Passed');
  const skipped = num('Skipped') ?? 0;
  if (total === undefined || passed === undefined) return { file: rel, passed: 0, failed: 1, skipped: 0 };
  // uvu's Total counts the tests that ran; skipped ones are reported apart.
  let failed = Math.max(0, total - passed);
  // uvu's runner returns from a `finally`, so an error thrown by a `before` hook vanishes: no test runs, none
  // is marked failed, nothing is printed. Say so, or the file just reads "0 passed".
  const note =
    failed > 0 && !out.includes('FAIL') ? `${rel}: ${failed} test(s) did not run and uvu printed no error: a before hook probably threw (uvu hides it)` : undefined;
  // uvu exits non-zero on failure; a non-zero exit with a clean summary still means something broke.
  if (failed === 0 && code !== 0) failed = 1;
  return { file: rel, passed, failed, skipped, ...(note !== undefined ? { note } : {}) };
}

async function main(): Promise<void> {
  const filters = process.argv.slice(2);
  const files = findTests(join(root, 'test')).filter(
    (f) => filters.length === 0 || filters.some((w) => relative(root, f).includes(w)),
  );
  // Ctrl-C (or a CI cancel) mid-file: sweep what the running file started before going.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      const all = [...running];
      for (const c of all) {
        if (c.pgid === undefined) continue;
        try {
          process.kill(-c.pgid, 'SIGKILL');
        } catch {
          /* already gone */
        }
      }
      void Promise.allSettled(all.map((c) => c.sandbox.sweep(c.pgid))).finally(() => process.exit(130));
    });
  }
  // What an earlier runner, killed mid-file, left behind: swept first so it cannot disturb this run.
  for (const stale of TestSandbox.abandoned()) {
    const lines = describeLeaks(`(abandoned ${stale.root})`, await stale.sweep());
    if (lines.length > 0) process.stdout.write(lines.join('\n') + '\n');
  }
  const results: FileResult[] = [];
  if (JOBS === 1) {
    for (const file of files) {
      process.stdout.write(`\n▶ ${relative(root, file)}\n`);
      results.push(await runFile(file));
    }
  } else {
    const alone = files.filter((f) => ALONE_MARK.test(readFileSync(f, 'utf8')));
    const shared = files.filter((f) => !alone.includes(f));
    const printWhole = (r: FileResult): void => {
      process.stdout.write(`\n▶ ${r.file} (${(r.ms / 1000).toFixed(1)}s)\n${r.output}`);
      if (r.errorOutput) process.stderr.write(r.errorOutput);
      if (r.notes.length > 0) process.stdout.write(r.notes.join('\n') + '\n');
    };
    const queue = [...shared];
    const lane = async (): Promise<void> => {
      for (let file = queue.shift(); file !== undefined; file = queue.shift()) {
        const r = await runFile(file, { echo: false });
        printWhole(r);
        results.push(r);
      }
    };
    await Promise.all(Array.from({ length: Math.min(JOBS, shared.length) }, lane));
    for (const file of alone) {
      process.stdout.write(`\n▶ ${relative(root, file)} (alone)\n`);
      results.push(await runFile(file));
    }
    results.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  }
  const passed = results.reduce((n, r) => n + r.passed, 0);
  const failed = results.reduce((n, r) => n + r.failed, 0);
  const skipped = results.reduce((n, r) => n + r.skipped, 0);
  process.stdout.write('\n');
  for (const r of results) {
    const leaked = leakCount(r.leaks);
    process.stdout.write(
      `${r.failed ? 'FAIL' : 'ok  '} ${r.file.padEnd(48)} ${String(r.passed).padStart(4)} passed ${r.failed} failed ${(r.ms / 1000).toFixed(1)}s${leaked ? ` LEAKED ${leaked}` : ''}\n`,
    );
  }
  const leaky = results.filter((r) => leakCount(r.leaks) > 0);
  if (leaky.length > 0) {
    process.stdout.write(`${leaky.length} file(s) left processes or files behind (LEAK lines above); the runner removed them\n`);
  }
  process.stdout.write(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  process.exitCode = failed > 0 || files.length === 0 ? 1 : 0;
}

// Imported (test/harness/leaks.test.ts runs a fixture through runFile), it runs nothing.
if (process.argv[1] !== undefined && resolve(process.argv[1]) === import.meta.filename) await main();
