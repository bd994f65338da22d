/**
 * `shardmind nats-config --node NAME [--config FILE] [--out FILE]`: writes one Mini's nats-server config from
 * `cluster.config.ts` — its server name, client port, a cluster block routed to every other Mini's
 * `natsServer.host:clusterPort`, and its JetStream store dir — so the cluster's shape lives in one file.
 */
import { chmodSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { orConfigError, parseCommandFlags } from './args.ts';
import type { Command } from './command.ts';
import { ConfigError, loadConfig, nodeByName } from '../config/index.ts';
import type { ClusterConfig, NodeConfig } from '../config/index.ts';
import { agentPasswordEnv, authorizationBlock, parseAgentLogins, PASSWORD_ENV, PASSWORD_RULE, ROUTE_PASSWORD_ENV, ROUTE_USER, routeAuthorizationBlock, routeUrlWithLogin, USER_ENV, USER_PASSWORD_ENV } from './nats-auth.ts';
import { natsServerConfig } from './nats-server.ts';
import { CA_ENV, clientTlsBlock, routeTlsBlock, tlsFilesIn } from './nats-tls.ts';

export const DEFAULT_NATS_CLIENT_PORT = 4222;
export const DEFAULT_NATS_CLUSTER_PORT = 6222;

/** Where a node's nats-server listens and keeps JetStream files, defaults filled in. */
export interface NatsServerPlan {
  readonly host: string;
  readonly port: number;
  readonly clusterPort: number;
  readonly storeDir: string;
}

export function natsServerPlan(config: ClusterConfig, node: NodeConfig): NatsServerPlan {
  const ns = node.natsServer;
  if (!ns) {
    const i = config.nodes.indexOf(node);
    throw new ConfigError(`nodes[${i}].natsServer`, `node "${node.name}" has no natsServer block: add { host: '…' }`);
  }
  return {
    host: ns.host,
    port: ns.port ?? DEFAULT_NATS_CLIENT_PORT,
    clusterPort: ns.clusterPort ?? DEFAULT_NATS_CLUSTER_PORT,
    storeDir: resolve(config.dataDir, ns.storeDir ?? join(config.dataDir, 'nats')),
  };
}

/**
 * The nats-server config text for `nodeName`. One node alone gets no cluster block (JetStream runs standalone);
 * otherwise every other node with a `natsServer` block is a route.
 *
 * @example
 * writeFileSync('mini-1.conf', natsConfigFor(await loadConfig(), 'mini-1'));
 */
export function natsConfigFor(
  config: ClusterConfig,
  nodeName: string,
  options: {
    readonly auth?: boolean;
    readonly tlsDir?: string;
    readonly routePassword?: string;
    /** Named agent logins (`--agents`, checked by `parseAgentLogins`), each confined to its own inboxes. */
    readonly agents?: readonly string[];
    /** False leaves the shared `agent` login out (`--no-shared-agent`). Default true. */
    readonly sharedAgent?: boolean;
  } = {},
): string {
  if (!options.auth && ((options.agents?.length ?? 0) > 0 || options.sharedAgent === false)) {
    throw new Error('--agents and --no-shared-agent need --auth: they shape the login block');
  }
  const node = nodeByName(config, nodeName);
  const plan = natsServerPlan(config, node);
  const peers = config.nodes.filter((n) => n.name !== node.name);
  // With --auth the route port takes only servers that log in (decisions §69): a login on the client port alone is
  // bypassed by any server that routes in.
  const routePassword = options.auth && peers.length > 0 ? requireRoutePassword(options.routePassword) : undefined;
  const routes = peers.map((peer) => {
    const p = natsServerPlan(config, peer);
    return routePassword === undefined ? `nats-route://${p.host}:${p.clusterPort}` : routeUrlWithLogin(p.host, p.clusterPort, routePassword);
  });
  const cluster = {
    name: config.cluster.name,
    port: plan.clusterPort,
    routes,
    ...(routePassword === undefined ? {} : { authorization: routeAuthorizationBlock(routePassword) }),
  };
  return natsServerConfig({
    name: node.name,
    host: plan.host,
    port: plan.port,
    storeDir: plan.storeDir,
    ...(routes.length > 0 ? { cluster } : {}),
    ...(options.auth ? { authorization: authorizationBlock(options.agents ?? [], { sharedAgent: options.sharedAgent ?? true }) } : {}),
    ...(options.tlsDir !== undefined ? { tls: tlsBlocks(options.tlsDir) } : {}),
  });
}

/**
 * What a config without `--auth` leaves open (review session 12, M2, M3): without a login, a server on a LAN address
 * takes anyone who reaches it; TLS alone encrypts but checks no client (the client port does not verify clients).
 */
export function exposureWarnings(plan: NatsServerPlan, auth: boolean, tls: boolean): string[] {
  if (auth) return [];
  const lines: string[] = [];
  if (!isLoopback(plan.host)) {
    lines.push(
      `warning: without --auth, ${plan.host}:${plan.port} and :${plan.clusterPort} accept anyone on the network (read and forget memory, purge logs, join the cluster); add --auth --tls DIR (docs/operations.md, "Setting up a Mini")`,
    );
  }
  if (tls) lines.push('warning: --tls encrypts but does not authenticate clients: any client that speaks TLS gets in; add --auth');
  return lines;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host);
}

/** The route password, or an error that says how to give one. */
function requireRoutePassword(password: string | undefined): string {
  if (password === undefined || password === '') {
    throw new Error(`--auth on a cluster of several Minis needs the routes' password in $${ROUTE_PASSWORD_ENV} (the same on every Mini; e.g. sm$(openssl rand -hex 24))`);
  }
  if (!PASSWORD_RULE.test(password)) {
    throw new Error(`$${ROUTE_PASSWORD_ENV} must start with a letter and hold only letters, digits, _ and - (12+ characters)`);
  }
  return password;
}

function tlsBlocks(dir: string): { client: string; route: string } {
  const files = tlsFilesIn(dir);
  return { client: clientTlsBlock(files), route: routeTlsBlock(files) };
}

const USAGE = `usage: shardmind nats-config --node NAME [--config FILE] [--out FILE] [--auth [--agents a,b [--no-shared-agent]]] [--tls DIR]

--auth: clients must log in as host, agent or operator (passwords from the server's environment:
${Object.values(PASSWORD_ENV).join(', ')}: a letter, then letters, digits, _ or -; e.g.
sm$(openssl rand -hex 24)); shardmind processes connect as $${USER_ENV} / $${USER_PASSWORD_ENV}. The
routes between Minis log in too, as "${ROUTE_USER}" with $${ROUTE_PASSWORD_ENV} (same rule, the same on every
Mini): nats-server cannot read it from its environment, so it is written into the config — keep the file private
(--out writes it mode 600).

--agents alice,bob (with --auth): a login for each agent besides the shared "agent" one, with the same rights
except that each reads only its own replies (_INBOX.<login>.>): no agent can read another's recalls. Passwords
from $${PASSWORD_ENV.agent}_<LOGIN> (upper case, - as _; e.g. ${agentPasswordEnv('mail-agent')}); the
agent connects as that user (the SDK then puts its replies under _INBOX.<login>). Give every Mini the same list.
--no-shared-agent: leave the shared "agent" login out (it reads every agent's replies), once every agent has its own.

--tls DIR: the client port and the routes between Minis use TLS with DIR/ca.pem, DIR/server-cert.pem and
DIR/server-key.pem (make them with: shardmind nats-tls --dir DIR --host <this Mini's host>); shardmind processes
verify the servers against the CA file in $${CA_ENV}.`;

/** The command. Prints the config, or writes it to `--out`; returns the exit code. */
export async function runNatsConfig(
  argv: readonly string[],
  io: { out: (s: string) => void; err: (s: string) => void } = {
    out: (s) => process.stdout.write(s),
    err: (s) => process.stderr.write(s),
  },
): Promise<number> {
  const parsed = parseCommandFlags(
    argv,
    { node: { type: 'string' }, config: { type: 'string' }, out: { type: 'string' }, auth: { type: 'boolean' }, agents: { type: 'string' }, 'no-shared-agent': { type: 'boolean' }, tls: { type: 'string' } },
    USAGE,
    io,
  );
  if (typeof parsed === 'number') return parsed;
  const { values } = parsed;
  if (!values.node) {
    io.err(`--node is required\n${USAGE}\n`);
    return 2;
  }
  const node = values.node;
  return orConfigError(io, async () => {
    const config = await loadConfig(values.config);
    let text: string;
    let agents: string[] = [];
    try {
      if (values.agents !== undefined) agents = parseAgentLogins(values.agents);
      text = natsConfigFor(config, node, {
        auth: values.auth === true,
        agents,
        sharedAgent: values['no-shared-agent'] !== true,
        ...(values.tls !== undefined ? { tlsDir: values.tls } : {}),
        ...(process.env[ROUTE_PASSWORD_ENV] !== undefined ? { routePassword: process.env[ROUTE_PASSWORD_ENV] } : {}),
      });
    } catch (err) {
      if (err instanceof ConfigError) throw err;
      io.err(`${(err as Error).message}\n`);
      return 1;
    }
    for (const line of exposureWarnings(natsServerPlan(config, nodeByName(config, node)), values.auth === true, values.tls !== undefined)) io.err(`${line}\n`);
    if (values.auth) {
      // A password nats-server would misread (it parses the value as a config token) fails only when it starts.
      const roles = values['no-shared-agent'] === true ? Object.values(PASSWORD_ENV).filter((e) => e !== PASSWORD_ENV.agent) : Object.values(PASSWORD_ENV);
      for (const env of [...roles, ...agents.map(agentPasswordEnv)]) {
        const value = process.env[env];
        if (value !== undefined && !PASSWORD_RULE.test(value)) {
          io.err(`warning: $${env} must start with a letter and hold only letters, digits, _ and - (12+ characters), or nats-server will not start\n`);
        }
      }
    }
    const holdsSecret = text.includes(`${ROUTE_USER}:`);
    if (values.out) {
      mkdirSync(dirname(resolve(values.out)), { recursive: true });
      // The route password is in it: readable by its owner only (chmod too, for a file that already existed).
      writeFileSync(values.out, text, holdsSecret ? { mode: 0o600 } : {});
      if (holdsSecret) chmodSync(values.out, 0o600);
      io.out(`wrote ${values.out} for ${node}: start it with  nats-server -c ${values.out}\n`);
    } else {
      io.out(text);
      if (holdsSecret) io.err(`note: this config holds the routes' password ($${ROUTE_PASSWORD_ENV}): keep the file it goes to private (chmod 600)\n`);
    }
    return 0;
  });
}

/** The dispatcher row (`cli/main.ts`). */
export const natsConfigCommand: Command = {
  summary: "write one Mini's nats-server config (name, routes, JetStream dir) from cluster.config.ts",
  usage: USAGE,
  run: (args) => runNatsConfig(args),
};
