/**
 * How a long-running command ends: the first SIGINT/SIGTERM starts a graceful stop (drain), a second one exits at
 * once. Resolves when the graceful stop is done, so `run()` can return its exit code.
 */
export function runUntilSignal(stop: () => Promise<void>, log: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        log(`${signal} again: exiting without draining`);
        process.exit(130);
      }
      stopping = true;
      log(`${signal}: draining (press Ctrl-C again to exit at once)`);
      stop().then(
        () => {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          resolve();
        },
        reject,
      );
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/** How long a process may take to end by itself after its drain before it is ended. */
export const EXIT_GRACE_MS = 2_000;

/**
 * Ends the process with `code` once nothing is left to do — at once if the event loop empties, else after `graceMs`,
 * naming what was still open. A drain closes everything shardmind opened, but a library can keep the loop alive past
 * it: nats.js 2.x's ordered consumer retries re-creating itself on a ref'd 15–45 s timer, forever, even after it was
 * stopped and its connection closed (a reset that was backing off when the host stopped; seen after a nats-server
 * restart moved stream leaders). Without this a host logged `host stopped` and lived on until SIGKILL or a second
 * signal (walkthrough-session12-ops, F14), which made every systemd/launchd stop cost its whole timeout.
 */
export function exitAfterDrain(code: number, log: (line: string) => void, graceMs = EXIT_GRACE_MS): void {
  process.exitCode = code;
  const timer = setTimeout(() => {
    log(`still running ${graceMs} ms after the drain, held by ${describeOpenResources()}: exiting (${code})`);
    process.exit(code);
  }, graceMs);
  // Only a backstop: it must not itself be what keeps the process alive.
  timer.unref();
}

/**
 * What keeps the event loop alive, by kind: `PipeWrap ×2, Timeout ×1` (stdout and stderr count as pipes or TTYs).
 * Unref'd timers are not counted.
 */
export function describeOpenResources(): string {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return [...counts].map(([kind, n]) => `${kind} ×${n}`).join(', ') || 'nothing Node reports';
}

/** Whether `work` settles within `ms` (a rejection propagates); the timer never outlives it. */
export async function finishesWithin(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([work.then(() => true as const), late]);
  } finally {
    clearTimeout(timer);
  }
}
