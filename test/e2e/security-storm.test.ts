/**
 * @module Security storm against the real daemon (Basic Auth on, a webhook secret, tokens): at least 10,000
 * malformed requests over raw TCP from many 127.0.0.x addresses (odd methods, %00 / traversal / very long /
 * unicode paths, oversized, duplicate and broken headers, bad Content-Length, bad chunked encoding, garbage and
 * invalid UTF-8 bodies, deep JSON, gzip bodies, raw garbage). No 5xx, no connection closed without a status where
 * one is possible, the daemon still serves afterwards, and none of the secrets appears in anything captured
 * (answers and every log line). The PRNG is seeded (SHIPARR_STORM_SEED) so a failure replays; the count is printed.
 * Needs no Docker engine: nothing is deployed.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { Writable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { signatureHeaders } from '../../src/http/webhooks.ts';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { saveArtifact } from '../helpers/secret-sweep.ts';

const PASSWORD = 'storm-Pa55word-do-not-leak';
const GITHUB_TOKEN = 'ghp_stormGlobalTokenDoNotLeak0000000000';
const REPO_TOKEN = 'storm-repo-token-do-not-leak';
const GLOBAL_SECRET = 'storm-global-webhook-secret';
const REPO_SECRET = 'storm-repo-webhook-secret';
const SECRETS = [PASSWORD, GITHUB_TOKEN, REPO_TOKEN, GLOBAL_SECRET, REPO_SECRET];
const GOOD_AUTH = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;
const REPO_URL = 'http://127.0.0.1:9/acme/storm.git';

const COUNT = Number(process.env.SHIPARR_STORM_COUNT ?? 10_000);
const SEED = Number(process.env.SHIPARR_STORM_SEED ?? 0x5eed_14);
const CONCURRENCY = 32;

/** Deterministic PRNG (mulberry32). */
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

interface Shot {
  kind: string;
  bytes: Buffer;
  /** false for inputs that are not an HTTP request at all (then a silent close is acceptable). */
  statusExpected: boolean;
  /** Close our side after writing (the input cannot be completed). */
  endAfterWrite: boolean;
}

const METHODS = [
  'GET',
  'POST',
  'PUT',
  'DELETE',
  'PATCH',
  'OPTIONS',
  'HEAD',
  'PROPFIND',
  'MKCOL',
  'LOCK',
  'PURGE',
  'SEARCH',
  'TRACE',
  'M-SEARCH',
  'REPORT',
  'BREW',
  'get',
  'G3T',
  'POST\t',
  'X'.repeat(40),
];
const ROUTES = [
  '/',
  '/api/health',
  '/api/projects',
  '/api/projects/storm',
  '/api/repositories',
  '/api/repositories/1',
  '/api/repositories/storm%2Fapp',
  '/api/repositories/1/deployments?limit=-1',
  '/api/repositories/1/deploy',
  '/api/repositories/1/rollback',
  '/api/repositories/1/suspend',
  '/api/deployments/1/logs',
  '/api/reload',
  '/api/events',
  '/metrics',
  '/containers/abc/logs?tail=x',
  '/widget/dashy?project=storm',
  '/health/project/storm',
  '/api/webhooks/github',
  '/api/webhooks/gitlab',
  '/api/webhooks/gitea',
  '/api/webhooks/generic',
  '/api/webhooks/bitbucket',
];
const PATH_MUTATIONS: ((p: string, r: () => number) => string)[] = [
  (p) => `${p}%00`,
  (p) => `${p}/%00/../../etc/passwd`,
  (p) => `${p}/../../../../etc/shadow`,
  (p) => `/..%2f..%2f..${p}`,
  (p) => `${p}/%2e%2e/%2e%2e/`,
  (p) => `${p}/${'a'.repeat(9000)}`,
  (p) => `${p}?${'q=1&'.repeat(3000)}`,
  (p) => `${p}/ünïcødé/日本/${encodeURIComponent('🚢')}`,
  (p) => `${p}/%ff%fe%C0%AE`,
  (p) => `${p}/%`,
  (p) => `${p}\\..\\..\\windows`,
  (p) => `//${p}`,
  (p) => `${p}#frag`,
  (p, r) => `${p}/${Math.floor(r() * 1e16)}`,
  (p) => p,
];

function pick<T>(r: () => number, a: readonly T[]): T {
  return a[Math.floor(r() * a.length)]!;
}

function garbage(r: () => number, n: number): Buffer {
  return Buffer.from(Array.from({ length: n }, () => Math.floor(r() * 256)));
}

function jsonBody(r: () => number): Buffer {
  return Buffer.from(
    pick(r, [
      '{',
      '[]',
      'null',
      '{"commit":"zz"}',
      '{"__proto__":{"polluted":1}}',
      '{"constructor":{"prototype":{"x":1}}}',
      '{"ref":"refs/heads/main","repository":{"clone_url":"' + REPO_URL + '"}}',
      '{"url":"' + REPO_URL + '","branch":"main"}',
      '['.repeat(20_000),
      '{"a":'.repeat(5_000) + '1' + '}'.repeat(5_000),
      '1'.repeat(400) + 'e99999',
      '"\\ud800"',
    ]),
  );
}

function bodyFor(r: () => number): { body: Buffer; headers: string[] } {
  const k = Math.floor(r() * 8);
  if (k === 0) return { body: garbage(r, 1 + Math.floor(r() * 2048)), headers: ['Content-Type: application/json'] };
  if (k === 1)
    return {
      body: Buffer.from([0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0xf0, 0x28, 0x8c, 0xbc]),
      headers: ['Content-Type: application/json; charset=utf-8'],
    };
  if (k === 2)
    return { body: gzipSync(jsonBody(r)), headers: ['Content-Type: application/json', 'Content-Encoding: gzip'] };
  if (k === 3)
    return {
      body: garbage(r, 64),
      headers: [
        'Content-Type: application/json',
        `Content-Encoding: ${pick(r, ['gzip', 'deflate', 'br', 'zstd', 'gzip, gzip', 'x-evil'])}`,
      ],
    };
  if (k === 4)
    return {
      body: Buffer.from(`payload=${encodeURIComponent(jsonBody(r).toString('latin1'))}&payload=%zz`),
      headers: ['Content-Type: application/x-www-form-urlencoded'],
    };
  if (k === 5)
    return {
      body: jsonBody(r),
      headers: [
        `Content-Type: ${pick(r, ['text/plain', 'multipart/form-data; boundary=x', 'application/json;;;', '', '\u00ff/\u00fe'])}`,
      ],
    };
  return { body: jsonBody(r), headers: ['Content-Type: application/json'] };
}

function authHeader(r: () => number): string[] {
  const x = r();
  if (x < 0.2) return [`Authorization: ${GOOD_AUTH}`];
  if (x < 0.5)
    return [
      `Authorization: ${pick(r, ['Basic', 'Basic =', `Basic ${'A'.repeat(3000)}`, 'Bearer x', 'Basic YWRtaW46', 'Digest a=b', `Basic ${Buffer.from('admin:wrong').toString('base64')}`])}`,
    ];
  if (x < 0.55) return [`Authorization: ${GOOD_AUTH}`, 'Authorization: Basic Zm9vOmJhcg=='];
  return [];
}

function request(method: string, path: string, headers: string[], body?: Buffer): Buffer {
  const head = [`${method} ${path} HTTP/1.1`, 'Host: shiparr.test', ...headers, 'Connection: close'];
  if (body !== undefined && !headers.some((h) => /^(content-length|transfer-encoding):/i.test(h)))
    head.push(`Content-Length: ${body.length}`);
  return Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), body ?? Buffer.alloc(0)]);
}

/** One malformed request; `i` spreads the kinds evenly, the PRNG picks the details. */
function shot(r: () => number, i: number): Shot {
  const route = pick(r, ROUTES);
  const path = pick(r, PATH_MUTATIONS)(route, r);
  const method = pick(r, METHODS);
  const ok = (kind: string, bytes: Buffer): Shot => ({ kind, bytes, statusExpected: true, endAfterWrite: false });
  switch (i % 10) {
    case 0:
      return ok('method+path', request(method, path, authHeader(r)));
    case 1: {
      const { body, headers } = bodyFor(r);
      return ok(
        'body',
        request(pick(r, ['POST', 'PUT', 'PATCH', 'DELETE']), route, [...headers, ...authHeader(r)], body),
      );
    }
    case 2: {
      const headers = pick(r, [
        [`X-Big: ${'b'.repeat(20_000)}`],
        Array.from({ length: 400 }, (_, j) => `X-Many-${j}: ${'v'.repeat(60)}`),
        ['Host: a', 'Host: b'],
        ['Content-Type: application/json', 'Content-Type: text/plain'],
        ['X-Null: a\u0000b'],
        ['X-Folded: a', ' continued'],
        ['No colon here'],
        [': empty-name'],
        [`X-Unicode: ${'ü'.repeat(50)}`],
        ['Expect: 100-continue'],
        ['Upgrade: websocket', 'Connection: Upgrade'],
        ['X-Forwarded-For: 1.2.3.4, evil'],
        [`Cookie: ${'c=1; '.repeat(2000)}`],
      ]);
      return ok(
        'headers',
        request(
          method === 'CONNECT' ? 'GET' : pick(r, ['GET', 'POST']),
          path,
          [...headers, ...authHeader(r)],
          Buffer.from('{}'),
        ),
      );
    }
    case 3: {
      const cl = pick(r, [
        ['Content-Length: abc'],
        ['Content-Length: -1'],
        ['Content-Length: 1e3'],
        ['Content-Length: 99999999999999999999999'],
        ['Content-Length: 2', 'Content-Length: 3'],
        ['Content-Length: 2, 3'],
        ['Content-Length: +2'],
        ['Content-Length: 2', 'Transfer-Encoding: chunked'],
        ['Content-Length:  2 '],
      ]);
      return ok(
        'content-length',
        request('POST', route, ['Content-Type: application/json', ...cl, ...authHeader(r)], Buffer.from('{}')),
      );
    }
    case 4: {
      const chunked = pick(r, [
        'zz\r\n{}\r\n0\r\n\r\n',
        '2\r\n{}0\r\n\r\n',
        'fffffffffffffffffff\r\n{}\r\n0\r\n\r\n',
        '2;ext="\u0001"\r\n{}\r\n0\r\n\r\n',
        '-2\r\n{}\r\n0\r\n\r\n',
        '2\r\n{}\r\n0\r\nTrailer: \u0000\r\n\r\n',
        '2\n{}\n0\n\n',
        '0x2\r\n{}\r\n0\r\n\r\n',
        ' 2\r\n{}\r\n0\r\n\r\n',
      ]);
      const te = pick(r, [
        'Transfer-Encoding: chunked',
        'Transfer-Encoding: chunked, gzip',
        'Transfer-Encoding: gzip, chunked',
        'Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked',
        'Transfer-Encoding:\tchunked',
        'Transfer-Encoding: xchunked',
      ]);
      return ok(
        'chunked',
        request(
          'POST',
          route,
          ['Content-Type: application/json', te, ...authHeader(r)],
          Buffer.from(chunked, 'latin1'),
        ),
      );
    }
    case 5: {
      const provider = pick(r, ['github', 'gitlab', 'gitea', 'generic'] as const);
      const body = jsonBody(r);
      const secret = pick(r, [REPO_SECRET, GLOBAL_SECRET, 'guess', 'storm']);
      const sig = Object.entries(signatureHeaders(provider, body, secret)).map(([k, v]) => `${k}: ${v}`);
      // GitLab's scheme sends the secret itself, so only wrong guesses go out on the wire.
      const headers = provider === 'gitlab' ? ['X-Gitlab-Token: guess'] : sig;
      return ok(
        'webhook',
        request('POST', `/api/webhooks/${provider}`, ['Content-Type: application/json', ...headers], body),
      );
    }
    case 6:
      return ok(
        'unicode request line',
        Buffer.concat([
          Buffer.from(`${method} /api/`, 'latin1'),
          Buffer.from('ревизия/😀\u0000/', 'utf8'),
          Buffer.from(' HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
        ]),
      );
    case 7: {
      // [bytes, complete]: an incomplete head is ended by us; a complete one says Connection: close where it can.
      const [line, complete] = pick(r, [
        [`GET ${route} HTTP/1.1\r\n`, false],
        [`GET ${route} HTTP/9.9\r\nHost: x\r\n\r\n`, true],
        [`GET ${route} http/1.1\r\nHost: x\r\n\r\n`, true],
        [`GET ${route}\r\n\r\n`, true],
        ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', true],
        [`GET  ${route}  HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, true],
        [`${route} GET HTTP/1.1\r\n\r\n`, true],
        ['GET http://evil.example/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', true],
        ['CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n', true],
        ['OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n', true],
      ] as const);
      return {
        kind: 'request line',
        bytes: Buffer.from(line, 'latin1'),
        statusExpected: true,
        endAfterWrite: !complete,
      };
    }
    case 8:
      return {
        kind: 'raw garbage',
        bytes: garbage(r, 1 + Math.floor(r() * 1500)),
        statusExpected: false,
        endAfterWrite: true,
      };
    default: {
      const { body, headers } = bodyFor(r);
      // A body shorter than announced, then our side closes: no complete request, a status is not owed.
      return {
        kind: 'truncated body',
        bytes: request('POST', route, [...headers, `Content-Length: ${body.length + 100}`, ...authHeader(r)], body),
        statusExpected: false,
        endAfterWrite: true,
      };
    }
  }
}

interface Outcome {
  status: number | null;
  error: string | null;
  timedOut: boolean;
  answer: string;
}

function fire(url: URL, s: Shot, localAddress: string): Promise<Outcome> {
  return new Promise((resolve) => {
    const sock = connect({ port: Number(url.port), host: url.hostname, localAddress });
    const chunks: Buffer[] = [];
    let error: string | null = null;
    let timedOut = false;
    sock.on('data', (d: Buffer) => chunks.push(d));
    sock.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    sock.on('end', () => sock.end());
    sock.on('close', () => {
      const answer = Buffer.concat(chunks).toString('latin1');
      // The final status (an interim `100 Continue` may come first).
      const m = /(?:^|\r\n)HTTP\/1\.[01] ([2-5]\d\d) /.exec(answer);
      resolve({ status: m ? Number(m[1]) : null, error, timedOut, answer });
    });
    sock.setTimeout(10_000, () => {
      timedOut = true;
      sock.destroy();
    });
    sock.write(s.bytes, () => {
      if (s.endAfterWrite) sock.end();
    });
  });
}

describe('security storm against the real daemon', () => {
  let daemon: TestDaemon;
  let logged = '';
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      logged += chunk.toString('utf8');
      cb();
    },
  });

  before(async () => {
    daemon = await startTestDaemon({
      env: {
        SHIPARR_AUTH_ENABLED: 'true',
        SHIPARR_AUTH_USERNAME: 'admin',
        SHIPARR_AUTH_PASSWORD: PASSWORD,
        SHIPARR_WEBHOOK_SECRET: GLOBAL_SECRET,
        SHIPARR_AUTH_BLOCK_SECONDS: '5',
        GITHUB_TOKEN,
      },
      projects: {
        'storm.yaml': [
          'project: storm',
          'tokens:',
          `  github: ${GITHUB_TOKEN}`,
          'repositories:',
          '  app:',
          `    url: ${REPO_URL}`,
          '    branch: main',
          `    token: ${REPO_TOKEN}`,
          `    webhook_secret: ${REPO_SECRET}`,
          '    check_interval: 3600',
          '',
        ].join('\n'),
      },
      daemon: { log: pino({ level: 'debug' }, sink) },
    });
  });
  after(async () => {
    await daemon?.dispose();
    saveArtifact('security-storm.log', logged);
  });

  test(
    `${COUNT} malformed requests: no 5xx, a status wherever one is possible, no secret anywhere`,
    { timeout: 120_000 },
    async () => {
      const url = new URL(daemon.url!);
      const r = prng(SEED);
      const shots = Array.from({ length: COUNT }, (_, i) => shot(r, i));
      const statuses = new Map<string, number>();
      const failures: string[] = [];
      const answers: string[] = [];
      const started = Date.now();
      let next = 0;
      const worker = async (): Promise<void> => {
        for (;;) {
          const i = next++;
          if (i >= shots.length) return;
          const s = shots[i]!;
          // From 127.0.0.2–127.0.0.21: each collects enough 401s for the limiter to block it (5 s) now and then.
          const o = await fire(url, s, `127.0.0.${2 + (i % 20)}`);
          answers.push(o.answer);
          const key = `${o.status ?? o.error ?? (o.timedOut ? 'timeout' : 'closed')}`;
          statuses.set(key, (statuses.get(key) ?? 0) + 1);
          const where = `#${i} ${s.kind} (seed ${SEED}): ${JSON.stringify(s.bytes.subarray(0, 120).toString('latin1'))}`;
          // /health/project/:name answers 503 by design while the project is not running (Dashy status checks).
          const designed =
            o.status === 503 && /^(GET|HEAD) \/health\/project\/storm HTTP/.test(s.bytes.toString('latin1'));
          if (o.status !== null && o.status >= 500 && !designed) failures.push(`${o.status} for ${where}`);
          else if (s.statusExpected && o.status === null)
            failures.push(`no status (${o.error ?? (o.timedOut ? 'timeout' : 'closed')}) for ${where}`);
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      const seconds = (Date.now() - started) / 1000;
      console.log(
        `security storm: ${shots.length} requests in ${seconds.toFixed(1)} s (seed ${SEED}); outcomes ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`,
      );
      assert.deepEqual(failures.slice(0, 20), [], `${failures.length} failures`);
      assert.ok(shots.length >= 10_000 || process.env.SHIPARR_STORM_COUNT !== undefined);
      assert.ok((statuses.get('400') ?? 0) > 500, 'the parser and the app refused many requests');
      assert.ok((statuses.get('401') ?? 0) > 100 && (statuses.get('429') ?? 0) > 0, 'auth refusals and blocks');

      // Still serving, for a client that never misbehaved.
      const health = await fetch(`${daemon.url}/api/health`, { headers: { authorization: GOOD_AUTH } });
      assert.equal(health.status, 200);
      assert.equal(((await health.json()) as { db: { ok: boolean } }).db.ok, true);
      const repos = await fetch(`${daemon.url}/api/repositories`, { headers: { authorization: GOOD_AUTH } });
      assert.equal(repos.status, 200);
      assert.equal(((await repos.json()) as unknown[]).length, 1);
      // A proxy tunnel request gets a status too (Node would otherwise close the socket without one).
      const tunnel = await fire(
        url,
        {
          kind: 'connect',
          bytes: Buffer.from('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n'),
          statusExpected: true,
          endAfterWrite: false,
        },
        '127.0.0.1',
      );
      assert.equal(tunnel.status, 405);
      assert.match(tunnel.answer, /"code":"METHOD_NOT_ALLOWED"/);

      assert.ok(logged.length > 0, 'the log was captured');
      assert.equal(
        logged.split('\n').filter((l) => l.includes('"msg":"http request failed"')).length,
        0,
        'no server error logged',
      );
      const captured = `${answers.join('\n')}\n${logged}`;
      for (const secret of SECRETS) assert.ok(!captured.includes(secret), `a secret leaked (${secret.slice(0, 6)}…)`);
      assert.ok(!captured.includes(GOOD_AUTH.slice('Basic '.length)), 'the Basic credentials leaked');
    },
  );
});
