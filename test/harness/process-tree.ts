/**
 * The processes under a pid, by `ps` (the same flags on Linux and macOS), and whether one has ended: for tests that
 * kill a command with SIGKILL and check that nothing it started outlives it.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface Proc {
  readonly pid: number;
  readonly ppid: number;
  /** The command line. */
  readonly args: string;
}

/** Every process. */
export function processes(): Proc[] {
  const r = spawnSync('ps', ['-A', '-o', 'pid=,ppid=,args='], { encoding: 'utf8' });
  return r.stdout.split('\n').flatMap((line) => {
    const m = line.trim().match(/^(\d+)\s+(\d+)\s+(.*)$/);
    return m ? [{ pid: Number(m[1]), ppid: Number(m[2]), args: m[3]! }] : [];
  });
}

/** The processes under `root`: its children and theirs. */
export function descendants(root: number): Proc[] {
  const all = processes();
  const found: Proc[] = [];
  const parents = [root];
  while (parents.length > 0) {
    const parent = parents.pop()!;
    for (const p of all) {
      if (p.ppid !== parent) continue;
      found.push(p);
      parents.push(p.pid);
    }
  }
  return found;
}

/** Gone, or a zombie nobody has reaped yet (it holds no port, no file, no memory). */
export function ended(pid: number): boolean {
  const stat = spawnSync('ps', ['-o', 'stat=', '-p', String(pid)], { encoding: 'utf8' }).stdout.trim();
  return stat === '' || stat.includes('Z');
}

/** Waits until every one of `procs` has ended, or `timeoutMs`; returns those still running. */
export async function waitEnded(procs: readonly Proc[], timeoutMs: number): Promise<Proc[]> {
  const deadline = Date.now() + timeoutMs;
  while (procs.some((p) => !ended(p.pid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return procs.filter((p) => !ended(p.pid));
}

/** SIGKILLs those of `procs` still running: a failed check must not leave what it found behind. */
export function killAll(procs: readonly Proc[]): void {
  for (const p of procs) {
    if (ended(p.pid)) continue;
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // Ended between the check and the kill.
    }
  }
}

/**
 * Whether `pid` ignores SIGHUP (Linux's /proc; elsewhere assumed). A watchdog just spawned has not yet run its `trap`:
 * a terminal closes long after, a test that sends SIGHUP must wait for it.
 */
export function ignoresHangup(pid: number): boolean {
  try {
    const mask = /^SigIgn:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1];
    return mask !== undefined && (BigInt(`0x${mask}`) & 1n) === 1n;
  } catch {
    return true;
  }
}
