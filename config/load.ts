/**
 * Loads `cluster.config.ts` and turns what a person wrote into a `ClusterConfig` every host can trust: defaults
 * first (the `DEFAULT_*` constants), then validation, in one function, with errors that name the field and the
 * problem (`placement.email.leader: node "mini-9" is not in nodes`).
 */
import { resolve as resolvePath, isAbsolute, dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { existsSync } from 'node:fs';
import { DOMAIN_NAME } from '../protocol/index.ts';
import type { PredicateSpec } from '../shards/index.ts';
import type { ClusterConfig, ClusterConfigInput, CompactionConfig, DomainConfig, NodeConfig, PlacementConfig } from './types.ts';

export const DEFAULT_CONFIG_PATH = './cluster.config.ts';
export const DEFAULT_CLUSTER_NAME = 'shardmind';
export const DEFAULT_DATA_DIR = './.shardmind';
export const DEFAULT_MAX_PAYLOAD_BYTES = 64 * 1024;
export const DEFAULT_MIN_SEQ_WAIT_MS = 2_000;
export const DEFAULT_MAX_RECALL_LIMIT = 100;
/** Replica reads without `maxStaleMs` (see `LimitsConfig.replicaMaxStaleMs` for why 1000). */
export const DEFAULT_REPLICA_MAX_STALE_MS = 1_000;
export const DEFAULT_LEASE_MS = 1_500;
export const DEFAULT_HEARTBEAT_MS = 250;
export const DEFAULT_FANOUT_MARGIN = 0.25;
export const DEFAULT_FANOUT_FLOOR = 0.15;
export const DEFAULT_REROUTE_MARGIN = 0.2;
export const DEFAULT_SHARD_TIMEOUT_MS = 1_500;
/** Compaction (see `CompactionConfig`): a snapshot every 100k entries, 1000 kept below it, two snapshots kept. */
export const DEFAULT_COMPACT_EVERY_ENTRIES = 100_000;
export const DEFAULT_COMPACT_RETAIN_ENTRIES = 1_000;
export const DEFAULT_KEEP_SNAPSHOTS = 2;
export const DEFAULT_PREDICATE: PredicateSpec = { cardinality: 'many', halfLifeDays: 30 };
/** NATS' default max_payload is 1 MiB; a request limit above it could never be reached. */
export const MAX_PAYLOAD_CEILING = 1024 * 1024;

/** Node names are subject tokens (`sm.ctl.<node>.status`). */
export const NODE_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

/** A config that cannot run. `field` is the dotted path of what is wrong. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly field: string,
    readonly problem: string,
  ) {
    super(`${field}: ${problem}`);
  }
}

/**
 * Imports a config file (TypeScript works under tsx) and resolves it. A relative `dataDir` is taken relative to
 * the config file, so `shardmind host --config /etc/shardmind/cluster.config.ts` does not depend on the cwd.
 *
 * @example
 * const config = await loadConfig('./cluster.config.ts');
 * console.log(config.placement['email']?.leader);
 */
export async function loadConfig(path: string = DEFAULT_CONFIG_PATH): Promise<ClusterConfig> {
  const file = resolvePath(path);
  if (!existsSync(file)) throw new ConfigError('config', `file ${file} does not exist`);
  let mod: { default?: unknown };
  try {
    mod = await importConfigModule(file);
  } catch (cause) {
    throw new ConfigError('config', `could not load ${file}: ${(cause as Error).message}`);
  }
  if (mod.default === undefined || mod.default === null || typeof mod.default !== 'object') {
    throw new ConfigError('config', `${file} must \`export default defineConfig({ … })\``);
  }
  const config = resolveConfig(mod.default as ClusterConfigInput);
  return isAbsolute(config.dataDir) ? config : { ...config, dataDir: resolvePath(dirname(file), config.dataDir) };
}

/**
 * A TypeScript config goes through tsx's `tsImport`, which compiles it whatever package it sits in: a plain
 * `import()` of `/etc/shardmind/cluster.config.ts` (no `"type": "module"` above it) was compiled as CommonJS and
 * failed. Such a file comes back with its `export default` one level down (`module.exports.default`).
 */
async function importConfigModule(file: string): Promise<{ default?: unknown }> {
  if (!/\.[mc]?ts$/.test(file)) return (await import(pathToFileURL(file).href)) as { default?: unknown };
  const { tsImport } = await import('tsx/esm/api');
  const mod = (await tsImport(pathToFileURL(file).href, import.meta.url)) as { default?: unknown };
  const inner = mod.default as { default?: unknown; __esModule?: unknown } | undefined;
  const commonJs = inner !== null && typeof inner === 'object' && 'default' in inner && (inner.__esModule === true || Object.keys(inner).length === 1);
  return commonJs ? { default: inner.default } : mod;
}

/** Fills defaults, then validates. Throws `ConfigError` naming the first wrong field. */
export function resolveConfig(input: ClusterConfigInput): ClusterConfig {
  if (input === null || typeof input !== 'object') throw new ConfigError('config', 'must be an object');
  knownKeys('', input, TOP_KEYS);
  if (input.cluster !== undefined) knownKeys('cluster', input.cluster, ['name']);
  if (input.limits !== undefined) knownKeys('limits', input.limits, LIMITS_KEYS);
  if (input.replication !== undefined) knownKeys('replication', input.replication, REPLICATION_KEYS);
  if (input.router !== undefined) knownKeys('router', input.router, ROUTER_KEYS);
  const nodes = resolveNodes(input.nodes);
  const nodeNames = new Set(nodes.map((n) => n.name));
  const domains = resolveDomains(input.domains);
  const placement = resolvePlacement(input.placement, domains, nodeNames);

  const limits = {
    maxPayloadBytes: input.limits?.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES,
    minSeqWaitMs: input.limits?.minSeqWaitMs ?? DEFAULT_MIN_SEQ_WAIT_MS,
    maxRecallLimit: input.limits?.maxRecallLimit ?? DEFAULT_MAX_RECALL_LIMIT,
    replicaMaxStaleMs: input.limits?.replicaMaxStaleMs ?? DEFAULT_REPLICA_MAX_STALE_MS,
  };
  positiveInt('limits.maxPayloadBytes', limits.maxPayloadBytes);
  if (limits.maxPayloadBytes > MAX_PAYLOAD_CEILING) {
    throw new ConfigError('limits.maxPayloadBytes', `must be at most ${MAX_PAYLOAD_CEILING} (the NATS max_payload)`);
  }
  positiveInt('limits.minSeqWaitMs', limits.minSeqWaitMs);
  positiveInt('limits.maxRecallLimit', limits.maxRecallLimit);
  if (!Number.isInteger(limits.replicaMaxStaleMs) || limits.replicaMaxStaleMs < 0) {
    throw new ConfigError('limits.replicaMaxStaleMs', `must be a non-negative integer (ms), got ${String(limits.replicaMaxStaleMs)}`);
  }

  const replication = {
    replicas: input.replication?.replicas ?? (nodes.length >= 3 ? 3 : 1),
    leaseMs: input.replication?.leaseMs ?? DEFAULT_LEASE_MS,
    heartbeatMs: input.replication?.heartbeatMs ?? DEFAULT_HEARTBEAT_MS,
  };
  positiveInt('replication.replicas', replication.replicas);
  if (replication.replicas > 5) throw new ConfigError('replication.replicas', 'JetStream allows at most 5 replicas');
  if (replication.replicas === 2) {
    // A replicated stream takes writes while a majority of its replicas answer: 2 of 2. Either Mini's loss stops the
    // domain, so R2 is less available than R1 on the same hardware and keeps no write a failover could not.
    throw new ConfigError(
      'replication.replicas',
      '2 is refused: a JetStream stream with 2 replicas takes writes only while both servers answer (a majority of 2 is 2), ' +
        'so losing either Mini stops the domain. Use 1 (no failover when the Mini holding the log is lost), or 3 to 5 with ' +
        'as many Minis (3 survives the loss of one)',
    );
  }
  if (replication.replicas > nodes.length) {
    throw new ConfigError('replication.replicas', `${replication.replicas} is more than the ${nodes.length} nodes (one nats-server each)`);
  }
  positiveInt('replication.leaseMs', replication.leaseMs);
  positiveInt('replication.heartbeatMs', replication.heartbeatMs);
  if (replication.heartbeatMs * 2 > replication.leaseMs) {
    throw new ConfigError('replication.heartbeatMs', `must be at most half of leaseMs (${replication.leaseMs})`);
  }

  const router = {
    fanoutMargin: input.router?.fanoutMargin ?? DEFAULT_FANOUT_MARGIN,
    fanoutFloor: input.router?.fanoutFloor ?? DEFAULT_FANOUT_FLOOR,
    rerouteMargin: input.router?.rerouteMargin ?? DEFAULT_REROUTE_MARGIN,
    shardTimeoutMs: input.router?.shardTimeoutMs ?? DEFAULT_SHARD_TIMEOUT_MS,
    ...(input.router?.classifierModule !== undefined ? { classifierModule: input.router.classifierModule } : {}),
  };
  unitInterval('router.fanoutMargin', router.fanoutMargin);
  unitInterval('router.fanoutFloor', router.fanoutFloor);
  unitInterval('router.rerouteMargin', router.rerouteMargin);
  positiveInt('router.shardTimeoutMs', router.shardTimeoutMs);

  const compaction = resolveCompaction('compaction', input.compaction, {
    everyEntries: DEFAULT_COMPACT_EVERY_ENTRIES,
    retainEntries: DEFAULT_COMPACT_RETAIN_ENTRIES,
    keepSnapshots: DEFAULT_KEEP_SNAPSHOTS,
    pruneInactiveDays: 0,
    pruneDecayedBelow: 0,
  });
  domains.forEach((d, i) => {
    if (d.compaction !== undefined) resolveCompaction(`domains[${i}].compaction`, d.compaction, compaction);
  });

  const dataDir = input.dataDir ?? DEFAULT_DATA_DIR;
  if (typeof dataDir !== 'string' || dataDir === '') throw new ConfigError('dataDir', 'must be a non-empty path');
  const clusterName = input.cluster?.name ?? DEFAULT_CLUSTER_NAME;
  if (typeof clusterName !== 'string' || !NODE_NAME.test(clusterName)) {
    throw new ConfigError('cluster.name', `"${String(clusterName)}" must match ${NODE_NAME}`);
  }

  return { cluster: { name: clusterName }, nodes, domains, placement, dataDir, limits, replication, router, compaction };
}

/**
 * One domain's compaction settings: its own fields over the cluster's (`false` on either disables the automatic
 * trigger; `shardmind compact` still works).
 *
 * @example
 * const { everyEntries } = compactionOf(config, 'email'); // 0: never automatically
 */
export function compactionOf(config: ClusterConfig, domain: string): Required<CompactionConfig> {
  const own = config.domains.find((d) => d.name === domain)?.compaction;
  return resolveCompaction(`compaction of ${domain}`, own, config.compaction);
}

/** Fills a compaction block from `base`, then validates it; `false` keeps `base` with the trigger off. */
function resolveCompaction(field: string, input: CompactionConfig | false | undefined, base: Required<CompactionConfig>): Required<CompactionConfig> {
  if (input === false) return { ...base, everyEntries: 0 };
  if (input === undefined) return base;
  if (input === null || typeof input !== 'object') throw new ConfigError(field, 'must be { everyEntries, retainEntries, keepSnapshots, pruneInactiveDays, pruneDecayedBelow } or false');
  knownKeys(field, input, COMPACTION_KEYS);
  const out = {
    everyEntries: input.everyEntries ?? base.everyEntries,
    retainEntries: input.retainEntries ?? base.retainEntries,
    keepSnapshots: input.keepSnapshots ?? base.keepSnapshots,
    pruneInactiveDays: input.pruneInactiveDays ?? base.pruneInactiveDays,
    pruneDecayedBelow: input.pruneDecayedBelow ?? base.pruneDecayedBelow,
  };
  if (typeof out.everyEntries !== 'number' || !Number.isInteger(out.everyEntries) || out.everyEntries < 0) {
    throw new ConfigError(`${field}.everyEntries`, `${String(out.everyEntries)} must be a non-negative integer (0 disables automatic compaction)`);
  }
  // At least the snapshot's own entry stays in the log: a replica installing it checks the next entry's chain
  // against it, and a leader checks its tail against the log before it claims.
  positiveInt(`${field}.retainEntries`, out.retainEntries);
  positiveInt(`${field}.keepSnapshots`, out.keepSnapshots);
  if (typeof out.pruneInactiveDays !== 'number' || !Number.isFinite(out.pruneInactiveDays) || out.pruneInactiveDays < 0) {
    throw new ConfigError(`${field}.pruneInactiveDays`, `${String(out.pruneInactiveDays)} must be a number of days ≥ 0 (0 keeps every closed fact)`);
  }
  if (typeof out.pruneDecayedBelow !== 'number' || !(out.pruneDecayedBelow >= 0 && out.pruneDecayedBelow < 1)) {
    throw new ConfigError(`${field}.pruneDecayedBelow`, `${String(out.pruneDecayedBelow)} must be a confidence in [0, 1) (0 keeps decayed facts)`);
  }
  return out;
}

/**
 * The same domains run on one node, every one led by it with no standbys: what `shardmind up` runs.
 *
 * @example
 * const embedded = singleNodeConfig(await loadConfig(), 'local', 'nats://127.0.0.1:4222');
 */
export function singleNodeConfig(config: ClusterConfig, nodeName: string, natsUrl: string): ClusterConfig {
  if (!NODE_NAME.test(nodeName)) throw new ConfigError('node', `"${nodeName}" must match ${NODE_NAME}`);
  const placement: Record<string, Required<PlacementConfig>> = {};
  for (const d of config.domains) placement[d.name] = { leader: nodeName, standbys: [] };
  return {
    ...config,
    nodes: [{ name: nodeName, nats: [natsUrl] }],
    placement,
    replication: { ...config.replication, replicas: 1 },
  };
}

/** The node config by name, or a ConfigError that lists the names there are. */
export function nodeByName(config: ClusterConfig, name: string): NodeConfig {
  const node = config.nodes.find((n) => n.name === name);
  if (!node) {
    throw new ConfigError('node', `"${name}" is not in nodes (${config.nodes.map((n) => n.name).join(', ')})`);
  }
  return node;
}

/** The domains a node leads or stands by for, with its role in each. */
export function placementsOf(config: ClusterConfig, node: string): { domain: DomainConfig; role: 'leader' | 'standby' }[] {
  const out: { domain: DomainConfig; role: 'leader' | 'standby' }[] = [];
  for (const domain of config.domains) {
    const p = config.placement[domain.name];
    if (p?.leader === node) out.push({ domain, role: 'leader' });
    else if (p?.standbys.includes(node)) out.push({ domain, role: 'standby' });
  }
  return out;
}

function resolveNodes(nodes: unknown): NodeConfig[] {
  if (!Array.isArray(nodes) || nodes.length === 0) throw new ConfigError('nodes', 'must be a non-empty list');
  const seen = new Set<string>();
  return nodes.map((n: NodeConfig, i) => {
    const at = `nodes[${i}]`;
    if (n === null || typeof n !== 'object') throw new ConfigError(at, 'must be an object');
    knownKeys(at, n, NODE_KEYS);
    if (typeof n.name !== 'string' || !NODE_NAME.test(n.name)) {
      throw new ConfigError(`${at}.name`, `"${String(n.name)}" must match ${NODE_NAME} (it is a subject token)`);
    }
    if (seen.has(n.name)) throw new ConfigError(`${at}.name`, `"${n.name}" appears twice`);
    seen.add(n.name);
    if (!Array.isArray(n.nats) || n.nats.length === 0) throw new ConfigError(`${at}.nats`, 'must list at least one URL');
    n.nats.forEach((url, j) => {
      if (typeof url !== 'string' || !/^(nats|tls|ws|wss):\/\/[^\s]+$/.test(url)) {
        throw new ConfigError(`${at}.nats[${j}]`, `"${String(url)}" is not a nats:// URL`);
      }
    });
    if (n.natsServer !== undefined) {
      if (n.natsServer === null || typeof n.natsServer !== 'object') throw new ConfigError(`${at}.natsServer`, 'must be { host, port, clusterPort, storeDir }');
      knownKeys(`${at}.natsServer`, n.natsServer, NATS_SERVER_KEYS);
      if (typeof n.natsServer.host !== 'string' || n.natsServer.host === '') {
        throw new ConfigError(`${at}.natsServer.host`, 'must be a host name or address');
      }
      if (n.natsServer.port !== undefined) port(`${at}.natsServer.port`, n.natsServer.port);
      if (n.natsServer.clusterPort !== undefined) port(`${at}.natsServer.clusterPort`, n.natsServer.clusterPort);
    }
    return n;
  });
}

function resolveDomains(domains: unknown): DomainConfig[] {
  if (!Array.isArray(domains) || domains.length === 0) throw new ConfigError('domains', 'must be a non-empty list');
  const seen = new Set<string>();
  return domains.map((d: DomainConfig, i) => {
    const at = `domains[${i}]`;
    if (d === null || typeof d !== 'object') throw new ConfigError(at, 'must be an object');
    knownKeys(at, d, DOMAIN_KEYS);
    if (typeof d.name !== 'string' || !DOMAIN_NAME.test(d.name)) {
      throw new ConfigError(`${at}.name`, `"${String(d.name)}" must match ${DOMAIN_NAME}`);
    }
    if (seen.has(d.name)) throw new ConfigError(`${at}.name`, `"${d.name}" appears twice`);
    seen.add(d.name);
    if (typeof d.description !== 'string') throw new ConfigError(`${at}.description`, 'must be a string');
    if (!Array.isArray(d.seeds) || d.seeds.some((s) => typeof s !== 'string')) {
      throw new ConfigError(`${at}.seeds`, 'must be a list of strings');
    }
    for (const [pred, spec] of Object.entries(d.predicates ?? {})) predicateSpec(`${at}.predicates.${pred}`, spec);
    const defaultPredicate = d.defaultPredicate ?? DEFAULT_PREDICATE;
    predicateSpec(`${at}.defaultPredicate`, defaultPredicate);
    return { ...d, defaultPredicate };
  });
}

function resolvePlacement(
  placement: unknown,
  domains: readonly DomainConfig[],
  nodeNames: ReadonlySet<string>,
): Record<string, Required<PlacementConfig>> {
  if (placement === null || typeof placement !== 'object') throw new ConfigError('placement', 'must be an object');
  const input = placement as Record<string, PlacementConfig>;
  const domainNames = new Set(domains.map((d) => d.name));
  for (const name of Object.keys(input)) {
    if (!domainNames.has(name)) throw new ConfigError(`placement.${name}`, `"${name}" is not in domains`);
  }
  const out: Record<string, Required<PlacementConfig>> = {};
  for (const d of domains) {
    const at = `placement.${d.name}`;
    const p = input[d.name];
    if (!p) throw new ConfigError(at, 'missing: every domain needs a leader node');
    if (typeof p !== 'object') throw new ConfigError(at, 'must be { leader, standbys }');
    knownKeys(at, p, ['leader', 'standbys']);
    if (typeof p.leader !== 'string' || !nodeNames.has(p.leader)) {
      throw new ConfigError(`${at}.leader`, `node "${String(p.leader)}" is not in nodes`);
    }
    const standbys = p.standbys ?? [];
    if (!Array.isArray(standbys)) throw new ConfigError(`${at}.standbys`, 'must be a list of node names');
    const seen = new Set([p.leader]);
    standbys.forEach((s, j) => {
      if (!nodeNames.has(s)) throw new ConfigError(`${at}.standbys[${j}]`, `node "${String(s)}" is not in nodes`);
      if (seen.has(s)) throw new ConfigError(`${at}.standbys[${j}]`, `node "${s}" is already placed for this domain`);
      seen.add(s);
    });
    out[d.name] = { leader: p.leader, standbys: [...standbys] };
  }
  return out;
}

function predicateSpec(field: string, spec: PredicateSpec): void {
  if (spec === null || typeof spec !== 'object') throw new ConfigError(field, 'must be { cardinality, halfLifeDays }');
  knownKeys(field, spec, ['cardinality', 'halfLifeDays']);
  if (spec.cardinality !== 'one' && spec.cardinality !== 'many') {
    throw new ConfigError(`${field}.cardinality`, `"${String(spec.cardinality)}" must be "one" or "many"`);
  }
  if (typeof spec.halfLifeDays !== 'number' || !(spec.halfLifeDays > 0) || !Number.isFinite(spec.halfLifeDays)) {
    throw new ConfigError(`${field}.halfLifeDays`, `${String(spec.halfLifeDays)} must be a positive number of days`);
  }
}

function positiveInt(field: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new ConfigError(field, `${String(v)} must be a positive integer`);
  }
}

function unitInterval(field: string, v: unknown): void {
  if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new ConfigError(field, `${String(v)} must be between 0 and 1`);
}

function port(field: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 65535) {
    throw new ConfigError(field, `${String(v)} must be a port number (1–65535)`);
  }
}

/*
 * The fields each block takes. A key not listed is refused, naming its path and the nearest known one: a misspelled
 * `replication.replica` or `compaction.everyEntry` was ignored and its default used, and a `.ts` config loaded
 * through tsx is not type-checked, so nothing else would say so (review session 11, finding 4).
 */
const TOP_KEYS = ['cluster', 'nodes', 'domains', 'placement', 'dataDir', 'limits', 'replication', 'router', 'compaction'] as const;
const NODE_KEYS = ['name', 'nats', 'natsServer'] as const;
const NATS_SERVER_KEYS = ['host', 'port', 'clusterPort', 'storeDir'] as const;
const DOMAIN_KEYS = ['name', 'description', 'seeds', 'predicates', 'defaultPredicate', 'compaction'] as const;
const LIMITS_KEYS = ['maxPayloadBytes', 'minSeqWaitMs', 'maxRecallLimit', 'replicaMaxStaleMs'] as const;
const REPLICATION_KEYS = ['replicas', 'leaseMs', 'heartbeatMs'] as const;
const ROUTER_KEYS = ['fanoutMargin', 'fanoutFloor', 'rerouteMargin', 'shardTimeoutMs', 'classifierModule'] as const;
const COMPACTION_KEYS = ['everyEntries', 'retainEntries', 'keepSnapshots', 'pruneInactiveDays', 'pruneDecayedBelow'] as const;

/** Refuses a key of `block` (at `field`, '' for the top level) that is not in `known`, with a did-you-mean. */
function knownKeys(field: string, block: unknown, known: readonly string[]): void {
  if (block === null || typeof block !== 'object' || Array.isArray(block)) {
    throw new ConfigError(field || 'config', `must be an object with ${known.join(', ')}`);
  }
  for (const key of Object.keys(block)) {
    if (known.includes(key)) continue;
    const near = nearest(key, known);
    throw new ConfigError(
      field ? `${field}.${key}` : key,
      `unknown field${near ? `; did you mean "${near}"?` : ''} (${field || 'the config'} takes ${known.join(', ')})`,
    );
  }
}

/** The known key closest to `key` when it is a plausible misspelling (case, a letter or two, a plural). */
function nearest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const [a, b] = [key.toLowerCase(), k.toLowerCase()];
    // A shortened or lengthened name (`halfLife` for `halfLifeDays`) is a near miss whatever the letters left out.
    const d = Math.min(a.length, b.length) >= 4 && (b.startsWith(a) || a.startsWith(b)) ? 1 : editDistance(a, b);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return bestDistance <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}
