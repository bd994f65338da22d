/**
 * Waits until a router answers `sm.mem.*`. A host is ready (`startHosts`) once its shards lead or follow; its router
 * starts beside them (classifier, task and route buckets) and subscribes a moment later, so on a loaded machine a
 * test's first `sm.mem` request can meet "no responders". Tests that send raw requests, without the SDK's retries,
 * call this first; `startRawOneMini` gives them a one-Mini cluster, a raw connection and a router that answers.
 */
import { connect, type NatsConnection } from 'nats';
import { startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import { encodePayload, memSubject } from '../../protocol/index.ts';
import { oneMiniConfig } from '../client/one-mini.ts';
import { startHosts, type HostCluster } from './hosts.ts';

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

/** A one-Mini cluster (real nats-server, one host process) with a raw NATS connection, its router answering. */
export interface RawOneMini {
  nats: NatsServerProcess;
  hosts: HostCluster;
  nc: NatsConnection;
}

/**
 * Starts a one-Mini cluster for tests that send raw requests, and waits for its router; stops what it started if
 * any step fails. `stopRawOneMini` undoes it.
 */
export async function startRawOneMini(): Promise<RawOneMini> {
  const nats = await startNatsServer();
  let hosts: HostCluster | undefined;
  let nc: NatsConnection | undefined;
  try {
    hosts = await startHosts({ config: oneMiniConfig(nats.url) });
    nc = await connect({ servers: nats.url });
    await routerReady(nc);
    return { nats, hosts, nc };
  } catch (err) {
    await nc?.close();
    await hosts?.stop();
    await nats.destroy();
    throw err;
  }
}

export async function stopRawOneMini(cluster: Partial<RawOneMini>): Promise<void> {
  await cluster.nc?.close();
  await cluster.hosts?.stop();
  await cluster.nats?.destroy();
}
