/**
 * What a test file left behind, found after its process has exited, and removed so it cannot reach the next file.
 *
 * The runner gives each file a fresh temp root (its `TMPDIR`, so `os.tmpdir()` in the file, in the hosts it starts
 * and in their nats-servers all point there) and a marker in the environment that every process it starts
 * inherits. Once the file's process has exited:
 * - a process still alive that carries the marker (read from `/proc/<pid>/environ`), or that sits in the file's
 *   process group (for one started with a clean environment), is a leaked process: it is reported and killed;
 * - anything left under the temp root is a leaked path: it is reported and removed.
 *
 * Linux only (`/proc`); elsewhere no process is found and only paths are checked.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

/** The environment variable that marks every process a test file starts (its value is unique per file run). */
export const TEST_MARK_ENV = 'SHARDMIND_TEST_MARK';
/** The per-file temp root, also set as `TMPDIR`. */
export const TEST_TMP_ENV = 'SHARDMIND_TEST_TMP';
const ROOT_PREFIX = 'shardmind-test-';
/** `shardmind-test-<runner pid>-<file>-<mkdtemp's 6 characters>`. */
const ROOT_NAME = /^shardmind-test-(\d+)-.+-[A-Za-z0-9]{6}$/;

function markOf(runnerPid: number, root: string): string {
  return `${runnerPid}-${root.slice(-6)}`;
}

/** How long a process found after the file exited may take to exit on its own before it counts as leaked. */
const EXIT_GRACE_MS = 1_000;

export interface LeakedProcess {
  readonly pid: number;
  readonly command: string;
  /** How it was found: by the marker in its environment, or by the file's process group only. */
  readonly foundBy: 'marker' | 'group';
}

export interface Leaks {
  readonly processes: readonly LeakedProcess[];
  /** Filesystems left mounted under the temp root (a disk-full test's tmpfs): unmounted. */
  readonly mounts: readonly string[];
  /** Entries left under the temp root (top level), with how many files each holds. */
  readonly paths: readonly { readonly path: string; readonly files: number }[];
  /** What could not be cleaned (a process that would not die, a path rm could not remove). */
  readonly uncleaned: readonly string[];
}

/** One test file's sandbox: its temp root and marker, the environment that carries them, and the sweep after it. */
export class TestSandbox {
  /** tsx keeps its compile cache in `<tmpdir>/tsx-<uid>`: linked to the shared one, so files do not recompile. */
  private readonly tsxCache = `tsx-${userInfo().uid}`;

  private constructor(
    readonly root: string,
    readonly mark: string,
  ) {}

  /** A fresh sandbox for one file run by this process; `label` (the file) makes the root's name readable. */
  static create(label: string): TestSandbox {
    const safe = label.replace(/[^A-Za-z0-9_-]+/g, '-').slice(-40);
    const root = mkdtempSync(join(tmpdir(), `${ROOT_PREFIX}${process.pid}-${safe}-`));
    const sandbox = new TestSandbox(root, markOf(process.pid, root));
    const shared = join(tmpdir(), sandbox.tsxCache);
    mkdirSync(shared, { recursive: true });
    symlinkSync(shared, join(root, sandbox.tsxCache));
    return sandbox;
  }

  /**
   * The sandboxes of runners that died without sweeping (killed mid-file: a CI cancel, a kill -9), found by their
   * root's name, whose runner pid no longer runs. Only those: a live runner's sandbox is its own business.
   */
  static abandoned(): TestSandbox[] {
    const out: TestSandbox[] = [];
    for (const name of readdirSync(tmpdir())) {
      const m = ROOT_NAME.exec(name);
      if (!m || isAlive(Number(m[1]))) continue;
      const root = join(tmpdir(), name);
      out.push(new TestSandbox(root, markOf(Number(m[1]), root)));
    }
    return out;
  }

  /** The environment for the file's process: temp dirs under the root, and the marker. */
  env(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
    return { ...base, TMPDIR: this.root, [TEST_TMP_ENV]: this.root, [TEST_MARK_ENV]: this.mark };
  }

  /** Living processes that carry the marker or belong to process group `pgid` (the file's own, when detached). */
  findProcesses(pgid?: number): LeakedProcess[] {
    const found: LeakedProcess[] = [];
    const needle = `${TEST_MARK_ENV}=${this.mark}\0`;
    let pids: string[];
    try {
      pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
    } catch {
      return found;
    }
    for (const p of pids) {
      const pid = Number(p);
      if (pid === process.pid) continue;
      const st = procStat(pid);
      // A zombie has already exited; its parent (a leaked process too, or init) reaps it.
      if (!st || st.state === 'Z') continue;
      let marked = false;
      try {
        marked = readFileSync(`/proc/${pid}/environ`, 'latin1').includes(needle);
      } catch {
        // Gone meanwhile, or not ours to read: not one we started.
      }
      const inGroup = pgid !== undefined && st.pgrp === pgid;
      if (marked || inGroup) found.push({ pid, command: commandOf(pid), foundBy: marked ? 'marker' : 'group' });
    }
    return found;
  }

  /**
   * Kills what the file left running, waits for it to go, then removes the temp root. Returns what was found.
   * Call it once the file's process has exited.
   */
  async sweep(pgid?: number): Promise<Leaks> {
    const uncleaned: string[] = [];
    // A process on its way out is not a leak: tsx's esbuild service, for one, exits once its parent's pipe closes,
    // a moment after the parent. Only what is still there after a short grace counts.
    const graceEnd = Date.now() + EXIT_GRACE_MS;
    let processes = this.findProcesses(pgid);
    while (processes.length > 0 && Date.now() < graceEnd) {
      await delay(50);
      processes = this.findProcesses(pgid);
    }
    for (const p of processes) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // Exited between the scan and the kill.
      }
    }
    const deadline = Date.now() + 5_000;
    let alive = processes.filter((p) => isAlive(p.pid));
    while (alive.length > 0 && Date.now() < deadline) {
      await delay(20);
      alive = alive.filter((p) => isAlive(p.pid));
    }
    for (const p of alive) uncleaned.push(`pid ${p.pid} (${p.command}) still alive after SIGKILL`);

    // A mount left under the root would make its removal fail with EBUSY: unmount it first (lazily, deepest first).
    const mounts = mountsUnder(this.root);
    for (const m of mounts) {
      try {
        execFileSync('umount', ['-l', m], { stdio: 'pipe' });
      } catch (err) {
        uncleaned.push(`mount ${m}: ${(err as Error).message.split('\n')[0]}`);
      }
    }
    const paths: { path: string; files: number }[] = [];
    for (const name of readdirSync(this.root)) {
      if (name === this.tsxCache) continue;
      const path = join(this.root, name);
      paths.push({ path, files: countFiles(path) });
    }
    try {
      // Retries: a process killed just now may still have had a file open in a directory being removed.
      rmSync(this.root, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 });
    } catch (err) {
      uncleaned.push(`${this.root}: ${(err as Error).message}`);
    }
    return { processes, mounts, paths, uncleaned };
  }
}

/** The lines the runner prints for a file's leaks (none when it left nothing). */
export function describeLeaks(file: string, leaks: Leaks): string[] {
  const lines = leaks.processes.map(
    (p) => `LEAK ${file}: process ${p.pid} still running after the file exited (found by ${p.foundBy}), killed: ${p.command}`,
  );
  for (const m of leaks.mounts) lines.push(`LEAK ${file}: ${m} was still mounted, unmounted`);
  for (const p of leaks.paths) lines.push(`LEAK ${file}: left ${p.path} (${p.files} file(s)), removed`);
  for (const u of leaks.uncleaned) lines.push(`LEAK ${file}: could not clean ${u}`);
  return lines;
}

export function leakCount(leaks: Leaks): number {
  return leaks.processes.length + leaks.mounts.length + leaks.paths.length;
}

/** Mount points under `dir`, deepest first (from /proc/self/mountinfo; none elsewhere). */
function mountsUnder(dir: string): string[] {
  let text: string;
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  // Field 5 is the mount point, with spaces and the like written as octal escapes.
  const points = text
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))));
  return points.filter((p) => p.startsWith(dir + '/')).sort((a, b) => b.length - a.length);
}

function procStat(pid: number): { state: string; pgrp: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name sits in parentheses and may itself hold spaces or parentheses: read after the last one.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0]!, pgrp: Number(rest[2]) };
  } catch {
    return undefined;
  }
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').filter(Boolean).join(' ').slice(0, 200);
  } catch {
    return '?';
  }
}

function isAlive(pid: number): boolean {
  const st = procStat(pid);
  return st !== undefined && st.state !== 'Z';
}

function countFiles(path: string): number {
  try {
    if (!statSync(path).isDirectory()) return 1;
    return readdirSync(path, { recursive: true, withFileTypes: true }).filter((e) => !e.isDirectory()).length;
  } catch {
    return 0;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
