/**
 * `shardmind mcp` against the official MCP client (`@modelcontextprotocol/sdk`, installed with the reference memory
 * server the bench compares against): it spawns the command as a real child process on stdio, as an MCP host does,
 * lists the tools and calls them against a real nats-server and host. Two agents on two MCP servers share what they
 * learn; a change of mind supersedes and stays in history; bad arguments are tool errors, not crashes; and raw
 * protocol garbage gets JSON-RPC errors while the server keeps serving.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import shipped from '../../cluster.config.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';

const ROOT = join(import.meta.dirname, '..', '..');
const MAIN = join(ROOT, 'cli', 'main.ts');

interface Ctx {
  nats?: NatsServerProcess;
  hosts?: HostCluster;
  /** Every MCP server process a test started, through the SDK's transport or by hand: after() ends them all. */
  transports: StdioClientTransport[];
  children: ChildProcess[];
}

const t = suite<Ctx>('mcp', { transports: [], children: [] });

function config(url: string): ClusterConfigInput {
  return {
    ...shipped,
    cluster: { name: 'mcp-test' },
    nodes: [{ name: 'mini-1', nats: [url] }],
    placement: Object.fromEntries(shipped.domains.map((d) => [d.name, { leader: 'mini-1', standbys: [] }])),
    replication: { replicas: 1, leaseMs: 1500, heartbeatMs: 250 },
  };
}

async function mcpClient(ctx: Ctx, agent: string): Promise<Client> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: ['--import', 'tsx', MAIN, 'mcp', '--servers', ctx.nats!.url, '--agent', agent],
    cwd: ROOT,
    stderr: 'pipe',
  });
  // Kept before connecting: a connect that fails has already spawned the process.
  ctx.transports.push(transport);
  const client = new Client({ name: `test-${agent}`, version: '1.0.0' });
  await client.connect(transport);
  return client;
}

type CallResult = { content: { type: string; text: string }[]; isError?: boolean };
const textOf = (r: unknown): string => (r as CallResult).content.map((c) => c.text).join('');

t.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  ctx.hosts = await startHosts({ config: config(ctx.nats.url) });
});

/** Ends input, then SIGKILL after a grace: a child that is mid-test when an assertion fails is ended too. */
async function endChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin?.end();
  const timer = setTimeout(() => child.kill('SIGKILL'), 3_000);
  await exited;
  clearTimeout(timer);
}

// Unconditional: uvu runs after() when a test fails too, so no MCP server outlives the file.
t.after(async (ctx) => {
  // The SDK's close ends input, then SIGTERM, then SIGKILL.
  await Promise.allSettled(ctx.transports.map((tr) => tr.close()));
  await Promise.allSettled(ctx.children.map(endChild));
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

t('an MCP client lists the tools; two agents share what one learns; history keeps the old value', async (ctx) => {
  const a = await mcpClient(ctx, 'desktop-agent');
  const b = await mcpClient(ctx, 'ide-agent');
  const tools = (await a.listTools()).tools.map((x) => x.name).sort();
  assert.equal(tools, ['entity', 'forget', 'history', 'lookup', 'recall', 'remember', 'retract', 'task_begin', 'task_end', 'task_observe']);

  const stored = await a.callTool({
    name: 'remember',
    arguments: { text: 'The user prefers PDF attachments over links', subject: 'user', predicate: 'prefers_attachment_format', object: 'pdf', domain: 'email' },
  });
  assert.not.ok((stored as CallResult).isError, textOf(stored));
  assert.match(textOf(stored), /^Remembered in email \(created, id email:\S+\)\.$/);

  const found = JSON.parse(textOf(await b.callTool({ name: 'recall', arguments: { query: 'attachment or link?', domain: 'email' } }))) as {
    facts: { text: string; learnedBy: string }[];
  };
  assert.equal([found.facts[0]?.text, found.facts[0]?.learnedBy], ['The user prefers PDF attachments over links', 'desktop-agent']);

  const changed = await b.callTool({
    name: 'remember',
    arguments: { text: 'The user now prefers links to shared files', subject: 'user', predicate: 'prefers_attachment_format', object: 'link', domain: 'email' },
  });
  assert.match(textOf(changed), /superseded_previous.*it supersedes email:/);
  const described = await a.callTool({ name: 'entity', arguments: { id: 'user', name: 'The user', type: 'person', aliases: ['me', 'the boss'] } });
  assert.match(textOf(described), /^user \(The user\) is known in calendar, email, files as user, me, the boss\.$/);
  const views = JSON.parse(textOf(await b.callTool({ name: 'lookup', arguments: { name: 'the boss' } }))) as { domain: string; id: string }[];
  assert.equal(views.map((v) => [v.domain, v.id]).sort(), [['calendar', 'user'], ['email', 'user'], ['files', 'user']]);
  const history = JSON.parse(textOf(await a.callTool({ name: 'history', arguments: { subject: 'user', predicate: 'prefers_attachment_format', domain: 'email' } }))) as {
    text: string;
    status: string;
  }[];
  assert.equal(
    history.map((h) => [h.text, h.status]),
    [
      ['The user prefers PDF attachments over links', 'superseded'],
      ['The user now prefers links to shared files', 'active'],
    ],
  );
  // A page at a time: the newest first, with `next` to read the older one.
  const newest = JSON.parse(textOf(await a.callTool({ name: 'history', arguments: { subject: 'user', predicate: 'prefers_attachment_format', domain: 'email', limit: 1 } }))) as {
    facts: { text: string }[];
    next: number;
  };
  assert.equal(newest.facts.map((f) => f.text), ['The user now prefers links to shared files']);
  const older = JSON.parse(
    textOf(await a.callTool({ name: 'history', arguments: { subject: 'user', predicate: 'prefers_attachment_format', domain: 'email', limit: 1, before: newest.next } })),
  ) as { text: string }[];
  assert.equal(older.map((f) => f.text), ['The user prefers PDF attachments over links'], 'the last page has no next');
});

t('a task through MCP: it starts in email and re-routes to calendar, bringing the 10am rule along', async (ctx) => {
  const a = await mcpClient(ctx, 'task-agent');
  const rule = await a.callTool({
    name: 'remember',
    arguments: { text: 'The user never takes meetings before 10am', subject: 'user', predicate: 'earliest_meeting_time', object: '10:00', domain: 'calendar' },
  });
  assert.not.ok((rule as CallResult).isError, textOf(rule));
  const begun = JSON.parse(textOf(await a.callTool({ name: 'task_begin', arguments: { text: "Reply to Dana's email about the Q3 report" } }))) as { task: string; domain: string };
  assert.is(begun.domain, 'email');
  const observe = async (text: string) =>
    JSON.parse(textOf(await a.callTool({ name: 'task_observe', arguments: { task: begun.task, text } }))) as {
      domain: string;
      rerouted: { from: string; to: string } | null;
      context: { text: string }[];
    };
  const first = await observe('Dana would rather meet in person next week to go over it');
  assert.is(first.rerouted, null);
  const second = await observe('Find a 30 minute slot on Tuesday or Wednesday and send her an invite');
  assert.equal(second.rerouted, { from: 'email', to: 'calendar' });
  assert.ok(second.context.some((f) => f.text === 'The user never takes meetings before 10am'), JSON.stringify(second.context));
  const booked = await a.callTool({ name: 'remember', arguments: { text: 'Meeting with Dana booked for Tuesday 11am', task: begun.task } });
  assert.match(textOf(booked), /^Remembered in calendar/, 'a fact remembered in the task goes to its current domain');
  assert.match(textOf(await a.callTool({ name: 'task_end', arguments: { task: begun.task } })), /ended/);
});

t('bad arguments are tool errors with the shardmind code; the server keeps serving', async (ctx) => {
  const a = await mcpClient(ctx, 'careless-agent');
  const missing = (await a.callTool({ name: 'remember', arguments: {} })) as CallResult;
  assert.is(missing.isError, true);
  assert.match(textOf(missing), /^BAD_REQUEST: text: required/);
  const badTime = (await a.callTool({ name: 'recall', arguments: { query: 'x', asOf: 'yesterday' } })) as CallResult;
  assert.is(badTime.isError, true);
  assert.match(textOf(badTime), /^BAD_REQUEST: asOf/);
  const noDomain = (await a.callTool({ name: 'recall', arguments: { query: 'x', domain: 'nowhere' } })) as CallResult;
  assert.is(noDomain.isError, true);
  assert.match(textOf(noDomain), /^UNKNOWN_DOMAIN/);
  assert.not.ok(((await a.callTool({ name: 'recall', arguments: { query: 'anything' } })) as CallResult).isError);
});

t('raw protocol garbage gets JSON-RPC errors, notifications get no answer, and end of input ends the process', async (ctx) => {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'mcp', '--servers', ctx.nats!.url], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  ctx.children.push(child);
  const replies: Record<string, any>[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => replies.push(JSON.parse(l)));
  const exited = new Promise<number | null>((r) => child.once('exit', r));
  child.stdin!.write('this is not json\n');
  child.stdin!.write('[1,2]\n');
  child.stdin!.write(`${JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'no/such' })}\n`);
  child.stdin!.write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
  child.stdin!.write(`${JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'nope' } })}\n`);
  child.stdin!.write(`${JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'ping' })}\n`);
  child.stdin!.end();
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  try {
    assert.is(await exited, 0, 'the server exits cleanly once its input ends');
  } finally {
    clearTimeout(timer);
  }
  // Requests are answered concurrently, so replies may come in any order: JSON-RPC matches them by id.
  const byId = [...replies].sort((x, y) => (x['id'] ?? -1) - (y['id'] ?? -1));
  assert.equal(
    byId.map((r) => [r['id'], r['error']?.code ?? 'ok']),
    [
      [null, -32700],
      [null, -32600],
      [1, -32601],
      [2, -32602],
      [3, 'ok'],
    ],
  );
});

t.run();
