/**
 * @module The live read model of the page: every repository, the projects and the config errors. Loaded from the
 * REST API, kept current from SSE. Events are queued and applied once per animation frame; a `state` event patches
 * its row in place, other events refetch only the repository they name (coalesced), so the work per event does not
 * grow with the number of repositories. Rows keep their object identity unless changed, so memoised rows skip.
 */
import { useEffect, useState } from 'preact/hooks';
import { getJson, type ConfigIssue, type ProjectInfo, type Repo, type UiEvent } from './api.ts';
import { onEvent, onReconnect } from './live.ts';

/** What the store holds. */
export interface Snapshot {
  repos: Repo[];
  projects: ProjectInfo[];
  configErrors: ConfigIssue[];
  loaded: boolean;
  error: string | null;
}

let snap: Snapshot = { repos: [], projects: [], configErrors: [], loaded: false, error: null };
const subscribers = new Set<(s: Snapshot) => void>();
const queue: UiEvent[] = [];
const toRefetch = new Set<string>();
let frame = 0;
let refetchTimer: ReturnType<typeof setTimeout> | undefined;

function publish(next: Partial<Snapshot>): void {
  snap = { ...snap, ...next };
  for (const s of subscribers) s(snap);
}

function replaceRepo(repo: Repo): void {
  const i = snap.repos.findIndex((r) => r.key === repo.key);
  const repos = snap.repos.slice();
  if (i >= 0) repos[i] = repo;
  else {
    repos.push(repo);
    repos.sort((a, b) => a.key.localeCompare(b.key));
  }
  publish({ repos });
}

/** The health report's config issues plus those of each project, once each. */
function configErrors(fromHealth: ConfigIssue[], projects: ProjectInfo[]): ConfigIssue[] {
  const seen = new Set<string>();
  const out: ConfigIssue[] = [];
  for (const i of [...fromHealth, ...projects.flatMap((p) => p.error ?? [])]) {
    const id = `${i.file}\0${i.path}\0${i.message}`;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(i);
  }
  return out;
}

/** Loads everything (first load, reconnect, config reload). */
async function reloadAll(): Promise<void> {
  try {
    const [repos, projects, health] = await Promise.all([
      getJson<Repo[]>('api/repositories'),
      getJson<ProjectInfo[]>('api/projects'),
      getJson<{ config?: { errors?: ConfigIssue[] } }>('api/health'),
    ]);
    repos.sort((a, b) => a.key.localeCompare(b.key));
    publish({
      repos,
      projects,
      configErrors: configErrors(health.config?.errors ?? [], projects),
      loaded: true,
      error: null,
    });
  } catch (err) {
    publish({ error: err instanceof Error ? err.message : String(err), loaded: true });
  }
}

/** Refetches one repository now (after a command), keeping the rest. */
export async function refreshRepo(key: string): Promise<void> {
  try {
    replaceRepo(await getJson<Repo>(`api/repositories/${encodeURIComponent(key)}`));
  } catch {
    // Gone (config reload) or unreachable: the next reload settles it.
  }
}

function scheduleRefetch(key: string): void {
  toRefetch.add(key);
  refetchTimer ??= setTimeout(() => {
    refetchTimer = undefined;
    const keys = [...toRefetch];
    toRefetch.clear();
    for (const k of keys) void refreshRepo(k);
  }, 250);
}

function flush(): void {
  frame = 0;
  const events = queue.splice(0);
  let repos: Repo[] | null = null;
  let reload = false;
  for (const e of events) {
    if (e.type === 'config.reloaded') reload = true;
    else if (e.type === 'state') {
      const i = (repos ?? snap.repos).findIndex((r) => r.key === e.repoKey);
      if (i < 0) {
        scheduleRefetch(e.repoKey);
        continue;
      }
      repos ??= snap.repos.slice();
      const old = repos[i] as Repo;
      repos[i] = { ...old, state: e.state, since: e.at, suspended: e.state === 'suspended' ? true : old.suspended };
      scheduleRefetch(e.repoKey);
    } else if (e.type !== 'deployment.log' && e.type !== 'notification') scheduleRefetch(e.repoKey);
  }
  if (repos) publish({ repos });
  if (reload) void reloadAll();
}

let started = false;

/** Starts loading and listening (once). */
export function startStore(): void {
  if (started) return;
  started = true;
  void reloadAll();
  onEvent((e) => {
    queue.push(e);
    frame ||= requestAnimationFrame(flush);
  });
  onReconnect(() => void reloadAll());
}

/** The current snapshot, re-rendering on change. */
export function useStore(): Snapshot {
  const [s, setS] = useState(snap);
  useEffect(() => {
    subscribers.add(setS);
    setS(snap);
    return () => subscribers.delete(setS);
  }, []);
  return s;
}
