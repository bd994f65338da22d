/**
 * A task: one agent's piece of work whose domain may change midway. An xstate machine
 * `classifying → active → rerouting → active → … → ended`, pure (no I/O, no clock: every event carries its time
 * and the classifier's distribution), so its persisted snapshot in NATS KV lets any router continue it.
 *
 * Evidence: each observation adds its class distribution to a decayed running score per domain. The task re-routes
 * only when another domain's share of that evidence beats the current domain's by `rerouteMargin` — one stray word
 * in an email task moves the scores a little, a conversation that has clearly become about a meeting moves them
 * past the margin. `rerouting` is a state of its own (not a transition) so that a router that dies after deciding
 * to re-route, but before fetching the new domain's context, leaves a task the next router finishes re-routing.
 */
import { assign, setup } from 'xstate';
import type { DomainProbability } from './classifier.ts';
import type { WireTaskStep } from '../protocol/index.ts';

/** How much of the previous evidence survives one fully informative observation. */
export const DEFAULT_EVIDENCE_DECAY = 0.6;
/** Texts kept for the context recall on re-route (the newest). */
export const TASK_TEXTS_KEPT = 12;
/** History entries kept (the newest); the first (`begin`) is always kept. */
export const TASK_HISTORY_KEPT = 200;
/**
 * Characters of a text kept in history and for the context query. A snapshot is one KV value, and NATS caps a
 * message at 1 MiB: 200 history lines and 12 texts of 16 KiB each (the edge's text limit) would not fit.
 */
export const TASK_HISTORY_TEXT_CHARS = 400;
export const TASK_CONTEXT_TEXT_CHARS = 2_000;
/**
 * Observations whose opId a task remembers (the newest), so a repeat is not counted again. A client repeats within
 * its deadline (10 s by default), and an agent waits for each reply: 64 covers several agents sharing a task at
 * once, for about 2.5 KB of snapshot.
 */
export const TASK_OPS_KEPT = 64;

/** A step of the task's history: the shape `task.get` sends (protocol/wire.ts), so the two cannot drift apart. */
export type TaskHistoryEntry = WireTaskStep;

/** An observation the task counted, by the opId its agent sent, and the move it decided (null: none). */
export interface ObservedOp {
  readonly opId: string;
  readonly rerouted: { readonly from: string; readonly to: string } | null;
}

export interface TaskContext {
  readonly id: string;
  readonly agent: string;
  readonly rerouteMargin: number;
  readonly decay: number;
  /** The current domain ('' while classifying). */
  readonly domain: string;
  /** Every domain the task has been in, most recent first (the current one at the head). */
  readonly visited: readonly string[];
  readonly evidence: Readonly<Record<string, number>>;
  readonly texts: readonly string[];
  readonly history: readonly TaskHistoryEntry[];
  /** Set while in `rerouting` (null otherwise: JSON keeps a null, it drops an undefined). */
  readonly pending: { readonly from: string; readonly to: string; readonly why: 'evidence' | 'explicit' } | null;
  /**
   * The latest observations that carried an opId, oldest first (at most TASK_OPS_KEPT): an OBSERVE whose opId is
   * here is a repeat and changes nothing. Absent from snapshots written before observations had opIds.
   */
  readonly observedOps?: readonly ObservedOp[];
}

export interface TaskInput {
  readonly id: string;
  readonly agent: string;
  readonly rerouteMargin: number;
  readonly decay?: number;
}

export type TaskEvent =
  /** The opening text, classified (or with the domain the agent named). */
  | { type: 'CLASSIFIED'; at: number; text: string; distribution: readonly DomainProbability[]; domain?: string }
  /**
   * `weight` (0..1, default 1): how much the text says; see `Classifier.informativeness`. `opId`: the agent's id for
   * this observation; one already counted (`observedOps`) is ignored.
   */
  | { type: 'OBSERVE'; at: number; text: string; distribution: readonly DomainProbability[]; weight?: number; opId?: string }
  | { type: 'REROUTE'; at: number; to: string }
  /** The router has fetched the new domain's context: the move is complete. */
  | { type: 'SETTLED'; at: number }
  | { type: 'REMEMBERED'; at: number; domain: string; factId: string; text: string }
  | { type: 'END'; at: number };

/** The record of an observation with this opId, if the task counted one recently. */
export function observedOp(context: Pick<TaskContext, 'observedOps'>, opId: string): ObservedOp | undefined {
  return context.observedOps?.find((o) => o.opId === opId);
}

/** Each domain's share of the accumulated evidence. */
export function evidenceShares(evidence: Readonly<Record<string, number>>): Record<string, number> {
  const total = Object.values(evidence).reduce((a, b) => a + b, 0);
  const out: Record<string, number> = {};
  for (const [d, e] of Object.entries(evidence)) out[d] = total > 0 ? e / total : 0;
  return out;
}

/** The domain whose share beats the current one's by at least the margin, if any. */
export function overtakingDomain(context: Pick<TaskContext, 'evidence' | 'domain' | 'rerouteMargin'>): string | undefined {
  const shares = evidenceShares(context.evidence);
  const current = shares[context.domain] ?? 0;
  let best: string | undefined;
  for (const [d, s] of Object.entries(shares)) {
    if (d !== context.domain && s - current >= context.rerouteMargin && (best === undefined || s > shares[best]!)) best = d;
  }
  return best;
}

/** Old evidence fades by `decay` per fully informative observation; a weaker one fades it and adds less. */
function accumulate(
  evidence: Readonly<Record<string, number>>,
  distribution: readonly DomainProbability[],
  decay: number,
  weight = 1,
): Record<string, number> {
  const w = Math.min(1, Math.max(0, weight));
  const out: Record<string, number> = {};
  for (const [d, e] of Object.entries(evidence)) out[d] = e * decay ** w;
  for (const { domain, p } of distribution) out[domain] = (out[domain] ?? 0) + w * p;
  return out;
}

const clip = (text: string, chars: number): string => (text.length <= chars ? text : `${text.slice(0, chars - 1)}…`);
const keepTexts = (texts: readonly string[], text: string): string[] =>
  [...texts, clip(text, TASK_CONTEXT_TEXT_CHARS)].slice(-TASK_TEXTS_KEPT);
const keepHistory = (history: readonly TaskHistoryEntry[], entry: TaskHistoryEntry): TaskHistoryEntry[] => {
  const all = [...history, entry.text === undefined ? entry : { ...entry, text: clip(entry.text, TASK_HISTORY_TEXT_CHARS) }];
  return all.length <= TASK_HISTORY_KEPT ? all : [all[0]!, ...all.slice(all.length - TASK_HISTORY_KEPT + 1)];
};

export const taskMachine = setup({
  types: {} as { context: TaskContext; events: TaskEvent; input: TaskInput },
  guards: {
    alreadyObserved: ({ context, event }) => event.type === 'OBSERVE' && event.opId !== undefined && observedOp(context, event.opId) !== undefined,
    evidenceOvertakes: ({ context, event }) =>
      event.type === 'OBSERVE' &&
      overtakingDomain({
        ...context,
        evidence: accumulate(context.evidence, event.distribution, context.decay, event.weight),
      }) !==
        undefined,
    toAnotherDomain: ({ context, event }) => event.type === 'REROUTE' && event.to !== context.domain,
  },
  actions: {
    recordObservation: assign(({ context, event }) => {
      if (event.type !== 'OBSERVE') return {};
      return {
        evidence: accumulate(context.evidence, event.distribution, context.decay, event.weight),
        texts: keepTexts(context.texts, event.text),
        history: keepHistory(context.history, { at: event.at, kind: 'observe', domain: context.domain, text: event.text }),
        ...(event.opId === undefined
          ? {}
          : { observedOps: [...(context.observedOps ?? []), { opId: event.opId, rerouted: null }].slice(-TASK_OPS_KEPT) }),
      };
    }),
    decideEvidenceReroute: assign(({ context, event }) => {
      const pending = { from: context.domain, to: overtakingDomain(context)!, why: 'evidence' as const };
      if (event.type !== 'OBSERVE' || event.opId === undefined) return { pending };
      // recordObservation ran first: the last record is this observation's, and a repeat must report its move too.
      const ops = context.observedOps ?? [];
      const rerouted = { from: pending.from, to: pending.to };
      return { pending, observedOps: [...ops.slice(0, -1), { opId: event.opId, rerouted }] };
    }),
    decideExplicitReroute: assign(({ context, event }) =>
      event.type === 'REROUTE' ? { pending: { from: context.domain, to: event.to, why: 'explicit' as const } } : {},
    ),
    completeReroute: assign(({ context, event }) => {
      const pending = context.pending!;
      // An explicit move says the evidence so far was misread: what counted for the old domain counts for the new
      // one (swap), so the next observation that still sounds like the old domain does not undo the agent's move.
      const evidence = { ...context.evidence };
      const toScore = evidence[pending.to] ?? 0;
      const fromScore = evidence[pending.from] ?? 0;
      if (pending.why === 'explicit' && fromScore > toScore) {
        evidence[pending.to] = fromScore;
        evidence[pending.from] = toScore;
      }
      return {
        domain: pending.to,
        visited: [pending.to, ...context.visited.filter((d) => d !== pending.to)],
        evidence,
        pending: null,
        history: keepHistory(context.history, {
          at: event.at,
          kind: 'reroute',
          domain: pending.to,
          from: pending.from,
          to: pending.to,
          why: pending.why,
        }),
      };
    }),
    recordRemember: assign(({ context, event }) =>
      event.type === 'REMEMBERED'
        ? {
            history: keepHistory(context.history, {
              at: event.at,
              kind: 'remember',
              domain: event.domain,
              factId: event.factId,
              text: event.text,
            }),
          }
        : {},
    ),
    recordEnd: assign(({ context, event }) => ({
      history: keepHistory(context.history, { at: event.at, kind: 'end', domain: context.domain }),
    })),
  },
}).createMachine({
  id: 'task',
  initial: 'classifying',
  context: ({ input }) => ({
    id: input.id,
    agent: input.agent,
    rerouteMargin: input.rerouteMargin,
    decay: input.decay ?? DEFAULT_EVIDENCE_DECAY,
    domain: '',
    visited: [],
    evidence: {},
    texts: [],
    history: [],
    pending: null,
  }),
  states: {
    classifying: {
      on: {
        CLASSIFIED: {
          target: 'active',
          actions: assign(({ context, event }) => {
            const domain = event.domain ?? event.distribution[0]?.domain ?? '';
            const evidence = accumulate({}, event.distribution, context.decay);
            // A domain the agent named leads from the start, whatever the words say.
            if (event.domain) evidence[domain] = Math.max(1, ...Object.values(evidence));
            return {
              domain,
              visited: [domain],
              evidence,
              texts: keepTexts([], event.text),
              history: keepHistory([], { at: event.at, kind: 'begin', domain, text: event.text }),
            };
          }),
        },
      },
    },
    active: {
      on: {
        OBSERVE: [
          { guard: 'alreadyObserved' },
          { guard: 'evidenceOvertakes', target: 'rerouting', actions: ['recordObservation', 'decideEvidenceReroute'] },
          { actions: 'recordObservation' },
        ],
        REROUTE: { guard: 'toAnotherDomain', target: 'rerouting', actions: 'decideExplicitReroute' },
        REMEMBERED: { actions: 'recordRemember' },
        END: { target: 'ended', actions: 'recordEnd' },
      },
    },
    rerouting: {
      on: {
        SETTLED: { target: 'active', actions: 'completeReroute' },
        END: { target: 'ended', actions: 'recordEnd' },
      },
    },
    ended: { type: 'final' },
  },
});

export type TaskState = 'classifying' | 'active' | 'rerouting' | 'ended';
