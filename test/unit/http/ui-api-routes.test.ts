/**
 * @module The web UI's routes through real HTTP over fake ports: the request → port mapping, 404/409/400/503
 * answers, the CSRF rule on the action POSTs, masking of an action's error, and paging of the actions list. The
 * engine side is tested on the real engine in test/e2e/ui-api-actions.test.ts.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import type { ActionRecord } from '../../../src/domain/types.ts';
import type { EngineAction, ServicePort } from '../../../src/http/ports.ts';
import { registerSecretValues } from '../../../src/lib/redact.ts';
import { serve, type Served } from './fakes.ts';
import { until } from '../../helpers/wait.ts';

const SECRET = 'ui-api-unit-secret-5f2a9c';

/** A ServicePort that records calls; `busy` and the known services decide its answers. */
class FakeServices implements ServicePort {
  calls: string[] = [];
  busy = false;
  services = new Set(['web', 'db']);
  rows: ActionRecord[] = [];
  async containers(repoKey: string) {
    this.calls.push(`containers ${repoKey}`);
    return [
      {
        id: 'c1',
        name: 'media-web-1',
        service: 'web',
        state: 'running',
        health: null,
        image: 'busybox',
        startedAt: '2025-06-28T18:00:00.000Z',
      },
    ];
  }
  async act(repoKey: string, action: EngineAction, service: string | null, opts: { triggeredBy?: string }) {
    this.calls.push(`${action} ${repoKey} ${service}`);
    if (this.busy) return { ok: false as const, reason: 'busy' as const };
    if (service !== null && !this.services.has(service))
      return { ok: false as const, reason: 'unknown-service' as const };
    return { ok: true as const, action: this.#row(action, service, opts.triggeredBy ?? null, `failed with ${SECRET}`) };
  }
  unpin(repoKey: string, opts: { triggeredBy?: string }) {
    this.calls.push(`unpin ${repoKey}`);
    return this.#row('unpin', null, opts.triggeredBy ?? null, null);
  }
  listActions(repoId: number, q: { limit: number; before?: number }) {
    this.calls.push(`list ${repoId} ${q.limit} ${q.before ?? '-'}`);
    const items = this.rows.filter((r) => r.id < (q.before ?? Infinity)).slice(0, q.limit);
    return { items, nextBefore: items.length === q.limit ? (items.at(-1)?.id ?? null) : null };
  }
  #row(action: ActionRecord['action'], service: string | null, by: string | null, error: string | null): ActionRecord {
    const row: ActionRecord = {
      id: this.rows.length + 1,
      repositoryId: 1,
      action,
      service,
      status: error ? 'failed' : 'success',
      error,
      triggeredBy: by,
      startedAt: '2025-06-28T18:00:00.000Z',
      finishedAt: '2025-06-28T18:00:01.000Z',
    };
    this.rows.unshift(row);
    return row;
  }
}

describe('web UI routes', () => {
  let s: Served;
  const services = new FakeServices();
  const post = (p: string, headers: Record<string, string> = { 'X-Shiparr-Request': '1' }) =>
    fetch(`${s.url}${p}`, { method: 'POST', headers });
  before(async () => {
    registerSecretValues('ui-api unit', [SECRET]);
    s = await serve({ services });
  });
  after(() => s.close());

  test('containers of a repository by id or key; 404 unknown; 400 malformed', async () => {
    const res = await fetch(`${s.url}/api/repositories/homelab%2Fmedia-stack/containers`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { items: { service: string }[] };
    assert.deepEqual(
      body.items.map((c) => c.service),
      ['web'],
    );
    assert.equal(services.calls.at(-1), 'containers homelab/media-stack');
    assert.equal((await fetch(`${s.url}/api/repositories/99/containers`)).status, 404);
    assert.equal((await fetch(`${s.url}/api/repositories/..%2F/containers`)).status, 400);
  });

  test('service actions: 200 with the action (error masked), 404 unknown service, 409 busy', async () => {
    const r = await post('/api/repositories/1/services/web/restart');
    assert.equal(r.status, 200);
    const { action } = (await r.json()) as { action: Record<string, unknown> };
    assert.deepEqual(Object.keys(action).sort(), [
      'action',
      'error',
      'finishedAt',
      'id',
      'service',
      'startedAt',
      'status',
      'triggeredBy',
    ]);
    assert.equal(action.action, 'restart');
    assert.equal(action.error, 'failed with ***');
    assert.equal((await post('/api/repositories/1/services/nope/stop')).status, 404);
    assert.equal((await post('/api/repositories/1/services/-bad/stop')).status, 404);
    assert.equal((await post('/api/repositories/99/services/web/stop')).status, 404);
    services.busy = true;
    try {
      for (const p of ['services/web/start', 'remove']) {
        const b = await post(`/api/repositories/1/${p}`);
        assert.equal(b.status, 409);
        assert.equal(((await b.json()) as { error: { code: string } }).error.code, 'busy');
      }
    } finally {
      services.busy = false;
    }
  });

  test('a POST without the CSRF header reaches no port', async () => {
    const before = services.calls.length;
    const r = await post('/api/repositories/1/remove', {});
    assert.ok(r.status >= 400 && r.status < 500, String(r.status));
    assert.equal((await post('/api/repositories/1/unpin', { 'Content-Type': 'text/plain' })).status >= 400, true);
    assert.equal(services.calls.length, before);
  });

  test('unpin answers the recorded action; actions page with limit and before', async () => {
    const u = await post('/api/repositories/homelab%2Fmedia-stack/unpin');
    assert.equal(u.status, 200);
    assert.equal(((await u.json()) as { action: { action: string } }).action.action, 'unpin');
    const page = (await (await fetch(`${s.url}/api/repositories/1/actions?limit=1`)).json()) as {
      items: { id: number; action: string }[];
      nextBefore: number | null;
    };
    assert.deepEqual(
      page.items.map((a) => a.action),
      ['unpin'],
    );
    assert.equal(page.nextBefore, page.items[0]?.id);
    assert.equal((await fetch(`${s.url}/api/repositories/1/actions?limit=0`)).status, 400);
    assert.equal((await fetch(`${s.url}/api/repositories/1/actions?before=x`)).status, 400);
  });

  test('without a service port the routes answer 503; follow without a follow-capable reader is 503', async () => {
    const bare = await serve();
    try {
      const r = await fetch(`${bare.url}/api/repositories/1/containers`);
      assert.equal(r.status, 503);
      assert.equal((await fetch(`${bare.url}/containers/abc/logs?follow=1`)).status, 503);
      assert.equal((await fetch(`${bare.url}/containers/abc/logs?follow=maybe`)).status, 400);
    } finally {
      await bare.close();
    }
  });

  test('container and service log follows share one budget (SHIPARR_MAX_SSE_CLIENTS): the third is 503 until one ends', async () => {
    const open: PassThrough[] = [];
    const stream = () => {
      const p = new PassThrough();
      p.write('line\n');
      open.push(p);
      return p;
    };
    const swarm = Object.assign(new FakeServices(), {
      serviceLogs: async (_key: string, _service: string, _q: unknown, follow: AbortSignal | null) =>
        follow ? stream() : 'text\n',
    });
    const app = await serve({
      services: swarm,
      containers: { logs: async () => 'text\n', follow: async () => stream() },
      limits: { maxSseClients: 2 },
    });
    const readers: AbortController[] = [];
    const follow = async (p: string) => {
      const ac = new AbortController();
      readers.push(ac);
      const r = await fetch(`${app.url}${p}`, { signal: ac.signal });
      if (r.status === 200) void r.body?.getReader().read();
      else await r.text();
      return r.status;
    };
    try {
      assert.equal(await follow('/containers/abc/logs?follow=1'), 200);
      assert.equal(await follow('/api/repositories/1/services/web/logs?follow=1'), 200);
      assert.equal(await follow('/api/repositories/1/services/web/logs?follow=1'), 503);
      assert.equal(await follow('/containers/abc/logs?follow=1'), 503);
      open[0]!.end();
      await until(async () => (await follow('/containers/abc/logs?follow=1')) === 200, 'a freed follow slot', 10_000);
    } finally {
      for (const r of readers) r.abort();
      for (const p of open) p.destroy();
      await app.close();
    }
  });
});
