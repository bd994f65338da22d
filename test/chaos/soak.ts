/**
 * The randomized fault soak from the command line:
 *   node --import tsx test/chaos/soak.ts --seconds 600 --seed 1234 [--keep <dir>] [--runs N] [--host-faults 2]
 * Without `--seed` a seed is drawn and printed. `--runs N` runs N soaks with seeds seed, seed+1, …. Prints one
 * `SOAK {json}` line per run (seed, faults, writes, troubles, slow replicas, violations) and exits 1 when any run
 * found a violation; with `--keep`, the data, host logs and event log of a run that failed, or had troubles or slow
 * replicas, are copied under that folder. `--host-faults 2` lets two hosts
 * be down or paused at once (one host then leads both domains).
 */
import { reproduceCommand, runSoak } from './scenario.ts';
import { describeSlow } from './state-watch.ts';

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function intFlag(name: string, fallback: number): number {
  const raw = flag(name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name}: "${raw}" must be a whole number ≥ 0`);
  return n;
}

const seconds = intFlag('seconds', 120);
const firstSeed = intFlag('seed', Math.floor(Math.random() * 1_000_000));
const runs = Math.max(1, intFlag('runs', 1));
const keepDir = flag('keep');
const maxHostFaults = Math.max(1, intFlag('host-faults', 1));
let failed = 0;
for (let i = 0; i < runs; i++) {
  const seed = firstSeed + i;
  const r = await runSoak({ seed, seconds, maxHostFaults, ...(keepDir ? { keepDir } : {}) });
  process.stdout.write(
    `SOAK ${JSON.stringify({ seed, seconds, maxHostFaults, wallMs: r.wallMs, faults: r.faults, troubles: r.troubles, slow: r.slow.map(describeSlow), writes: r.writes, reads: r.reads, tails: r.tails, logAudit: r.logAudit, violations: r.violations.length, keptIn: r.keptIn })}\n`,
  );
  if (r.violations.length > 0) failed++;
  for (const v of r.violations.slice(0, 40)) process.stdout.write(`  ${v.check}: ${v.detail.split('\n')[0]}\n`);
  for (const t of r.troubles) process.stdout.write(`  trouble: ${t}\n`);
  for (const s of r.slow) process.stdout.write(`  slow: ${describeSlow(s)}\n`);
  if (r.violations.length > 0 || r.troubles.length > 0 || r.slow.length > 0) {
    process.stdout.write(`  reproduce: ${reproduceCommand({ seed, seconds, maxHostFaults })}${r.keptIn ? ` (kept in ${r.keptIn})` : ''}\n`);
  }
}
process.stdout.write(`${runs - failed} of ${runs} soak(s) clean (seeds ${firstSeed}..${firstSeed + runs - 1})\n`);
process.exit(failed > 0 ? 1 : 0);
