/**
 * @module The per-repository lock of service actions (DeploySlots.tryLock/unlock): refused while the repository
 * holds or waits for a deploy slot; a deploy asking for a slot meanwhile waits until the action ends; releasing a
 * waiting deploy leaks no slot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeploySlots } from '../../../src/actors/deploy-slots.ts';

test('an action lock is refused while the repository holds or waits for a slot', async () => {
  const slots = new DeploySlots(1);
  await slots.acquire('a/x');
  assert.equal(slots.tryLock('a/x'), false, 'holding a slot');
  const waiting = slots.acquire('a/y');
  assert.equal(slots.tryLock('a/y'), false, 'queued for a slot');
  assert.equal(slots.tryLock('a/z'), true, 'another repository');
  assert.equal(slots.tryLock('a/z'), false, 'already locked');
  slots.release('a/x');
  await waiting;
  slots.release('a/y');
  slots.unlock('a/z');
  assert.equal(slots.inUse, 0);
});

test('a deploy asking for a slot during an action waits until the action ends', async () => {
  const slots = new DeploySlots(2);
  assert.equal(slots.tryLock('a/x'), true);
  let got = false;
  const deploy = slots.acquire('a/x').then(() => (got = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(got, false, 'the deploy waits while the action runs');
  assert.equal(slots.inUse, 0);
  slots.unlock('a/x');
  await deploy;
  assert.equal(got, true);
  assert.equal(slots.inUse, 1);
  assert.equal(slots.tryLock('a/x'), false, 'no action while the deploy holds its slot');
  slots.release('a/x');
  assert.equal(slots.tryLock('a/x'), true);
  slots.unlock('a/x');
});

test('a deploy released (stopped) while it waits for an action takes no slot afterwards', async () => {
  const slots = new DeploySlots(1);
  assert.equal(slots.tryLock('a/x'), true);
  const deploy = slots.acquire('a/x');
  slots.release('a/x');
  await assert.rejects(deploy, /released while waiting/);
  slots.unlock('a/x');
  await new Promise((r) => setImmediate(r));
  assert.equal(slots.inUse, 0);
  const abort = new AbortController();
  assert.equal(slots.tryLock('a/y'), true);
  const aborted = slots.acquire('a/y', abort.signal);
  abort.abort();
  await assert.rejects(aborted, /aborted/);
  slots.unlock('a/y');
  assert.equal(slots.inUse, 0);
});
