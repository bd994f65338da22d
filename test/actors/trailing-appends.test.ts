/**
 * A deposed leader's appends still in flight when a rival appends must not land behind the rival's message. With
 * group commit off, each write is its own append, each expecting the one before it: when a rival takes the next
 * sequence, the first is refused (wrong last sequence) and the second expects exactly the rival's sequence. It used
 * to land there (found by the chaos soak: a deposed leader's write after the new leader's epoch marker, which deposed
 * the new leader and broke the log's Sm-Prev chain; decisions §75); the appender now also expects the previous
 * append's message id, so every write behind the refused one is refused too and the log holds only the rival's.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'nats';
import { startNatsCluster, waitForJetStream } from '../../cli/index.ts';
import { encodeEntry, ensureLogStream, WritePipeline, type PipelineBreak } from '../../actors/index.ts';
import { logStream, logSubject, ShardmindError } from '../../protocol/index.ts';
import { openShardStore, type AssertEntry } from '../../shards/index.ts';

function assertEntry(opId: string, text: string): AssertEntry {
  return { v: 1, op: 'assert', opId, recordedAt: 1_764_000_000_000, source: { agent: 'test' }, fact: { text } };
}

test('appends behind one a rival fenced are refused too: none lands on top of the rival (R3 log)', async () => {
  const nats = await startNatsCluster(3);
  const nc = await connect({ servers: nats.urls });
  const dir = mkdtempSync(join(tmpdir(), 'sm-trailing-'));
  const store = await openShardStore({ path: join(dir, 'd'), domain: 'd', durability: 'none' });
  let pipeline: WritePipeline | undefined;
  try {
    await waitForJetStream(nc);
    const jsm = await nc.jetstreamManager({ checkAPI: false });
    await ensureLogStream(jsm, 'd', 3);
    const breaks: PipelineBreak[] = [];
    const p = new WritePipeline({ nc, subject: logSubject('d'), store, lastSeq: 0, group: false, onApplied: () => undefined });
    pipeline = p;
    p.onBroken((why) => breaks.push(why));
    await p.submit(assertEntry('first', 'first'));
    // The new leader's marker, as far as the log is concerned: one message at seq 2.
    await nc.jetstream().publish(logSubject('d'), encodeEntry(assertEntry('rival', 'from the new leader')), { msgID: 'rival', expect: { lastSequence: 1 } });

    // Five writes in one tick: five appends expecting seqs 1..5, in flight together.
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, (_, i) => p.submit(assertEntry(`behind-${i}`, `behind ${i}`))));
    await p.settled();
    for (const o of outcomes) {
      assert.is(o.status, 'rejected');
      assert.is(((o as PromiseRejectedResult).reason as ShardmindError).code, 'NOT_LEADER');
    }
    assert.is(breaks[0]?.kind, 'fenced');
    const state = (await jsm.streams.info(logStream('d'))).state;
    const last = await jsm.streams.getMessage(logStream('d'), { seq: state.last_seq });
    assert.is(last.header?.get('Nats-Msg-Id'), 'rival', `the log's last message is the rival's, not a write from behind the fence (${state.messages} messages)`);
    assert.is(state.messages, 2, 'the first write and the rival; nothing of the fenced pipeline after them');
  } finally {
    pipeline?.close();
    await store.close();
    await nc.close();
    await nats.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
