/** What the figures were measured on: CPU, cores, memory, OS, and the versions of everything in the run. */
import { spawnSync } from 'node:child_process';
import { cpus, totalmem, release, platform, loadavg, tmpdir } from 'node:os';

export interface MachineInfo {
  readonly cpu: string;
  readonly cores: number;
  readonly memGiB: number;
  readonly os: string;
  readonly node: string;
  readonly natsServer: string;
  readonly redis: string;
  readonly serverMemory: string;
  /** File system of the temp dir, where the fdatasync floor, LMDB, JetStream and Redis's AOF live. */
  readonly tempFs: string;
  /** The commit measured, with "+dirty" when the work tree had uncommitted changes to tracked files. */
  readonly commit: string;
  /** 1-minute load average when the run started: other work on a shared machine shows here. */
  readonly loadAvg1m: number;
}

function versionOf(cmd: string, args: readonly string[], pattern: RegExp): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) return 'not installed';
  return pattern.exec(r.stdout + r.stderr)?.[1] ?? (r.stdout + r.stderr).trim();
}

export function machineInfo(serverMemoryVersion: string): MachineInfo {
  const c = cpus();
  return {
    cpu: c[0]?.model.trim() ?? 'unknown',
    cores: c.length,
    memGiB: Math.round(totalmem() / 2 ** 30),
    os: `${platform()} ${release()}`,
    node: process.version,
    natsServer: versionOf(process.env['NATS_SERVER'] ?? 'nats-server', ['--version'], /v(\d+\.\d+\.\d+)/),
    redis: versionOf('redis-server', ['--version'], /v=(\S+)/),
    serverMemory: serverMemoryVersion,
    tempFs: tempFsOf(tmpdir()),
    commit: commitOf(),
    loadAvg1m: Math.round(loadavg()[0]! * 100) / 100,
  };
}

function tempFsOf(dir: string): string {
  const r = spawnSync('df', ['-T', dir], { encoding: 'utf8' });
  const row = r.status === 0 ? r.stdout.trim().split('\n')[1]?.split(/\s+/) : undefined;
  return row ? `${row[1]} on ${row[0]} (${dir})` : `unknown (${dir})`;
}

function commitOf(): string {
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8', cwd: import.meta.dirname });
  if (head.status !== 0) return 'unknown';
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8', cwd: import.meta.dirname });
  return `${head.stdout.trim()}${dirty.stdout.trim() ? '+dirty' : ''}`;
}
