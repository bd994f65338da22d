/**
 * `LeaderSightings` on a real nats-server keeps beats of the config's domains only: beats on made-up
 * `sm.hb.<token>` subjects (anyone may publish them on a cluster without logins) leave nothing behind, and junk
 * on a known domain's subject neither breaks the subscription nor hides the real leader.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from 'nats';
import { startNatsServer } from '../../cli/index.ts';
import { LeaderSightings, ManualClock } from '../../actors/index.ts';
import { encodePayload, heartbeatSubject } from '../../protocol/index.ts';
import { MALFORMED_HEADER_BLOCK, publishRaw } from '../harness/raw-publish.ts';

const beat = (node: string, epoch: number): Uint8Array =>
  encodePayload({ v: 1, node, epoch, seq: 7, at: new Date(0).toISOString(), lease: true }, 'msgpack');

test('only the config domains are kept; junk subjects and bodies change nothing', async () => {
  const server = await startNatsServer();
  const nc = await connect({ servers: server.url });
  const publisher = await connect({ servers: server.url });
  const sightings = new LeaderSightings(new ManualClock(5_000), 1_500, ['email', 'calendar']);
  try {
    sightings.listen(nc);
    await nc.flush();
    for (let i = 0; i < 200; i++) publisher.publish(heartbeatSubject(`junk-${i}`), beat('mallory', 99));
    publisher.publish(heartbeatSubject('email'), new Uint8Array([0xc1]));
    await publishRaw(server.url, heartbeatSubject('email'), '', MALFORMED_HEADER_BLOCK, beat('mallory', 1));
    publisher.publish(heartbeatSubject('email'), beat('mini-1', 3));
    await publisher.flush();
    // The last publish is in order behind the junk on the same connection: once it is seen, all of it was read.
    const deadline = Date.now() + 5_000;
    while (sightings.get('email')?.node !== 'mini-1') {
      if (Date.now() > deadline) throw new Error(`no sighting of mini-1 for email: ${JSON.stringify(sightings.get('email'))}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(sightings.get('email'), { node: 'mini-1', epoch: 3, seq: 7, seenAt: 5_000 });
    for (let i = 0; i < 200; i++) assert.is(sightings.get(`junk-${i}`), undefined);
    assert.is(sightings.get('calendar'), undefined);
    assert.is(sightings.isLive('email'), true);
  } finally {
    sightings.stop();
    await publisher.close();
    await nc.close();
    await server.destroy();
  }
});

test.run();
