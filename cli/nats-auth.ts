/**
 * Who may do what on the cluster's NATS, for a cluster that is not alone on its network. Three users, each with
 * the subjects its role needs and nothing more:
 * - `host`: every shardmind host (shards, routers, JetStream): everything.
 * - `agent`: the memory API only — the router (`sm.mem.>`), one shard's ops (`sm.shard.<domain>.<op>`), replica
 *   reads (`sm.replica.>`) — replies to its own inbox, and the change feed (`sm.evt.>`, to listen). It cannot append to a shard's log (`sm.log.>`), forge a
 *   leader's heartbeat (`sm.hb.>`), reach JetStream's API, or command a host (`sm.ctl.>`).
 * - `operator`: what an agent may, plus host control and reading stream state (`shardmind status`, `migrate`,
 *   `apply`).
 *
 * Passwords never sit in a file: the server config refers to environment variables, which nats-server resolves at
 * start and refuses to start without. nats-server parses the variable's value as a config token, so a password must
 * start with a letter and hold only letters, digits, `_` and `-` (`PASSWORD_RULE`; e.g. `sm` + 48 hex digits). Every shardmind process (host, CLI, the TypeScript client through
 * `natsCredentialsFromEnv`) connects as `SHARDMIND_NATS_USER` with `SHARDMIND_NATS_PASSWORD` when they are set.
 */
import { SHARD_OPS } from '../protocol/index.ts';

export type NatsRole = 'host' | 'agent' | 'operator';

/** The environment variable the server config reads a role's password from. */
export const PASSWORD_ENV: Readonly<Record<NatsRole, string>> = {
  host: 'SHARDMIND_HOST_PASSWORD',
  agent: 'SHARDMIND_AGENT_PASSWORD',
  operator: 'SHARDMIND_OPERATOR_PASSWORD',
};

/** What nats-server reads back as a plain string from an environment reference. */
export const PASSWORD_RULE = /^[A-Za-z][A-Za-z0-9_-]{11,}$/;

/** The environment variables a shardmind process connects with. */
export const USER_ENV = 'SHARDMIND_NATS_USER';
export const USER_PASSWORD_ENV = 'SHARDMIND_NATS_PASSWORD';

interface Permissions {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
}

const AGENT: Permissions = {
  publish: ['sm.mem.>', ...SHARD_OPS.map((op) => `sm.shard.*.${op}`), 'sm.replica.>'],
  subscribe: ['_INBOX.>', 'sm.evt.>'],
};

/** Each role's allowed subjects; `host` is unrestricted. */
export const ROLE_PERMISSIONS: Readonly<Record<Exclude<NatsRole, 'host'>, Permissions>> = {
  agent: AGENT,
  operator: {
    publish: [...AGENT.publish, 'sm.ctl.>', '$JS.API.INFO', '$JS.API.STREAM.INFO.>', '$JS.API.STREAM.NAMES', '$JS.API.STREAM.MSG.GET.>'],
    subscribe: AGENT.subscribe,
  },
};

/** The `authorization { … }` block of a nats-server config (2.9+), passwords as environment references. */
export function authorizationBlock(): string {
  const list = (xs: readonly string[]): string => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;
  const user = (role: NatsRole): string => {
    const base = `    { user: ${JSON.stringify(role)}, password: $${PASSWORD_ENV[role]}`;
    if (role === 'host') return `${base} }`;
    const p = ROLE_PERMISSIONS[role];
    return `${base},\n      permissions: { publish: { allow: ${list(p.publish)} }, subscribe: { allow: ${list(p.subscribe)} } } }`;
  };
  return ['authorization {', '  users: [', user('host'), user('agent'), user('operator'), '  ]', '}'].join('\n');
}

/** The user the servers of one cluster log in to each other's route port as. */
export const ROUTE_USER = 'route';
/** The environment variable `nats-config --auth` reads the route password from (the same on every Mini). */
export const ROUTE_PASSWORD_ENV = 'SHARDMIND_ROUTE_PASSWORD';

/**
 * The `authorization { … }` block inside `cluster { … }`: a server that connects to the route port must log in as
 * `route` (review session 12, H2: without it, any nats-server that reaches port 6222 joins the cluster, and its own
 * password-less clients publish and read everything). Unlike the client passwords this one is written into the
 * file: nats-server 2.9 reads a route's credentials only from the route URL's user info, and expands an environment
 * reference only as a whole value, never inside a URL (decisions §69) — so the file holds it, and is kept private.
 */
export function routeAuthorizationBlock(password: string): string {
  return `  authorization { user: ${JSON.stringify(ROUTE_USER)}, password: ${JSON.stringify(password)} }`;
}

/** `nats-route://host:port` with the route login in it, as the other servers' routes name this one. */
export function routeUrlWithLogin(host: string, port: number, password: string): string {
  return `nats-route://${ROUTE_USER}:${encodeURIComponent(password)}@${host}:${port}`;
}

/** `{ user, pass }` from `SHARDMIND_NATS_USER` / `SHARDMIND_NATS_PASSWORD`, or undefined when they are unset. */
export function natsCredentialsFromEnv(env: NodeJS.ProcessEnv = process.env): { user: string; pass: string } | undefined {
  const user = env[USER_ENV];
  const pass = env[USER_PASSWORD_ENV];
  return user && pass !== undefined ? { user, pass } : undefined;
}
