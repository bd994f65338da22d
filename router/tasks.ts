/**
 * The task operations behind `sm.mem.task.*`: load the task's snapshot from KV, step the machine with the
 * classifier's reading of the new text, save, and — when the task moved — fetch the new domain's context. Any router
 * can run any step: nothing is kept here between requests.
 *
 * A task found in `rerouting` (the router that decided the move died before finishing it) is finished first, by
 * whichever router touches it next, and that reply reports the move.
 */
import { randomUUID } from 'node:crypto';
import { ErrorCode, ShardmindError, type RecallReply, type WireFact } from '../protocol/index.ts';
import type { Classifier } from './classifier.ts';
import type { SharedLearning } from './learning.ts';
import type { ShardClient } from './shard-client.ts';
import type { TaskHistoryEntry, TaskState } from './task-machine.ts';
import { newTask, stepTask, type TaskStore, type TaskView } from './task-store.ts';

/** How many facts a move brings along. */
export const CONTEXT_LIMIT = 8;
/** How many of the task's latest texts make the context query. */
const CONTEXT_TEXTS = 6;
/**
 * Standing facts about the user bear on every task in a domain ("never before 10am" bears on any meeting), whatever
 * the task's words: the context also asks for facts whose subject is the user.
 */
export const CONTEXT_SUBJECTS: readonly string[] = ['user'];

export interface TaskServiceDeps {
  readonly store: TaskStore;
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

/** What `sm.mem.task.get` and `task.end` say about a task. */
export interface TaskSummary {
  readonly v: 1;
  readonly task: string;
  readonly agent: string;
  readonly state: TaskState;
  readonly domain: string;
  readonly visited: readonly string[];
  readonly history: readonly TaskHistoryEntry[];
}

export class TaskService {
  constructor(private readonly d: TaskServiceDeps) {}

  async begin(agent: string, text: string, domain?: string) {
    if (domain !== undefined) this.requireDomain(domain);
    const id = `t-${randomUUID()}`;
    const distribution = await this.d.classifier.classify(text);
    const view = newTask({ id, agent, rerouteMargin: this.d.rerouteMargin }, [
      { type: 'CLASSIFIED', at: this.d.now(), text, distribution, ...(domain ? { domain } : {}) },
    ]);
    await this.d.store.save(id, view.persisted);
    if (domain !== undefined) await this.teach(text, domain, 'explicit_domain', agent);
    const { context, missing } = await this.contextFor(view.context.domain, view.context.texts);
    return { v: 1 as const, task: id, domain: view.context.domain, context, classification: distribution, ...(missing ? { missing } : {}) };
  }

  async observe(id: string, text: string) {
    const { view: loaded, carried } = await this.open(id);
    const distribution = await this.d.classifier.classify(text);
    const weight = this.d.classifier.informativeness?.(text) ?? 1;
    let view = stepTask(loaded.persisted, [{ type: 'OBSERVE', at: this.d.now(), text, distribution, weight }]);
    await this.d.store.save(id, view.persisted);
    let move: TaskMove = carried;
    if (view.state === 'rerouting') ({ view, move } = await this.settle(id, view));
    return { v: 1 as const, task: id, domain: view.context.domain, ...move, classification: distribution };
  }

  async reroute(id: string, domain: string) {
    this.requireDomain(domain);
    const { view: loaded, carried } = await this.open(id);
    let view = stepTask(loaded.persisted, [{ type: 'REROUTE', at: this.d.now(), to: domain }]);
    if (view.state !== 'rerouting') return { v: 1 as const, task: id, domain: view.context.domain, ...carried };
    await this.d.store.save(id, view.persisted);
    await this.teach(view.context.texts.slice(-CONTEXT_TEXTS).join('\n'), domain, 'reroute', view.context.agent);
    let move: TaskMove;
    ({ view, move } = await this.settle(id, view));
    return { v: 1 as const, task: id, domain: view.context.domain, ...move };
  }

  async end(id: string): Promise<TaskSummary> {
    const { view: loaded } = await this.open(id);
    const view = stepTask(loaded.persisted, [{ type: 'END', at: this.d.now() }]);
    await this.d.store.save(id, view.persisted);
    return summary(view);
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
    const view = stepTask(
      await this.d.store.load(id),
      facts.map((f) => ({ type: 'REMEMBERED' as const, at, domain: f.domain, factId: f.factId, text: f.text })),
    );
    await this.d.store.save(id, view.persisted);
  }

  /** Loads a live task, finishing a move a dead router left half done. Ended tasks take no more steps. */
  private async open(id: string): Promise<{ view: TaskView; carried: TaskMove }> {
    let view = stepTask(await this.d.store.load(id), []);
    if (view.state === 'ended') throw new ShardmindError(ErrorCode.BAD_REQUEST, `task ${id} has ended`);
    let carried: TaskMove = { rerouted: null, context: [] };
    if (view.state === 'rerouting') ({ view, move: carried } = await this.settle(id, view));
    return { view, carried };
  }

  /** Fetches the new domain's context, completes the move and saves it. */
  private async settle(id: string, view: TaskView): Promise<{ view: TaskView; move: TaskMove }> {
    const pending = view.context.pending!;
    const { context, missing } = await this.contextFor(pending.to, view.context.texts);
    const settled = stepTask(view.persisted, [{ type: 'SETTLED', at: this.d.now() }]);
    await this.d.store.save(id, settled.persisted);
    this.d.log(`task ${id}: re-routed ${pending.from} → ${pending.to} (${pending.why}), ${context.length} context facts`);
    return {
      view: settled,
      move: { rerouted: { from: pending.from, to: pending.to }, context, ...(missing ? { missing } : {}) },
    };
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
