/**
 * The task operations behind `sm.mem.task.*`: load the task's snapshot from KV, step the machine with the
 * classifier's reading of the new text, save, and — when the task moved — fetch the new domain's context. Any router
 * can run any step: nothing is kept here between requests.
 *
 * A task found in `rerouting` (the router that decided the move died before finishing it) is finished first, by
 * whichever router touches it next, and that reply reports the move.
 *
 * Every step saves over the revision it loaded (`TaskStore.replace`); when another request for the task saved first,
 * the step loads again and is taken again from there (`serialized`), so concurrent requests on one task all count.
 * An observe that carries an opId is counted once: a repeat (a retry after a lost reply) is answered from the task as
 * it is, with the move that observation decided, and steps nothing.
 */
import { randomUUID } from 'node:crypto';
import { ErrorCode, ShardmindError, type RecallReply, type WireFact, type WireTaskSummary } from '../protocol/index.ts';
import type { Classifier } from './classifier.ts';
import type { SharedLearning } from './learning.ts';
import type { ShardClient } from './shard-client.ts';
import { observedOp, type TaskHistoryEntry, type TaskState } from './task-machine.ts';
import { TaskConflictError, newTask, stepTask, type StoredTask, type TaskStore, type TaskView } from './task-store.ts';

/** How many facts a move brings along. */
export const CONTEXT_LIMIT = 8;
/** How many of the task's latest texts make the context query. */
const CONTEXT_TEXTS = 6;
/**
 * Standing facts about the user bear on every task in a domain ("never before 10am" bears on any meeting), whatever
 * the task's words: the context also asks for facts whose subject is the user.
 */
export const CONTEXT_SUBJECTS: readonly string[] = ['user'];
/** How long a repeated begin keeps reading back a task another attempt saved before it gives up. */
const BEGIN_READ_BACK_MS = 2_000;
/** How long a step keeps loading again after other requests for its task saved first, before it gives up. */
const CONFLICT_RETRY_MS = 3_000;

/** Where a `task.begin`'s opId records the task it makes (write-routes.ts). */
export interface TaskBegins {
  /** `task` if this is the first begin of `agent` with `opId`, else the task the first recorded. */
  pinTaskBegin(agent: string, opId: string, task: string): Promise<string>;
}

export interface TaskServiceDeps {
  readonly store: TaskStore;
  readonly begins: TaskBegins;
  readonly classifier: Classifier;
  readonly shards: ShardClient;
  readonly learning: SharedLearning;
  readonly domains: ReadonlySet<string>;
  readonly rerouteMargin: number;
  readonly now: () => number;
  readonly log: (line: string) => void;
}

export interface TaskMove {
  readonly rerouted: { readonly from: string; readonly to: string } | null;
  readonly context: readonly WireFact[];
  readonly missing?: readonly { readonly domain: string; readonly error: string }[];
}

/** A task as a step loaded it: settled (no move half done) and the revision its save must replace. */
interface OpenTask {
  readonly view: TaskView;
  readonly revision: number;
  /** The move this load finished for a router that died midway, reported by this request's reply. */
  readonly carried: TaskMove;
}

/** What `sm.mem.task.get` and `task.end` say about a task: the wire's summary, its state one of the machine's. */
export interface TaskSummary extends WireTaskSummary {
  readonly state: TaskState;
  readonly history: readonly TaskHistoryEntry[];
}

export class TaskService {
  constructor(private readonly d: TaskServiceDeps) {}

  /**
   * Makes a task. With `opId`, once per agent and opId (for TASK_BEGIN_WINDOW_MS): the first attempt records the id
   * of the task it makes before making it, and a repeat answers that task as it is now, with `repeated: true`. A
   * repeat that finds the task not made yet (the first attempt still running, or its router gone before the save)
   * makes it under the recorded id; only one of the two saves a task (`TaskStore.create`).
   */
  async begin(agent: string, text: string, domain?: string, opId?: string) {
    if (domain !== undefined) this.requireDomain(domain);
    const fresh = `t-${randomUUID()}`;
    const id = opId === undefined ? fresh : await this.d.begins.pinTaskBegin(agent, opId, fresh);
    if (id !== fresh) return this.repeatedBegin(id, agent, text, domain);
    return (await this.make(id, agent, text, domain, opId !== undefined)) ?? this.repeatedBegin(id, agent, text, domain);
  }

  /**
   * Classifies, saves and answers a new task; undefined when `once` and a task with this id was saved first (a repeat
   * of the same begin made it).
   */
  private async make(id: string, agent: string, text: string, domain: string | undefined, once: boolean) {
    const distribution = await this.d.classifier.classify(text);
    const view = newTask({ id, agent, rerouteMargin: this.d.rerouteMargin }, [
      { type: 'CLASSIFIED', at: this.d.now(), text, distribution, ...(domain ? { domain } : {}) },
    ]);
    if (once) {
      if (!(await this.d.store.create(id, view.persisted))) return undefined;
    } else await this.d.store.save(id, view.persisted);
    if (domain !== undefined) await this.teach(text, domain, 'explicit_domain', agent);
    const { context, missing } = await this.contextFor(view.context.domain, view.context.texts);
    return { v: 1 as const, task: id, domain: view.context.domain, context, classification: distribution, ...(missing ? { missing } : {}) };
  }

  /**
   * The answer to a begin whose opId began task `id` before: the task as it is now (its current domain and that
   * domain's context), `repeated: true`. Made here if it is not saved yet; an ended task is answered as it ended.
   */
  private async repeatedBegin(id: string, agent: string, text: string, domain: string | undefined) {
    const deadline = Date.now() + BEGIN_READ_BACK_MS;
    for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
      let stored: StoredTask | undefined;
      try {
        stored = await this.d.store.read(id);
      } catch (err) {
        if (!(err instanceof ShardmindError) || err.code !== ErrorCode.NOT_FOUND) throw err;
      }
      if (stored !== undefined) {
        const view = stepTask(stored.persisted, []);
        const { context, missing } = await this.contextFor(view.context.domain, view.context.texts);
        return { v: 1 as const, task: id, domain: view.context.domain, context, ...(missing ? { missing } : {}), repeated: true as const };
      }
      // Not saved: its first attempt is still on its way, or ended before its save. Made here, unless it got there
      // first after all (then read again: a read may briefly miss what another router has just saved).
      const made = await this.make(id, agent, text, domain, true);
      if (made !== undefined) return { ...made, repeated: true as const };
      if (Date.now() + delay > deadline) {
        throw new ShardmindError(ErrorCode.UNAVAILABLE, `task ${id}: begun by an earlier attempt with this opId, but could not be read back; retry`);
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  /**
   * Counts an observation. With `opId`, once: a repeat of an opId the task has counted answers with the task as it is
   * now, the move that observation decided (its context fetched again) and `repeated: true`, and changes nothing.
   */
  async observe(id: string, text: string, opId?: string) {
    const distribution = await this.d.classifier.classify(text);
    const weight = this.d.classifier.informativeness?.(text) ?? 1;
    return this.serialized(id, async () => {
      const loaded = await this.open(id);
      const seen = opId === undefined ? undefined : observedOp(loaded.view.context, opId);
      if (seen) return this.repeatedObservation(id, loaded, seen.rerouted);
      let view = stepTask(loaded.view.persisted, [
        { type: 'OBSERVE', at: this.d.now(), text, distribution, weight, ...(opId !== undefined ? { opId } : {}) },
      ]);
      const revision = await this.d.store.replace(id, view.persisted, loaded.revision);
      let move: TaskMove = loaded.carried;
      if (view.state === 'rerouting') ({ view, move } = await this.settle(id, view, revision));
      return { v: 1 as const, task: id, domain: view.context.domain, ...move, classification: distribution };
    });
  }

  async reroute(id: string, domain: string) {
    this.requireDomain(domain);
    const decided = await this.serialized(id, async () => {
      const loaded = await this.open(id);
      const view = stepTask(loaded.view.persisted, [{ type: 'REROUTE', at: this.d.now(), to: domain }]);
      if (view.state !== 'rerouting') return { view, carried: loaded.carried };
      return { view, revision: await this.d.store.replace(id, view.persisted, loaded.revision) };
    });
    if (decided.revision === undefined) return { v: 1 as const, task: id, domain: decided.view.context.domain, ...decided.carried };
    await this.teach(decided.view.context.texts.slice(-CONTEXT_TEXTS).join('\n'), domain, 'reroute', decided.view.context.agent);
    const { view, move } = await this.settle(id, decided.view, decided.revision);
    return { v: 1 as const, task: id, domain: view.context.domain, ...move };
  }

  /** Ends the task. Ending an ended task answers its summary again, so a retry after a lost reply succeeds. */
  async end(id: string): Promise<TaskSummary> {
    return this.serialized(id, async () => {
      const stored = await this.d.store.read(id);
      const current = stepTask(stored.persisted, []);
      if (current.state === 'ended') return summary(current);
      const loaded = await this.open(id, stored);
      const view = stepTask(loaded.view.persisted, [{ type: 'END', at: this.d.now() }]);
      await this.d.store.replace(id, view.persisted, loaded.revision);
      return summary(view);
    });
  }

  async get(id: string): Promise<TaskSummary> {
    return summary(stepTask(await this.d.store.load(id), []));
  }

  /** The domains a `remember`/`recall` with this task goes to: the current one first, then the earlier ones. */
  async domainsOf(id: string): Promise<readonly string[]> {
    const { view } = await this.open(id);
    return view.context.visited;
  }

  /** Notes in the task's history that a fact was remembered in it. */
  async remembered(id: string, domain: string, factId: string, text: string): Promise<void> {
    await this.rememberedMany(id, [{ domain, factId, text }]);
  }

  /** Notes several remembered facts in one load and save (a `remember_batch`'s items of one task), in order. */
  async rememberedMany(id: string, facts: readonly { domain: string; factId: string; text: string }[]): Promise<void> {
    const at = this.d.now();
    await this.serialized(id, async () => {
      const stored = await this.d.store.read(id);
      const view = stepTask(
        stored.persisted,
        facts.map((f) => ({ type: 'REMEMBERED' as const, at, domain: f.domain, factId: f.factId, text: f.text })),
      );
      await this.d.store.replace(id, view.persisted, stored.revision);
    });
  }

  /**
   * Runs one step — load, decide, save over the loaded revision — again from a fresh load each time another request
   * for the task saved first. A step is only retried when its own save was refused, so nothing is counted twice.
   */
  private async serialized<T>(id: string, step: () => Promise<T>): Promise<T> {
    const deadline = Date.now() + CONFLICT_RETRY_MS;
    for (let delay = 2, conflicts = 0; ; delay = Math.min(delay * 2, 100), conflicts++) {
      try {
        return await step();
      } catch (err) {
        if (!(err instanceof TaskConflictError)) throw err;
        // Jittered, so requests that collided do not collide again in lockstep.
        const wait = delay / 2 + Math.random() * delay;
        if (Date.now() + wait > deadline) {
          throw new ShardmindError(
            ErrorCode.UNAVAILABLE,
            `task ${id}: other requests for it saved first ${conflicts + 1} times in ${CONFLICT_RETRY_MS} ms; nothing was applied, retry`,
          );
        }
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  /**
   * Loads a live task (or takes the one the caller `read`), finishing a move a dead router left half done. Ended
   * tasks take no more steps.
   */
  private async open(id: string, read?: StoredTask): Promise<OpenTask> {
    const stored = read ?? (await this.d.store.read(id));
    let view = stepTask(stored.persisted, []);
    if (view.state === 'ended') throw new ShardmindError(ErrorCode.BAD_REQUEST, `task ${id} has ended`);
    if (view.state !== 'rerouting') return { view, revision: stored.revision, carried: { rerouted: null, context: [] } };
    const settled = await this.settle(id, view, stored.revision);
    view = settled.view;
    if (view.state === 'ended') throw new ShardmindError(ErrorCode.BAD_REQUEST, `task ${id} has ended`);
    return { view, revision: settled.revision, carried: settled.move };
  }

  /** The answer to an observe the task has already counted: the task as it is now, and the move it decided then. */
  private async repeatedObservation(id: string, loaded: OpenTask, rerouted: { from: string; to: string } | null) {
    const domain = loaded.view.context.domain;
    let move: TaskMove = loaded.carried;
    if (!move.rerouted && rerouted) move = { rerouted, ...(await this.contextFor(domain, loaded.view.context.texts)) };
    return { v: 1 as const, task: id, domain, ...move, repeated: true as const };
  }

  /**
   * Fetches the new domain's context, completes the move and saves it over `revision`. When another request saved
   * the task first, that request may have completed the move itself (or ended the task): the task as it then is
   * stands, and this reply still reports the move.
   */
  private async settle(id: string, view: TaskView, revision: number): Promise<{ view: TaskView; move: TaskMove; revision: number }> {
    const pending = view.context.pending!;
    const { context, missing } = await this.contextFor(pending.to, view.context.texts);
    const move = { rerouted: { from: pending.from, to: pending.to }, context, ...(missing ? { missing } : {}) };
    const done = await this.serialized(id, async () => {
      const stored = revision > 0 ? { persisted: view.persisted, revision } : await this.d.store.read(id);
      // Only the first attempt steps the view it was handed; a retry steps what is stored now.
      revision = 0;
      const current = stepTask(stored.persisted, []);
      if (current.state !== 'rerouting') return { view: current, revision: stored.revision, mine: false };
      const settled = stepTask(stored.persisted, [{ type: 'SETTLED', at: this.d.now() }]);
      return { view: settled, revision: await this.d.store.replace(id, settled.persisted, stored.revision), mine: true };
    });
    if (done.mine) this.d.log(`task ${id}: re-routed ${pending.from} → ${pending.to} (${pending.why}), ${context.length} context facts`);
    return { view: done.view, move, revision: done.revision };
  }

  /** Facts of `domain` that bear on the task: its words, and the standing facts about the user. Never fatal. */
  private async contextFor(
    domain: string,
    texts: readonly string[],
  ): Promise<{ context: WireFact[]; missing?: { domain: string; error: string }[] }> {
    const query = texts.slice(-CONTEXT_TEXTS).join('\n');
    const asks = [
      this.d.shards.ask<RecallReply>(domain, 'recall', { v: 1, query, limit: CONTEXT_LIMIT }),
      ...CONTEXT_SUBJECTS.map((subject) =>
        this.d.shards.ask<RecallReply>(domain, 'recall', { v: 1, subject, limit: CONTEXT_LIMIT }),
      ),
    ];
    const answers = await Promise.allSettled(asks);
    const byId = new Map<string, WireFact>();
    for (const a of answers) {
      if (a.status !== 'fulfilled') continue;
      for (const f of a.value.facts) {
        const seen = byId.get(f.id);
        if (!seen || seen.score < f.score) byId.set(f.id, f.domain ? f : { ...f, domain });
      }
    }
    const failed = answers.find((a): a is PromiseRejectedResult => a.status === 'rejected');
    const context = [...byId.values()].sort((a, b) => b.score - a.score).slice(0, CONTEXT_LIMIT);
    if (!failed) return { context };
    this.d.log(`task context from ${domain} incomplete: ${(failed.reason as Error).message}`);
    return { context, missing: [{ domain, error: (failed.reason as Error).message }] };
  }

  private async teach(text: string, domain: string, why: 'explicit_domain' | 'reroute', agent: string): Promise<void> {
    // Learning is an improvement, not part of the request: the task step already happened.
    await this.d.learning.record({ text, domain, why, agent });
  }

  private requireDomain(domain: string): void {
    if (!this.d.domains.has(domain)) {
      throw new ShardmindError(
        ErrorCode.UNKNOWN_DOMAIN,
        `no domain "${domain}"; known: ${[...this.d.domains].join(', ')}`,
      );
    }
  }
}

function summary(view: TaskView): TaskSummary {
  const c = view.context;
  return { v: 1, task: c.id, agent: c.agent, state: view.state, domain: c.domain, visited: c.visited, history: c.history };
}
