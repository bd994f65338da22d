/**
 * A stand-in shard leader for lease tests: a child process that connects to the nats-server at argv[2] and
 * publishes heartbeats for domain argv[3] every argv[4] ms (epoch 1) until killed. Being another process, it keeps
 * beating while the test's own event loop is blocked, as a real leader on another Mini does.
 */
import { connect } from 'nats';
import { HeartbeatPublisher, systemTimerClock } from '../../actors/index.ts';

const [url, domain, everyMs] = process.argv.slice(2);
if (!url || !domain || !everyMs) throw new Error('usage: beat-publisher.ts <nats-url> <domain> <heartbeat-ms>');
const nc = await connect({ servers: url });
// On request (`sm.test.filler.start`, body: bytes per beat as text), for the next 8 beats: 64 KB messages on
// `sm.test.filler` between the beats, a busy connection's backlog in front of them.
const chunk = new Uint8Array(64 * 1024);
let fillerBeats = 0;
let fillerBytes = 0;
nc.subscribe('sm.test.filler.start', {
  callback: (_err, msg) => {
    fillerBytes = Number(new TextDecoder().decode(msg.data));
    fillerBeats = 8;
    msg.respond();
  },
});
const fill = setInterval(() => {
  if (fillerBeats === 0) return;
  fillerBeats--;
  for (let sent = 0; sent < fillerBytes; sent += chunk.length) nc.publish('sm.test.filler', chunk);
}, Number(everyMs));
fill.unref();
const publisher = new HeartbeatPublisher({
  nc,
  domain,
  node: 'beat-publisher',
  clock: systemTimerClock,
  heartbeatMs: Number(everyMs),
  state: () => ({ epoch: 1, seq: 1, lease: true }),
  onRenew: () => {},
});
publisher.start();
// systemTimerClock's timers are unref'd: this keeps the process beating until it is killed.
setInterval(() => {}, 60_000);
