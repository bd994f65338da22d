/** The command line, and the nats-server launcher that `up`, tests and benchmarks share. */
export type { NatsServerConfigOptions, StartNatsOptions } from './nats-server.ts';
export {
  natsServerConfig,
  natsServerInstallHint,
  findNatsServer,
  freePort,
  NatsServerProcess,
  startNatsServer,
  NatsCluster,
  startNatsCluster,
  waitForJetStream,
} from './nats-server.ts';
