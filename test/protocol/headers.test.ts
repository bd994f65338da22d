/**
 * `readHeaders` against a real nats-server and nats.js's own decoding: a message whose header block nats.js cannot
 * decode gives BAD_REQUEST instead of a throw, and the subscription reads the next message as usual.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect, headers, type Msg } from 'nats';
import { startNatsServer } from '../../cli/index.ts';
import { ErrorCode, headersOrNone, readHeaders } from '../../protocol/index.ts';
import { MALFORMED_HEADER_BLOCK, publishRaw } from '../harness/raw-publish.ts';

test('malformed headers read as BAD_REQUEST, good ones as they are, and the subscription keeps reading', async () => {
  const server = await startNatsServer();
  const nc = await connect({ servers: server.url });
  try {
    const received: Msg[] = [];
    const sub = nc.subscribe('probe', { max: 2, callback: (_err, msg) => void received.push(msg) });
    await nc.flush();
    await publishRaw(server.url, 'probe', 'nowhere', MALFORMED_HEADER_BLOCK, new TextEncoder().encode('x'));
    const good = headers();
    good.set('content-type', 'application/json');
    nc.publish('probe', new Uint8Array([1]), { headers: good });
    await sub.closed;

    assert.is(received.length, 2, 'both messages reached the subscription');
    assert.throws(() => received[0]!.headers, /header/i, 'nats.js itself throws on these headers');
    const bad = readHeaders(received[0]!);
    assert.is(bad.ok, false);
    if (!bad.ok) {
      assert.is(bad.error.code, ErrorCode.BAD_REQUEST);
      assert.match(bad.error.message, /headers are malformed/);
    }
    assert.is(headersOrNone(received[0]!), undefined);

    const fine = readHeaders(received[1]!);
    assert.ok(fine.ok);
    if (fine.ok) assert.is(fine.headers?.get('content-type'), 'application/json');
    assert.is(readHeaders({}).ok, true, 'a message without headers reads as none');
  } finally {
    await nc.close();
    await server.destroy();
  }
});

test.run();
