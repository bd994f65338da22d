/** Every NATS subject, stream and bucket name shardmind uses, in one place. */

/** The router's public API (any Mini, queue group `sm-router`). */
export const memSubject = (op: string): string => `sm.mem.${op}`;
export const ROUTER_QUEUE = 'sm-router';

/** One shard directly: served by the shard's leader. */
export const shardSubject = (domain: string, op: string): string => `sm.shard.${domain}.${op}`;

/**
 * Replica reads of one shard: `recall`, `get`, `history`, answered by a replica caught up enough (followers and
 * the leader). `replicaSubject` reaches any of them (one queue group per domain: each request is answered once, by
 * a replica NATS picks at random — nats-server 2.9 does not prefer one on the publisher's server);
 * `replicaNodeSubject` reaches the replica on one node (no responders when that node holds none), which is how a
 * caller reads from its own Mini.
 */
export const replicaSubject = (domain: string, op: string): string => `sm.replica.${domain}.${op}`;
export const replicaNodeSubject = (domain: string, op: string, node: string): string => `sm.replica.${domain}.${op}.${node}`;
export const replicaQueue = (domain: string): string => `sm-replica-${domain}`;
/**
 * Set by a replica that passes a read it is too stale to answer to the leader (`sm.shard.<domain>.<op>`); its value
 * is the forwarding node. The leader's reply then says who served it, as a replica's does.
 */
export const REPLICA_FORWARD_HEADER = 'sm-replica-forwarded-by';

/** Control of one host. */
export const ctlSubject = (node: string, op: string): string => `sm.ctl.${node}.${op}`;

/** The shard's replicated write-ahead log. */
export const logStream = (domain: string): string => `SM_LOG_${domain.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`;
export const logSubject = (domain: string): string => `sm.log.${domain}`;

/**
 * A shard's snapshots (log compaction): JetStream Object Store bucket, one object per snapshot, replicated like the
 * log. The log below the newest snapshot's sequence may be purged; a replica that needs it bootstraps from here.
 */
export const snapshotBucket = (domain: string): string => `sm_snap_${domain}`;

/** Domain names are subject tokens and stream name parts: keep them to this. */
export const DOMAIN_NAME = /^[a-z][a-z0-9_]{0,31}$/;

/** A shard's change feed: what each commit changed, published by the leader (actors/change-feed.ts). */
export const eventSubject = (domain: string): string => `sm.evt.${domain}`;

/** A shard leader's heartbeat (core NATS, not stored): `{ v: 1, node, epoch, seq, at }`. */
export const heartbeatSubject = (domain: string): string => `sm.hb.${domain}`;

/** A host's wall clock (core NATS, not stored): `{ v: 1, node, at }`, every host's, every second (actors/clock-peers.ts). */
export const clockSubject = (node: string): string => `sm.clk.${node}`;

/** KV bucket of epoch claims: key `<domain>.<epoch>`, created once with `kv.create`, never updated or deleted. */
export const EPOCH_BUCKET = 'sm_epochs';
