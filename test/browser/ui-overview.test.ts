/**
 * @module The web UI in real chromium over the real Koa app with fake ports (500 repositories, events pushed by the
 * test): time to first render, DOM work per SSE event, filter, keyboard, 375 px, config errors, Basic Auth, a
 * sub-path reverse proxy, and the banner when the event stream drops and recovers. The deploy flows against the real
 * daemon and Docker are in ui.test.ts.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { buildUi, type UiManifest } from '../../scripts/build-ui.ts';
import type { ProjectInfo, RepoStatus } from '../../src/domain/types.ts';
import {
  axeViolations,
  launchChromium,
  requireChromium,
  startSubPathProxy,
  watchPage,
  type SubPathProxy,
} from '../helpers/browser.ts';
import type { FakeHistory } from '../unit/http/fakes.ts';
import { FakeSupervisor, repoStatus, serve, type Served } from '../unit/http/fakes.ts';

const USER = 'admin';
const PASSWORD = 'ui-overview-pw';
const REPOS = 500;
const PROJECTS = 5;

function fleet(): { repos: RepoStatus[]; projects: ProjectInfo[] } {
  const repos: RepoStatus[] = [];
  const projects: ProjectInfo[] = [];
  for (let p = 0; p < PROJECTS; p += 1) {
    const name = `fleet${p}`;
    projects.push({
      name,
      description: `Fleet ${p}`,
      file: `/cfg/${name}.yaml`,
      active: true,
      error: null,
      repositories: 0,
    });
  }
  projects.push({
    name: 'broken',
    description: null,
    file: '/cfg/broken.yaml',
    active: false,
    error: [{ file: '/cfg/broken.yaml', path: 'repositories.web.url', message: 'Required' }],
    repositories: 0,
  });
  for (let i = 0; i < REPOS; i += 1) {
    const project = `fleet${i % PROJECTS}`;
    repos.push(
      repoStatus({
        id: i + 1,
        project,
        name: `repo-${String(i).padStart(4, '0')}`,
        lastDeployedCommit: (i * 7919).toString(16).padStart(40, 'a'),
        lastDeployedAt: new Date(Date.now() - i * 60_000).toISOString(),
        nextCheckAt: new Date(Date.now() + 300_000).toISOString(),
      }),
    );
  }
  return { repos, projects };
}

/** The DOM as the page functions below use it (test files compile without the DOM library). */
interface PageGlobals {
  document: { querySelectorAll(selector: string): { length: number } };
}

/** Runs in the page (a function, not a string: the page's CSP forbids eval): true once `n` rows are shown. */
const rowsShown = (n: number): boolean =>
  (globalThis as unknown as PageGlobals).document.querySelectorAll('tr[data-key]').length === n;

/** Waits until the overview shows `n` repository rows. */
async function rows(page: Page, n: number): Promise<void> {
  await page.waitForFunction(rowsShown, n, { timeout: 60_000 });
}

const scrollWidth = async (page: Page): Promise<number> =>
  (await page.evaluate('document.documentElement.scrollWidth')) as number;

describe('web UI overview over the HTTP app (500 repositories)', { concurrency: false }, () => {
  let served: Served | undefined;
  let supervisor: FakeSupervisor;
  let proxy: SubPathProxy | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  let manifest: UiManifest;

  before(async () => {
    manifest = await buildUi();
    const { repos, projects } = fleet();
    supervisor = new FakeSupervisor(repos, projects);
    served = await serve({ supervisor, auth: { enabled: true, username: USER, password: PASSWORD } });
    proxy = await startSubPathProxy(served.url, '/shiparr');
  });

  after(async () => {
    await context?.close().catch(() => undefined);
    await browser?.close().catch(() => undefined);
    await proxy?.close();
    await served?.close();
  });

  async function open(t: Parameters<typeof requireChromium>[0], opts: { width?: number } = {}): Promise<Page | null> {
    const exe = await requireChromium(t);
    if (!exe) return null;
    browser ??= await launchChromium(exe);
    if (opts.width) {
      const ctx = await browser.newContext({
        httpCredentials: { username: USER, password: PASSWORD },
        viewport: { width: opts.width, height: 800 },
      });
      t.after(() => ctx.close());
      return ctx.newPage();
    }
    context ??= await browser.newContext({ httpCredentials: { username: USER, password: PASSWORD } });
    return context.newPage();
  }

  test('the bundle is small and its assets are served by hashed name with a long cache', async () => {
    console.log(`# web UI JS bundle: ${(manifest.jsGzipBytes / 1024).toFixed(1)} KB gzip (${manifest.js})`);
    assert.ok(manifest.jsGzipBytes < 40 * 1024, `JS bundle ${manifest.jsGzipBytes} bytes gzip, aim < 40 KB`);
    const auth = { authorization: `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}` };
    assert.equal((await fetch(`${served!.url}/ui/${manifest.js}`)).status, 401, 'assets are behind auth');
    const js = await fetch(`${served!.url}/ui/${manifest.js}`, { headers: auth });
    assert.equal(js.status, 200);
    assert.match(js.headers.get('content-type') ?? '', /javascript/);
    assert.match(js.headers.get('cache-control') ?? '', /max-age=31536000.*immutable/);
    const index = await fetch(`${served!.url}/`, { headers: auth });
    assert.equal(index.headers.get('cache-control'), 'no-cache');
    assert.match(await index.text(), new RegExp(`src="ui/${manifest.js.replace('.', '\\.')}"`));
    assert.equal((await fetch(`${served!.url}/ui/nope.${manifest.js}`, { headers: auth })).status, 404);
  });

  test('500 repositories: time to first render, and one SSE event touches only its own row', async (t) => {
    const page = await open(t);
    if (!page) return;
    const problems = watchPage(page);
    await page.goto(`${served!.url}/`);
    await page.waitForFunction(rowsShown, REPOS, {
      polling: 'raf',
      timeout: 60_000,
    });
    const ms = (await page.evaluate('performance.now()')) as number;
    const dataAt = (await page.evaluate(
      `performance.getEntriesByType('resource').find((e) => e.name.endsWith('/api/repositories'))?.responseEnd ?? 0`,
    )) as number;
    console.log(
      `# time to first render of ${REPOS} repositories (real app, fake ports): ${Math.round(ms)} ms after navigation ` +
        `(list received at ${Math.round(dataAt)} ms; load average ${os.loadavg()[0]!.toFixed(1)})`,
    );
    assert.ok(ms < 15_000, `first render took ${ms} ms`);

    // Watch every DOM change from now on and note which repository row it happened in.
    await page.evaluate(`
      window.touched = [];
      new MutationObserver((records) => {
        for (const r of records) {
          const el = r.target instanceof Element ? r.target : r.target.parentElement;
          window.touched.push(el?.closest('tr[data-key]')?.getAttribute('data-key') ?? 'outside:' + el?.tagName);
        }
      }).observe(document.querySelector('main'), { subtree: true, childList: true, characterData: true, attributes: true });
    `);
    const keys = ['fleet0/repo-0000', 'fleet2/repo-0247', 'fleet4/repo-0499'];
    const refetched = keys.map((k) =>
      page.waitForResponse((r) => r.url().endsWith(`/api/repositories/${encodeURIComponent(k)}`)),
    );
    const at = new Date().toISOString();
    for (const key of keys) {
      const r = supervisor.repos.find((x) => x.key === key)!;
      Object.assign(r, { state: 'applying', busy: true, since: at });
      supervisor.emit({ type: 'state', repoKey: key, repoId: r.id, state: 'applying', previous: 'idle', at });
    }
    for (const key of keys) {
      await page.locator(`tr[data-key="${key}"] .badge`, { hasText: 'applying' }).waitFor({ timeout: 20_000 });
    }
    await Promise.all(refetched);
    await page.evaluate('new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))');
    const touched = new Set((await page.evaluate('window.touched')) as string[]);
    assert.deepEqual([...touched].sort(), [...keys].sort(), 'DOM changes stay inside the rows the events named');
    assert.deepEqual(problems, { csp: [], errors: [], failed: [] });
    for (const key of keys)
      Object.assign(
        supervisor.repos.find((x) => x.key === key)!,
        { state: 'idle', busy: false },
      );
    await page.close();
  });

  test('filter, config errors of a project, keyboard navigation with a visible focus', async (t) => {
    const page = await open(t);
    if (!page) return;
    await page.goto(`${served!.url}/`);
    const banner = page.getByRole('alert').filter({ hasText: 'Configuration errors' });
    await banner.waitFor();
    assert.match(await banner.innerText(), /\/cfg\/broken\.yaml at repositories\.web\.url: Required/);
    // axe-core sees a broken page as broken (so its silence on the real pages in ui.test.ts means something).
    await page.evaluate(
      `document.querySelector('main').append(Object.assign(document.createElement('img'), { id: 'noalt', src: 'data:,' }))`,
    );
    assert.ok((await axeViolations(page)).some((v) => v.id === 'image-alt'));
    await page.evaluate(`document.getElementById('noalt').remove()`);
    await page.getByLabel('Filter').fill('repo-0499');
    await rows(page, 1);
    await page.getByLabel('Filter').fill('');
    await rows(page, REPOS);

    await page.locator('body').focus();
    let onRepoLink = false;
    for (let i = 0; i < 12 && !onRepoLink; i += 1) {
      await page.keyboard.press('Tab');
      onRepoLink = (await page.evaluate(`document.activeElement?.matches('a[href^="#/repo/"]') ?? false`)) as boolean;
    }
    assert.ok(onRepoLink, 'a repository link is reachable with Tab');
    const outline = await page.evaluate('getComputedStyle(document.activeElement).outlineStyle');
    assert.notEqual(outline, 'none', 'the focused link shows a focus ring');
    await page.keyboard.press('Enter');
    await page.waitForURL(/#\/repo\/\d+$/);
    await page.getByRole('heading', { level: 1, name: /fleet0\/repo-0000/ }).waitFor();
    await page.close();
  });

  test('repository page: the timeline pages back in time; a deployment page shows its log', async (t) => {
    const page = await open(t);
    if (!page) return;
    const history = served!.deps.history as FakeHistory;
    const base = history.deployments.find((d) => d.id === 2)!;
    for (let id = 10; id < 40; id += 1)
      history.deployments.push({ ...base, id, commit: id.toString(16).padStart(40, 'c') });
    history.logs.set(39, 'pulling\napplying: docker compose up -d\nverifying: healthy\n');
    await page.goto(`${served!.url}/#/repo/1`);
    const items = page.locator('ol.timeline > li');
    await page.locator('li[data-deployment="39"]').waitFor();
    assert.equal(await items.count(), 20, 'first page: 20 newest');
    await page.getByRole('button', { name: 'Load older deployments' }).click();
    await page.locator('li[data-deployment="1"]').waitFor();
    assert.equal(await items.count(), 32);
    assert.equal(await page.getByRole('button', { name: 'Load older deployments' }).count(), 0, 'nothing older');
    await page.getByRole('link', { name: '#39' }).click();
    await page.getByRole('heading', { level: 1, name: 'Deployment #39 success' }).waitFor();
    // The log is fetched after the page renders: wait for it rather than read the placeholder.
    const log = page.getByLabel('Log of deployment 39');
    await log.filter({ hasText: 'applying: docker compose up -d' }).waitFor();
    assert.match(await log.innerText(), /applying: docker compose up -d/);
    const started = page.locator('dd time').first();
    assert.ok(await started.getAttribute('title'), 'the absolute time is in the title');
    await page.close();
  });

  test('usable at 375 px: nothing wider than the screen, actions reachable', async (t) => {
    const page = await open(t, { width: 375 });
    if (!page) return;
    await page.goto(`${served!.url}/`);
    await rows(page, REPOS);
    assert.ok((await scrollWidth(page)) <= 375);
    await page.goto(`${served!.url}/#/repo/1`);
    await page.getByRole('button', { name: 'Deploy', exact: true }).waitFor();
    assert.ok((await scrollWidth(page)) <= 375);
    assert.ok(await page.getByRole('button', { name: 'Suspend', exact: true }).isVisible());
    await page.close();
  });

  test('under a sub-path proxy with Basic Auth: relative URLs only; a dropped event stream shows a banner and recovers', async (t) => {
    const page = await open(t);
    if (!page) return;
    assert.equal((await fetch(proxy!.url)).status, 401, 'no credentials, no page');

    const problems = watchPage(page);
    const requested: string[] = [];
    page.on('request', (r) => requested.push(new URL(r.url()).pathname));
    await page.goto(proxy!.url);
    await rows(page, REPOS);
    await page.waitForResponse((r) => r.url().includes('/api/events')).catch(() => undefined);
    assert.ok(requested.length >= 4);
    assert.deepEqual(
      requested.filter((p) => !p.startsWith('/shiparr/')),
      [],
      'every request of the page stays under the prefix',
    );

    const key = 'fleet1/repo-0001';
    proxy!.dropEvents();
    await page.getByText('Live updates lost').waitFor({ timeout: 30_000 });
    // While the stream is down, the repository is suspended: the page learns it from the refetch on reconnect.
    supervisor.suspend(key);
    proxy!.restoreEvents();
    await page.getByText('Live updates reconnected').waitFor({ timeout: 30_000 });
    await page.locator(`tr[data-key="${key}"] .badge`, { hasText: 'suspended' }).waitFor({ timeout: 20_000 });
    assert.deepEqual(problems.csp, []);
    assert.deepEqual(problems.errors, []);
    supervisor.resume(key);
    await page.close();
  });
});
