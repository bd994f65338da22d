/**
 * The physical floor: what NATS, JetStream and the disk cost before shardmind does anything. Every shardmind figure
 * is reported as a ratio to one of these, measured in the same run on the same nats-server.
 *
 * - echo (child process): request-reply to a responder in another process — the fair floor for a shard, which
 *   also serves from another process. The in-process echo is measured too, to show what the process hop costs.
 * - JetStream publish-ack: a 200-byte publish to an R1 file stream, awaited until the server acks. nats-server
 *   2.9 acks before it fsyncs (it syncs every ~2 min), so this is not a durable write on its own.
 * Every floor request goes out the way the SDK's do (`client/reply-inbox.ts`: one reply subscription, no
 * `nc.request`/`js.publish`, whose successful calls each build an error nobody reads), so a ratio compares
 * shardmind with NATS at the same client cost, not with a slower client.
 * - append + fdatasync: a 200-byte append to a file in the bench's temp dir, then fdatasync — one durable write.
 * - echo that appends (child process): each request appended to JetStream by the responder before it answers — a
 *   remember's message shape with no work in it, one append per request (no grouping). Not a target's floor: it
 *   shows what the shape itself allows on this machine, next to the raw publish rate the throughput target uses.
 */
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, RetentionPolicy, StorageType } from 'nats';
import { ReplyInbox } from '../client/index.ts';
import type { BenchContext } from './context.ts';
import { waitForLine } from './cleanup.ts';
import { cpuText, withCpu, type ProcessSet } from './cpu.ts';
import { measureConcurrent, measureSequential, type SequentialSummary, type ThroughputSummary } from './stats.ts';

export interface FloorFigure {
  readonly seq: SequentialSummary;
  readonly tput: ThroughputSummary;
}

export interface FloorResult {
  readonly echo: FloorFigure;
  readonly echoInProcess: FloorFigure;
  readonly jsPublish: FloorFigure;
  readonly fdatasync: FloorFigure;
  /** Request → the responder appends it to JetStream → reply after the ack (`append-responder.ts`). */
  readonly appendEcho?: FloorFigure;
  /** The same echo and publish through nats.js's own `nc.request` / `js.publish` (for comparison, not a floor). */
  readonly echoRequestApi?: FloorFigure;
  readonly jsPublishApi?: FloorFigure;
  /** p50 of echo + JetStream ack + fdatasync: the floor for one durable remember. */
  readonly rememberFloorP50us: number;
  readonly payloadBytes: number;
}

export const FLOOR_CONCURRENCY = 64;
const PAYLOAD = new Uint8Array(200).fill(0x61);

/**
 * The floor's three primitive operations, kept running for the whole bench so that every sequential loop can
 * interleave them with its own operation (`measureSequential`'s paired baselines): load that drifts during a run
 * then moves the floor and the figure together, and their ratio holds.
 */
export interface FloorProbes {
  /** Request-reply to the echo responder in its own process. */
  echo(): Promise<unknown>;
  /** 200-byte publish to the R1 file stream, awaited until acknowledged. */
  jsPublish(): Promise<unknown>;
  /** 200-byte append + fdatasync. */
  fdatasync(): Promise<unknown>;
  readonly echoPid: number;
}

export async function startFloorProbes(ctx: BenchContext): Promise<FloorProbes> {
  const { nc } = ctx;
  const child = ctx.cleanup.spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'echo-responder.ts'), ctx.natsUrl, 'bench.floor.echo']);
  await waitForLine(child, /^ready$/, 15_000);

  const jsm = await nc.jetstreamManager({ checkAPI: false });
  await jsm.streams.add({
    name: 'BENCH_FLOOR',
    subjects: ['bench.floor.js'],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    num_replicas: 1,
  });
  ctx.cleanup.add('delete stream BENCH_FLOOR', async () => {
    if (!nc.isClosed()) await jsm.streams.delete('BENCH_FLOOR').catch(() => undefined);
  });
  const inbox = new ReplyInbox(nc);

  const fh = await open(join(ctx.cleanup.tempDir('floor'), 'append.log'), 'a');
  ctx.cleanup.add('close append.log', () => fh.close().catch(() => undefined));

  return {
    echo: () => inbox.request('bench.floor.echo', PAYLOAD, 5_000, undefined),
    jsPublish: () => publishAcked(inbox, 'bench.floor.js'),
    fdatasync: async () => {
      await fh.write(PAYLOAD);
      await fh.datasync();
    },
    echoPid: child.pid!,
  };
}

/** A plain publish whose reply is JetStream's ack, read as `js.publish` reads it: an `error` in the ack throws. */
async function publishAcked(inbox: ReplyInbox, subject: string): Promise<number> {
  const reply = await inbox.request(subject, PAYLOAD, 5_000, undefined);
  const ack = JSON.parse(new TextDecoder().decode(reply.data)) as { seq?: number; error?: { description?: string } };
  if (ack.error !== undefined || typeof ack.seq !== 'number') throw new Error(`JetStream did not ack: ${ack.error?.description ?? 'no sequence'}`);
  return ack.seq;
}

export async function measureFloor(ctx: BenchContext, probes: FloorProbes): Promise<FloorResult> {
  const { nc, budgets } = ctx;
  const figure = async (name: string, op: () => Promise<unknown>, procs: ProcessSet = {}): Promise<FloorFigure> => {
    const all = { 'nats-server': ctx.natsPid, ...procs, bench: 'self' as const };
    const seq = await withCpu(all, () => measureSequential(op, budgets.seq));
    const tput = await withCpu(all, () => measureConcurrent(op, FLOOR_CONCURRENCY, budgets.tput));
    ctx.log(`floor ${name}: p50 ${seq.p50us.toFixed(0)} µs, p99 ${seq.p99us.toFixed(0)} µs, ${tput.opsPerSec.toFixed(0)} ops/s at ${FLOOR_CONCURRENCY}; CPU µs/op ${cpuText(tput.cpuUsPerOp)}`);
    return { seq, tput };
  };

  const echo = await figure('echo (child process)', probes.echo, { echo: probes.echoPid });

  // Echo in this process (its own connection: the bench's connection does not hear itself), for comparison.
  const responder = await connect({ servers: ctx.natsUrl, noEcho: true, noAsyncTraces: true });
  ctx.cleanup.add('close in-process echo connection', () => responder.close());
  responder.subscribe('bench.floor.echo.local', { callback: (_e, m) => m.respond(m.data) });
  await responder.flush();
  const inbox = new ReplyInbox(nc);
  const echoInProcess = await figure('echo (in process)', () => inbox.request('bench.floor.echo.local', PAYLOAD, 5_000, undefined));
  await responder.close();

  const jsPublish = await figure('JetStream publish-ack (R1 file)', probes.jsPublish);
  // What the floor was before (decisions §38): nats.js's request and publish APIs, each success building an error.
  const echoRequestApi = await figure('echo through nc.request (child process)', () => nc.request('bench.floor.echo', PAYLOAD, { timeout: 5_000 }), { echo: probes.echoPid });
  const js = nc.jetstream();
  const jsPublishApi = await figure('JetStream publish-ack through js.publish', () => js.publish('bench.floor.js', PAYLOAD));
  const fdatasync = await figure('append 200 B + fdatasync', probes.fdatasync);

  // A remember's shape with nothing in it: the responder appends each request to JetStream, then answers.
  await (await nc.jetstreamManager({ checkAPI: false })).streams.add({
    name: 'BENCH_FLOOR_APPEND',
    subjects: ['bench.floor.append.log'],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    num_replicas: 1,
  });
  ctx.cleanup.add('delete stream BENCH_FLOOR_APPEND', async () => {
    if (!nc.isClosed()) await (await nc.jetstreamManager({ checkAPI: false })).streams.delete('BENCH_FLOOR_APPEND').catch(() => undefined);
  });
  const appender = ctx.cleanup.spawn(process.execPath, [
    '--import',
    'tsx',
    join(import.meta.dirname, 'append-responder.ts'),
    ctx.natsUrl,
    'bench.floor.append',
    'bench.floor.append.log',
  ]);
  await waitForLine(appender, /^ready$/, 15_000);
  const appendEcho = await figure('echo that appends to JetStream (child process)', () => inbox.request('bench.floor.append', PAYLOAD, 5_000, undefined), {
    appender: appender.pid!,
  });
  appender.kill('SIGTERM');

  return {
    echo,
    echoInProcess,
    jsPublish,
    fdatasync,
    appendEcho,
    echoRequestApi,
    jsPublishApi,
    rememberFloorP50us: echo.seq.p50us + jsPublish.seq.p50us + fdatasync.seq.p50us,
    payloadBytes: PAYLOAD.length,
  };
}
