// test-runner: alone (measures: run by itself, test/run.ts)
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { connect } from 'nats';
import { startNatsServer, waitForJetStream } from '../../cli/index.ts';
import { Cleanup } from '../../bench/cleanup.ts';
import { QUICK, type BenchContext } from '../../bench/context.ts';
import { startBenchHost } from '../../bench/host.ts';
import { measureShardmindLostWrites, shardmindTarget } from '../../bench/shardmind.ts';
import { queryAt, queryTextAt } from '../../bench/workload.ts';

test('bench workload - the recall loops\' query text is queryAt\'s, made without its words array', () => {
  for (const stored of [1, 300, 10_000, 1_000_000]) {
    for (let i = 0; i < 2_000; i++) assert.is(queryTextAt(i, stored), queryAt(i, stored).text, `query ${i} of ${stored}`);
  }
});

test('bench shardmind - a host child process serves the workload and keeps every acknowledged write across a restart', async () => {
  const cleanup = new Cleanup();
  try {
    const nats = await startNatsServer({ name: 'bench-test' });
    cleanup.add('stop nats', () => nats.destroy());
    const nc = await connect({ servers: nats.url, noEcho: true });
    cleanup.add('close nc', () => nc.close());
    await waitForJetStream(nc);
    const ctx: BenchContext = {
      natsUrl: nats.url,
      natsPid: nats.pid!,
      nc,
      cleanup,
      budgets: { ...QUICK, concurrentWrites: 20 },
      quick: true,
      log: () => undefined,
    };
    const host = await startBenchHost(ctx);
    const target = shardmindTarget(nc, { router: false, processes: () => ({ host: host.pid }) });
    await target.preload(0, 300);
    const recall = target.ops.find((o) => o.name === 'recall_direct')!;
    const remember = target.ops.find((o) => o.name === 'remember_direct')!;
    let found = 0;
    for (let i = 0; i < 20; i++) found += (await recall.run(i, 300)) > 0 ? 1 : 0;
    assert.is(found, 20, 'every query finds the fact its words came from');
    // Through the SDK, 20 at once (they travel as recall_batch requests): the same facts found.
    const recallSdk = target.ops.find((o) => o.name === 'recall_sdk')!;
    const counts = await Promise.all(Array.from({ length: 20 }, (_, i) => recallSdk.run(i, 300)));
    assert.equal(counts, await Promise.all(Array.from({ length: 20 }, (_, i) => recall.run(i, 300))));
    assert.is(await remember.run(5_000_000, 300), 1);
    const lost = await measureShardmindLostWrites(ctx, () => host.restart());
    assert.is(lost.attempted, 40);
    assert.is(lost.acknowledged, 40);
    assert.is(lost.present, 40);
    assert.is(lost.lost, 0);
    await host.stop();
    await target.close();
  } finally {
    await cleanup.run();
  }
});

test.run();
