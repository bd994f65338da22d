/**
 * The rule by which a host decides its own wall clock is off the cluster's (actors/clock-peers.ts), on the peers'
 * offsets as it measures them (`peer − this`, ms). The whole loop, with a real clock ten minutes ahead, is
 * clock-off.test.ts; this covers the cases a 3-Mini test cannot set up.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CLOCK_SKEW_BOUND_MS, describeOffset, judgeClock } from '../../actors/index.ts';

const B = CLOCK_SKEW_BOUND_MS;
const TEN_MIN = 600_000;

test('two peers that agree with each other and not with this host outvote it', () => {
  assert.equal(judgeClock([-TEN_MIN, -TEN_MIN + 40], false, B), { offsetMs: TEN_MIN - 40, peers: 2, off: true });
});

test('a host with one right and one wrong peer is not off, and reports the reading nearer its own clock', () => {
  assert.equal(judgeClock([TEN_MIN, 3], false, B), { offsetMs: -3, peers: 2, off: false });
  assert.equal(judgeClock([-TEN_MIN, 0], false, B), { offsetMs: 0, peers: 2, off: false });
});

test('one peer alone cannot tell which clock is wrong: a host never found off stays on', () => {
  assert.equal(judgeClock([TEN_MIN], false, B), { offsetMs: -TEN_MIN, peers: 1, off: false });
});

test('a host found off stays off while every peer left still differs, and comes back once one agrees', () => {
  assert.is(judgeClock([-TEN_MIN], true, B).off, true);
  assert.is(judgeClock([-20], true, B).off, false);
  assert.is(judgeClock([-TEN_MIN, -10], true, B).off, false, 'one of two peers agrees again');
});

test('a minority of wrong peers does not make a right host off (5 Minis, two wrong)', () => {
  assert.is(judgeClock([TEN_MIN, TEN_MIN, 5, -8], false, B).off, false);
  assert.is(judgeClock([TEN_MIN, TEN_MIN, TEN_MIN, -8], false, B).off, true, 'three of four peers disagree');
});

test('differences within the bound are not off, whatever the count', () => {
  assert.is(judgeClock([B - 1, B - 1, B - 1], false, B).off, false);
  assert.is(judgeClock([B + 1, B + 1], false, B).off, true);
  assert.equal(judgeClock([], true, B), { peers: 0, off: false });
});

test('offsets read as an operator would say them', () => {
  assert.is(describeOffset(TEN_MIN), '10 min ahead of');
  assert.is(describeOffset(-45_000), '45.0 s behind');
});

test.run();
