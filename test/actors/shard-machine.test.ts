/**
 * The shard machine's control flow on its own, with a scripted `ShardRuntime` (the seam the real `ShardActor`
 * implements): which state follows which, and that every piece of work is started and cleaned up exactly when
 * its state says.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createActor } from 'xstate';
import { LogCompactedError, LogTailLostError, shardMachine, SnapshotFormatError, type ShardEvent, type ShardRuntime } from '../../actors/index.ts';

class ScriptedRuntime implements ShardRuntime {
  readonly calls: string[] = [];
  leadSend: ((e: ShardEvent) => void) | undefined;
  followSend: ((e: ShardEvent) => void) | undefined;
  openResult: Promise<void> = Promise.resolve();

  open(): Promise<void> {
    this.calls.push('open');
    return this.openResult;
  }
  /** Errors the next catch-ups throw, in order (then they succeed). */
  catchUpErrors: unknown[] = [];
  async catchUp(): Promise<void> {
    this.calls.push('catchUp');
    const err = this.catchUpErrors.shift();
    if (err) throw err;
  }
  bootstrapError: unknown;
  /** When set, the next bootstrap waits for it. */
  bootstrapGate: Promise<void> | undefined;
  async bootstrap(): Promise<void> {
    this.calls.push('bootstrap');
    const gate = this.bootstrapGate;
    this.bootstrapGate = undefined;
    await gate;
    const err = this.bootstrapError;
    this.bootstrapError = undefined;
    if (err) throw err;
  }
  claimError: unknown;
  async claim(): Promise<void> {
    this.calls.push('claim');
    if (this.claimError) throw this.claimError;
  }
  lead(send: (e: ShardEvent) => void): () => void {
    this.calls.push('lead');
    this.leadSend = send;
    return () => this.calls.push('lead:cleanup');
  }
  follow(send: (e: ShardEvent) => void): () => void {
    this.calls.push('follow');
    this.followSend = send;
    return () => this.calls.push('follow:cleanup');
  }
  watchSend: ((e: ShardEvent) => void) | undefined;
  watchAhead(send: (e: ShardEvent) => void): () => void {
    this.calls.push('watchAhead');
    this.watchSend = send;
    return () => this.calls.push('watchAhead:cleanup');
  }
  async handOff(to: string): Promise<void> {
    this.calls.push(`handOff:${to}`);
  }
  async drain(): Promise<void> {
    this.calls.push('drain');
  }
}

function until(actor: { getSnapshot(): { value: unknown } }, state: string, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const poll = (): void => {
      if (actor.getSnapshot().value === state) return resolve();
      if (Date.now() > deadline) return reject(new Error(`still ${String(actor.getSnapshot().value)}, wanted ${state}`));
      setTimeout(poll, 2);
    };
    poll();
  });
}

test('shard machine - a placed leader opens, catches up, then leads', async () => {
  const rt = new ScriptedRuntime();
  const actor = createActor(shardMachine, { input: { runtime: rt, wantsLead: true } }).start();
  await until(actor, 'leading');
  assert.equal(rt.calls, ['open', 'catchUp', 'claim', 'lead']);
  actor.stop();
});

test('shard machine - a standby opens, catches up, then follows', async () => {
  const rt = new ScriptedRuntime();
  const actor = createActor(shardMachine, { input: { runtime: rt, wantsLead: false } }).start();
  await until(actor, 'following');
  assert.equal(rt.calls, ['open', 'catchUp', 'follow']);
  actor.stop();
});

test('shard machine - a replica the log was compacted past bootstraps from a snapshot, then catches up and follows', async () => {
  const rt = new ScriptedRuntime();
  rt.catchUpErrors = [new LogCompactedError('email', 1, 501)];
  const actor = createActor(shardMachine, { input: { runtime: rt, wantsLead: false } }).start();
  await until(actor, 'following');
  assert.equal(rt.calls, ['open', 'catchUp', 'bootstrap', 'catchUp', 'follow']);
  actor.stop();
});

test('shard machine - a failed bootstrap goes back through catch-up and tries again; a won claim meanwhile still leads', async () => {
  const rt = new ScriptedRuntime();
  rt.catchUpErrors = [new LogCompactedError('email', 1, 501), new LogCompactedError('email', 1, 501)];
  rt.bootstrapError = new Error('no snapshot yet');
  let open!: () => void;
  rt.bootstrapGate = new Promise((resolve) => (open = resolve));
  const actor = createActor(shardMachine, { input: { runtime: rt, wantsLead: false } }).start();
  await until(actor, 'bootstrapping');
  actor.send({ type: 'PROMOTE' });
  open();
  await until(actor, 'leading');
  assert.equal(rt.calls, ['open', 'catchUp', 'bootstrap', 'catchUp', 'bootstrap', 'catchUp', 'claim', 'lead']);
  actor.stop();
});

test('shard machine - a bootstrap refused for a snapshot of another store format fails the actor, naming both formats, and does not try again', async () => {
  const rt = new ScriptedRuntime();
  rt.catchUpErrors = [new LogCompactedError('email', 1, 501), new LogCompactedError('email', 1, 501)];
  rt.bootstrapError = new SnapshotFormatError('email', 'email-0000000500', 500, 6, 8);
  const actor = createActor(shardMachine, { input: { runtime: rt, wantsLead: false } }).start();
  await until(actor, 'failed');
  assert.equal(rt.calls, ['open', 'catchUp', 'bootstrap']);
  assert.match(String(actor.getSnapshot().context.lastError), 'store format 6, this version reads format 8');
  actor.stop();
});

test('shard machine - a catch-up that fails for another reason still fails the actor', async () => {
  const rt = new ScriptedRuntime();
  rt.catchUpErrors = [new Error('disk full')];
  const actor = createActor(shardMachine, { input: { runtime: rt, wantsLead: false } }).start();
  await until(actor, 'failed');
  assert.equal(rt.calls, ['open', 'catchUp']);
  actor.stop();
});

test('shard machine - a catch-up that finds the log ended below this replica halts in aheadOfLog: no claim, PROMOTE ignored, STOP drains', async () => {
  const rt = new ScriptedRuntime();
  rt.catchUpErrors = [new LogTailLostError('email', 0, 6)];
  const actor = createActor(shardMachine, { input: { runtime: rt, wantsLead: true } }).start();
  await until(actor, 'aheadOfLog');
  assert.match(actor.getSnapshot().context.lastError ?? '', /the email log ends at seq 0 but this replica applied through seq 6: the log lost entries 1\.\.6/);
  actor.send({ type: 'PROMOTE' });
  await new Promise((r) => setTimeout(r, 20));
  assert.is(actor.getSnapshot().value, 'aheadOfLog');
  assert.equal(rt.calls, ['open', 'catchUp', 'watchAhead'], 'it never claims, and never catches up again by itself');
  actor.send({ type: 'STOP' });
  await until(actor, 'stopped');
  assert.equal(rt.calls, ['open', 'catchUp', 'watchAhead', 'watchAhead:cleanup', 'drain']);
});

test('shard machine - halted in aheadOfLog, a replica whose watch finds the log holding its history after all catches up again', async () => {
  const rt = new ScriptedRuntime();
  rt.catchUpErrors = [new LogTailLostError('email', 127, 257)];
  const actor = createActor(shardMachine, { input: { runtime: rt, wantsLead: false } }).start();
  await until(actor, 'aheadOfLog');
  rt.watchSend?.({ type: 'LOG_HOLDS', detail: 'the email log holds this replica\'s entry at seq 257 after all' });
  await until(actor, 'following');
  assert.equal(rt.calls, ['open', 'catchUp', 'watchAhead', 'watchAhead:cleanup', 'catchUp', 'follow']);
  assert.match(actor.getSnapshot().context.lastError ?? '', /holds this replica's entry at seq 257 after all/);
  actor.stop();
});

test('shard machine - a claim whose check finds the log lost this replica\'s last entry halts in aheadOfLog', async () => {
  const rt = new ScriptedRuntime();
  rt.claimError = new LogTailLostError('email', 4, 6);
  const actor = createActor(shardMachine, { input: { runtime: rt, wantsLead: true } }).start();
  await until(actor, 'aheadOfLog');
  assert.equal(rt.calls, ['open', 'catchUp', 'claim', 'watchAhead']);
  assert.match(actor.getSnapshot().context.lastError ?? '', /lost entries 5\.\.6/);
  actor.stop();
});

test('shard machine - a fenced leader stops serving, catches up and follows, and does not lead again by itself', async () => {
  const rt = new ScriptedRuntime();
  const actor = createActor(shardMachine, { input: { runtime: rt, wantsLead: true } }).start();
  await until(actor, 'leading');
  rt.leadSend?.({ type: 'FENCED', detail: 'wrong last sequence' });
  await until(actor, 'following');
  assert.equal(rt.calls, ['open', 'catchUp', 'claim', 'lead', 'lead:cleanup', 'catchUp', 'follow']);
  assert.is(actor.getSnapshot().context.wantsLead, false);
  assert.match(actor.getSnapshot().context.lastError ?? '', /fenced/);
  actor.stop();
});

test('shard machine - a resync catches up and leads again', async () => {
  const rt = new ScriptedRuntime();
  const actor = createActor(shardMachine, { input: { runtime: rt, wantsLead: true } }).start();
  await until(actor, 'leading');
  rt.leadSend?.({ type: 'RESYNC', detail: 'duplicate in the pipeline' });
  await until(actor, 'catchingUp').catch(() => undefined);
  await until(actor, 'leading');
  assert.equal(rt.calls.filter((c) => c === 'lead').length, 2);
  actor.stop();
});

test('shard machine - a claim rejected as fenced follows instead of leading', async () => {
  const rt = new ScriptedRuntime();
  rt.claimError = Object.assign(new Error('wrong last sequence'), { code: 'NOT_LEADER' });
  const actor = createActor(shardMachine, { input: { runtime: rt, wantsLead: true } }).start();
  await until(actor, 'following');
  assert.equal(rt.calls, ['open', 'catchUp', 'claim', 'catchUp', 'follow']);
  actor.stop();
});

test('shard machine - PROMOTE turns a follower into a leader after catching up', async () => {
  const rt = new ScriptedRuntime();
  const actor = createActor(shardMachine, { input: { runtime: rt, wantsLead: false } }).start();
  await until(actor, 'following');
  actor.send({ type: 'PROMOTE' });
  await until(actor, 'leading');
  assert.equal(rt.calls, ['open', 'catchUp', 'follow', 'follow:cleanup', 'catchUp', 'claim', 'lead']);
  actor.stop();
});

test('shard machine - HANDOFF hands off, then follows', async () => {
  const rt = new ScriptedRuntime();
  const actor = createActor(shardMachine, { input: { runtime: rt, wantsLead: true } }).start();
  await until(actor, 'leading');
  actor.send({ type: 'HANDOFF', to: 'mini-2' });
  await until(actor, 'following');
  assert.ok(rt.calls.includes('handOff:mini-2'));
  actor.stop();
});

test('shard machine - a leader has got over its last error: neither its status nor the catch-up after a clean hand-off shows a stale one', async () => {
  const rt = new ScriptedRuntime();
  rt.claimError = Object.assign(new Error('wrong last sequence'), { code: 'NOT_LEADER' });
  const actor = createActor(shardMachine, { input: { runtime: rt, wantsLead: true } });
  const seen: string[] = [];
  actor.subscribe((snap) => seen.push(`${String(snap.value)}: ${snap.context.lastError ?? '-'}`));
  actor.start();
  await until(actor, 'following');
  assert.ok(seen.some((x) => /^catchingUp: fenced while claiming: wrong last sequence/.test(x)), seen.join('\n'));
  assert.match(String(actor.getSnapshot().context.lastError), /fenced while claiming/, 'a follower keeps why it is not leading');
  rt.claimError = undefined;
  actor.send({ type: 'PROMOTE' });
  await until(actor, 'leading');
  rt.leadSend?.({ type: 'RESYNC', detail: 'duplicate in the pipeline' });
  await until(actor, 'catchingUp').catch(() => undefined);
  await until(actor, 'leading');
  assert.is(actor.getSnapshot().context.lastError, undefined, 'leading again clears the resync reason');
  seen.length = 0;
  actor.send({ type: 'HANDOFF', to: 'mini-2' });
  await until(actor, 'following');
  assert.equal(seen.filter((x) => x.startsWith('catchingUp')), ['catchingUp: -'], 'the catch-up after the hand-off shows no earlier error');
  actor.stop();
});

test('shard machine - STOP from any state drains once and ends stopped', async () => {
  const rt = new ScriptedRuntime();
  const actor = createActor(shardMachine, { input: { runtime: rt, wantsLead: true } }).start();
  await until(actor, 'leading');
  actor.send({ type: 'STOP' });
  actor.send({ type: 'STOP' });
  await until(actor, 'stopped');
  assert.equal(rt.calls.slice(-2), ['lead:cleanup', 'drain']);
  assert.is(rt.calls.filter((c) => c === 'drain').length, 1);
  assert.is(actor.getSnapshot().status, 'done');
});

test('shard machine - an open that fails lands in failed, and STOP still drains', async () => {
  const rt = new ScriptedRuntime();
  rt.openResult = Promise.reject(new Error('disk full'));
  const actor = createActor(shardMachine, { input: { runtime: rt, wantsLead: true } }).start();
  await until(actor, 'failed');
  assert.is(actor.getSnapshot().context.lastError, 'disk full');
  actor.send({ type: 'STOP' });
  await until(actor, 'stopped');
  assert.ok(rt.calls.includes('drain'));
});

test.run();
