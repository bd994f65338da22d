/**
 * The one place messages between actors pass: the host's commands to its shard actors (STOP, PROMOTE, HANDOFF)
 * and, later, failover and migration signals. Everything sent is counted and shown to observers, so a test or a
 * log line can see who told whom what (the role xstate's `system._relay` + `inspect` play inside one system).
 */
import type { ShardEvent } from './shard-machine.ts';

export interface RelayMessage {
  readonly from: string;
  readonly to: string;
  readonly event: ShardEvent;
}

export type RelayObserver = (m: RelayMessage, delivered: boolean) => void;

export class Relay {
  private readonly targets = new Map<string, (e: ShardEvent) => void>();
  private readonly observers = new Set<RelayObserver>();
  private readonly counts = new Map<string, number>();

  /** Makes `name` reachable; the returned function removes it. */
  register(name: string, deliver: (e: ShardEvent) => void): () => void {
    this.targets.set(name, deliver);
    return () => {
      if (this.targets.get(name) === deliver) this.targets.delete(name);
    };
  }

  /** Delivers `event` to `to`; false when nobody by that name is registered. */
  send(from: string, to: string, event: ShardEvent): boolean {
    const target = this.targets.get(to);
    const key = `${to}:${event.type}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    for (const o of this.observers) {
      try {
        o({ from, to, event }, target !== undefined);
      } catch {
        // An observer's bug must not stop a command.
      }
    }
    if (!target) return false;
    target(event);
    return true;
  }

  /** Sees every message; the returned function stops observing. */
  observe(observer: RelayObserver): () => void {
    this.observers.add(observer);
    return () => void this.observers.delete(observer);
  }

  /** Messages sent so far, by `<to>:<event type>`. */
  stats(): Record<string, number> {
    return Object.fromEntries(this.counts);
  }
}
