/**
 * The classifier's learned state, shared by every router and kept across restarts: an append-only JetStream
 * stream of labelled examples (a write with an explicit domain, an explicit re-route). Every router tails the whole
 * stream into its own classifier, so all of them converge on the same counts, and a router that starts late (or
 * again) replays it.
 *
 * Why a stream and not a KV of counts: merging counts through KV would need compare-and-set on a shared key, and
 * KV `update(revision)` is not safe on nats-server 2.9.x in a cluster (see DESIGN.md). Appending examples needs no
 * CAS at all; the publisher's `Nats-Msg-Id` (the write's opId) keeps a retried write from teaching twice.
 */
import { DiscardPolicy, RetentionPolicy, StorageType, headers, type NatsConnection, type ConsumerMessages } from 'nats';
import { decodePayload, encodePayload } from '../protocol/index.ts';
import type { Classifier } from './classifier.ts';
import { withJetStreamRetry } from './jetstream-retry.ts';

export const LEARNING_STREAM = 'SM_CLASSIFIER';
export const LEARNING_SUBJECT = 'sm.classifier.example';
/** Old examples age out past this many; the seeds always remain. */
export const LEARNING_MAX_EXAMPLES = 100_000;
/** JetStream's API error code for "stream not found". */
const STREAM_NOT_FOUND = 10059;

/** One labelled example as it sits in the stream. */
export interface LabelledExample {
  readonly v: 1;
  readonly domain: string;
  readonly text: string;
  readonly why: 'explicit_domain' | 'reroute';
  readonly agent?: string;
}

export interface SharedLearningOptions {
  /** Stream replicas (the cluster's `replication.replicas`). */
  readonly replicas: number;
  readonly log?: (line: string) => void;
}

/** How often `record` may log that examples could not be recorded. */
const FAILURE_LOG_EVERY_MS = 10_000;

/** Feeds a classifier from the shared stream and appends new examples to it. `stop()` is idempotent. */
export class SharedLearning {
  private messages: ConsumerMessages | undefined;
  private tail: Promise<void> | undefined;
  /** Examples applied so far (tests poll it). */
  applied = 0;
  /** `record`'s failures since its last log line, and when that was (`FAILURE_LOG_EVERY_MS`). */
  private unrecorded = 0;
  private loggedFailureAt = Number.NEGATIVE_INFINITY;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly classifier: Classifier,
    private readonly log: (line: string) => void,
  ) {}

  /** Ensures the stream exists (several routers may race here: identical `add` calls are idempotent) and tails it. */
  static async start(nc: NatsConnection, classifier: Classifier, options: SharedLearningOptions): Promise<SharedLearning> {
    const jsm = await nc.jetstreamManager({ checkAPI: false });
    const config = {
      name: LEARNING_STREAM,
      subjects: [LEARNING_SUBJECT],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.Old,
      max_msgs: LEARNING_MAX_EXAMPLES,
      num_replicas: options.replicas,
    };
    await withJetStreamRetry(
      'create the classifier stream',
      async () => {
        try {
          await jsm.streams.info(LEARNING_STREAM);
        } catch (err) {
          if ((err as { api_error?: { err_code?: number } }).api_error?.err_code !== STREAM_NOT_FOUND) throw err;
          await jsm.streams.add(config);
        }
      },
      30_000,
    );
    const learning = new SharedLearning(nc, classifier, options.log ?? (() => {}));
    await learning.startTail();
    return learning;
  }

  /** Appends an example for every router (this one included: it learns it from its own tail). */
  async publish(example: Omit<LabelledExample, 'v'>, msgId?: string): Promise<void> {
    const h = headers();
    if (msgId) h.set('Nats-Msg-Id', `learn-${msgId}`);
    const data = encodePayload({ v: 1, ...example }, 'msgpack');
    await withJetStreamRetry('record a labelled example', () => this.nc.jetstream().publish(LEARNING_SUBJECT, data, { headers: h }));
  }

  /**
   * `publish` for a caller that goes on either way (learning improves routing; the write it came from is done):
   * never rejects, and logs failures at most once per FAILURE_LOG_EVERY_MS with how many there were. During a
   * 3-second JetStream outage, a line per failure was 548–628 lines per host.
   */
  async record(example: Omit<LabelledExample, 'v'>, msgId?: string): Promise<void> {
    try {
      await this.publish(example, msgId);
    } catch (err) {
      this.unrecorded++;
      const now = Date.now();
      if (now - this.loggedFailureAt < FAILURE_LOG_EVERY_MS) return;
      const what = this.unrecorded === 1 ? 'a labelled example' : `${this.unrecorded} labelled examples`;
      this.log(`classifier: could not record ${what}: ${(err as Error).message} (logged at most every ${FAILURE_LOG_EVERY_MS / 1000} s)`);
      this.loggedFailureAt = now;
      this.unrecorded = 0;
    }
  }

  async stop(): Promise<void> {
    const messages = this.messages;
    this.messages = undefined;
    if (messages) await messages.close();
    await this.tail;
  }

  private async startTail(): Promise<void> {
    const consumer = await withJetStreamRetry('tail the classifier stream', () => this.nc.jetstream().consumers.get(LEARNING_STREAM), 30_000);
    const messages = await consumer.consume();
    this.messages = messages;
    this.tail = (async () => {
      for await (const m of messages) {
        try {
          const example = decodePayload(m.data, 'msgpack') as Partial<LabelledExample>;
          if (typeof example.text === 'string' && typeof example.domain === 'string') {
            this.classifier.learn(example.text, example.domain);
            this.applied++;
          }
        } catch (err) {
          // A bad example must not stop learning from the good ones after it.
          this.log(`classifier: skipped an unreadable example at seq ${m.seq}: ${(err as Error).message}`);
        }
      }
    })();
  }
}
