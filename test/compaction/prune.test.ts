/**
 * The memory's own compaction (`prune`) on real host processes: `shardmind prune` makes the leader forget facts
 * superseded before now (`--inactive-days 0`) and facts decayed away (`--decayed-below`); the standby forgets the
 * same ones (equal digests); what is still believed stays recallable. A compaction with the config's
 * `pruneDecayedBelow` prunes before it snapshots. Bad input gets usage errors and clear codes, and sends nothing.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from '../../client/index.ts';
import { runCompact, runPrune, startNatsServer, type NatsServerProcess } from '../../cli/index.ts';
import type { ClusterConfigInput } from '../../config/index.ts';
import shipped from '../../cluster.config.ts';
import { startHosts, type HostCluster } from '../harness/hosts.ts';
import { digests, waitAllApplied } from '../failover/fault-kit.ts';

const NODES = ['mini-1', 'mini-2'];
const DAY = 86_400_000;

function config(url: string): ClusterConfigInput {
  return {
    ...shipped,
    cluster: { name: 'prune-test' },
    nodes: NODES.map((name) => ({ name, nats: [url] })),
    placement: Object.fromEntries(shipped.domains.map((d) => [d.name, { leader: 'mini-1', standbys: ['mini-2'] }])),
    replication: { replicas: 1, leaseMs: 1500, heartbeatMs: 250 },
    compaction: { everyEntries: 0, retainEntries: 1, keepSnapshots: 1, pruneDecayedBelow: 0.05 },
  };
}

async function cli(run: typeof runPrune, args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await run(args, { out: (s) => void (out += s), err: (s) => void (err += s) });
  return { code, out, err };
}

test('prune - the leader and its standby forget what was closed or decayed away; compaction prunes first when configured', async () => {
  let nats: NatsServerProcess | undefined;
  let hosts: HostCluster | undefined;
  try {
    nats = await startNatsServer();
    hosts = await startHosts({ config: config(nats.url) });
    const url = nats.url;
    const memory = await connect({ servers: url, agent: 'prune-test', direct: true });
    const target = ['--servers', url, '--nodes', NODES.join(',')];
    try {
      const pdf = await memory.remember(
        { text: 'The user prefers PDF attachments over links', subject: 'user', predicate: 'prefers_attachment_format', object: 'pdf' },
        { domain: 'email' },
      );
      const link = await memory.remember(
        { text: 'The user now prefers links to shared files', subject: 'user', predicate: 'prefers_attachment_format', object: 'link' },
        { domain: 'email' },
      );
      assert.equal(link.superseded, [pdf.factId]);
      const tired = await memory.remember(
        { text: 'The user said they were tired', subject: 'user', predicate: 'mood', halfLifeDays: 1, observedAt: new Date(Date.now() - 60 * DAY) },
        { domain: 'email' },
      );
      const bob = await memory.remember({ text: 'Bob signs his emails as Robert', subject: 'bob', predicate: 'signs_emails_as', object: 'Robert' }, { domain: 'email' });

      // Bad input: usage errors (exit 2) before anything is sent; an unknown domain is refused by name.
      for (const [args, why] of [
        [['email', ...target], /say what to prune/],
        [['email', '--inactive-days=-3', ...target], /--inactive-days: "-3" must be a number of days ≥ 0/],
        [['email', '--decayed-below', '1', ...target], /--decayed-below: "1" must be a confidence in \(0, 1\)/],
        [['no such', '--inactive-days', '1', ...target], /<domain>: "no such" must match/],
      ] as const) {
        const r = await cli(runPrune, [...args]);
        assert.is(r.code, 2, `${args.join(' ')}: ${r.err}`);
        assert.match(r.err, why);
      }
      assert.is((await memory.get(pdf.factId))?.status, 'superseded', 'nothing was pruned by bad input');

      const closed = await cli(runPrune, ['email', '--inactive-days', '0', '--json', ...target]);
      assert.is(closed.code, 0, closed.err);
      const report = JSON.parse(closed.out) as { node: string; pruned: number; ranges: number };
      assert.equal([report.node, report.pruned, report.ranges], ['mini-1', 1, 1]);
      assert.equal([(await memory.get(pdf.factId))?.status, (await memory.get(pdf.factId))?.text], ['forgotten', '']);
      assert.is((await memory.get(tired.factId))?.status, 'active', 'decayed facts stay without --decayed-below');

      const decayed = await cli(runPrune, ['email', '--decayed-below', '0.05', ...target]);
      assert.is(decayed.code, 0, decayed.err);
      assert.match(decayed.out, /^email: mini-1 forgot 1 fact \(/);
      assert.is((await memory.get(tired.factId))?.status, 'forgotten');
      assert.is((await memory.get(link.factId))?.status, 'active', 'what is believed now stays');
      assert.is((await memory.get(bob.factId))?.text, 'Bob signs his emails as Robert');
      const found = await memory.recall({ query: 'attachments links', domain: 'email' });
      assert.equal(found.facts.map((f) => f.text), ['The user now prefers links to shared files']);

      // The standby applied the same prune entries: the same content.
      const nc = await hosts.connection();
      await waitAllApplied(nc, NODES, 20_000, 'email');
      const [d1, d2] = await digests(nc, NODES, 'email');
      assert.is(d1!.digest, d2!.digest, 'leader and standby forgot the same facts');

      // The config's pruneDecayedBelow: a compaction prunes first, then snapshots what remains.
      const faded = await memory.remember(
        { text: 'The user hummed a song once', subject: 'user', predicate: 'hummed', halfLifeDays: 1, observedAt: new Date(Date.now() - 90 * DAY) },
        { domain: 'email' },
      );
      const compacted = await cli(runCompact, ['email', ...target]);
      assert.is(compacted.code, 0, compacted.err);
      assert.is((await memory.get(faded.factId))?.status, 'forgotten', 'compaction pruned the decayed fact first');

      const unknown = await cli(runPrune, ['sales', '--inactive-days', '1', '--config', hosts.configPath]);
      assert.is(unknown.code, 1);
      assert.match(unknown.err, /^prune failed: UNKNOWN_DOMAIN: /);
    } finally {
      await memory.close();
    }
  } finally {
    await hosts?.stop();
    await nats?.destroy();
  }
});

test.run();
