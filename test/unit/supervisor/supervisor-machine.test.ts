/**
 * @module The supervisor statechart on its own, with stand-in children and a SimulatedClock: spawn by key (id and
 * systemId), config diffs (removed children hear repo.removed before they stop, changed ones get config.updated and
 * keep running), restarts after crashes with doubling delays up to the bound, respawn, and the events it emits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createActor, setup, SimulatedClock, type AnyActorRef } from 'xstate';
import { supervisorMachine } from '../../../src/supervisor/supervisor-machine.ts';
import type { RepoConfig } from '../../../src/config/schema.ts';
import type { ActivityEvent } from '../../../src/domain/types.ts';

const repo = (key: string, over: Partial<RepoConfig> = {}) =>
  ({ key, composeProject: key.replace('/', '-'), branch: 'main', ...over }) as RepoConfig;

function harness() {
  const heard: string[] = [];
  const child = setup({
    types: {} as { context: { key: string }; events: { type: string }; input: RepoConfig },
    actions: {
      hear: ({ context, event }) => void heard.push(`${context.key} ${event.type}`),
      crash: () => {
        throw new Error('disk on fire');
      },
    },
  }).createMachine({
    context: ({ input }) => ({ key: input.key }),
    initial: 'idle',
    states: {
      idle: { on: { crash: { actions: 'crash' }, busy: 'applying', '*': { actions: 'hear' } } },
      applying: { on: { done: 'idle' } },
    },
  });
  const clock = new SimulatedClock();
  const events: ActivityEvent[] = [];
  const actor = createActor(supervisorMachine, {
    clock,
    input: {
      children: { logic: () => child, input: (r) => r, repoId: () => 7 },
      restart: { max: 2, windowMs: 60_000, baseDelayMs: 10 },
      checkOnStart: true,
      now: () => clock.now(),
    },
  });
  actor.on('*', (e) => void events.push(e));
  actor.start();
  const childOf = (key: string) => (actor.getSnapshot().children as Record<string, AnyActorRef | undefined>)[key];
  return { actor, clock, heard, events, childOf };
}

test('config diffs: spawn by key (id and systemId), stop the removed after repo.removed, update the changed in place', () => {
  const h = harness();
  h.actor.send({ type: 'config.apply', repos: [repo('p/a'), repo('p/b')], boot: true, errors: 0 });
  h.actor.send({ type: 'boot.spawn', count: 10 });
  assert.deepEqual(h.actor.getSnapshot().context.lastDiff, { added: ['p/a', 'p/b'], removed: [], changed: [] });
  const a = h.childOf('p/a');
  assert.equal(a?.id, 'p/a');
  assert.equal(h.actor.system.get('repo:p/a'), a);
  a?.send({ type: 'busy' });
  h.actor.send({ type: 'config.apply', repos: [repo('p/a', { branch: 'next' }), repo('p/c')], boot: false, errors: 1 });
  assert.deepEqual(h.actor.getSnapshot().context.lastDiff, { added: ['p/c'], removed: ['p/b'], changed: ['p/a'] });
  assert.ok(h.heard.includes('p/b repo.removed'), 'the removed child heard why before it stopped');
  assert.equal(h.childOf('p/b'), undefined);
  assert.equal(h.actor.system.get('repo:p/b'), undefined);
  assert.equal(h.childOf('p/a'), a, 'a changed child mid-deploy is not restarted');
  assert.equal(h.actor.getSnapshot().context.repos['p/a']?.repo.branch, 'next');
  assert.ok(h.events.some((e) => e.type === 'config.reloaded' && e.errors === 1));
  assert.ok(
    h.events.some((e) => e.type === 'state' && e.repoKey === 'p/a' && e.state === 'applying' && e.previous === 'idle'),
  );
});

test('a crashed child is re-spawned after base·2ⁿ, marked failed after the bound, and respawned on request', () => {
  const h = harness();
  h.actor.send({ type: 'config.apply', repos: [repo('p/a'), repo('p/ok')], boot: true, errors: 0 });
  h.actor.send({ type: 'boot.spawn', count: 10 });
  const ok = h.childOf('p/ok');
  h.childOf('p/a')?.send({ type: 'crash' });
  assert.equal(h.childOf('p/a'), undefined);
  assert.equal(h.actor.getSnapshot().context.repos['p/a']?.state, 'restarting');
  h.clock.increment(9);
  assert.equal(h.childOf('p/a'), undefined, 'not before the first delay');
  h.clock.increment(1);
  assert.ok(h.childOf('p/a'), 'first restart after 10 ms');
  h.childOf('p/a')?.send({ type: 'crash' });
  h.clock.increment(19);
  assert.equal(h.childOf('p/a'), undefined);
  h.clock.increment(1);
  assert.ok(h.childOf('p/a'), 'second restart after 20 ms');
  h.childOf('p/a')?.send({ type: 'crash' });
  h.clock.increment(1_000);
  const entry = h.actor.getSnapshot().context.repos['p/a'];
  assert.equal(entry?.failed, 'disk on fire');
  assert.equal(entry?.restarts, 2);
  assert.equal(h.childOf('p/a'), undefined, 'stays down');
  assert.ok(h.events.some((e) => e.type === 'state' && e.repoKey === 'p/a' && e.state === 'failed'));
  assert.equal(h.childOf('p/ok'), ok, 'the other child is unaffected');
  h.actor.send({ type: 'repo.respawn', key: 'p/a' });
  assert.ok(h.childOf('p/a'));
  assert.equal(h.actor.getSnapshot().context.repos['p/a']?.failed, null);
});

test('stopping: no restart after a crash, and stopping the supervisor stops its children', () => {
  const h = harness();
  h.actor.send({ type: 'config.apply', repos: [repo('p/a'), repo('p/b'), repo('p/c')], boot: true, errors: 0 });
  h.actor.send({ type: 'boot.spawn', count: 2 });
  const b = h.childOf('p/b');
  h.actor.send({ type: 'supervisor.stopping' });
  h.childOf('p/a')?.send({ type: 'crash' });
  h.clock.increment(1_000);
  assert.equal(h.childOf('p/a'), undefined);
  h.actor.send({ type: 'boot.spawn', count: 10 });
  assert.equal(h.childOf('p/c'), undefined, 'no boot spawn once stopping');
  assert.deepEqual(h.actor.getSnapshot().context.pending, []);
  h.actor.stop();
  assert.equal(b?.getSnapshot().status, 'stopped');
});

test('boot: config.apply queues the children, boot.spawn starts them in order, a reload in between is honoured', () => {
  const h = harness();
  const repos = Array.from({ length: 25 }, (_, i) => repo(`p/r${i}`));
  h.actor.send({ type: 'config.apply', repos, boot: true, errors: 0 });
  assert.equal(Object.keys(h.actor.getSnapshot().children).length, 0, 'nothing spawned by the boot config.apply');
  assert.equal(h.actor.getSnapshot().context.pending.length, 25);
  assert.equal(h.actor.getSnapshot().context.repos['p/r24']?.state, 'boot', 'queued repositories are listed');
  h.actor.send({ type: 'boot.spawn', count: 10 });
  assert.deepEqual(
    Object.keys(h.actor.getSnapshot().children),
    repos.slice(0, 10).map((r) => r.key),
  );
  // A reload before the rest is spawned: r20 removed, r21 changed, a new one added (spawned at once).
  const next = [...repos.filter((r) => r.key !== 'p/r20'), repo('p/new')].map((r) =>
    r.key === 'p/r21' ? repo('p/r21', { branch: 'next' }) : r,
  );
  h.actor.send({ type: 'config.apply', repos: next, boot: false, errors: 0 });
  assert.ok(h.childOf('p/new'), 'a repository added by a reload starts at once');
  assert.equal(h.actor.getSnapshot().context.pending.length, 14);
  h.actor.send({ type: 'boot.spawn', count: 10 });
  h.actor.send({ type: 'boot.spawn', count: 10 });
  assert.deepEqual(h.actor.getSnapshot().context.pending, []);
  assert.equal(h.childOf('p/r20'), undefined, 'removed while queued: never spawned');
  assert.equal((h.childOf('p/r21')?.getSnapshot() as { context: { key: string } } | undefined)?.context.key, 'p/r21');
  assert.equal(h.actor.getSnapshot().context.repos['p/r21']?.repo.branch, 'next');
  assert.equal(Object.keys(h.actor.getSnapshot().children).length, 25);
});
