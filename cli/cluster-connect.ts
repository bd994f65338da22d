/**
 * How operator commands (`status`, `migrate`, `apply`) reach a running cluster: the servers from `--servers`, or
 * every NATS URL in the config; the node list from `--nodes`, or the config's nodes.
 */
import { connect, type NatsConnection } from 'nats';
import { existsSync } from 'node:fs';
import { resolve as resolvePath } from 'node:path';
import { ConfigError, DEFAULT_CONFIG_PATH, loadConfig, type ClusterConfig } from '../config/index.ts';
import { ErrorCode, ShardmindError, redactUrl } from '../protocol/index.ts';
import { natsConnectOptionsFromEnv } from './nats-tls.ts';

export interface ClusterTarget {
  readonly config: ClusterConfig | undefined;
  readonly servers: readonly string[];
  readonly nodes: readonly string[];
}

/** Resolves where to connect and whom to ask. A config is needed unless both `servers` and `nodes` are given. */
export async function resolveTarget(o: { config?: string; servers?: string; nodes?: string }): Promise<ClusterTarget> {
  const split = (s: string | undefined): string[] =>
    (s ?? '')
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  const servers = split(o.servers);
  const nodes = split(o.nodes);
  const config = servers.length > 0 && nodes.length > 0 && !o.config ? undefined : await loadConfig(o.config);
  return {
    config,
    servers: servers.length > 0 ? servers : [...new Set(config!.nodes.flatMap((n) => n.nats))],
    nodes: nodes.length > 0 ? nodes : config!.nodes.map((n) => n.name),
  };
}

export async function connectCluster(servers: readonly string[], name: string): Promise<NatsConnection> {
  // On a cluster that requires it, as SHARDMIND_NATS_USER (`operator`) with SHARDMIND_NATS_PASSWORD (cli/nats-auth.ts),
  // over TLS verified against SHARDMIND_NATS_CA (cli/nats-tls.ts).
  try {
    return await connect({ servers: [...servers], name, timeout: 5_000, maxReconnectAttempts: -1, reconnectTimeWait: 250, ...natsConnectOptionsFromEnv() });
  } catch (cause) {
    // A coded one-line error, as the agent commands give, not a stack: most often the config's Mini names do not
    // resolve from here (a fresh machine running the shipped config) or nothing listens.
    const message = cause instanceof Error ? cause.message : String(cause);
    throw new ShardmindError(
      ErrorCode.UNAVAILABLE,
      `cannot connect to NATS at ${servers.map(redactUrl).join(', ')}: ${message} (against \`shardmind up\`, pass --servers nats://127.0.0.1:4222 --nodes local)`,
      { cause, retryable: false },
    );
  }
}

/** What an agent-side command run without --servers says when the config's servers cannot be reached or read. */
export const AGENT_SERVERS_HINT = 'against `shardmind up`, pass --servers nats://127.0.0.1:4222';

/**
 * Where an agent-side command (`remember`, `recall`, `mcp`) connects: `--servers`, or every NATS URL in the config.
 * A config file that is not there says to pass --servers or --config: an MCP client starts `mcp` from its own
 * directory, where no ./cluster.config.ts is (walkthrough-session13 F9).
 */
export async function agentServers(o: { config?: string; servers?: string }): Promise<string[]> {
  const given = (o.servers ?? '')
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
  if (given.length > 0) return given;
  const file = resolvePath(o.config ?? DEFAULT_CONFIG_PATH);
  if (!existsSync(file)) {
    throw new ConfigError(
      'config',
      `file ${file} does not exist: pass --servers URL,… (${AGENT_SERVERS_HINT}), or --config with the cluster config's path`,
    );
  }
  return [...new Set((await loadConfig(o.config)).nodes.flatMap((n) => n.nats))];
}

/**
 * `err` with the --servers hint when it is the client's failure to connect to servers taken from the config (the
 * shipped config's mini-N.local names do not resolve on a fresh machine); `err` itself otherwise.
 */
export function withAgentServersHint(err: ShardmindError, servers: string | undefined): ShardmindError {
  if (servers !== undefined || err.code !== ErrorCode.UNAVAILABLE || !err.message.startsWith('cannot connect to NATS')) return err;
  return new ShardmindError(err.code, `${err.message} (${AGENT_SERVERS_HINT})`, { cause: err, retryable: err.retryable });
}
