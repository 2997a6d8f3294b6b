/**
 * @module End to end: the image watch with the real daemon, a real git server, the real Docker engine and real
 * registries (Debian's docker-registry on 127.0.0.1). Image X is pushed as `app:latest` and `note:latest` and
 * deployed; then a different image Y is pushed under both tags. With `image_updates: auto` the project is redeployed
 * (a deployment with trigger image-update whose reason names the service and old → new digest) and the container now
 * runs Y; with `notify` exactly one notification arrives and nothing is deployed, also after more check rounds and a
 * daemon restart. The registry's access log shows only HEAD for manifests from Shiparr's checks (its user agent);
 * wrong credentials (the project file's `registries`) for a registry with htpasswd auth give a check error naming the registry in the API and the
 * log, without the password, and one failure notification. Newer tags (`image_policy: {web: {semver: "^1"}}`,
 * `ver:1.0` deployed, `ver:1.1` pushed): `notify` sends exactly one notification naming 1.1; `auto` + `write_back`
 * commits `:1.1` to the compose file on the branch (a git server accepting pushes) and the daemon deploys it.
 */
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { startGitServer, type GitServer } from '../helpers/git-server.ts';
import {
  composeDown,
  docker,
  dockerAvailable,
  removeProjectContainers,
  uniqueProjectName,
  webServiceCompose,
} from '../helpers/docker.ts';
import { buildTestImage, requireRegistry, startRegistry, type RegistryServer } from '../helpers/registry.ts';
import { buildUi } from '../../scripts/build-ui.ts';
import { axeViolations, launchChromium, requireChromium, watchPage } from '../helpers/browser.ts';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon.ts';
import { registerTestSecrets, saveArtifact } from '../helpers/secret-sweep.ts';
import { until } from '../helpers/wait.ts';
import { createLogger } from '../../src/logger.ts';
import type { ImageWatchEntry } from '../../src/domain/types.ts';

const AUTO = 'imgwatch/auto';
const NOTIFY = 'imgwatch/notify';
const BADAUTH = 'imgwatch/badauth';
const TAGNOTE = 'imgwatch/tagnote';
const TAGAUTO = 'imgwatch/tagauto';
const GOOD_PASSWORD = 'Registry-Good-Pass-7c1e';
const WRONG_PASSWORD = 'Registry-Wrong-Pass-93ab';
const FINISHED = new Set(['success', 'failed', 'rolled_back', 'interrupted', 'skipped']);

interface ImagesAnswer {
  mode: string;
  services: (Omit<ImageWatchEntry, 'notifiedDigest' | 'notifiedError' | 'deployedDigest' | 'notifiedTag'> & {
    errorCode: string;
  })[];
}

describe('image updates end to end', { concurrency: false }, () => {
  let git: GitServer;
  let daemon: TestDaemon | undefined;
  let reg: RegistryServer | undefined;
  let authReg: RegistryServer | undefined;
  let hooks: Server;
  let root = '';
  let ready = false;
  const projects: string[] = [];
  const cleanups: (() => Promise<unknown>)[] = [];
  const captured: string[] = [];
  const hookRequests: { url: string; body: string }[] = [];
  let imageX = '';
  let imageY = '';
  let digestX = '';
  let projectYaml = '';

  const startDaemon = async () => {
    const log = createLogger({
      level: 'debug',
      destination: new Writable({
        write(chunk: Buffer, _enc, cb) {
          captured.push(chunk.toString());
          cb();
        },
      }),
    });
    daemon = await startTestDaemon({
      projects: { 'imgwatch.yaml': projectYaml },
      dirs: { configDir: path.join(root, 'config'), dataDir: path.join(root, 'data') },
      daemon: { log },
    });
  };
  const images = async (key: string): Promise<ImagesAnswer> => {
    const id = daemon!.supervisor.get(key)!.id;
    const r = await fetch(`${daemon!.url}/api/repositories/${id}/images`);
    assert.equal(r.status, 200);
    return (await r.json()) as ImagesAnswer;
  };
  const rows = (key: string) => daemon!.store.listDeployments(key, { limit: 100 }).items;
  /** Image watch notices received at `what` (the same URLs also get the deploy notifications). */
  const notified = (what: string) =>
    hookRequests.filter((r) => r.url === what && /image update available|image check failed/.test(r.body));
  /** Resolves once `n` more checks of `key` have been stored (each check stamps checkedAt). */
  const rounds = async (key: string, n: number) => {
    let seen = daemon!.store.listImageWatch(key)[0]?.checkedAt ?? '';
    for (let i = 0; i < n; i++) {
      await until(
        () => {
          const at = daemon!.store.listImageWatch(key)[0]?.checkedAt ?? '';
          return at > seen ? at : null;
        },
        `image check round ${i + 1} of ${key}`,
        120_000,
        50,
      ).then((at) => (seen = at));
    }
  };
  const runningImage = async (project: string): Promise<string> => {
    const ps = await docker(['ps', '-q', '--filter', `label=com.docker.compose.project=${project}`]);
    const id = ps.stdout.trim().split('\n')[0] ?? '';
    return id ? (await docker(['inspect', '-f', '{{.Image}}', id])).stdout.trim() : '';
  };
  const imageId = async (ref: string) => (await docker(['image', 'inspect', '-f', '{{.Id}}', ref])).stdout.trim();
  /** A compose file running `image` from a registry (so no `pull_policy: never`). */
  const composeOf = (image: string, marker: string) =>
    webServiceCompose({ image, healthy: true, marker }).replace('    pull_policy: never\n', '');

  before(async () => {
    git = await startGitServer({ push: true });
    hooks = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        hookRequests.push({ url: req.url ?? '', body });
        res.end('{}');
      });
    });
    await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', r));
    if (!(await dockerAvailable())) return;
    try {
      reg = await startRegistry();
      authReg = await startRegistry({ auth: { username: 'shiparr', password: GOOD_PASSWORD } });
    } catch {
      // requireRegistry names what is missing in each test.
      return;
    }
    registerTestSecrets('registry passwords', [GOOD_PASSWORD, WRONG_PASSWORD]);
    const cleanup = (fn: () => Promise<unknown>) => void cleanups.push(fn);
    imageX = await buildTestImage('imgwatch-x', cleanup);
    imageY = await buildTestImage('imgwatch-y', cleanup);
    digestX = await reg.push(imageX, 'app:latest');
    assert.equal(await reg.push(imageX, 'note:latest'), digestX);
    await authReg.push(imageX, 'secure:latest');
    await reg.push(imageX, 'ver:1.0');
    await reg.push(imageX, 'vauto:1.0');

    root = await mkdtemp(path.join(os.tmpdir(), 'shiparr-imgwatch-'));
    const names = {
      auto: 'imgw-auto',
      notify: 'imgw-notify',
      badauth: 'imgw-bad',
      tagnote: 'imgw-tagnote',
      tagauto: 'imgw-tagauto',
    };
    const p = Object.fromEntries(Object.entries(names).map(([k, v]) => [k, uniqueProjectName(v)]));
    projects.push(...Object.values(p));
    await git.createRepo('auto', { 'compose.yaml': composeOf(`${reg.host}/app:latest`, 'auto') });
    await git.createRepo('notify', { 'compose.yaml': composeOf(`${reg.host}/note:latest`, 'notify') });
    await git.createRepo('badauth', { 'compose.yaml': composeOf(`${authReg.host}/secure:latest`, 'bad') });
    await git.createRepo('tagnote', { 'compose.yaml': composeOf(`${reg.host}/ver:1.0`, 'tagnote') });
    await git.createRepo('tagauto', { 'compose.yaml': composeOf(`${reg.host}/vauto:1.0`, 'tagauto') });
    const hookPort = (hooks.address() as AddressInfo).port;
    const repo = (name: string, mode: string, extra = '') => `  ${name}:
    url: ${git.repoUrl(name)}
    check_interval: 3600
    compose_project: ${p[name]}
    healthcheck: { timeout: 30 }
    timeouts: { apply: 120 }
    image_updates: ${mode}
    image_check_interval: 2
${extra}`;
    // A wrong password for the registry with auth (the project's registry credentials).
    projectYaml = `project: imgwatch
registries:
  "${authReg.host}": { username: shiparr, password: ${WRONG_PASSWORD} }
repositories:
${repo('auto', 'auto')}${repo(
      'notify',
      'notify',
      `    notifications:
      success: [generic+http://127.0.0.1:${hookPort}/notify]
`,
    )}${repo(
      'badauth',
      'notify',
      `    notifications:
      failure: [generic+http://127.0.0.1:${hookPort}/bad]
`,
    )}${repo(
      'tagnote',
      'notify',
      `    image_policy: { web: { semver: "^1" } }
    notifications:
      success: [generic+http://127.0.0.1:${hookPort}/tagnote]
`,
    )}${repo(
      'tagauto',
      'auto',
      `    image_policy: { web: { semver: "^1" } }
    write_back: true
`,
    )}`;
    await startDaemon();
    ready = true;
  });

  after(async () => {
    await daemon?.dispose().catch(() => undefined);
    saveArtifact('image-updates-e2e.log', captured.join(''));
    for (const p of projects) {
      await composeDown(p).catch(() => undefined);
      await removeProjectContainers(p).catch(() => undefined);
    }
    await reg?.stop().catch(() => undefined);
    await authReg?.stop().catch(() => undefined);
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    if (root) await rm(root, { recursive: true, force: true });
    await git?.close();
    await new Promise<void>((r) => hooks.close(() => r()));
  });

  test('deployed from the registry: every watched service is up to date', async (t) => {
    if (!(await requireRegistry(t))) return;
    assert.ok(ready, 'setup finished');
    for (const key of [AUTO, NOTIFY])
      await until(() => rows(key).find((d) => d.status === 'success'), `the first deployment of ${key}`, 420_000);
    await until(async () => (await images(AUTO)).services[0]?.status === 'up-to-date', 'auto: up to date', 120_000);
    const a = await images(AUTO);
    assert.equal(a.mode, 'auto');
    assert.equal(a.services[0]?.service, 'web');
    assert.equal(a.services[0]?.localDigest, digestX);
    assert.equal(a.services[0]?.remoteDigest, digestX);
    await until(async () => (await images(NOTIFY)).services[0]?.status === 'up-to-date', 'notify: up to date', 120_000);
    assert.equal(notified('/notify').length, 0, 'nothing to notify yet');
  });

  test('a moved tag: auto redeploys with the new image, notify sends one notification and deploys nothing', async (t) => {
    if (!(await requireRegistry(t))) return;
    assert.ok(ready, 'setup finished');
    const idX = await imageId(imageX);
    const idY = await imageId(imageY);
    assert.notEqual(idX, idY);
    assert.equal(await runningImage(projects[0]!), idX, 'auto runs X');
    const notifyDeployments = rows(NOTIFY).length;
    reg!.clearRequests();
    const digestY = await reg!.push(imageY, 'app:latest');
    assert.equal(await reg!.push(imageY, 'note:latest'), digestY);
    assert.notEqual(digestY, digestX);

    const d = await until(
      () => rows(AUTO).find((r) => r.trigger === 'image-update' && FINISHED.has(r.status)),
      'the image-update deployment of auto',
      300_000,
    );
    assert.equal(d.status, 'success', daemon!.store.getDeploymentLogs(d.id));
    assert.equal(d.reason?.kind, 'image-update');
    assert.deepEqual(d.reason?.kind === 'image-update' ? d.reason.services : null, [
      { service: 'web', from: digestX, to: digestY },
    ]);
    assert.match(d.reason?.summary ?? '', new RegExp(`web ${digestX.slice(0, 19)} → ${digestY.slice(0, 19)}`));
    assert.equal(d.commit, rows(AUTO).find((r) => r.trigger !== 'image-update')?.commit, 'the deployed commit again');
    assert.match(daemon!.store.getDeploymentLogs(d.id) ?? '', /image update: pulling web/);
    assert.equal(await runningImage(projects[0]!), idY, 'the container now runs Y');
    await until(
      async () => (await images(AUTO)).services[0]?.status === 'up-to-date',
      'auto: up to date again',
      120_000,
    );

    await until(() => notified('/notify').length >= 1, 'the notify repository notification', 120_000);
    // More rounds, then the same: exactly one notification, no deployment.
    await rounds(NOTIFY, 3);
    assert.equal(notified('/notify').length, 1);
    const body = notified('/notify')[0]!.body;
    assert.match(body, /image update available \(web\)/);
    assert.match(body, new RegExp(`${digestX.slice(0, 19)} → ${digestY.slice(0, 19)}`));
    assert.equal(rows(NOTIFY).length, notifyDeployments, 'notify deploys nothing');
    const n = await images(NOTIFY);
    assert.equal(n.services[0]?.status, 'update-available');
    assert.equal(n.services[0]?.remoteDigest, digestY);
    assert.equal(n.services[0]?.localDigest, digestX);

    // The registry saw only HEAD for manifests from Shiparr (user agent `shiparr`); the pulls are docker's.
    const manifests = reg!.requests().filter((r) => r.path.includes('/manifests/'));
    const ours = manifests.filter((r) => r.userAgent.startsWith('shiparr'));
    assert.ok(ours.length >= 3, `Shiparr's checks reached the registry (${ours.length})`);
    assert.deepEqual([...new Set(ours.map((r) => r.method))], ['HEAD']);
    assert.ok(
      manifests.some((r) => !r.userAgent.startsWith('shiparr') && r.method === 'GET'),
      'the pull by compose is a GET by docker',
    );
  });

  test('the repository page shows the watch: update available with both digests; Check images checks again', async (t) => {
    if (!(await requireRegistry(t))) return;
    assert.ok(ready, 'setup finished');
    const exe = await requireChromium(t);
    if (!exe) return;
    const before = await images(NOTIFY);
    assert.equal(before.services[0]?.status, 'update-available');
    await buildUi();
    const browser = await launchChromium(exe);
    try {
      const p = await browser.newPage();
      const problems = watchPage(p);
      await p.goto(`${daemon!.url}/#/repo/${daemon!.supervisor.get(NOTIFY)!.id}`);
      await p.getByRole('heading', { level: 2, name: 'Images' }).waitFor({ timeout: 30_000 });
      const row = p.locator('tr[data-service="web"][data-status="update-available"]');
      await row.waitFor();
      const text = await row.innerText();
      assert.ok(text.includes(before.services[0]!.localDigest!.slice(0, 19)), text);
      assert.ok(text.includes(before.services[0]!.remoteDigest!.slice(0, 19)), text);
      assert.match(await p.locator('#images-title + p').innerText(), /Image updates: notify/);
      await p.getByRole('button', { name: 'Check images' }).click();
      await p.getByRole('status').getByText('Checked.').waitFor({ timeout: 60_000 });
      const after = await images(NOTIFY);
      assert.ok(
        Date.parse(after.services[0]!.checkedAt!) > Date.parse(before.services[0]!.checkedAt!),
        'the button made a new check',
      );
      assert.deepEqual(await axeViolations(p), []);
      // A repository whose tag names what runs.
      await p.goto(`${daemon!.url}/#/repo/${daemon!.supervisor.get(AUTO)!.id}`);
      await p.locator('tr[data-service="web"][data-status="up-to-date"]').waitFor({ timeout: 30_000 });
      assert.deepEqual(problems.csp, []);
      assert.deepEqual(problems.errors, []);
    } finally {
      await browser.close();
    }
  });

  test('after a restart nothing is notified again', async (t) => {
    if (!(await requireRegistry(t))) return;
    assert.ok(ready, 'setup finished');
    const before = notified('/notify').length;
    const deploymentsBefore = rows(AUTO).length;
    await daemon!.close();
    daemon = undefined;
    await startDaemon();
    await rounds(NOTIFY, 2);
    await rounds(AUTO, 2);
    assert.equal(notified('/notify').length, before, 'no notification again after the restart');
    assert.equal(rows(AUTO).filter((r) => r.trigger === 'image-update').length, 1, 'no second image-update deploy');
    assert.equal(rows(AUTO).length, deploymentsBefore);
  });

  test('a newer tag: notify sends one notification naming it; auto + write_back commits it and deploys it', async (t) => {
    if (!(await requireRegistry(t))) return;
    assert.ok(ready, 'setup finished');
    for (const key of [TAGNOTE, TAGAUTO])
      await until(() => rows(key).find((d) => d.status === 'success'), `the first deployment of ${key}`, 420_000);
    for (const key of [TAGNOTE, TAGAUTO]) await rounds(key, 1);
    const tagNotices = () => hookRequests.filter((r) => r.url === '/tagnote' && /newer image tag/.test(r.body));
    assert.equal(tagNotices().length, 0, 'no newer tag yet');
    const firstCommit = git.head('tagauto', 'main');
    await reg!.push(imageY, 'ver:1.1');
    await reg!.push(imageY, 'vauto:1.1');
    await reg!.push(imageY, 'ver:2.0');

    await until(() => tagNotices().length >= 1, 'the newer-tag notification', 120_000);
    await rounds(TAGNOTE, 2);
    assert.equal(tagNotices().length, 1, 'exactly one notification, not one per round');
    assert.match(tagNotices()[0]!.body, /newer image tag 1\.1 \(web\)/);
    assert.match(tagNotices()[0]!.body, /Newer tag: 1\.1/);
    const n = await images(TAGNOTE);
    assert.equal(n.services[0]?.newerTag, '1.1', 'GET …/images shows it');
    assert.equal(rows(TAGNOTE).length, 1, 'notify deploys nothing');

    const pushed = await until(
      () => {
        const head = git.head('tagauto', 'main');
        return head !== firstCommit ? head : null;
      },
      'the write-back commit',
      120_000,
    );
    const compose = execFileSync(
      'git',
      ['--git-dir', path.join(git.root, 'tagauto.git'), 'show', `${pushed}:compose.yaml`],
      {
        encoding: 'utf8',
      },
    );
    assert.ok(compose.includes(`${reg!.host}/vauto:1.1`), compose);
    const d = await until(
      () => rows(TAGAUTO).find((r) => r.commit === pushed && FINISHED.has(r.status)),
      'the deployment of the write-back commit',
      300_000,
    );
    assert.equal(d.status, 'success', daemon!.store.getDeploymentLogs(d.id));
    assert.equal(await runningImage(projects[4]!), await imageId(imageY), 'the container runs the 1.1 image');
    await rounds(TAGAUTO, 2);
    assert.equal(git.head('tagauto', 'main'), pushed, 'written back once');
  });

  test('wrong registry credentials: the check error names the registry, never the password, and is notified once', async (t) => {
    if (!(await requireRegistry(t))) return;
    assert.ok(ready, 'setup finished');
    await until(
      async () => (await images(BADAUTH)).services[0]?.status === 'error',
      'the badauth check error',
      120_000,
    );
    await rounds(BADAUTH, 2);
    const [e] = (await images(BADAUTH)).services;
    assert.equal(e?.errorCode, 'REGISTRY_AUTH');
    assert.ok(e?.reason?.includes(authReg!.host), `the error names the registry: ${e?.reason}`);
    const logLines = captured
      .join('')
      .split('\n')
      .filter((l) => l.includes('image check failed'));
    assert.ok(
      logLines.some((l) => l.includes(authReg!.host)),
      'a log line names the registry',
    );
    const everything = `${captured.join('')}${JSON.stringify(await images(BADAUTH))}`;
    assert.ok(!everything.includes(WRONG_PASSWORD) && !everything.includes(GOOD_PASSWORD), 'no password anywhere');
    assert.equal(notified('/bad').length, 1, 'one failure notification for the error, not one per round');
    assert.match(notified('/bad')[0]!.body, new RegExp(`registry ${authReg!.host.replace(/\./g, '\\.')}`));
    assert.equal(rows(BADAUTH).filter((r) => r.trigger === 'image-update').length, 0);
  });
});
