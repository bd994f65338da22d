/**
 * Everything the bench starts (servers, child processes, temp dirs) registers its undo here, so one `run()` in
 * main's `finally` — or a Ctrl-C — stops and removes all of it, newest first, even when a section threw.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tether } from '../cli/index.ts';

export class Cleanup {
  private readonly undo: { readonly what: string; readonly fn: () => Promise<void> | void }[] = [];
  /** Every temp dir made so far (tests check they are gone after `run()`). */
  readonly dirs: string[] = [];

  add(what: string, fn: () => Promise<void> | void): void {
    this.undo.push({ what, fn });
  }

  /** A fresh temp dir, removed on cleanup. */
  tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), `shardmind-bench-${prefix}-`));
    this.dirs.push(dir);
    this.add(`rm ${dir}`, () => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }

  /** Spawns a child that is SIGTERMed (then SIGKILLed after `graceMs`) on cleanup unless it already exited. */
  spawn(cmd: string, args: readonly string[], opts: SpawnOptions = {}, graceMs = 3_000): ChildProcess {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    // A bench killed with SIGKILL never gets to run(): the watchdog stops the child then.
    const tie = tether(child);
    child.once('exit', () => tie.release());
    this.add(`stop ${cmd} ${args.slice(-2).join(' ')} (pid ${child.pid})`, () => stopChild(child, graceMs));
    return child;
  }

  /** Runs every undo, newest first; an undo that throws is reported and the rest still run. Idempotent. */
  async run(): Promise<void> {
    while (this.undo.length > 0) {
      const u = this.undo.pop()!;
      try {
        await u.fn();
      } catch (err) {
        process.stderr.write(`cleanup: ${u.what} failed: ${String(err)}\n`);
      }
    }
  }
}

/** SIGTERM, then SIGKILL after a grace period; resolves when the child has exited. Harmless if it already has. */
export async function stopChild(child: ChildProcess, graceMs = 3_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** Resolves with the first stdout line matching `ready`; rejects if the child exits or `timeoutMs` passes first. */
export function waitForLine(child: ChildProcess, ready: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => done(new Error(`no ${ready} within ${timeoutMs} ms; stderr:\n${err.slice(-2000)}`)), timeoutMs);
    const onOut = (b: Buffer): void => {
      out += b.toString();
      const line = out.split('\n').find((l) => ready.test(l));
      if (line !== undefined) done(undefined, line);
    };
    const onErr = (b: Buffer): void => {
      err = (err + b.toString()).slice(-8192);
    };
    const onExit = (code: number | null): void =>
      done(new Error(`exited (${code}) before ${ready}; stderr:\n${err.slice(-2000)}`));
    function done(e: Error | undefined, line?: string): void {
      clearTimeout(timer);
      child.stdout?.off('data', onOut);
      child.stderr?.off('data', onErr);
      child.off('exit', onExit);
      if (e) reject(e);
      else resolve(line!);
    }
    child.stdout?.on('data', onOut);
    child.stderr?.on('data', onErr);
    child.once('exit', onExit);
  });
}
