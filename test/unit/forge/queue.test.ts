/**
 * @module The commit-status queue with an injected clock and forge: ordering per commit, superseded states,
 * back-off with jitter, Retry-After, refusals logged once without the token, giving up, bounds and shutdown.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import type { RepoCommitStatus } from '../../../src/config/schema.ts';
import type { CommitStatusRecord } from '../../../src/domain/types.ts';
import { CommitStatusQueue, retryAfterMs, type ForgeAnswer, type QueueTimers } from '../../../src/forge/queue.ts';
import type { StatusRequest } from '../../../src/forge/requests.ts';
import { createLogger } from '../../../src/logger.ts';

const TOKEN = 'forge-secret-token-42';
const SHA = 'abcdef0123456789abcdef0123456789abcdef01';
const target: RepoCommitStatus = {
  provider: 'github',
  apiUrl: 'https://api.github.com',
  repoPath: 'acme/web',
  token: TOKEN,
  context: 'shiparr/home/web',
};

/** A manual clock: timers fire only when the test advances time. */
class Clock implements QueueTimers {
  t = 0;
  #next = 1;
  #timers = new Map<number, { at: number; fn: () => void }>();
  now = () => this.t;
  set = (fn: () => void, ms: number) => {
    const id = this.#next++;
    this.#timers.set(id, { at: this.t + ms, fn });
    return id;
  };
  clear = (h: unknown) => void this.#timers.delete(h as number);
  /** Advances to `t + ms`, firing due timers in order and letting their promises settle. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await flush();
      const due = [...this.#timers.entries()].filter(([, v]) => v.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.#timers.delete(due[0]);
      this.t = Math.max(this.t, due[1].at);
      due[1].fn();
    }
    this.t = end;
    await flush();
  }
}

const flush = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

interface Sent {
  at: number;
  state: string;
  req: StatusRequest;
}

function harness(
  answer: (n: number, req: StatusRequest) => ForgeAnswer | Promise<ForgeAnswer> | Error,
  opts: { maxLanes?: number } = {},
) {
  const clock = new Clock();
  const sent: Sent[] = [];
  const records: { id: number; r: CommitStatusRecord }[] = [];
  const logs: string[] = [];
  const log = createLogger({
    level: 'debug',
    format: 'json',
    destination: new Writable({
      write(chunk: Buffer, _e, cb) {
        logs.push(chunk.toString());
        cb();
      },
    }),
  });
  const queue = new CommitStatusQueue({
    send: async (req, signal) => {
      sent.push({ at: clock.t, state: (JSON.parse(req.body) as { state: string }).state, req });
      const a = answer(sent.length, req);
      if (a instanceof Error) throw a;
      return await new Promise<ForgeAnswer>((resolve, reject) => {
        signal.addEventListener('abort', () => reject(new Error('aborted')));
        void Promise.resolve(a).then(resolve);
      });
    },
    record: (id, r) => records.push({ id, r }),
    log,
    timers: clock,
    random: () => 0.5,
    ...opts,
  });
  const last = (state: string) => records.filter((x) => x.r.state === state).at(-1)?.r;
  return { clock, sent, records, logs, queue, last };
}

const ok: ForgeAnswer = { status: 201, retryAfter: null, body: '{}' };
const err500: ForgeAnswer = { status: 500, retryAfter: null, body: '{"message":"Server Error"}' };
const job = (state: 'pending' | 'success' | 'failure', commit = SHA, id = 1) => ({
  deploymentId: id,
  target,
  commit,
  status: { state, description: state === 'pending' ? 'deploying' : 'deployed in 3 s' },
});

test('per commit one request at a time: success waits for the pending in flight', async () => {
  let release!: (a: ForgeAnswer) => void;
  const h = harness((n) => (n === 1 ? new Promise<ForgeAnswer>((r) => (release = r)) : ok));
  h.queue.enqueue(job('pending'));
  h.queue.enqueue(job('success'));
  await flush();
  assert.deepEqual(
    h.sent.map((s) => s.state),
    ['pending'],
    'success is not sent while pending is in flight',
  );
  release(ok);
  await flush();
  assert.deepEqual(
    h.sent.map((s) => s.state),
    ['pending', 'success'],
  );
  assert.equal(h.last('pending')?.result, 'delivered');
  assert.equal(h.last('success')?.result, 'delivered');
  assert.equal(h.last('success')?.ok, true);
  assert.equal(h.last('success')?.attempts, 1);
  assert.equal(h.queue.size, 0);
  // Other commits are independent lanes: both go out at once.
  const h2 = harness(() => new Promise<ForgeAnswer>(() => undefined));
  h2.queue.enqueue(job('pending', SHA));
  h2.queue.enqueue(job('pending', SHA.replace('a', 'b'), 2));
  await flush();
  assert.equal(h2.sent.length, 2);
});

test('a pending waiting for its retry is superseded by the success: the forge never gets a late pending', async () => {
  const h = harness((n) => (n === 1 ? err500 : ok));
  h.queue.enqueue(job('pending'));
  await flush();
  assert.equal(h.last('pending')?.result, 'retrying');
  assert.equal(h.last('pending')?.lastError, '500 Server Error');
  h.queue.enqueue(job('success'));
  await h.clock.advance(120_000);
  assert.deepEqual(
    h.sent.map((s) => s.state),
    ['pending', 'success'],
  );
  assert.equal(h.last('pending')?.result, 'superseded');
  assert.equal(h.last('success')?.result, 'delivered');
  // Two states queued behind one in flight: only the newest is sent.
  let release!: (a: ForgeAnswer) => void;
  const h2 = harness((n) => (n === 1 ? new Promise<ForgeAnswer>((r) => (release = r)) : ok));
  h2.queue.enqueue(job('pending'));
  h2.queue.enqueue(job('failure'));
  h2.queue.enqueue(job('success'));
  release(ok);
  await flush();
  assert.deepEqual(
    h2.sent.map((s) => s.state),
    ['pending', 'success'],
  );
  assert.equal(h2.last('failure')?.result, 'superseded');
});

test('exponential back-off with jitter, capped at 60 s, then gives up after 12 tries', async () => {
  const h = harness(() => err500);
  h.queue.enqueue(job('success'));
  await h.clock.advance(30 * 60_000);
  const gaps = h.sent.slice(1).map((s, i) => s.at - (h.sent[i]?.at ?? 0));
  // random() = 0.5: three quarters of each step (2 s, 4 s, 8 s … capped at 60 s).
  assert.deepEqual(gaps, [1500, 3000, 6000, 12000, 24000, 45000, 45000, 45000, 45000, 45000, 45000]);
  assert.equal(h.sent.length, 12);
  const r = h.last('success');
  assert.equal(r?.result, 'gave-up');
  assert.equal(r?.attempts, 12);
  assert.equal(r?.httpStatus, 500);
  assert.equal(r?.ok, false);
  assert.equal(h.logs.filter((l) => l.includes('gave up posting')).length, 1);
  assert.equal(h.queue.size, 0);
});

test('network errors are retried; 429 with Retry-After waits as long as asked', async () => {
  const refused = Object.assign(new Error('fetch failed'), { cause: { code: 'ECONNREFUSED' } });
  const h = harness((n) =>
    n === 1 ? refused : n === 2 ? { status: 429, retryAfter: '30', body: '{"message":"slow down"}' } : ok,
  );
  h.queue.enqueue(job('pending'));
  await flush();
  assert.equal(h.last('pending')?.lastError, 'ECONNREFUSED');
  await h.clock.advance(1_500);
  assert.equal(h.sent.length, 2);
  await h.clock.advance(29_000);
  assert.equal(h.sent.length, 2, 'Retry-After: 30 is honoured over the 3 s back-off');
  await h.clock.advance(1_000);
  assert.equal(h.sent.length, 3);
  assert.equal(h.last('pending')?.result, 'delivered');
  assert.equal(h.last('pending')?.attempts, 3);
  assert.equal(retryAfterMs('120', 0), 120_000);
  assert.equal(retryAfterMs(new Date(90_000).toUTCString(), 30_000), 60_000);
  assert.equal(retryAfterMs('soon', 0), null);
  assert.equal(retryAfterMs(null, 0), null);
});

test('a 4xx refusal is not retried and is logged once, clearly, without the token', async () => {
  const h = harness(() => ({ status: 401, retryAfter: null, body: '{"message":"Bad credentials"}' }));
  h.queue.enqueue(job('pending'));
  await h.clock.advance(10 * 60_000);
  assert.equal(h.sent.length, 1);
  assert.equal(h.last('pending')?.result, 'refused');
  assert.equal(h.last('pending')?.lastError, '401 Bad credentials');
  const lines = h.logs.filter((l) => l.includes('refused'));
  assert.equal(lines.length, 1);
  assert.match(lines[0] ?? '', /GitHub refused the commit status for acme\/web@abcdef0: 401 Bad credentials/);
  assert.ok(!h.logs.join('').includes(TOKEN));
  assert.ok(!JSON.stringify(h.records).includes(TOKEN));
  // The request itself carried the token (so the absence above means something).
  assert.equal(h.sent[0]?.req.headers.Authorization, `Bearer ${TOKEN}`);
});

test('bounded: beyond maxLanes commits a new status is dropped and recorded', async () => {
  const h = harness(() => new Promise<ForgeAnswer>(() => undefined), { maxLanes: 2 });
  h.queue.enqueue(job('pending', '1'.repeat(40), 1));
  h.queue.enqueue(job('pending', '2'.repeat(40), 2));
  h.queue.enqueue(job('pending', '3'.repeat(40), 3));
  await flush();
  assert.equal(h.sent.length, 2);
  assert.equal(h.queue.size, 2);
  const third = h.records.filter((x) => x.id === 3).at(-1)?.r;
  assert.equal(third?.result, 'dropped');
  assert.match(third?.lastError ?? '', /queue is full/);
});

test('close: deliveries get the grace, then are dropped and recorded; nothing is taken afterwards', async () => {
  const h = harness((n) => (n === 1 ? ok : new Promise<ForgeAnswer>(() => undefined)));
  h.queue.enqueue(job('pending', '1'.repeat(40), 1));
  h.queue.enqueue(job('pending', '2'.repeat(40), 2));
  await flush();
  let closed = false;
  const closing = h.queue.close(5_000).then(() => (closed = true));
  await h.clock.advance(4_000);
  assert.equal(closed, false, 'a delivery in flight gets the grace');
  await h.clock.advance(1_000);
  await closing;
  assert.equal(h.records.filter((x) => x.id === 1).at(-1)?.r.result, 'delivered');
  const second = h.records.filter((x) => x.id === 2).at(-1)?.r;
  assert.equal(second?.result, 'dropped');
  assert.match(second?.lastError ?? '', /stopped/);
  h.queue.enqueue(job('success', '1'.repeat(40), 1));
  assert.equal(h.records.at(-1)?.r.result, 'dropped');
  assert.equal(h.sent.length, 2);
  // An idle queue closes at once.
  const idle = harness(() => ok);
  await idle.queue.close(5_000);
});
