/**
 * A request with a malformed header block (a key holding a space, which nats.js refuses to decode) on every
 * `sm.mem.<op>` subject, sent by a raw TCP client to a real nats-server and answered by the router inside a real
 * `shardmind host`. Each gets BAD_REQUEST, and the host stays up and keeps answering. Before, the header read threw:
 * in the subscription callback (the common recall's quick path) it ended nats.js's read loop and the host went deaf;
 * in the async handler it was an unhandled rejection and the host exited (review-session10 finding 1).
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, createInbox, type Msg, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { decodePayload, encodePayload, memSubject } from '../../protocol/index.ts';
import { MALFORMED_HEADER_BLOCK, publishRaw } from '../harness/raw-publish.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { NODE, oneMiniConfig } from '../client/one-mini.ts';

interface Ctx {
  nats?: NatsServerProcess;
  hosts?: HostCluster;
  nc?: NatsConnection;
}

const t = suite<Ctx>('router: malformed request headers');

/** Every op the router serves on `sm.mem.*`. */
const OPS = [
  'remember',
  'remember_batch',
  'recall',
  'classify',
  'forget',
  'retract',
  'get',
  'entity',
  'lookup',
  'history',
  'task.begin',
  'task.observe',
  'task.reroute',
  'task.end',
  'task.get',
] as const;

async function ask(nc: NatsConnection, op: string, body: unknown): Promise<Record<string, any>> {
  const msg = await nc.request(memSubject(op), encodePayload(body, 'msgpack'), { timeout: 3_000 });
  return decodePayload(msg.data, 'msgpack') as Record<string, any>;
}

async function eventually<T>(what: string, probe: () => T | undefined, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  ctx.hosts = await startHosts({ config: oneMiniConfig(ctx.nats.url) });
  ctx.nc = await connect({ servers: ctx.nats.url });
});

t.after(async (ctx) => {
  await ctx.nc?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

t('every sm.mem op answers a malformed header block with BAD_REQUEST, and the router keeps serving', async (ctx) => {
  const nc = ctx.nc!;
  const inbox = createInbox();
  const replies = new Map<string, Msg>();
  const sub = nc.subscribe(`${inbox}.*`, { callback: (_e, m) => void replies.set(m.subject.slice(inbox.length + 1), m) });
  await nc.flush();
  // The body of a recall the quick path would take if its headers could be read: one known domain, msgpack.
  const body = encodePayload({ v: 1, query: 'anything', domain: 'email' }, 'msgpack');
  for (const [i, op] of OPS.entries()) {
    await publishRaw(ctx.nats!.url, memSubject(op), `${inbox}.${i}`, MALFORMED_HEADER_BLOCK, body);
  }
  for (const [i, op] of OPS.entries()) {
    const msg = await eventually(`the ${op} reply`, () => replies.get(String(i)));
    const reply = decodePayload(msg.data, 'msgpack') as Record<string, any>;
    assert.is(reply['error']?.code, 'BAD_REQUEST', `${op}: ${JSON.stringify(reply)}`);
    assert.match(reply['error'].message, /headers are malformed/, op);
  }
  sub.unsubscribe();

  // Still reading its socket and still running: the quick recall path, the async handlers, a write.
  const host = ctx.hosts!.host(NODE);
  assert.ok(host.running, `the host exited:\n${host.stderr()}`);
  const recall = await ask(nc, 'recall', { v: 1, query: 'anything', domain: 'email' });
  assert.not.ok(recall['error'], JSON.stringify(recall));
  const classify = await ask(nc, 'classify', { v: 1, text: 'calendar things' });
  assert.is(classify['domains']?.[0]?.domain, 'calendar');
  const remember = await ask(nc, 'remember', { v: 1, agent: 'a', domain: 'files', fact: { text: 'the router is still here' } });
  assert.is(remember['status'], 'created', JSON.stringify(remember));
  assert.ok((await host.status()).shards.length > 0);
  assert.not.match(host.stderr(), /reader closed/);
});

t.run();
