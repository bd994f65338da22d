/**
 * Ties a child process's life to this one's: if this process dies without stopping the child — SIGKILL, the OOM
 * killer, a crash the 'exit' hook never sees — a watchdog ends the child instead of leaving it running with nobody
 * to stop it (a nats-server holding `shardmind up`'s port and data dir, a test's host reconnecting forever).
 *
 * Node has no PR_SET_PDEATHSIG, and a nats-server cannot be taught to watch its parent, so the watchdog is a
 * separate `/bin/sh` whose stdin is a pipe from this process and nothing else: Node opens its pipes close-on-exec,
 * so no other child inherits the write end. The read end sees EOF only when this process is gone (however it went);
 * the watchdog then SIGCONTs the child (a paused one cannot act on SIGTERM), SIGTERMs it so it shuts down cleanly
 * (nats-server flushes JetStream, a host drains), SIGKILLs it if it is still there after the grace, and exits. While
 * this process lives the watchdog sleeps in `read`, holding nothing but its pipe, and is killed when the child exits,
 * so it never outlives the child either, nor acts on a pid the system may have handed to another process since.
 * The same on Linux and macOS: only POSIX sh, `kill`, `sleep` and `ps`.
 *
 * @example
 * const child = spawn('nats-server', ['-c', conf]);
 * const tie = tether(child);
 * child.once('exit', () => tie.release());
 */
import { spawn, type ChildProcess } from 'node:child_process';

/** How long the watchdog waits after SIGTERM before SIGKILL. */
export const DEFAULT_TETHER_GRACE_MS = 5_000;

/**
 * $1 is the child's pid, $2 how many 100 ms ticks to wait for it after SIGTERM. A zombie counts as gone: once this
 * process has died, the child's exit is reaped by init whenever init gets to it (seconds on some), and `kill -0`
 * succeeds on a zombie. Without `ps` (a slim container) only `kill -0` is asked. The signals a terminal or a supervisor
 * sends a whole process group are ignored: closing the terminal of a `shardmind up` sends SIGHUP to up (which dies of
 * it), to its nats-server (which takes it as "reload the config" and lives on) and to the watchdog, which must live
 * on to end the server. SIGKILL (`release()`) still ends it.
 */
const WATCHDOG_SCRIPT = `running() {
  kill -0 "$1" 2>/dev/null || return 1
  command -v ps >/dev/null 2>&1 || return 0
  case "$(ps -o stat= -p "$1" 2>/dev/null)" in ''|*Z*) return 1 ;; esac
}
trap '' HUP INT TERM QUIT
read -r _ || :
kill -CONT "$1" 2>/dev/null
kill -TERM "$1" 2>/dev/null || exit 0
n=0
while [ "$n" -lt "$2" ] && running "$1"; do sleep 0.1; n=$((n + 1)); done
running "$1" && kill -KILL "$1" 2>/dev/null
exit 0`;

/** A child's watchdog. `release()` is idempotent and synchronous, so an 'exit' listener may call it. */
export interface Tether {
  /** The watchdog's pid (tests check it is gone). */
  readonly pid: number | undefined;
  /** Ends the watchdog: the child exited, or this process is stopping it itself. */
  release(): void;
}

/**
 * Starts a watchdog that ends `child` if this process dies first. Call `release()` once the child has exited (and
 * not before a graceful stop that may still need the watchdog should this process die during it). The watchdog
 * never keeps this process's event loop alive.
 */
export function tether(child: ChildProcess, graceMs = DEFAULT_TETHER_GRACE_MS): Tether {
  const pid = child.pid;
  if (pid === undefined) return { pid: undefined, release: () => undefined };
  const ticks = Math.max(1, Math.ceil(graceMs / 100));
  const watchdog = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT, 'shardmind-tether', String(pid), String(ticks)], {
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  // A watchdog that died (a terminal's Ctrl-C reaches the whole group) makes the pipe's write end fail; nothing is
  // ever written, but a late EPIPE must not become an uncaught error.
  watchdog.stdin?.on('error', () => undefined);
  watchdog.on('error', () => undefined);
  watchdog.unref();
  // The pipe is a net.Socket; typed as a plain Writable.
  (watchdog.stdin as unknown as { unref(): void } | null)?.unref();
  let released = false;
  return {
    pid: watchdog.pid,
    release() {
      if (released) return;
      released = true;
      if (watchdog.exitCode === null && watchdog.signalCode === null) watchdog.kill('SIGKILL');
    },
  };
}
