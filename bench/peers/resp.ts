/**
 * A minimal pipelining RESP2 client for the Redis peer: commands go out as arrays of bulk strings, replies come
 * back in order and resolve the oldest pending command. Enough for HSET/ZADD/ZUNIONSTORE/HGETALL; no pub/sub, no
 * cluster. Written here rather than adding `redis`/`ioredis` as a dependency: the protocol is a screenful, and a
 * hand-rolled client keeps the peer's client overhead as low and as visible as our own.
 */
import { createConnection, type Socket } from 'node:net';

export type RespValue = string | number | null | RespValue[] | RespError;

export class RespError extends Error {
  override readonly name = 'RespError';
}

interface Pending {
  resolve(v: RespValue): void;
  reject(e: Error): void;
}

export class RespClient {
  private buf: Buffer = Buffer.alloc(0);
  // A queue as array + head index: Array.shift() is O(n), which made long pipelines quadratic.
  private pending: Pending[] = [];
  private head = 0;
  private closed = false;

  private constructor(private readonly sock: Socket) {
    sock.setNoDelay(true);
    sock.on('data', (chunk) => this.onData(chunk));
    sock.on('close', () => this.failAll(new Error('redis connection closed')));
    sock.on('error', (err) => this.failAll(err));
  }

  static connect(port: number, host = '127.0.0.1'): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const sock = createConnection({ port, host });
      sock.once('connect', () => resolve(new RespClient(sock)));
      sock.once('error', reject);
    });
  }

  /** Sends one command; resolves with its reply, rejects with `RespError` for a Redis error reply. */
  call(...args: (string | number)[]): Promise<RespValue> {
    if (this.closed) return Promise.reject(new Error('redis client closed'));
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.sock.write(encode(args));
    });
  }

  /** Sends several commands in one write (a pipeline); resolves with every reply in order. */
  pipeline(cmds: readonly (readonly (string | number)[])[]): Promise<RespValue[]> {
    if (this.closed) return Promise.reject(new Error('redis client closed'));
    const replies = cmds.map(
      () => new Promise<RespValue>((resolve, reject) => this.pending.push({ resolve, reject })),
    );
    this.sock.write(Buffer.concat(cmds.map(encode)));
    return Promise.all(replies);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.end();
  }

  private failAll(err: Error): void {
    this.closed = true;
    const left = this.pending.slice(this.head);
    this.pending = [];
    this.head = 0;
    for (const p of left) p.reject(err);
  }

  private onData(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let pos = 0;
    for (;;) {
      const r = parse(this.buf, pos);
      if (!r) break;
      pos = r.end;
      const p = this.pending[this.head];
      if (!p) continue;
      this.pending[this.head++] = undefined as unknown as Pending;
      if (this.head === this.pending.length) {
        this.pending = [];
        this.head = 0;
      }
      if (r.value instanceof RespError) p.reject(r.value);
      else p.resolve(r.value);
    }
    this.buf = this.buf.subarray(pos);
  }
}

function encode(args: readonly (string | number)[]): Buffer {
  const parts: string[] = [`*${args.length}\r\n`];
  for (const a of args) {
    const s = String(a);
    parts.push(`$${Buffer.byteLength(s)}\r\n${s}\r\n`);
  }
  return Buffer.from(parts.join(''));
}

/** Parses one reply at `pos`; undefined when the buffer does not yet hold all of it. */
function parse(buf: Buffer, pos: number): { value: RespValue; end: number } | undefined {
  if (pos >= buf.length) return undefined;
  const nl = buf.indexOf('\r\n', pos);
  if (nl < 0) return undefined;
  const type = String.fromCharCode(buf[pos]!);
  const line = buf.toString('utf8', pos + 1, nl);
  const after = nl + 2;
  switch (type) {
    case '+':
      return { value: line, end: after };
    case '-':
      return { value: new RespError(line), end: after };
    case ':':
      return { value: Number(line), end: after };
    case '$': {
      const len = Number(line);
      if (len < 0) return { value: null, end: after };
      if (after + len + 2 > buf.length) return undefined;
      return { value: buf.toString('utf8', after, after + len), end: after + len + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { value: null, end: after };
      const items: RespValue[] = [];
      let p = after;
      for (let i = 0; i < n; i++) {
        const r = parse(buf, p);
        if (!r) return undefined;
        items.push(r.value);
        p = r.end;
      }
      return { value: items, end: p };
    }
    default:
      throw new Error(`RESP: unexpected type byte ${JSON.stringify(type)}`);
  }
}
