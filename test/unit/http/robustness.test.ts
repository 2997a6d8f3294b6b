/**
 * @module Robustness: well over 1,000 malformed requests (bad ids, traversal, bad JSON, huge bodies, wrong methods,
 * bad query values, garbage auth, raw random bytes). None may produce a 5xx or crash; the server must still serve.
 */
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { connect } from 'node:net';
import { describe, test } from 'node:test';
import { captureLogger, serve, type Served } from './fakes.ts';

/** Deterministic PRNG (mulberry32) so a failure can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Req {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
}

function send(s: Served, agent: Agent, r: Req): Promise<number> {
  const url = new URL(s.url);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, method: r.method, path: r.path, headers: r.headers, agent },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    // A 413 may close the socket while a huge body is still being written.
    req.on('error', (e: NodeJS.ErrnoException) =>
      e.code === 'EPIPE' || e.code === 'ECONNRESET' ? resolve(-1) : reject(e),
    );
    if (r.body !== undefined) req.end(r.body);
    else req.end();
  });
}

function rawExchange(s: Served, bytes: Buffer): Promise<string> {
  const url = new URL(s.url);
  return new Promise((resolve) => {
    const sock = connect(Number(url.port), url.hostname);
    let got = '';
    sock.on('data', (d) => {
      got += d.toString('latin1');
    });
    sock.on('error', () => resolve(got));
    sock.on('close', () => resolve(got));
    sock.write(bytes, () => sock.end());
    sock.setTimeout(5_000, () => sock.destroy());
  });
}

const ROUTES = [
  '/api/repositories/:id',
  '/api/repositories/:id/deployments',
  '/api/deployments/:id',
  '/api/deployments/:id/logs',
  '/containers/:id/logs',
  '/api/projects/:id',
  '/api/projects/:id/repositories',
  '/api/webhooks/:id',
];
const POSTS = [
  '/api/repositories/:id/deploy',
  '/api/repositories/:id/rollback',
  '/api/repositories/:id/suspend',
  '/api/webhooks/:id',
];
const BAD_IDS = [
  '..%2F..%2Fetc',
  '..',
  '.',
  '%2e%2e',
  '0',
  '-1',
  '1e9',
  '0x10',
  '1.0',
  '%201',
  '%00',
  '%ff',
  '%E0%A4%A',
  '%',
  'NaN',
  'Infinity',
  '9'.repeat(40),
  'a'.repeat(300),
  '%2F',
  'homelab%2F',
  '%2Fhomelab',
  'homelab%2F..',
  'homelab%2Fmedia-stack%2Fx',
  '%C0%AE%C0%AE',
  'github',
  'gitlab',
  'generic',
  'gitea',
  '1;DROP%20TABLE',
  '%3Cscript%3E',
  '%22',
  "'",
  '1%0d%0aX:1',
];
const QUERIES = [
  'limit=-5',
  'limit=1e2',
  'limit=%00',
  'before=-1',
  'before=abc',
  'tail=99999',
  'tail=',
  'since=never',
  'wait=yes',
  'timeout=-1',
  'project=',
  'project=%2F..',
  'limit[]=1',
  'limit=1&limit=2',
  'project=a&project=b',
  '%%%',
  'a=%E0%A4%A',
];
const BODIES: (string | Buffer)[] = [
  '{',
  '}',
  '[',
  'null',
  'true',
  '1',
  '"x"',
  '{"commit":null}',
  '{"commit":[]}',
  '{"commit":"zzzzzzz"}',
  '{"a":1}',
  '{"commit":"' + 'a'.repeat(41) + '"}',
  '{"ref":"refs/heads/main","repository":{"clone_url":42}}',
  '{"url":"https://github.com/acme/media-stack","branch":"main"}',
  Buffer.from([0xff, 0xfe, 0x00, 0x7b]),
  '{"__proto__":{"polluted":1}}',
  '{"constructor":{"prototype":{"x":1}}}',
  '['.repeat(5000),
];
const METHODS = [
  'GET',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
  'HEAD',
  'PROPFIND',
  'MKCOL',
  'LOCK',
  'PURGE',
  'SEARCH',
];

function generate(rand: () => number, n: number): Req[] {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)]!;
  const out: Req[] = [];
  for (let i = 0; i < n; i++) {
    const kind = i % 6;
    const id = pick(BAD_IDS);
    if (kind === 0) out.push({ method: 'GET', path: pick(ROUTES).replace(':id', id) });
    else if (kind === 1) {
      const body = pick(BODIES);
      const type = pick([
        'application/json',
        'text/plain',
        'application/x-www-form-urlencoded',
        'application/json; charset=latin1',
        'multipart/form-data',
      ]);
      out.push({
        method: 'POST',
        path: pick(POSTS).replace(':id', rand() < 0.5 ? '1' : id),
        headers: { 'content-type': type },
        body,
      });
    } else if (kind === 2)
      out.push({
        method: pick(METHODS),
        path: pick([...ROUTES, ...POSTS, '/', '/metrics', '/api/events', '/api/health', '/api/reload']).replace(
          ':id',
          '1',
        ),
      });
    else if (kind === 3) {
      const route = pick([
        '/api/repositories/1/deployments',
        '/containers/abc123/logs',
        '/widget/dashy',
        '/widget/dashy/custom-list',
        '/api/repositories/1/deploy',
      ]);
      out.push({
        method: route.endsWith('deploy') ? 'POST' : 'GET',
        path: `${route}?${pick(QUERIES)}&${pick(QUERIES)}`,
      });
    } else if (kind === 4) {
      // Random URL-safe garbage paths, including deep traversal.
      const segs = Array.from({ length: 1 + Math.floor(rand() * 6) }, () =>
        pick(['..', '%2e%2e', 'api', 'repositories', id, '%5C', '~', '']),
      );
      out.push({ method: pick(['GET', 'POST']), path: `/${segs.join('/')}` });
    } else {
      const provider = pick(['github', 'gitlab', 'gitea', 'generic']);
      const big = rand() < 0.1;
      out.push({
        method: 'POST',
        path: `/api/webhooks/${provider}`,
        headers: {
          'content-type': 'application/json',
          'x-hub-signature-256': `sha256=${'0'.repeat(64)}`,
          'x-gitlab-token': 'x',
          'x-gitea-signature': 'zz',
          'x-github-event': pick(['push', 'ping', 'weird', '']) || 'push',
        },
        body: big ? Buffer.alloc(1024 * 1024 + 10, 0x7b) : pick(BODIES),
      });
    }
  }
  return out;
}

describe('robustness', () => {
  test(
    '1,400 malformed requests + raw garbage: no 5xx, nothing logged as a server error, still serving',
    { timeout: 120_000 },
    async () => {
      const { log, lines } = captureLogger();
      // Hundreds of 401s from one address: the failed-authentication limiter is tested in limits-*.test.ts.
      const s = await serve({ log, limits: { authMaxFailures: 1_000_000 } });
      const withAuth = await serve({
        log,
        auth: { enabled: true, username: 'admin', password: 'pw' },
        limits: { authMaxFailures: 1_000_000 },
      });
      const agent = new Agent({ keepAlive: true, maxSockets: 16 });
      const rand = prng(20250628);
      try {
        const reqs = generate(rand, 1200);
        const statuses = new Map<number, number>();
        const bad: string[] = [];
        for (let i = 0; i < reqs.length; i += 32) {
          const batch = reqs.slice(i, i + 32);
          const got = await Promise.all(batch.map((r) => send(s, agent, r)));
          got.forEach((st, j) => {
            statuses.set(st, (statuses.get(st) ?? 0) + 1);
            if (st >= 500) bad.push(`${st} ${batch[j]!.method} ${batch[j]!.path}`);
          });
        }
        // Garbage credentials against the auth-enabled app.
        const auths = [
          'Basic',
          'Basic =',
          'Basic ' + 'A'.repeat(5000),
          'Basic OmZvbw==',
          'Basic YWRtaW4=',
          'Digest x',
          'Basic %%%',
          'basic YWRtaW46cHc6Og==',
        ];
        for (let i = 0; i < 200; i++) {
          const st = await send(withAuth, agent, {
            method: 'GET',
            path: '/api/repositories',
            headers: { authorization: auths[i % auths.length]! },
          });
          if (st !== 401) bad.push(`auth ${auths[i % auths.length]} → ${st}`);
        }
        // Raw random bytes and broken HTTP straight on the socket.
        const raws: Buffer[] = [];
        for (let i = 0; i < 40; i++)
          raws.push(Buffer.from(Array.from({ length: 1 + Math.floor(rand() * 512) }, () => Math.floor(rand() * 256))));
        raws.push(Buffer.from('GET /api/repositories/1 HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n'));
        raws.push(Buffer.from('POST /api/reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'));
        raws.push(Buffer.from('GET /' + 'a'.repeat(20_000) + ' HTTP/1.1\r\nHost: x\r\n\r\n'));
        raws.push(Buffer.from('GET /api/health HTTP/1.1\r\n' + 'X-A: b\r\n'.repeat(3000) + '\r\n'));
        for (const raw of raws) {
          const answer = await rawExchange(s, raw);
          const m = /^HTTP\/1\.[01] (\d{3})/.exec(answer);
          if (m && Number(m[1]) >= 500) bad.push(`raw → ${m[1]}`);
        }
        assert.deepEqual(bad, []);
        assert.ok(reqs.length + 200 >= 1000);
        assert.ok((statuses.get(400) ?? 0) > 100, `many 400s expected: ${JSON.stringify([...statuses])}`);
        assert.ok((statuses.get(405) ?? 0) > 20, 'wrong methods answered 405');
        assert.ok((statuses.get(413) ?? 0) + (statuses.get(-1) ?? 0) > 0, 'huge bodies refused');
        assert.deepEqual(
          lines.filter((l) => l['msg'] === 'http request failed'),
          [],
        );
        assert.equal(({} as Record<string, unknown>)['polluted'], undefined);

        const health = await fetch(`${s.url}/api/health`);
        assert.equal(health.status, 200);
        const repo = await fetch(`${s.url}/api/repositories/1`);
        assert.equal(repo.status, 200);
      } finally {
        agent.destroy();
        await s.close();
        await withAuth.close();
      }
    },
  );
});
