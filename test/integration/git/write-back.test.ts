/**
 * @module Image write-back against a real git http-backend server (pushes over smart HTTP, Basic auth with a token):
 * byte-exact edits, override files, concurrent pushes, refusals.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readdir, rm, writeFile, mkdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { GitError } from '../../../src/git/errors.ts';
import { writeBackImages, type WriteBackOptions } from '../../../src/git/write-back.ts';
import { isolatedGitEnv, startGitServer, type GitServer } from '../../helpers/git-server.ts';
import { registerTestSecrets } from '../../helpers/secret-sweep.ts';

const TOKEN = 'wb-token-3f9a8c1d2e';
const WRONG = 'wb-wrong-7d6c5b4a39';
registerTestSecrets('write-back test token', [TOKEN, WRONG]);

const AUTHOR = { name: 'Shiparr Bot', email: 'bot@shiparr.invalid' };

// Comments, blank lines, both quote styles, CRLF-free but odd indentation: everything but the values must survive.
const BASE = `# Production stack — edited by hand and by Shiparr
services:
  app:
    image: registry.local/app:1.1.0   # bumped by the image watch
    ports:
      - "8080:80"

  db:
    image: "postgres:16.1-alpine"
    environment: { POSTGRES_DB: app }   # flow style stays
  cache:
      image: 'redis:7.2'
      command: [redis-server, --save, ""]
# trailing comment
`;

async function expectGitError(p: Promise<unknown>, code: string, also?: RegExp): Promise<GitError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof GitError, `expected a GitError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (also) assert.match(err.message, also);
    for (const secret of [TOKEN, WRONG]) assert.ok(!`${err.message}\n${err.stack}`.includes(secret), 'token in error');
    return err;
  }
  assert.fail(`expected ${code}, but it resolved`);
}

describe('git write-back', () => {
  let server: GitServer; // Basic auth with TOKEN (pushes allowed for the authenticated user)
  let open: GitServer; // no auth, pushes enabled with the helper's `push` option
  let tmp: string;
  let n = 0;

  const bareGit = (s: GitServer, name: string, args: string[]): string =>
    execFileSync('git', args, {
      cwd: path.join(s.root, `${name}.git`),
      env: isolatedGitEnv(tmp),
      encoding: 'utf8',
    }).trim();
  /** A file of a commit, byte for byte. */
  const show = (s: GitServer, name: string, rev: string, file: string): string =>
    execFileSync('git', ['show', `${rev}:${file}`], {
      cwd: path.join(s.root, `${name}.git`),
      env: isolatedGitEnv(tmp),
      encoding: 'utf8',
    });
  const opts = (s: GitServer, name: string, extra: Partial<WriteBackOptions> = {}): WriteBackOptions => ({
    url: s.repoUrl(name),
    branch: 'main',
    token: s === server ? TOKEN : undefined,
    workDir: path.join(tmp, `scratch-${++n}`),
    composeFiles: ['compose.yaml'],
    updates: [{ service: 'app', image: 'registry.local/app:1.2.0' }],
    author: AUTHOR,
    timeoutMs: 30_000,
    ...extra,
  });

  before(async () => {
    server = await startGitServer({ auth: { username: 'x-access-token', password: TOKEN } });
    open = await startGitServer({ push: true });
    tmp = await mkdtemp(path.join(os.tmpdir(), 'shiparr-write-back-'));
  });
  after(async () => {
    await server.close();
    await open.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it('commits only the new image values (comments and formatting kept), with author and message', async () => {
    const first = await server.createRepo('basic', { 'compose.yaml': BASE, 'README.md': 'hi\n' });
    const o = opts(server, 'basic', {
      expectedHead: first,
      updates: [
        { service: 'app', image: 'registry.local/app:1.2.0' },
        { service: 'db', image: 'postgres:16.4-alpine' },
        { service: 'cache', image: 'redis:7.4' },
      ],
    });
    // The scratch directory may hold files of others: they stay.
    await mkdir(o.workDir, { recursive: true });
    await writeFile(path.join(o.workDir, 'keep.txt'), 'not ours');

    const r = await writeBackImages(o);
    assert.ok(r);
    assert.equal(server.head('basic', 'main'), r.commit);
    const expected = BASE.replace('registry.local/app:1.1.0', 'registry.local/app:1.2.0')
      .replace('"postgres:16.1-alpine"', '"postgres:16.4-alpine"')
      .replace("'redis:7.2'", "'redis:7.4'");
    assert.equal(show(server, 'basic', r.commit, 'compose.yaml'), expected);
    assert.equal(bareGit(server, 'basic', ['diff', '--name-only', first, r.commit]), 'compose.yaml');
    assert.equal(bareGit(server, 'basic', ['rev-parse', `${r.commit}^`]), first);
    assert.equal(
      bareGit(server, 'basic', ['log', '-1', '--format=%an <%ae>|%cn <%ce>|%s', r.commit]),
      'Shiparr Bot <bot@shiparr.invalid>|Shiparr Bot <bot@shiparr.invalid>|' +
        'shiparr: update app to registry.local/app:1.2.0, db to postgres:16.4-alpine, cache to redis:7.4',
    );
    assert.deepEqual(await readdir(o.workDir), ['keep.txt']);

    // Same images again: nothing to commit, nothing pushed.
    assert.equal(await writeBackImages({ ...o, expectedHead: r.commit }), null);
    assert.equal(server.head('basic', 'main'), r.commit);
  });

  it('edits the last compose file that sets the image (an override wins over the base file)', async () => {
    const base = 'services:\n  app:\n    image: app:1 # base\n  worker:\n    image: worker:1\n';
    const override = '# local override\nservices:\n  app:\n    image: app:1-debug\n  worker:\n    environment: [A=1]\n';
    const first = await open.createRepo('override', { 'compose.yaml': base, 'deploy/override.yaml': override });
    const r = await writeBackImages(
      opts(open, 'override', {
        composeFiles: ['compose.yaml', 'deploy/override.yaml'],
        updates: [
          { service: 'app', image: 'app:2-debug' },
          { service: 'worker', image: 'worker:2' },
        ],
        message: 'deps: bump app and worker',
      }),
    );
    assert.ok(r);
    assert.equal(show(open, 'override', r.commit, 'compose.yaml'), base.replace('worker:1', 'worker:2'));
    assert.equal(
      show(open, 'override', r.commit, 'deploy/override.yaml'),
      override.replace('app:1-debug', 'app:2-debug'),
    );
    assert.equal(bareGit(open, 'override', ['log', '-1', '--format=%s', r.commit]), 'deps: bump app and worker');
    assert.equal(bareGit(open, 'override', ['rev-parse', `${r.commit}^`]), first);
  });

  it('keeps CRLF line endings and flow mappings; refuses anchored and aliased images', async () => {
    const compose =
      'services:\r\n  app: {image: app:1, ports: ["1:1"]}   # flow\r\n' +
      '  base:\r\n    image: &img base:1\r\n  other:\r\n    image: *img\r\n';
    await open.createRepo('shapes', { 'compose.yaml': compose });
    const r = await writeBackImages(opts(open, 'shapes', { updates: [{ service: 'app', image: 'app:2' }] }));
    assert.ok(r);
    assert.equal(show(open, 'shapes', r.commit, 'compose.yaml'), compose.replace('image: app:1', 'image: app:2'));
    await expectGitError(
      writeBackImages(opts(open, 'shapes', { updates: [{ service: 'base', image: 'base:2' }] })),
      'GIT_WRITE_BACK_REFUSED',
      /services\.base\.image has an anchor \(&img\)/,
    );
    await expectGitError(
      writeBackImages(opts(open, 'shapes', { updates: [{ service: 'other', image: 'base:2' }] })),
      'GIT_WRITE_BACK_REFUSED',
      /services\.other\.image is a YAML alias/,
    );
    assert.equal(open.head('shapes', 'main'), r.commit);
  });

  it('rebases on a commit pushed meanwhile when the compose files are unchanged (client-side rejection)', async () => {
    await server.createRepo('race-ok', { 'compose.yaml': BASE });
    let other: string | undefined;
    server.setBeforeRequest(async (req) => {
      // The push starts with the receive-pack discovery: another commit lands right before it.
      if (other === undefined && req.query === 'service=git-receive-pack') {
        other = await server.commit('race-ok', { 'notes/concurrent.md': 'concurrent\n' });
      }
    });
    try {
      const r = await writeBackImages(opts(server, 'race-ok'));
      assert.ok(r && other);
      assert.equal(server.head('race-ok', 'main'), r.commit);
      assert.equal(bareGit(server, 'race-ok', ['rev-parse', `${r.commit}^`]), other);
      assert.equal(show(server, 'race-ok', r.commit, 'notes/concurrent.md'), 'concurrent\n');
      assert.match(show(server, 'race-ok', r.commit, 'compose.yaml'), /image: registry\.local\/app:1\.2\.0 {3}#/);
    } finally {
      server.setBeforeRequest(null);
    }
  });

  it('rebases when the server itself rejects the update (the branch moved during the push)', async () => {
    await server.createRepo('race-server', { 'compose.yaml': BASE });
    let other: string | undefined;
    server.setBeforeRequest(async (req) => {
      // After discovery, before receive-pack reads the update: the server sees a stale old-oid.
      if (other === undefined && req.method === 'POST' && req.path.endsWith('/git-receive-pack')) {
        other = await server.commit('race-server', { 'other.txt': 'x' });
      }
    });
    try {
      const r = await writeBackImages(opts(server, 'race-server'));
      assert.ok(r && other);
      assert.equal(bareGit(server, 'race-server', ['rev-parse', `${r.commit}^`]), other);
      assert.equal(server.head('race-server', 'main'), r.commit);
    } finally {
      server.setBeforeRequest(null);
    }
  });

  it('refuses with GIT_WRITE_BACK_CONFLICT when a concurrent commit changed the compose file', async () => {
    await server.createRepo('race-conflict', { 'compose.yaml': BASE });
    let other: string | undefined;
    server.setBeforeRequest(async (req) => {
      if (other === undefined && req.query === 'service=git-receive-pack') {
        other = await server.commit('race-conflict', { 'compose.yaml': BASE.replace('1.1.0', '1.1.5') });
      }
    });
    try {
      await expectGitError(
        writeBackImages(opts(server, 'race-conflict')),
        'GIT_WRITE_BACK_CONFLICT',
        /compose files changed/,
      );
      assert.ok(other);
      assert.equal(server.head('race-conflict', 'main'), other);
    } finally {
      server.setBeforeRequest(null);
    }
  });

  it('refuses when the branch head is not the expected (deployed) commit', async () => {
    const first = await server.createRepo('stale', { 'compose.yaml': BASE });
    const moved = await server.commit('stale', { 'x.txt': 'x' });
    await expectGitError(
      writeBackImages(opts(server, 'stale', { expectedHead: first })),
      'GIT_WRITE_BACK_CONFLICT',
      new RegExp(`is at ${moved.slice(0, 7)}, not at the deployed commit ${first.slice(0, 7)}`),
    );
    assert.equal(server.head('stale', 'main'), moved);
  });

  it('a wrong token is GIT_AUTH_FAILED, without the token in the message', async () => {
    await server.createRepo('auth', { 'compose.yaml': BASE });
    const head = server.head('auth', 'main');
    await expectGitError(writeBackImages(opts(server, 'auth', { token: WRONG })), 'GIT_AUTH_FAILED');
    await expectGitError(
      writeBackImages(
        opts(server, 'auth', { token: undefined, url: server.repoUrl('auth').replace('//', `//u:${WRONG}@`) }),
      ),
      'GIT_AUTH_FAILED',
    );
    assert.equal(server.head('auth', 'main'), head);
  });

  it('times out with GIT_TIMEOUT (transient) and leaves the scratch directory empty', async () => {
    await open.createRepo('slow', { 'compose.yaml': BASE });
    const o = opts(open, 'slow', { timeoutMs: 1_000 });
    open.setLatency(5_000);
    try {
      const err = await expectGitError(writeBackImages(o), 'GIT_TIMEOUT', /git write-back timed out after 1000 ms/);
      assert.equal(err.transient, true);
      assert.deepEqual(await readdir(o.workDir), []);
    } finally {
      open.setLatency(0);
    }
  });

  it('refuses an image that uses ${VAR} interpolation, and a service no file gives an image', async () => {
    const compose = 'services:\n  app:\n    image: app:${TAG:-1}\n  builder:\n    build: .\n';
    await open.createRepo('interp', { 'compose.yaml': compose });
    const head = open.head('interp', 'main');
    await expectGitError(
      writeBackImages(opts(open, 'interp', { updates: [{ service: 'app', image: 'app:2' }] })),
      'GIT_WRITE_BACK_REFUSED',
      /^compose\.yaml: services\.app\.image uses \$\{VAR\} interpolation \("app:\$\{TAG:-1\}"\)/,
    );
    await expectGitError(
      writeBackImages(opts(open, 'interp', { updates: [{ service: 'builder', image: 'b:2' }] })),
      'GIT_WRITE_BACK_REFUSED',
      /no compose file sets services\.builder\.image/,
    );
    await expectGitError(
      writeBackImages(opts(open, 'interp', { composeFiles: ['compose.yaml', 'missing.yaml'] })),
      'GIT_WRITE_BACK_REFUSED',
      /compose file missing\.yaml is not on branch "main"/,
    );
    await expectGitError(
      writeBackImages(opts(open, 'interp', { updates: [{ service: 'app', image: 'app:2\n  evil: 1' }] })),
      'GIT_INVALID_INPUT',
    );
    await expectGitError(writeBackImages(opts(open, 'interp', { branch: 'nope' })), 'GIT_BRANCH_NOT_FOUND');
    assert.equal(open.head('interp', 'main'), head);
  });
});
