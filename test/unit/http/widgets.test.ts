/** @module Dashy endpoints: the original Shiparr script's widget JSON and the custom-list array, exact shapes, status mapping, CORS. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { webUrl } from '../../../src/http/present.ts';
import { widgetStatus } from '../../../src/http/routes/widgets.ts';
import { deployment, type FakeSupervisor, repoStatus, serve, type Served } from './fakes.ts';

describe('Dashy widgets', () => {
  let s: Served;
  before(async () => {
    s = await serve();
  });
  after(() => s.close());

  test("GET /widget/dashy?project= → the original Shiparr script's shape, four entries per repository", async () => {
    const res = await fetch(`${s.url}/widget/dashy?project=homelab`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    assert.deepEqual(await res.json(), {
      widgets: [
        { type: 'text', value: 'dns', label: 'Repository' },
        { type: 'text', value: '-', label: 'Version' },
        { type: 'status', value: 'stopped', label: 'Status' },
        { type: 'text', value: '2025-06-29T10:00:00.000Z', label: 'Last Deploy' },
        { type: 'text', value: 'media-stack', label: 'Repository' },
        { type: 'text', value: 'a1b2c3d', label: 'Version' },
        { type: 'status', value: 'running', label: 'Status' },
        { type: 'text', value: '2025-06-28T18:01:00.000Z', label: 'Last Deploy' },
      ],
    });
  });

  test('GET /widget/dashy/custom-list → Dashy custom-list array, newest first', async () => {
    const res = await fetch(`${s.url}/widget/dashy/custom-list?project=homelab`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), '*');
    const rows = await res.json();
    assert.ok(Array.isArray(rows), 'Dashy calls data.sort(): the body must be an array');
    assert.deepEqual(rows, [
      {
        link: { text: 'dns', url: 'https://github.com/acme/dns', title: 'homelab/dns (main)' },
        value: { text: 'stopped', title: 'Last deploy: 2025-06-29T10:00:00.000Z' },
        date: '2025-06-29T10:00:00.000Z',
      },
      {
        link: { text: 'media-stack', url: 'https://github.com/acme/media-stack', title: 'homelab/media-stack (main)' },
        value: { text: 'running · a1b2c3d', title: 'Last deploy: 2025-06-28T18:01:00.000Z' },
        date: '2025-06-28T18:01:00.000Z',
      },
    ]);
    assert.ok(
      !JSON.stringify(rows).includes('"success":false'),
      'never "success": false (Dashy treats it as an error)',
    );
  });

  test('a busy repository is "deploying"; a never-deployed one is "stopped" with "never"', async () => {
    const sup = s.deps.supervisor as FakeSupervisor;
    sup.repos.push(
      repoStatus({ id: 9, project: 'homelab', name: 'zz-new', busy: true }),
      repoStatus({ id: 10, project: 'homelab', name: 'zz-idle' }),
    );
    try {
      const { widgets } = (await (await fetch(`${s.url}/widget/dashy?project=homelab`)).json()) as {
        widgets: { value: string; label: string }[];
      };
      assert.equal(widgets.length, 16);
      assert.deepEqual(
        widgets.slice(8).map((w) => w.value),
        ['zz-idle', '-', 'stopped', 'never', 'zz-new', '-', 'deploying', 'never'],
      );
    } finally {
      sup.repos.splice(3);
    }
  });

  test('widgetStatus maps every deployment status', () => {
    const repo = repoStatus({ id: 1, project: 'p', name: 'r' });
    const d = (status: Parameters<typeof deployment>[0]['status']) =>
      deployment({ id: 1, repositoryId: 1, repoKey: 'p/r', status });
    assert.equal(widgetStatus(repo, d('success')), 'running');
    for (const st of ['failed', 'rolled_back', 'interrupted'] as const)
      assert.equal(widgetStatus(repo, d(st)), 'stopped');
    for (const st of ['pending', 'running'] as const) assert.equal(widgetStatus(repo, d(st)), 'deploying');
    assert.equal(widgetStatus({ ...repo, busy: true }, d('success')), 'deploying');
    assert.equal(widgetStatus({ ...repo, lastDeployedCommit: 'abc1234' }, undefined), 'running');
    assert.equal(widgetStatus(repo, undefined), 'stopped');
  });

  test('webUrl turns git URLs into browsable https URLs without credentials', () => {
    assert.equal(webUrl('github.com/user/media-stack.git'), 'https://github.com/user/media-stack');
    assert.equal(webUrl('https://tok:x@gitlab.com/a/b.git'), 'https://gitlab.com/a/b');
    assert.equal(webUrl('ssh://git@git.example:2222/a/b.git'), 'https://git.example/a/b');
    assert.equal(webUrl('git@codeberg.org:a/b.git'), 'https://codeberg.org/a/b');
  });

  test('OPTIONS preflight → 204 with CORS headers', async () => {
    for (const path of ['/widget/dashy?project=homelab', '/widget/dashy/custom-list?project=homelab']) {
      const res = await fetch(`${s.url}${path}`, {
        method: 'OPTIONS',
        headers: {
          origin: 'http://dashy.lan',
          'access-control-request-method': 'GET',
          'access-control-request-headers': 'x-foo',
        },
      });
      assert.equal(res.status, 204, path);
      assert.equal(res.headers.get('access-control-allow-origin'), '*');
      assert.match(res.headers.get('access-control-allow-methods') ?? '', /GET/);
      assert.equal(res.headers.get('access-control-allow-headers'), 'x-foo');
    }
  });

  test('a known project without repositories → 200 with no entries (not 404)', async () => {
    const res = await fetch(`${s.url}/widget/dashy?project=broken`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { widgets: [] });
    const list = await fetch(`${s.url}/widget/dashy/custom-list?project=broken`);
    assert.equal(list.status, 200);
    assert.deepEqual(await list.json(), []);
  });

  test('unknown project → 404, missing/empty/invalid/repeated project → 400, all with CORS', async () => {
    for (const [q, status] of [
      ['?project=nope', 404],
      ['', 400],
      ['?project=', 400],
      ['?project=../x', 400],
      ['?project=homelab&project=lab', 400],
    ] as const) {
      for (const base of ['/widget/dashy', '/widget/dashy/custom-list']) {
        const res = await fetch(`${s.url}${base}${q}`);
        assert.equal(res.status, status, `${base}${q}`);
        assert.equal(res.headers.get('access-control-allow-origin'), '*');
        assert.ok(((await res.json()) as { error?: unknown }).error);
      }
    }
  });

  test('GET /health/project/:name → 200 when every repository runs, 503 otherwise, 404 unknown', async () => {
    const down = await fetch(`${s.url}/health/project/homelab`);
    assert.equal(down.status, 503);
    assert.deepEqual(await down.json(), {
      project: 'homelab',
      up: false,
      down: [{ repository: 'dns', status: 'stopped' }],
    });
    const sup = s.deps.supervisor as FakeSupervisor;
    sup.repos[2] = { ...sup.repos[2]!, lastDeployedCommit: 'abcdef0123' };
    const up = await fetch(`${s.url}/health/project/lab`);
    assert.equal(up.status, 200);
    assert.deepEqual(await up.json(), { project: 'lab', up: true, down: [] });
    assert.equal((await fetch(`${s.url}/health/project/nope`)).status, 404);
    assert.equal((await fetch(`${s.url}/health/project/..%2Fx`)).status, 400);
  });
});
