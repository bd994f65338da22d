/**
 * What a valid config may still get wrong in a way the operator would not guess: settings that load and run but do
 * not give what they seem to promise. `shardmind host`, `up`, `apply` and `status` print these when they start (they
 * are not refusals: each has a legitimate use, said in its text), and docs/decisions.md §59 says why each is a
 * warning and not an error.
 */
import { compactionOf } from './load.ts';
import type { ClusterConfig } from './types.ts';

/**
 * One line per surprise, empty when there is none:
 * - a domain with a standby on another Mini (another NATS server) while its log has one replica: the log lives on
 *   one nats-server, so losing that Mini loses the log's only copy until it returns, and the standby cannot take
 *   over (it has no log to continue from). The standby still covers a host process that crashes or restarts.
 * - pruning configured for a domain whose automatic compaction is off: the prune runs before each compaction, so
 *   only a `shardmind compact` run by hand prunes.
 *
 * @example
 * for (const line of configWarnings(config)) log(`WARNING: ${line}`);
 */
export function configWarnings(config: ClusterConfig): string[] {
  const out: string[] = [];
  const ownServer = new Map(config.nodes.map((n) => [n.name, n.nats[0]]));
  for (const domain of config.domains) {
    const placed = config.placement[domain.name];
    if (!placed) continue;
    const elsewhere = placed.standbys.filter((s) => ownServer.get(s) !== ownServer.get(placed.leader));
    if (config.replication.replicas === 1 && elsewhere.length > 0) {
      out.push(
        `domain ${domain.name} has a standby on ${elsewhere.join(', ')} but its log has 1 replica (replication.replicas ` +
          `is 1${config.nodes.length < 3 ? ', the default below 3 nodes' : ''}): if the Mini holding the log is lost, ` +
          `failover cannot keep acknowledged writes and the standby cannot take over; it covers a crashed or restarted ` +
          `host only. For failover across Minis run 3 and set replication.replicas to 3.`,
      );
    }
    const c = compactionOf(config, domain.name);
    if (c.everyEntries === 0 && (c.pruneInactiveDays > 0 || c.pruneDecayedBelow > 0)) {
      const what = [
        ...(c.pruneInactiveDays > 0 ? [`pruneInactiveDays ${c.pruneInactiveDays}`] : []),
        ...(c.pruneDecayedBelow > 0 ? [`pruneDecayedBelow ${c.pruneDecayedBelow}`] : []),
      ].join(' and ');
      out.push(
        `domain ${domain.name}: compaction ${what} runs only before a compaction, and its automatic compaction is off ` +
          `(everyEntries 0): only \`shardmind compact ${domain.name}\` run by hand prunes. Set everyEntries, or run ` +
          `\`shardmind prune ${domain.name}\` on a schedule.`,
      );
    }
  }
  return out;
}
