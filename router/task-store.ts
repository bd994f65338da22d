/**
 * Where tasks live between requests: the task machine's persisted snapshot as JSON in the NATS KV bucket
 * `sm_tasks`, key = task id, written after every step. No router holds a task in memory, so a router that dies
 * (or a Mini that is unplugged) loses nothing: the next request for the task lands on any router and continues.
 *
 * Concurrency: a step saves only over the revision it loaded (`replace`, KV `update(revision)`); when another
 * router saved the task in between, the step is refused (`TaskConflictError`) and the caller loads again and steps
 * again, so concurrent observations — two agents sharing a task, or one agent sending two at once — are all counted.
 * nats-server 2.9.x does not honour that check reliably in a cluster (DESIGN.md): there, two steps racing closely
 * can still both be accepted and the later one wins, which was the rule before (one observation's evidence or
 * history line lost, never a corrupt task: each write is a whole, valid snapshot). Nothing else depends on it.
 */
import { createActor, type Snapshot } from 'xstate';
import type { KV, NatsConnection } from 'nats';
import { ErrorCode, ShardmindError } from '../protocol/index.ts';
import { withJetStreamRetry } from './jetstream-retry.ts';
import { taskMachine, type TaskContext, type TaskEvent, type TaskInput, type TaskState } from './task-machine.ts';

export const TASK_BUCKET = 'sm_tasks';
/** A task untouched this long is dropped by the bucket. */
export const TASK_MAX_AGE_MS = 30 * 24 * 3600 * 1000;

/** JetStream's "wrong last sequence": the key was written after the revision a step loaded. */
const WRONG_LAST_SEQUENCE = 10071;

/** A task's snapshot and the KV revision it was read at (what `replace` expects to still be the latest). */
export interface StoredTask {
  readonly persisted: Snapshot<unknown>;
  readonly revision: number;
}

/** Another router saved the task after this step loaded it: load it again and step that. */
export class TaskConflictError extends Error {
  override readonly name = 'TaskConflictError';
}

/** What a caller reads of a task after a step. */
export interface TaskView {
  readonly state: TaskState;
  readonly context: TaskContext;
  /** The JSON-safe snapshot to persist. */
  readonly persisted: Snapshot<unknown>;
}

function view(actor: ReturnType<typeof createActor<typeof taskMachine>>): TaskView {
  const snapshot = actor.getSnapshot();
  return { state: snapshot.value as TaskState, context: snapshot.context, persisted: actor.getPersistedSnapshot() };
}

/** A new task, stepped through its first events. Pure: no I/O. */
export function newTask(input: TaskInput, events: readonly TaskEvent[]): TaskView {
  const actor = createActor(taskMachine, { input });
  actor.start();
  for (const e of events) actor.send(e);
  const v = view(actor);
  actor.stop();
  return v;
}

const RESTORED: TaskInput = { id: '', agent: '', rerouteMargin: 0 };

/** A persisted task, restored and stepped through more events. Pure: no I/O. */
export function stepTask(persisted: Snapshot<unknown>, events: readonly TaskEvent[]): TaskView {
  // Persisted snapshots are opaque (`Snapshot<unknown>`) by design; the machine that wrote it reads it back. The
  // input only seeds a new context, so restoring ignores it; the types still ask for one.
  const actor = createActor(taskMachine, { snapshot: persisted, input: RESTORED });
  actor.start();
  for (const e of events) actor.send(e);
  const v = view(actor);
  actor.stop();
  return v;
}

export class TaskStore {
  private constructor(private readonly kv: KV) {}

  /** Opens (creating when needed) the bucket. Several routers may race here: identical creates are harmless. */
  static async open(nc: NatsConnection, options: { replicas: number }): Promise<TaskStore> {
    const js = nc.jetstream();
    const kv = await withJetStreamRetry('open the task bucket', () =>
      js.views.kv(TASK_BUCKET, { history: 1, replicas: options.replicas, ttl: TASK_MAX_AGE_MS }),
    );
    // A bucket a fresh cluster has just created answers only once its stream has a leader: wait for that here,
    // at start, rather than failing the first agent's task.
    await withJetStreamRetry('reach the task bucket', () => kv.get('ready-probe'), 30_000);
    return new TaskStore(kv);
  }

  /** The task's latest snapshot and its revision; NOT_FOUND when there is no such task. */
  async read(id: string): Promise<StoredTask> {
    const entry = await withJetStreamRetry(`load task ${id}`, () => this.kv.get(id));
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) {
      throw new ShardmindError(ErrorCode.NOT_FOUND, `no task ${id} (never begun, or expired)`);
    }
    return { persisted: entry.json<Snapshot<unknown>>(), revision: entry.revision };
  }

  /** The task's latest snapshot; NOT_FOUND when there is no such task. */
  async load(id: string): Promise<Snapshot<unknown>> {
    return (await this.read(id)).persisted;
  }

  /** Writes the snapshot whatever is stored (a new task, whose id nobody else knows yet). */
  async save(id: string, persisted: Snapshot<unknown>): Promise<number> {
    const value = JSON.stringify(persisted);
    return withJetStreamRetry(`save task ${id}`, () => this.kv.put(id, value));
  }

  /**
   * Writes the snapshot of a new task only if no task has that id: false when one has (another request made it
   * first, or this write's own earlier attempt whose acknowledgement was lost). For a task whose id was recorded
   * before it was made (a `task.begin` with an opId): the first attempt and its retry may both get here.
   */
  async create(id: string, persisted: Snapshot<unknown>): Promise<boolean> {
    const value = JSON.stringify(persisted);
    try {
      await withJetStreamRetry(`save task ${id}`, () => this.kv.create(id, value));
      return true;
    } catch (err) {
      if ((err as { api_error?: { err_code?: number } }).api_error?.err_code !== WRONG_LAST_SEQUENCE) throw err;
      return false;
    }
  }

  /**
   * Writes the snapshot a step made from the one read at `revision`, if the task is still at that revision; returns
   * the new revision. Throws `TaskConflictError` when another router saved it in between.
   */
  async replace(id: string, persisted: Snapshot<unknown>, revision: number): Promise<number> {
    const value = JSON.stringify(persisted);
    try {
      return await withJetStreamRetry(`save task ${id}`, () => this.kv.update(id, value, revision));
    } catch (err) {
      if ((err as { api_error?: { err_code?: number } }).api_error?.err_code !== WRONG_LAST_SEQUENCE) throw err;
    }
    // A retry after a lost acknowledgement finds its own write in place: that is success, not a conflict (stepping
    // again would count the step twice).
    const stored = await withJetStreamRetry(`load task ${id}`, () => this.kv.get(id));
    if (stored && stored.operation === 'PUT' && stored.string() === value) return stored.revision;
    throw new TaskConflictError(`task ${id} was saved by another request after revision ${revision}`);
  }
}
