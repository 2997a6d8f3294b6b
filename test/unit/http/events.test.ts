/** @module GET /api/events (SSE): framing, live events from the supervisor, heartbeats, clean close on both sides. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { closeEventStreams, openEventStreams } from '../../../src/http/app.ts';
import type { ActivityEvent } from '../../../src/domain/types.ts';
import { type FakeSupervisor, serve } from './fakes.ts';
import { until } from '../../helpers/wait.ts';
import { registerSecretValues } from '../../../src/lib/redact.ts';

/** Reads the stream until `done(text)` holds; returns everything read so far. */
async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  state: { text: string },
  done: (t: string) => boolean,
): Promise<string> {
  const decoder = new TextDecoder();
  while (!done(state.text)) {
    const { value, done: ended } = await reader.read();
    if (ended) break;
    state.text += decoder.decode(value, { stream: true });
  }
  return state.text;
}

describe('GET /api/events', () => {
  test(
    'sends retry + events pushed by the supervisor + heartbeats, and unsubscribes when the client leaves',
    { timeout: 10_000 },
    async () => {
      const s = await serve({ sseHeartbeatMs: 30 });
      const sup = s.deps.supervisor as FakeSupervisor;
      const baseline = sup.listeners.size;
      try {
        const ac = new AbortController();
        const res = await fetch(`${s.url}/api/events`, { signal: ac.signal });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
        assert.equal(res.headers.get('cache-control'), 'no-cache, no-transform');
        assert.equal(res.headers.get('x-accel-buffering'), 'no');
        const reader = res.body!.getReader();
        const state = { text: '' };
        await readUntil(reader, state, (t) => t.includes(': connected\n\n'));
        assert.match(state.text, /^retry: \d+\n/);
        assert.equal(sup.listeners.size, baseline + 1);

        const events: ActivityEvent[] = [
          {
            type: 'state',
            repoKey: 'homelab/dns',
            repoId: 2,
            state: 'pulling',
            previous: 'checking',
            at: '2025-06-28T18:00:01.000Z',
          },
          {
            type: 'deployment.finished',
            repoKey: 'homelab/dns',
            deploymentId: 7,
            status: 'success',
            stage: null,
            commit: 'abc',
            durationMs: 1200,
            at: '2025-06-28T18:00:02.000Z',
          },
        ];
        for (const e of events) sup.emit(e);
        await readUntil(reader, state, (t) => t.includes('event: deployment.finished\n'));
        await readUntil(reader, state, (t) => /event: deployment\.finished\ndata: .*\n\n/.test(t));
        assert.ok(state.text.includes(`event: state\ndata: ${JSON.stringify(events[0])}\n\n`));
        assert.ok(state.text.includes(`event: deployment.finished\ndata: ${JSON.stringify(events[1])}\n\n`));

        await readUntil(reader, state, (t) => t.includes(': heartbeat '));
        assert.match(state.text, /\n: heartbeat \d{4}-\d\d-\d\dT[^\n]+\n\n/);

        ac.abort();
        await until(
          () => sup.listeners.size === baseline && openEventStreams(s.app) === 0,
          'the server to drop the stream',
          5_000,
          5,
        );
        assert.equal(sup.listeners.size, baseline);
      } finally {
        await s.close();
      }
    },
  );

  test('closeEventStreams ends open streams cleanly and refuses new ones', { timeout: 10_000 }, async () => {
    const s = await serve();
    const sup = s.deps.supervisor as FakeSupervisor;
    const baseline = sup.listeners.size;
    try {
      const res = await fetch(`${s.url}/api/events`);
      const reader = res.body!.getReader();
      const state = { text: '' };
      await readUntil(reader, state, (t) => t.includes(': connected'));
      closeEventStreams(s.app);
      const rest = await readUntil(reader, state, () => false);
      assert.ok(rest.includes(': connected'));
      assert.equal(sup.listeners.size, baseline);
      assert.equal(openEventStreams(s.app), 0);
      // After shutdown began, a new client gets only the retry hint and an ended stream.
      const late = await fetch(`${s.url}/api/events`);
      assert.equal(late.status, 200);
      assert.match(await late.text(), /^retry: \d+\n\n$/);
      assert.equal(sup.listeners.size, baseline);
      // Plain requests keep working.
      assert.equal((await fetch(`${s.url}/api/health`)).status, 200);
    } finally {
      await s.close();
    }
  });

  test('aborting deps.signal ends the streams too', { timeout: 10_000 }, async () => {
    const ac = new AbortController();
    const s = await serve({ signal: ac.signal });
    try {
      const res = await fetch(`${s.url}/api/events`);
      const reader = res.body!.getReader();
      const state = { text: '' };
      await readUntil(reader, state, (t) => t.includes(': connected'));
      ac.abort();
      const { done } = await (async () => {
        for (;;) {
          const r = await reader.read();
          if (r.done) return r;
        }
      })();
      assert.equal(done, true);
    } finally {
      await s.close();
    }
  });
  test('a known secret value in an event is masked on the stream', { timeout: 10_000 }, async () => {
    const secret = 'sse-known-secret-7f3a9c';
    registerSecretValues('sse test', [secret]);
    const s = await serve({ sseHeartbeatMs: 60_000 });
    const sup = s.deps.supervisor as FakeSupervisor;
    try {
      const ac = new AbortController();
      const res = await fetch(`${s.url}/api/events`, { signal: ac.signal });
      const reader = res.body!.getReader();
      const state = { text: '' };
      await readUntil(reader, state, (t) => t.includes(': connected\n\n'));
      sup.emit({
        type: 'notification',
        repoKey: 'homelab/dns',
        url: `generic+https://hooks.example/${secret}`,
        service: 'generic',
        ok: false,
        at: '2025-06-28T18:00:03.000Z',
      });
      await readUntil(reader, state, (t) => /event: notification\ndata: .*\n\n/.test(t));
      assert.ok(!state.text.includes(secret), state.text);
      assert.match(state.text, /"url":"generic\+https:\/\/hooks\.example\/\*\*\*"/);
      ac.abort();
    } finally {
      registerSecretValues('sse test', []);
      await s.close();
    }
  });
});
