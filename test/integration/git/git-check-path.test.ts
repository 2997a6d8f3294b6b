/**
 * @module git-check request paths against a real git http-backend: one HTTP request per check once the remote is
 * known (protocol v2 ls-refs POST, or the v0 advertisement of a server without v2), right answers after pushes and
 * with 500 tags, and the fallback to the two-request path when the shortcut fails. Requests are counted at the server
 * (or at a small proxy in front of it that plays a v0-only server, a redirecting front end or a failing one).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { rememberedPath } from '../../../src/git/check.ts';
import gitCheck from '../../../src/workers/tasks/git-check.ts';
import { isolatedGitEnv, startGitServer, type GitServer } from '../../helpers/git-server.ts';

type Fault = { status: number; body?: string; headers?: Record<string, string> } | 'pass';

interface Proxy {
  url: (name: string) => string;
  /** Requests seen, as `METHOD path`. */
  seen: string[];
  close(): Promise<void>;
}

/**
 * A node:http front end for `target`: `decide` may answer a request itself; `stripProtocol` drops the Git-Protocol
 * header (the backend then speaks v0 only); `redirectFrom` makes every request under `/old/` a 307 to the real path.
 */
async function startProxy(
  target: GitServer,
  opts: { decide?: (req: http.IncomingMessage) => Fault; stripProtocol?: boolean } = {},
): Promise<Proxy> {
  const seen: string[] = [];
  const upstream = new URL(target.baseUrl);
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    if (req.url?.startsWith('/old/')) {
      req.resume();
      res.writeHead(307, { location: req.url.slice('/old'.length) }).end();
      return;
    }
    const fault = opts.decide?.(req) ?? 'pass';
    if (fault !== 'pass') {
      req.resume();
      res.writeHead(fault.status, fault.headers ?? { 'content-type': 'text/plain' }).end(fault.body ?? 'fault\n');
      return;
    }
    const headers = { ...req.headers };
    if (opts.stripProtocol) delete headers['git-protocol'];
    const up = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers },
      (ures) => {
        res.writeHead(ures.statusCode ?? 502, ures.headers);
        ures.pipe(res);
      },
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: (name) => `http://127.0.0.1:${port}/${name}.git`,
    seen,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const check = (url: string, token?: string) => gitCheck({ url, branch: 'main', token, timeoutMs: 10_000 });

describe('git-check request path', () => {
  let server: GitServer;
  let secured: GitServer;
  before(async () => {
    server = await startGitServer();
    secured = await startGitServer({ auth: { username: 'x-access-token', password: 'tok-98765-secret' } });
    await server.createRepo('app', { 'compose.yaml': 'services: {}\n' });
    await server.createRepo('tags', { 'compose.yaml': 'services: {}\n' });
    await secured.createRepo('app', { 'compose.yaml': 'services: {}\n' });
    // 500 tags (plus a branch sharing the prefix) in one update-ref transaction.
    const bare = path.join(server.root, 'tags.git');
    const head = server.head('tags', 'main');
    const lines = Array.from({ length: 500 }, (_, i) => `create refs/tags/v1.${i}.0 ${head}\n`).join('');
    execFileSync('git', ['update-ref', '--stdin'], { cwd: bare, env: isolatedGitEnv(server.root), input: lines });
    await server.commit('tags', { x: '1' }, { branch: 'main-old' });
  });
  after(async () => {
    await server.close();
    await secured.close();
  });

  it('learns that the server speaks v2, then makes one request per check, right after every push', async () => {
    const url = server.repoUrl('app');
    server.resetCounters();
    const first = await check(url);
    assert.equal(first.ok && first.commit, server.head('app', 'main'));
    assert.equal(server.requestCount, 2, 'discovery GET + ls-refs POST the first time');
    assert.equal(rememberedPath(url), 'v2');
    for (let i = 0; i < 3; i++) {
      const pushed = await server.commit('app', { 'compose.yaml': `services: {} # ${i}\n` });
      server.resetCounters();
      const r = await check(url);
      assert.equal(r.ok && r.commit, pushed);
      assert.equal(server.requestCount, 1, `one request for check ${i + 2}`);
    }
    server.resetCounters();
    const missing = await gitCheck({ url, branch: 'nope', timeoutMs: 10_000 });
    assert.equal(!missing.ok && missing.code, 'GIT_BRANCH_NOT_FOUND');
    assert.equal(server.requestCount, 1);
  });

  it('answers from one small request with 500 tags, where the v0 advertisement is large', async () => {
    const url = server.repoUrl('tags');
    await check(url); // learn
    const pushed = await server.commit('tags', { 'compose.yaml': 'services: { a: {} }\n' });
    server.resetCounters();
    const r = await check(url);
    assert.equal(r.ok && r.commit, pushed);
    assert.notEqual(r.ok && r.commit, server.head('tags', 'main-old'));
    assert.equal(server.requestCount, 1);
    const checkBytes = server.bytesIn + server.bytesOut;
    server.resetCounters();
    const v0 = await fetch(`${url}/info/refs?service=git-upload-pack`);
    const advertisement = Buffer.from(await v0.arrayBuffer());
    assert.ok(advertisement.includes('refs/tags/v1.499.0'));
    assert.ok(
      checkBytes * 10 < advertisement.length,
      `check ${checkBytes} B vs v0 advertisement ${advertisement.length} B`,
    );
  });

  it('uses the v0 advertisement of a server without protocol v2: one request from the first check on', async () => {
    const proxy = await startProxy(server, { stripProtocol: true });
    try {
      const url = proxy.url('app');
      for (let i = 0; i < 2; i++) {
        const r = await check(url);
        assert.equal(r.ok && r.commit, server.head('app', 'main'));
        const pushed = await server.commit('app', { v0: String(i) });
        const after = await check(url);
        assert.equal(after.ok && after.commit, pushed);
      }
      assert.equal(rememberedPath(url), 'v0');
      assert.deepEqual(new Set(proxy.seen.map((s) => s.split(' ')[0])), new Set(['GET']));
      assert.equal(proxy.seen.length, 4);
    } finally {
      await proxy.close();
    }
  });

  it('falls back to the two-request path when the shortcut gets a non-git answer, and remembers it', async () => {
    // Once the remote is known as v2, its next direct POST gets an HTML page (as a misconfigured front end would).
    let breakNextPost = false;
    const proxy = await startProxy(server, {
      decide: (req) => {
        if (!breakNextPost || req.method !== 'POST') return 'pass';
        breakNextPost = false;
        return { status: 200, body: '<html>sign in</html>', headers: { 'content-type': 'text/html' } };
      },
    });
    const methods = (from: number) => proxy.seen.slice(from).map((s) => s.split(' ')[0]);
    try {
      const url = proxy.url('app');
      await check(url);
      assert.equal(rememberedPath(url), 'v2');
      const pushed = await server.commit('app', { fallback: '1' });
      breakNextPost = true;
      let n = proxy.seen.length;
      const r = await check(url);
      assert.equal(r.ok && r.commit, pushed);
      assert.deepEqual(methods(n), ['POST', 'GET', 'POST'], 'failed shortcut, then the two-step path');
      assert.equal(rememberedPath(url), 'two-step');
      n = proxy.seen.length;
      const again = await check(url);
      assert.equal(again.ok && again.commit, pushed);
      assert.deepEqual(methods(n), ['GET', 'POST'], 'the remembered two-step path, no failed shortcut first');
    } finally {
      await proxy.close();
    }
  });

  it('falls back when the learned POST answers 500, and still gives the right head', async () => {
    let failPost = false;
    const proxy = await startProxy(server, {
      decide: (req) => (failPost && req.method === 'POST' ? ((failPost = false), { status: 500 }) : 'pass'),
    });
    try {
      const url = proxy.url('app');
      await check(url);
      assert.equal(rememberedPath(url), 'v2');
      const pushed = await server.commit('app', { five: '500' });
      failPost = true;
      const n = proxy.seen.length;
      const r = await check(url);
      assert.equal(r.ok && r.commit, pushed);
      assert.deepEqual(
        proxy.seen.slice(n).map((s) => s.split(' ')[0]),
        ['POST', 'GET', 'POST'],
        'failed shortcut, then the two-step path',
      );
      assert.equal(rememberedPath(url), 'two-step');
    } finally {
      await proxy.close();
    }
  });

  it('does not fall back on 401/403/404: one request, classified as before', async () => {
    const statuses = [401, 403, 404];
    let status = 0;
    const proxy = await startProxy(server, { decide: () => (status ? { status } : 'pass') });
    try {
      const url = proxy.url('app');
      await check(url);
      for (const s of statuses) {
        status = s;
        const n = proxy.seen.length;
        const r = await check(url);
        assert.equal(!r.ok && r.code, s === 404 ? 'GIT_REPO_NOT_FOUND' : 'GIT_AUTH_FAILED', `HTTP ${s}`);
        assert.equal(proxy.seen.length - n, 1, `HTTP ${s}: no fallback`);
      }
      status = 0;
      const ok = await check(url);
      assert.equal(ok.ok && ok.commit, server.head('app', 'main'));
      assert.equal(rememberedPath(url), 'v2');
    } finally {
      await proxy.close();
    }
  });

  it('sends the token on the one request; a wrong token is GIT_AUTH_FAILED after one request and never echoed', async () => {
    const url = secured.repoUrl('app');
    const first = await check(url, 'tok-98765-secret');
    assert.equal(first.ok && first.commit, secured.head('app', 'main'));
    secured.resetCounters();
    const again = await check(url, 'tok-98765-secret');
    assert.equal(again.ok && again.commit, secured.head('app', 'main'));
    assert.equal(secured.requestCount, 1);
    secured.resetCounters();
    const bad = await check(url, 'wrong-98765-value');
    assert.equal(!bad.ok && bad.code, 'GIT_AUTH_FAILED');
    assert.equal(secured.requestCount, 1);
    assert.ok(!JSON.stringify(bad).includes('wrong-98765-value'));
    const none = await check(url);
    assert.equal(!none.ok && none.code, 'GIT_AUTH_FAILED');
  });

  it('follows a 307 redirect on the discovery and on the direct POST', async () => {
    const proxy = await startProxy(server);
    try {
      const url = proxy.url('old/app');
      const pushed = await server.commit('app', { redirect: '1' });
      const r1 = await check(url);
      assert.equal(r1.ok && r1.commit, pushed);
      assert.equal(rememberedPath(url), 'v2');
      const r2 = await check(url);
      assert.equal(r2.ok && r2.commit, pushed);
      assert.deepEqual(
        proxy.seen.slice(-2).map((s) => s.split('?')[0]),
        ['POST /old/app.git/git-upload-pack', 'POST /app.git/git-upload-pack'],
      );
    } finally {
      await proxy.close();
    }
  });
});
