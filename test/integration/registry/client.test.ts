/**
 * @module The registry client against Debian's real `docker-registry` (distribution 2.8) on 127.0.0.1: manifest HEAD
 * digests of pushed images (and only HEADs in the access log), tag lists with pagination, manifest lists and OCI
 * indexes, htpasswd (Basic) credentials, token (Bearer) auth with a real JWT token server, and a 429 proxy whose
 * Retry-After the client honours. Plus image-reference parsing.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, describe, test } from 'node:test';
import {
  createRegistryClient,
  isLoopbackRegistry,
  parseRetryAfter,
  registryApiHost,
  RegistryError,
  type ManifestHead,
  type RegistryAuth,
} from '../../../src/registry/client.ts';
import { formatImageRef, parseImageRef } from '../../../src/registry/ref.ts';
import {
  buildTestImage,
  requireRegistry,
  startRegistryProxy,
  startRegistry,
  startTokenAuth,
  type RegistryServer,
} from '../../helpers/registry.ts';
import { registerTestSecrets } from '../../helpers/secret-sweep.ts';
import { until } from '../../helpers/wait.ts';

const USER = 'shiparr';
const PASSWORD = 'reg-pass-7f3a9c2e51';
const WRONG_PASSWORD = 'wrong-pass-0b8d4e61';
registerTestSecrets('registry client test', [PASSWORD, WRONG_PASSWORD]);

const cleanups: (() => Promise<unknown>)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

let images: Promise<[string, string]> | undefined;
/** Two different local images (shared by the file). */
function testImages(): Promise<[string, string]> {
  const cleanup = (fn: () => Promise<unknown>) => void cleanups.push(fn);
  images ??= Promise.all([buildTestImage('reg-a', cleanup), buildTestImage('reg-b', cleanup)]);
  return images;
}

let plain: Promise<RegistryServer> | undefined;
/** The registry without auth, shared by the file. */
function plainRegistry(): Promise<RegistryServer> {
  plain ??= startRegistry().then((r) => {
    cleanups.push(() => r.stop());
    return r;
  });
  return plain;
}

async function rejectsWith(p: Promise<unknown>, code: string): Promise<RegistryError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof RegistryError, `expected a RegistryError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

describe('image references', () => {
  test('Docker Hub defaults, hosts with ports, digests', () => {
    assert.deepEqual(parseImageRef('postgres'), {
      registry: 'docker.io',
      repository: 'library/postgres',
      tag: 'latest',
      digest: null,
    });
    assert.deepEqual(parseImageRef('grafana/grafana:10.1'), {
      registry: 'docker.io',
      repository: 'grafana/grafana',
      tag: '10.1',
      digest: null,
    });
    const d = `sha256:${'a'.repeat(64)}`;
    assert.deepEqual(parseImageRef(`ghcr.io/o/a@${d}`), {
      registry: 'ghcr.io',
      repository: 'o/a',
      tag: null,
      digest: d,
    });
    assert.deepEqual(parseImageRef(`127.0.0.1:5000/app:1@${d}`), {
      registry: '127.0.0.1:5000',
      repository: 'app',
      tag: '1',
      digest: d,
    });
    assert.equal(parseImageRef('localhost/app').registry, 'localhost');
    assert.equal(parseImageRef('index.docker.io/library/redis:7').registry, 'docker.io');
    for (const s of ['postgres:16', '127.0.0.1:5000/app:1', `ghcr.io/o/a@${d}`, 'grafana/grafana:10.1'])
      assert.equal(formatImageRef(parseImageRef(s)), s);
    assert.equal(formatImageRef(parseImageRef('docker.io/library/redis')), 'redis:latest');
  });

  test('Retry-After forms, plain-http default and the Docker Hub API host', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    assert.equal(parseRetryAfter('7', now), 7000);
    assert.equal(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now), 30_000);
    assert.equal(parseRetryAfter('Wed, 31 Dec 2025 00:00:30 GMT', now), 0);
    assert.equal(parseRetryAfter(null, now), 60_000);
    assert.equal(parseRetryAfter('soon', now), 60_000);
    for (const r of ['127.0.0.1:5000', '127.3.4.5', 'localhost:5000', '[::1]:5000', 'localhost'])
      assert.equal(isLoopbackRegistry(r), true, r);
    for (const r of ['docker.io', 'ghcr.io', '10.0.0.1:5000', '127.example.com'])
      assert.equal(isLoopbackRegistry(r), false, r);
    assert.equal(registryApiHost('docker.io'), 'registry-1.docker.io');
    assert.equal(registryApiHost('ghcr.io'), 'ghcr.io');
  });

  test('bad references name the value', () => {
    for (const s of ['', 'Upper/case', 'app:bad tag', 'app@sha256:123', 'app:', '-x/y']) {
      assert.throws(
        () => parseImageRef(s),
        (err: unknown) =>
          err instanceof RegistryError && err.code === 'REGISTRY_BAD_REF' && err.message.includes(JSON.stringify(s)),
        s,
      );
    }
  });
});

describe('registry client against docker-registry', { concurrency: false }, () => {
  test(
    'HEAD gives the pushed digest, follows a re-push, and never GETs a manifest',
    { timeout: 300_000 },
    async (t) => {
      if (!(await requireRegistry(t))) return;
      const [a, b] = await testImages();
      const reg = await plainRegistry();
      const client = createRegistryClient();
      const ref = parseImageRef(`${reg.host}/app:1`);

      const digestA = await reg.push(a, 'app:1');
      const head1: ManifestHead = await client.headManifest(ref);
      assert.equal(head1.digest, digestA);
      assert.equal(head1.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');

      const digestB = await reg.push(b, 'app:1');
      assert.notEqual(digestB, digestA);
      assert.equal((await client.headManifest(ref)).digest, digestB);

      await rejectsWith(client.headManifest(parseImageRef(`${reg.host}/app:missing`)), 'REGISTRY_NOT_FOUND');
      const nf = await rejectsWith(client.headManifest(parseImageRef(`${reg.host}/nope:1`)), 'REGISTRY_NOT_FOUND');
      assert.match(nf.message, new RegExp(reg.host.replace(/\./g, '\\.')));

      const ours = reg.requests().filter((r) => r.userAgent === 'shiparr');
      const manifests = ours.filter((r) => r.path.includes('/manifests/'));
      assert.equal(manifests.length, 4, JSON.stringify(ours));
      assert.deepEqual([...new Set(manifests.map((r) => r.method))], ['HEAD']);
      assert.ok(!ours.some((r) => r.method !== 'HEAD'), JSON.stringify(ours));
    },
  );

  test('tag list follows Link pagination', { timeout: 300_000 }, async (t) => {
    if (!(await requireRegistry(t))) return;
    const [a] = await testImages();
    const reg = await plainRegistry();
    const want = ['t1', 't2', 't3', 't4', 't5'];
    for (const tag of want) await reg.push(a, `paged:${tag}`);
    assert.deepEqual([...(await createRegistryClient().listTags(parseImageRef(`${reg.host}/paged:t1`)))].sort(), want);
    // distribution 2.8 ignores `n` for tags: the proxy pages the registry's list as the distribution spec says.
    const proxy = await startRegistryProxy(reg.host);
    cleanups.push(() => proxy.close());
    reg.clearRequests();
    const client = createRegistryClient({ tagsPageSize: 2 });
    assert.deepEqual(await client.listTags(parseImageRef(`${proxy.host}/paged:t1`)), want);
    assert.equal(proxy.requestCount, 3);
    assert.equal(reg.requests().filter((r) => r.path.startsWith('/v2/paged/tags/list')).length, 3);
    await rejectsWith(createRegistryClient().listTags(parseImageRef(`${reg.host}/absent:1`)), 'REGISTRY_NOT_FOUND');
  });

  test('multi-arch tags: a Docker manifest list and an OCI index are accepted', { timeout: 300_000 }, async (t) => {
    if (!(await requireRegistry(t))) return;
    const [a, b] = await testImages();
    const reg = await plainRegistry();
    const digestA = await reg.push(a, 'multi:amd64');
    const digestB = await reg.push(b, 'multi:arm64');
    const sizeOf = async (tag: string): Promise<number> =>
      Number(
        (await fetch(`${reg.url}/v2/multi/manifests/${tag}`, { method: 'HEAD', headers: { Accept: V2 } })).headers.get(
          'content-length',
        ),
      );
    const V2 = 'application/vnd.docker.distribution.manifest.v2+json';
    const [sizeA, sizeB] = [await sizeOf('amd64'), await sizeOf('arm64')];
    const client = createRegistryClient();
    for (const [tag, mediaType, entryType] of [
      ['list', 'application/vnd.docker.distribution.manifest.list.v2+json', V2],
      ['index', 'application/vnd.oci.image.index.v1+json', V2],
    ] as const) {
      const body = JSON.stringify({
        schemaVersion: 2,
        mediaType,
        manifests: [
          { mediaType: entryType, digest: digestA, size: sizeA, platform: { architecture: 'amd64', os: 'linux' } },
          { mediaType: entryType, digest: digestB, size: sizeB, platform: { architecture: 'arm64', os: 'linux' } },
        ],
      });
      const put = await fetch(`${reg.url}/v2/multi/manifests/${tag}`, {
        method: 'PUT',
        headers: { 'Content-Type': mediaType },
        body,
      });
      assert.equal(put.status, 201, await put.text());
      const head = await client.headManifest(parseImageRef(`${reg.host}/multi:${tag}`));
      assert.equal(head.digest, `sha256:${createHash('sha256').update(body).digest('hex')}`);
      assert.equal(head.mediaType, mediaType);
    }
  });

  test(
    'htpasswd: right credentials work; wrong or none fail loudly, naming the registry',
    { timeout: 300_000 },
    async (t) => {
      if (!(await requireRegistry(t))) return;
      const [a] = await testImages();
      const reg = await startRegistry({ auth: { username: USER, password: PASSWORD } });
      cleanups.push(() => reg.stop());
      const digest = await reg.push(a, 'private/app:1');
      const ref = parseImageRef(`${reg.host}/private/app:1`);

      const creds: RegistryAuth = { username: USER, password: PASSWORD };
      const good = createRegistryClient({ credentials: (r) => (r === reg.host ? creds : undefined) });
      assert.equal((await good.headManifest(ref)).digest, digest);
      assert.deepEqual(await good.listTags(ref), ['1']);

      const wrong = createRegistryClient({ credentials: () => ({ username: USER, password: WRONG_PASSWORD }) });
      const err = await rejectsWith(wrong.headManifest(ref), 'REGISTRY_AUTH');
      assert.equal(err.message, `registry ${reg.host} refused the credentials for private/app (401)`);
      assert.equal(err.registry, reg.host);
      assert.equal(err.status, 401);
      assert.equal(err.transient, false);
      assert.ok(!err.message.includes(WRONG_PASSWORD) && !err.message.includes(PASSWORD));

      const anonymous = await rejectsWith(createRegistryClient().headManifest(ref), 'REGISTRY_AUTH');
      assert.match(anonymous.message, /refused anonymous access/);
      assert.ok(anonymous.message.includes(reg.host));
    },
  );

  test('Bearer token flow against the registry in token-auth mode', { timeout: 300_000 }, async (t) => {
    if (!(await requireRegistry(t))) return;
    const [a] = await testImages();
    const auth = await startTokenAuth({ username: USER, password: PASSWORD });
    cleanups.push(() => auth.close());
    const reg = await startRegistry({ token: auth.registryOptions, login: { username: USER, password: PASSWORD } });
    cleanups.push(() => reg.stop());
    // The docker CLI logs in and pushes through the same token server.
    const digest = await reg.push(a, 'tok/app:1');
    auth.tokenRequests.length = 0;

    const ref = parseImageRef(`${reg.host}/tok/app:1`);
    const client = createRegistryClient({ credentials: () => ({ username: USER, password: PASSWORD }) });
    assert.equal((await client.headManifest(ref)).digest, digest);
    assert.equal((await client.headManifest(ref)).digest, digest);
    assert.deepEqual(await client.listTags(ref), ['1']);
    // One token for the scope, cached for the later requests.
    assert.deepEqual(auth.tokenRequests, [{ scope: 'repository:tok/app:pull', authorized: true }]);

    const wrong = createRegistryClient({ credentials: () => ({ username: USER, password: WRONG_PASSWORD }) });
    const err = await rejectsWith(wrong.headManifest(ref), 'REGISTRY_AUTH');
    assert.equal(err.message, `registry ${reg.host} refused the credentials for tok/app (401)`);
    const anon = await rejectsWith(createRegistryClient().headManifest(ref), 'REGISTRY_AUTH');
    assert.ok(anon.message.includes(reg.host));
  });

  test('a 429 is honoured: no request until Retry-After has passed, then it works', { timeout: 300_000 }, async (t) => {
    if (!(await requireRegistry(t))) return;
    const [a] = await testImages();
    const reg = await plainRegistry();
    const digest = await reg.push(a, 'limited:1');
    const proxy = await startRegistryProxy(reg.host);
    cleanups.push(() => proxy.close());
    const ref = parseImageRef(`${proxy.host}/limited:1`);
    const client = createRegistryClient();

    // Retry-After in seconds.
    proxy.limitNext(1, '2');
    const limitedAt = Date.now();
    const err = await rejectsWith(client.headManifest(ref), 'REGISTRY_RATE_LIMITED');
    assert.equal(err.retryAfterMs, 2000);
    assert.equal(err.transient, true);
    assert.ok(err.message.includes(proxy.host));
    assert.equal(proxy.requestCount, 1);
    const again = await rejectsWith(client.listTags(ref), 'REGISTRY_RATE_LIMITED');
    assert.ok(again.retryAfterMs! > 0 && again.retryAfterMs! <= 2000, String(again.retryAfterMs));
    assert.equal(proxy.requestCount, 1, 'no request inside the Retry-After window');
    const head = await until(() => client.headManifest(ref), 'the end of the Retry-After window', 20_000, 100);
    assert.equal(head.digest, digest);
    assert.equal(proxy.requestCount, 2, 'exactly one request after the window');
    assert.ok(proxy.requestTimes[1]! >= limitedAt + 2000, 'the second request came after the window');

    // Retry-After as an HTTP date; another registry (the real one, direct) is not blocked meanwhile.
    proxy.limitNext(1, new Date(Date.now() + 3000).toUTCString());
    const dated = await rejectsWith(client.headManifest(ref), 'REGISTRY_RATE_LIMITED');
    assert.ok(dated.retryAfterMs! > 0 && dated.retryAfterMs! <= 3000, String(dated.retryAfterMs));
    assert.equal((await client.headManifest(parseImageRef(`${reg.host}/limited:1`))).digest, digest);

    // No Retry-After: the default back-off of 60 s.
    const other = createRegistryClient();
    proxy.limitNext(1, null);
    const none = await rejectsWith(other.headManifest(ref), 'REGISTRY_RATE_LIMITED');
    assert.equal(none.retryAfterMs, 60_000);
  });

  test('an unreachable registry is a transient REGISTRY_UNREACHABLE naming it', async () => {
    const client = createRegistryClient({ timeoutMs: 5_000 });
    const err = await rejectsWith(client.headManifest(parseImageRef('127.0.0.1:9/app:1')), 'REGISTRY_UNREACHABLE');
    assert.equal(err.transient, true);
    assert.match(err.message, /^registry 127\.0\.0\.1:9 unreachable/);
  });
});
