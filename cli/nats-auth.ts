/**
 * Who may do what on the cluster's NATS, for a cluster that is not alone on its network. Three roles, each with
 * the subjects its role needs and nothing more:
 * - `host`: every shardmind host (shards, routers, JetStream): everything.
 * - `agent`: the memory API only — the router (`sm.mem.>`), one shard's ops (`sm.shard.<domain>.<op>`), replica
 *   reads (`sm.replica.>`) — replies to its inbox, and the change feed (`sm.evt.>`, to listen). It cannot append to
 *   a shard's log (`sm.log.>`), forge a leader's heartbeat (`sm.hb.>`), reach JetStream's API, command a host
 *   (`sm.ctl.>`), or publish into any inbox (`_INBOX.>`: only hosts answer requests).
 * - `operator`: what an agent may, plus host control and reading stream state (`shardmind status`, `migrate`,
 *   `apply`).
 *
 * The shared `agent` login reads every inbox (`_INBOX.>`), so one agent sees the others' replies and the reply
 * subjects they wait on (review session 12, M1). Named agent logins (`nats-config --auth --agents alice,bob`) are
 * agents with one difference: each subscribes only to its own inbox namespace, `_INBOX.<login>.>`, where the SDK puts
 * its replies when it logs in as that user (decisions §80).
 *
 * Passwords never sit in a file: the server config refers to environment variables, which nats-server resolves at
 * start and refuses to start without. nats-server parses the variable's value as a config token, so a password must
 * start with a letter and hold only letters, digits, `_` and `-` (`PASSWORD_RULE`; e.g. `sm` + 48 hex digits). Every shardmind process (host, CLI, the TypeScript client through
 * `natsCredentialsFromEnv`) connects as `SHARDMIND_NATS_USER` with `SHARDMIND_NATS_PASSWORD` when they are set.
 */
import { agentInboxPrefix, SHARD_OPS } from '../protocol/index.ts';

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

/**
 * A named agent login: a lowercase letter, then lowercase letters, digits, `_` or `-` (at most 64). One subject token
 * (its inbox is `_INBOX.<login>`), and one environment variable name after upper-casing (`agentPasswordEnv`).
 */
export const AGENT_LOGIN_RULE = /^[a-z][a-z0-9_-]{0,63}$/;
/** Names a named agent login cannot take: the roles', and the routes' login. */
const RESERVED_LOGINS: ReadonlySet<string> = new Set(['host', 'agent', 'operator', 'route']);

/** The environment variable the server config reads a named agent's password from: `alice` → `SHARDMIND_AGENT_PASSWORD_ALICE`. */
export function agentPasswordEnv(login: string): string {
  return `${PASSWORD_ENV.agent}_${login.toUpperCase().replace(/-/g, '_')}`;
}

/** What a named agent login may do: an agent's publish rights; subscriptions to its own inboxes and the feed only. */
export function agentLoginPermissions(login: string): Permissions {
  return { publish: AGENT.publish, subscribe: [`${agentInboxPrefix(login)}.>`, ...AGENT.subscribe.filter((s) => s !== '_INBOX.>')] };
}

/**
 * The named agent logins of `--agents a,b,c`: each checked against `AGENT_LOGIN_RULE`, none reserved, no two the same
 * or with the same password variable (`a-b` and `a_b` both read `…_A_B`). Throws an Error that says which and why.
 */
export function parseAgentLogins(list: string): string[] {
  const logins = list.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (logins.length === 0) throw new Error('--agents: name at least one login (e.g. --agents alice,bob)');
  const byEnv = new Map<string, string>();
  for (const login of logins) {
    if (!AGENT_LOGIN_RULE.test(login)) {
      throw new Error(`--agents: "${login}" is not a login: a lowercase letter, then lowercase letters, digits, _ or - (at most 64)`);
    }
    if (RESERVED_LOGINS.has(login)) throw new Error(`--agents: "${login}" is reserved (${[...RESERVED_LOGINS].join(', ')})`);
    const env = agentPasswordEnv(login);
    const other = byEnv.get(env);
    if (other !== undefined) {
      throw new Error(other === login ? `--agents: "${login}" is named twice` : `--agents: "${other}" and "${login}" would share the password variable $${env}`);
    }
    byEnv.set(env, login);
  }
  return logins;
}

/**
 * The `authorization { … }` block of a nats-server config (2.9+), passwords as environment references. `agents` are
 * named agent logins (`parseAgentLogins`), written after the roles. The shared `agent` login stays unless
 * `sharedAgent` is false: while any process holds its password, it reads every agent's replies (`_INBOX.>`).
 * Permissions use the `publish: { allow }` / `subscribe: { allow }` form, which 2.9 and later servers all read.
 */
export function authorizationBlock(agents: readonly string[] = [], options: { readonly sharedAgent?: boolean } = {}): string {
  const sharedAgent = options.sharedAgent ?? true;
  if (!sharedAgent && agents.length === 0) throw new Error('--no-shared-agent needs --agents: without either, no agent could log in');
  const list = (xs: readonly string[]): string => `[${xs.map((x) => JSON.stringify(x)).join(', ')}]`;
  const entry = (name: string, env: string, p: Permissions | undefined): string => {
    const base = `    { user: ${JSON.stringify(name)}, password: $${env}`;
    if (p === undefined) return `${base} }`;
    return `${base},\n      permissions: { publish: { allow: ${list(p.publish)} }, subscribe: { allow: ${list(p.subscribe)} } } }`;
  };
  const users = [
    entry('host', PASSWORD_ENV.host, undefined),
    ...(sharedAgent ? [entry('agent', PASSWORD_ENV.agent, ROLE_PERMISSIONS.agent)] : []),
    entry('operator', PASSWORD_ENV.operator, ROLE_PERMISSIONS.operator),
    ...agents.map((login) => entry(login, agentPasswordEnv(login), agentLoginPermissions(login))),
  ];
  return ['authorization {', '  users: [', ...users, '  ]', '}'].join('\n');
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
