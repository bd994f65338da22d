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
