/**
 * @module End to end, the web UI's API over the real daemon (Basic Auth), a real git server and the real Docker
 * engine: commit subjects, container counts and list, restart/stop/start of one service, unpin, remove (volumes
 * kept), 409 while a deploy is held in a slow compose step, the `actions` history and its SSE events.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startGitServer, type GitServer } from '../helpers/git-server.ts';
import {
  docker,
  dockerAvailable,
  ensureBusyboxImage,
  requireDocker,
  uniqueProjectName,
  webServiceCompose,
} from '../helpers/docker.ts';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { registerTestSecrets } from '../helpers/secret-sweep.ts';
import { until } from '../helpers/wait.ts';
import { disposeE2e, e2eRepoYaml, readSse, useComposeWrapper, type ComposeWrapper } from '../helpers/e2e.ts';

const KEY = 'uiapi/app';
const PASSWORD = 'ui-api-e2e-password-7c1d';
const AUTH = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;
const SUBJECT = 'Add the worker service next to web';
/** Printed by the compose wrapper before each `up`, with the time it was printed (ms since the epoch). */
const LIVE_MARKER = 'ui-api-live-marker';

interface SseEvent {
  type: string;
  data: Record<string, unknown>;
  /** When the client read the frame (ms since the epoch). */
  receivedAt: number;
}

describe('web UI API end to end', { concurrency: false }, () => {
  let git: GitServer;
  let daemon: TestDaemon | undefined;
  let image = '';
  let project = '';
  let tmp = '';
  let holdFile = '';
  let head = '';
  let wrapper: ComposeWrapper | undefined;
  const events: SseEvent[] = [];
  const sse = new AbortController();
  let reading: Promise<void> = Promise.resolve();

  const compose = (marker: string) =>
    `${webServiceCompose({ image, healthy: true, marker })}  worker:
    image: ${JSON.stringify(image)}
    pull_policy: never
    init: true
    command: ["sh", "-c", "echo worker up; exec sleep 3600"]
    volumes:
      - data:/data
  ticker:
    image: ${JSON.stringify(image)}
    pull_policy: never
    init: true
    command: ["sh", "-c", "i=0; while true; do i=$$((i+1)); echo tick $$i; sleep 0.2; done"]
volumes:
  data: {}
`;
  const api = (p: string, init: RequestInit = {}) =>
    fetch(`${daemon!.url}${p}`, {
      ...init,
      headers: { Authorization: AUTH, 'X-Shiparr-Request': '1', ...(init.headers as Record<string, string>) },
    });
  const post = (p: string) => api(p, { method: 'POST' });
  const id = () => daemon!.supervisor.get(KEY)!.id;
  const inspect = async (service: string) => {
    const ps = await docker([
      'ps',
      '-aq',
      '--filter',
      `label=com.docker.compose.project=${project}`,
      '--filter',
      `label=com.docker.compose.service=${service}`,
    ]);
    const cid = ps.stdout.trim().split('\n')[0] ?? '';
    if (!cid) return null;
    const r = await docker(['inspect', '--format', '{{.State.Status}} {{.State.StartedAt}}', cid]);
    const [state, startedAt] = r.stdout.trim().split(' ');
    return { state, startedAt };
  };

  before(async () => {
    git = await startGitServer();
    if (!(await dockerAvailable())) return;
    image = await ensureBusyboxImage();
    project = uniqueProjectName('ui-api');
    tmp = await mkdtemp(path.join(os.tmpdir(), 'shiparr-ui-api-'));
    holdFile = path.join(tmp, 'hold');
    // compose `up` waits while the hold file exists: a deploy can be held in applying for as long as a test needs.
    wrapper = await useComposeWrapper(
      tmp,
      `case " $* " in *" up "*) while [ -e '${holdFile}' ]; do sleep 0.1; done; echo "${LIVE_MARKER} $(date +%s%3N) ${PASSWORD}" >&2 ;; esac`,
    );
    registerTestSecrets('ui-api e2e', [PASSWORD]);
    head = await git.createRepo('app', { 'compose.yaml': compose('v1') }, { message: `${SUBJECT}\n\nBody text.` });
    daemon = await startTestDaemon({
      projects: {
        'uiapi.yaml': `project: uiapi
repositories:
${e2eRepoYaml('app', { url: git.repoUrl('app'), composeProject: project, checkInterval: 3600, healthTimeout: 30, applyTimeout: 120 })}`,
      },
      // Two streams at most: the test's event stream and one log follow.
      env: { SHIPARR_AUTH_MODE: 'basic', SHIPARR_AUTH_PASSWORD: PASSWORD, SHIPARR_MAX_SSE_CLIENTS: '2' },
    });
    const res = await api('/api/events', { signal: sse.signal });
    assert.equal(res.status, 200);
    let connected = false;
    reading = readSse(
      res.body,
      (f) => events.push(f),
      () => (connected = true),
    );
    await until(() => connected, 'the SSE stream to open', 10_000, 10);
  });

  after(async () => {
    sse.abort();
    await reading;
    await disposeE2e({ daemon, wrapper, projects: [project], git, tmp });
  });

  test('the boot deployment records the commit subject; RepoStatus carries it and the container counts', async (t) => {
    if (!(await requireDocker(t))) return;
    const d = await until(
      () => daemon!.store.listDeployments(KEY, { limit: 5 }).items.find((r) => r.status === 'success'),
      'the boot deployment',
      90_000,
    );
    assert.equal(d.commit, head);
    const page = (await (await api(`/api/repositories/${id()}/deployments`)).json()) as {
      items: { commitSubject: string | null }[];
    };
    assert.equal(page.items[0]?.commitSubject, SUBJECT);
    const status = await until(
      async () => {
        const s = (await (await api(`/api/repositories/${id()}`)).json()) as {
          lastCommitSubject: string | null;
          containers: { total: number; running: number; unhealthy: number } | null;
        };
        return s.containers?.running === 3 ? s : null;
      },
      'the container counts',
      20_000,
    );
    assert.equal(status.lastCommitSubject, SUBJECT);
    assert.deepEqual(status.containers, { total: 3, running: 3, unhealthy: 0 });
    const list = (await (await api('/api/repositories')).json()) as { key: string; containers: unknown }[];
    assert.deepEqual(list.find((r) => r.key === KEY)?.containers, { total: 3, running: 3, unhealthy: 0 });
  });

  test('live output: compose lines reach /api/events as deployment.log before deployment.finished', async (t) => {
    if (!(await requireDocker(t))) return;
    await until(() => daemon!.supervisor.get(KEY)?.state === 'idle', 'idle', 60_000);
    const r = await post(`/api/repositories/${id()}/deploy?wait=true&timeout=120`);
    assert.equal(r.status, 200);
    const { deploymentId } = (await r.json()) as { deploymentId: number };
    const finished = await until(
      () => events.findIndex((e) => e.type === 'deployment.finished' && e.data.deploymentId === deploymentId) + 1,
      'deployment.finished',
      10_000,
    );
    const mine = events.filter((e) => e.type === 'deployment.log' && e.data.deploymentId === deploymentId);
    const markerFrame = mine.find((e) => (e.data.lines as string[]).some((l) => l.startsWith(LIVE_MARKER)));
    assert.ok(markerFrame, `a deployment.log frame with the marker (got ${JSON.stringify(mine.map((e) => e.data))})`);
    assert.ok(events.indexOf(markerFrame) < finished - 1, 'the marker frame comes before deployment.finished');
    assert.equal(markerFrame.data.stage, 'applying');
    assert.equal(markerFrame.data.repoKey, KEY);
    assert.ok(!Number.isNaN(Date.parse(String(markerFrame.data.at))));
    const line = (markerFrame.data.lines as string[]).find((l) => l.startsWith(LIVE_MARKER))!;
    // The line carried the daemon's password (a registered secret): masked before it left the daemon.
    assert.match(line, /\*\*\*$/);
    assert.ok(!events.some((e) => JSON.stringify(e.data).includes(PASSWORD)), 'no frame carries the secret');
    assert.ok(!(daemon!.store.getDeploymentLogs(deploymentId) ?? '').includes(PASSWORD), 'nor the stored log');
    const latencyMs = markerFrame.receivedAt - Number(line.split(' ')[1]);
    t.diagnostic(`live output latency, line printed → SSE frame read: ${latencyMs} ms`);
    assert.ok(latencyMs >= 0 && latencyMs < 5_000, `latency ${latencyMs} ms`);
    // Compose's own lines too (container events), and the stored log is unchanged: no marker-only streaming.
    assert.ok(mine.some((e) => (e.data.lines as string[]).some((l) => /Container|Running|Started/.test(l))));
    assert.ok(mine.some((e) => e.data.stage === 'pulling'));
    assert.match(daemon!.store.getDeploymentLogs(deploymentId) ?? '', /applying: docker compose up -d/);
  });

  test('GET containers lists the project containers from the engine; 404 for an unknown repository', async (t) => {
    if (!(await requireDocker(t))) return;
    const res = await api(`/api/repositories/${id()}/containers`);
    assert.equal(res.status, 200);
    const { items } = (await res.json()) as {
      items: {
        id: string;
        name: string;
        service: string;
        state: string;
        health: string | null;
        image: string;
        startedAt: string;
      }[];
    };
    assert.deepEqual(items.map((c) => c.service).sort(), ['ticker', 'web', 'worker']);
    const web = items.find((c) => c.service === 'web')!;
    assert.equal(web.state, 'running');
    assert.ok(web.health === 'healthy' || web.health === 'starting', String(web.health));
    assert.equal(web.image, image);
    assert.match(web.id, /^[0-9a-f]{64}$/);
    assert.ok(Date.parse(web.startedAt) > 0);
    assert.equal(items.find((c) => c.service === 'worker')?.health, null);
    assert.equal((await api('/api/repositories/uiapi%2Fnope/containers')).status, 404);
    assert.equal((await api('/api/repositories/99999/containers')).status, 404);
  });

  test('restart changes StartedAt; stop → exited; start → running; rows name user:admin; SSE action events', async (t) => {
    if (!(await requireDocker(t))) return;
    const before = await inspect('web');
    assert.equal(before?.state, 'running');
    const r = await post(`/api/repositories/${id()}/services/web/restart`);
    assert.equal(r.status, 200);
    const { action } = (await r.json()) as { action: Record<string, unknown> };
    assert.equal(action.action, 'restart');
    assert.equal(action.service, 'web');
    assert.equal(action.status, 'success');
    assert.equal(action.error, null);
    assert.equal(action.triggeredBy, 'user:admin');
    assert.ok(action.startedAt && action.finishedAt);
    const afterRestart = await inspect('web');
    assert.equal(afterRestart?.state, 'running');
    assert.notEqual(afterRestart?.startedAt, before?.startedAt);

    assert.equal((await post(`/api/repositories/${id()}/services/worker/stop`)).status, 200);
    assert.equal((await inspect('worker'))?.state, 'exited');
    const counts = await until(
      async () => {
        const s = (await (await api(`/api/repositories/${id()}`)).json()) as { containers: { running: number } | null };
        return s.containers?.running === 2 ? s.containers : null;
      },
      'counts after stop',
      20_000,
    );
    assert.deepEqual(counts, { total: 3, running: 2, unhealthy: 0 });
    assert.equal((await post(`/api/repositories/${id()}/services/worker/start`)).status, 200);
    assert.equal((await inspect('worker'))?.state, 'running');

    const page = (await (await api(`/api/repositories/${id()}/actions?limit=2`)).json()) as {
      items: { action: string; service: string; triggeredBy: string }[];
      nextBefore: number | null;
    };
    assert.deepEqual(
      page.items.map((a) => `${a.action}:${a.service}:${a.triggeredBy}`),
      ['start:worker:user:admin', 'stop:worker:user:admin'],
    );
    assert.ok(page.nextBefore);
    const older = (await (await api(`/api/repositories/${id()}/actions?before=${page.nextBefore}`)).json()) as {
      items: { action: string }[];
      nextBefore: number | null;
    };
    assert.deepEqual(
      older.items.map((a) => a.action),
      ['restart'],
    );
    assert.equal(older.nextBefore, null);
    await until(
      () => events.filter((e) => e.type === 'action' && e.data.repoKey === KEY).length >= 3,
      'three action events',
      10_000,
    );
    const ev = events.find((e) => e.type === 'action' && e.data.action === 'restart')!;
    assert.equal(ev.data.service, 'web');
    assert.equal(ev.data.status, 'success');
    assert.equal(ev.data.triggeredBy, 'user:admin');
    assert.equal(typeof ev.data.actionId, 'number');
  });

  test('follow=1 streams a container log as produced, until the container stops; follows are capped', async (t) => {
    if (!(await requireDocker(t))) return;
    const { items } = (await (await api(`/api/repositories/${id()}/containers`)).json()) as {
      items: { id: string; service: string }[];
    };
    const ticker = items.find((c) => c.service === 'ticker')!;
    const ac = new AbortController();
    const res = await api(`/containers/${ticker.id}/logs?follow=1&tail=1`, { signal: ac.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/plain/);
    assert.equal(res.headers.get('transfer-encoding'), 'chunked');
    // A second follow would exceed SHIPARR_MAX_SSE_CLIENTS=2 only with the event stream counted; follows have their
    // own count, so one more is allowed and the one after is refused.
    const second = new AbortController();
    const res2 = await api(`/containers/${ticker.id}/logs?follow=1&tail=1`, { signal: second.signal });
    assert.equal(res2.status, 200);
    const third = await api(`/containers/${ticker.id}/logs?follow=1&tail=1`);
    assert.equal(third.status, 503);
    assert.ok(third.headers.get('retry-after'));
    second.abort();
    await res2.body?.cancel().catch(() => undefined);

    const ticks: { n: number; at: number }[] = [];
    let text = '';
    let ended = false;
    const reading = (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          text += decoder.decode(chunk, { stream: true });
          for (const m of text.matchAll(/tick (\d+)\n/g)) {
            const n = Number(m[1]);
            if (!ticks.some((x) => x.n === n)) ticks.push({ n, at: Date.now() });
          }
        }
        ended = true;
      } catch {
        // aborted
      }
    })();
    await until(() => ticks.length >= 6, 'six ticks through the follow', 20_000);
    const spread = (ticks.at(-1)!.at - ticks[0]!.at) / (ticks.length - 1);
    t.diagnostic(`follow: ${ticks.length} ticks, ${Math.round(spread)} ms apart on arrival (printed every 200 ms)`);
    assert.ok(spread > 50, 'lines arrive as they are produced, not in one burst');
    // The closed second follow freed its place: another one opens.
    await until(
      async () => {
        const r = await api(`/containers/${ticker.id}/logs?follow=1&tail=1`, { signal: AbortSignal.timeout(2_000) });
        const ok = r.status === 200;
        await r.body?.cancel().catch(() => undefined);
        return ok;
      },
      'a place for a new follow',
      10_000,
    );
    assert.equal((await post(`/api/repositories/${id()}/services/ticker/stop`)).status, 200);
    await until(() => ended, 'the follow to end when the container stops', 30_000);
    await reading;
    ac.abort();
    assert.equal((await post(`/api/repositories/${id()}/services/ticker/start`)).status, 200);
    // Plain reads keep working.
    const plain = await api(`/containers/${ticker.id}/logs?tail=2`);
    assert.equal(plain.status, 200);
    assert.match(await plain.text(), /tick \d+/);
  });

  test('unknown service → 404; POST without the CSRF header or credentials is refused', async (t) => {
    if (!(await requireDocker(t))) return;
    assert.equal((await post(`/api/repositories/${id()}/services/nope/restart`)).status, 404);
    assert.equal((await post(`/api/repositories/99999/services/web/restart`)).status, 404);
    const noCsrf = await fetch(`${daemon!.url}/api/repositories/${id()}/services/web/restart`, {
      method: 'POST',
      headers: { Authorization: AUTH },
    });
    assert.ok(noCsrf.status >= 400 && noCsrf.status < 500, String(noCsrf.status));
    const noAuth = await fetch(`${daemon!.url}/api/repositories/${id()}/services/web/restart`, {
      method: 'POST',
      headers: { 'X-Shiparr-Request': '1' },
    });
    assert.equal(noAuth.status, 401);
  });

  test('409 busy while a deploy is held in compose up; the action is not recorded', async (t) => {
    if (!(await requireDocker(t))) return;
    const rows = (await (await api(`/api/repositories/${id()}/actions`)).json()) as { items: unknown[] };
    await writeFile(holdFile, '');
    try {
      const d = await post(`/api/repositories/${id()}/deploy`);
      assert.equal(d.status, 202);
      await until(() => daemon!.supervisor.get(KEY)?.state === 'applying', 'the deploy to reach applying', 60_000);
      for (const p of ['services/web/restart', 'services/web/stop', 'remove']) {
        const r = await post(`/api/repositories/${id()}/${p}`);
        assert.equal(r.status, 409, p);
        const body = (await r.json()) as { error: { code: string } };
        assert.equal(body.error.code, 'busy');
      }
    } finally {
      await rm(holdFile, { force: true });
    }
    await until(() => daemon!.supervisor.get(KEY)?.state === 'idle', 'idle again', 90_000);
    const after = (await (await api(`/api/repositories/${id()}/actions`)).json()) as { items: unknown[] };
    assert.equal(after.items.length, rows.items.length);
  });

  test('unpin clears a pinned bad commit through the actor and is recorded', async (t) => {
    if (!(await requireDocker(t))) return;
    const bad = await git.commit('app', {
      'compose.yaml': 'services:\n  web:\n    image: 42\n    no_such_key: true\n',
    });
    const r = await post(`/api/repositories/${id()}/deploy?wait=true&timeout=120`);
    assert.equal(r.status, 200);
    await until(() => daemon!.supervisor.get(KEY)?.pinnedCommit === bad, 'the bad commit pinned', 60_000);
    const u = await post(`/api/repositories/${id()}/unpin`);
    assert.equal(u.status, 200);
    const { action } = (await u.json()) as {
      action: { action: string; service: null; status: string; triggeredBy: string };
    };
    assert.deepEqual(
      [action.action, action.service, action.status, action.triggeredBy],
      ['unpin', null, 'success', 'user:admin'],
    );
    assert.equal(daemon!.supervisor.get(KEY)?.pinnedCommit, null);
    assert.equal(daemon!.store.getRepository(KEY)?.pinnedCommit, null);
    // Put the good compose file back on the branch, so no later check deploys the broken one.
    await git.commit('app', { 'compose.yaml': compose('v1') });
  });

  test('remove leaves no container of the project and keeps its volume', async (t) => {
    if (!(await requireDocker(t))) return;
    await until(() => daemon!.supervisor.get(KEY)?.state === 'idle', 'idle', 60_000);
    const r = await post(`/api/repositories/${id()}/remove`);
    assert.equal(r.status, 200);
    const { action } = (await r.json()) as { action: { action: string; service: null; status: string } };
    assert.deepEqual([action.action, action.service, action.status], ['remove', null, 'success']);
    const ps = await docker(['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`]);
    assert.equal(ps.stdout.trim(), '');
    const vol = await docker(['volume', 'inspect', `${project}_data`]);
    assert.equal(vol.code, 0, 'the named volume is kept');
    const { items } = (await (await api(`/api/repositories/${id()}/containers`)).json()) as { items: unknown[] };
    assert.deepEqual(items, []);
  });
});
