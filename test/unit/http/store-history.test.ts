/** @module The real SQLite Store as the HistoryReader: proves the port mapping (ids, paging, logs, widget status). */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Store } from '../../../src/store/index.ts';
import { repoStatus, serve, type Served, world } from './fakes.ts';

describe('HistoryReader backed by the real Store', () => {
  let dir: string;
  let store: Store;
  let s: Served;
  let repoId: number;
  const ids: number[] = [];

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'shiparr-http-store-'));
    store = Store.open(path.join(dir, 'shiparr.db'));
    store.syncConfig([
      {
        name: 'homelab',
        description: null,
        file: '/cfg/homelab.yaml',
        repositories: [
          {
            key: 'homelab/media-stack',
            name: 'media-stack',
            url: 'https://github.com/acme/media-stack.git',
            branch: 'main',
            path: '.',
            localPath: '/d/m',
            checkInterval: 300,
          },
        ],
      },
    ]);
    repoId = store.getRepository('homelab/media-stack')!.id;
    for (const [status, commit] of [
      ['success', '1111111aaaa'],
      ['failed', '2222222bbbb'],
      ['success', '3333333cccc'],
    ] as const) {
      const d = store.createDeployment({ repoKey: 'homelab/media-stack', trigger: 'api', status: 'running', commit });
      store.appendDeploymentLog(d.id, `deploying ${commit} with https://bob:t0psecret@git.example/x\n`);
      store.finishDeployment(
        d.id,
        status === 'failed' ? { status, stage: 'applying', error: 'compose up failed' } : { status },
      );
      ids.push(d.id);
    }
    const w = world();
    w.supervisor.repos = [
      repoStatus({ id: repoId, project: 'homelab', name: 'media-stack', lastDeployedCommit: '3333333cccc' }),
    ];
    s = await serve({ ...w, history: store });
  });
  after(async () => {
    await s.close();
    store.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('paging follows the store: newest first, nextBefore, before', async () => {
    const p1 = (await (await fetch(`${s.url}/api/repositories/${repoId}/deployments?limit=2`)).json()) as {
      items: { id: number; status: string }[];
      nextBefore: number | null;
    };
    assert.deepEqual(
      p1.items.map((d) => d.id),
      [ids[2], ids[1]],
    );
    assert.deepEqual(
      p1.items.map((d) => d.status),
      ['success', 'failed'],
    );
    assert.equal(p1.nextBefore, ids[1]);
    const p2 = (await (
      await fetch(`${s.url}/api/repositories/homelab%2Fmedia-stack/deployments?limit=2&before=${p1.nextBefore}`)
    ).json()) as { items: { id: number }[]; nextBefore: number | null };
    assert.deepEqual(
      p2.items.map((d) => d.id),
      [ids[0]],
    );
    assert.equal(p2.nextBefore, null);
  });

  test('one deployment and its logs (masked by the store)', async () => {
    const d = (await (await fetch(`${s.url}/api/deployments/${ids[1]}`)).json()) as Record<string, unknown>;
    assert.equal(d['status'], 'failed');
    assert.equal(d['stage'], 'applying');
    assert.equal(d['repoKey'], 'homelab/media-stack');
    assert.equal(d['repositoryId'], repoId);
    assert.equal(typeof d['durationMs'], 'number');
    const logs = await (await fetch(`${s.url}/api/deployments/${ids[1]}/logs`)).text();
    assert.match(logs, /deploying 2222222bbbb/);
    assert.doesNotMatch(logs, /t0psecret/);
    assert.equal((await fetch(`${s.url}/api/deployments/${ids[2]! + 100}`)).status, 404);
  });

  test('the widget reads the latest stored deployment', async () => {
    const body = (await (await fetch(`${s.url}/widget/dashy?project=homelab`)).json()) as {
      widgets: { value: string; label: string }[];
    };
    assert.deepEqual(
      body.widgets.slice(0, 3).map((w) => w.value),
      ['media-stack', '3333333', 'running'],
    );
  });

  test('the widget shows a deployment the moment it starts and the moment it finishes', async () => {
    const widget = async () => {
      const body = (await (await fetch(`${s.url}/widget/dashy?project=homelab`)).json()) as {
        widgets: { value: string; label: string }[];
      };
      return Object.fromEntries(body.widgets.map((w) => [w.label, w.value]));
    };
    const d = store.createDeployment({ repoKey: 'homelab/media-stack', trigger: 'api', status: 'running' });
    assert.equal((await widget())['Status'], 'deploying');
    const done = store.finishDeployment(d.id, { status: 'failed', stage: 'applying', error: 'compose up failed' });
    assert.deepEqual(await widget(), {
      Repository: 'media-stack',
      Version: '3333333',
      Status: 'stopped',
      'Last Deploy': done.finishedAt,
    });
    const next = store.createDeployment({ repoKey: 'homelab/media-stack', trigger: 'api', status: 'running' });
    const ok = store.finishDeployment(next.id, { status: 'success' });
    assert.equal((await widget())['Status'], 'running');
    assert.equal((await widget())['Last Deploy'], ok.finishedAt);
  });
});
