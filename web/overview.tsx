/** @module The overview: config errors, a filter, and one table per project with a live row per repository. */
import { Component } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import type { ConfigIssue, Repo } from './api.ts';
import { Badge, Time, useNow } from './common.tsx';
import { short } from './format.ts';
import { useStore } from './store.ts';

/** The config errors banner (file, key path, reason); nothing when there are none. */
function ConfigErrors({ issues }: { issues: ConfigIssue[] }) {
  if (issues.length === 0) return null;
  return (
    <section class="config-errors" role="alert" aria-labelledby="config-errors-title">
      <h2 id="config-errors-title">Configuration errors ({issues.length})</h2>
      <ul>
        {issues.map((i, n) => (
          <li key={n}>
            <code>{i.file}</code>
            {i.path ? (
              <>
                {' '}
                at <code>{i.path}</code>
              </>
            ) : null}
            : {i.message}
          </li>
        ))}
      </ul>
    </section>
  );
}

function containersText(c: Repo['containers']): string {
  if (!c) return '–';
  return `${c.running}/${c.total} running${c.unhealthy ? `, ${c.unhealthy} unhealthy` : ''}`;
}

interface RowProps {
  repo: Repo;
  now: number;
}

/** One repository row; re-renders only when its repository object or the clock changes. */
class Row extends Component<RowProps> {
  override shouldComponentUpdate(next: RowProps): boolean {
    return next.repo !== this.props.repo || next.now !== this.props.now;
  }

  override render() {
    const { repo, now } = this.props;
    return (
      <tr data-key={repo.key}>
        <td data-label="Repository">
          <a href={`#/repo/${repo.id}`}>{repo.name}</a>
          <span class="muted"> {repo.branch}</span>
        </td>
        <td data-label="State">
          <Badge value={repo.state} />
          {repo.suspended && repo.state !== 'suspended' ? <span class="badge"> suspended</span> : null}
        </td>
        <td data-label="Deployed">
          <code>{short(repo.lastDeployedCommit)}</code> {repo.lastCommitSubject ?? ''}
        </td>
        <td data-label="Age">
          <Time at={repo.lastDeployedAt} now={now} />
        </td>
        <td data-label="Containers" class={repo.containers?.unhealthy ? 'error' : undefined}>
          {containersText(repo.containers)}
        </td>
        <td data-label="Next poll">{repo.suspended ? 'suspended' : <Time at={repo.nextCheckAt} now={now} />}</td>
        <td data-label="Notes">
          {repo.pinnedCommit ? (
            <span class="pin">
              pinned bad <code>{short(repo.pinnedCommit)}</code>{' '}
            </span>
          ) : null}
          {repo.lastError ? (
            <span class="error">
              {repo.lastError.stage}: {repo.lastError.message}
            </span>
          ) : null}
        </td>
      </tr>
    );
  }
}

const FILTERS: Record<string, (r: Repo) => boolean> = {
  all: () => true,
  problems: (r) => Boolean(r.lastError || r.pinnedCommit || r.containers?.unhealthy) || r.state === 'failed',
  busy: (r) => r.busy,
  suspended: (r) => r.suspended,
};

/** The overview page. */
export function Overview() {
  const { repos, projects, configErrors, loaded, error } = useStore();
  const now = useNow();
  const [query, setQuery] = useState('');
  const [show, setShow] = useState('all');
  const groups = useMemo(() => {
    const q = query.trim().toLowerCase();
    const keep = FILTERS[show] ?? FILTERS['all']!;
    const byProject = new Map<string, Repo[]>();
    for (const p of projects) byProject.set(p.name, []);
    let shown = 0;
    for (const r of repos) {
      if (!keep(r)) continue;
      if (q && !`${r.key} ${r.state} ${r.branch} ${r.lastDeployedCommit ?? ''}`.toLowerCase().includes(q)) continue;
      shown += 1;
      const list = byProject.get(r.project) ?? [];
      list.push(r);
      byProject.set(r.project, list);
    }
    return { shown, list: [...byProject.entries()].filter(([, l]) => l.length > 0 || (!q && show === 'all')) };
  }, [repos, projects, query, show]);

  return (
    <>
      <h1>Overview</h1>
      <ConfigErrors issues={configErrors} />
      {error && (
        <p class="error" role="alert">
          Could not load: {error}
        </p>
      )}
      <div class="toolbar" role="search">
        <label for="filter">Filter</label>
        <input
          id="filter"
          type="search"
          value={query}
          placeholder="name, state, commit"
          onInput={(e) => setQuery((e.target as HTMLInputElement).value)}
        />
        <label for="show">Show</label>
        <select id="show" value={show} onChange={(e) => setShow((e.target as HTMLSelectElement).value)}>
          <option value="all">All</option>
          <option value="problems">With problems</option>
          <option value="busy">Deploying</option>
          <option value="suspended">Suspended</option>
        </select>
        <span class="muted" aria-live="polite">
          {groups.shown} of {repos.length} repositories
        </span>
      </div>
      {!loaded ? <p>Loading…</p> : null}
      {loaded && repos.length === 0 && !error ? <p>No repositories configured.</p> : null}
      {groups.list.map(([project, list]) => {
        const info = projects.find((p) => p.name === project);
        return (
          <section key={project} class="project" aria-labelledby={`p-${project}`}>
            <h2 id={`p-${project}`}>
              {project}
              {info?.description ? <span class="muted"> — {info.description}</span> : null}
            </h2>
            {list.length === 0 ? (
              <p class="muted">No repositories.</p>
            ) : (
              <table class="repos">
                <thead>
                  <tr>
                    <th scope="col">Repository</th>
                    <th scope="col">State</th>
                    <th scope="col">Deployed</th>
                    <th scope="col">Age</th>
                    <th scope="col">Containers</th>
                    <th scope="col">Next poll</th>
                    <th scope="col">Notes</th>
                  </tr>
                </thead>
                <tbody>
                  {list.map((r) => (
                    <Row key={r.key} repo={r} now={now} />
                  ))}
                </tbody>
              </table>
            )}
          </section>
        );
      })}
    </>
  );
}
