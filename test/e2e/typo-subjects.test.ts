/**
 * A subject built with a typo'd domain, against a real nats-server and host (walkthrough-session11 finding 15):
 * `sm.replica.<unknown>.<op>` is answered UNKNOWN_DOMAIN (not retryable), in the request's encoding, as
 * `sm.shard.<unknown>.<op>` is, instead of "no responders", which clients retry until their deadline. A known
 * domain's replica subject is still served by its replicas, and the per-node replica subject of a node that holds no
 * replica still gets "no responders": clients and routers read that as "ask any replica".
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as natsConnect, headers, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import {
  CONTENT_TYPE_HEADER,
  ErrorCode,
  JSON_CONTENT_TYPE,
  decodePayload,
  encodePayload,
  replicaNodeSubject,
  replicaSubject,
  shardSubject,
  type Encoding,
} from '../../protocol/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { oneMiniConfig } from '../client/one-mini.ts';

interface Ctx {
  nats: NatsServerProcess;
  hosts: HostCluster;
  nc: NatsConnection;
}

const typo = suite<Ctx>('typo subjects');

typo.before(async (ctx) => {
  ctx.nats = await startNatsServer();
  try {
    ctx.hosts = await startHosts({ config: oneMiniConfig(ctx.nats.url) });
    ctx.nc = await natsConnect({ servers: ctx.nats.url });
  } catch (err) {
    await ctx.hosts?.stop();
    await ctx.nats.destroy();
    throw err;
  }
});

typo.after(async (ctx) => {
  await ctx.nc?.close();
  await ctx.hosts?.stop();
  await ctx.nats?.destroy();
});

/** The decoded reply, or the NATS error code ('503' for no responders). */
async function ask(ctx: Ctx, subject: string, body: object, encoding: Encoding): Promise<Record<string, unknown> | string> {
  const h = headers();
  if (encoding === 'json') h.set(CONTENT_TYPE_HEADER, JSON_CONTENT_TYPE);
  try {
    const msg = await ctx.nc.request(subject, encodePayload(body, encoding), { timeout: 3_000, headers: h });
    assert.is(msg.headers?.get(CONTENT_TYPE_HEADER) ?? '', encoding === 'json' ? JSON_CONTENT_TYPE : '', `${subject}: reply encoding`);
    return decodePayload(msg.data, encoding) as Record<string, unknown>;
  } catch (err) {
    return String((err as { code?: string }).code ?? (err as Error).message);
  }
}

typo('sm.replica.<unknown domain>.<op> - UNKNOWN_DOMAIN naming the domain and the known ones, msgpack and JSON', async (ctx) => {
  for (const encoding of ['msgpack', 'json'] as const) {
    for (const [op, body] of [['recall', { v: 1, query: 'x' }], ['get', { v: 1, factId: 'nope:0000000002:0' }], ['frobnicate', { v: 1 }]] as const) {
      const reply = await ask(ctx, replicaSubject('nope', op), body, encoding);
      assert.type(reply, 'object', `${op} ${encoding}: got ${String(reply)}`);
      const error = (reply as { error?: { code: string; message: string; retryable: boolean } }).error;
      assert.ok(error, `${op} ${encoding}: ${JSON.stringify(reply)}`);
      assert.is(error.code, ErrorCode.UNKNOWN_DOMAIN, error.message);
      assert.is(error.retryable, false);
      assert.match(error.message, /"nope"/);
      assert.match(error.message, /calendar, email, files/);
    }
  }
  // The shard subject answers the same, as it did.
  const shard = await ask(ctx, shardSubject('nope', 'recall'), { v: 1, query: 'x' }, 'json');
  assert.is((shard as { error?: { code: string } }).error?.code, ErrorCode.UNKNOWN_DOMAIN);
});

typo('a known domain on sm.replica is still served, and a node without its replica still gets no responders', async (ctx) => {
  const reply = await ask(ctx, replicaSubject('email', 'recall'), { v: 1, query: 'anything' }, 'json');
  assert.type(reply, 'object', String(reply));
  assert.ok(Array.isArray((reply as { facts?: unknown }).facts), JSON.stringify(reply));
  assert.is(await ask(ctx, replicaNodeSubject('email', 'recall', 'mini-9'), { v: 1, query: 'x' }, 'msgpack'), '503');
});

typo.run();
