/**
 * The floor's echo service, run as its own process (`node --import tsx bench/echo-responder.ts <url> <subject>`):
 * a shard serves from another process than its callers, so a child-process echo is the fair baseline for a request
 * that crosses NATS twice. Replies with the request's bytes; prints `ready` once the subscription is registered.
 */
import { connect } from 'nats';

const [url, subject] = process.argv.slice(2);
if (!url || !subject) {
  process.stderr.write('usage: echo-responder.ts <nats-url> <subject>\n');
  process.exit(2);
}

const nc = await connect({ servers: url, noEcho: true, noAsyncTraces: true });
nc.subscribe(subject, { callback: (_err, msg) => msg.respond(msg.data) });
await nc.flush();
process.stdout.write('ready\n');

const stop = async (): Promise<void> => {
  await nc.drain();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
