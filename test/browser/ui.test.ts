/**
 * @module The web UI in real chromium against the REAL daemon (Basic Auth on), git over smart HTTP and the Docker
 * engine: the overview lists the repository; Deploy (confirmed in a dialog) shows the run live and its result
 * without a reload; Roll back to a deployment picked in the timeline deploys that commit; Unpin, Suspend and Resume
 * change what is shown; a bad project file shows its error at the top until it is fixed; axe-core finds nothing
 * serious on the overview, repository and deployment pages in light and dark; no page breaks the CSP. Parts that
 * need the ui-api branch (live log lines, containers and their actions) skip with "needs ui-api" while its
 * endpoints answer 404. SHIPARR_UPDATE_SCREENSHOTS=1 rewrites docs/screenshots/.
 */
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { buildUi } from '../../scripts/build-ui.ts';
import type { ActivityEvent, Deployment, RepoStatus } from '../../src/domain/types.ts';
import { axeViolations, launchChromium, requireChromium, watchPage, type PageProblems } from '../helpers/browser.ts';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import {
  composeDown,
  dockerAvailable,
  ensureBusyboxImage,
  removeProjectContainers,
  requireDocker,
  uniqueProjectName,
  webServiceCompose,
} from '../helpers/docker.ts';
import { startGitServer, type GitServer } from '../helpers/git-server.ts';
import { lastSuccessfulDeployment } from '../helpers/store-queries.ts';
import { until } from '../helpers/wait.ts';

const KEY = 'uiproj/site';
const USER = 'admin';
const PASSWORD = 'ui-browser-pw';
const AUTH = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
const SCREENSHOTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/screenshots');
const BUSY = /^(checking|pulling|decrypting|applying|verifying|rollingBack|notifying)$/;

describe('web UI against the real daemon', { concurrency: false }, () => {
  let git: GitServer;
  let daemon: TestDaemon | undefined;
  let project = '';
  let extraProject = '';
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let page: Page | undefined;
  let problems: PageProblems | undefined;
  let repoId = 0;
  let commitA = '';
  let commitB = '';
  let uiApi = false;
  /** deployment.log lines the daemon emitted during the Deploy test, with the time (ms) each was sent. */
  const emitted: { line: string; at: number }[] = [];
  /** Live output the page showed during the Deploy test, with the time (ms) it appeared. */
  let shownLive: { text: string; at: number }[] = [];

  const api = (p: string, init: RequestInit = {}) =>
    fetch(`${daemon!.url}${p}`, {
      ...init,
      headers: { authorization: AUTH, ...(init.headers as Record<string, string> | undefined) },
    });
  const repo = async (): Promise<RepoStatus> => (await (await api(`/api/repositories/${repoId}`)).json()) as RepoStatus;
  const deployments = async (): Promise<Deployment[]> =>
    ((await (await api(`/api/repositories/${repoId}/deployments?limit=50`)).json()) as { items: Deployment[] }).items;

  before(async () => {
    await buildUi();
    git = await startGitServer();
    if (!(await dockerAvailable())) return;
    const image = await ensureBusyboxImage();
    project = uniqueProjectName('e2e-ui');
    extraProject = uniqueProjectName('e2e-ui-extra');
    commitA = await git.createRepo('site', {
      'compose.yaml': webServiceCompose({ image, healthy: true, marker: 'a' }),
    });
    daemon = await startTestDaemon({
      projects: {
        'uiproj.yaml': `project: uiproj
description: Web UI test project
repositories:
  site:
    url: ${git.repoUrl('site')}
    check_interval: 3600
    compose_project: ${project}
    pull: never
    healthcheck: { timeout: 30 }
`,
      },
      env: { SHIPARR_AUTH_ENABLED: 'true', SHIPARR_AUTH_USERNAME: USER, SHIPARR_AUTH_PASSWORD: PASSWORD },
      daemon: { watch: true },
    });
    repoId = daemon.supervisor.get(KEY)!.id;
    uiApi = (await api(`/api/repositories/${repoId}/containers`)).status !== 404;
  });

  after(async () => {
    await context?.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await daemon?.dispose().catch(() => undefined);
    for (const p of [project, extraProject].filter(Boolean)) {
      await composeDown(p);
      await removeProjectContainers(p);
    }
    await git?.close();
  });

  /** The shared page (one browser context with the Basic Auth credentials), or null after a skip. */
  async function ready(t: TestContext): Promise<Page | null> {
    if (!(await requireDocker(t))) return null;
    const exe = await requireChromium(t);
    if (!exe) return null;
    if (!page) {
      browser = await launchChromium(exe);
      context = await browser.newContext({ httpCredentials: { username: USER, password: PASSWORD } });
      page = await context.newPage();
      problems = watchPage(page);
    }
    return page;
  }

  const confirm = async (p: Page): Promise<void> => {
    const dialog = p.getByRole('dialog');
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Confirm' }).click();
    await dialog.waitFor({ state: 'detached', timeout: 30_000 });
  };

  const headingState = (p: Page) => p.locator('h1 .badge');

  test('the overview lists the repository; Deploy (confirmed) shows the run live and its result without reload', async (t) => {
    const p = await ready(t);
    if (!p) return;
    await until(() => lastSuccessfulDeployment(daemon!.store, KEY), 'boot deployment', 120_000);
    await p.goto(`${daemon!.url}/`);
    const row = p.locator(`tr[data-key="${KEY}"]`);
    await row.waitFor();
    await row.locator('.badge', { hasText: 'idle' }).waitFor({ timeout: 30_000 });
    assert.match(await row.innerText(), new RegExp(commitA.slice(0, 7)));
    assert.match(await p.locator('section.project h2').first().innerText(), /uiproj/);

    await row.getByRole('link', { name: 'site' }).click();
    await p.getByRole('heading', { level: 1, name: new RegExp(KEY) }).waitFor();
    const image = await ensureBusyboxImage();
    commitB = await git.commit('site', { 'compose.yaml': webServiceCompose({ image, healthy: true, marker: 'b' }) });

    // From here on: what the page shows, with timestamps, and a marker a reload would lose.
    await p.evaluate(`
      window.noReload = true;
      window.seenStates = [];
      window.seenLive = [];
      new MutationObserver(() => {
        const badge = document.querySelector('h1 .badge');
        const s = badge ? badge.textContent : '';
        if (window.seenStates[window.seenStates.length - 1] !== s) window.seenStates.push(s);
        const live = document.querySelector('pre[aria-label="Live deploy output"]');
        if (live) window.seenLive.push({ text: live.textContent, at: Date.now() });
      }).observe(document.body, { subtree: true, childList: true, characterData: true });
    `);
    const stop = daemon!.supervisor.subscribe((e) => {
      const ev = e as ActivityEvent | { type: 'deployment.log'; repoKey: string; lines: string[] };
      if (ev.type === 'deployment.log' && ev.repoKey === KEY)
        for (const line of ev.lines) emitted.push({ line, at: Date.now() });
    });
    t.after(stop);

    const before = new Set((await deployments()).map((d) => d.id));
    await p.getByRole('button', { name: 'Deploy', exact: true }).click();
    await p
      .getByRole('dialog')
      .getByText(/Deploy uiproj\/site now\?/)
      .waitFor();
    await confirm(p);
    const run = await until(
      async () => (await deployments()).find((d) => !before.has(d.id) && d.status === 'success'),
      'the API deployment to succeed',
      180_000,
    );
    assert.equal(run.trigger, 'api');
    assert.equal(run.commit, commitB);
    assert.equal(run.triggeredBy, `user:${USER}`);
    // The result reaches the page by itself: the timeline's new entry and the deployed commit.
    await p.locator(`li[data-deployment="${run.id}"] .badge`, { hasText: 'success' }).waitFor({ timeout: 30_000 });
    await headingState(p).filter({ hasText: 'idle' }).waitFor({ timeout: 30_000 });
    await p
      .locator('.facts dd', { hasText: commitB.slice(0, 7) })
      .first()
      .waitFor({ timeout: 30_000 });
    const seen = (await p.evaluate('window.seenStates')) as string[];
    assert.ok(
      seen.some((s) => BUSY.test(s)),
      `the live state showed the run (states seen: ${seen.join(' → ')})`,
    );
    assert.equal(await p.evaluate('window.noReload'), true, 'no reload happened');
    shownLive = (await p.evaluate('window.seenLive')) as { text: string; at: number }[];
    const logs = await (await api(`/api/deployments/${run.id}/logs`)).text();
    await p.getByRole('link', { name: `#${run.id}` }).click();
    await p.getByRole('heading', { level: 1, name: `Deployment #${run.id} success` }).waitFor();
    // The captured log arrives after the deployment's facts: wait for its first line.
    const firstLine = logs.trim().split('\n')[0]!.trim();
    assert.ok(firstLine.length > 0, 'the API has a captured log');
    const shownLog = await until(
      async () => {
        const text = await p.getByLabel(`Log of deployment ${run.id}`).innerText();
        return text.includes(firstLine) ? text : null;
      },
      'the captured log in the page',
      30_000,
    );
    assert.match(shownLog, /docker compose up -d/);
  });

  test('live output lines of a running deploy appear in the page', async (t) => {
    if (!(await ready(t))) return;
    if (!uiApi) {
      t.skip('needs ui-api');
      return;
    }
    assert.ok(emitted.length > 0, 'the daemon sent deployment.log events');
    const firstShown = shownLive.find((s) => s.text.includes(emitted[0]!.line));
    assert.ok(firstShown, `the line "${emitted[0]!.line}" appeared in the live output`);
    console.log(`# compose output line → page: ${firstShown.at - emitted[0]!.at} ms`);
  });

  test('Roll back to a deployment picked in the timeline deploys that commit and pins the other; Unpin clears it', async (t) => {
    const p = await ready(t);
    if (!p) return;
    await p.goto(`${daemon!.url}/#/repo/${repoId}`);
    const boot = (await deployments()).find((d) => d.commit === commitA && d.status === 'success')!;
    const entry = p.locator(`li[data-deployment="${boot.id}"]`);
    await entry.getByRole('button', { name: 'Roll back' }).click();
    await p.getByRole('dialog').getByText(commitA.slice(0, 7)).waitFor();
    await confirm(p);
    const rollback = await until(
      async () => (await deployments()).find((d) => d.trigger === 'rollback' && d.status === 'success'),
      'the rollback deployment',
      180_000,
    );
    assert.equal(rollback.commit, commitA);
    assert.equal((await repo()).pinnedCommit, commitB, 'the commit rolled away from is pinned');
    await p
      .locator('.facts dd', { hasText: commitB.slice(0, 7) })
      .last()
      .waitFor({ timeout: 30_000 });
    await p.locator(`li[data-deployment="${rollback.id}"] .badge`, { hasText: 'success' }).waitFor();

    await p.getByRole('button', { name: 'Unpin', exact: true }).click({ timeout: 30_000 });
    await confirm(p);
    await until(
      async () => {
        const r = await repo();
        return r.pinnedCommit === null && r.lastDeployedCommit === commitB && !r.busy;
      },
      'the pin to clear',
      180_000,
    );
    await p.getByRole('button', { name: 'Unpin', exact: true }).waitFor({ state: 'detached', timeout: 30_000 });
  });

  test('Suspend and Resume change the state shown', async (t) => {
    const p = await ready(t);
    if (!p) return;
    await p.goto(`${daemon!.url}/#/repo/${repoId}`);
    await headingState(p).filter({ hasText: 'idle' }).waitFor({ timeout: 60_000 });
    await p.getByRole('button', { name: 'Suspend', exact: true }).click();
    await confirm(p);
    await headingState(p).filter({ hasText: 'suspended' }).waitFor({ timeout: 30_000 });
    assert.equal((await repo()).suspended, true);
    assert.ok(await p.getByRole('button', { name: 'Deploy', exact: true }).isDisabled());
    await p.getByRole('button', { name: 'Resume', exact: true }).click();
    await confirm(p);
    await p.getByRole('button', { name: 'Suspend', exact: true }).waitFor({ timeout: 30_000 });
    await until(async () => !(await repo()).suspended, 'resumed in the API');
    await until(
      async () => !/suspended/.test(await headingState(p).innerText()),
      'the state badge to leave "suspended"',
      30_000,
    );
  });

  test('a bad project file shows its error at the top until it is fixed', async (t) => {
    const p = await ready(t);
    if (!p) return;
    await p.goto(`${daemon!.url}/`);
    await p.locator(`tr[data-key="${KEY}"]`).waitFor();
    const project = (interval: string) => `project: extra
description: A second project
repositories:
  docs:
    url: ${git.repoUrl('site')}
    check_interval: ${interval}
    compose_project: ${extraProject}
    suspended: true
`;
    await daemon!.writeProject('extra.yaml', project('"soon"'));
    const banner = p.getByRole('alert').filter({ hasText: 'Configuration errors' });
    await banner.waitFor({ timeout: 60_000 });
    const text = await banner.innerText();
    assert.match(text, /extra\.yaml/);
    assert.match(text, /repositories\.docs\.check_interval/);
    await daemon!.writeProject('extra.yaml', project('3600'));
    await banner.waitFor({ state: 'detached', timeout: 60_000 });
    await p.locator('tr[data-key="extra/docs"] .badge', { hasText: 'suspended' }).waitFor({ timeout: 30_000 });
  });

  test('a service Restart is confirmed and recorded', async (t) => {
    const p = await ready(t);
    if (!p) return;
    if (!uiApi) {
      t.skip('needs ui-api');
      return;
    }
    await p.goto(`${daemon!.url}/#/repo/${repoId}`);
    const row = p.locator('tr[data-service="web"]');
    await row.getByRole('button', { name: 'Restart', exact: true }).click({ timeout: 30_000 });
    // The dialog closes at once; the page's notice follows the restart (the stop timeout makes it take seconds).
    await confirm(p);
    const notice = p.locator('p.notice');
    await notice.filter({ hasText: /web: restart (running|done|failed)/ }).waitFor({ timeout: 10_000 });
    await notice.filter({ hasText: /web: restart (done|failed)/ }).waitFor({ timeout: 120_000 });
    assert.match(await notice.innerText(), /web: restart done/);
    const recorded = await until(
      async () => {
        const res = await api(`/api/repositories/${repoId}/actions?limit=10`);
        const body = (await res.json()) as {
          items: { action: string; service: string | null; status: string; startedAt: string; finishedAt: string }[];
        };
        return body.items.find((a) => a.action === 'restart' && a.service === 'web' && a.status !== 'running');
      },
      'the restart action',
      120_000,
    );
    assert.equal(recorded.status, 'success');
    console.log(`# restart of web: ${Date.parse(recorded.finishedAt) - Date.parse(recorded.startedAt)} ms`);
    await p.locator('.action-list li', { hasText: 'restart' }).first().waitFor({ timeout: 30_000 });
  });

  test('axe: no serious or critical violations on the overview, repository and deployment pages, light and dark; no CSP violation', async (t) => {
    const p = await ready(t);
    if (!p) return;
    const last = (await deployments())[0]!;
    const found: string[] = [];
    for (const scheme of ['light', 'dark'] as const) {
      await p.emulateMedia({ colorScheme: scheme });
      await p.setViewportSize({ width: 1200, height: 800 });
      await p.goto(`${daemon!.url}/`);
      await p.locator(`tr[data-key="${KEY}"]`).waitFor();
      for (const v of await axeViolations(p)) found.push(`${scheme} overview: ${v.id} ${v.help} ${v.nodes.join('; ')}`);
      if (process.env['SHIPARR_UPDATE_SCREENSHOTS'] === '1') {
        await mkdir(SCREENSHOTS, { recursive: true });
        await p.screenshot({ path: path.join(SCREENSHOTS, `overview-${scheme}.png`) });
      }
      await p.goto(`${daemon!.url}/#/repo/${repoId}`);
      await p.locator(`li[data-deployment="${last.id}"]`).waitFor();
      for (const v of await axeViolations(p))
        found.push(`${scheme} repository: ${v.id} ${v.help} ${v.nodes.join('; ')}`);
      if (process.env['SHIPARR_UPDATE_SCREENSHOTS'] === '1')
        await p.screenshot({ path: path.join(SCREENSHOTS, `repository-${scheme}.png`), fullPage: true });
      await p.goto(`${daemon!.url}/#/deployment/${last.id}`);
      await p.getByLabel(`Log of deployment ${last.id}`).waitFor();
      for (const v of await axeViolations(p))
        found.push(`${scheme} deployment: ${v.id} ${v.help} ${v.nodes.join('; ')}`);
      // The dialog too.
      await p.goto(`${daemon!.url}/#/repo/${repoId}`);
      await p.getByRole('button', { name: 'Deploy', exact: true }).click();
      await p.getByRole('dialog').waitFor();
      for (const v of await axeViolations(p)) found.push(`${scheme} dialog: ${v.id} ${v.help} ${v.nodes.join('; ')}`);
      await p.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    }
    assert.deepEqual(found, []);
    const allowed = (s: string) => /\/(containers|actions)(\?|$)/.test(s) && !uiApi;
    assert.deepEqual(problems!.csp, [], 'no CSP violation');
    assert.deepEqual(problems!.errors, [], 'no script error');
    assert.deepEqual(
      problems!.failed.filter((f) => !allowed(f)),
      [],
    );
  });
});
