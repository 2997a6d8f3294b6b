/**
 * @module The image watch's pure parts and its scheduling: which services are checked (pinned, built, tag policy),
 * one registry HEAD per repository+tag, notify once per new digest (also across a restart: a real SQLite file), auto
 * deploys once per digest, errors notified once per distinct error, the per-registry back-off, timers that follow
 * config reloads and skip suspended repositories (an injected clock), the image-update reason and rollback rules,
 * and the HTTP routes over the real app.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Store } from '../../src/store/index.ts';
import {
  ImageWatch,
  decideRound,
  nextCheckDelayMs,
  planChecks,
  type ImageRef,
  type ImageRegistry,
  type ObservedService,
  type WatchClock,
  type WatchedRepo,
} from '../../src/daemon/image-watch.ts';
import type { ImageNotice } from '../../src/notify/index.ts';
import { formatImageNotice } from '../../src/notify/image-notice.ts';
import type { ImageUpdateChange } from '../../src/machines/reasons.ts';
import { openingReason } from '../../src/machines/reasons.ts';
import { canRollback, conclude } from '../../src/machines/deploy-rules.ts';
import type { DeployContext, Run } from '../../src/machines/types.ts';
import { repoConfig } from '../helpers/repo-config.ts';
import { project, tempDb } from './store/helpers.ts';
import { serve } from './http/fakes.ts';
import { until } from '../helpers/wait.ts';

const D1 = `sha256:${'1'.repeat(64)}`;
const D2 = `sha256:${'2'.repeat(64)}`;
const D3 = `sha256:${'3'.repeat(64)}`;
const REG = '127.0.0.1:5000';

/** A small parser for `host:port/path[:tag][@digest]` (the real one is src/registry's parseImageRef). */
function parse(image: string): ImageRef {
  const [name = '', digest = null] = image.split('@');
  const slash = name.indexOf('/');
  if (slash < 0 || !name.slice(0, slash).includes(':')) throw new Error(`bad reference "${image}"`);
  const rest = name.slice(slash + 1);
  const colon = rest.lastIndexOf(':');
  return {
    registry: name.slice(0, slash),
    repository: colon > 0 ? rest.slice(0, colon) : rest,
    tag: colon > 0 ? rest.slice(colon + 1) : digest ? null : 'latest',
    digest,
  };
}

/** A manual clock: timers fire when `advance` passes their time. */
function manualClock(): WatchClock & { advance(ms: number): Promise<void>; pending(): number[] } {
  let now = Date.parse('2026-01-01T00:00:00Z');
  let seq = 0;
  const timers = new Map<number, { at: number; fn: () => void }>();
  return {
    now: () => now,
    setTimeout: (fn, ms) => {
      timers.set(++seq, { at: now + ms, fn });
      return seq;
    },
    clearTimeout: (h) => void timers.delete(h as number),
    pending: () => [...timers.values()].map((t) => t.at - now).sort((a, b) => a - b),
    async advance(ms) {
      const end = now + ms;
      for (;;) {
        const due = [...timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].fn();
        // Let the check the timer started run to its end (its awaits are microtasks and resolved promises).
        for (let i = 0; i < 50; i++) await new Promise((r) => setImmediate(r));
      }
      now = end;
    },
  };
}

test('nextCheckDelayMs: the interval ±10 %, counted from the last check; a first check comes within 30 s', () => {
  const now = 1_000_000;
  assert.equal(nextCheckDelayMs(100, 0, now, now), 90_000);
  assert.equal(nextCheckDelayMs(100, 0.5, now, now), 100_000);
  assert.equal(nextCheckDelayMs(100, 0.9999999, now, now), 110_000);
  // 60 s ago with a 100 s interval: 40 s left; long ago: at once.
  assert.equal(nextCheckDelayMs(100, 0.5, now - 60_000, now), 40_000);
  assert.equal(nextCheckDelayMs(100, 0.5, now - 600_000, now), 0);
  // Never checked: a share of min(interval, 30 s).
  assert.equal(nextCheckDelayMs(21_600, 0.5, null, now), 15_000);
  assert.equal(nextCheckDelayMs(2, 0.5, null, now), 1_000);
});

test('planChecks: pinned digests, images without a digest from their registry and tags outside a policy are skipped', () => {
  const observed: ObservedService[] = [
    { service: 'app', image: `${REG}/app:latest`, repoDigests: [`${REG}/app@${D1}`] },
    { service: 'worker', image: `${REG}/app:latest`, repoDigests: [`other.example:443/app@${D2}`, `${REG}/app@${D1}`] },
    { service: 'pinned', image: `${REG}/app@${D1}`, repoDigests: [`${REG}/app@${D1}`] },
    { service: 'built', image: `${REG}/local:dev`, repoDigests: [] },
    { service: 'db', image: `${REG}/postgres:15`, repoDigests: [`${REG}/postgres@${D3}`] },
    { service: 'cache', image: `${REG}/redis:7.2`, repoDigests: [`${REG}/redis@${D3}`] },
    { service: 'odd', image: 'not a ref', repoDigests: [] },
  ];
  const plans = planChecks(observed, parse, {
    db: { semver: '^16' },
    cache: { semver: '>=7', tagRegex: '^7\\.\\d+$' },
  });
  const by = new Map(plans.map((p) => [p.service, p]));
  const app = by.get('app');
  assert.ok(app && !('skip' in app));
  assert.equal(app.localDigest, D1);
  assert.equal(app.group, `${REG}/app:latest`);
  const worker = by.get('worker');
  assert.ok(worker && !('skip' in worker));
  assert.equal(worker.localDigest, D1, 'the digest of the same registry repository, not the first one');
  assert.equal(worker.group, app.group, 'two services on one tag share one check');
  assert.match((by.get('pinned') as { skip: string }).skip, /pinned by digest/);
  assert.match((by.get('built') as { skip: string }).skip, /no digest from 127\.0\.0\.1:5000\/local: built locally/);
  assert.match((by.get('db') as { skip: string }).skip, /tag 15 is outside image_policy semver "\^16"/);
  assert.ok(!('skip' in (by.get('cache') as object)), 'a tag within the policy is checked by digest');
  assert.match((by.get('odd') as { skip: string }).skip, /not a registry image reference: bad reference/);
});

test('decideRound: notify once per new digest, again for a newer one; errors once per distinct error', () => {
  const plans = planChecks(
    [
      { service: 'app', image: `${REG}/app:latest`, repoDigests: [`${REG}/app@${D1}`] },
      { service: 'worker', image: `${REG}/app:latest`, repoDigests: [`${REG}/app@${D1}`] },
    ],
    parse,
  );
  const at = '2026-01-01T00:00:00.000Z';
  const moved = new Map([[`${REG}/app:latest`, { digest: D2 }]]);
  const r1 = decideRound('notify', plans, moved, [], at, true);
  assert.equal(r1.notices.length, 1, 'services sharing the image and the digest share one notice');
  assert.deepEqual(r1.notices[0], {
    kind: 'image_update',
    mode: 'notify',
    services: ['app', 'worker'],
    image: `${REG}/app:latest`,
    from: D1,
    to: D2,
  });
  assert.deepEqual(r1.deploy, []);
  assert.ok(r1.entries.every((e) => e.status === 'update-available' && e.notifiedDigest === D2));
  const r2 = decideRound('notify', plans, moved, r1.entries, at, true);
  assert.equal(r2.notices.length, 0, 'the same digest is not notified again');
  const r3 = decideRound('notify', plans, new Map([[`${REG}/app:latest`, { digest: D3 }]]), r2.entries, at, true);
  assert.equal(r3.notices.length, 1, 'a newer digest notifies again');
  const same = decideRound('notify', plans, new Map([[`${REG}/app:latest`, { digest: D1 }]]), [], at, true);
  assert.ok(same.entries.every((e) => e.status === 'up-to-date'));
  assert.equal(same.notices.length, 0);

  const failure = {
    failure: {
      code: 'REGISTRY_AUTH',
      registry: REG,
      message: `registry ${REG}: authentication failed`,
      transient: false,
    },
  };
  const e1 = decideRound('notify', plans, new Map([[`${REG}/app:latest`, failure]]), r1.entries, at, true);
  assert.equal(e1.notices.length, 1);
  assert.equal(e1.notices[0]?.kind, 'image_check_failed');
  assert.ok(e1.entries.every((e) => e.status === 'error' && e.errorCode === 'REGISTRY_AUTH'));
  assert.ok(
    e1.entries.every((e) => e.notifiedDigest === D2),
    'what was notified before is kept',
  );
  const e2 = decideRound('notify', plans, new Map([[`${REG}/app:latest`, failure]]), e1.entries, at, true);
  assert.equal(e2.notices.length, 0, 'the same error is not notified every round');
  const ok = decideRound('notify', plans, moved, e2.entries, at, true);
  assert.equal(ok.notices.length, 0, 'after the error, the digest notified before is still not repeated');
  const e3 = decideRound('notify', plans, new Map([[`${REG}/app:latest`, failure]]), ok.entries, at, true);
  assert.equal(e3.notices.length, 1, 'an error after a good check is notified again');
});

test('decideRound: auto asks one deploy per new digest, never again for a digest that was asked for', () => {
  const plans = planChecks(
    [
      { service: 'app', image: `${REG}/app:latest`, repoDigests: [`${REG}/app@${D1}`] },
      { service: 'db', image: `${REG}/db:1`, repoDigests: [`${REG}/db@${D3}`] },
    ],
    parse,
  );
  const answers = new Map([
    [`${REG}/app:latest`, { digest: D2 }],
    [`${REG}/db:1`, { digest: D3 }],
  ]);
  const r1 = decideRound('auto', plans, answers, [], 'x', true);
  assert.deepEqual(r1.deploy, [{ service: 'app', image: `${REG}/app:latest`, from: D1, to: D2 }]);
  assert.equal(r1.notices.length, 0, 'auto does not send "update available" (the deploy notifies)');
  const asked = r1.entries.map((e) => (e.service === 'app' ? { ...e, deployedDigest: D2 } : e));
  const r2 = decideRound('auto', plans, answers, asked, 'x', true);
  assert.deepEqual(r2.deploy, [], 'a digest already asked for (its deploy failed) is not retried');
  assert.match(r2.entries.find((e) => e.service === 'app')?.reason ?? '', /waiting for a newer digest/);
  assert.equal(decideRound('auto', plans, answers, [], 'x', false).deploy.length, 0, 'nothing deployed: no deploy');
});

test('the image-update reason lists service and old → new digest; its failure rolls back to the same commit, unpinned', () => {
  const services: ImageUpdateChange[] = [{ service: 'app', from: D1, to: D2 }];
  const reason = openingReason({
    trigger: 'image-update',
    commit: 'c'.repeat(40),
    previousCommit: 'c'.repeat(40),
    cause: { imageUpdate: services },
  });
  assert.equal(reason.kind, 'image-update');
  assert.equal(reason.summary, 'image update: app sha256:111111111111 → sha256:222222222222');
  assert.deepEqual(reason.kind === 'image-update' ? reason.services : null, [{ service: 'app', from: D1, to: D2 }]);

  const commit = 'c'.repeat(40);
  const run: Run = {
    deploymentId: 5,
    trigger: 'image-update',
    forced: true,
    commit,
    previousCommit: commit,
    startedAt: 0,
    decrypted: [],
    error: null,
    rollbackError: null,
    outcome: null,
  };
  const ctx = {
    repo: repoConfig('p', 'r'),
    run,
    lastDeployedCommit: commit,
    pinnedCommit: null,
    attempt: 0,
    lastError: null,
    notice: null,
    rolledBack: false,
  } as unknown as DeployContext & { notice: null; rolledBack: boolean };
  const err = { stage: 'verifying' as const, code: 'X', message: 'unhealthy', transient: false };
  assert.equal(canRollback(ctx, err), true, 'an image update rolls back to the images of the same commit');
  assert.equal(canRollback({ ...ctx, run: { ...run, trigger: 'poll' } }, err), false, 'other runs need another commit');
  const done = conclude({ ...ctx, run: { ...run, error: err }, rolledBack: true });
  assert.equal(done.run?.outcome, 'rolled_back');
  assert.equal(done.pinnedCommit, null, 'a failed image update does not pin the deployed commit');
});

test('formatImageNotice names service, image and both short digests, or the registry of an error', () => {
  const m = formatImageNotice(
    { project: 'p', name: 'r' },
    { kind: 'image_update', mode: 'notify', services: ['app'], image: `${REG}/app:latest`, from: D1, to: D2 },
  );
  assert.equal(m.title, '🆕 p/r: image update available (app)');
  assert.match(m.body, /Image: 127\.0\.0\.1:5000\/app:latest/);
  assert.match(m.body, /Digest: sha256:111111111111 → sha256:222222222222/);
  const e = formatImageNotice(
    { project: 'p', name: 'r' },
    { kind: 'image_check_failed', registry: REG, services: ['app'], image: `${REG}/app:latest`, error: 'denied' },
  );
  assert.match(e.title, /image check failed \(registry 127\.0\.0\.1:5000\)/);
});

/** A watch over a real SQLite file, a fake engine and registry, and a manual clock. */
function rig(t: { after: (fn: () => void | Promise<void>) => void }, file?: string) {
  const tmp = file ? null : tempDb();
  const dbFile = file ?? (tmp as { file: string }).file;
  const store = Store.open(dbFile);
  store.syncConfig([project('p', ['r'])]);
  const clock = manualClock();
  const state = {
    repo: repoConfig('p', 'r', { imageWatch: { mode: 'notify', interval: 100, policy: {}, writeBack: false } }),
    suspended: false,
    deployedCommit: 'c'.repeat(40) as string | null,
    local: D1,
    remote: D2,
    headError: null as null | Error,
    image: `${REG}/app:latest`,
    tags: ['latest'] as string[],
    writeBackError: null as null | Error,
  };
  const heads: ImageRef[] = [];
  const notices: ImageNotice[] = [];
  const deploys: { key: string; changes: ImageUpdateChange[] }[] = [];
  const tagLists: ImageRef[] = [];
  const writeBacks: { key: string; commit: string; updates: { service: string; image: string }[] }[] = [];
  const registry: ImageRegistry = {
    tags: async (ref) => {
      tagLists.push(ref);
      return state.tags;
    },
    parse,
    head: async (ref) => {
      heads.push(ref);
      if (state.headError) throw state.headError;
      return { digest: state.remote };
    },
  };
  const watch = new ImageWatch({
    repos: (): WatchedRepo[] => [
      { repo: state.repo, suspended: state.suspended, deployedCommit: state.deployedCommit },
    ],
    observe: async () => [
      { service: 'app', image: state.image, repoDigests: [`${REG}/app@${state.local}`] },
      { service: 'worker', image: state.image, repoDigests: [`${REG}/app@${state.local}`] },
    ],
    registry,
    writeBack: async (repo, commit, updates) => {
      writeBacks.push({ key: repo.key, commit, updates: [...updates] });
      if (state.writeBackError) throw state.writeBackError;
      return { commit: 'f'.repeat(40) };
    },
    store,
    notify: async (_repo, n) => void notices.push(n),
    deploy: (key, changes) => {
      deploys.push({ key, changes });
      return { deploymentId: 42 };
    },
    log: pino({ level: 'silent' }),
    clock,
    random: () => 0.5,
  });
  t.after(async () => {
    await watch.stop();
    store.close();
    tmp?.cleanup();
  });
  return { store, clock, state, heads, notices, deploys, watch, dbFile, tagLists, writeBacks };
}

test('the watch: timers per repository, one HEAD per tag, one notice per digest, none after a restart', async (t) => {
  const tmp = tempDb();
  t.after(() => tmp.cleanup());
  const a = rig(t, tmp.file);
  a.watch.sync();
  assert.deepEqual(a.clock.pending(), [15_000], 'never checked: the first check within 30 s');
  await a.clock.advance(15_000);
  assert.equal(a.heads.length, 1, 'two services on one tag: one HEAD');
  assert.equal(a.notices.length, 1);
  assert.deepEqual(
    a.store.listImageWatch('p/r').map((e) => [e.service, e.status, e.localDigest, e.remoteDigest]),
    [
      ['app', 'update-available', D1, D2],
      ['worker', 'update-available', D1, D2],
    ],
  );
  assert.deepEqual(a.clock.pending(), [100_000], 'the next check one (jittered) interval later');
  await a.clock.advance(100_000);
  assert.equal(a.heads.length, 2);
  assert.equal(a.notices.length, 1, 'the same digest is not notified again');

  // Suspended: the timer fires but nothing is checked.
  a.state.suspended = true;
  await a.clock.advance(100_000);
  assert.equal(a.heads.length, 2);
  assert.equal(a.watch.checkNow('p/r').result, 'suspended');
  a.state.suspended = false;

  // A config reload with another interval re-times the watch; with image_updates off it stops.
  a.state.repo = { ...a.state.repo, imageWatch: { mode: 'notify', interval: 500, policy: {}, writeBack: false } };
  a.watch.sync();
  assert.equal(a.clock.pending().length, 1);
  assert.ok((a.clock.pending()[0] ?? 0) <= 500_000);
  const { imageWatch: _off, ...off } = a.state.repo;
  a.state.repo = off;
  a.watch.sync();
  assert.deepEqual(a.clock.pending(), []);
  assert.equal(a.watch.checkNow('p/r').result, 'not-watched');
  await a.watch.stop();
  a.store.close();

  // A restart (new watch, same database): the digest notified before is not notified again.
  const b = rig(t, tmp.file);
  b.watch.sync();
  const r = b.watch.checkNow('p/r');
  assert.equal(r.result, 'started');
  await r.done;
  assert.equal(b.heads.length, 1);
  assert.equal(b.notices.length, 0, 'no notice again after a restart');
  b.state.remote = D3;
  await b.watch.checkNow('p/r').done;
  assert.equal(b.notices.length, 1, 'a newer digest is notified');
});

test('the watch in auto: one deploy of the changed services; a failing registry backs off and is notified once', async (t) => {
  const a = rig(t);
  a.state.repo = { ...a.state.repo, imageWatch: { mode: 'auto', interval: 100, policy: {}, writeBack: false } };
  await a.watch.checkNow('p/r').done;
  assert.deepEqual(a.deploys, [
    {
      key: 'p/r',
      changes: [
        { service: 'app', image: `${REG}/app:latest`, from: D1, to: D2 },
        { service: 'worker', image: `${REG}/app:latest`, from: D1, to: D2 },
      ],
    },
  ]);
  assert.match(a.store.listImageWatch('p/r')[0]?.reason ?? '', /deployment 42/);
  await a.watch.checkNow('p/r').done;
  assert.equal(a.deploys.length, 1, 'not asked again while the same digest is pending or failed');
  a.state.local = D2;
  await a.watch.checkNow('p/r').done;
  assert.ok(a.store.listImageWatch('p/r').every((e) => e.status === 'up-to-date'));

  // Rate limited: the registry is left alone for Retry-After, then asked again.
  a.state.headError = Object.assign(new Error(`registry ${REG}: 429 too many requests`), {
    code: 'REGISTRY_RATE_LIMITED',
    registry: REG,
    transient: true,
    retryAfterMs: 50_000,
  });
  const before = a.heads.length;
  await a.watch.checkNow('p/r').done;
  assert.equal(a.heads.length, before + 1);
  assert.equal(a.notices.length, 1, 'the failure is notified');
  assert.equal(a.notices[0]?.kind, 'image_check_failed');
  await a.watch.checkNow('p/r').done;
  assert.equal(a.heads.length, before + 1, 'no request during the back-off');
  await a.clock.advance(50_001);
  await a.watch.checkNow('p/r').done;
  assert.equal(a.heads.length, before + 2, 'asked again after Retry-After');
  assert.equal(a.notices.length, 1, 'the same error is not notified again');
  const [entry] = a.store.listImageWatch('p/r');
  assert.equal(entry?.status, 'error');
  assert.equal(entry?.errorCode, 'REGISTRY_RATE_LIMITED');
  assert.match(entry?.reason ?? '', /127\.0\.0\.1:5000/);
});

test('newer tags: notified once per service and tag (also after a restart), only within the policy', async (t) => {
  const tmp = tempDb();
  t.after(() => tmp.cleanup());
  const policy = { app: { semver: '^1' }, worker: { tagRegex: '^0\\.\\d+$' } };
  const a = rig(t, tmp.file);
  a.state.repo = { ...a.state.repo, imageWatch: { mode: 'notify', interval: 100, policy, writeBack: false } };
  a.state.image = `${REG}/app:1.0`;
  a.state.remote = D1;
  a.state.tags = ['latest', '0.9', '1.0', '1.1', '2.0', '1.1-alpine'];
  await a.watch.checkNow('p/r').done;
  assert.equal(a.tagLists.length, 1, 'one tag list per registry repository');
  assert.deepEqual(
    a.store.listImageWatch('p/r').map((e) => [e.service, e.newerTag, e.notifiedTag]),
    [
      ['app', '1.1', '1.1'],
      ['worker', null, null],
    ],
    'app: 1.1 (2.0 is outside ^1, 1.1-alpine another variant); worker: no newer tag matches its tag_regex',
  );
  assert.deepEqual(
    a.notices.map((n) => n.kind === 'image_newer_tag' && [n.services, n.tag, n.action]),
    [[['app'], '1.1', 'none']],
  );
  assert.match(
    formatImageNotice({ project: 'p', name: 'r' }, a.notices[0] as ImageNotice).title,
    /newer image tag 1\.1/,
  );
  await a.watch.checkNow('p/r').done;
  assert.equal(a.notices.length, 1, 'the same tag is not notified again');
  assert.deepEqual(a.writeBacks, [], 'notify mode never writes back');
  await a.watch.stop();
  a.store.close();

  const b = rig(t, tmp.file);
  b.state.repo = { ...b.state.repo, imageWatch: { mode: 'auto', interval: 100, policy, writeBack: false } };
  b.state.image = `${REG}/app:1.0`;
  b.state.remote = D1;
  b.state.tags = ['1.0', '1.1'];
  await b.watch.checkNow('p/r').done;
  assert.equal(b.notices.length, 0, 'no notice again after a restart');
  b.state.tags = ['1.0', '1.1', '1.3'];
  await b.watch.checkNow('p/r').done;
  assert.deepEqual(
    b.notices.map((n) => n.kind === 'image_newer_tag' && [n.services, n.tag]),
    [[['app'], '1.3']],
    'auto without write_back: a newer tag is notified',
  );
  assert.deepEqual(b.deploys, [], 'nothing deployed: the digest did not move');
});

test('newer tags with auto + write_back: one write-back per tag at the deployed commit; a failure is kept, not retried', async (t) => {
  const a = rig(t);
  a.state.repo = {
    ...a.state.repo,
    imageWatch: { mode: 'auto', interval: 100, policy: { app: { semver: '^1' } }, writeBack: true },
  };
  a.state.image = `${REG}/app:1.0`;
  a.state.remote = D1;
  a.state.tags = ['1.0', '1.1'];
  await a.watch.checkNow('p/r').done;
  assert.deepEqual(a.writeBacks, [
    { key: 'p/r', commit: 'c'.repeat(40), updates: [{ service: 'app', image: `${REG}/app:1.1` }] },
  ]);
  const [app] = a.store.listImageWatch('p/r');
  assert.equal(app?.notifiedTag, '1.1');
  assert.match(app?.reason ?? '', /tag 1\.1 written back \(commit ffffffffffff\)/);
  assert.equal(a.notices[0]?.kind === 'image_newer_tag' && a.notices[0].action, 'write-back');
  await a.watch.checkNow('p/r').done;
  assert.equal(a.writeBacks.length, 1, 'the same tag is not written back twice');

  a.state.tags = ['1.0', '1.1', '1.2'];
  a.state.writeBackError = Object.assign(new Error('branch "main" is at 1234567, not at the deployed commit'), {
    code: 'GIT_WRITE_BACK_CONFLICT',
  });
  await a.watch.checkNow('p/r').done;
  await a.watch.checkNow('p/r').done;
  assert.equal(a.writeBacks.length, 2, 'a failed write-back is not retried for the same tag');
  const [failed] = a.store.listImageWatch('p/r');
  assert.equal(failed?.newerTag, '1.2');
  assert.match(failed?.reason ?? '', /write-back of tag 1\.2 failed \(GIT_WRITE_BACK_CONFLICT\)/);
  assert.equal(a.notices.length, 1, 'a failed write-back sends no update notice');
});

test('GET /api/repositories/:id/images and POST …/images/check over the real app', async (t) => {
  const a = rig(t);
  const watched = 'homelab/media-stack';
  a.store.syncConfig([project('homelab', ['media-stack'])]);
  a.state.repo = repoConfig('homelab', 'media-stack', {
    imageWatch: { mode: 'notify', interval: 100, policy: {}, writeBack: false },
  });
  const s = await serve({ images: a.watch });
  t.after(() => s.close());
  const post = (path: string) => fetch(`${s.url}${path}`, { method: 'POST', headers: { 'X-Shiparr-Request': '1' } });
  const res = await post('/api/repositories/1/images/check');
  assert.equal(res.status, 202);
  assert.deepEqual(await res.json(), { accepted: true, repository: watched });
  await until(() => a.store.listImageWatch(watched).length === 2, 'the stored check', 5_000, 10);
  const got = (await (await fetch(`${s.url}/api/repositories/1/images`)).json()) as {
    mode: string;
    services: { service: string; status: string; localDigest: string; remoteDigest: string }[];
  };
  assert.equal(got.mode, 'notify');
  assert.deepEqual(
    got.services.map((x) => [x.service, x.status, x.localDigest, x.remoteDigest]),
    [
      ['app', 'update-available', D1, D2],
      ['worker', 'update-available', D1, D2],
    ],
  );
  const off = await post('/api/repositories/3/images/check');
  assert.equal(off.status, 409);
  assert.match(((await off.json()) as { error: { message: string } }).error.message, /image_updates off/);
  assert.equal((await fetch(`${s.url}/api/repositories/99/images`)).status, 404);
  const none = await serve();
  t.after(() => none.close());
  assert.equal((await fetch(`${none.url}/api/repositories/1/images`)).status, 503);
});
