/** Every NATS subject, stream and bucket name shardmind uses, in one place. */

/** The router's public API (any Mini, queue group `sm-router`). */
export const memSubject = (op: string): string => `sm.mem.${op}`;
export const ROUTER_QUEUE = 'sm-router';

/** One shard directly: served by the shard's leader. */
export const shardSubject = (domain: string, op: string): string => `sm.shard.${domain}.${op}`;

/** Control of one host. */
export const ctlSubject = (node: string, op: string): string => `sm.ctl.${node}.${op}`;

/** The shard's replicated write-ahead log. */
export const logStream = (domain: string): string => `SM_LOG_${domain.toUpperCase().replace(/[^A-Z0-9_]/g, '_')}`;
export const logSubject = (domain: string): string => `sm.log.${domain}`;

/** Domain names are subject tokens and stream name parts: keep them to this. */
export const DOMAIN_NAME = /^[a-z][a-z0-9_]{0,31}$/;

/** A shard leader's heartbeat (core NATS, not stored): `{ v: 1, node, epoch, seq, at }`. */
export const heartbeatSubject = (domain: string): string => `sm.hb.${domain}`;

/** KV bucket of epoch claims: key `<domain>.<epoch>`, created once with `kv.create`, never updated or deleted. */
export const EPOCH_BUCKET = 'sm_epochs';
