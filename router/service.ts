/**
 * The router service: `sm.mem.*` in queue group `sm-router`, one on every host, no state of its own beyond NATS
 * (the learning stream, the task bucket). Each request is size-checked, decoded and validated at the edge, routed —
 * classified, fanned out, or sent to its task's domain — and answered in the request's encoding (JSON in → JSON out).
 *
 * `startRouter(nc, config, { node })` is what a host calls; `stop()` drains intake and is safe to call twice.
 */
import { randomUUID } from 'node:crypto';
import { headers, type Msg, type MsgHdrs, type NatsConnection, type Subscription } from 'nats';
import type { ClusterConfig } from '../config/index.ts';
import {
  ErrorCode,
  ROUTER_QUEUE,
  ShardmindError,
  checkSize,
  decodePayload,
  domainName,
  encodePayload,
  encodingOf,
  errorReply,
  isPayloadTooLarge,
  maxPayloadOf,
  readHeaders,
  replyTooLarge,
  replyEncodingAfter,
  isRecord,
  list,
  memSubject,
  parseClassifyRequest,
  parseForgetRequest,
  parseGetRequest,
  parseHistoryRequest,
  parseRecallRequest,
  parseRememberRequest,
  parseRememberBatchRequest,
  parseRetractRequest,
  parseEntityRequest,
  parseLookupRequest,
  parseTaskBeginRequest,
  parseTaskEndRequest,
  parseTaskObserveRequest,
  parseTaskRerouteRequest,
  LIMITS,
  REPLY_TO_HEADER,
  ReplySubjectCheck,
  toWireError,
  ROUTER_NODE_HEADER,
  type Encoding,
  type EntityReply,
  type HeadersRead,
  type HistoryReply,
  type LookupReply,
  type RecallReply,
  type RecallRequest,
  type RememberReply,
  type RememberBatchItem,
  type RememberBatchReply,
} from '../protocol/index.ts';
import { fanOut, type Classifier } from './classifier.ts';
import { answerRecallBatch, type RecallBatchDeps, type RecallPlan } from './recall-batch.ts';
import { guarded } from './guarded.ts';
import { LeaderBeats } from './leader-beats.ts';
import { PredicateHomes } from './predicate-homes.ts';
import { SharedLearning } from './learning.ts';
import { createConfiguredClassifier } from './load-classifier.ts';
import { ShardClient, missingDomain, type MissingDomain, type ReadRoute } from './shard-client.ts';
import { TaskStore } from './task-store.ts';
import { TaskService } from './tasks.ts';
import { WriteRoutes } from './write-routes.ts';

/** Facts a recall returns when it does not say. */
export const DEFAULT_RECALL_LIMIT = 10;
/** Reply header naming the Mini whose router answered (operators' logs, and tests that kill that Mini). */
export { ROUTER_NODE_HEADER };
/** Writes may wait out a leader election; reads should not (they fan out and report who was missing). */
const WRITE_TIMEOUT_FLOOR_MS = 5_000;
/** How often the router may log that remembered facts were not noted in their task (a bucket outage fails many). */
const TASK_NOTE_LOG_EVERY_MS = 10_000;
/** How long a remember's reply waits for its task note before it goes with a warning (the note goes on). */
const TASK_NOTE_WAIT_MS = 1_000;

export interface RouterOptions {
  /** The Mini this router runs on (for log lines). */
  readonly node: string;
  /** Replaces the configured classifier (tests, embedding). */
  readonly classifier?: Classifier;
  readonly now?: () => number;
  readonly log?: (line: string) => void;
}

export interface Router {
  readonly classifier: Classifier;
  /** Labelled examples applied from the shared stream so far. */
  learned(): number;
  stop(): Promise<void>;
}

/**
 * Starts the router on this connection.
 * @example
 * const router = await startRouter(nc, config, { node: 'mini-1' });
 * // … on shutdown:
 * await router.stop();
 */
export async function startRouter(nc: NatsConnection, config: ClusterConfig, options: RouterOptions): Promise<Router> {
  const log = options.log ?? ((line: string) => console.error(`[router ${options.node}] ${line}`));
  const now = options.now ?? Date.now;
  const classifier = options.classifier ?? (await createConfiguredClassifier(config));
  const replicas = config.replication.replicas;
  const learning = await SharedLearning.start(nc, classifier, { replicas, log });
  const store = await TaskStore.open(nc, { replicas });
  const routes = await WriteRoutes.open(nc, { replicas });
  const shards = new ShardClient(nc, config.router.shardTimeoutMs, log);
  const domains = new Set(config.domains.map((d) => d.name));
  const tasks = new TaskService({
    store,
    begins: routes,
    classifier,
    shards,
    learning,
    domains,
    rerouteMargin: config.router.rerouteMargin,
    now,
    log,
  });
  // Work a reply does not wait for (recording a labelled example); `stop()` lets it finish.
  const background = new Set<Promise<void>>();
  const later = (p: Promise<void>): void => {
    background.add(p);
    // The work handles its own errors; a rejection that gets out anyway is logged, never left unhandled (Node exits).
    void p.catch((err: unknown) => log(`background work failed: ${(err as Error)?.stack ?? String(err)}`)).finally(() => background.delete(p));
  };
  const beats = new LeaderBeats(nc, domains, config.replication.leaseMs, now, log);
  const homes = new PredicateHomes(config.domains);
  const handlers = memoryHandlers({ config, classifier, shards, tasks, learning, domains, log, later, node: options.node, beats, routes, homes });

  const inFlight = new Set<Promise<void>>();
  const nodeHeaders = replyHeaders(options.node);
  const quick = quickRecall({ config, shards, beats, node: options.node, nodeHeaders, log });
  // The router answers, and hands off to shards, only client inboxes (decisions §69): as `host` it may publish
  // anywhere, and an agent must not make it publish to `$JS.API.…` or `sm.log.…` by naming that as its reply.
  const replies = new ReplySubjectCheck(`[${options.node}] router`, log);
  const sub: Subscription = nc.subscribe(memSubject('>'), {
    queue: ROUTER_QUEUE,
    callback: guarded('sm.mem', log, (msg) => {
      if (!replies.admits(msg.subject, msg.reply)) return;
      // Read once: nats.js decodes headers on access and throws on a malformed block, again on every access.
      const read = readHeaders(msg);
      if (read.ok && quick(msg, read.headers)) return;
      const p: Promise<void> = answer(msg, read, handlers, config.limits.maxPayloadBytes, nodeHeaders, log)
        .catch((err: unknown) => log(`${msg.subject}: unanswered, the handler failed: ${(err as Error)?.stack ?? String(err)}`))
        .finally(() => inFlight.delete(p));
      inFlight.add(p);
    }),
  });

  let stopping: Promise<void> | undefined;
  return {
    classifier,
    learned: () => learning.applied,
    stop() {
      stopping ??= (async () => {
        await sub.drain().catch(() => {});
        await Promise.allSettled([...inFlight]);
        await Promise.allSettled([...background]);
        shards.close();
        beats.stop();
        await learning.stop();
      })();
      return stopping;
    },
  };
}

/** The request as it arrived: a handler that forwards it unchanged to one shard sends these bytes. */
interface RawRequest {
  readonly data: Uint8Array;
  readonly encoding: Encoding;
  /** The agent's reply subject, for a shard to answer directly. */
  readonly reply: string;
}

/**
 * A request handed to a shard that answers the agent itself (protocol/hand-off.ts). `fallback` settles later: with
 * nothing when the shard answered, or with the reply (or error) the router must send after all.
 */
class HandedOff {
  constructor(readonly fallback: Promise<Uint8Array | undefined>) {}
}

/** A reply body, a shard's msgpack reply bytes passed on as they are, or a request the shard answers itself. */
type Handler = (body: unknown, raw: RawRequest) => Promise<object | Uint8Array | HandedOff>;

/** The reply headers: which router answered, and the content type of a JSON reply. Built once, reused. */
function replyHeaders(node: string): Record<Encoding, MsgHdrs> {
  const msgpack = headers();
  msgpack.set(ROUTER_NODE_HEADER, node);
  const json = headers();
  json.set(ROUTER_NODE_HEADER, node);
  json.set('content-type', 'application/json');
  return { msgpack, json };
}

/**
 * Answers one request. `read` is its headers as read once by the callback; malformed ones are a BAD_REQUEST, sent in
 * msgpack (the content type is among what could not be read).
 */
async function answer(
  msg: Msg,
  read: HeadersRead<MsgHdrs>,
  handlers: Record<string, Handler>,
  maxPayloadBytes: number,
  nodeHeaders: Record<Encoding, MsgHdrs>,
  log: (l: string) => void,
): Promise<void> {
  let encoding = read.ok ? encodingOf(read.headers) : 'msgpack';
  const op = msg.subject.slice('sm.mem.'.length);
  let reply: object | Uint8Array;
  const failed = (err: unknown): object => failure(err, op, log);
  const send = (reply: object | Uint8Array): void => sendReply(msg, reply, encoding, nodeHeaders[encoding], op, log);
  try {
    if (!read.ok) throw read.error;
    const handler = Object.hasOwn(handlers, op) ? handlers[op] : undefined;
    if (!handler) throw new ShardmindError(ErrorCode.BAD_REQUEST, `unknown op "${op}"; known: ${Object.keys(handlers).join(', ')}`);
    checkSize(msg.data, maxPayloadBytes);
    const handled = await handler(decodePayload(msg.data, encoding), { data: msg.data, encoding, reply: msg.reply ?? '' });
    if (handled instanceof HandedOff) {
      // Not awaited: a router stopping does not wait out the window in which a refusal could still come back.
      handled.fallback.then(
        (bytes) => {
          if (bytes !== undefined) send(bytes);
        },
        (err: unknown) => send(failed(err)),
      );
      return;
    }
    reply = handled;
  } catch (err) {
    reply = failed(err);
    encoding = replyEncodingAfter(err, encoding);
  }
  send(reply);
}

/** The error reply for `err`; an unexpected error is logged with its stack. */
function failure(err: unknown, op: string, log: (l: string) => void): object {
  if (!(err instanceof ShardmindError) || err.code === ErrorCode.INTERNAL) log(`${op} failed: ${(err as Error).stack ?? err}`);
  return errorReply(err);
}

/** Answers the request (if it has a reply subject) with `reply`'s bytes, or the body encoded. Never throws. */
function sendReply(msg: Msg, reply: object | Uint8Array, encoding: Encoding, headers: MsgHdrs, op: string, log: (l: string) => void): void {
  if (!msg.reply) return;
  let data: Uint8Array | undefined;
  try {
    data = reply instanceof Uint8Array ? reply : encodePayload(reply, encoding);
    msg.respond(data, { headers });
  } catch (err) {
    // Over the server's max_payload (a merged answer, or a shard's relayed): said, not dropped into a TIMEOUT.
    if (data !== undefined && isPayloadTooLarge(err)) {
      try {
        msg.respond(encodePayload(errorReply(replyTooLarge(data.length, maxPayloadOf(msg))), encoding), { headers });
        return;
      } catch {
        // As below.
      }
    }
    log(`${op}: could not send the reply: ${(err as Error).message}`);
  }
}

const RECALL_SUBJECT = memSubject('recall');

/**
 * The router's most common request, handed to its shard in the subscription's own callback: a msgpack recall
 * naming one known domain (a string) whose leader is heard, not asking for a replica. The general path (`answer`
 * and the `recall` handler) does the same with two async functions, a promise per hand-off and closures that tsx
 * names on every call — ~10 µs more of a sequential recall here. `quick(msg)` returns false, having done nothing,
 * for any other request and for one it cannot read: the general path then answers it, with the error it always
 * gave. `headers` are the request's, already read (the caller answers malformed ones itself).
 */
function quickRecall(d: {
  readonly config: ClusterConfig;
  readonly shards: ShardClient;
  readonly beats: LeaderBeats;
  readonly node: string;
  readonly nodeHeaders: Record<Encoding, MsgHdrs>;
  readonly log: (line: string) => void;
}): (msg: Msg, headers: MsgHdrs | undefined) => boolean {
  const known = new Set(d.config.domains.map((x) => x.name));
  const maxPayloadBytes = d.config.limits.maxPayloadBytes;
  // One set of hand-off headers, its reply subject replaced per request: a publish encodes them at once, and
  // nothing keeps them (a bounce is asked again without them), so none is built per request.
  const handOffHeaders = headers();
  handOffHeaders.set(ROUTER_NODE_HEADER, d.node);
  // What the shard's answer to a request that came back to the router (a refusal retried, an old host) becomes.
  const bounced = (msg: Msg, reply: Promise<Uint8Array>): void => {
    reply.then(
      (bytes) => sendReply(msg, bytes, 'msgpack', d.nodeHeaders.msgpack, 'recall', d.log),
      (err: unknown) => sendReply(msg, failure(err, 'recall', d.log), 'msgpack', d.nodeHeaders.msgpack, 'recall', d.log),
    );
  };
  return (msg, headers) => {
    const reply = msg.reply;
    if (!reply || msg.subject !== RECALL_SUBJECT || encodingOf(headers) !== 'msgpack') return false;
    const data = msg.data;
    if (data.length === 0 || data.length > maxPayloadBytes) return false;
    let domain: unknown;
    try {
      const req = parseRecallRequest(decodePayload(data, 'msgpack'));
      // A replica read, or a read-your-writes wait (its longer timeout: `readTimeout`), goes the general way.
      if (req.maxStaleMs !== undefined || req.minSeq !== undefined) return false;
      domain = req.domain;
    } catch {
      return false;
    }
    if (typeof domain !== 'string' || !known.has(domain) || !d.beats.heard(domain)) return false;
    handOffHeaders.set(REPLY_TO_HEADER, reply);
    try {
      d.shards.handOffThen(domain, 'recall', data, handOffHeaders, (fallback) => bounced(msg, fallback));
    } catch (err) {
      // The publish failed (the connection is closing): answered as the general path answers it.
      sendReply(msg, failure(err, 'recall', d.log), 'msgpack', d.nodeHeaders.msgpack, 'recall', d.log);
    }
    return true;
  };
}

interface HandlerDeps {
  readonly config: ClusterConfig;
  readonly classifier: Classifier;
  readonly shards: ShardClient;
  readonly tasks: TaskService;
  readonly learning: SharedLearning;
  readonly domains: ReadonlySet<string>;
  readonly log: (line: string) => void;
  /** Runs work the reply does not wait for, tracked so that `stop()` waits for it. */
  readonly later: (work: Promise<void>) => void;
  /** This router's Mini, named in the headers of answers a shard sends on its behalf. */
  readonly node: string;
  /** Shards whose leader was heard lately: only those are handed requests to answer directly. */
  readonly beats: LeaderBeats;
  /** Where writes without a named domain went, by opId. */
  readonly routes: WriteRoutes;
  /** The domains that declare each predicate: where a write of it goes, which domains a recall of it asks. */
  readonly homes: PredicateHomes;
}

function memoryHandlers(d: HandlerDeps): Record<string, Handler> {
  const { config, classifier, shards, tasks } = d;
  const requireDomain = (domain: string): string => {
    if (!d.domains.has(domain)) {
      throw new ShardmindError(ErrorCode.UNKNOWN_DOMAIN, `no domain "${domain}"; known: ${[...d.domains].join(', ')}`);
    }
    return domain;
  };
  /**
   * A fact id says its domain (`email:000000002a:0`; the parsers checked its shape); the request may also name it.
   * An id naming a domain the cluster does not have is UNKNOWN_DOMAIN, as a `domain` field naming one is.
   */
  const domainOfFact = (factId: string, named: unknown): string => {
    if (named !== undefined && named !== null) return requireDomain(domainName(named, 'domain'));
    const prefix = factId.slice(0, factId.indexOf(':'));
    if (d.domains.has(prefix)) return prefix;
    throw new ShardmindError(ErrorCode.UNKNOWN_DOMAIN, `factId: "${factId}" names domain "${prefix}", which is not in the cluster config (domains: ${[...d.domains].join(', ')})`);
  };
  const rawField = (body: unknown, field: string): unknown => (isRecord(body) ? body[field] : undefined);
  /**
   * A read that says how stale it may be goes to a replica (docs/protocol.md, Replica reads), the one on this
   * router's Mini first when the placement puts a copy here; others go to the leader.
   */
  const routeOf = (maxStaleMs: number | undefined) =>
    maxStaleMs === undefined
      ? () => undefined
      : (domain: string): ReadRoute => {
          const p = config.placement[domain];
          const here = p !== undefined && (p.leader === d.node || p.standbys.includes(d.node));
          return here ? { replica: true, node: d.node } : { replica: true };
        };
  const writeTimeout = Math.max(config.router.shardTimeoutMs, WRITE_TIMEOUT_FLOOR_MS);
  /** Remembers not noted in their task since the last log line about it, and when that was (TASK_NOTE_LOG_EVERY_MS). */
  let unnoted = 0;
  let loggedUnnotedAt = Number.NEGATIVE_INFINITY;
  /**
   * A read with `minSeq` may wait at the shard up to `limits.minSeqWaitMs` for the write it names, then the shard
   * answers TIMEOUT (retryable, and it says which sequence was not applied). The router waits that long plus its own
   * timeout, so the agent hears the shard's answer rather than the router's UNAVAILABLE "did not answer" first.
   */
  const readTimeout = (minSeq: Readonly<Record<string, number>> | undefined): number =>
    minSeq === undefined ? config.router.shardTimeoutMs : config.router.shardTimeoutMs + config.limits.minSeqWaitMs;

  return {
    /**
     * The write goes to its named domain, else the one domain that declares its predicate, else its task's, else the
     * classifier's pick (`writeDomain`; pinned by the agent's opId, so a retry lands where the first attempt did). It always reaches the shard with an opId, the router's own when the
     * agent sent none: the shard client asks again after a refusal, and a refusal can follow an applied write.
     */
    async remember(body) {
      const req = parseRememberRequest(body);
      const domain = await writeDomain(req.domain, req.task, req.fact, req.opId);
      const { domain: _named, ...fields } = req;
      const opId = req.opId ?? routerOpId();
      const reply = await shards.ask<RememberReply>(domain, 'remember', { ...fields, opId }, writeTimeout);
      const warning = req.task ? await noteInTask(req.task, [{ domain, factId: reply.factId, text: req.fact.text }]) : undefined;
      // Only an agent's own choice of domain teaches the classifier; a classified write would teach it its guesses.
      // The reply does not wait for the example's JetStream publish (a failure is only logged either way; a router
      // that dies before it loses the example just as one dying between the apply and an awaited publish did).
      if (req.domain && !reply.duplicate) d.later(teach(req.fact.text, domain, req.agent, opId));
      return warning === undefined ? reply : { ...reply, warning };
    },

    /**
     * Each item goes where a `remember` of it would (the request's domain, else `writeDomain`'s choice for the item,
     * pinned by the item's opId); the items bound for one shard go to it as one `remember_batch`, all shards at
     * once. A shard's failure fails the request (the client retries it whole; what landed answers as duplicates), an
     * item's stays its own.
     */
    async remember_batch(body) {
      const { req, items } = parseRememberBatchRequest(body);
      const named = req.domain === undefined ? undefined : requireDomain(req.domain);
      const results: RememberBatchReply['results'][number][] = new Array(items.length);
      const domainOf: (string | undefined)[] = new Array(items.length);
      await Promise.all(
        items.map(async (item, i) => {
          if (item instanceof ShardmindError) return void (results[i] = { error: toWireError(item) });
          try {
            domainOf[i] = named ?? (await writeDomain(undefined, item.task, item.fact, item.opId));
          } catch (err) {
            if (!(err instanceof ShardmindError) || err.retryable) throw err;
            results[i] = { error: toWireError(err) };
          }
        }),
      );
      // In item order: a shard applies its items in the order they came, as it would their remembers one by one.
      const byDomain = new Map<string, number[]>();
      for (const [i, domain] of domainOf.entries()) if (domain !== undefined) byDomain.set(domain, [...(byDomain.get(domain) ?? []), i]);
      await Promise.all(
        [...byDomain].map(async ([domain, indexes]) => {
          const forShard = { v: 1, agent: req.agent, node: req.node, items: indexes.map((i) => items[i] as RememberBatchItem) };
          let reply: RememberBatchReply;
          try {
            reply = await shards.ask<RememberBatchReply>(domain, 'remember_batch', forShard, writeTimeout);
          } catch (err) {
            if (!isUnknownOp(err, 'remember_batch')) throw err;
            // A shard host from before remember_batch (a rolling upgrade): its items one by one.
            reply = { v: 1, results: await rememberEach(domain, forShard) };
          }
          for (const [k, i] of indexes.entries()) {
            const r = reply.results[k];
            results[i] = isRecord(r)
              ? r
              : { error: toWireError(new ShardmindError(ErrorCode.INTERNAL, `the ${domain} shard answered ${reply.results.length} results for ${indexes.length} items`)) };
          }
        }),
      );
      // As for one remember: each task notes what was learned in it (one load and save per task, in item order; when
      // that fails, its items are still reported written, with a warning), and only an agent's own choice of domain
      // teaches the classifier.
      const byTask = new Map<string, number[]>();
      for (const [i, item] of items.entries()) {
        const r = results[i];
        if (item instanceof ShardmindError || r === undefined || 'error' in r) continue;
        if (item.task) byTask.set(item.task, [...(byTask.get(item.task) ?? []), i]);
        if (named && !r.duplicate) d.later(teach(item.fact.text, r.domain, req.agent, item.opId));
      }
      await Promise.all(
        [...byTask].map(async ([task, indexes]) => {
          const warning = await noteInTask(
            task,
            indexes.map((i) => {
              const r = results[i] as RememberReply;
              return { domain: r.domain, factId: r.factId, text: (items[i] as RememberBatchItem).fact.text };
            }),
          );
          if (warning !== undefined) for (const i of indexes) results[i] = { ...(results[i] as RememberReply), warning };
        }),
      );
      return { v: 1, results };
    },

    async recall(body, raw) {
      const req = parseRecallRequest(body);
      const limit = Math.min(req.limit ?? DEFAULT_RECALL_LIMIT, config.limits.maxRecallLimit);
      const plan = await recallPlan(req);
      const route = routeOf(req.maxStaleMs);
      const timeout = readTimeout(req.minSeq);
      if (plan.named && plan.domains.length === 1 && raw.encoding === 'msgpack') {
        // One shard answers it all: the request goes as it came (the shard ignores `domain` and `task` on a recall
        // and validates the rest the same way), and its reply is already the router's (same limit, same order), so
        // the shard sends it to the agent itself.
        const domain = plan.domains[0]!;
        const replica = route(domain);
        if (raw.reply === '' || replica || !d.beats.heard(domain)) return shards.forward(domain, 'recall', raw.data, timeout, replica);
        const h = headers();
        h.set(REPLY_TO_HEADER, raw.reply);
        h.set(ROUTER_NODE_HEADER, d.node);
        return new HandedOff(shards.handOff(domain, 'recall', raw.data, h, timeout));
      }
      const reply = await shards.recallMany(plan.domains, req, limit, route, timeout);
      return plan.classification ? { ...reply, classification: plan.classification } : reply;
    },

    /**
     * Several routed recalls in one message (router/recall-batch.ts): each planned as `recall` plans it, the parts
     * bound for one shard sent as one `recall_batch`, each result merged as `recall` merges it.
     */
    async recall_batch(body, raw) {
      const deps: RecallBatchDeps<HandedOff> = {
        plan: recallPlan,
        limitOf: (req) => Math.min(req.limit ?? DEFAULT_RECALL_LIMIT, config.limits.maxRecallLimit),
        routeOf,
        readTimeout,
        shards,
        heard: (domain) => d.beats.heard(domain),
        known: d.domains,
        handOff: (domain, data, timeoutMs) => {
          const h = headers();
          h.set(REPLY_TO_HEADER, raw.reply);
          h.set(ROUTER_NODE_HEADER, d.node);
          const handed = shards.handOff(domain, 'recall_batch', data, h, timeoutMs).catch(async (err: unknown) => {
            if (!isUnknownOp(err, 'recall_batch')) throw err;
            // A shard host from before recall_batch sent it back: answered here, its items asked one by one.
            const answered = await answerRecallBatch(body, { ...raw, reply: '' }, deps);
            return answered instanceof Uint8Array ? answered : encodePayload(answered, 'msgpack');
          });
          return new HandedOff(handed);
        },
      };
      return answerRecallBatch(body, raw, deps);
    },

    async classify(body) {
      const req = parseClassifyRequest(body);
      return { v: 1, domains: await classifier.classify(req.text) };
    },

    // Forget, retract and entity are close to idempotent on repeat, but not quite (a repeat re-applies its input
    // over whatever landed in between), so they too reach the shard with an opId, the router's when the agent sent
    // none, and the shard client's retry after a refusal answers from the first apply.
    async forget(body) {
      const req = parseForgetRequest(body);
      return shards.ask(domainOfFact(req.factId, rawField(body, 'domain')), 'forget', { ...req, opId: req.opId ?? routerOpId() }, writeTimeout);
    },

    async retract(body) {
      const req = parseRetractRequest(body);
      return shards.ask(domainOfFact(req.factId, rawField(body, 'domain')), 'retract', { ...req, opId: req.opId ?? routerOpId() }, writeTimeout);
    },

    async get(body) {
      const req = parseGetRequest(body);
      const domain = domainOfFact(req.factId, rawField(body, 'domain'));
      return shards.ask(domain, 'get', req, readTimeout(req.minSeq), routeOf(req.maxStaleMs)(domain));
    },

    /**
     * An entity is one identity across shards: without `domain` it is written to every domain, each keeping its
     * own view. The reply lists each domain's result; a domain that failed is in `missing` (the call fails only if
     * every domain did), and the caller may repeat it with the same opId.
     */
    async entity(body) {
      const req = parseEntityRequest(body);
      const asked = domainsOf(req.domain);
      const { domain: _domain, ...fields } = req;
      // One opId for every domain: each shard dedupes its own.
      const forShard = { ...fields, opId: req.opId ?? routerOpId() };
      const answers = await Promise.allSettled(asked.map((domain) => shards.ask<EntityReply>(domain, 'entity', forShard, writeTimeout)));
      return merged(asked, answers, (replies) => ({ entity: replies[0]!.entity, seqs: Object.fromEntries(replies.map((r) => [r.domain, r.seq])) }));
    },

    /** An entity by id or alias, from the named domains or all of them: each domain's view. */
    async lookup(body) {
      const req = parseLookupRequest(body);
      const asked = domainsOf(req.domain);
      const { domain: _domain, ...forShard } = req;
      const answers = await Promise.allSettled(asked.map((domain) => shards.ask<LookupReply>(domain, 'lookup', forShard)));
      return merged(asked, answers, (replies) => ({ views: replies.map((r) => ({ domain: r.domain, ...r.entity })) }), true);
    },

    async history(body) {
      const req = parseHistoryRequest(body);
      const named = rawField(body, 'domain');
      const asked =
        named === undefined || named === null
          ? [...d.domains]
          : (typeof named === 'string' ? [domainName(named, 'domain')] : list(domainName, LIMITS.domainsPerRequest)(named, 'domain')).map(
              requireDomain,
            );
      // A cursor is a position in one domain's log: it pages that domain only.
      if (req.before !== undefined && asked.length !== 1) {
        throw new ShardmindError(ErrorCode.BAD_REQUEST, `before: a history cursor belongs to one domain; name exactly one in "domain" (asked ${asked.length})`);
      }
      const route = routeOf(req.maxStaleMs);
      const answers = await Promise.allSettled(asked.map((domain) => shards.ask<HistoryReply>(domain, 'history', req, readTimeout(req.minSeq), route(domain))));
      const facts: HistoryReply['facts'][number][] = [];
      const missing: MissingDomain[] = [];
      const nextByDomain: Record<string, number> = {};
      let more = false;
      let staleMs: number | undefined;
      answers.forEach((a, i) => {
        if (a.status === 'fulfilled') {
          facts.push(...a.value.facts);
          if (a.value.next !== undefined) {
            nextByDomain[asked[i]!] = a.value.next;
            more = true;
          }
          if (a.value.staleMs !== undefined) staleMs = Math.max(staleMs ?? 0, a.value.staleMs);
        } else missing.push(missingDomain(asked[i]!, a.reason));
      });
      if (missing.length === asked.length) throw (answers[0] as PromiseRejectedResult).reason;
      // The order each shard gives (docs/protocol.md history): world time, then record time. Sorting on recordedAt alone
      // put a late-arriving older value last, where an agent reads the latest (walkthrough session 12, F19). Stable, so
      // a shard's own tie order (its positions) stays.
      facts.sort((a, b) => byIso(a.validFrom, b.validFrom) || byIso(a.recordedAt, b.recordedAt));
      // One domain: its cursor as the shard gave it. Several: each domain's, to page them one at a time.
      const paging = !more ? {} : asked.length === 1 ? { next: nextByDomain[asked[0]!]! } : { nextByDomain };
      return { v: 1, domains: asked, facts, ...paging, ...(missing.length ? { missing } : {}), ...(staleMs !== undefined ? { staleMs } : {}) };
    },

    async 'task.begin'(body) {
      const req = parseTaskBeginRequest(body);
      return tasks.begin(req.agent, req.text, req.domain, req.opId);
    },

    async 'task.observe'(body) {
      const req = parseTaskObserveRequest(body);
      return tasks.observe(req.task, req.text, req.opId);
    },

    async 'task.reroute'(body) {
      const req = parseTaskRerouteRequest(body);
      return tasks.reroute(req.task, req.domain);
    },

    async 'task.end'(body) {
      const req = parseTaskEndRequest(body);
      return tasks.end(req.task);
    },

    /** Not in the minimum contract: a task's state, domains and history, for operators, tests and the demo. */
    async 'task.get'(body) {
      // Same shape as `task.end`'s request: `{ v: 1, task }`.
      const req = parseTaskEndRequest(body);
      return tasks.get(req.task);
    },
  };

  /** The domains a request names (a name or a list), or every configured domain. */
  function domainsOf(named: string | readonly string[] | undefined): string[] {
    if (named === undefined) return [...d.domains];
    return (typeof named === 'string' ? [named] : [...new Set(named)]).map(requireDomain);
  }

  /**
   * Per-domain answers as one reply: `body(fulfilled)`, the domains that answered, and those that failed (`missing`).
   * Throws when none answered. With `notFoundIsMissing`, a NOT_FOUND is "not there", left out of `missing`.
   */
  function merged<T extends { domain: string }>(
    asked: readonly string[],
    answers: readonly PromiseSettledResult<T>[],
    body: (fulfilled: T[]) => object,
    notFoundIsMissing = false,
  ): object {
    const fulfilled: T[] = [];
    const missing: MissingDomain[] = [];
    answers.forEach((a, i) => {
      if (a.status === 'fulfilled') fulfilled.push(a.value);
      else {
        const entry = missingDomain(asked[i]!, a.reason);
        if (!(notFoundIsMissing && entry.code === ErrorCode.NOT_FOUND)) missing.push(entry);
      }
    });
    if (fulfilled.length === 0) {
      // Nothing answered: a real failure says more than "not found here".
      const reasons = answers.map((a) => (a as PromiseRejectedResult).reason as unknown);
      throw reasons.find((r) => toWireError(r).code !== ErrorCode.NOT_FOUND) ?? reasons[0];
    }
    return { v: 1, domains: fulfilled.map((r) => r.domain), ...body(fulfilled), ...(missing.length ? { missing } : {}) };
  }

  /** A batch's items as single remembers, for a shard host that predates `remember_batch`. */
  async function rememberEach(domain: string, batch: { agent: string; node?: string | undefined; items: RememberBatchItem[] }): Promise<RememberBatchReply['results'][number][]> {
    return Promise.all(
      batch.items.map(async (item) => {
        try {
          const { v: _v, ...r } = await shards.ask<RememberReply>(domain, 'remember', { v: 1, agent: batch.agent, node: batch.node, ...item }, writeTimeout);
          return r;
        } catch (err) {
          if (!(err instanceof ShardmindError) || err.retryable) throw err;
          return { error: toWireError(err) };
        }
      }),
    );
  }

  /**
   * Notes remembered facts in their task; undefined when done, else the warning their replies carry. The facts are
   * durable by now: a failure here (the task bucket unreachable past its retries, the task expired) must not be
   * reported as the write's, or the agent would write again — with a new opId, a second observation of the fact.
   * Nor may it hold the reply past the agent's timeout (the bucket's own retries run 3 s; the SDK waits 2 s for a
   * reply): after TASK_NOTE_WAIT_MS the reply goes with a warning, and the note goes on in the background.
   */
  async function noteInTask(task: string, facts: readonly { domain: string; factId: string; text: string }[]): Promise<string | undefined> {
    let settled = false;
    const noting = tasks.rememberedMany(task, facts).then(
      () => void (settled = true),
      (err: unknown) => {
        settled = true;
        const { code, message } = toWireError(err);
        unnoted += facts.length;
        if (Date.now() - loggedUnnotedAt >= TASK_NOTE_LOG_EVERY_MS) {
          d.log(`tasks: ${unnoted} remembered fact(s) stored but not noted in their task; last: task ${task}: ${code}: ${message} (logged at most every ${TASK_NOTE_LOG_EVERY_MS / 1000} s)`);
          loggedUnnotedAt = Date.now();
          unnoted = 0;
        }
        return `task ${task}: stored, but noting it in the task failed (${code}: ${message}); the task's history and context miss it`;
      },
    );
    let timer: NodeJS.Timeout | undefined;
    const slow = new Promise<string>((resolve) => {
      timer = setTimeout(
        () => resolve(`task ${task}: stored, but noting it in the task did not finish within ${TASK_NOTE_WAIT_MS} ms (it goes on; if it fails, the task's history and context miss it)`),
        TASK_NOTE_WAIT_MS,
      );
    });
    const warning = await Promise.race([noting, slow]);
    clearTimeout(timer);
    // Still running: `stop()` waits for it (its failure is logged above).
    if (!settled) d.later(noting.then(() => undefined));
    return warning;
  }

  /**
   * Where a write goes (§73):
   * 1. `named`: the agent's choice always wins.
   * 2. The one domain that declares the fact's predicate: a `one` predicate supersedes only inside one shard, so its
   *    values must all land in the domain whose spec makes it `one` (F10). Before the task, because a task's domain
   *    is the classifier's reading of the task, while the declaration is the operator's; the fact is still noted in
   *    its task (the note names the domain it went to).
   * 3. A predicate several domains declare: the task's current domain when it is one of them, else the classifier's
   *    best among them. Never a fan-out: one write, one domain.
   * 4. A predicate none declares (or none given): the task's current domain, else the classifier's pick.
   * A task is loaded whenever one is named, so an unknown or ended task is refused as before, whatever routes the
   * write. Every choice but the first can change between two attempts (a task re-routes, the classifier learns, a
   * rolling config edit changes the declarations), so with an agent's opId the first attempt's choice is recorded and
   * reused (write-routes.ts); a named domain never changes, and pays nothing for it.
   */
  async function writeDomain(
    named: string | undefined,
    task: string | undefined,
    fact: { readonly text: string; readonly predicate?: string | undefined },
    opId: string | undefined,
  ): Promise<string> {
    if (named !== undefined) return requireDomain(named);
    const taskDomain = task ? (await tasks.domainsOf(task))[0]! : undefined;
    const homes = d.homes.of(fact.predicate);
    const chosen = requireDomain(
      homes.length === 1
        ? homes[0]!
        : homes.length > 1
          ? taskDomain !== undefined && homes.includes(taskDomain)
            ? taskDomain
            : await top(fact.text, homes)
          : (taskDomain ?? (await top(fact.text))),
    );
    return opId === undefined ? chosen : requireDomain(await d.routes.pin(opId, chosen));
  }

  /**
   * The domains a routed recall asks (docs/protocol.md, recall): the ones it names; else its task's (current first);
   * else, when its query says nothing the classifier knows, the predicate filter's homes or every domain; else the
   * classifier's fan-out plus the predicate's homes, with the distribution that chose them.
   */
  async function recallPlan(req: RecallRequest): Promise<RecallPlan> {
    if (req.domain !== undefined) {
      return { domains: (typeof req.domain === 'string' ? [req.domain] : [...new Set(req.domain)]).map(requireDomain), named: true };
    }
    if (req.task) return { domains: [...(await tasks.domainsOf(req.task))], named: false };
    // The predicate filter's homes are where its facts are written (`writeDomain`): they are always asked.
    const homes = d.homes.of(req.predicate);
    // No query text, or none the classifier knows a word of: nothing to be sure of. A subject is an entity id, not
    // words about a domain ("user" read as a calendar word asked calendar alone), so it is not classified alone.
    if (!saysSomething(req.query)) return { domains: homes.length > 0 ? [...homes] : [...d.domains], named: false };
    const distribution = await classifier.classify([req.query, req.subject, req.predicate].filter(Boolean).join(' '));
    const fanned = fanOut(distribution, config.router.fanoutMargin, config.router.fanoutFloor);
    return { domains: [...fanned, ...homes.filter((h) => !fanned.includes(h))], named: false, classification: distribution };
  }

  /** Whether a recall's query gives the classifier anything to go on: text with a word it knows. */
  function saysSomething(query: string | undefined): boolean {
    if (query === undefined || query.trim() === '') return false;
    return (classifier.informativeness?.(query) ?? 1) > 0;
  }

  /** An opId for a write the agent sent without one: unique, and naming the router that made it. */
  function routerOpId(): string {
    return `router-${d.node}-${randomUUID()}`;
  }

  /** The classifier's best domain for `text`, or its best among `among`. */
  async function top(text: string, among?: readonly string[]): Promise<string> {
    const distribution = await classifier.classify(text);
    return ((among === undefined ? distribution[0] : distribution.find((p) => among.includes(p.domain))) ?? distribution[0]!).domain;
  }

  async function teach(text: string, domain: string, agent: string, opId: string | undefined): Promise<void> {
    await d.learning.record({ text, domain, why: 'explicit_domain', agent }, opId);
  }
}

/** A host's answer that it does not serve `op` (a build from before it). */
function isUnknownOp(err: unknown, op: string): boolean {
  return err instanceof ShardmindError && err.code === ErrorCode.BAD_REQUEST && err.message.includes(`unknown op "${op}"`);
}

/** The recall reply, plus the distribution when the router chose the domains. */
export type RouterRecallReply = RecallReply & { readonly classification?: readonly { domain: string; p: number }[] };

/** Orders two ISO-8601 times of the same form (`toISOString`'s): their strings sort as the times do. */
function byIso(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
