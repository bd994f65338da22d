/**
 * Publishing a message with a header block nats.js itself would refuse to build: a raw TCP client speaking the NATS
 * protocol (CONNECT, HPUB, PING), for tests of what a host does with malformed headers from any publisher.
 */
import { connect as tcpConnect, type Socket } from 'node:net';

/** A header block whose key holds a space: nats.js throws BAD_HEADER when a receiver reads `msg.headers`. */
export const MALFORMED_HEADER_BLOCK = 'NATS/1.0\r\nbad key: 1\r\n\r\n';

/**
 * Sends one message with `headerBlock` verbatim to `subject` on the server at `url` (nats://host:port), with
 * `replyTo` as its reply subject, and resolves once the server has answered the PING that follows it (so the message
 * has been routed).
 */
export async function publishRaw(url: string, subject: string, replyTo: string, headerBlock: string, payload: Uint8Array): Promise<void> {
  const { hostname, port } = new URL(url);
  const socket: Socket = tcpConnect({ host: hostname, port: Number(port) });
  try {
    await new Promise<void>((resolve, reject) => {
      let seen = '';
      const timer = setTimeout(() => reject(new Error(`no PONG from ${url} within 5 s`)), 5000);
      socket.on('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.on('data', (chunk: Buffer) => {
        seen += chunk.toString('latin1');
        if (seen.includes('-ERR')) {
          clearTimeout(timer);
          reject(new Error(`server refused the raw message: ${seen.trim()}`));
        } else if (seen.includes('PONG')) {
          clearTimeout(timer);
          resolve();
        }
      });
      socket.once('connect', () => {
        const head = Buffer.from(headerBlock, 'latin1');
        const total = head.length + payload.length;
        socket.write(`CONNECT {"verbose":false,"pedantic":false,"headers":true,"protocol":1}\r\n`);
        socket.write(`HPUB ${subject} ${replyTo} ${head.length} ${total}\r\n`);
        socket.write(Buffer.concat([head, Buffer.from(payload), Buffer.from('\r\nPING\r\n')]));
      });
    });
  } finally {
    socket.destroy();
  }
}
