/** The host and its shard actors: shards run over NATS, with a fenced, pipelined write path into JetStream. */
export type { HostOptions, HostService, HostServiceContext, StartHostService } from './host.ts';
export type { Clock } from './clock.ts';
export type { HostStatusReply, PingReply, PruneOptions } from './control.ts';
export type { RelayMessage, RelayObserver } from './relay.ts';
export type { ShardActorOptions, ShardStatus, OpenStore, PruneReport, CompactionSettings } from './shard-actor.ts';
export type { ShardEvent, ShardState, ShardRuntime, ShardContext, ShardMachineInput } from './shard-machine.ts';
export type { PipelineBreak, WritePipelineOptions } from './write-pipeline.ts';
export type { LogRecord, LogReadOptions } from './log-stream.ts';
export type { Sighting } from './leader-sightings.ts';
// Log compaction by snapshot: the leader's compaction, the snapshot bucket, bootstrap of a replica from it.
export type { CompactReport, CompactOptions } from './compaction.ts';
export type { SnapshotMeta, StoredSnapshot } from './snapshot-bucket.ts';
export type { StoreFacts } from './snapshot-file.ts';
export { compactShard } from './compaction.ts';
export type { BackupReport } from './backup.ts';
export { backupBucket, BACKUP_BUCKET_REPLICAS } from './backup.ts';
export { SnapshotBucket, snapshotName } from './snapshot-bucket.ts';
export { copyStore, inspectStoreCopy, StoreCopyError, DATA_FILE } from './snapshot-file.ts';
export { installNewestSnapshot, clearInstallLeftovers, SnapshotFormatError } from './snapshot-install.ts';
export { CompactionTrigger } from './compaction-trigger.ts';
export { Host, shardAddress } from './host.ts';
export { systemClock } from './clock.ts';
export { Relay } from './relay.ts';
export { ShardActor, PRUNE_ENTRY_SPAN, StoreWriteError } from './shard-actor.ts';
export { shardMachine } from './shard-machine.ts';
export { WritePipeline, APPLY_BATCH, GROUP_WHEN_IN_FLIGHT, MAX_GROUP_ENTRIES, MAX_GROUP_BYTES } from './write-pipeline.ts';
export {
  ensureLogStream,
  logTail,
  logBounds,
  LogCompactedError,
  LogTailLostError,
  LogHistoryReplacedError,
  readLog,
  apiErrorCode,
  WRONG_LAST_SEQUENCE,
  DUPLICATE_WINDOW_MS,
} from './log-stream.ts';
export { encodeEntry, encodeBatch, decodeEntry, entriesOf, entryHash, PREV_HEADER } from './log-codec.ts';
// Log levels: what each build understands, the halt of a replica that meets more, the leader's census of its replicas.
export type { ReplicaLevelsOptions, ReplicaLevelsStatus } from './replica-levels.ts';
export {
  LOG_LEVEL,
  LEVEL_HEADER,
  SIMULATED_LEVEL_ENV,
  RESOLVED_SPEC_LEVEL,
  STAMPED_LEVEL,
  stampLevel,
  appendLevel,
  bodyLevel,
  entryLevel,
  parseLevelHeader,
  hostLogLevel,
  NeedsUpgradeError,
} from './log-level.ts';
export { ReplicaLevels, advertisedLevel } from './replica-levels.ts';
export { PredicateSpecs, specResolver } from './predicate-specs.ts';
export { SHARD_GUARD_QUEUE } from './shard-guard.ts';
export { LeaderSightings } from './leader-sightings.ts';
// Failover (issue 5): leases, heartbeats, epoch claims, and the per-shard seam the shard actor calls.
export type { TimerClock, TimerHandle } from './timers.ts';
export type { LeaseWatcherOptions } from './lease.ts';
export type { Heartbeat, HeartbeatPublisherOptions, HeartbeatMonitorOptions } from './heartbeat.ts';
export type { EpochClaim } from './epoch.ts';
export type { ShardFailoverOptions, FailoverStatus } from './failover.ts';
export { systemTimerClock, ManualClock } from './timers.ts';
export { LeaderLease, LeaseWatcher, standbyRank } from './lease.ts';
export { HeartbeatPublisher, HeartbeatMonitor, parseHeartbeat } from './heartbeat.ts';
export { EpochRegistry, epochKey } from './epoch.ts';
export { ShardFailover } from './failover.ts';
export { ClockPeers, CLOCK_SKEW_BOUND_MS, judgeClock, describeOffset } from './clock-peers.ts';
export type { ClockReading } from './clock-peers.ts';
