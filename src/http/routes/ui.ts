/**
 * @module GET / and GET /ui/<asset>: the web UI, a single-page app built by scripts/build-ui.ts (`npm run build`
 * or `npm run build:ui`) into content-hashed files under dist/ui/ with a manifest.json. index.html is written here
 * from the manifest (no inline script or style), every URL in it is relative (works under a sub-path reverse
 * proxy), and the page talks only to the REST API and /api/events. Assets are served only by the names the manifest
 * lists, with a year-long immutable cache; index.html is never cached. Both sit behind the API's auth middleware.
 * Without a built bundle, / answers a short page that says how to build it.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Router } from '@koa/router';
import type { Context, Middleware } from 'koa';
import { NotFoundError } from '../../errors.ts';

/** Content-Security-Policy of the page and its assets. */
const UI_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** dist/http/routes/ → dist/ui (built app); src/http/routes/ → dist/ui (running from sources). */
const CANDIDATES = [path.resolve(HERE, '../../ui'), path.resolve(HERE, '../../../dist/ui')];

interface Manifest {
  js: string;
  css: string;
  files: string[];
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};

/** The first folder holding a readable manifest (read on every call, so a rebuild needs no restart). */
async function loadManifest(): Promise<{ dir: string; manifest: Manifest } | null> {
  for (const dir of CANDIDATES) {
    try {
      const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
      if (typeof manifest.js === 'string' && typeof manifest.css === 'string' && Array.isArray(manifest.files))
        return { dir, manifest };
    } catch {
      // Not built here; try the next folder.
    }
  }
  return null;
}

const escapeAttr = (s: string): string => s.replace(/[&"<>]/g, (c) => `&#${c.charCodeAt(0)};`);

function indexHtml(m: Manifest): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="color-scheme" content="light dark"><meta name="referrer" content="no-referrer">
<title>Shiparr</title><link rel="icon" href="data:,"><link rel="stylesheet" href="ui/${escapeAttr(m.css)}">
<script type="module" src="ui/${escapeAttr(m.js)}"></script></head>
<body><div id="app"><main><h1>Shiparr</h1><p>Loading…</p><noscript>The Shiparr UI needs JavaScript; the REST API is under api/.</noscript></main></div></body></html>
`;
}

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shiparr</title></head>
<body><main><h1>Shiparr</h1><p>The web UI is not built. Run <code>npm run build:ui</code> (or <code>npm run build</code>).
The REST API is under <a href="api/repositories">api/</a>.</p></main></body></html>
`;

function pageHeaders(ctx: Context): void {
  ctx.set('Content-Security-Policy', UI_CSP);
  ctx.set('X-Frame-Options', 'DENY');
}

/** The UI routes, behind `auth` like the API. */
export function uiRoutes(auth: Middleware): Router {
  const router = new Router();
  router.use(auth);
  router.get('/', async (ctx) => {
    const found = await loadManifest();
    pageHeaders(ctx);
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = found ? indexHtml(found.manifest) : NOT_BUILT;
  });
  router.get('/ui/:file', async (ctx) => {
    const file = ctx.params['file'] ?? '';
    const found = await loadManifest();
    // Only names the manifest lists (plain file names): nothing else under dist/ can be reached.
    if (!found || !found.manifest.files.includes(file) || path.basename(file) !== file)
      throw new NotFoundError(`asset "${file.slice(0, 80)}" not found`);
    const body = await readFile(path.join(found.dir, file)).catch(() => null);
    if (body === null) throw new NotFoundError(`asset "${file.slice(0, 80)}" not found`);
    pageHeaders(ctx);
    ctx.set('Cache-Control', 'public, max-age=31536000, immutable');
    ctx.type = TYPES[path.extname(file)] ?? 'application/octet-stream';
    ctx.body = body;
  });
  return router;
}
