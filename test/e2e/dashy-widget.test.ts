/**
 * @module The Dashy widget (widgets/dashy/ShiparrStatus.vue) against the real API: the single-file component is
 * compiled with vue/compiler-sfc, served with vue.min.js from a page on another origin, and mounted in real
 * chromium (playwright-core); the rendered repositories, states and versions must match GET /widget/dashy.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { compileStyle, compileTemplate, parse } from 'vue/compiler-sfc';
import { startGitServer, type GitServer } from '../helpers/git-server.ts';
import {
  dockerAvailable,
  ensureBusyboxImage,
  requireDocker,
  uniqueProjectName,
  webServiceCompose,
} from '../helpers/docker.ts';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { until } from '../helpers/wait.ts';
import { disposeE2e } from '../helpers/e2e.ts';

const require = createRequire(import.meta.url);
const SFC = path.resolve(import.meta.dirname, '../../widgets/dashy/ShiparrStatus.vue');
const SCOPE = 'data-v-shiparr';

/** The chromium binary, or null. */
function findChromium(): string | null {
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    try {
      const p = execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
      if (p) return p;
    } catch {
      // not this one
    }
  }
  return null;
}

/** Skips without chromium, or fails under SHIPARR_REQUIRE_DOCKER=1 (CI must not pass by skipping). */
function requireChromium(t: TestContext): string | null {
  const p = findChromium();
  if (p) return p;
  if (process.env['SHIPARR_REQUIRE_DOCKER'] === '1')
    throw new Error('chromium required (SHIPARR_REQUIRE_DOCKER=1) but not found on PATH');
  t.skip('no chromium on PATH');
  return null;
}

/** The SFC as a browser script defining the global `ShiparrStatus` (no bundler: what Dashy's build does, by hand). */
function compileWidget(): { js: string; css: string } {
  const source = readFileSync(SFC, 'utf8');
  const sfc = parse({ source, filename: 'ShiparrStatus.vue' });
  assert.ok(sfc.template && sfc.script, 'the SFC has a template and a script');
  const tpl = compileTemplate({ source: sfc.template.content, filename: 'ShiparrStatus.vue' });
  assert.deepEqual(tpl.errors, []);
  const body = sfc.script.content.replace(/export default\s*/, 'return ');
  const css = sfc.styles
    .map((s) => compileStyle({ source: s.content, filename: 'ShiparrStatus.vue', id: SCOPE, scoped: s.scoped }).code)
    .join('\n');
  const js = `var ShiparrStatus = (function () {\n${body}\n})();\n${tpl.code}\nShiparrStatus.render = render;\nShiparrStatus.staticRenderFns = staticRenderFns;\nShiparrStatus._scopeId = ${JSON.stringify(SCOPE)};\n`;
  return { js, css };
}

describe('Dashy widget in a real browser', { concurrency: false }, () => {
  let git: GitServer;
  let daemon: TestDaemon | undefined;
  let page: Server | undefined;
  let pageUrl = '';
  let browser: Browser | undefined;
  let project = '';

  before(async () => {
    git = await startGitServer();
    if (!(await dockerAvailable())) return;
    const image = await ensureBusyboxImage();
    project = uniqueProjectName('dashy-widget');
    await git.createRepo('site', { 'compose.yaml': webServiceCompose({ image, healthy: true, marker: 'w1' }) });
    daemon = await startTestDaemon({
      projects: {
        'homelab.yaml': `project: homelab
repositories:
  site:
    url: ${git.repoUrl('site')}
    branch: main
    check_interval: 3600
    compose_project: ${project}
    pull: never
    healthcheck:
      timeout: 30
  missing:
    url: ${git.repoUrl('does-not-exist')}
    branch: main
    check_interval: 3600
    compose_project: ${project}-missing
`,
      },
    });
    const { js, css } = compileWidget();
    const vue = readFileSync(require.resolve('vue/dist/vue.min.js'), 'utf8');
    const html = `<!doctype html><html><head><meta charset="utf-8"><style>${css}</style></head><body>
<div id="app"></div>
<script src="/vue.min.js"></script>
<script src="/shiparr-status.js"></script>
<script>
  new Vue({
    render: function (h) {
      return h(ShiparrStatus, { props: { options: { host: ${JSON.stringify(daemon.url)}, project: 'homelab', refreshSeconds: 0 } } });
    },
  }).$mount('#app');
</script></body></html>`;
    const files: Record<string, [string, string]> = {
      '/': ['text/html', html],
      '/vue.min.js': ['text/javascript', vue],
      '/shiparr-status.js': ['text/javascript', js],
    };
    // Another origin than the daemon's: the widget's fetch is cross-origin, as it is inside Dashy.
    page = createServer((req, res) => {
      const f = files[req.url ?? ''];
      res.writeHead(f ? 200 : 404, { 'Content-Type': f?.[0] ?? 'text/plain' });
      res.end(f?.[1] ?? 'not found');
    });
    await new Promise<void>((r) => page!.listen(0, '127.0.0.1', r));
    pageUrl = `http://localhost:${(page.address() as AddressInfo).port}/`;
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await new Promise<void>((r) => (page ? page.close(() => r()) : r()));
    await disposeE2e({ daemon, projects: [project], git });
  });

  test('the widget shows every repository of the project with the state and version the API gives', async (t) => {
    if (!(await requireDocker(t))) return;
    const executablePath = requireChromium(t);
    if (!executablePath) return;
    await until(
      () => daemon!.store.listDeployments('homelab/site', { limit: 5 }).items.some((d) => d.status === 'success'),
      'the site deployment',
      90_000,
    );
    const api = (await (await fetch(`${daemon!.url}/widget/dashy?project=homelab`)).json()) as {
      widgets: { label: string; value: string }[];
    };
    const expected: { name: string; state: string; version: string }[] = [];
    for (const w of api.widgets) {
      if (w.label === 'Repository') expected.push({ name: w.value, state: '', version: '' });
      const row = expected.at(-1)!;
      if (w.label === 'Status') row.state = w.value;
      if (w.label === 'Version') row.version = w.value;
    }
    assert.deepEqual(
      expected.map((r) => `${r.name}:${r.state}`),
      ['missing:stopped', 'site:running'],
      'the API itself: one running, one never deployed',
    );
    const site = daemon!.supervisor.get('homelab/site')!;
    assert.equal(expected[1]?.version, site.lastDeployedCommit?.slice(0, 7));

    browser = await chromium.launch({ executablePath, args: ['--no-sandbox'] });
    const tab = await browser.newPage();
    const errors: string[] = [];
    tab.on('pageerror', (e) => errors.push(e.message));
    await tab.goto(pageUrl);
    await tab.waitForSelector('tr.shiparr-repo', { timeout: 20_000 });
    const rendered = await tab.$$eval('tr.shiparr-repo', (rows) =>
      rows.map((r) => ({
        name: r.getAttribute('data-repository'),
        state: r.getAttribute('data-state'),
        version: r.querySelector('.shiparr-version')?.textContent?.trim(),
        cells: r.querySelector('.shiparr-name')?.textContent?.trim(),
        last: r.querySelector('.shiparr-last')?.textContent?.trim(),
      })),
    );
    assert.deepEqual(
      rendered.map((r) => ({ name: r.name, state: r.state, version: r.version })),
      expected,
    );
    assert.deepEqual(
      rendered.map((r) => r.cells),
      ['missing', 'site'],
    );
    assert.equal(rendered[0]?.last, 'never');
    assert.match(rendered[1]?.last ?? '', /^\d+[smhd] ago$/);
    // The scoped style applied: the running dot is green, the stopped one red.
    const colours = await tab.$$eval('.shiparr-dot', (dots) =>
      dots.map(
        (d) =>
          (globalThis as unknown as { getComputedStyle(e: unknown): { backgroundColor: string } }).getComputedStyle(d)
            .backgroundColor,
      ),
    );
    assert.deepEqual(colours, ['rgb(231, 76, 60)', 'rgb(46, 204, 113)']);
    assert.deepEqual(errors, []);
  });
});
