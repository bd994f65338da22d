/**
 * A just-restarted nats-server's stale state must not halt replicas in `aheadOfLog` (decisions §82; the chaos soak's
 * seed 4002, §75: two followers halted for a minute while the log held every entry they had applied).
 *
 * Five servers, the email log R3 on three of them. One member is killed, more writes are committed by the other two,
 * then those two are killed and the first restarted on its old store: the stream has no leader, and the restarted
 * member answers stream info from its own state, a log ending below what every replica applied. Before, those
 * readings agreed for §61's 5 s and every replica halted. Now a short reading is put to the stream leader (a message
 * get, which no member answers from such a state): with no leader there is no verdict, so the replicas ask again
 * instead of halting, and once the two members are back they carry on from where they were, nothing rebuilt, and
 * a new write lands. Real nats-servers and host processes.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect as natsConnect, type NatsConnection } from 'nats';
import { startNatsCluster, waitForJetStream, type NatsCluster } from '../../cli/index.ts';
import { connect, type ShardmindClient } from '../../client/index.ts';
import { logStream } from '../../protocol/index.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { DOMAIN, NODES, digests, eventually, leaderOf, threeMiniConfig, waitAllApplied } from './fault-kit.ts';

/** How long the stream stays without a leader: the stale readings begin about 10 s after the restart. */
const LEADERLESS_MS = 25_000;

function halts(stderr: string): number {
  return stderr.split('aheadOfLog] → aheadOfLog').length - 1;
}

test('a restarted server answering stream info from its stale state halts no replica; they carry on once the log has a leader', async () => {
  const nats: NatsCluster = await startNatsCluster(5);
  let hosts: HostCluster | undefined;
  let nc: NatsConnection | undefined;
  let client: ShardmindClient | undefined;
  try {
    nc = await natsConnect({ servers: nats.urls, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
    await waitForJetStream(nc);
    // Each Mini knows every server, its own first: whichever servers are down, it reaches the others.
    const urls = nats.urls;
    const config = threeMiniConfig(urls, { natsOf: (i, all) => [...all.slice(i), ...all.slice(0, i)] });
    hosts = await startHosts({ config, readyTimeoutMs: 60_000 });
    client = await connect({ connection: nc, agent: 'writer', direct: true, deadlineMs: 30_000 });
    const c = client;
    const write = async (text: string): Promise<number> => (await c.remember({ text }, { domain: DOMAIN })).seq;
    await eventually('a leader of email', () => leaderOf(nc!), 30_000);
    for (let i = 0; i < 10; i++) await write(`before the fault, note ${i}`);

    const jsm = await nc.jetstreamManager({ checkAPI: false });
    const info = await jsm.streams.info(logStream(DOMAIN));
    const members = [info.cluster?.leader, ...(info.cluster?.replicas ?? []).map((r) => r.name)];
    assert.is(members.length, 3, `the email log's members: ${JSON.stringify(members)}`);
    const restarted = nats.servers.find((s) => s.name === info.cluster?.replicas?.[0]?.name)!;
    const killed = nats.servers.filter((s) => members.includes(s.name) && s !== restarted);

    restarted.kill('SIGKILL');
    await restarted.waitExit();
    let position = 0;
    for (let i = 0; i < 20; i++) position = await write(`while one member is down, note ${i}`);
    await waitAllApplied(nc, NODES, 30_000);
    assert.is(halts(hosts.stderr()), 0);

    for (const s of killed) {
      s.kill('SIGKILL');
      await s.waitExit();
    }
    await restarted.start();
    // The window without a stream leader: the restarted member's stale reading must be seen, and no replica halts.
    let staleReading: number | undefined;
    const until = Date.now() + LEADERLESS_MS;
    while (Date.now() < until) {
      const last = await jsm.streams.info(logStream(DOMAIN)).then(
        (i) => i.state.last_seq,
        () => undefined,
      );
      if (last !== undefined && last < position) staleReading ??= last;
      assert.is(halts(hosts.stderr()), 0, `a replica halted in aheadOfLog on a stale reading:\n${hosts.stderr().slice(-6_000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(staleReading !== undefined, `the restarted member answered stream info below seq ${position} (the reading under test)`);

    for (const s of killed) await s.start();
    await eventually('a leader of email again', () => leaderOf(nc!), 60_000);
    const after = await write('after the heal');
    assert.ok(after > position, `a new write lands past ${position}: ${after}`);
    await waitAllApplied(nc, NODES, 60_000);
    const ds = await eventually(
      'every replica to hold the same content',
      async () => {
        const d = await digests(nc!, NODES);
        return new Set(d.map((x) => x.digest)).size === 1 ? d : undefined;
      },
      30_000,
    );
    assert.is(new Set(ds.map((d) => d.digest)).size, 1);
    assert.is(halts(hosts.stderr()), 0, 'no replica halted');
    assert.not.match(hosts.stderr(), /rebuilding this replica from the log/);
    process.stdout.write(`FIGURES ${JSON.stringify({ test: 'stale-short-tail', position, staleReading, after })}\n`);
  } catch (err) {
    if (hosts) process.stderr.write(hosts.stderr().slice(-20_000));
    throw err;
  } finally {
    await client?.close().catch(() => undefined);
    await hosts?.stop().catch(() => undefined);
    await nc?.close().catch(() => undefined);
    await nats.destroy();
  }
});

test.run();
