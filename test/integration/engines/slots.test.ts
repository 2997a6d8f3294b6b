/**
 * @module Per-engine deploy slots (SHIPARR_MAX_CONCURRENT_DEPLOYS_PER_HOST): a full engine makes only its own
 * repositories wait; repositories on other engines take the free global slots; hand-over stays FIFO per engine.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeploySlots } from '../../../src/actors/deploy-slots.ts';
import { loadSettings } from '../../../src/config/settings.ts';

const engines: Record<string, string> = { a1: 'A', a2: 'A', a3: 'A', b1: 'B', b2: 'B' };

test('a full engine queues its own repositories while another engine deploys', async () => {
  const slots = new DeploySlots(3, 1, (key) => engines[key] ?? 'default');
  const got: string[] = [];
  const take = (k: string) => slots.acquire(k).then(() => got.push(k));
  await take('a1');
  const a2 = take('a2');
  const a3 = take('a3');
  await take('b1');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, ['a1', 'b1'], 'a2 and a3 wait for engine A although a global slot is free');
  assert.equal(slots.inUse, 2);
  assert.equal(slots.queued, 2);
  const b2 = take('b2');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(got, ['a1', 'b1'], 'b2 waits for engine B');
  slots.release('a1');
  await a2;
  assert.deepEqual(got, ['a1', 'b1', 'a2'], 'engine A hands over in FIFO order');
  slots.release('b1');
  await b2;
  slots.release('a2');
  await a3;
  assert.deepEqual(got, ['a1', 'b1', 'a2', 'b2', 'a3']);
});

test('without a per-engine limit only the global limit applies (the previous behaviour)', async () => {
  const slots = new DeploySlots(2);
  await slots.acquire('a1');
  await slots.acquire('a2');
  let third = false;
  const p = slots.acquire('a3').then(() => (third = true));
  await new Promise((r) => setImmediate(r));
  assert.equal(third, false);
  slots.release('a1');
  await p;
  assert.equal(third, true);
});

test('SHIPARR_MAX_CONCURRENT_DEPLOYS_PER_HOST: default 0 (off), bounded 0..64', () => {
  const base = { SHIPARR_CONFIG_PATH: '/nonexistent/config', SHIPARR_DATA_PATH: '/nonexistent/data' };
  assert.equal(loadSettings(base).maxConcurrentDeploysPerHost, 0);
  assert.equal(loadSettings({ ...base, SHIPARR_MAX_CONCURRENT_DEPLOYS_PER_HOST: '1' }).maxConcurrentDeploysPerHost, 1);
  assert.throws(() => loadSettings({ ...base, SHIPARR_MAX_CONCURRENT_DEPLOYS_PER_HOST: '65' }), /PER_HOST/);
});
