/**
 * Answers `sm.shard.<domain>.<op>` for domains the cluster config does not have, with UNKNOWN_DOMAIN, instead of
 * leaving the caller to time out on "no responders". Every host runs it in one queue group, so exactly one answers;
 * requests for known domains are ignored here (their leader answers).
 */
import type { NatsConnection, Subscription } from 'nats';
import { ErrorCode, ShardmindError, errorReply } from '../protocol/index.ts';
import { respond } from './respond.ts';

export const UNKNOWN_DOMAIN_QUEUE = 'sm-shard-guard';

export function serveUnknownDomains(nc: NatsConnection, known: readonly string[]): Subscription {
  const names = new Set(known);
  return nc.subscribe('sm.shard.*.*', {
    queue: UNKNOWN_DOMAIN_QUEUE,
    callback: (err, msg) => {
      if (err || !msg.reply) return;
      const domain = msg.subject.split('.')[2] ?? '';
      if (names.has(domain)) return;
      const e = new ShardmindError(
        ErrorCode.UNKNOWN_DOMAIN,
        `domain "${domain}" is not in the cluster config (domains: ${[...names].join(', ')})`,
      );
      respond(msg, errorReply(e));
    },
  });
}
