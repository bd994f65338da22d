/**
 * A child process for `close.test.ts`: an agent that connects, and once its NATS server has gone away (the parent
 * stops it) calls `close()`. It prints what it saw and then simply ends its script: the parent checks that the
 * process exits by itself, which it does only if nothing (a reconnecting connection, a timer) keeps it alive.
 */
import { connect } from '../../client/index.ts';

const url = process.argv[2];
if (url === undefined) throw new Error('usage: close-offline-child.ts <nats url>');
const client = await connect({ servers: url, agent: 'closing-agent' });
const statuses = client.connection.status();
process.stdout.write('ready\n');
for await (const s of statuses) if (s.type === 'disconnect') break;
const started = Date.now();
await client.close();
const closeMs = Date.now() - started;
const isClosed = client.connection.isClosed();
// `closed()` resolves once the connection is closed; bounded by an unreferenced timer that cannot keep us alive.
const closedResolved = await Promise.race([
  client.connection.closed().then(() => true),
  new Promise<false>((resolve) => setTimeout(() => resolve(false), 5_000).unref()),
]);
process.stdout.write(`${JSON.stringify({ closeMs, isClosed, closedResolved })}\n`);
