/**
 * The log carries what apply decides with (log level 3): on in-process hosts and one real nats-server,
 * - two hosts whose configs disagree on a predicate's cardinality (`one` on a, `many` on b) answer alike: what the
 *   leader resolved is in each assert, so the follower supersedes as the leader did (after a restart too), the
 *   digests are equal, and after a hand-off the new leader gives the old one's answers; then it writes by its own
 *   config, and both apply that alike;
 * - the write pipeline (real JetStream, real LMDB) writes an assert's bytes unchanged below level 3 — the same body,
 *   the same `entryHash` — and with the resolved spec and `Sm-Level: 3` at 3;
 * - a replica at level 2 (a simulated older build) holds the leader to level-2 entries — no `cardinality`, no filled
 *   half-life, no `Sm-Level: 3` — and once it is gone the leader writes level 3; back at level 2, it stops before
 *   that message (`needsUpgrade`).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { startNatsServer, waitForJetStream, type NatsServerProcess } from '../../cli/index.ts';
import {
  bodyLevel,
  decodeEntry,
  encodeEntry,
  ensureLogStream,
  entryHash,
  entryLevel,
  Host,
  LEVEL_HEADER,
  LOG_LEVEL,
  specResolver,
  WritePipeline,
  type HostStatusReply,
} from '../../actors/index.ts';
import { resolveConfig } from '../../config/index.ts';
import { ctlSubject, decodePayload, encodePayload, logStream, logSubject, shardSubject } from '../../protocol/index.ts';
import { openShardStore, type AssertEntry, type LogMessage, type PredicateSpec } from '../../shards/index.ts';

interface Ctx {
  server?: NatsServerProcess;
  dir?: string;
  nc?: NatsConnection;
  hosts: Host[];
}

type ShardView = HostStatusReply['shards'][number];

const specs = suite<Ctx>('resolved predicate specs', { hosts: [] });

const quiet = process.env['SM_TEST_VERBOSE'] ? (line: string): void => void process.stderr.write(`${new Date().toISOString().slice(11, 23)} ${line}\n`) : (): void => undefined;

specs.before(async (ctx) => {
  ctx.server = await startNatsServer();
  ctx.dir = mkdtempSync(join(tmpdir(), 'sm-resolved-specs-'));
  ctx.nc = await connect({ servers: ctx.server.url });
  await waitForJetStream(ctx.nc);
});

/** Stops the test's hosts: a host answers UNKNOWN_DOMAIN for domains its config lacks, so none may outlive its test. */
async function stopHosts(ctx: Ctx): Promise<void> {
  const hosts = ctx.hosts.splice(0);
  for (const h of hosts) await h.drain().catch(() => undefined);
}

specs.after.each(stopHosts);

specs.after(async (ctx) => {
  await stopHosts(ctx);
  await ctx.nc?.close();
  await ctx.server?.destroy();
  if (ctx.dir) rmSync(ctx.dir, { recursive: true, force: true });
});

/** A two-node config for `domain` led by `leader`, with this host's view of the predicate `prefers_format`. */
function configFor(ctx: Ctx, nodes: readonly [string, string], domain: string, prefers: PredicateSpec) {
  return resolveConfig({
    nodes: nodes.map((name) => ({ name, nats: [ctx.server!.url] })),
    domains: [{ name: domain, description: 'mail', seeds: [], predicates: { prefers_format: prefers } }],
    placement: { [domain]: { leader: nodes[0], standbys: [nodes[1]] } },
    dataDir: ctx.dir!,
    replication: { leaseMs: 600, heartbeatMs: 150 },
  });
}

/** A started host; `ready` false returns once it has started, without waiting for its shards to lead or follow. */
async function startHost(ctx: Ctx, config: ReturnType<typeof resolveConfig>, node: string, logLevel?: number, ready = true): Promise<Host> {
  const host = new Host({ config, node, openStore: openShardStore, log: quiet, ...(logLevel !== undefined ? { logLevel } : {}) });
  ctx.hosts.push(host);
  if (ready) await host.whenReady();
  else await host.start();
  return host;
}

async function request(ctx: Ctx, subject: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const m = await ctx.nc!.request(subject, encodePayload({ v: 1, ...body }, 'msgpack'), { timeout: 5_000 });
  return decodePayload(m.data, 'msgpack') as Record<string, unknown>;
}

function shard(host: Host, domain: string): ShardView | undefined {
  return host.status().shards.find((s) => s.domain === domain);
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

/** A remember of the user's preferred format, retried with its opId while a leader changes: its reply. */
async function prefers(ctx: Ctx, domain: string, object: string): Promise<Record<string, unknown>> {
  const body = { agent: 't', opId: `${domain}-${object}`, fact: { text: `the user prefers ${object}`, subject: 'user', predicate: 'prefers_format', object } };
  return until(`remember ${object}`, async () => {
    const r = await request(ctx, shardSubject(domain, 'remember'), body);
    return (r['error'] as { retryable?: boolean } | undefined)?.retryable ? undefined : r;
  });
}

/** The leader's answer about the user, without the parts that move with the clock. */
async function answer(ctx: Ctx, domain: string): Promise<unknown> {
  // Retried while the shard answers a refusal (a leader that just took over waits for its lease).
  const facts = await until(`a recall of ${domain}`, async () => {
    const r = await request(ctx, shardSubject(domain, 'recall'), { agent: 't', subject: 'user', limit: 20 });
    return Array.isArray(r['facts']) ? (r['facts'] as Record<string, unknown>[]) : undefined;
  });
  return facts.map((f) => [f['id'], f['object'], f['validTo'] ?? null]).sort((x, y) => String(x[0]).localeCompare(String(y[0])));
}

async function digestOn(ctx: Ctx, node: string, domain: string): Promise<{ digest: string; appliedSeq: number }> {
  return (await request(ctx, ctlSubject(node, 'digest'), { domain })) as unknown as { digest: string; appliedSeq: number };
}

async function sameDigests(ctx: Ctx, nodes: readonly string[], domain: string): Promise<string> {
  return until(`equal digests of ${domain} on ${nodes.join(', ')}`, async () => {
    const d = await Promise.all(nodes.map((n) => digestOn(ctx, n, domain)));
    return d.every((x) => x.appliedSeq === d[0]!.appliedSeq && x.digest === d[0]!.digest) ? d[0]!.digest : undefined;
  });
}

/** Each message of `domain`'s log from `fromSeq`: its `Sm-Level` header and the asserts it holds. */
async function logFrom(ctx: Ctx, domain: string, fromSeq: number): Promise<{ seq: number; level: string | undefined; asserts: Record<string, unknown>[] }[]> {
  const jsm = await ctx.nc!.jetstreamManager({ checkAPI: false });
  const last = (await jsm.streams.info(logStream(domain))).state.last_seq;
  const out: { seq: number; level: string | undefined; asserts: Record<string, unknown>[] }[] = [];
  for (let seq = fromSeq; seq <= last; seq++) {
    const m = await jsm.streams.getMessage(logStream(domain), { seq });
    const message = decodeEntry(m.data);
    const entries = message === undefined ? [] : message.op === 'batch' ? message.entries : [message];
    out.push({ seq, level: m.header?.get(LEVEL_HEADER) || undefined, asserts: entries.filter((e) => e.op === 'assert') as unknown as Record<string, unknown>[] });
  }
  return out;
}

specs('hosts whose configs disagree on a cardinality converge on the leader\'s, and keep their answers across a hand-off', async (ctx) => {
  const nodes = ['a', 'b'] as const;
  const a = await startHost(ctx, configFor(ctx, nodes, 'email', { cardinality: 'one', halfLifeDays: 10 }), 'a');
  const configOfB = configFor(ctx, nodes, 'email', { cardinality: 'many', halfLifeDays: 90 });
  let b = await startHost(ctx, configOfB, 'b');
  await until('a to lead at its own level', () => (shard(a, 'email')?.state === 'leading' && shard(a, 'email')?.writeLevel === LOG_LEVEL ? true : undefined));

  assert.is((await prefers(ctx, 'email', 'link'))['status'], 'created');
  assert.is((await prefers(ctx, 'email', 'pdf'))['status'], 'superseded_previous', "a's config: one");
  await sameDigests(ctx, nodes, 'email');

  const logged = await logFrom(ctx, 'email', 1);
  const asserts = logged.filter((m) => m.asserts.length > 0);
  // Level 4 (§71) stamps an assert with a subject with the level it was written at, on top of level 3's spec.
  assert.ok(asserts.every((m) => m.level === String(LOG_LEVEL)), `asserts say level ${LOG_LEVEL}: ${JSON.stringify(asserts.map((m) => m.level))}`);
  assert.equal(asserts.flatMap((m) => m.asserts.map((e) => [e['cardinality'], (e['fact'] as Record<string, unknown>)['halfLifeDays']])), [['one', 10], ['one', 10]]);

  // b restarts, its config still saying `many`: its reopened store rebuilds the index of `one` values by the log, so
  // the leader's next value closes pdf on b as on a.
  await b.drain();
  b = await startHost(ctx, configOfB, 'b');
  await until('b to follow again', () => (shard(b, 'email')?.state === 'following' ? true : undefined));
  assert.is((await prefers(ctx, 'email', 'doc'))['status'], 'superseded_previous');
  const onA = await answer(ctx, 'email');
  assert.is((onA as unknown[]).length, 1, `one active value: ${JSON.stringify(onA)}`);
  const first = await sameDigests(ctx, nodes, 'email');

  // Hand-off: b, whose own config says `many`, answers what a answered.
  const handed = await request(ctx, ctlSubject('a', 'handoff'), { domain: 'email', to: 'b' });
  assert.type(handed['seq'], 'number', JSON.stringify(handed));
  await until('b to lead at its own level', () => (shard(b, 'email')?.state === 'leading' && shard(b, 'email')?.writeLevel === LOG_LEVEL ? true : undefined));
  assert.equal(await answer(ctx, 'email'), onA, 'the same answer from the new leader');

  // b leads by its own config now, and a applies b's entries as b did.
  assert.is((await prefers(ctx, 'email', 'zip'))['status'], 'created', "b's config: many");
  const onB = (await answer(ctx, 'email')) as unknown[][];
  assert.equal(onB.map((f) => f[1]).sort(), ['doc', 'zip']);
  const second = await sameDigests(ctx, nodes, 'email');
  assert.is.not(second, first);

  // And back: a answers what b answered.
  await request(ctx, ctlSubject('b', 'handoff'), { domain: 'email', to: 'a' });
  await until('a to lead again', () => (shard(a, 'email')?.state === 'leading' ? true : undefined));
  assert.equal(await answer(ctx, 'email'), onB, 'the same answer after handing back');
});

specs('a new leader writes the level the log holds (3 and up) from its first write, though a configured peer is down', async (ctx) => {
  // review-session10b finding 2: the census counts a peer it has not heard as level 1 for a window (3 s here), so a
  // new leader wrote unstamped asserts after every leadership change with a Mini down, and replicas whose configs
  // differ diverged at once. Nobody waits for writeLevel here, as a client would not.
  const placed = (prefers: PredicateSpec) =>
    resolveConfig({
      nodes: ['a', 'b', 'x'].map((name) => ({ name, nats: [ctx.server!.url] })),
      domains: [{ name: 'calendar', description: 'meetings', seeds: [], predicates: { prefers_format: prefers } }],
      placement: { calendar: { leader: 'a', standbys: ['b', 'x'] } },
      dataDir: ctx.dir!,
      // One nats-server: one replica of the log.
      replication: { replicas: 1, leaseMs: 600, heartbeatMs: 150 },
    });
  const a = await startHost(ctx, placed({ cardinality: 'one', halfLifeDays: 10 }), 'a');
  const b = await startHost(ctx, placed({ cardinality: 'many', halfLifeDays: 90 }), 'b');
  // x never starts. a's census settles after its window, at its own level.
  await until('a to lead at level 3 or more', () => (shard(a, 'calendar')?.state === 'leading' && (shard(a, 'calendar')?.writeLevel ?? 0) >= 3 ? true : undefined));
  assert.is((await prefers(ctx, 'calendar', 'link'))['status'], 'created');
  assert.is((await prefers(ctx, 'calendar', 'pdf'))['status'], 'superseded_previous');
  await sameDigests(ctx, ['a', 'b'], 'calendar');
  const before = (await logFrom(ctx, 'calendar', 1)).length;

  const handed = await request(ctx, ctlSubject('a', 'handoff'), { domain: 'calendar', to: 'b' });
  assert.type(handed['seq'], 'number', JSON.stringify(handed));
  // At once, retried through the hand-off as a client does: b's census has not heard x.
  assert.is((await prefers(ctx, 'calendar', 'zip'))['status'], 'created', "b's config: many");
  const after = (await logFrom(ctx, 'calendar', before + 1)).filter((m) => m.asserts.length > 0);
  // a wrote level 4 once its census settled, so the log holds 4 and b starts there (§78): stamped and level 4 at once.
  assert.equal(after.map((m) => [m.level, m.asserts[0]!['cardinality']]), [[String(LOG_LEVEL), 'many']], 'stamped by the new leader at once');
  await sameDigests(ctx, ['a', 'b'], 'calendar');
});

specs('a level-2 replica keeps the leader at level-2 entries; without it the leader writes level 3', async (ctx) => {
  const nodes = ['c', 'd'] as const;
  const config = configFor(ctx, nodes, 'files', { cardinality: 'one', halfLifeDays: 10 });
  const c = await startHost(ctx, config, 'c');
  const d = await startHost(ctx, config, 'd', 2);
  await until('c to hear d at level 2', () => (shard(c, 'files')?.replicaLevels?.['d'] === 2 ? true : undefined));
  assert.is(shard(c, 'files')?.writeLevel, 2);

  const linked = await prefers(ctx, 'files', 'link');
  assert.is(linked['status'], 'created', JSON.stringify(linked));
  const pdf = await prefers(ctx, 'files', 'pdf');
  assert.is(pdf['status'], 'superseded_previous', JSON.stringify(pdf));
  await sameDigests(ctx, nodes, 'files');
  const old = (await logFrom(ctx, 'files', 1)).filter((m) => m.asserts.length > 0);
  assert.is(old.length, 2);
  for (const m of old) {
    assert.is(m.level, undefined, 'a plain level-1 message');
    for (const e of m.asserts) {
      assert.is(e['cardinality'], undefined, 'no resolved cardinality below level 3');
      assert.is((e['fact'] as Record<string, unknown>)['halfLifeDays'], undefined, 'the half-life left as the request gave it');
    }
  }
  assert.is(shard(d, 'files')?.state, 'following', 'the level-2 replica follows');

  // d leaves; once the census stops counting it, c writes level 3.
  await d.drain();
  const tail = shard(c, 'files')!.appliedSeq;
  await until('c to write at its own level without d', () => (shard(c, 'files')?.writeLevel === LOG_LEVEL ? true : undefined));
  assert.is((await prefers(ctx, 'files', 'zip'))['status'], 'superseded_previous');
  const fresh = (await logFrom(ctx, 'files', tail + 1)).filter((m) => m.asserts.length > 0);
  assert.is(fresh.length, 1);
  assert.is(fresh[0]!.level, String(LOG_LEVEL));
  assert.is(fresh[0]!.asserts[0]!['cardinality'], 'one');

  // d comes back still at level 2: it stops right before that message rather than apply it by its own config.
  const zipSeq = fresh[0]!.seq;
  const back = await startHost(ctx, config, 'd', 2, false);
  const halted = await until('d to stop before the level-3 message', () => (shard(back, 'files')?.state === 'needsUpgrade' ? shard(back, 'files') : undefined));
  assert.is(halted!.appliedSeq, zipSeq - 1);
  assert.is(halted!.lastError, `needs upgrade: log at level ${LOG_LEVEL} (seq ${zipSeq}), this build understands 2`);
});

specs('the pipeline writes an assert as submitted below level 3, and with the resolved spec at 3', async (ctx) => {
  const domain = 'notes';
  await ensureLogStream(await ctx.nc!.jetstreamManager({ checkAPI: false }), domain, 1);
  const store = openShardStore({ path: join(ctx.dir!, 'pipeline-notes'), domain, durability: 'none' });
  const resolveSpecs = specResolver({ predicates: { prefers_format: { cardinality: 'one', halfLifeDays: 10 } } });
  const p = new WritePipeline({ nc: ctx.nc!, subject: logSubject(domain), store, lastSeq: 0, logLevel: 2, resolveSpecs, onApplied: () => undefined });
  const write = (opId: string, object: string): AssertEntry => ({
    v: 1, op: 'assert', opId, recordedAt: 1_764_000_000_000, source: { agent: 't' },
    fact: { text: `the user prefers ${object}`, subject: 'user', predicate: 'prefers_format', object },
  });
  try {
    const two = write('at-2', 'link');
    assert.is((await p.submit(two)).status, 'created');
    p.useLogLevel(3);
    assert.is((await p.submit(write('at-3', 'pdf'))).status, 'superseded_previous');
    const jsm = await ctx.nc!.jetstreamManager({ checkAPI: false });
    const first = await jsm.streams.getMessage(logStream(domain), { seq: 1 });
    const second = await jsm.streams.getMessage(logStream(domain), { seq: 2 });
    assert.ok(Buffer.from(first.data).equals(Buffer.from(encodeEntry(two))), 'below level 3: the bytes of the entry as submitted');
    assert.is(entryHash(first.data), entryHash(encodeEntry(two)));
    assert.is(first.header?.get(LEVEL_HEADER) || undefined, undefined);
    assert.is(second.header?.get(LEVEL_HEADER), '3');
    const stamped = decodeEntry(second.data) as AssertEntry;
    assert.is(stamped.cardinality, 'one');
    assert.is(stamped.fact.halfLifeDays, 10);
  } finally {
    p.close();
    await p.settled();
    await store.close();
  }
});

specs('levels - an assert with a resolved cardinality needs level 3, alone or in a group; one with only a half-life needs 1', () => {
  const plain: AssertEntry = { v: 1, op: 'assert', opId: 'p', recordedAt: 1, source: { agent: 't' }, fact: { text: 'x', halfLifeDays: 30 } };
  const resolved: AssertEntry = { ...plain, opId: 'r', fact: { text: 'x', subject: 's', predicate: 'p', halfLifeDays: 30 }, cardinality: 'many' };
  assert.is(entryLevel(plain), 1, 'an old build reads the half-life as this one does');
  assert.is(entryLevel(resolved), 3);
  assert.is(bodyLevel(resolved), 3);
  assert.is(bodyLevel({ v: 1, op: 'batch', opId: 'g', recordedAt: 1, entries: [plain, resolved] } as LogMessage), 3);
  assert.is(bodyLevel({ v: 1, op: 'batch', opId: 'g', recordedAt: 1, entries: [plain, plain] } as LogMessage), 2);
});

specs.run();
