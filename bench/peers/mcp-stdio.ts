/**
 * A minimal MCP client over a child process's stdio (newline-delimited JSON-RPC 2.0): the handshake
 * (`initialize`, then `notifications/initialized`) and `tools/call`. Enough to drive the official MCP memory server
 * the way an agent host does, without pulling the MCP SDK's client into the bench.
 */
import type { ChildProcess } from 'node:child_process';

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
  timer: NodeJS.Timeout;
}

export class McpStdioClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private buf = '';

  constructor(private readonly child: ChildProcess, private readonly timeoutMs = 60_000) {
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => this.onData(chunk));
    child.once('exit', (code) => this.failAll(new Error(`MCP server exited (${code})`)));
  }

  async initialize(): Promise<void> {
    await this.request('initialize', {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name: 'shardmind-bench', version: '0.1.0' },
    });
    this.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  }

  /** Calls a tool; throws when the call fails or the tool reports `isError`. */
  async callTool(name: string, args: Record<string, unknown>): Promise<unknown> {
    const result = (await this.request('tools/call', { name, arguments: args })) as { isError?: boolean; content?: unknown };
    if (result.isError) throw new Error(`MCP tool ${name} failed: ${JSON.stringify(result.content).slice(0, 300)}`);
    return result;
  }

  request(method: string, params: unknown): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`MCP ${method} timed out after ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.send({ jsonrpc: '2.0', id, method, params });
    });
  }

  private send(msg: unknown): void {
    this.child.stdin?.write(JSON.stringify(msg) + '\n');
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (!line) continue;
      let msg: { id?: number; result?: unknown; error?: { message: string } };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        continue; // not JSON-RPC (a stray log line on stdout)
      }
      if (typeof msg.id !== 'number') continue; // a notification
      const p = this.pending.get(msg.id);
      if (!p) continue;
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      if (msg.error) p.reject(new Error(`MCP error: ${msg.error.message}`));
      else p.resolve(msg.result);
    }
  }

  private failAll(err: Error): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(err);
      this.pending.delete(id);
    }
  }
}
