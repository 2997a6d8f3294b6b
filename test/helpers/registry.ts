/**
 * @module A real Docker registry for tests: Debian's `docker-registry` (the CNCF distribution registry) on a free
 * port of 127.0.0.1 with filesystem storage in a temp dir, optionally behind htpasswd (bcrypt) or token auth.
 *
 * - `requireRegistry(t)`: skips the test without the engine, the binary or `htpasswd` (fails under
 *   `SHIPARR_REQUIRE_DOCKER=1`, like test/helpers/docker.ts).
 * - `startRegistry(opts)`: the running registry; `requests()` lists what its access log recorded (method, path,
 *   status, user agent), `push(localImage, 'repo:tag')` pushes with the docker CLI through a throwaway
 *   DOCKER_CONFIG (never ~/.docker) and returns the digest; `stop()` removes the process, its storage and every
 *   image tag it created.
 * - `buildTestImage(t, marker)`: a local image `FROM shiparr-test/busybox` with a label, different per marker.
 * - `startRegistryProxy(target)`: node:http in front of the registry answering 429 + Retry-After to the next N
 *   requests, counting requests; it also pages tag lists asked with `?n=` (`Link: <…?n=&last=>; rel="next"`, as
 *   the distribution spec describes), which distribution 2.8 itself ignores for tags.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createPrivateKey, sign as cryptoSign, X509Certificate } from 'node:crypto';
import { access, chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { exec } from '../../src/lib/exec.ts';
import { docker, ensureBusyboxImage, freePort, requireDocker } from './docker.ts';
import { until } from './wait.ts';

/** The registry binary (Debian package docker-registry). Override with SHIPARR_TEST_REGISTRY_BIN. */
const REGISTRY_BIN = process.env['SHIPARR_TEST_REGISTRY_BIN'] ?? '/usr/bin/docker-registry';

/** One line of the registry's access log. */
interface RegistryRequest {
  method: string;
  path: string;
  status: number;
  userAgent: string;
}

export interface RegistryServerOptions {
  /** htpasswd auth (bcrypt) with this one user. */
  auth?: { username: string; password: string };
  /**
   * Token auth: the registry sends `Bearer realm=…,service=…` challenges and accepts JWTs signed by a key whose
   * certificate is in `rootCertBundle` (PEM file path) with this `issuer`.
   */
  token?: { realm: string; service: string; issuer: string; rootCertBundle: string };
  /** Credentials `push` logs in with (default: `auth`); for token auth. */
  login?: { username: string; password: string };
}

export interface RegistryServer {
  /** `127.0.0.1:PORT`: the registry as image references name it. */
  readonly host: string;
  readonly port: number;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Requests in the access log so far (oldest first). */
  requests(): RegistryRequest[];
  /** Forgets the requests logged so far. */
  clearRequests(): void;
  /** Tags `localImage` as `<host>/<repoTag>`, pushes it (logging in when the registry has auth) and returns the digest. */
  push(localImage: string, repoTag: string): Promise<string>;
  /** Stops the registry, removes its storage, its temp dirs and every image tag `push` created. */
  stop(): Promise<void>;
}

async function executable(file: string): Promise<boolean> {
  return access(file, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/**
 * Call first: true when the engine, the registry binary and `htpasswd` are there. Otherwise skips the test with the
 * reason, or throws under `SHIPARR_REQUIRE_DOCKER=1`.
 */
export async function requireRegistry(t: TestContext): Promise<boolean> {
  if (!(await requireDocker(t))) return false;
  const missing: string[] = [];
  if (!(await executable(REGISTRY_BIN))) missing.push(`${REGISTRY_BIN} (Debian package docker-registry)`);
  const h = await exec('htpasswd', ['-nbB', 'u', 'p'], { timeoutMs: 10_000 });
  if (h.code !== 0) missing.push('htpasswd (Debian package apache2-utils)');
  if (!missing.length) return true;
  const reason = `registry tests need ${missing.join(' and ')}`;
  if (process.env['SHIPARR_REQUIRE_DOCKER'] === '1') throw new Error(`${reason} (SHIPARR_REQUIRE_DOCKER=1)`);
  t.skip(reason);
  return false;
}

// Apache combined log format, as the registry writes its access log on stdout.
const ACCESS_LINE = /^\S+ \S+ \S+ \[[^\]]*\] "([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3}) \S+ "[^"]*" "([^"]*)"/;

/** Starts a registry on a free 127.0.0.1 port; resolves once `/v2/` answers. Stop it with `stop()`. */
export async function startRegistry(opts: RegistryServerOptions = {}): Promise<RegistryServer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'shiparr-registry-'));
  const dockerConfig = path.join(dir, 'docker-config');
  await mkdir(dockerConfig, { mode: 0o700 });
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const url = `http://${host}`;
  const lines = [
    'version: 0.1',
    'log:',
    '  level: error',
    '  formatter: text',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(path.join(dir, 'storage'))}`,
    '  delete:',
    '    enabled: true',
    'http:',
    `  addr: ${host}`,
    `  secret: ${JSON.stringify(`test-${Math.random().toString(36).slice(2)}`)}`,
  ];
  if (opts.auth) {
    const h = await exec('htpasswd', ['-Bbn', opts.auth.username, opts.auth.password], { timeoutMs: 30_000 });
    if (h.code !== 0) throw new Error(`htpasswd failed: ${h.output}`);
    await writeFile(path.join(dir, 'htpasswd'), h.stdout);
    lines.push(
      'auth:',
      '  htpasswd:',
      '    realm: shiparr-test',
      `    path: ${JSON.stringify(path.join(dir, 'htpasswd'))}`,
    );
  } else if (opts.token) {
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${JSON.stringify(opts.token.realm)}`,
      `    service: ${JSON.stringify(opts.token.service)}`,
      `    issuer: ${JSON.stringify(opts.token.issuer)}`,
      `    rootcertbundle: ${JSON.stringify(opts.token.rootCertBundle)}`,
    );
  }
  const configFile = path.join(dir, 'config.yml');
  await writeFile(configFile, lines.join('\n') + '\n');

  const log: RegistryRequest[] = [];
  let stderr = '';
  let pending = '';
  const child: ChildProcess = spawn(REGISTRY_BIN, ['serve', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    pending += chunk;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      const m = ACCESS_LINE.exec(line);
      if (m) log.push({ method: m[1]!, path: m[2]!, status: Number(m[3]), userAgent: m[4]! });
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-20_000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let running = true;
  void exited.then(() => (running = false));

  const tagged = new Set<string>();
  const cleanup = async (): Promise<void> => {
    if (running) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    }
    if (tagged.size) await docker(['rmi', ...tagged]);
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await until(
      async () => {
        if (!running) throw new Error(`docker-registry exited: ${stderr.trim().slice(-2000)}`);
        const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(2_000) });
        await res.body?.cancel();
        return res.status === 200 || res.status === 401;
      },
      `docker-registry on ${host}`,
      30_000,
      100,
    );
  } catch (err) {
    await cleanup();
    throw new Error(`${(err as Error).message}\n${stderr.trim().slice(-2000)}`);
  }
  await until(() => log.some((r) => r.path === '/v2/'), 'the first access-log line', 10_000, 50);
  log.length = 0;

  let loggedIn = false;
  return {
    host,
    port,
    url,
    requests: () => [...log],
    clearRequests: () => {
      log.length = 0;
    },
    async push(localImage, repoTag) {
      const target = `${host}/${repoTag}`;
      const env = { DOCKER_CONFIG: dockerConfig };
      const login = opts.login ?? opts.auth;
      if (login && !loggedIn) {
        const l = await docker(['login', '--username', login.username, '--password-stdin', host], {
          input: login.password,
          env,
        });
        if (l.code !== 0) throw new Error(`docker login ${host} failed: ${l.output}`);
        loggedIn = true;
      }
      const tg = await docker(['tag', localImage, target]);
      if (tg.code !== 0) throw new Error(`docker tag ${localImage} ${target} failed: ${tg.output}`);
      tagged.add(target);
      const p = await docker(['push', target], { env, timeoutMs: 180_000 });
      if (p.code !== 0) throw new Error(`docker push ${target} failed: ${p.output}`);
      const digest = /digest: (sha256:[a-f0-9]{64})/.exec(p.stdout)?.[1];
      if (!digest) throw new Error(`docker push ${target}: no digest in the output: ${p.output}`);
      // The push records a repo digest on the local image: it would keep the image listed after its tag is gone.
      tagged.add(`${host}/${repoTag.slice(0, repoTag.lastIndexOf(':'))}@${digest}`);
      return digest;
    },
    stop: cleanup,
  };
}

/**
 * Builds a local image `shiparr-test/registry-<marker>:<pid>` from the busybox test image with a label (and file)
 * carrying `marker`, so two markers give two images with different digests. `cleanup` receives its removal (pass
 * `(fn) => t.after(fn)`, or a file-level `after` list when several tests share the image).
 */
export async function buildTestImage(
  marker: string,
  cleanup: (remove: () => Promise<unknown>) => void,
): Promise<string> {
  const base = await ensureBusyboxImage();
  const tag = `shiparr-test/registry-${marker.toLowerCase().replace(/[^a-z0-9]+/g, '-')}:${process.pid}`;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'shiparr-image-'));
  try {
    await writeFile(path.join(dir, 'marker.txt'), `${marker}\n`);
    await writeFile(
      path.join(dir, 'Dockerfile'),
      `FROM ${base}\nLABEL shiparr.test.registry=${JSON.stringify(marker)}\nCOPY marker.txt /marker.txt\n`,
    );
    await chmod(dir, 0o755);
    const b = await docker(['build', '-q', '-t', tag, dir], { env: { DOCKER_BUILDKIT: '0' }, timeoutMs: 180_000 });
    if (b.code !== 0) throw new Error(`docker build ${tag} failed: ${b.output}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  cleanup(() => docker(['rmi', tag]));
  return tag;
}

export interface RegistryProxy {
  /** `127.0.0.1:PORT` of the proxy: use it as the registry of image references. */
  readonly host: string;
  /** Requests received (answered or limited) since start. */
  readonly requestCount: number;
  /** Times of the requests received (ms since epoch). */
  readonly requestTimes: number[];
  /** Answers the next `n` requests with 429 and this `Retry-After` value (seconds or an HTTP date, or null: none). */
  limitNext(n: number, retryAfter: string | null): void;
  close(): Promise<void>;
}

/**
 * A node:http proxy in front of `target` (`127.0.0.1:PORT`) that can answer 429 instead, and pages tag lists (see
 * {@link RegistryProxy}).
 */
export async function startRegistryProxy(target: string): Promise<RegistryProxy> {
  const [targetHost, targetPort] = [target.slice(0, target.lastIndexOf(':')), Number(target.split(':').pop())];
  let limit = 0;
  let retryAfter: string | null = null;
  const times: number[] = [];
  const server = http.createServer((req, res) => {
    times.push(Date.now());
    if (limit > 0) {
      limit--;
      req.resume();
      const headers: Record<string, string> = { 'Content-Type': 'application/json' };
      if (retryAfter !== null) headers['Retry-After'] = retryAfter;
      res.writeHead(429, headers);
      res.end(JSON.stringify({ errors: [{ code: 'TOOMANYREQUESTS', message: 'rate limited (test proxy)' }] }));
      return;
    }
    const u = new URL(req.url ?? '/', 'http://x');
    const n = Number(u.searchParams.get('n'));
    if (req.method === 'GET' && /^\/v2\/.+\/tags\/list$/.test(u.pathname) && n > 0) {
      pageTags(u, n, req.headers, res);
      return;
    }
    const up = http.request(
      { host: targetHost, port: targetPort, method: req.method, path: req.url, headers: req.headers },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        upRes.pipe(res);
      },
    );
    up.on('error', (err) => {
      res.writeHead(502);
      res.end(String(err));
    });
    req.pipe(up);
  });
  /** One page of the full tag list the registry answers: sorted, after `last`, at most `n`, Link to the next. */
  function pageTags(u: URL, n: number, headers: http.IncomingHttpHeaders, res: http.ServerResponse): void {
    const up = http.get({ host: targetHost, port: targetPort, path: u.pathname, headers }, (upRes) => {
      const chunks: Buffer[] = [];
      upRes.on('data', (c: Buffer) => chunks.push(c));
      upRes.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (upRes.statusCode !== 200) {
          res.writeHead(upRes.statusCode ?? 502, upRes.headers);
          res.end(text);
          return;
        }
        const body = JSON.parse(text) as { name: string; tags: string[] | null };
        const last = u.searchParams.get('last');
        const all = [...(body.tags ?? [])].sort().filter((tag) => last === null || tag > last);
        const page = all.slice(0, n);
        const out: Record<string, string> = { 'Content-Type': 'application/json' };
        if (all.length > n) out['Link'] = `<${u.pathname}?n=${n}&last=${encodeURIComponent(page.at(-1)!)}>; rel="next"`;
        res.writeHead(200, out);
        res.end(JSON.stringify({ name: body.name, tags: page }));
      });
    });
    up.on('error', (err) => {
      res.writeHead(502);
      res.end(String(err));
    });
  }
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    get requestCount() {
      return times.length;
    },
    requestTimes: times,
    limitNext(n, value) {
      limit = n;
      retryAfter = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface TokenAuthServer {
  /** Options for {@link startRegistry}'s `token`. */
  readonly registryOptions: NonNullable<RegistryServerOptions['token']>;
  /** Token requests received, with the scope asked and whether the credentials were right. */
  readonly tokenRequests: { scope: string; authorized: boolean }[];
  close(): Promise<void>;
}

/**
 * A token server for the registry's `auth: token` mode (the distribution token spec): a self-signed certificate made
 * with openssl, and `GET /token?service=…&scope=…` answering an RS256 JWT (header `x5c` = the certificate) granting the
 * asked actions when the Basic credentials are right, 401 otherwise. Tokens live `expiresIn` seconds (default 300).
 */
export async function startTokenAuth(
  user: { username: string; password: string },
  expiresIn = 300,
): Promise<TokenAuthServer> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'shiparr-token-'));
  const keyFile = path.join(dir, 'key.pem');
  const certFile = path.join(dir, 'cert.pem');
  const o = await exec(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '2',
      '-subj',
      '/CN=shiparr-test-token',
    ],
    { timeoutMs: 60_000 },
  );
  if (o.code !== 0) throw new Error(`openssl failed: ${o.output}`);
  const key = createPrivateKey(await readFile(keyFile));
  const certDer = new X509Certificate(await readFile(certFile)).raw.toString('base64');
  const issuer = 'shiparr-test-issuer';
  const service = 'shiparr-test-registry';
  const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');
  const expected = `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`;
  const tokenRequests: { scope: string; authorized: boolean }[] = [];
  const refreshToken = `refresh-${Math.random().toString(36).slice(2)}`;
  const issue = (scopes: string[], aud: string): string => {
    const now = Math.floor(Date.now() / 1000);
    const access = scopes
      .map((s) => s.split(':'))
      .filter((p) => p.length >= 3 && p[0] === 'repository')
      .map((p) => ({ type: 'repository', name: p.slice(1, -1).join(':'), actions: p.at(-1)!.split(',') }));
    const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'RS256', x5c: [certDer] }));
    const claims = b64url(
      JSON.stringify({
        iss: issuer,
        sub: user.username,
        aud,
        exp: now + expiresIn,
        nbf: now - 10,
        iat: now,
        jti: Math.random().toString(36).slice(2),
        access,
      }),
    );
    const signature = b64url(cryptoSign('sha256', Buffer.from(`${header}.${claims}`), key));
    return `${header}.${claims}.${signature}`;
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://x');
      // GET with Basic credentials (the distribution token spec), or the OAuth2 POST form the Docker engine uses.
      const form = new URLSearchParams(req.method === 'POST' ? Buffer.concat(chunks).toString('utf8') : '');
      const params = req.method === 'POST' ? form : u.searchParams;
      const scopes = params.getAll('scope').flatMap((s) => s.split(' ').filter(Boolean));
      const authorized =
        req.method === 'POST'
          ? (form.get('grant_type') === 'password' &&
              form.get('username') === user.username &&
              form.get('password') === user.password) ||
            (form.get('grant_type') === 'refresh_token' && form.get('refresh_token') === refreshToken)
          : req.headers.authorization === expected;
      tokenRequests.push({ scope: scopes.join(' '), authorized });
      if (u.pathname !== '/token' || !authorized) {
        res.writeHead(401, { 'Content-Type': 'application/json' });
        res.end('{"details":"bad credentials"}');
        return;
      }
      const token = issue(scopes, params.get('service') ?? service);
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(
        JSON.stringify({
          token,
          access_token: token,
          ...(req.method === 'POST' ? { refresh_token: refreshToken } : {}),
          expires_in: expiresIn,
          issued_at: new Date().toISOString(),
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    registryOptions: { realm: `http://127.0.0.1:${port}/token`, service, issuer, rootCertBundle: certFile },
    tokenRequests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
