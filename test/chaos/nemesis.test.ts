/**
 * The randomized fault soak (`scenario.ts`) with a fixed seed and 40 s of faults, as CI runs it: host processes
 * killed and paused, nats-servers killed and paused, domains migrated, while four writers remember and read their
 * writes back; then healed and checked (every acknowledged write on every replica, equal digests, each opId applied
 * once, the `one` predicate's history the same everywhere). A failure prints the seed and the command that replays
 * its plan; longer runs: `node --import tsx test/chaos/soak.ts --seconds 600 --seed <n>`.
 */
// test-runner: alone (its faults are timed, and it loads the machine for a minute: run by itself, test/run.ts)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { figures } from '../failover/fault-kit.ts';
import { reproduceCommand, runSoak } from './scenario.ts';
import { describeSlow } from './state-watch.ts';

const SEED = 20261125;
const SECONDS = 40;

test('nemesis - under random kills, pauses and migrations every acknowledged write survives on every replica', async () => {
  const r = await runSoak({ seed: SEED, seconds: SECONDS, ...(process.env['SM_KEEP_FAILED_DATA'] ? { keepDir: process.env['SM_KEEP_FAILED_DATA'] } : {}) });
  figures('chaos-nemesis', { seed: r.seed, seconds: r.seconds, wallMs: r.wallMs, faults: r.faults, troubles: r.troubles, slow: r.slow.map(describeSlow), writes: r.writes, reads: r.reads, tails: r.tails, logAudit: r.logAudit, violations: r.violations.length });
  const replay = `seed ${SEED}; replay: ${reproduceCommand({ seed: SEED, seconds: SECONDS })}`;
  assert.equal(r.violations, [], `violations (${replay})`);
  const kinds = Object.values(r.faults).filter((n) => n > 0).length;
  const total = Object.values(r.faults).reduce((a, b) => a + b, 0);
  // The kinds are drawn from the seed, but one is skipped when its slot is taken, which depends on the box's timing.
  assert.ok(total >= 5 && kinds >= 2, `the nemesis injected ${total} faults of ${kinds} kinds: ${JSON.stringify(r.faults)} (${replay})`);
  assert.ok(r.writes.acknowledged >= 300, `only ${r.writes.acknowledged} writes were acknowledged (${replay})`);
  assert.is(r.writes.ackedChecked, r.writes.acknowledged, 'every acknowledged write was looked for on every replica');
  assert.ok((r.logAudit?.read ?? 0) >= 500, `the live log audit read ${r.logAudit?.read ?? 0} entries (${replay})`);
  assert.ok(r.reads.checked >= 50, `only ${r.reads.checked} read-your-writes reads answered (${replay})`);
});

test.run();
