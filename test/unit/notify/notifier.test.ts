/** The notifier: failing endpoints, routing, de-duplication / recovery, and no secrets in logs. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger, silentLogger } from '../../../src/logger.ts';
import { createNotifier, type DeployEvent, type NotifyState, type NotifyTarget } from '../../../src/notify/index.ts';
import { startCaptureServer, unusedPort } from './http-capture.ts';

const failure = (over: Partial<DeployEvent> = {}): DeployEvent => ({
  event: 'failure',
  project: 'home',
  repository: 'web',
  commit: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
  trigger: 'poll',
  stage: 'applying',
  error: 'compose up failed: exit 1',
  durationMs: 12_300,
  ...over,
});
const success = (over: Partial<DeployEvent> = {}): DeployEvent => ({
  event: 'success',
  project: 'home',
  repository: 'web',
  commit: 'b2c3d4e5f60718293a4b5c6d7e8f901234567890',
  trigger: 'webhook',
  durationMs: 65_000,
  ...over,
});

function target(base: string, over: Partial<NotifyTarget> = {}): NotifyTarget {
  return {
    repoKey: 'home/web',
    success: [`generic://${base}/repo-success?disabletls=yes`],
    failure: [`generic://${base}/repo-failure?disabletls=yes`],
    global: {
      success: [`generic://${base}/global-success?disabletls=yes`],
      failure: [`generic://${base}/global-failure?disabletls=yes`],
    },
    ...over,
  };
}

test('a 500 endpoint: ok:false with status, exactly 2 attempts, notify() resolves', async () => {
  const s = await startCaptureServer(() => ({ status: 500, body: 'boom' }));
  try {
    const n = createNotifier({ log: silentLogger(), retryDelayMs: 10 });
    const out = await n.notify(
      {
        repoKey: 'r',
        success: [],
        failure: [`generic://127.0.0.1:${s.port}/x?disabletls=yes`],
        global: { success: [], failure: [] },
      },
      failure(),
    );
    assert.equal(out.sent.length, 1);
    assert.equal(out.sent[0]!.ok, false);
    assert.equal(out.sent[0]!.status, 500);
    assert.equal(out.sent[0]!.attempts, 2);
    assert.match(out.sent[0]!.error ?? '', /HTTP 500: boom/);
    assert.equal(s.requests.length, 2);
  } finally {
    await s.close();
  }
});

test('a hanging endpoint: times out, exactly 2 attempts, notify() resolves', async () => {
  const s = await startCaptureServer(() => ({ status: 200, hang: true }));
  try {
    const n = createNotifier({ log: silentLogger(), timeoutMs: 200, retryDelayMs: 10 });
    const out = await n.notify(
      {
        repoKey: 'r',
        success: [],
        failure: [`ntfy://127.0.0.1:${s.port}/topic?scheme=http`],
        global: { success: [], failure: [] },
      },
      failure(),
    );
    assert.equal(out.sent[0]!.ok, false);
    assert.equal(out.sent[0]!.attempts, 2);
    assert.match(out.sent[0]!.error ?? '', /timed out after 200 ms/);
    assert.equal(s.requests.length, 2);
  } finally {
    await s.close();
  }
});

test('connection refused: ok:false, exactly 2 attempts, notify() resolves', async () => {
  const port = await unusedPort();
  const n = createNotifier({
    log: silentLogger(),
    retryDelayMs: 10,
    overrides: { discord: `http://127.0.0.1:${port}` },
  });
  const out = await n.notify(
    { repoKey: 'r', success: [], failure: ['discord://tok@1'], global: { success: [], failure: [] } },
    failure(),
  );
  assert.equal(out.sent[0]!.ok, false);
  assert.equal(out.sent[0]!.attempts, 2);
  assert.match(out.sent[0]!.error ?? '', /ECONNREFUSED/);
});

test('an invalid URL in the list is reported (0 attempts) and does not stop the others', async () => {
  const s = await startCaptureServer(() => ({ status: 200 }));
  try {
    const n = createNotifier({ log: silentLogger(), retryDelayMs: 10 });
    const out = await n.notify(
      {
        repoKey: 'r',
        success: [],
        failure: ['nope://x', `generic://127.0.0.1:${s.port}/ok?disabletls=yes`],
        global: { success: [], failure: [] },
      },
      failure(),
    );
    assert.deepEqual(
      out.sent.map((r) => [r.service, r.ok, r.attempts]),
      [
        ['unknown', false, 0],
        ['generic', true, 1],
      ],
    );
    assert.match(out.sent[0]!.error ?? '', /unknown service "nope"/);
  } finally {
    await s.close();
  }
});

test('routing: failures → repo.failure ∪ global.failure, successes → repo.success ∪ global.success, duplicates sent once', async () => {
  const s = await startCaptureServer(() => ({ status: 200 }));
  try {
    const base = `127.0.0.1:${s.port}`;
    const n = createNotifier({ log: silentLogger(), retryDelayMs: 10 });
    const t = target(base);
    t.global.failure.push(t.failure[0]!); // same URL at both levels
    await n.notify(t, failure({ event: 'rolled_back', rolledBackTo: '0123456789abcdef' }));
    assert.deepEqual(s.requests.map((r) => r.url).sort(), ['/global-failure', '/repo-failure']);
    s.requests.length = 0;
    await n.notify({ ...t, repoKey: 'other/repo' }, success());
    assert.deepEqual(s.requests.map((r) => r.url).sort(), ['/global-success', '/repo-success']);
  } finally {
    await s.close();
  }
});

test('de-duplication and recovery: fail, same fail (suppressed), fail after the interval, success → recovered, success', async () => {
  const s = await startCaptureServer(() => ({ status: 200 }));
  try {
    let clock = 1_000_000;
    const states = new Map<string, NotifyState>();
    const n = createNotifier({
      log: silentLogger(),
      retryDelayMs: 10,
      now: () => clock,
      repeatIntervalMs: 60_000,
      stateStore: { get: (k) => states.get(k), set: (k, v) => void states.set(k, { ...v }) },
    });
    const t = target(`127.0.0.1:${s.port}`, { global: { success: [], failure: [] } });

    const first = await n.notify(t, failure());
    assert.deepEqual([first.event, first.suppressed, first.sent.length], ['failure', false, 1]);
    assert.equal(s.requests.length, 1);

    clock += 30_000;
    const second = await n.notify(t, failure());
    assert.deepEqual([second.event, second.suppressed, second.sent.length], ['failure', true, 0]);
    assert.equal(s.requests.length, 1, 'nothing sent for a repeated identical failure inside the interval');

    clock += 10_000;
    const otherStage = await n.notify(t, failure({ stage: 'verifying' }));
    assert.equal(otherStage.suppressed, false, 'a different stage is a different failure');
    assert.equal(s.requests.length, 2);

    clock += 61_000;
    const third = await n.notify(t, failure({ stage: 'verifying' }));
    assert.deepEqual([third.event, third.suppressed, third.sent.length], ['failure', false, 1]);
    assert.equal(s.requests.length, 3);
    assert.equal(states.get('home/web')?.failures, 4, 'the state store saw every failure');

    const recovered = await n.notify(t, success());
    assert.deepEqual([recovered.event, recovered.suppressed, recovered.sent.length], ['recovered', false, 1]);
    const recoveredBody = JSON.stringify(s.requests[3]!.body);
    assert.equal(s.requests[3]!.url, '/repo-success');
    assert.match(recoveredBody, /recovered/);
    assert.match(recoveredBody, /Previous failures: 4/);

    const plain = await n.notify(t, success());
    assert.equal(plain.event, 'success');
    assert.doesNotMatch(s.requests[4]!.body, /recovered/);
    assert.match(s.requests[4]!.body, /deployed b2c3d4e/);
    assert.deepEqual(states.get('home/web'), { failures: 0, lastFailureKey: null, lastFailureSentAt: null });
  } finally {
    await s.close();
  }
});

test('a failure that could not be delivered does not start the quiet period', async () => {
  let status = 500;
  const s = await startCaptureServer(() => ({ status }));
  try {
    const n = createNotifier({ log: silentLogger(), retryDelayMs: 10, now: () => 5 });
    const t = target(`127.0.0.1:${s.port}`, { global: { success: [], failure: [] } });
    const a = await n.notify(t, failure());
    assert.equal(a.sent[0]!.ok, false);
    status = 200;
    const b = await n.notify(t, failure());
    assert.equal(b.suppressed, false);
    assert.equal(b.sent[0]!.ok, true);
    const c = await n.notify(t, failure());
    assert.equal(c.suppressed, true);
  } finally {
    await s.close();
  }
});

test('no URL token appears in the logs, even when the server echoes it back', async () => {
  const token = 'SuperSecretToken-9f8e7d6c5b4a';
  const s = await startCaptureServer((req) => ({ status: 500, body: `invalid token in ${req.url}` }));
  try {
    let captured = '';
    const destination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        captured += chunk.toString();
        cb();
      },
    });
    const log = createLogger({ level: 'debug', destination });
    const n = createNotifier({ log, retryDelayMs: 10, overrides: { discord: s.base, telegram: s.base } });
    const out = await n.notify(
      {
        repoKey: 'home/web',
        success: [],
        failure: [
          `discord://${token}@123456`,
          `telegram://123456:${token}@telegram?chats=1`,
          `gotify://127.0.0.1:${s.port}/AbcdefGhijk.-_1?disabletls=yes`,
        ],
        global: { success: [], failure: [] },
      },
      failure(),
    );
    assert.equal(out.sent.length, 3);
    assert.ok(out.sent.every((r) => !r.ok));
    assert.equal(s.requests.length, 6);
    assert.ok(
      s.requests.some((r) => r.url.includes(token)),
      'the token really was sent to the server',
    );
    assert.match(captured, /notification failed/);
    assert.match(captured, /discord:\/\/\*\*\*@123456/);
    assert.equal(captured.includes(token), false, 'token leaked into logs');
    assert.equal(captured.includes('AbcdefGhijk.-_1'), false, 'gotify token leaked into logs');
    assert.equal(JSON.stringify(out).includes(token), false, 'token leaked into the results');
  } finally {
    await s.close();
  }
});

test('send(): one URL, no routing; test events reach every configured URL', async () => {
  const s = await startCaptureServer(() => ({ status: 200 }));
  try {
    const n = createNotifier({ log: silentLogger() });
    const r = await n.send(`generic://127.0.0.1:${s.port}/one?disabletls=yes`, { title: 't', body: 'b' });
    assert.equal(r.ok, true);
    assert.equal(s.requests[0]!.body, 't\nb');
    const out = await n.notify(target(`127.0.0.1:${s.port}`), {
      event: 'test',
      project: 'home',
      repository: 'web',
      commit: null,
      trigger: 'api',
    });
    assert.equal(out.sent.length, 4);
    assert.equal(s.requests.length, 5);
  } finally {
    await s.close();
  }
});
