/**
 * Waits until a router answers `sm.mem.*`. A host is ready (`startHosts`) once its shards lead or follow; its router
 * starts beside them (classifier, task and route buckets) and subscribes a moment later, so on a loaded machine a
 * test's first `sm.mem` request can meet "no responders". Tests that send raw requests, without the SDK's retries,
 * call this first.
 */
import type { NatsConnection } from 'nats';
import { encodePayload, memSubject } from '../../protocol/index.ts';

export async function routerReady(nc: NatsConnection, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await nc.request(memSubject('classify'), encodePayload({ v: 1, text: 'ready?' }, 'msgpack'), { timeout: 2_000 });
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`no router answered ${memSubject('classify')} within ${timeoutMs} ms: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
