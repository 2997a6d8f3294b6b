/** @module SSE cap: SHIPARR_MAX_SSE_CLIENTS open /api/events streams at most; one more → 503 JSON + Retry-After. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { openEventStreams } from '../../../src/http/app.ts';
import { until } from '../../helpers/wait.ts';
import { basic, captureLogger, serve, type Served } from './fakes.ts';

/** Opens a stream and waits for its first frame; the controller closes it. */
async function openStream(s: Served, headers: Record<string, string> = {}): Promise<AbortController> {
  const ac = new AbortController();
  const res = await fetch(`${s.url}/api/events`, { headers, signal: ac.signal });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const first = await reader.read();
  assert.match(new TextDecoder().decode(first.value), /: connected/);
  return ac;
}

describe('GET /api/events cap', () => {
  for (const [label, cap] of [
    ['the default cap (64)', undefined],
    ['SHIPARR_MAX_SSE_CLIENTS=3', 3],
  ] as const) {
    test(`${label}: cap streams open, one more is 503 with Retry-After, a freed slot is usable again`, async () => {
      const { log, lines } = captureLogger();
      const s = await serve({
        log,
        auth: { enabled: true, username: 'admin', password: 'pw' },
        ...(cap === undefined ? {} : { limits: { maxSseClients: cap } }),
      });
      const max = cap ?? 64;
      const auth = { authorization: basic('admin', 'pw') };
      const streams: AbortController[] = [];
      try {
        for (let i = 0; i < max; i++) streams.push(await openStream(s, auth));
        assert.equal(openEventStreams(s.app), max);
        const refused = await fetch(`${s.url}/api/events`, { headers: auth });
        assert.equal(refused.status, 503);
        assert.match(refused.headers.get('content-type') ?? '', /application\/json/);
        assert.ok(Number(refused.headers.get('retry-after')) >= 1, 'Retry-After');
        const body = (await refused.json()) as { error: { code: string; message: string } };
        assert.equal(body.error.code, 'SERVICE_UNAVAILABLE');
        assert.match(body.error.message, /too many open event streams/);
        // Without credentials it is still 401 first (the cap tells nothing to strangers).
        assert.equal((await fetch(`${s.url}/api/events`)).status, 401);

        streams.shift()!.abort();
        await until(() => openEventStreams(s.app) === max - 1, 'the closed stream to be released');
        streams.push(await openStream(s, auth));
        assert.deepEqual(
          lines.filter((l) => l['msg'] === 'http request failed'),
          [],
          'a refusal is not a server error',
        );
      } finally {
        for (const c of streams) c.abort();
        await s.close();
      }
    });
  }
});
