/**
 * The official MCP memory server (`@modelcontextprotocol/server-memory`), driven over stdio as an agent host
 * drives it, with `MEMORY_FILE_PATH` in a temp dir. Two figures:
 *
 * - time per write at N entities: the file is seeded with N entities in the server's own JSONL format (writing
 *   them one call at a time would take hours: every call rereads and rewrites the whole file), then single-entity
 *   `create_entities` and `add_observations` calls are timed;
 * - writes lost when two processes write at once: two server processes on one memory file, each making `n`
 *   `create_entities` calls one after another (each acknowledged), then a third process reads the graph back and
 *   counts the entities that survived. Every call is a read-modify-write of the whole file with no lock, so
 *   concurrent writers overwrite each other's additions.
 */
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { PeerContext } from '../context.ts';
import { stopChild } from '../cleanup.ts';
import { measureSequential, type SequentialSummary } from '../stats.ts';
import { McpStdioClient } from './mcp-stdio.ts';

export interface ServerMemoryWriteFigure {
  readonly entities: number;
  readonly createEntity: SequentialSummary;
  readonly addObservation: SequentialSummary;
}

export interface LostWrites {
  readonly writers: number;
  readonly attempted: number;
  readonly acknowledged: number;
  readonly present: number;
  readonly lost: number;
}

const require = createRequire(import.meta.url);

export function serverMemoryVersion(): string {
  return (require('@modelcontextprotocol/server-memory/package.json') as { version: string }).version;
}

function serverPath(): string {
  return join(dirname(require.resolve('@modelcontextprotocol/server-memory/package.json')), 'dist', 'index.js');
}

async function startServer(ctx: PeerContext, memoryFile: string): Promise<{ client: McpStdioClient; stop(): Promise<void> }> {
  const child = ctx.cleanup.spawn(process.execPath, [serverPath()], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, MEMORY_FILE_PATH: memoryFile },
  });
  child.stderr?.resume();
  const client = new McpStdioClient(child);
  await client.initialize();
  return { client, stop: () => stopChild(child) };
}

/** N entities in the server's JSONL format, each with one observation, as `saveGraph` writes them. */
function seedFile(path: string, n: number): void {
  const lines: string[] = [];
  for (let i = 0; i < n; i++) {
    lines.push(JSON.stringify({ type: 'entity', name: `seed-${i}`, entityType: 'person', observations: [`seed observation ${i}`] }));
  }
  writeFileSync(path, lines.join('\n'));
}

export async function measureServerMemoryWrites(ctx: PeerContext): Promise<ServerMemoryWriteFigure[]> {
  const out: ServerMemoryWriteFigure[] = [];
  for (const n of ctx.budgets.serverMemorySizes) {
    const file = join(ctx.cleanup.tempDir('server-memory'), 'memory.jsonl');
    seedFile(file, n);
    const server = await startServer(ctx, file);
    // Each write costs O(entities): bound the count by time, at least a few samples per size.
    const bounds = { count: 200, maxMs: ctx.quick ? 3_000 : 8_000, warmup: 2 };
    const createEntity = await measureSequential(
      (i) => server.client.callTool('create_entities', {
        entities: [{ name: `bench-${n}-${i}`, entityType: 'fact', observations: [`observation ${i}`] }],
      }),
      bounds,
    );
    const addObservation = await measureSequential(
      (i) => server.client.callTool('add_observations', {
        observations: [{ entityName: `seed-${Math.abs(i) % n}`, contents: [`more ${i}`] }],
      }),
      bounds,
    );
    await server.stop();
    ctx.log(`server-memory @${n} entities: create_entities p50 ${(createEntity.p50us / 1000).toFixed(1)} ms (n=${createEntity.n}), add_observations p50 ${(addObservation.p50us / 1000).toFixed(1)} ms`);
    out.push({ entities: n, createEntity, addObservation });
  }
  return out;
}

export async function measureServerMemoryLostWrites(ctx: PeerContext): Promise<LostWrites> {
  const file = join(ctx.cleanup.tempDir('server-memory-race'), 'memory.jsonl');
  const writers = await Promise.all([startServer(ctx, file), startServer(ctx, file)]);
  const n = ctx.budgets.concurrentWrites;
  let acknowledged = 0;
  await Promise.all(
    writers.map(async (w, k) => {
      for (let i = 0; i < n; i++) {
        await w.client.callTool('create_entities', {
          entities: [{ name: `writer${k}-${i}`, entityType: 'fact', observations: [`written by ${k}`] }],
        });
        acknowledged++;
      }
    }),
  );
  await Promise.all(writers.map((w) => w.stop()));
  const reader = await startServer(ctx, file);
  const graph = (await reader.client.callTool('read_graph', {})) as { structuredContent?: { entities?: { name: string }[] }; content?: { text?: string }[] };
  await reader.stop();
  const entities = graph.structuredContent?.entities ?? (JSON.parse(graph.content?.[0]?.text ?? '{}') as { entities?: { name: string }[] }).entities ?? [];
  const present = new Set(entities.map((e) => e.name).filter((name) => /^writer[01]-\d+$/.test(name))).size;
  const result = { writers: 2, attempted: 2 * n, acknowledged, present, lost: acknowledged - present };
  ctx.log(`server-memory, 2 processes × ${n} writes: ${acknowledged} acknowledged, ${present} present, ${result.lost} lost`);
  return result;
}
