/**
 * `shardmind mcp` started as the README tells an MCP client to start it — `node /abs/path/cli/bin.mjs mcp --servers …
 * --agent …` from a directory that is not the checkout (walkthrough session 12, F12) — speaking raw JSON-RPC lines:
 * a session that negotiated 2025-03-26 gets batches answered (F13: that revision requires them; an empty batch is
 * one invalid request, notifications get nothing, initialize may not be batched), a 2025-06-18 session has them
 * refused; a null id is answered with an error; the tool schemas agree with what the tools accept (F14: confidence 0
 * is refused and the schema says so; world time, entity links and retract can be written, and recall shows a fact's
 * status). Real nats-server and host.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { oneMiniConfig } from '../client/one-mini.ts';

const BIN = join(import.meta.dirname, '..', '..', 'cli', 'bin.mjs');

interface Ctx {
  nats?: NatsServerProcess;
  hosts?: HostCluster;
  /** Every MCP server started: after() ends them, also when a test failed before closing its own. */
  sessions: Session[];
}

type Reply = Record<string, any> | Record<string, any>[];

/** One MCP server process on stdio, its replies queued as they come. */
class Session {
  private readonly replies: Reply[] = [];
  private readonly exited: Promise<number | null>;
  private readonly errors: string[] = [];

  constructor(private readonly child: ChildProcess) {
    createInterface({ input: child.stdout! }).on('line', (l) => this.replies.push(JSON.parse(l)));
    child.stderr!.on('data', (d: Buffer) => this.errors.push(d.toString()));
    this.exited = new Promise((r) => child.once('exit', r));
  }

  send(message: unknown): void {
    this.child.stdin!.write(`${typeof message === 'string' ? message : JSON.stringify(message)}\n`);
  }

  /** The next reply (in arrival order), within a deadline. */
  async next(timeoutMs = 10_000): Promise<Reply> {
    const deadline = Date.now() + timeoutMs;
    while (this.replies.length === 0) {
      if (Date.now() > deadline) throw new Error(`no reply within ${timeoutMs} ms; stderr: ${this.errors.join('')}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.replies.shift()!;
  }

  async request(message: unknown): Promise<Reply> {
    this.send(message);
    return this.next();
  }

  /** Ends input and waits for the exit code, checking nothing was left unread. */
  async close(): Promise<{ code: number | null; unread: Reply[] }> {
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
    const code = await this.exited;
    clearTimeout(timer);
    return { code, unread: this.replies.splice(0) };
  }

  /** Ends it whatever state it is in: end of input, SIGKILL after 3 s. Harmless once it has exited. */
  async end(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3_000);
    await this.exited;
    clearTimeout(timer);
  }
}

function start(ctx: Ctx, agent: string): Session {
  // As an MCP host does: `node` with the checkout's absolute path, from the host's own working directory.
  const child = spawn(process.execPath, [BIN, 'mcp', '--servers', ctx.nats!.url, '--agent', agent], { cwd: tmpdir(), stdio: ['pipe', 'pipe', 'pipe'] });
  const session = new Session(child);
  ctx.sessions.push(session);
  return session;
}

const initialize = (id: number, protocolVersion: string) => ({
  jsonrpc: '2.0',
  id,
  method: 'initialize',
  params: { protocolVersion, capabilities: {}, clientInfo: { name: 'raw-test', version: '0' } },
});

const t = suite<Ctx>('mcp batches and schemas', { sessions: [] });

t.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  ctx.hosts = await startHosts({ config: oneMiniConfig(ctx.nats.url) });
});

t.after(async (ctx) => {
  await Promise.allSettled(ctx.sessions.map((s) => s.end()));
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

t('a 2025-03-26 session gets batches answered: one response per request, none for notifications', async (ctx) => {
  const s = start(ctx, 'batching-desktop');
  const init = (await s.request(initialize(1, '2025-03-26'))) as Record<string, any>;
  assert.is(init['result']?.protocolVersion, '2025-03-26', JSON.stringify(init));
  s.send({ jsonrpc: '2.0', method: 'notifications/initialized' });

  const batch = await s.request([
    { jsonrpc: '2.0', id: 2, method: 'ping' },
    { jsonrpc: '2.0', method: 'notifications/progress', params: {} },
    { jsonrpc: '2.0', id: 'three', method: 'tools/list' },
    { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'remember', arguments: { text: 'batched fact about the offsite', domain: 'files' } } },
    { jsonrpc: '2.0', id: 5, method: 'no/such' },
    7,
    initialize(6, '2025-03-26'),
  ]);
  assert.ok(Array.isArray(batch), JSON.stringify(batch));
  const byId = new Map((batch as Record<string, any>[]).map((r) => [String(r['id']), r]));
  assert.is(batch.length, 6, 'five requests and one invalid element; the notification gets nothing');
  assert.equal(byId.get('2')?.['result'], {});
  assert.ok(byId.get('three')?.['result']?.tools?.length > 0);
  assert.match(byId.get('4')?.['result']?.content?.[0]?.text, /^Remembered in files/);
  assert.is(byId.get('5')?.['error']?.code, -32601);
  assert.is(byId.get('6')?.['error']?.code, -32600, 'initialize may not be batched');
  assert.is(byId.get('null')?.['error']?.code, -32600, 'a non-object element');

  const empty = (await s.request([])) as Record<string, any>;
  assert.is(empty['error']?.code, -32600, JSON.stringify(empty));
  // A batch of notifications only gets no reply at all: the next reply is the ping's.
  s.send([{ jsonrpc: '2.0', method: 'notifications/progress', params: {} }]);
  const ping = (await s.request({ jsonrpc: '2.0', id: 8, method: 'ping' })) as Record<string, any>;
  assert.is(ping['id'], 8);
  const { code, unread } = await s.close();
  assert.is(code, 0);
  assert.equal(unread, []);
});

t('a 2025-06-18 session has batches refused; a null id is answered with an error', async (ctx) => {
  const s = start(ctx, 'plain-desktop');
  const init = (await s.request(initialize(1, '2025-06-18'))) as Record<string, any>;
  assert.is(init['result']?.protocolVersion, '2025-06-18');
  const refused = (await s.request([{ jsonrpc: '2.0', id: 2, method: 'ping' }])) as Record<string, any>;
  assert.is(refused['error']?.code, -32600);
  assert.match(refused['error']?.message, '2025-03-26');
  const nullId = (await s.request({ jsonrpc: '2.0', id: null, method: 'ping' })) as Record<string, any>;
  assert.equal([nullId['id'], nullId['error']?.code], [null, -32600]);
  const { code, unread } = await s.close();
  assert.is(code, 0);
  assert.equal(unread, []);
});

t('the tool schemas agree with the tools: confidence 0 is outside the schema and refused, limit 500 inside and accepted', async (ctx) => {
  const s = start(ctx, 'schema-reader');
  await s.request(initialize(1, '2025-06-18'));
  const list = (await s.request({ jsonrpc: '2.0', id: 2, method: 'tools/list' })) as Record<string, any>;
  const schema = (name: string) => list['result'].tools.find((x: { name: string }) => x.name === name).inputSchema.properties;
  const confidence = schema('remember').confidence;
  assert.equal([confidence.exclusiveMinimum, confidence.minimum, confidence.maximum], [0, undefined, 1]);
  const zero = (await s.request({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'remember', arguments: { text: 'unsure', confidence: 0, domain: 'files' } } })) as Record<string, any>;
  assert.is(zero['result']?.isError, true);
  assert.match(zero['result']?.content?.[0]?.text, 'fact.confidence');
  const one = (await s.request({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'remember', arguments: { text: 'certain', confidence: 1, domain: 'files' } } })) as Record<string, any>;
  assert.not.ok(one['result']?.isError, JSON.stringify(one));
  assert.is(schema('recall').limit.maximum, 1000);
  const many = (await s.request({ jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'recall', arguments: { query: 'certain', domain: 'files', limit: 500 } } })) as Record<string, any>;
  assert.not.ok(many['result']?.isError, JSON.stringify(many));
  const { code } = await s.close();
  assert.is(code, 0);
});

t('a model can write world time and links, retract, and see a fact’s status in recall', async (ctx) => {
  const s = start(ctx, 'full-tools');
  await s.request(initialize(1, '2025-06-18'));
  const call = async (id: number, name: string, args: object): Promise<string> => {
    const r = (await s.request({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } })) as Record<string, any>;
    assert.not.ok(r['result']?.isError, JSON.stringify(r));
    return r['result'].content[0].text as string;
  };
  const stored = await call(2, 'remember', {
    text: 'Dana reports to Priya since October',
    subject: 'dana',
    predicate: 'reports_to',
    object: { entity: 'priya' },
    validFrom: '2026-10-01T00:00:00Z',
    domain: 'files',
  });
  const factId = /id (\S+)\)/.exec(stored)![1]!;
  await new Promise((r) => setTimeout(r, 20));
  const believed = new Date().toISOString();
  await new Promise((r) => setTimeout(r, 20));
  const retracted = await call(3, 'retract', { factId });
  assert.match(retracted, `Retracted ${factId}`);
  const found = JSON.parse(await call(4, 'recall', { subject: 'dana', domain: 'files', asOf: believed })) as { facts: Record<string, unknown>[] };
  const fact = found.facts.find((f) => f['id'] === factId);
  assert.ok(fact, JSON.stringify(found));
  assert.equal([fact!['status'], fact!['object'], fact!['validFrom']], ['retracted', { entity: 'priya' }, '2026-10-01T00:00:00.000Z']);
  const begun = JSON.parse(await call(5, 'task_begin', { text: 'sort the offsite files', domain: 'files' })) as { task: string };
  assert.match(await call(6, 'task_end', { task: begun.task }), `ended in files; it visited files`);
  const { code } = await s.close();
  assert.is(code, 0);
});

t.run();
