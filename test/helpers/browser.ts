/**
 * @module Browser test harness: real chromium through playwright-core, axe-core checks, a page watcher for CSP
 * violations and script errors, and a tiny reverse proxy that serves a daemon under a sub-path.
 *
 * - `requireChromium(t)` first in a browser test: the executable (SHIPARR_CHROMIUM, else `chromium` or
 *   `chromium-browser` on PATH), or a skip with the reason — a failure under SHIPARR_REQUIRE_DOCKER=1, like Docker.
 * - `launchChromium(exe)` starts a headless browser (`--no-sandbox`: tests may run as root in a container).
 * - `axeViolations(page)` runs axe-core in the page and returns the serious and critical violations.
 * - `watchPage(page)` collects CSP violations, uncaught errors and failed requests of a page.
 * - `startSubPathProxy(target, prefix)` forwards `<prefix>…` to the target (streams included, so SSE works) and can
 *   drop and refuse the event streams to simulate a lost connection.
 */
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import type { TestContext } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { exec } from '../../src/lib/exec.ts';

let found: Promise<string | null> | undefined;

async function findChromium(): Promise<string | null> {
  if (process.env['SHIPARR_CHROMIUM']) return process.env['SHIPARR_CHROMIUM'];
  for (const name of ['chromium', 'chromium-browser']) {
    const r = await exec('sh', ['-c', `command -v ${name}`], { timeoutMs: 10_000 });
    if (r.code === 0 && r.stdout.trim()) return r.stdout.trim();
  }
  return null;
}

/**
 * The chromium executable, or null after skipping the test (throws under SHIPARR_REQUIRE_DOCKER=1 instead).
 * @example const exe = await requireChromium(t); if (!exe) return;
 */
export async function requireChromium(t: TestContext): Promise<string | null> {
  found ??= findChromium();
  const exe = await found;
  if (exe) return exe;
  const reason = 'no chromium executable (set SHIPARR_CHROMIUM or install chromium)';
  if (process.env['SHIPARR_REQUIRE_DOCKER'] === '1')
    throw new Error(`chromium required (SHIPARR_REQUIRE_DOCKER=1): ${reason}`);
  t.skip(reason);
  return null;
}

/** Starts headless chromium. */
export function launchChromium(executablePath: string): Promise<Browser> {
  return chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
}

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/** One axe-core finding. */
interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/**
 * Runs axe-core (WCAG 2 A/AA rules and best practices) on the page as it is now and returns the serious and
 * critical violations. The script goes in through the DevTools protocol, so the page's CSP is not loosened.
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(`(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ' ' + (n.failureSummary || '').split('\\n').join(' ')) }));
  })()`);
  return (result as AxeViolation[]).filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** What went wrong in a page: CSP violations, uncaught errors, requests that failed or were answered >= 500. */
export interface PageProblems {
  csp: string[];
  errors: string[];
  failed: string[];
}

/** Starts collecting a page's problems (the returned object fills as they happen). */
export function watchPage(page: Page): PageProblems {
  const problems: PageProblems = { csp: [], errors: [], failed: [] };
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) problems.csp.push(m.text());
  });
  page.on('pageerror', (e) => problems.errors.push(String(e)));
  page.on('requestfailed', (r) => {
    // Aborted streams (event source, followed logs) end this way when the page navigates or closes them.
    if (!/ERR_ABORTED/.test(r.failure()?.errorText ?? '')) problems.failed.push(`${r.url()} ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 500) problems.failed.push(`${r.url()} ${r.status()}`);
  });
  return problems;
}

/** A reverse proxy serving a target under a path prefix. */
export interface SubPathProxy {
  /** The proxy's base URL, ending with the prefix and a slash (e.g. http://127.0.0.1:1234/shiparr/). */
  url: string;
  /** Every request path the proxy received. */
  paths: string[];
  /** Ends the open event streams and answers new ones 503 until {@link SubPathProxy.restoreEvents}. */
  dropEvents(): void;
  restoreEvents(): void;
  close(): Promise<void>;
}

/** Serves `target` (http://host:port) under `prefix` (e.g. "/shiparr"); anything outside it is 404. */
export async function startSubPathProxy(target: string, prefix: string): Promise<SubPathProxy> {
  const base = new URL(target);
  const paths: string[] = [];
  const streams = new Set<http.ServerResponse>();
  let eventsDown = false;
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    paths.push(url);
    if (url !== prefix && !url.startsWith(`${prefix}/`)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('outside the proxied prefix');
      return;
    }
    const upstreamPath = url.slice(prefix.length) || '/';
    const isEvents = upstreamPath.startsWith('/api/events');
    if (isEvents && eventsDown) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('events down');
      return;
    }
    const upstream = http.request(
      {
        host: base.hostname,
        port: base.port,
        method: req.method,
        path: upstreamPath,
        headers: { ...req.headers, host: base.host, 'x-forwarded-prefix': prefix },
      },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        if (isEvents) {
          streams.add(res);
          res.on('close', () => streams.delete(res));
        }
        up.pipe(res);
      },
    );
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${prefix}/`,
    paths,
    dropEvents() {
      eventsDown = true;
      for (const s of streams) s.destroy();
    },
    restoreEvents() {
      eventsDown = false;
    },
    async close() {
      for (const s of streams) s.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
