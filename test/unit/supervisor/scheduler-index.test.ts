/**
 * @module The delayed-event index of an actor system: a stopping actor cancels only its own delayed events without
 * scanning the system's, delayed events still fire, and an actor that reschedules for months keeps a small index.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  assign,
  createActor,
  setup,
  SimulatedClock,
  spawnChild,
  stopChild,
  type AnyActorLogic,
  type AnyActorRef,
} from 'xstate';
import { indexScheduler } from '../../../src/supervisor/scheduler-index.ts';

/** A child that polls: it waits 1 s, counts a tick, and waits again. */
const poller = setup({ types: { context: {} as { ticks: number } } }).createMachine({
  context: { ticks: 0 },
  initial: 'waiting',
  states: {
    waiting: { after: { 1000: { target: 'ticked' } } },
    ticked: {
      entry: assign({ ticks: ({ context }) => context.ticks + 1 }),
      always: 'waiting',
    },
  },
});

/** A parent of `n` pollers (as the supervisor is of the repository actors); STOP stops one by id. */
function system(n: number) {
  const clock = new SimulatedClock();
  const parent = setup({ types: { events: {} as { type: 'STOP'; id: string } } }).createMachine({
    entry: Array.from({ length: n }, (_, i) => spawnChild(poller as AnyActorLogic, { id: `c${i}` as never })),
    on: { STOP: { actions: stopChild(({ event }) => event.id) } },
  });
  const root = createActor(parent, { clock }).start();
  const sys = root.system as unknown as {
    scheduler: { cancelAll(a: AnyActorRef): void };
    _snapshot: { _scheduledEvents: Record<string, unknown> };
  };
  const children = Array.from(
    { length: n },
    (_, i) => (root.getSnapshot().children as Record<string, AnyActorRef>)[`c${i}`]!,
  );
  const ticks = (i: number) => (children[i]!.getSnapshot() as { context: { ticks: number } }).context.ticks;
  const stop = (i: number) => root.send({ type: 'STOP', id: `c${i}` });
  return { clock, sys, children, ticks, stop };
}

/** Counts how often the system's delayed events are enumerated (what the unindexed cancelAll does per stop). */
function countScans(sys: { _snapshot: { _scheduledEvents: Record<string, unknown> } }): { scans: number } {
  const counter = { scans: 0 };
  sys._snapshot._scheduledEvents = new Proxy(sys._snapshot._scheduledEvents, {
    ownKeys(target) {
      counter.scans++;
      return Reflect.ownKeys(target);
    },
  });
  return counter;
}

test('without the index a stopping actor scans every delayed event of the system (the cost being removed)', () => {
  const { sys, stop } = system(50);
  const counter = countScans(sys);
  stop(0);
  assert.ok(counter.scans >= 1, 'xstate enumerates the system-wide delayed events on stop');
});

test('with the index a stop scans nothing, cancels only its own poll, and the others still fire', () => {
  const { clock, sys, children, ticks, stop } = system(50);
  assert.equal(indexScheduler(sys), true);
  assert.equal(indexScheduler(sys), true, 'installing twice is harmless');
  // Polls scheduled before the install are not in the index (the supervisor installs it before its actor starts):
  // let them fire once, so every pending poll below was scheduled through the index.
  clock.increment(1000);
  children.forEach((_, i) => assert.equal(ticks(i), 1));
  assert.equal(Object.keys(sys._snapshot._scheduledEvents).length, 50);
  const counter = countScans(sys);
  stop(0);
  assert.equal(counter.scans, 0, 'no scan of the system');
  assert.equal(Object.keys(sys._snapshot._scheduledEvents).length, 49, 'its own delayed event is gone');
  clock.increment(1000);
  assert.equal(ticks(0), 1, 'the stopped actor does not tick');
  children.slice(1).forEach((_, i) => assert.equal(ticks(i + 1), 2, 'the others tick on'));
});

test('an actor that reschedules many times keeps only its pending event in the index', () => {
  const { clock, sys, ticks, stop } = system(2);
  indexScheduler(sys);
  clock.increment(1000);
  for (let i = 0; i < 500; i++) clock.increment(1000);
  assert.equal(ticks(0), 501);
  // Stopping cancels exactly the one pending poll: nothing fires afterwards, the other actor goes on.
  stop(0);
  clock.increment(1000);
  assert.equal(ticks(0), 501);
  assert.equal(ticks(1), 502);
  assert.equal(Object.keys(sys._snapshot._scheduledEvents).length, 1);
});

test('a scheduler of another shape is left alone', () => {
  assert.equal(indexScheduler(null), false);
  assert.equal(indexScheduler({}), false);
  assert.equal(indexScheduler({ scheduler: { schedule: 1 }, _snapshot: { _scheduledEvents: {} } }), false);
});
