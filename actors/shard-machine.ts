/**
 * The life of one shard on one node, as an xstate v5 machine. The machine is only control flow; the work each state
 * does (open LMDB, read the log, serve as leader, tail as follower, drain) is a `ShardRuntime` the actor provides,
 * so the states can be named in every log line and tested on their own.
 *
 * Every transition the machine below has (`wantsLead`: whether this replica is to lead once caught up; it starts as
 * the placement says (its placed leader), is set by PROMOTE and cleared by a fence or a hand-off):
 *
 *   starting → catchingUp → (wantsLead) claiming → leading
 *              catchingUp → (otherwise) following
 *              catchingUp ⇄ bootstrapping   (the log was compacted below what this replica needs next: install the
 *                                            snapshot, then catch up from it; a failed install goes back too)
 *   following → (PROMOTE: won an epoch claim) catchingUp, wantsLead set → claiming → leading
 *   following → (TAIL_ENDED) catchingUp → following
 *   claiming → (fenced: another node claimed the epoch, or appended after the catch-up) catchingUp, wantsLead
 *                                           cleared → following
 *   claiming → (the claim failed otherwise) catchingUp → claiming again
 *   leading → (FENCED: another node appended) catchingUp, wantsLead cleared → following
 *   leading → (RESYNC) catchingUp → claiming → leading
 *   leading → (HANDOFF) handingOff → catchingUp, wantsLead cleared → following   (whether or not the hand-off
 *                                                                                   marker was appended)
 *   PROMOTE in catchingUp or bootstrapping only sets wantsLead; in any other state (needsUpgrade, aheadOfLog and
 *   the leading ones included) it is ignored.
 *   catchingUp, bootstrapping → needsUpgrade, following → (NEEDS_UPGRADE) needsUpgrade
 *                                           (a log message, or the snapshot to install, is above this build's log
 *                                            level: it stops there)
 *   catchingUp, claiming → aheadOfLog   (the log ends below what this replica applied, or holds another history
 *                                        where a rebuild was due: it lost entries this replica holds; it stops
 *                                        there, its store kept)
 *   aheadOfLog → (LOG_HOLDS) catchingUp (asked again, the log holds this replica's last entry after all: the
 *                                        reading that halted it was a stale one)
 *   starting (open failed), catchingUp (any other error), bootstrapping (a snapshot of another store format)
 *     → failed;   any state but stopping and stopped → (FAILED: the leading or following work failed) failed
 *   any state but stopping and stopped, failed included → (STOP) stopping → stopped (final)
 *
 * Replica reads (`sm.replica.<domain>.*`, `replica-service.ts`) are served in `leading` and `following` only: a
 * replica that is catching up, claiming or handing off answers none (another replica, or the leader, does).
 *
 * `needsUpgrade` (log levels, `log-level.ts`) is a halt, not a failure: the replica applied everything before the
 * message it cannot read and nothing from it, serves nothing, watches no lease (so it never claims: it could not
 * catch up), and says why in `lastError`. Only STOP leaves it; the upgraded build, restarted, continues from there.
 *
 * `aheadOfLog` is a halt too: the log's tail is below this replica's applied sequence (the log lost its tail in a
 * whole-cluster power loss, or the stream was deleted or recreated), so this store holds acknowledged writes the log
 * does not. Catching up, leading or rebuilding from such a log would serve another history or delete the only copy
 * of those writes, so the replica does none of them: it keeps its store, serves nothing, watches no lease, and
 * says which entries the log lost in `lastError`. An operator decides (docs/operations.md). While halted it keeps
 * asking the log (`watchAhead`): a stream leader resumed from a freeze answers with its old, shorter state until it
 * hears the new term, and a replica halted on such a reading leaves (`LOG_HOLDS`) once the log is seen to hold its
 * last entry and its last leadership marker, byte for byte.
 *
 * Issue 5 (failover, migration) plugs in here: `PROMOTE` is what a standby sends itself after it wins an epoch
 * claim; `HANDOFF` is what `migrate` sends the leader; `claimEpoch` in the runtime is where the KV claim goes.
 */
import { setup, fromPromise, fromCallback, assign } from 'xstate';

/** What a state's work reports back to the machine. */
export type ShardEvent =
  | { type: 'STOP' }
  | { type: 'PROMOTE' }
  | { type: 'HANDOFF'; to: string }
  /** Another writer appended: this node must not lead until told to again. */
  | { type: 'FENCED'; detail: string }
  /** The pipeline lost track of the log for its own reasons: catch up, then lead again. */
  | { type: 'RESYNC'; detail: string }
  /** A follower's tail broke (connection, consumer): catch up and tail again. */
  | { type: 'TAIL_ENDED'; detail: string }
  /** A follower's tail met a log message above this build's level: stop there. */
  | { type: 'NEEDS_UPGRADE'; detail: string }
  /** Halted in `aheadOfLog`, this replica found the log holding its last entry and marker after all. */
  | { type: 'LOG_HOLDS'; detail: string }
  | { type: 'FAILED'; detail: string };

export type ShardState =
  | 'starting'
  | 'catchingUp'
  | 'bootstrapping'
  | 'claiming'
  | 'leading'
  | 'following'
  | 'handingOff'
  | 'needsUpgrade'
  | 'aheadOfLog'
  | 'stopping'
  | 'stopped'
  | 'failed';

/** The work behind each state. Every method is called by the machine only; none throws synchronously. */
export interface ShardRuntime {
  /** Open LMDB, ensure the stream. */
  open(): Promise<void>;
  /**
   * Replay the log from `appliedSeq + 1` to the stream's current tail — or, when this replica was found to hold an
   * entry the log did not keep (its `Sm-Prev` chain broke), wipe its LMDB and replay from seq 1. Rejects with
   * `NeedsUpgradeError` at a message above this build's log level, having applied everything before it, and with
   * `LogTailLostError` (wiping nothing) when the log ends below this replica's applied sequence, or
   * `LogHistoryReplacedError` (wiping nothing) when a rebuild was due but the log is another history altogether.
   */
  catchUp(): Promise<void>;
  /**
   * Take the leadership: choose the epoch, append the epoch marker with `Nats-Expected-Last-Sequence` = the tail
   * just caught up to, and apply it. Rejects with NOT_LEADER when fenced (someone appended since), and with
   * `LogTailLostError` when the log no longer holds the entry this replica applied last.
   */
  claim(): Promise<void>;
  /**
   * The log no longer holds the entry this replica needs next (`catchUp` rejected with `LogCompactedError`): install
   * the domain's newest snapshot in place of the store (verified, swapped atomically), so that the next catch-up
   * starts from the snapshot's sequence + 1. Backs off itself when it fails again and again.
   */
  bootstrap(): Promise<void>;
  /** Serve the shard's subjects until the returned cleanup runs; report FENCED/RESYNC/FAILED. */
  lead(send: (e: ShardEvent) => void): () => void;
  /** Tail the log into LMDB until the cleanup runs; report TAIL_ENDED/NEEDS_UPGRADE/FAILED. */
  follow(send: (e: ShardEvent) => void): () => void;
  /**
   * Halted in `aheadOfLog`: ask the log again now and then until the cleanup runs; report LOG_HOLDS when it holds
   * this replica's last entry and last leadership marker (the reading that halted it was stale).
   */
  watchAhead(send: (e: ShardEvent) => void): () => void;
  /** Finish in-flight writes, append a hand-off marker naming `to`. */
  handOff(to: string): Promise<void>;
  /** Stop intake, finish in-flight work, close LMDB. Idempotent. */
  drain(): Promise<void>;
}

export interface ShardContext {
  readonly runtime: ShardRuntime;
  /** Whether this node should lead once caught up (config placement, or a won claim). */
  readonly wantsLead: boolean;
  readonly lastError: string | undefined;
}

export interface ShardMachineInput {
  readonly runtime: ShardRuntime;
  readonly wantsLead: boolean;
}

const describeError = (e: unknown): string => (e instanceof Error ? e.message : String(e));

export const shardMachine = setup({
  types: {
    context: {} as ShardContext,
    events: {} as ShardEvent,
    input: {} as ShardMachineInput,
  },
  actors: {
    open: fromPromise<void, { runtime: ShardRuntime }>(({ input }) => input.runtime.open()),
    catchUp: fromPromise<void, { runtime: ShardRuntime }>(({ input }) => input.runtime.catchUp()),
    bootstrap: fromPromise<void, { runtime: ShardRuntime }>(({ input }) => input.runtime.bootstrap()),
    claim: fromPromise<void, { runtime: ShardRuntime }>(({ input }) => input.runtime.claim()),
    handOff: fromPromise<void, { runtime: ShardRuntime; to: string }>(({ input }) => input.runtime.handOff(input.to)),
    drain: fromPromise<void, { runtime: ShardRuntime }>(({ input }) => input.runtime.drain()),
    lead: fromCallback<ShardEvent, { runtime: ShardRuntime }>(({ input, sendBack }) => input.runtime.lead(sendBack)),
    follow: fromCallback<ShardEvent, { runtime: ShardRuntime }>(({ input, sendBack }) =>
      input.runtime.follow(sendBack),
    ),
    watchAhead: fromCallback<ShardEvent, { runtime: ShardRuntime }>(({ input, sendBack }) =>
      input.runtime.watchAhead(sendBack),
    ),
  },
  guards: {
    wantsLead: ({ context }) => context.wantsLead,
    fenced: (_, params: { error: unknown }) => (params.error as { code?: string } | null)?.code === 'NOT_LEADER',
    logCompacted: (_, params: { error: unknown }) => (params.error as { name?: string } | null)?.name === 'LogCompactedError',
    needsUpgrade: (_, params: { error: unknown }) => (params.error as { name?: string } | null)?.name === 'NeedsUpgradeError',
    snapshotFormat: (_, params: { error: unknown }) => (params.error as { name?: string } | null)?.name === 'SnapshotFormatError',
    aheadOfLog: (_, params: { error: unknown }) => {
      const name = (params.error as { name?: string } | null)?.name;
      return name === 'LogTailLostError' || name === 'LogHistoryReplacedError';
    },
  },
}).createMachine({
  id: 'shard',
  initial: 'starting',
  context: ({ input }) => ({ runtime: input.runtime, wantsLead: input.wantsLead, lastError: undefined }),
  on: {
    STOP: '.stopping',
    FAILED: { target: '.failed', actions: assign({ lastError: ({ event }) => event.detail }) },
  },
  states: {
    starting: {
      invoke: {
        src: 'open',
        input: ({ context }) => ({ runtime: context.runtime }),
        onDone: 'catchingUp',
        onError: { target: 'failed', actions: assign({ lastError: ({ event }) => describeError(event.error) }) },
      },
    },
    catchingUp: {
      on: { PROMOTE: { actions: assign({ wantsLead: true }) } },
      invoke: {
        src: 'catchUp',
        input: ({ context }) => ({ runtime: context.runtime }),
        onDone: [{ guard: 'wantsLead', target: 'claiming' }, { target: 'following' }],
        onError: [
          {
            guard: { type: 'logCompacted', params: ({ event }) => ({ error: event.error }) },
            target: 'bootstrapping',
            actions: assign({ lastError: ({ event }) => describeError(event.error) }),
          },
          {
            guard: { type: 'needsUpgrade', params: ({ event }) => ({ error: event.error }) },
            target: 'needsUpgrade',
            actions: assign({ lastError: ({ event }) => describeError(event.error) }),
          },
          {
            guard: { type: 'aheadOfLog', params: ({ event }) => ({ error: event.error }) },
            target: 'aheadOfLog',
            actions: assign({ lastError: ({ event }) => describeError(event.error) }),
          },
          { target: 'failed', actions: assign({ lastError: ({ event }) => describeError(event.error) }) },
        ],
      },
    },
    bootstrapping: {
      on: { PROMOTE: { actions: assign({ wantsLead: true }) } },
      invoke: {
        src: 'bootstrap',
        input: ({ context }) => ({ runtime: context.runtime }),
        onDone: { target: 'catchingUp', actions: assign({ lastError: undefined }) },
        onError: [
          {
            // The snapshot was taken by a build of a higher log level: installing it would be meeting what it did.
            guard: { type: 'needsUpgrade', params: ({ event }) => ({ error: event.error }) },
            target: 'needsUpgrade',
            actions: assign({ lastError: ({ event }) => describeError(event.error) }),
          },
          {
            // The snapshot is of another store format (refused before downloading): no retry can install it.
            guard: { type: 'snapshotFormat', params: ({ event }) => ({ error: event.error }) },
            target: 'failed',
            actions: assign({ lastError: ({ event }) => describeError(event.error) }),
          },
          // No snapshot yet, or a bad one: catching up finds the log compacted again and comes back (bootstrap backs off).
          { target: 'catchingUp', actions: assign({ lastError: ({ event }) => `bootstrap failed: ${describeError(event.error)}` }) },
        ],
      },
    },
    claiming: {
      invoke: {
        src: 'claim',
        input: ({ context }) => ({ runtime: context.runtime }),
        // A follower keeps the error that made it one (why it is not leading); a leader has got over it, and a
        // stale one must not show up in its status, or on the next catch-up after a clean hand-off, as if new.
        onDone: { target: 'leading', actions: assign({ lastError: undefined }) },
        onError: [
          {
            // The log lost the entry this replica caught up to between the catch-up and the claim's check of it.
            guard: { type: 'aheadOfLog', params: ({ event }) => ({ error: event.error }) },
            target: 'aheadOfLog',
            actions: assign({ lastError: ({ event }) => describeError(event.error) }),
          },
          {
            guard: { type: 'fenced', params: ({ event }) => ({ error: event.error }) },
            target: 'catchingUp',
            actions: assign({ wantsLead: false, lastError: ({ event }) => `fenced while claiming: ${describeError(event.error)}` }),
          },
          { target: 'catchingUp', actions: assign({ lastError: ({ event }) => `claim failed: ${describeError(event.error)}` }) },
        ],
      },
    },
    leading: {
      invoke: { src: 'lead', input: ({ context }) => ({ runtime: context.runtime }) },
      on: {
        FENCED: {
          target: 'catchingUp',
          actions: assign({ wantsLead: false, lastError: ({ event }) => `fenced: ${event.detail}` }),
        },
        RESYNC: { target: 'catchingUp', actions: assign({ lastError: ({ event }) => `resync: ${event.detail}` }) },
        HANDOFF: { target: 'handingOff' },
      },
    },
    handingOff: {
      invoke: {
        src: 'handOff',
        input: ({ context, event }) => ({ runtime: context.runtime, to: event.type === 'HANDOFF' ? event.to : '' }),
        onDone: { target: 'catchingUp', actions: assign({ wantsLead: false, lastError: undefined }) },
        // A hand-off marker that could not be appended (fenced, or JetStream gone): stop leading all the same.
        onError: {
          target: 'catchingUp',
          actions: assign({ wantsLead: false, lastError: ({ event }) => `hand-off failed: ${describeError(event.error)}` }),
        },
      },
    },
    following: {
      invoke: { src: 'follow', input: ({ context }) => ({ runtime: context.runtime }) },
      on: {
        PROMOTE: { target: 'catchingUp', actions: assign({ wantsLead: true }) },
        TAIL_ENDED: { target: 'catchingUp', actions: assign({ lastError: ({ event }) => event.detail }) },
        NEEDS_UPGRADE: { target: 'needsUpgrade', actions: assign({ lastError: ({ event }) => event.detail }) },
      },
    },
    needsUpgrade: {
      // Holds nothing open but the store (drain closes it on STOP). A promotion cannot be honoured: this replica
      // cannot apply the log past where it stopped, so it cannot lead.
      on: { PROMOTE: {} },
    },
    aheadOfLog: {
      // Holds nothing open but the store, which is kept as it is (drain closes it on STOP). A promotion cannot be
      // honoured: leading would append after a history this replica does not share.
      invoke: { src: 'watchAhead', input: ({ context }) => ({ runtime: context.runtime }) },
      on: {
        PROMOTE: {},
        LOG_HOLDS: { target: 'catchingUp', actions: assign({ lastError: ({ event }) => event.detail }) },
      },
    },
    stopping: {
      on: { STOP: {}, FAILED: {} },
      invoke: {
        src: 'drain',
        input: ({ context }) => ({ runtime: context.runtime }),
        onDone: 'stopped',
        onError: { target: 'stopped', actions: assign({ lastError: ({ event }) => describeError(event.error) }) },
      },
    },
    stopped: { type: 'final' },
    failed: {
      // A failed actor holds nothing open that STOP cannot close: drain is idempotent and tolerates half-open state.
    },
  },
});
