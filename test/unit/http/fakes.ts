/**
 * @module Fakes for the HTTP ports (the real supervisor, store and Docker reader live behind them) and a helper that
 * serves createApp() on 127.0.0.1 so tests go through real HTTP.
 */
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type Koa from 'koa';
import { ConflictError } from '../../../src/errors.ts';
import { createApp, closeEventStreams } from '../../../src/http/app.ts';
import type { ActivityEvent, Deployment, ProjectInfo, RepoStatus } from '../../../src/domain/types.ts';
import type {
  ContainerLogReader,
  HealthReport,
  HistoryReader,
  HttpDeps,
  SupervisorPort,
} from '../../../src/http/ports.ts';

const T0 = '2025-06-28T18:00:00.000Z';

export function repoStatus(over: Partial<RepoStatus> & Pick<RepoStatus, 'id' | 'project' | 'name'>): RepoStatus {
  return {
    key: `${over.project}/${over.name}`,
    url: `https://github.com/acme/${over.name}.git`,
    branch: 'main',
    path: '.',
    composeProject: `${over.project}-${over.name}`.toLowerCase(),
    checkInterval: 300,
    active: true,
    state: 'idle',
    since: T0,
    busy: false,
    currentDeploymentId: null,
    lastDeployedCommit: null,
    lastDeployedAt: null,
    lastCheckAt: null,
    nextCheckAt: null,
    lastError: null,
    pinnedCommit: null,
    suspended: false,
    attempt: 0,
    restarts: 0,
    containers: null,
    lastCommitSubject: null,
    ...over,
  };
}

export function deployment(
  over: Partial<Deployment> & Pick<Deployment, 'id' | 'repositoryId' | 'repoKey'>,
): Deployment {
  return {
    commit: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
    status: 'success',
    trigger: 'poll',
    stage: null,
    error: null,
    previousCommit: null,
    rolledBackTo: null,
    startedAt: T0,
    finishedAt: '2025-06-28T18:01:00.000Z',
    durationMs: 60_000,
    configHash: null,
    notifications: null,
    selfUpdate: false,
    logBytes: 0,
    logTruncatedBytes: 0,
    triggeredBy: null,
    reason: { kind: 'commits', summary: 'new commit a1b2c3d', from: null, to: 'a1b2c3d', count: 1, subjects: [] },
    plan: null,
    serviceImages: null,
    commitSubject: null,
    ...over,
  };
}

type Call = { method: string; key: string; opts?: unknown };

/** An in-memory SupervisorPort that records every command. */
export class FakeSupervisor implements SupervisorPort {
  repos: RepoStatus[];
  projectList: ProjectInfo[];
  targets: { key: string; url: string; branch: string; webhookSecret?: string }[] = [];
  calls: Call[] = [];
  listeners = new Set<(e: ActivityEvent) => void>();
  nextDeploymentId = 100;
  /** What waitForDeployment resolves with. */
  waitResult: (id: number, timeoutMs: number) => Promise<Deployment | undefined> = async () => undefined;
  reloadResult = {
    errors: [] as { file: string; path: string; message: string }[],
    added: [] as string[],
    removed: [] as string[],
    changed: [] as string[],
  };
  hasPreviousSuccess = true;

  constructor(repos: RepoStatus[], projects: ProjectInfo[]) {
    this.repos = repos;
    this.projectList = projects;
  }

  list(): RepoStatus[] {
    return this.repos.map((r) => ({ ...r }));
  }
  get(idOrKey: number | string): RepoStatus | undefined {
    const r = this.repos.find((x) => (typeof idOrKey === 'number' ? x.id === idOrKey : x.key === idOrKey));
    return r && { ...r };
  }
  projects(): ProjectInfo[] {
    return this.projectList.map((p) => ({ ...p }));
  }
  check(key: string, trigger: 'webhook' | 'api'): boolean {
    this.calls.push({ method: 'check', key, opts: trigger });
    const r = this.get(key);
    return r !== undefined && !r.suspended;
  }
  deploy(key: string, opts: { trigger: 'api'; commit?: string }): { deploymentId: number } {
    if (this.get(key)?.suspended) throw new ConflictError(`repository ${key} is suspended`);
    this.calls.push({ method: 'deploy', key, opts });
    return { deploymentId: this.nextDeploymentId++ };
  }
  waitForDeployment(id: number, timeoutMs: number): Promise<Deployment | undefined> {
    this.calls.push({ method: 'wait', key: String(id), opts: timeoutMs });
    return this.waitResult(id, timeoutMs);
  }
  rollback(key: string, opts: { commit?: string }): { deploymentId: number } {
    if (!this.hasPreviousSuccess && opts.commit === undefined)
      throw new ConflictError(`repository ${key} has no previous successful deployment`);
    this.calls.push({ method: 'rollback', key, opts });
    return { deploymentId: this.nextDeploymentId++ };
  }
  suspend(key: string): RepoStatus {
    this.calls.push({ method: 'suspend', key });
    return this.#patch(key, { suspended: true, state: 'suspended' });
  }
  resume(key: string): RepoStatus {
    this.calls.push({ method: 'resume', key });
    return this.#patch(key, { suspended: false, state: 'idle' });
  }
  async reload() {
    this.calls.push({ method: 'reload', key: '' });
    return this.reloadResult;
  }
  webhookTargets() {
    return this.targets.map((t) => ({ ...t }));
  }
  subscribe(listener: (e: ActivityEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  /** Pushes an event to every subscriber (as the real supervisor does on actor changes). */
  emit(e: ActivityEvent): void {
    for (const l of this.listeners) l(e);
  }
  callsOf(method: string): Call[] {
    return this.calls.filter((c) => c.method === method);
  }
  #patch(key: string, patch: Partial<RepoStatus>): RepoStatus {
    const i = this.repos.findIndex((r) => r.key === key);
    const next = { ...this.repos[i]!, ...patch };
    this.repos[i] = next;
    return { ...next };
  }
}

/** In-memory HistoryReader with the store's paging contract (newest first, `before` = exclusive id bound). */
export class FakeHistory implements HistoryReader {
  deployments: Deployment[] = [];
  logs = new Map<number, string>();
  getDeployment(id: number): Deployment | undefined {
    return this.deployments.find((d) => d.id === id);
  }
  getDeploymentLogs(id: number): string | undefined {
    return this.getDeployment(id) ? (this.logs.get(id) ?? '') : undefined;
  }
  listDeployments(repoId: number, q: { limit: number; before?: number }) {
    const all = this.deployments
      .filter((d) => d.repositoryId === repoId && (q.before === undefined || d.id < q.before))
      .sort((a, b) => b.id - a.id);
    const items = all.slice(0, q.limit);
    return { items, nextBefore: all.length > q.limit ? (items.at(-1)?.id ?? null) : null };
  }
  /** The project is the first part of the deployment's `repoKey`, as in the store. */
  latestDeployments(project: string): Map<number, Deployment> {
    const out = new Map<number, Deployment>();
    for (const d of this.deployments)
      if (d.repoKey.startsWith(`${project}/`) && (out.get(d.repositoryId)?.id ?? 0) < d.id) out.set(d.repositoryId, d);
    return out;
  }
}

/** Container logs for a fixed set of "managed" containers; anything else is null (→ 404). */
export class FakeContainers implements ContainerLogReader {
  managed = new Map<string, string>();
  calls: { id: string; q: { tail: number; since?: number } }[] = [];
  async logs(id: string, q: { tail: number; since?: number }): Promise<string | null> {
    this.calls.push({ id, q });
    return this.managed.get(id) ?? null;
  }
}

/** Captures log lines (JSON) so tests can assert what was logged. */
export function captureLogger(): { log: HttpDeps['log']; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n'))
        if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, sink), lines };
}

const HEALTH_OK: HealthReport = {
  status: 'ok',
  db: { ok: true },
  docker: { ok: true },
  config: { ok: true, errors: [] },
  version: '0.1.0',
  uptimeSeconds: 12,
};

/** The default world: project "homelab" with two repositories and one errored project "broken". */
export function world(): { supervisor: FakeSupervisor; history: FakeHistory; containers: FakeContainers } {
  const supervisor = new FakeSupervisor(
    [
      repoStatus({
        id: 1,
        project: 'homelab',
        name: 'media-stack',
        lastDeployedCommit: 'a1b2c3d4e5f60718293a4b5c6d7e8f9012345678',
        lastDeployedAt: '2025-06-28T18:01:00.000Z',
      }),
      repoStatus({ id: 2, project: 'homelab', name: 'dns', url: 'git@github.com:acme/dns.git' }),
      repoStatus({ id: 3, project: 'lab', name: 'web', branch: 'prod' }),
    ],
    [
      {
        name: 'homelab',
        description: 'Services homelab',
        file: '/cfg/homelab.yaml',
        active: true,
        error: null,
        repositories: 2,
      },
      { name: 'lab', description: null, file: '/cfg/lab.yaml', active: true, error: null, repositories: 1 },
      {
        name: 'broken',
        description: null,
        file: '/cfg/broken.yaml',
        active: false,
        error: [{ file: '/cfg/broken.yaml', path: 'repositories.x.url', message: 'is required' }],
        repositories: 0,
      },
    ],
  );
  const history = new FakeHistory();
  history.deployments.push(
    deployment({
      id: 1,
      repositoryId: 1,
      repoKey: 'homelab/media-stack',
      commit: '0000000aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
      status: 'failed',
      stage: 'applying',
      error: 'compose up failed',
    }),
    deployment({ id: 2, repositoryId: 1, repoKey: 'homelab/media-stack', status: 'success' }),
    deployment({
      id: 3,
      repositoryId: 2,
      repoKey: 'homelab/dns',
      status: 'rolled_back',
      stage: 'verifying',
      finishedAt: '2025-06-29T10:00:00.000Z',
    }),
  );
  history.logs.set(2, 'pulling…\ncompose up ok\nhttps://user:hunter2secret@git.example/x\n');
  const containers = new FakeContainers();
  containers.managed.set('abc123', 'line 1\nline 2\n');
  return { supervisor, history, containers };
}

export interface Served {
  url: string;
  app: Koa;
  server: Server;
  deps: HttpDeps;
  close(): Promise<void>;
}

/** Builds the app with `over` applied to a default world and serves it on an ephemeral 127.0.0.1 port. */
export async function serve(over: Partial<HttpDeps> = {}): Promise<Served> {
  const w = world();
  const deps: HttpDeps = {
    supervisor: w.supervisor,
    history: w.history,
    containers: w.containers,
    health: async () => HEALTH_OK,
    log: pino({ level: 'silent' }),
    auth: { enabled: false, username: 'admin' },
    ...over,
  };
  const app = createApp(deps);
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    app,
    server,
    deps,
    async close() {
      closeEventStreams(app);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Basic Auth header value. */
export function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}
