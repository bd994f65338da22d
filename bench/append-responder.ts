/**
 * A remember's message shape with nothing else in it, run as its own process
 * (`node --import tsx bench/append-responder.ts <url> <subject> <stream subject>`): each request is published to a
 * JetStream stream, and answered once JetStream acknowledges it — two NATS hops plus one append, no decoding, no
 * storage, no grouping. It shows how fast any service can be that acknowledges a write only after appending that
 * write on its own to a replicated log, on this machine; prints `ready` once subscribed.
 */
import { connect } from 'nats';

const [url, subject, streamSubject] = process.argv.slice(2);
if (!url || !subject || !streamSubject) {
  process.stderr.write('usage: append-responder.ts <nats-url> <subject> <stream subject>\n');
  process.exit(2);
}

const nc = await connect({ servers: url, noEcho: true, noAsyncTraces: true });
const js = nc.jetstream();
nc.subscribe(subject, {
  callback: (_err, msg) => {
    js.publish(streamSubject, msg.data).then(
      () => msg.respond(msg.data),
      () => msg.respond(new Uint8Array(0)),
    );
  },
});
await nc.flush();
process.stdout.write('ready\n');

const stop = async (): Promise<void> => {
  await nc.drain();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
