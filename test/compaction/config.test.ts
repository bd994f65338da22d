/** The `compaction` config: defaults, a domain's own settings over the cluster's, `false`, and errors naming the field. */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ConfigError,
  DEFAULT_COMPACT_EVERY_ENTRIES,
  DEFAULT_COMPACT_RETAIN_ENTRIES,
  DEFAULT_KEEP_SNAPSHOTS,
  compactionOf,
  resolveConfig,
  type ClusterConfigInput,
} from '../../config/index.ts';

const base: ClusterConfigInput = {
  nodes: [{ name: 'mini-1', nats: ['nats://127.0.0.1:4222'] }],
  domains: [
    { name: 'email', description: 'mail', seeds: [] },
    { name: 'files', description: 'docs', seeds: [] },
  ],
  placement: { email: { leader: 'mini-1' }, files: { leader: 'mini-1' } },
};

function fails(input: ClusterConfigInput, message: string): void {
  try {
    resolveConfig(input);
  } catch (err) {
    assert.instance(err, ConfigError);
    assert.is((err as Error).message, message);
    return;
  }
  assert.unreachable(`expected ConfigError "${message}"`);
}

test('compaction config - defaults apply to every domain', () => {
  const c = resolveConfig(base);
  const expected = {
    everyEntries: DEFAULT_COMPACT_EVERY_ENTRIES,
    retainEntries: DEFAULT_COMPACT_RETAIN_ENTRIES,
    keepSnapshots: DEFAULT_KEEP_SNAPSHOTS,
    // Pruning the memory itself is opt-in: by default every closed and every decayed fact is kept.
    pruneInactiveDays: 0,
    pruneDecayedBelow: 0,
  };
  assert.equal(c.compaction, expected);
  assert.equal(compactionOf(c, 'email'), expected);
  assert.ok(DEFAULT_COMPACT_EVERY_ENTRIES > 0 && DEFAULT_COMPACT_RETAIN_ENTRIES >= 1 && DEFAULT_KEEP_SNAPSHOTS >= 1);
});

test("compaction config - a domain's fields override the cluster's; false turns the trigger off only", () => {
  const c = resolveConfig({
    ...base,
    compaction: { everyEntries: 500, retainEntries: 20, pruneInactiveDays: 365 },
    domains: [
      { name: 'email', description: 'mail', seeds: [], compaction: { everyEntries: 50, pruneDecayedBelow: 0.01 } },
      { name: 'files', description: 'docs', seeds: [], compaction: false },
    ],
  });
  const pruning = { pruneInactiveDays: 365, pruneDecayedBelow: 0 };
  assert.equal(compactionOf(c, 'email'), { everyEntries: 50, retainEntries: 20, keepSnapshots: DEFAULT_KEEP_SNAPSHOTS, ...pruning, pruneDecayedBelow: 0.01 });
  assert.equal(compactionOf(c, 'files'), { everyEntries: 0, retainEntries: 20, keepSnapshots: DEFAULT_KEEP_SNAPSHOTS, ...pruning });
  assert.is(resolveConfig({ ...base, compaction: false }).compaction.everyEntries, 0);
  assert.is(resolveConfig({ ...base, compaction: { everyEntries: 0 } }).compaction.everyEntries, 0, '0 disables too');
});

test('compaction config - mistakes name the field', () => {
  fails({ ...base, compaction: { everyEntries: -1 } }, 'compaction.everyEntries: -1 must be a non-negative integer (0 disables automatic compaction)');
  fails({ ...base, compaction: { everyEntries: 1.5 } }, 'compaction.everyEntries: 1.5 must be a non-negative integer (0 disables automatic compaction)');
  fails({ ...base, compaction: { retainEntries: 0 } }, 'compaction.retainEntries: 0 must be a positive integer');
  fails({ ...base, compaction: { keepSnapshots: 0 } }, 'compaction.keepSnapshots: 0 must be a positive integer');
  fails({ ...base, compaction: 'often' as never }, 'compaction: must be { everyEntries, retainEntries, keepSnapshots, pruneInactiveDays, pruneDecayedBelow } or false');
  fails({ ...base, compaction: { pruneInactiveDays: -1 } }, 'compaction.pruneInactiveDays: -1 must be a number of days ≥ 0 (0 keeps every closed fact)');
  fails({ ...base, compaction: { pruneDecayedBelow: 1 } }, 'compaction.pruneDecayedBelow: 1 must be a confidence in [0, 1) (0 keeps decayed facts)');
  fails(
    { ...base, domains: [{ name: 'email', description: 'mail', seeds: [], compaction: { keepSnapshots: -2 } }, base.domains[1]!] },
    'domains[0].compaction.keepSnapshots: -2 must be a positive integer',
  );
});

test.run();
