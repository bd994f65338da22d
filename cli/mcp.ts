/**
 * `shardmind mcp`: the memory as a Model Context Protocol server on stdio, so any MCP-capable agent (desktop
 * assistants, IDE agents) gets the cluster's shared memory with one line of its config — where the MCP reference
 * memory server keeps one JSON file per machine (and loses writes when two processes share it: `npm run bench`).
 *
 * JSON-RPC 2.0, one message per line (the MCP stdio transport): `initialize`, `ping`, `tools/list`, `tools/call`. A line
 * may be a batch (an array of messages) in a session that negotiated 2025-03-26, the one revision that has them.
 * Tools: `remember`, `recall`, `history`, `entity`, `lookup`, `retract`, `forget`, `task_begin`, `task_observe`, `task_end`, each a
 * call through the router with the TypeScript client, so
 * retries, idempotent writes and read-your-writes come with it. A failed call is a tool result with `isError` and
 * the shardmind error code, not a protocol error. Logs go to stderr; stdout carries protocol messages only.
 */
import { createInterface } from 'node:readline';
import { connect, type RecalledFact, type ShardmindClient } from '../client/index.ts';
import { agentServers, withAgentServersHint } from './cluster-connect.ts';
import { ErrorCode, ShardmindError } from '../protocol/index.ts';
import { orConfigError, parseCommandFlags } from './args.ts';
import type { Command } from './command.ts';
import { natsConnectOptionsFromEnv } from './nats-tls.ts';
import { stdio, type Io } from './status.ts';

const USAGE = `usage: shardmind mcp [--config FILE] [--servers URL,…] [--agent NAME] [--node NAME]

Serves the memory to an MCP client on stdin/stdout (tools: remember, recall, history, entity, lookup, retract, forget,
task_begin, task_observe, task_end). An MCP client starts it from its own directory, so give the checkout's path
and --servers (without it the NATS URLs come from ./cluster.config.ts). Example entry for an MCP client's config:
  { "command": "node", "args": ["/path/to/shardmind/cli/bin.mjs", "mcp", "--servers", "nats://mini-1:4222", "--agent", "desktop"] }`;

/**
 * Protocol versions this server speaks (the tool messages it uses are the same in all of them), newest first. They
 * differ in one thing this server handles: 2025-03-26 requires a server to accept JSON-RPC batches, which 2025-06-18
 * removed and 2024-11-05 did not have — batches are accepted in a session that negotiated 2025-03-26, refused in the
 * others. (Kept rather than answered with another version: clients built on 2025-03-26 SDKs are common, and one that
 * is offered a version it does not speak disconnects.)
 */
export const MCP_PROTOCOL_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'] as const;
/** The one revision with JSON-RPC batches. */
const BATCHING_VERSION = '2025-03-26';

const str = { type: 'string' } as const;

/** The tools, as `tools/list` describes them (JSON Schema inputs). */
export const MCP_TOOLS = [
  {
    name: 'remember',
    description:
      'Store a fact in the shared memory. Without domain the router files it under the best-matching domain. A new value of a ' +
      'one-valued (subject, predicate) supersedes the old one; the old one stays in history.',
    inputSchema: {
      type: 'object',
      properties: {
        text: { type: 'string', description: 'The fact, in a sentence.' },
        subject: { ...str, description: 'What it is about, e.g. "user".' },
        predicate: { ...str, description: 'The relation, e.g. "prefers_attachment_format".' },
        object: {
          description: 'The value, e.g. "pdf"; or another entity, as {"entity": "bob-smith"} (a link recall can follow).',
          anyOf: [{ type: 'string' }, { type: 'object', properties: { entity: str }, required: ['entity'], additionalProperties: false }],
        },
        // Exclusive: a confidence of 0 is refused (a fact nobody believes is not worth storing).
        confidence: { type: 'number', exclusiveMinimum: 0, maximum: 1, description: 'How sure, in (0, 1]; default 0.8.' },
        validFrom: { ...str, description: 'ISO 8601 with a zone: when it became (or becomes) true in the world. Default: now.' },
        validTo: { ...str, description: 'ISO 8601 with a zone: when it stopped being true, if known.' },
        domain: { ...str, description: 'calendar, email, files, … (optional).' },
        task: { ...str, description: 'A task id from task_begin: the fact goes to the task’s current domain.' },
      },
      required: ['text'],
    },
  },
  {
    name: 'recall',
    description: 'Ask the shared memory what is known, best first (relevance × confidence after decay × recency).',
    inputSchema: {
      type: 'object',
      properties: {
        query: { ...str, description: 'What you want to know, in words.' },
        subject: str,
        predicate: str,
        domain: str,
        asOf: { ...str, description: 'ISO 8601 with a zone: what we now know held at that time (world time), among the facts recorded by then; not what was believed then.' },
        limit: { type: 'integer', minimum: 1, maximum: 1000, description: 'How many facts, at most (default 10; a shard gives at most 100).' },
        task: { ...str, description: 'A task id: recall from every domain the task has been in, its current one first.' },
      },
    },
  },
  {
    name: 'history',
    description:
      'What was recorded about (subject, predicate) in one domain, oldest first, with what superseded what: the `limit` ' +
      '(default 100) recorded most recently; when older ones remain the answer has `next`, to pass as `before`.',
    inputSchema: {
      type: 'object',
      properties: {
        subject: str,
        predicate: str,
        domain: str,
        limit: { type: 'integer', minimum: 1, maximum: 1000 },
        before: { type: 'integer', minimum: 1, description: 'The `next` of the previous answer: older facts.' },
      },
      required: ['subject', 'domain'],
    },
  },
  {
    name: 'entity',
    description:
      'Describe a person, place or thing once for every domain: a stable id (used as subject in facts), its display name, type, ' +
      'the other names it goes by (aliases: "Bob", "bob@example.com") and attributes. Aliases and attributes merge with what is known.',
    inputSchema: {
      type: 'object',
      properties: {
        id: { ...str, description: 'Stable id, e.g. "bob-smith".' },
        name: str,
        type: { ...str, description: 'person, project, place, …' },
        aliases: { type: 'array', items: { type: 'string' } },
        attributes: { type: 'object', additionalProperties: { type: ['string', 'number', 'boolean'] } },
      },
      required: ['id'],
    },
  },
  {
    name: 'lookup',
    description: 'Find an entity by its id or any alias: what each domain knows of it.',
    inputSchema: { type: 'object', properties: { name: { ...str, description: 'The id or an alias.' } }, required: ['name'] },
  },
  {
    name: 'task_begin',
    description:
      'Start a task (e.g. "reply to Dana about the Q3 report"): the memory picks its domain and returns what that domain knows ' +
      'that bears on it. Pass the task id to remember/recall, and tell task_observe what you learn along the way.',
    inputSchema: { type: 'object', properties: { text: str, domain: str }, required: ['text'] },
  },
  {
    name: 'task_observe',
    description:
      'Tell a task what you just saw. When the evidence says the work moved to another domain (an email turned into a meeting ' +
      'request), the task re-routes and returns what the new domain knows (e.g. "no meetings before 10am").',
    inputSchema: { type: 'object', properties: { task: str, text: str }, required: ['task', 'text'] },
  },
  {
    name: 'task_end',
    description: 'End a task.',
    inputSchema: { type: 'object', properties: { task: str }, required: ['task'] },
  },
  {
    name: 'retract',
    description:
      'Mark a fact (by id) as no longer true, from validTo (default now): it stays in history and in recalls asOf earlier times. ' +
      'Use forget instead only when the user wants it deleted.',
    inputSchema: {
      type: 'object',
      properties: { factId: str, validTo: { ...str, description: 'ISO 8601 with a zone; default now.' } },
      required: ['factId'],
    },
  },
  {
    name: 'forget',
    description: 'Remove a fact (by id, from recall) at the user’s request: its text is deleted, a tombstone stays.',
    inputSchema: { type: 'object', properties: { factId: str }, required: ['factId'] },
  },
] as const;

type JsonRpcId = string | number | null;
interface JsonRpcMessage {
  readonly jsonrpc?: unknown;
  readonly id?: JsonRpcId;
  readonly method?: unknown;
  readonly params?: unknown;
}

/** A JSON-RPC error the protocol defines (not a tool failure). */
class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const PARSE_ERROR = -32700;
const INVALID_REQUEST = -32600;
const METHOD_NOT_FOUND = -32601;
const INVALID_PARAMS = -32602;

type ToolResult = { content: { type: 'text'; text: string }[]; isError?: boolean };

/** Answers MCP messages with `memory`; `send` writes one message. Exported for tests that skip stdio. */
export class McpServer {
  /** The protocol version `initialize` agreed on; undefined before it. */
  private version: string | undefined;

  constructor(
    private readonly memory: ShardmindClient,
    private readonly send: (message: object) => void,
  ) {}

  /** Handles one line of input: a message, or a batch of them (MCP 2025-03-26); never throws. */
  async line(text: string): Promise<void> {
    if (text.trim() === '') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      this.send({ jsonrpc: '2.0', id: null, error: { code: PARSE_ERROR, message: 'not JSON' } });
      return;
    }
    if (!Array.isArray(parsed)) {
      const reply = await this.handle(parsed, false);
      if (reply !== undefined) this.send(reply);
      return;
    }
    if (this.version !== BATCHING_VERSION) {
      const why = `a message is a JSON object: batches are part of MCP ${BATCHING_VERSION} only, and this session ${this.version === undefined ? 'is not initialized' : `speaks ${this.version}`}`;
      this.send({ jsonrpc: '2.0', id: null, error: { code: INVALID_REQUEST, message: why } });
      return;
    }
    // JSON-RPC 2.0 batches: an empty one is one invalid request; else one response per request, in any order (matched
    // by id), none for notifications, and nothing at all when every message was one.
    if (parsed.length === 0) {
      this.send({ jsonrpc: '2.0', id: null, error: { code: INVALID_REQUEST, message: 'an empty batch' } });
      return;
    }
    const replies = (await Promise.all(parsed.map((m) => this.handle(m, true)))).filter((r) => r !== undefined);
    if (replies.length > 0) this.send(replies);
  }

  /** One message's response, or undefined for a notification (which gets none, not even an error). */
  private async handle(raw: unknown, inBatch: boolean): Promise<object | undefined> {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      return { jsonrpc: '2.0', id: null, error: { code: INVALID_REQUEST, message: 'a message is a JSON object' } };
    }
    const msg = raw as JsonRpcMessage;
    // MCP forbids a null id; JSON-RPC would read it as a request to answer, so it is answered, with an error.
    if ('id' in msg && msg.id === null) {
      return { jsonrpc: '2.0', id: null, error: { code: INVALID_REQUEST, message: 'id: a string or a number (MCP forbids null)' } };
    }
    const isRequest = msg.id !== undefined;
    try {
      if (msg.jsonrpc !== '2.0' || typeof msg.method !== 'string') throw new RpcError(INVALID_REQUEST, 'expected {"jsonrpc":"2.0","method":…}');
      if (inBatch && msg.method === 'initialize') throw new RpcError(INVALID_REQUEST, 'initialize must not be part of a batch');
      const result = await this.dispatch(msg.method, msg.params);
      return isRequest ? { jsonrpc: '2.0', id: msg.id, result } : undefined;
    } catch (err) {
      if (!isRequest) return undefined;
      const e = err instanceof RpcError ? err : new RpcError(-32603, (err as Error)?.message ?? String(err));
      return { jsonrpc: '2.0', id: msg.id, error: { code: e.code, message: e.message } };
    }
  }

  private async dispatch(method: string, params: unknown): Promise<object> {
    switch (method) {
      case 'initialize': {
        const asked = isObject(params) ? params['protocolVersion'] : undefined;
        const protocolVersion = MCP_PROTOCOL_VERSIONS.find((v) => v === asked) ?? MCP_PROTOCOL_VERSIONS[0];
        this.version = protocolVersion;
        return {
          protocolVersion,
          capabilities: { tools: { listChanged: false } },
          serverInfo: { name: 'shardmind', version: '0.1.0' },
          instructions: 'Shared memory for the agents of this cluster: recall before acting, remember what you learn.',
        };
      }
      case 'ping':
        return {};
      case 'tools/list':
        return { tools: MCP_TOOLS };
      case 'tools/call': {
        if (!isObject(params) || typeof params['name'] !== 'string') throw new RpcError(INVALID_PARAMS, 'tools/call needs {"name", "arguments"}');
        const args = params['arguments'] ?? {};
        if (!isObject(args)) throw new RpcError(INVALID_PARAMS, 'arguments: an object');
        return this.call(params['name'], args);
      }
      default:
        if (method.startsWith('notifications/')) return {};
        throw new RpcError(METHOD_NOT_FOUND, `no method ${method}`);
    }
  }

  private async call(name: string, a: Record<string, unknown>): Promise<ToolResult> {
    if (!MCP_TOOLS.some((t) => t.name === name)) throw new RpcError(INVALID_PARAMS, `no tool ${name}; tools: ${MCP_TOOLS.map((t) => t.name).join(', ')}`);
    try {
      switch (name) {
        case 'remember': {
          const r = await this.memory.remember(
            {
              text: required(a, 'text'),
              ...optional(a, 'subject', 'predicate', 'object', 'validFrom', 'validTo'),
              // An entity link: passed as given, for the client and server to check.
              ...(isObject(a['object']) ? { object: a['object'] as { entity: string } } : {}),
              ...(a['confidence'] !== undefined ? { confidence: a['confidence'] as number } : {}),
            },
            { ...optional(a, 'domain', 'task') },
          );
          const closes = r.superseded.length > 0 ? `; it supersedes ${r.superseded.join(', ')}` : '';
          return text(`Remembered in ${r.domain} (${r.status}, id ${r.factId})${closes}.`);
        }
        case 'recall': {
          const asOf = typeof a['asOf'] === 'string' ? new Date(a['asOf']) : undefined;
          if (asOf !== undefined && Number.isNaN(asOf.getTime())) return failure('BAD_REQUEST', `asOf: "${String(a['asOf'])}" is not an ISO 8601 time`);
          const r = await this.memory.recall({
            ...optional(a, 'query', 'subject', 'predicate', 'domain', 'task'),
            ...(asOf ? { asOf } : {}),
            ...(typeof a['limit'] === 'number' ? { limit: a['limit'] } : {}),
          });
          return text(JSON.stringify({ domains: r.domains, facts: r.facts.map(brief), ...(r.missing.length ? { missing: r.missing } : {}), ...(r.partial ? { partial: true } : {}) }, null, 1));
        }
        case 'history': {
          const page = await this.memory.historyPage(required(a, 'subject'), typeof a['predicate'] === 'string' ? a['predicate'] : undefined, {
            domain: required(a, 'domain'),
            ...(typeof a['limit'] === 'number' ? { limit: a['limit'] } : {}),
            ...(typeof a['before'] === 'number' ? { before: a['before'] } : {}),
          });
          const facts = page.facts.map((f) => ({ id: f.id, text: f.text, status: f.status, validFrom: f.validFrom, validTo: f.validTo }));
          return text(JSON.stringify(page.next !== undefined ? { facts, next: page.next } : facts, null, 1));
        }
        case 'entity': {
          const r = await this.memory.entity({
            id: required(a, 'id'),
            ...optional(a, 'name', 'type'),
            ...(a['aliases'] !== undefined ? { aliases: a['aliases'] as string[] } : {}),
            ...(a['attributes'] !== undefined ? { attributes: a['attributes'] as Record<string, string> } : {}),
          });
          return text(`${r.entity.id} (${r.entity.name}) is known in ${r.domains.join(', ')} as ${[r.entity.id, ...r.entity.aliases].join(', ')}.`);
        }
        case 'lookup': {
          const views = await this.memory.lookup(required(a, 'name'));
          if (views.length === 0) return text(`Nothing is known of "${String(a['name'])}".`);
          return text(JSON.stringify(views, null, 1));
        }
        case 'task_begin': {
          const r = await this.memory.task.begin(required(a, 'text'), optional(a, 'domain'));
          return text(JSON.stringify({ task: r.task, domain: r.domain, context: r.context.map(brief) }, null, 1));
        }
        case 'task_observe': {
          const r = await this.memory.task.observe(required(a, 'task'), required(a, 'text'));
          return text(JSON.stringify({ task: r.task, domain: r.domain, rerouted: r.rerouted, context: r.context.map(brief) }, null, 1));
        }
        case 'task_end': {
          const s = await this.memory.task.end(required(a, 'task'));
          return text(`Task ${s.task} ended in ${s.domain}; it visited ${s.visited.join(', ')}.`);
        }
        case 'retract': {
          const r = await this.memory.retract(required(a, 'factId'), typeof a['validTo'] === 'string' ? { validTo: a['validTo'] } : {});
          return text(`Retracted ${r.factId} in ${r.domain} (${r.status}); it stays in history.`);
        }
        default: {
          const r = await this.memory.forget(required(a, 'factId'));
          return text(`Forgot ${r.factId} in ${r.domain} (${r.status}).`);
        }
      }
    } catch (err) {
      if (err instanceof ShardmindError) return failure(err.code, err.message);
      throw err;
    }
  }
}

function brief(f: RecalledFact): object {
  return {
    id: f.id,
    domain: f.domain,
    text: f.text,
    ...(f.subject !== undefined ? { subject: f.subject, predicate: f.predicate, object: f.object } : {}),
    confidence: Number(f.effectiveConfidence.toFixed(3)),
    // Record state: 'superseded' or 'retracted' tells a model that an asOf answer's fact is not the current value.
    status: f.status,
    validFrom: f.validFrom,
    ...(f.validTo !== undefined ? { validTo: f.validTo } : {}),
    learnedBy: f.source.agent,
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function required(a: Record<string, unknown>, field: string): string {
  const v = a[field];
  if (typeof v !== 'string' || v === '') throw new ShardmindError(ErrorCode.BAD_REQUEST, `${field}: required, a string`);
  return v;
}

function optional(a: Record<string, unknown>, ...fields: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of fields) if (typeof a[f] === 'string') out[f] = a[f];
  return out;
}

const text = (t: string): ToolResult => ({ content: [{ type: 'text', text: t }] });
const failure = (code: string, message: string): ToolResult => ({ content: [{ type: 'text', text: `${code}: ${message}` }], isError: true });

export async function runMcp(argv: readonly string[], io: Io = stdio): Promise<number> {
  const parsed = parseCommandFlags(
    argv,
    { config: { type: 'string' }, servers: { type: 'string' }, agent: { type: 'string' }, node: { type: 'string' } },
    USAGE,
    io,
  );
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  const servers = await orConfigError(io, () => agentServers(values));
  if (servers === 1) return 1;
  let memory: ShardmindClient;
  try {
    memory = await connect({
      servers,
      agent: values.agent ?? 'mcp-agent',
      ...(values.node !== undefined ? { node: values.node } : {}),
      ...natsConnectOptionsFromEnv(),
    });
  } catch (err) {
    // Servers from the config that cannot be reached: say what `status` says (walkthrough-session13 F9).
    io.err(`shardmind mcp: ${(err instanceof ShardmindError ? withAgentServersHint(err, values.servers) : (err as Error)).message}\n`);
    return 1;
  }
  const server = new McpServer(memory, (m) => void process.stdout.write(`${JSON.stringify(m)}\n`));
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  const pending = new Set<Promise<void>>();
  for await (const line of lines) {
    const p = server.line(line).finally(() => pending.delete(p));
    pending.add(p);
  }
  // stdin closed: the client is gone. Finish what was asked, then leave.
  await Promise.allSettled([...pending]);
  await memory.close();
  return 0;
}

export const mcpCommand: Command = {
  summary: 'serve the memory to MCP clients on stdio (remember, recall, history, entity, lookup, retract, forget, tasks)',
  usage: USAGE,
  run: (args) => runMcp(args),
};
