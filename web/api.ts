/**
 * @module The UI's only link to the daemon: relative fetches to the REST API (`api/…`, so a sub-path proxy works)
 * and the `api/events` stream. Shapes come from the server's own types; the UI adds none of its own.
 */
import type {
  ActivityEvent,
  ConfigIssue,
  Deployment as ServerDeployment,
  ProjectInfo,
  RepoStatus,
  SwarmService,
} from '../src/domain/types.ts';

export type { ConfigIssue, ProjectInfo, SwarmService };

/** A repository as the API shows it. */
export type Repo = RepoStatus;

/** A deployment as the API shows it. */
export type Deployment = ServerDeployment;

/** One container of a repository's compose project. */
export interface Container {
  id: string;
  name: string;
  service: string;
  state: string;
  health: string | null;
  image: string;
  startedAt: string | null;
}

/** One recorded container action (restart, stop, start, remove). */
export interface Action {
  id: number;
  action: string;
  service: string | null;
  status: string;
  error: string | null;
  triggeredBy: string | null;
  startedAt: string;
  finishedAt: string | null;
}

/** Every event the UI listens to: the server's, plus the live log lines and container actions. */
export type UiEvent =
  | ActivityEvent
  | { type: 'deployment.log'; repoKey: string; deploymentId: number; stage: string; lines: string[]; at: string }
  | { type: 'action'; repoKey: string; action: string; service: string | null; status: string; at?: string };

export const EVENT_TYPES = [
  'state',
  'check',
  'deployment.started',
  'deployment.finished',
  'deployment.log',
  'notification',
  'config.reloaded',
  'action',
] as const;

/** An API answer that was not 2xx: status and the server's `{error:{code,message}}` text. */
export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

async function request(path: string, init: RequestInit = {}): Promise<Response> {
  const res = await fetch(path, {
    credentials: 'same-origin',
    ...init,
    headers: { accept: 'application/json', ...(init.headers as Record<string, string> | undefined) },
  });
  if (!res.ok) {
    let message = `HTTP ${res.status}`;
    try {
      const body = (await res.json()) as { error?: { message?: string } };
      if (body.error?.message) message = body.error.message;
    } catch {
      // Not JSON: keep the status line.
    }
    throw new ApiError(res.status, message);
  }
  return res;
}

/** GET a JSON resource (path relative to the page, e.g. `api/repositories`). */
export async function getJson<T>(path: string): Promise<T> {
  return (await request(path)).json() as Promise<T>;
}

/** GET a text resource. */
export async function getText(path: string): Promise<string> {
  return (await request(path, { headers: { accept: 'text/plain' } })).text();
}

/** POST a command; the JSON content type satisfies the CSRF rule. */
export async function post<T>(path: string, body?: unknown): Promise<T> {
  const res = await request(path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-shiparr-request': '1' },
    body: body === undefined ? '{}' : JSON.stringify(body),
  });
  return res.json() as Promise<T>;
}

/** A page of a paged list (`?limit&before`). */
export interface Page<T> {
  items: T[];
  nextBefore: number | null;
}

/** The `:id` segment for a repository. */
export const repoPath = (id: number): string => `api/repositories/${id}`;
