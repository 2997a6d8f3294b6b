/**
 * @module Dashy widgets (endpoints and JSON shapes: docs/dashy.md).
 * - GET /widget/dashy?project=NAME: the original Shiparr script's `{"widgets":[{type,value,label}…]}` (four entries per repository:
 *   Repository, Version, Status, Last Deploy). Not a format Dashy reads by itself; for scripts and `embed` widgets.
 * - GET /widget/dashy/custom-list?project=NAME: an array for Dashy's real `custom-list` widget, one row per repository.
 * - GET /health/project/:name: for an item's `statusCheckUrl`: 200 when every repository of the project
 *   is running, 503 otherwise (Dashy only reads the status code; it calls from its server, with statusCheckHeaders).
 * Dashy fetches from the browser unless `useProxy` is set, so both answer with CORS headers and a 204 preflight.
 * They follow the auth setting like every other route unless `auth.publicWidgets` is set: Dashy's custom-list widget
 * sends no credentials, so with auth enabled Dashy needs publicWidgets (the data shown is names, states and short commits).
 */
import { Router } from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import { BadRequestError } from '../errors.ts';
import { parseName, queryValue } from '../params.ts';
import type { RepoStatus } from '../../domain/types.ts';
import type { DeploymentHead, HttpDeps } from '../ports.ts';
import { webUrl } from '../present.ts';
import { findProject } from './projects.ts';

export type WidgetStatus = 'running' | 'stopped' | 'deploying';

/** One repository's widget facts. */
interface RepoSummary {
  repo: RepoStatus;
  status: WidgetStatus;
  /** Short commit of what is deployed, or null when nothing was ever deployed. */
  version: string | null;
  /** ISO time of the last deployment (finished, else started), or null. */
  lastDeploy: string | null;
}

/** The original Shiparr script's widget entry. */
interface DashyWidget {
  type: 'text' | 'status';
  value: string;
  label: 'Repository' | 'Version' | 'Status' | 'Last Deploy';
}

/** Dashy custom-list row (CustomList.vue). */
interface CustomListRow {
  link: { text: string; url: string; title: string };
  value: { text: string; title: string };
  date: string;
}

/** running = last deploy succeeded; deploying = a deployment is pending/running; stopped = anything else. */
export function widgetStatus(repo: RepoStatus, latest: Pick<DeploymentHead, 'status'> | undefined): WidgetStatus {
  if (repo.busy || latest?.status === 'pending' || latest?.status === 'running') return 'deploying';
  if (latest) return latest.status === 'success' ? 'running' : 'stopped';
  return repo.lastDeployedCommit ? 'running' : 'stopped';
}

function summarise(repo: RepoStatus, latest: DeploymentHead | undefined): RepoSummary {
  const commit = repo.lastDeployedCommit ?? (latest?.status === 'success' ? latest.commit : null);
  return {
    repo,
    status: widgetStatus(repo, latest),
    version: commit ? commit.slice(0, 7) : null,
    lastDeploy: latest ? (latest.finishedAt ?? latest.startedAt) : repo.lastDeployedAt,
  };
}

/** The original Shiparr script's `{"widgets":[…]}` entries for a list of repositories. */
function dashyWidgets(summaries: RepoSummary[]): { widgets: DashyWidget[] } {
  const widgets: DashyWidget[] = [];
  for (const s of summaries) {
    widgets.push(
      { type: 'text', value: s.repo.name, label: 'Repository' },
      { type: 'text', value: s.version ?? '-', label: 'Version' },
      { type: 'status', value: s.status, label: 'Status' },
      { type: 'text', value: s.lastDeploy ?? 'never', label: 'Last Deploy' },
    );
  }
  return { widgets };
}

/**
 * Dashy custom-list rows, newest deployment first. Dashy's sort comparator returns a boolean, which only keeps an
 * order that is already descending by date, so the array is sent pre-sorted that way.
 */
function customList(summaries: RepoSummary[]): CustomListRow[] {
  const rows = summaries.map((s) => {
    const date = s.lastDeploy ?? s.repo.since;
    return {
      row: {
        link: {
          text: s.repo.name,
          url: webUrl(s.repo.url) ?? '',
          title: `${s.repo.key} (${s.repo.branch})`,
        },
        value: {
          text: s.version ? `${s.status} · ${s.version}` : s.status,
          title: s.lastDeploy ? `Last deploy: ${s.lastDeploy}` : 'Never deployed',
        },
        date,
      },
      time: Date.parse(date) || 0,
    };
  });
  rows.sort((a, b) => b.time - a.time || a.row.link.text.localeCompare(b.row.link.text));
  return rows.map((r) => r.row);
}

/** CORS for the widget routes: set before auth so a 401 is readable by the browser, and preflights never need auth. */
export async function widgetCors(ctx: Context, next: Next): Promise<void> {
  if (ctx.path !== '/widget/dashy' && !ctx.path.startsWith('/widget/dashy/')) return next();
  ctx.set('Access-Control-Allow-Origin', '*');
  if (ctx.method === 'OPTIONS') {
    ctx.set('Access-Control-Allow-Methods', 'GET, OPTIONS');
    ctx.set('Access-Control-Allow-Headers', ctx.get('access-control-request-headers') || '*');
    ctx.set('Access-Control-Max-Age', '600');
    ctx.status = 204;
    return;
  }
  return next();
}

function projectParam(ctx: Context): string {
  const raw = queryValue(ctx, 'project');
  if (raw === undefined || raw === '')
    throw new BadRequestError('query parameter "project" is required', 'INVALID_QUERY');
  return parseName(raw);
}

export function widgetRoutes(deps: Pick<HttpDeps, 'supervisor' | 'history'>, auth: Middleware): Router {
  const router = new Router();
  router.use(auth);

  /** The project's repositories with their newest deployments, read in one statement (not one read per repository). */
  const summaries = (project: string, repos: RepoStatus[]): RepoSummary[] => {
    if (repos.length === 0) return [];
    const latest = deps.history.latestDeployments(project);
    return repos.map((r) => summarise(r, latest.get(r.id)));
  };
  const reposOf = (project: string): RepoStatus[] => deps.supervisor.list().filter((r) => r.project === project);
  /**
   * A project that has an active repository exists, so the project list is only read (for its 404) when the named
   * project shows no repository: the usual widget request reads the repositories and their deployments, nothing else.
   */
  const load = (ctx: Context): RepoSummary[] => {
    const name = projectParam(ctx);
    const repos = reposOf(name);
    if (repos.length === 0) findProject(deps, name);
    return summaries(name, repos).sort((a, b) => a.repo.name.localeCompare(b.repo.name));
  };

  router.get('/widget/dashy', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = dashyWidgets(load(ctx));
  });
  router.get('/widget/dashy/custom-list', (ctx) => {
    ctx.set('Cache-Control', 'no-store');
    ctx.body = customList(load(ctx));
  });
  router.get('/health/project/:name', (ctx) => {
    const project = findProject(deps, parseName(ctx.params['name']));
    const down = summaries(project.name, reposOf(project.name))
      .filter((r) => r.status !== 'running')
      .map((r) => ({ repository: r.repo.name, status: r.status }));
    ctx.set('Cache-Control', 'no-store');
    // Deliberately not an error body: Dashy ignores it, humans get the reason.
    ctx.status = project.active && down.length === 0 ? 200 : 503;
    ctx.body = { project: project.name, up: ctx.status === 200, down };
  });
  return router;
}
