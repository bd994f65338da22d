/**
 * The steps of one leadership claim (`ShardActor.claim`), timed and said in the log: a step that waits says which
 * one it is while it waits, and every claim ends with one line giving each step's time. A shard seen in `claiming`
 * for a minute (chaos soak seed 8001, decisions §75) left no line saying where it waited; with these, the host's
 * log names the step (the live-leader check, the back-off, the check of the log's entry, the epoch claim in KV, the
 * marker's append) and how long each took.
 *
 * @example
 * const steps = new ClaimSteps({ log });
 * await steps.run('checking the log holds seq 41', () => checkTail());
 * log(steps.summary('claimed epoch 7'));
 */

/** How often a step that has not finished says so. */
export const CLAIM_STEP_REPORT_MS = 2_000;

export interface ClaimStepsOptions {
  readonly log: (line: string) => void;
  /** Monotonic milliseconds (default `performance.now`): step times are durations. */
  readonly now?: () => number;
  readonly reportEveryMs?: number;
}

export class ClaimSteps {
  private readonly began: number;
  private readonly took: string[] = [];
  private latest: string | undefined;

  constructor(private readonly o: ClaimStepsOptions) {
    this.began = this.now();
  }

  /** Runs one step: logs "still <step> after N ms" every `reportEveryMs` until it settles, then records its time. */
  async run<T>(step: string, work: () => Promise<T>): Promise<T> {
    const since = this.now();
    this.latest = step;
    const timer = setInterval(() => this.o.log(`claiming: still ${step} after ${Math.round(this.now() - since)} ms`), this.o.reportEveryMs ?? CLAIM_STEP_REPORT_MS);
    try {
      return await work();
    } finally {
      clearInterval(timer);
      this.took.push(`${step} ${Math.round(this.now() - since)} ms`);
    }
  }

  /** `<outcome> after N ms (step a ms, step b ms, …)`: one line for the whole claim. */
  summary(outcome: string): string {
    return `${outcome} after ${Math.round(this.now() - this.began)} ms (${this.took.length > 0 ? this.took.join(', ') : 'no step ran'})`;
  }

  /** The step that ran last: the one a failure came from. */
  get lastStep(): string | undefined {
    return this.latest;
  }

  private now(): number {
    return (this.o.now ?? performance.now.bind(performance))();
  }
}
