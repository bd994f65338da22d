/**
 * CPU time per operation, per process: read each process's user+system time (Linux `/proc/<pid>/stat`, this
 * process via `process.cpuUsage()`) before and after a loop, divide by the operations completed. Unlike latency,
 * this does not drift with other load on a shared machine, so it says which process bounds a throughput figure:
 * a process that spends C µs of CPU per operation cannot exceed 1e6 / C operations per second on one core.
 */
import { readFileSync } from 'node:fs';

/** Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

export type ProcessSet = Readonly<Record<string, number | 'self'>>;

/** CPU µs per operation, by process name. */
export type CpuPerOp = Readonly<Record<string, number>>;

function cpuMicros(pid: number | 'self'): number | undefined {
  if (pid === 'self') {
    const u = process.cpuUsage();
    return u.user + u.system;
  }
  try {
    // Fields after the command name (which may hold spaces) start at index 2 = state; utime, stime are 14 and 15.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / USER_HZ) * 1e6;
  } catch {
    return undefined; // not Linux, or the process is gone
  }
}

/** Runs `loop`, returning its result and the CPU µs per completed operation each process spent on it. */
export async function withCpu<T extends { readonly n: number }>(procs: ProcessSet, loop: () => Promise<T>): Promise<T & { readonly cpuUsPerOp: CpuPerOp }> {
  const before = Object.entries(procs).map(([k, pid]) => [k, pid, cpuMicros(pid)] as const);
  const r = await loop();
  const cpuUsPerOp: Record<string, number> = {};
  for (const [k, pid, a] of before) {
    const b = cpuMicros(pid);
    if (a !== undefined && b !== undefined && r.n > 0) cpuUsPerOp[k] = Math.round((b - a) / r.n);
  }
  return { ...r, cpuUsPerOp };
}

/** "host 212, nats-server 35, bench 48" */
export function cpuText(cpu: CpuPerOp | undefined): string {
  return cpu ? Object.entries(cpu).map(([k, v]) => `${k} ${v}`).join(', ') : '–';
}
