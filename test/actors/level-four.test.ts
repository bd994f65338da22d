/**
 * Log level 4 in a mixed cluster (decisions §71): the rules apply follows for a `one` pair with no active value and
 * for entity ids are tied to the entry (`level: 4`), never to the build applying it. With a level-3 replica heard,
 * the leader writes entries as before and both replicas apply the old rules alike; without it, it writes level 4;
 * a level-3 replica that comes back stops before the first level-4 message, and upgraded it reaches the leader's
 * digest. In-process hosts, one real nats-server, real LMDB.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { startNatsServer, waitForJetStream, type NatsServerProcess } from '../../cli/index.ts';
import { decodeEntry, Host, LEVEL_HEADER, LOG_LEVEL, type HostStatusReply } from '../../actors/index.ts';
import { resolveConfig } from '../../config/index.ts';
import { ctlSubject, decodePayload, encodePayload, logStream, shardSubject } from '../../protocol/index.ts';
import { openShardStore } from '../../shards/index.ts';

interface Ctx {
  server?: NatsServerProcess;
  dir?: string;
  nc?: NatsConnection;
  hosts: Host[];
}

const four = suite<Ctx>('log level 4', { hosts: [] });
const quiet = (): void => undefined;
const DAY = 86_400_000;

four.before(async (ctx) => {
  ctx.server = await startNatsServer();
  ctx.dir = mkdtempSync(join(tmpdir(), 'sm-level-four-'));
  ctx.nc = await connect({ servers: ctx.server.url });
  await waitForJetStream(ctx.nc);
});

four.after(async (ctx) => {
  for (const h of ctx.hosts.splice(0)) await h.drain().catch(() => undefined);
  await ctx.nc?.close();
  await ctx.server?.destroy();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

const DOMAIN = 'calendar';
function config(ctx: Ctx) {
  return resolveConfig({
    nodes: ['c', 'd'].map((name) => ({ name, nats: [ctx.server!.url] })),
    domains: [{ name: DOMAIN, description: 'calendar', seeds: [], predicates: { works_in_timezone: { cardinality: 'one', halfLifeDays: 365 } } }],
    placement: { [DOMAIN]: { leader: 'c', standbys: ['d'] } },
    dataDir: ctx.dir!,
    replication: { leaseMs: 600, heartbeatMs: 150 },
  });
}

async function startHost(ctx: Ctx, node: string, logLevel: number, ready = true): Promise<Host> {
  const host = new Host({ config: config(ctx), node, openStore: openShardStore, log: quiet, logLevel });
  ctx.hosts.push(host);
  if (ready) await host.whenReady();
  else await host.start();
  return host;
}

async function stopHost(ctx: Ctx, host: Host): Promise<void> {
  ctx.hosts.splice(ctx.hosts.indexOf(host), 1);
  await host.drain();
}

async function request(ctx: Ctx, subject: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const m = await ctx.nc!.request(subject, encodePayload({ v: 1, ...body }, 'msgpack'), { timeout: 5_000 });
  return decodePayload(m.data, 'msgpack') as Record<string, unknown>;
}

function shard(host: Host): HostStatusReply['shards'][number] | undefined {
  return host.status().shards.find((s) => s.domain === DOMAIN);
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, ms = 15_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await Promise.resolve(probe()).catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A request to the shard, retried while it answers a retryable refusal (a leader settling in). */
async function ask(ctx: Ctx, op: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  return until(`${op} ${JSON.stringify(body).slice(0, 60)}`, async () => {
    const r = await request(ctx, shardSubject(DOMAIN, op), { agent: 't', ...body });
    return (r['error'] as { retryable?: boolean } | undefined)?.retryable ? undefined : r;
  });
}

/** The review's case A for `who`: PST, a move to CET in 30 days, the move called off, then EST from tomorrow. */
async function caseA(ctx: Ctx, who: string, now: number): Promise<string[]> {
  const zone = (object: string, validFrom: number) =>
    ask(ctx, 'remember', { opId: `${who}-${object}`, fact: { text: `${who} works in ${object}`, subject: who, predicate: 'works_in_timezone', object, validFrom: new Date(validFrom).toISOString() } });
  await zone('PST', now - DAY);
  const cet = await zone('CET', now + 30 * DAY);
  assert.is(cet['status'], 'superseded_previous');
  assert.is((await ask(ctx, 'retract', { opId: `${who}-off`, factId: cet['factId'] }))['status'], 'retracted');
  assert.is((await zone('EST', now + DAY))['status'], 'created');
  const r = await ask(ctx, 'recall', { subject: who, predicate: 'works_in_timezone', asOf: new Date(now + 2 * DAY).toISOString(), limit: 10 });
  return (r['facts'] as Record<string, unknown>[]).map((f) => String(f['object'])).sort();
}

async function sameDigests(ctx: Ctx, nodes: readonly string[]): Promise<string> {
  return until(`equal digests on ${nodes.join(', ')}`, async () => {
    const d = (await Promise.all(nodes.map((n) => request(ctx, ctlSubject(n, 'digest'), { domain: DOMAIN })))) as unknown as { digest: string; appliedSeq: number }[];
    return d.every((x) => x.appliedSeq === d[0]!.appliedSeq && x.digest === d[0]!.digest) ? d[0]!.digest : undefined;
  });
}

/** The log's messages from `fromSeq` that hold an assert: their `Sm-Level` and the asserts' `level`. */
async function assertsFrom(ctx: Ctx, fromSeq: number): Promise<{ seq: number; header: string | undefined; levels: unknown[] }[]> {
  const jsm = await ctx.nc!.jetstreamManager({ checkAPI: false });
  const last = (await jsm.streams.info(logStream(DOMAIN))).state.last_seq;
  const out: { seq: number; header: string | undefined; levels: unknown[] }[] = [];
  for (let seq = fromSeq; seq <= last; seq++) {
    const m = await jsm.streams.getMessage(logStream(DOMAIN), { seq });
    const message = decodeEntry(m.data);
    const entries = message === undefined ? [] : message.op === 'batch' ? message.entries : [message];
    const asserts = entries.filter((e) => e.op === 'assert') as unknown as Record<string, unknown>[];
    if (asserts.length > 0) out.push({ seq, header: m.header?.get(LEVEL_HEADER) || undefined, levels: asserts.map((e) => e['level']) });
  }
  return out;
}

four('a level-3 replica keeps the old rules in the log; without it level 4 ends the overlap; back at 3 it stops; upgraded it agrees', async (ctx) => {
  const now = Date.now();
  const c = await startHost(ctx, 'c', LOG_LEVEL);
  let d = await startHost(ctx, 'd', 3);
  await until('c to hear d at level 3', () => (shard(c)?.state === 'leading' && shard(c)?.replicaLevels?.['d'] === 3 ? true : undefined));
  assert.is(shard(c)?.writeLevel, 3);

  // Written at level 3: the old rules, on both replicas alike (the overlap the review found).
  assert.equal(await caseA(ctx, 'dana', now), ['EST', 'PST'], 'level-3 entries keep the rules they were written under');
  await sameDigests(ctx, ['c', 'd']);
  const old = await assertsFrom(ctx, 1);
  assert.ok(old.every((m) => m.header === '3' && m.levels.every((l) => l === undefined)), JSON.stringify(old));

  // At level 3 too, the leader refuses an alias another entity holds, before anything is appended (F1).
  assert.is((await ask(ctx, 'entity', { opId: 'e-lee', entity: { id: 'dana', name: 'Dana Lee', aliases: ['Dana'] } }))['error'], undefined);
  const tailBefore = shard(c)!.appliedSeq;
  const taken = await ask(ctx, 'entity', { opId: 'e-white3', entity: { id: 'dana-white', name: 'Dana White', aliases: ['Dana'] } });
  assert.equal(taken['error'], { code: 'BAD_REQUEST', message: 'entity.aliases[0]: "Dana" already names entity "dana"', retryable: false });
  assert.is(shard(c)!.appliedSeq, tailBefore, 'nothing appended');
  await sameDigests(ctx, ['c', 'd']);

  // d leaves: once the census stops counting it, c writes level 4 and the same sequence ends with one value.
  await stopHost(ctx, d);
  const tail = shard(c)!.appliedSeq;
  await until('c to write at level 4 without d', () => (shard(c)?.writeLevel === LOG_LEVEL ? true : undefined));
  assert.equal(await caseA(ctx, 'eli', now), ['EST'], 'level-4 entries: one value at a time');
  const fresh = await assertsFrom(ctx, tail + 1);
  assert.ok(fresh.length === 3 && fresh.every((m) => m.header === '4' && m.levels.every((l) => l === 4)), JSON.stringify(fresh));
  // dana's values, written at level 3, answer as they did.
  const dana = await ask(ctx, 'recall', { subject: 'dana', predicate: 'works_in_timezone', asOf: new Date(now + 2 * DAY).toISOString(), limit: 10 });
  assert.equal((dana['facts'] as Record<string, unknown>[]).map((f) => f['object']).sort(), ['EST', 'PST']);

  // d comes back still at level 3: it stops right before the first level-4 message instead of applying it by the old rules.
  const first = fresh[0]!.seq;
  d = await startHost(ctx, 'd', 3, false);
  const halted = await until('d to stop before the level-4 message', () => (shard(d)?.state === 'needsUpgrade' ? shard(d) : undefined));
  assert.is(halted!.appliedSeq, first - 1);
  assert.is(halted!.lastError, `needs upgrade: log at level 4 (seq ${first}), this build understands 3`);

  // Upgraded, it applies the rest and reaches the leader's digest.
  await stopHost(ctx, d);
  d = await startHost(ctx, 'd', LOG_LEVEL);
  await sameDigests(ctx, ['c', 'd']);
});

four('F1 over the wire at level 4: an alias another entity holds is refused with BAD_REQUEST naming it; a fact by id stays on the id', async (ctx) => {
  const c = ctx.hosts[0] ?? (await startHost(ctx, 'c', LOG_LEVEL));
  await until('c to lead at level 4', () => (shard(c)?.state === 'leading' && shard(c)?.writeLevel === LOG_LEVEL ? true : undefined));
  assert.is((await ask(ctx, 'entity', { opId: 'e-dana', entity: { id: 'dana-lee', name: 'Dana Lee', aliases: ['DL', 'dana@example.com'] } }))['error'], undefined);
  const refused = await ask(ctx, 'entity', { opId: 'e-white', entity: { id: 'dana-white', name: 'Dana White', aliases: ['dl'] } });
  assert.equal(refused['error'], { code: 'BAD_REQUEST', message: 'entity.aliases[0]: "dl" already names entity "dana-lee"', retryable: false });
  const fact = await ask(ctx, 'remember', { opId: 'f-dana', fact: { text: 'Dana Lee works in Pacific time', subject: 'dana-lee', predicate: 'works_in_timezone', object: 'America/Los_Angeles' } });
  const got = await ask(ctx, 'get', { factId: fact['factId'] });
  assert.is((got['fact'] as Record<string, unknown>)['subject'], 'dana-lee');
  const lookup = await ask(ctx, 'lookup', { entity: 'DL' });
  assert.is((lookup['entity'] as Record<string, unknown>)['id'], 'dana-lee');
});

four.run();
