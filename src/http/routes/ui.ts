/**
 * @module GET /: a one-file status page (no build step, no external assets). It lists repositories from
 * /api/repositories and keeps them live with an EventSource on /api/events. All values go in via textContent (no
 * HTML injection), and a Content-Security-Policy with the hashes of the inline script and style forbids anything else.
 */
import { createHash } from 'node:crypto';
import { Router } from '@koa/router';
import type { Middleware } from 'koa';

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1d232a;background:#f6f7f9}
h1{font-size:1.3rem;margin:0 0 .2rem}#conn{color:#667;font-size:.85rem;margin-bottom:1rem}
table{border-collapse:collapse;width:100%;background:#fff;box-shadow:0 1px 2px #0002}
th,td{padding:.45rem .6rem;border-bottom:1px solid #e4e7eb;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}code{font-size:.85rem}
.state{display:inline-block;padding:0 .45rem;border-radius:.6rem;background:#e4e7eb}
.s-idle{background:#d3f2dc}.s-failed,.s-backoff{background:#fbd5d5}.s-suspended,.s-stopped{background:#eee}
.busy{background:#fde9b8}.err{color:#a61b1b;font-size:.85rem}
`;

const SCRIPT = `
(function () {
  'use strict';
  var rows = new Map();
  var body = document.getElementById('repos');
  var conn = document.getElementById('conn');
  function cell(tr, text, cls) {
    var td = document.createElement('td');
    if (cls) { var span = document.createElement('span'); span.className = cls; span.textContent = text; td.appendChild(span); }
    else td.textContent = text;
    tr.appendChild(td);
  }
  function short(c) { return c ? String(c).slice(0, 7) : '-'; }
  function when(t) { return t ? new Date(t).toLocaleString() : '-'; }
  function render(list) {
    rows.clear();
    while (body.firstChild) body.removeChild(body.firstChild);
    if (!list.length) {
      var tr = document.createElement('tr'); var td = document.createElement('td');
      td.colSpan = 6; td.textContent = 'No repositories configured.'; tr.appendChild(td); body.appendChild(tr); return;
    }
    list.forEach(function (r) {
      var tr = document.createElement('tr');
      cell(tr, r.key);
      cell(tr, r.state, 'state s-' + String(r.state).replace(/[^a-zA-Z]/g, '') + (r.busy ? ' busy' : ''));
      cell(tr, when(r.since));
      cell(tr, short(r.lastDeployedCommit) + (r.pinnedCommit ? ' (pinned bad: ' + short(r.pinnedCommit) + ')' : ''));
      cell(tr, when(r.lastDeployedAt));
      cell(tr, r.lastError ? r.lastError.stage + ': ' + r.lastError.message : (r.suspended ? 'suspended' : ''), r.lastError ? 'err' : '');
      body.appendChild(tr);
      rows.set(r.key, tr);
    });
  }
  var pending = null;
  function refresh() {
    if (pending) return;
    pending = setTimeout(function () {
      pending = null;
      fetch('api/repositories', { credentials: 'same-origin', headers: { accept: 'application/json' } })
        .then(function (res) { if (!res.ok) throw new Error('HTTP ' + res.status); return res.json(); })
        .then(render)
        .catch(function (e) { conn.textContent = 'Could not load repositories: ' + e.message; });
    }, 150);
  }
  function onState(ev) {
    var e; try { e = JSON.parse(ev.data); } catch (_) { return; }
    var tr = rows.get(e.repoKey);
    if (!tr) { refresh(); return; }
    var span = tr.children[1].firstChild;
    span.textContent = e.state;
    span.className = 'state s-' + String(e.state).replace(/[^a-zA-Z]/g, '');
    tr.children[2].textContent = when(e.at);
  }
  refresh();
  if (window.EventSource) {
    var es = new EventSource('api/events');
    es.onopen = function () { conn.textContent = 'Live'; refresh(); };
    es.onerror = function () { conn.textContent = 'Reconnecting…'; };
    es.addEventListener('state', onState);
    ['deployment.started', 'deployment.finished', 'config.reloaded'].forEach(function (t) { es.addEventListener(t, refresh); });
  } else {
    setInterval(refresh, 10000);
  }
})();
`;

const sha = (s: string): string => `'sha256-${createHash('sha256').update(s).digest('base64')}'`;

/** The page; the inline script and style are allowed by hash, nothing else loads. */
const UI_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Shiparr</title><style>${STYLE}</style></head>
<body><h1>Shiparr</h1><div id="conn">Connecting…</div>
<table><thead><tr><th>Repository</th><th>State</th><th>Since</th><th>Deployed</th><th>Last deploy</th><th>Last error</th></tr></thead>
<tbody id="repos"></tbody></table>
<script>${SCRIPT}</script></body></html>
`;

const UI_CSP = [
  "default-src 'none'",
  `script-src ${sha(SCRIPT)}`,
  `style-src ${sha(STYLE)}`,
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'self'",
].join('; ');

export function uiRoutes(auth: Middleware): Router {
  const router = new Router();
  router.use(auth);
  router.get('/', (ctx) => {
    ctx.set('Content-Security-Policy', UI_CSP);
    ctx.set('Cache-Control', 'no-cache');
    ctx.type = 'text/html; charset=utf-8';
    ctx.body = UI_HTML;
  });
  return router;
}
