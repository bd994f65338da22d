/** The command line, and the nats-server launcher that `up`, tests and benchmarks share. */
export type { NatsServerConfigOptions, StartNatsOptions } from './nats-server.ts';
export {
  natsServerConfig,
  natsServerInstallHint,
  findNatsServer,
  freePort,
  NatsServerProcess,
  startNatsServer,
  NatsCluster,
  startNatsCluster,
  waitForJetStream,
} from './nats-server.ts';
export type { Tether } from './tether.ts';
export { tether, DEFAULT_TETHER_GRACE_MS } from './tether.ts';
// Operator commands over the control protocol (issue 5).
export type { ShardStatusWire, HostStatusWire, NodeStatus, DomainView } from './control-client.ts';
export type { StatusRow, Io } from './status.ts';
export type { MigrateOptions, MigrateReport, MigrateProgress } from './migrate.ts';
export type { PlanStep } from './apply.ts';
export type { NatsServerPlan } from './nats-config.ts';
export { ctlRequest, clusterStatus, domainViews } from './control-client.ts';
export { runStatus, statusRows, renderStatus, configDriftWarning, clockWarning, logReplicaWarning, streamBounds, streamTails, statusCommand } from './status.ts';
export type { LogBounds } from './status.ts';
export { runMigrate, migrateShard, renderProgress, migrateCommand } from './migrate.ts';
export type { CompactResult, CompactOptions } from './compact.ts';
export { runCompact, compactDomain, compactCommand } from './compact.ts';
// One domain's memory as one file, taken live, and put back into a domain that holds nothing (decisions §85).
export type { BackupResult, BackupDomainOptions } from './backup.ts';
export type { RestoreOptions, RestoreResult } from './restore.ts';
export type { BackupHeader, VerifiedBackup } from './backup-file.ts';
export { runBackup, backupDomain, backupCommand } from './backup.ts';
export { runRestore, restoreBackup, restoreCommand } from './restore.ts';
export { readBackupHeader, verifyBackupFile, writeBackupFile, BACKUP_MAGIC } from './backup-file.ts';
export { runPrune, pruneDomain, pruneCommand } from './prune.ts';
export type { PruneResult, PruneDomainOptions } from './prune.ts';
export { runRemember, runRecall, runHistory, runForget, rememberCommand, recallCommand, historyCommand, forgetCommand } from './memory.ts';
export { runApply, planPlacement, renderPlan, executePlan, applyCommand } from './apply.ts';
export { exposureWarnings, runNatsConfig, natsConfigFor, natsServerPlan, natsConfigCommand } from './nats-config.ts';
export { authorizationBlock, natsCredentialsFromEnv, PASSWORD_ENV, USER_ENV, USER_PASSWORD_ENV, ROLE_PERMISSIONS, ROUTE_USER, ROUTE_PASSWORD_ENV, routeAuthorizationBlock, routeUrlWithLogin } from './nats-auth.ts';
export type { NatsRole } from './nats-auth.ts';
export type { TlsFiles } from './nats-tls.ts';
export { CA_ENV, TLS_FILES, clientTlsBlock, makeCertificates, natsConnectOptionsFromEnv, natsTlsFromEnv, routeTlsBlock, tlsFilesIn } from './nats-tls.ts';
export { runMcp, McpServer, MCP_TOOLS, MCP_PROTOCOL_VERSIONS, mcpCommand } from './mcp.ts';
export { AGENT_LOGIN_RULE, PASSWORD_RULE, agentLoginPermissions, agentPasswordEnv, parseAgentLogins } from './nats-auth.ts';
