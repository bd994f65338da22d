/**
 * `migrate` under continuous load from 4 writers: leadership moves mini-1 → mini-2 → mini-3 with zero errors
 * surfaced to clients and zero lost writes. Reports each migration's gap (hosts, command, probe client) and the
 * p99 latency of client writes that overlapped a hand-off (target ≤ 250 ms).
 */
// test-runner: alone (asserts a write p99 during migrations: run by itself, test/run.ts)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { type MigrateReport, migrateShard } from '../../cli/index.ts';
import {
  DOMAIN,
  NODES,
  eventually,
  figures,
  leaderOf,
  missingAcks,
  percentile,
  withFaultCluster,
} from './fault-kit.ts';

test('migrate under load - no client error, no lost write, the gap stays small', async () => {
  await withFaultCluster(async (cluster, load) => {
    const { nc, nats } = cluster;
    await eventually('a leader of email', () => leaderOf(nc));
    const writers = await load();
    await writers.waitForAcks(100);
    const jsm = await nc.jetstreamManager({ checkAPI: false });
    const reports: MigrateReport[] = [];
    const windows: [number, number][] = [];
    for (const to of ['mini-2', 'mini-3', 'mini-1']) {
      const started = Date.now();
      const r = await migrateShard(nc, jsm, { domain: DOMAIN, to, nodes: NODES, timeoutMs: 30_000 });
      windows.push([started, Date.now()]);
      reports.push(r);
      const now = await leaderOf(nc);
      assert.is(now?.node, to, `${to} leads after the migration`);
      await writers.waitForAcks(100);
    }
    await writers.stop();
    const overlapping = writers.acks.filter((a) => windows.some(([s, e]) => a.ackedAt >= s && a.startedAt <= e));
    const latencies = overlapping.map((a) => a.ackedAt - a.startedAt);
    const missing = await missingAcks(nats.urls, writers.acks);
    const p99 = percentile(latencies, 99);
    figures('migrate-under-load', {
      migrations: reports.map((r) => ({
        from: r.from,
        to: r.to,
        epoch: r.epoch,
        gapHostMs: r.gapHostMs,
        gapCommandMs: r.gapCommandMs,
        gapProbeMs: r.gapProbeMs,
        probeErrors: r.probeErrors,
      })),
      writeLatencyDuringMigrationP50Ms: percentile(latencies, 50),
      writeLatencyDuringMigrationP99Ms: p99,
      writeLatencyDuringMigrationMaxMs: Math.max(0, ...latencies),
      probeGapMaxMs: Math.max(0, ...reports.map((r) => r.gapProbeMs ?? 0)),
      // Writes that took over 100 ms: which migration, when relative to its start, how long.
      slowWrites: overlapping
        .filter((a) => a.ackedAt - a.startedAt > 100)
        .map((a) => {
          const i = windows.findIndex(([s, e]) => a.ackedAt >= s && a.startedAt <= e);
          return { migration: i, startedAfterMs: a.startedAt - windows[i]![0], tookMs: a.ackedAt - a.startedAt, writer: a.writer };
        }),
      acknowledged: writers.acks.length,
      clientErrors: writers.errors.length,
      clientRetries: writers.retryCodes(),
      lostAcknowledged: missing.length,
    });
    assert.equal(writers.errors, [], 'no error reached a client');
    assert.equal(missing, [], 'no acknowledged write is lost');
    assert.ok(p99 <= 250, `client write p99 during migrations ${p99} ms is over the 250 ms target`);
  });
});

test.run();
