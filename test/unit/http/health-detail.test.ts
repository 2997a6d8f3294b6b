/**
 * @module /api/health: without credentials only `{status, version}` and one `ok` per component; error messages,
 * config issues (with their file paths) and uptime only for a caller the API's auth admits (everyone with auth off).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { HealthReport } from '../../../src/http/ports.ts';
import { basic, serve } from './fakes.ts';

const PASSWORD = 'health-detail-pw';
const DEGRADED: HealthReport = {
  status: 'degraded',
  db: { ok: true },
  docker: { ok: false, error: 'connect ENOENT /var/run/docker.sock' },
  config: {
    ok: false,
    errors: [{ file: '/srv/shiparr/config/projects/private.yaml', path: 'repositories.x.url', message: 'is required' }],
  },
  version: '1.2.3',
  uptimeSeconds: 4242,
};

describe('GET /api/health', () => {
  test('auth on: the short form without credentials, the full report with them, 401 with wrong ones', async () => {
    const s = await serve({
      auth: { enabled: true, username: 'admin', password: PASSWORD },
      health: async () => structuredClone(DEGRADED),
    });
    try {
      const anon = await fetch(`${s.url}/api/health`);
      assert.equal(anon.status, 200);
      assert.equal(anon.headers.get('cache-control'), 'no-store');
      assert.equal(anon.headers.get('www-authenticate'), null, 'no login prompt for a probe');
      const text = await anon.text();
      assert.deepEqual(JSON.parse(text), {
        status: 'degraded',
        version: '1.2.3',
        db: { ok: true },
        docker: { ok: false },
        config: { ok: false },
      });
      for (const secret of ['ENOENT', 'docker.sock', 'private.yaml', '/srv/shiparr', '4242', 'uptime'])
        assert.ok(!text.includes(secret), `"${secret}" is not shown without credentials`);

      const full = await fetch(`${s.url}/api/health`, { headers: { authorization: basic('admin', PASSWORD) } });
      assert.equal(full.status, 200);
      assert.deepEqual(await full.json(), DEGRADED);

      const wrong = await fetch(`${s.url}/api/health`, { headers: { authorization: basic('admin', 'nope') } });
      assert.equal(wrong.status, 401);
      assert.equal(((await wrong.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
    } finally {
      await s.close();
    }
  });

  test('auth off: every caller the app admits gets the full report', async () => {
    const s = await serve({ health: async () => structuredClone(DEGRADED) });
    try {
      const res = await fetch(`${s.url}/api/health`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), DEGRADED);
    } finally {
      await s.close();
    }
  });
});
