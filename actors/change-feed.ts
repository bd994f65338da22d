/**
 * The change feed: after each LMDB commit the leader publishes what it changed on `sm.evt.<domain>` (core NATS), so
 * an agent that cares — "tell me when anyone learns something about the user" — hears it at once instead of polling.
 * One message per commit (a batch of events, so a busy shard sends few messages), msgpack:
 * `{ v: 1, domain, fromSeq, toSeq, events: [{ seq, op, status, factId?, text?, subject?, subjectAsWritten?, predicate?,
 * object?, agent, node?, task?, superseded?, entity? }] }`. Only what agents did (remember, forget, retract, entity);
 * leadership markers, retried duplicates and rejected entries are left out of `events`, but not out of the range.
 *
 * Every event about a fact names its subject and predicate as stored (an alias resolved to its entity's id), so a
 * watcher filtering by subject hears a forget or retract of that subject's facts, not only its remembers; an entity
 * event's subject is the entity's id. An assert gets them from its apply result; a forget, retract or reinforce
 * names only a fact id, so its fact is read back (these ops are rare: asserts, the hot path, read nothing).
 *
 * Delivery is at most once (core NATS: a watcher that is away misses what happened meanwhile). Commits' ranges are
 * contiguous, so a watcher that sees `fromSeq` past the last `toSeq` + 1 — a missed message, or a change of leader
 * (whose epoch marker is appended outside the write pipeline) — knows to read the memory itself (recall, history)
 * for that stretch. Only the leader publishes, so each change is announced once.
 */
import type { NatsConnection } from 'nats';
import { encodePayload, eventSubject, type ChangeFeedMessage, type WireChangeEvent } from '../protocol/index.ts';
import type { ApplyResult, Fact, LogEntry } from '../shards/index.ts';

/** Reads a stored fact by id: the shard's store (`ShardStore.getFact`). */
export type FactReader = (factId: string) => Fact | undefined;

/** Publishes one commit's changes. Never throws: the feed is best effort, the write already happened. */
export function publishChanges(nc: NatsConnection, domain: string, applied: readonly { entry: LogEntry; result: ApplyResult }[], readFact: FactReader): void {
  const first = applied[0];
  const last = applied[applied.length - 1];
  if (first === undefined || last === undefined) return;
  const events: WireChangeEvent[] = [];
  for (const { entry, result } of applied) {
    const event = changeEvent(entry, result, readFact);
    if (event) events.push(event);
  }
  // Sent even with no events (a commit of markers only): watchers follow the ranges to tell a gap from a quiet log.
  const message: ChangeFeedMessage = { v: 1, domain, fromSeq: first.result.seq, toSeq: last.result.seq, events };
  try {
    nc.publish(eventSubject(domain), encodePayload(message, 'msgpack'));
  } catch {
    // The connection is closing: nobody is listening through it any more.
  }
}

/** A mutable event under construction; built field by field because spreads cost ~3 µs per write on this path. */
type Draft = { -readonly [K in keyof WireChangeEvent]: WireChangeEvent[K] };

function changeEvent(entry: LogEntry, r: ApplyResult, readFact: FactReader): WireChangeEvent | undefined {
  if (r.status === 'rejected' || r.status === 'marker' || r.duplicate) return undefined;
  if (entry.op !== 'assert' && entry.op !== 'entity' && entry.op !== 'forget' && entry.op !== 'retract' && entry.op !== 'reinforce') return undefined;
  const event: Draft = { seq: r.seq, op: entry.op, status: r.status, agent: entry.source.agent };
  if (r.factId !== undefined) event.factId = r.factId;
  if (entry.source.node !== undefined) event.node = entry.source.node;
  if (entry.source.task !== undefined) event.task = entry.source.task;
  if (entry.op === 'assert') {
    const f = entry.fact;
    event.text = f.text;
    // The result carries the stored subject and object only when an alias resolved them; else they are as written.
    const subject = 'subject' in r ? r.subject : f.subject;
    if (subject !== undefined) event.subject = subject;
    if (f.subject !== undefined && subject !== f.subject) event.subjectAsWritten = f.subject;
    if (f.predicate !== undefined) event.predicate = f.predicate;
    const object = 'object' in r ? r.object : f.object;
    if (object !== undefined) event.object = object;
    if (r.supersededIds && r.supersededIds.length > 0) event.superseded = [...r.supersededIds];
  } else if (entry.op === 'entity') {
    event.entity = entry.entity.id;
    event.subject = entry.entity.id;
  } else if (r.factId !== undefined) {
    const fact = storedFact(readFact, r.factId);
    if (fact?.subject !== undefined) event.subject = fact.subject;
    if (fact?.predicate !== undefined) event.predicate = fact.predicate;
  }
  return event;
}

/** A fact read back for its names; undefined when the store cannot say (closing under a step-down). */
function storedFact(readFact: FactReader, factId: string): Fact | undefined {
  try {
    return readFact(factId);
  } catch {
    return undefined;
  }
}
