/**
 * The follower's staleness bound (`actors/freshness.ts`) with an injected clock: fresh as of the latest leased beat
 * whose seq it has applied; beats it has not caught up to count once it does; older epochs ignored, a newer epoch
 * (beat or marker) forgets; unleased beats never count; a delayed beat counts from its send time.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ManualClock } from '../../actors/index.ts';
import { FreshnessTracker, type FreshnessBeat } from '../../actors/freshness.ts';

const T0 = 1_800_000_000_000;

function setup(epoch = 1, appliedSeq = 10): { clock: ManualClock; f: FreshnessTracker } {
  const clock = new ManualClock(T0);
  return { clock, f: new FreshnessTracker(clock, { epoch, appliedSeq }) };
}

/** A beat sent now (by the clock) unless told otherwise. */
function beat(clock: ManualClock, seq: number, o: Partial<FreshnessBeat> = {}): FreshnessBeat {
  return { epoch: 1, seq, sentAt: clock.now(), lease: true, ...o };
}

test('no beat yet: no bound', () => {
  const { f } = setup();
  assert.is(f.staleness(), Number.POSITIVE_INFINITY);
  assert.is(f.freshAsOf, undefined);
});

test('a beat at or below the applied seq: fresh as of its arrival, staleness grows with the clock', () => {
  const { clock, f } = setup(1, 10);
  f.onHeartbeat(beat(clock, 10));
  assert.is(f.staleness(), 0);
  clock.advance(300);
  assert.is(f.staleness(), 300);
  f.onHeartbeat(beat(clock, 7));
  assert.is(f.staleness(), 0, 'a later beat of a lower seq is covered too');
});

test('a beat ahead of the follower counts once the follower applies its seq, from the beat time', () => {
  const { clock, f } = setup(1, 10);
  f.onHeartbeat(beat(clock, 10));
  clock.advance(100);
  f.onHeartbeat(beat(clock, 20)); // at T0+100
  clock.advance(100);
  f.onHeartbeat(beat(clock, 30)); // at T0+200
  clock.advance(100); // T0+300
  assert.is(f.staleness(), 300, 'still fresh only as of the first beat');
  f.onApplied(25);
  assert.is(f.staleness(), 200, 'the seq-20 beat is covered: fresh as of T0+100');
  f.onApplied(30);
  assert.is(f.staleness(), 100, 'the seq-30 beat is covered: fresh as of T0+200');
});

test('a later beat with a lower seq replaces a pending higher one', () => {
  const { clock, f } = setup(1, 10);
  f.onHeartbeat(beat(clock, 50));
  clock.advance(100);
  f.onHeartbeat(beat(clock, 40)); // cannot happen within an epoch, but must not be trusted earlier than due
  f.onApplied(45);
  assert.is(f.staleness(), 0, 'covered as of the seq-40 beat');
});

test('beats of a lease that is not valid never count', () => {
  const { clock, f } = setup(1, 10);
  f.onHeartbeat(beat(clock, 5, { lease: false }));
  assert.is(f.staleness(), Number.POSITIVE_INFINITY);
  f.onHeartbeat(beat(clock, 12, { lease: false }));
  f.onApplied(12);
  assert.is(f.staleness(), Number.POSITIVE_INFINITY);
});

test('older epochs are ignored; a newer epoch forgets the bound until its own beat', () => {
  const { clock, f } = setup(2, 10);
  f.onHeartbeat(beat(clock, 5, { epoch: 1 }));
  assert.is(f.staleness(), Number.POSITIVE_INFINITY, 'a deposed leader waking up does not make us fresh');
  f.onHeartbeat(beat(clock, 10, { epoch: 2 }));
  assert.is(f.staleness(), 0);
  clock.advance(50);
  f.onHeartbeat(beat(clock, 11, { epoch: 3, lease: false }));
  assert.is(f.staleness(), Number.POSITIVE_INFINITY, 'a new epoch: nothing known yet');
  assert.is(f.knownEpoch, 3);
  f.onHeartbeat(beat(clock, 11, { epoch: 3 }));
  f.onApplied(11);
  assert.is(f.staleness(), 0);
  clock.advance(10);
  f.onEpoch(4);
  assert.is(f.staleness(), Number.POSITIVE_INFINITY, 'an applied marker of a newer epoch forgets too');
  f.onEpoch(3);
  assert.is(f.knownEpoch, 4, 'epochs only go up');
});

test('a beat that arrives late counts from when it was sent', () => {
  const { clock, f } = setup(1, 10);
  const sentAt = clock.now();
  clock.advance(5_000); // e.g. this process was paused with the beat queued for it
  f.onHeartbeat(beat(clock, 10, { sentAt }));
  assert.is(f.staleness(), 5_000);
  f.onHeartbeat(beat(clock, 10, { sentAt: clock.now() + 60_000 }));
  assert.is(f.staleness(), 0, 'a sender clock ahead of ours: the receive time bounds it');
  f.onHeartbeat(beat(clock, 10, { sentAt: Number.NaN }));
  assert.is(f.staleness(), 0);
});

test('pending beats are bounded; dropping the oldest only under-trusts', () => {
  const { clock, f } = setup(1, 0);
  for (let i = 1; i <= 200; i++) {
    f.onHeartbeat(beat(clock, i));
    clock.advance(10);
  }
  f.onApplied(150);
  const s = f.staleness();
  assert.ok(Number.isFinite(s) && s >= 500 && s <= 2_000, `bounded by a kept beat: ${s}`);
  f.onApplied(200);
  assert.is(f.staleness(), 10);
});

test.run();
