/**
 * @module The narrow ports the HTTP layer talks through. The supervisor, the store and the
 * Docker client implement them; the HTTP layer never imports those modules, only these types.
 */
import type { Registry } from 'prom-client';
import type { Logger } from '../logger.ts';

export type DeploymentStatus = 'pending' | 'running' | 'success' | 'failed' | 'rolled_back' | 'interrupted';

/** One deployment row as the API shows it. */
export interface Deployment {
  id: number;
  repositoryId: number;
  repoKey: string;
  commit: string | null;
  status: DeploymentStatus;
  trigger: string;
  stage: string | null;
  error: string | null;
  previousCommit: string | null;
  rolledBackTo: string | null;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  notifications: unknown[] | null;
}

/** Config + live actor state of one repository. */
export interface RepoStatus {
  id: number;
  key: string;
  project: string;
  name: string;
  url: string;
  branch: string;
  path: string;
  composeProject: string;
  checkInterval: number;
  active: boolean;
  /** Deploy machine state: idle|checking|pulling|decrypting|applying|verifying|rollingBack|notifying|suspended|backoff|failed|stopped */
  state: string;
  /** ISO time the state was entered. */
  since: string;
  busy: boolean;
  currentDeploymentId: number | null;
  lastDeployedCommit: string | null;
  lastDeployedAt: string | null;
  lastCheckAt: string | null;
  nextCheckAt: string | null;
  lastError: { stage: string; code: string; message: string } | null;
  pinnedCommit: string | null;
  suspended: boolean;
  attempt: number;
  restarts: number;
}

export interface ProjectInfo {
  name: string;
  description: string | null;
  file: string | null;
  active: boolean;
  error: { file: string; path: string; message: string }[] | null;
  repositories: number;
}

export type SupervisorEvent =
  | { type: 'state'; repoKey: string; repoId: number; state: string; previous: string | null; at: string }
  | { type: 'check'; repoKey: string; result: 'changed' | 'unchanged' | 'error'; at: string }
  | { type: 'deployment.started'; repoKey: string; deploymentId: number; commit: string | null; trigger: string; at: string }
  | {
      type: 'deployment.finished';
      repoKey: string;
      deploymentId: number;
      status: DeploymentStatus;
      stage: string | null;
      commit: string | null;
      durationMs: number | null;
      at: string;
    }
  | { type: 'notification'; repoKey: string; url: string; service: string; ok: boolean; at: string }
  | { type: 'config.reloaded'; errors: number; at: string };

export interface SupervisorPort {
  list(): RepoStatus[];
  /** Numeric id or "<project>/<repo>". */
  get(idOrKey: number | string): RepoStatus | undefined;
  projects(): ProjectInfo[];
  /** false if unknown/suspended. */
  check(key: string, trigger: 'webhook' | 'api'): boolean;
  /** Throws ConflictError if suspended. */
  deploy(key: string, opts: { trigger: 'api'; commit?: string }): { deploymentId: number };
  /** Resolves when finished (or with the current row at timeout). */
  waitForDeployment(id: number, timeoutMs: number): Promise<Deployment | undefined>;
  /** Throws ConflictError when there is no previous success. */
  rollback(key: string, opts: { commit?: string }): { deploymentId: number };
  suspend(key: string): RepoStatus;
  resume(key: string): RepoStatus;
  reload(): Promise<{
    errors: { file: string; path: string; message: string }[];
    added: string[];
    removed: string[];
    changed: string[];
  }>;
  /** url normalised. */
  webhookTargets(): { key: string; url: string; branch: string; webhookSecret?: string }[];
  subscribe(listener: (e: SupervisorEvent) => void): () => void;
}

export interface HistoryReader {
  getDeployment(id: number): Deployment | undefined;
  getDeploymentLogs(id: number): string | undefined;
  listDeployments(repoId: number, q: { limit: number; before?: number }): { items: Deployment[]; nextBefore: number | null };
}

/** `null` → the container is unknown or not part of a managed compose project (404). */
export interface ContainerLogReader {
  logs(containerId: string, q: { tail: number; since?: number }): Promise<string | null>;
}

export interface HealthReport {
  status: 'ok' | 'degraded';
  db: { ok: boolean; error?: string };
  docker: { ok: boolean; error?: string };
  config: { ok: boolean; errors: { file: string; path: string; message: string }[] };
  version: string;
  uptimeSeconds: number;
}

export interface HttpDeps {
  supervisor: SupervisorPort;
  history: HistoryReader;
  containers: ContainerLogReader;
  health(): Promise<HealthReport>;
  log: Logger;
  auth: {
    enabled: boolean;
    username: string;
    password?: string;
    /** Serve the Dashy widget routes without Basic Auth (browsers cannot send credentials cross-origin). Default false. */
    publicWidgets?: boolean;
  };
  webhookSecret?: string;
  /** prom-client registry created by createMetrics(); when omitted the app creates and wires its own. */
  metrics?: Registry;
  /** Milliseconds between SSE heartbeat comments (default 15 000). */
  sseHeartbeatMs?: number;
  /** Aborting ends every open SSE stream (shutdown); `closeEventStreams(app)` does the same. */
  signal?: AbortSignal;
}
