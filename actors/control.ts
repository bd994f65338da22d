/**
 * A host's control subjects: `sm.ctl.<node>.status` (every placed shard: role, machine state, appliedSeq, epoch,
 * lag) and `sm.ctl.<node>.ping`. JSON or msgpack like every other subject. Issue 5 adds `promote`/`handoff` here.
 */
import type { NatsConnection, Subscription } from 'nats';
import { ctlSubject, errorReply } from '../protocol/index.ts';
import { respond } from './respond.ts';
import type { ShardStatus } from './shard-actor.ts';

/** What `sm.ctl.<node>.status` answers. */
export interface HostStatusReply {
  readonly v: 1;
  readonly node: string;
  readonly pid: number;
  readonly startedAt: string;
  readonly shards: readonly ShardStatus[];
}

export interface PingReply {
  readonly v: 1;
  readonly node: string;
  readonly at: string;
}

export interface ControlOptions {
  readonly node: string;
  status(): HostStatusReply;
  now(): number;
}

/** Subscribes the control subjects; unsubscribe the results to stop. */
export function serveControl(nc: NatsConnection, o: ControlOptions): Subscription[] {
  const serve = (op: string, answer: () => unknown): Subscription =>
    nc.subscribe(ctlSubject(o.node, op), {
      callback: (err, msg) => {
        if (err || !msg.reply) return;
        let body: unknown;
        try {
          body = answer();
        } catch (e) {
          body = errorReply(e);
        }
        respond(msg, body);
      },
    });
  return [
    serve('status', () => o.status()),
    serve('ping', (): PingReply => ({ v: 1, node: o.node, at: new Date(o.now()).toISOString() })),
  ];
}
