/**
 * @module The daemon's commit-status wiring (src/daemon/commit-status.ts) over a real SQLite store and a fake GitHub
 * over real HTTP, driven by activity events as the supervisor emits them: a run whose commit is not known at start
 * posts `pending` once its row has it; finish lines for failed (pinned), skipped and interrupted runs; no link without
 * SHIPARR_PUBLIC_URL; a shutdown during an outage records the status as dropped.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { RepoConfig } from '../../../src/config/schema.ts';
import { startCommitStatuses } from '../../../src/daemon/commit-status.ts';
import type { ActivityEvent } from '../../../src/domain/types.ts';
import { createLogger } from '../../../src/logger.ts';
import { Store } from '../../../src/store/index.ts';
import { startFakeForge, type FakeForge } from '../../helpers/fake-forge.ts';
import { until } from '../../helpers/wait.ts';
import { project, tempDb } from '../store/helpers.ts';

const TOKEN = 'wiring-token-123456';
const SHA = 'c0ffee0123456789abcdef0123456789abcdef01';
let forge: FakeForge;
let store: Store;
let db: ReturnType<typeof tempDb>;

before(async () => {
  forge = await startFakeForge('github', { tokens: [TOKEN] });
  db = tempDb();
  store = Store.open(db.file);
  store.syncConfig([project('home', ['web'])]);
});
after(async () => {
  store.close();
  db.cleanup();
  await forge.close();
});

function setup(publicUrl?: string) {
  const listeners: ((e: ActivityEvent) => void)[] = [];
  const repo = {
    key: 'home/web',
    commitStatus: {
      provider: 'github',
      apiUrl: forge.url,
      repoPath: 'acme/web',
      token: TOKEN,
      context: 'shiparr/home/web',
    },
  } as RepoConfig;
  const statuses = startCommitStatuses({
    supervisor: {
      subscribe: (l) => {
        listeners.push(l);
        return () => listeners.splice(listeners.indexOf(l), 1);
      },
      repoConfig: (key) => (key === 'home/web' ? repo : undefined),
    },
    store,
    log: createLogger({ level: 'silent' }),
    publicUrl,
    timing: { baseDelayMs: 50, maxDelayMs: 100 },
  });
  const emit = (e: ActivityEvent) => listeners.forEach((l) => l(e));
  return { statuses, emit };
}

const at = () => new Date().toISOString();
const posted = (from: number) => forge.requests.slice(from).map((r) => r.body);

test('a run started without a commit posts pending once its row has the commit; failure names stage, code and pin', async () => {
  const { statuses, emit } = setup('https://shiparr.example');
  const from = forge.requests.length;
  const d = store.createDeployment({ repoKey: 'home/web', trigger: 'api', status: 'running' });
  emit({ type: 'deployment.started', repoKey: 'home/web', deploymentId: d.id, commit: null, trigger: 'api', at: at() });
  emit({ type: 'state', repoKey: 'home/web', repoId: 1, state: 'pulling', previous: 'idle', at: at() });
  // The pull step: its log line first, then the commit on the row (as the actor does).
  emit({ type: 'deployment.log', repoKey: 'home/web', deploymentId: d.id, stage: 'pulling', lines: ['x'], at: at() });
  store.updateDeployment(d.id, { commit: SHA });
  await until(() => forge.requests.length > from, 'the pending status');
  store.finishDeployment(d.id, { status: 'failed', stage: 'applying', error: 'applying: COMPOSE_UP_FAILED: boom' });
  store.updateRepositoryState('home/web', { pinnedCommit: SHA });
  emit({
    type: 'deployment.finished',
    repoKey: 'home/web',
    deploymentId: d.id,
    status: 'failed',
    stage: 'applying',
    commit: SHA,
    durationMs: 1000,
    at: at(),
  });
  await until(() => forge.requests.length >= from + 2, 'the failure status');
  assert.deepEqual(posted(from), [
    {
      state: 'pending',
      target_url: `https://shiparr.example/#/deployment/${d.id}`,
      description: 'deploying c0ffee0',
      context: 'shiparr/home/web',
    },
    {
      state: 'failure',
      target_url: `https://shiparr.example/#/deployment/${d.id}`,
      description: 'failed at applying (COMPOSE_UP_FAILED); pinned: not redeployed until a new commit or unpin',
      context: 'shiparr/home/web',
    },
  ]);
  assert.ok(forge.requests.slice(from).every((r) => r.path === `/repos/acme/web/statuses/${SHA}`));
  await until(() => store.getDeployment(d.id)?.commitStatuses?.every((r) => r.ok), 'both recorded delivered');
  await statuses.close(1000);
  store.updateRepositoryState('home/web', { pinnedCommit: null });
});

test('skipped → success "unchanged"; interrupted before any pending posts nothing; no link without a public URL', async () => {
  const { statuses, emit } = setup();
  const from = forge.requests.length;
  const other = SHA.replace('c0ffee', 'beef00');
  const skipped = store.createDeployment({ repoKey: 'home/web', trigger: 'poll', status: 'running', commit: SHA });
  const cut = store.createDeployment({ repoKey: 'home/web', trigger: 'poll', status: 'pending', commit: other });
  store.finishDeployment(cut.id, { status: 'interrupted', error: 'interrupted: replaced' });
  const finished = (id: number, status: 'skipped' | 'interrupted', commit: string | null) =>
    emit({
      type: 'deployment.finished',
      repoKey: 'home/web',
      deploymentId: id,
      status,
      stage: null,
      commit,
      durationMs: 5,
      at: at(),
    });
  finished(cut.id, 'interrupted', null);
  store.finishDeployment(skipped.id, { status: 'skipped' });
  finished(skipped.id, 'skipped', SHA);
  await until(() => forge.requests.length > from, 'the skipped status');
  await statuses.close(1000);
  assert.deepEqual(posted(from), [{ state: 'success', description: 'unchanged', context: 'shiparr/home/web' }]);
});

test('shutdown during an outage: the status gets the grace, then is dropped and recorded', async () => {
  const { statuses, emit } = setup();
  const outage = forge.outage(60_000);
  const d = store.createDeployment({ repoKey: 'home/web', trigger: 'poll', status: 'running', commit: SHA });
  emit({ type: 'deployment.started', repoKey: 'home/web', deploymentId: d.id, commit: SHA, trigger: 'poll', at: at() });
  await until(() => store.getDeployment(d.id)?.commitStatuses?.[0]?.result === 'retrying', 'a retry scheduled');
  const started = Date.now();
  await statuses.close(300);
  assert.ok(Date.now() - started < 5_000);
  const [rec] = store.getDeployment(d.id)?.commitStatuses ?? [];
  assert.equal(rec?.result, 'dropped');
  assert.equal(rec?.ok, false);
  assert.ok((rec?.attempts ?? 0) >= 1);
  assert.match(rec?.lastError ?? '', /500/);
  assert.ok(!JSON.stringify(store.getDeployment(d.id)).includes(TOKEN));
  outage.release();
});
