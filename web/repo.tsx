/**
 * @module The repository page: live state and commands (Deploy, Suspend/Resume, Unpin, Remove), live output of a
 * running deploy, the project's containers (a swarm repository: its stack's services and their tasks) with
 * per-service commands and logs, recorded actions, and the paged
 * deployment timeline with Roll back to an earlier successful deployment.
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import {
  ApiError,
  getJson,
  getText,
  post,
  repoPath,
  type Action,
  type Container,
  type Deployment,
  type Page,
  type Repo,
  type SwarmService,
} from './api.ts';
import { Badge, Time, useConfirm, useNow, type ConfirmRequest } from './common.tsx';
import { PlanPanel } from './plan.tsx';
import { duration, short } from './format.ts';
import { ImagesPanel } from './images.tsx';
import { onEvent, onReconnect } from './live.ts';
import { refreshRepo, useStore } from './store.ts';

/** Lines kept per live log. */
const MAX_LINES = 5000;

/** An optional endpoint (added by a newer API): null when the server answers 404. */
async function optional<T>(path: string): Promise<T | null> {
  try {
    return await getJson<T>(path);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

/** The live output of one deployment from `deployment.log` events (page-wide, so navigating keeps it). */
const liveLines = new Map<number, string[]>();
onEvent((e) => {
  if (e.type !== 'deployment.log') return;
  const lines = liveLines.get(e.deploymentId) ?? [];
  for (const l of e.lines) lines.push(e.stage ? `[${e.stage}] ${l}` : l);
  if (lines.length > MAX_LINES) lines.splice(0, lines.length - MAX_LINES);
  liveLines.set(e.deploymentId, lines);
});

/** Live lines of `deploymentId`, re-rendered per animation frame while they arrive. */
export function useLiveLines(deploymentId: number | null): string[] {
  const [, setVersion] = useState(0);
  useEffect(() => {
    if (deploymentId === null) return;
    let frame = 0;
    return onEvent((e) => {
      if (e.type !== 'deployment.log' || e.deploymentId !== deploymentId) return;
      frame ||= requestAnimationFrame(() => {
        frame = 0;
        setVersion((v) => v + 1);
      });
    });
  }, [deploymentId]);
  return deploymentId === null ? [] : (liveLines.get(deploymentId) ?? []);
}

/** A log block that keeps scrolled to the bottom while new text arrives (unless the reader scrolled up). */
export function LogView({ text, label, live }: { text: string; label: string; live?: boolean }) {
  const ref = useRef<HTMLPreElement>(null);
  const stick = useRef(true);
  useEffect(() => {
    const el = ref.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [text]);
  return (
    <pre
      ref={ref}
      class="log"
      tabIndex={0}
      aria-label={label}
      role={live ? 'log' : undefined}
      onScroll={(e) => {
        const el = e.currentTarget;
        stick.current = el.scrollTop + el.clientHeight >= el.scrollHeight - 8;
      }}
    >
      {text || '(empty)'}
    </pre>
  );
}

/** What a logs panel reads: a container (`containers/:id/logs`) or a swarm service (`…/services/:name/logs`). */
interface LogSource {
  /** The logs URL without query. */
  path: string;
  name: string;
}

function ContainerLogs({ container, onClose }: { container: LogSource; onClose: () => void }) {
  const [text, setText] = useState('');
  const [follow, setFollow] = useState(false);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const ac = new AbortController();
    const base = `${container.path}?tail=200`;
    setError(null);
    (async () => {
      if (!follow) {
        setText(await getText(base));
        return;
      }
      const res = await fetch(`${base}&follow=1`, { credentials: 'same-origin', signal: ac.signal });
      if (!res.ok || !res.body) throw new ApiError(res.status, `HTTP ${res.status}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let acc = '';
      setText('');
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        acc = (acc + value).slice(-200_000);
        setText(acc);
      }
    })().catch((err: unknown) => {
      if (!ac.signal.aborted) setError(err instanceof Error ? err.message : String(err));
    });
    return () => ac.abort();
  }, [container.path, follow]);
  return (
    <section class="panel" aria-labelledby="clogs-title">
      <h3 id="clogs-title">Logs of {container.name}</h3>
      <div class="toolbar">
        <label>
          <input type="checkbox" checked={follow} onChange={(e) => setFollow(e.currentTarget.checked)} /> Follow
        </label>
        <button type="button" onClick={onClose}>
          Close logs
        </button>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <LogView text={text} label={`Logs of ${container.name}`} live={follow} />
    </section>
  );
}

/** The services of a swarm repository's stack, each with its tasks (node, state, image), commands and logs. */
function SwarmServices(p: {
  services: SwarmService[];
  now: number;
  act: (s: SwarmService, verb: 'restart' | 'stop' | 'start') => void;
  logs: (s: SwarmService) => void;
}) {
  return (
    <section aria-labelledby="services-title">
      <h2 id="services-title">Swarm services</h2>
      {p.services.length === 0 ? (
        <p class="muted">No services.</p>
      ) : (
        <table class="containers">
          <thead>
            <tr>
              <th scope="col">Service</th>
              <th scope="col">Replicas</th>
              <th scope="col">Image</th>
              <th scope="col">Tasks</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {p.services.map((s) => (
              <tr key={s.id} data-service={s.service}>
                <td data-label="Service">
                  {s.service} <span class="muted">{s.name}</span>
                  {s.update ? (
                    <>
                      {' '}
                      <Badge value={`update ${s.update}`} />
                    </>
                  ) : null}
                </td>
                <td data-label="Replicas" class="replicas">
                  {s.running}/{s.desired ?? s.mode}
                </td>
                <td data-label="Image">
                  <code>{s.image}</code>
                </td>
                <td data-label="Tasks">
                  {s.tasks.length === 0 ? (
                    <span class="muted">none</span>
                  ) : (
                    <ul class="tasks">
                      {s.tasks.map((t) => (
                        <li key={t.id} data-task={t.id}>
                          <Badge value={t.state} /> {t.slot !== null ? `#${t.slot} ` : ''}
                          <span class="muted">on</span> {t.node} <Time at={t.since} now={p.now} />
                          {t.image !== s.image ? (
                            <>
                              {' '}
                              <code>{t.image}</code>
                            </>
                          ) : null}
                          {t.error ? <span class="error"> {t.error}</span> : null}
                        </li>
                      ))}
                    </ul>
                  )}
                </td>
                <td data-label="Actions" class="row-actions">
                  <button type="button" onClick={() => p.act(s, 'restart')}>
                    Restart
                  </button>
                  {s.mode === 'replicated' ? (
                    s.desired === 0 ? (
                      <button type="button" onClick={() => p.act(s, 'start')}>
                        Start
                      </button>
                    ) : (
                      <button type="button" onClick={() => p.act(s, 'stop')}>
                        Stop
                      </button>
                    )
                  ) : null}
                  <button type="button" onClick={() => p.logs(s)} aria-label={`Logs of service ${s.service}`}>
                    Logs
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** The repository page for `#/repo/:id`. */
export function RepoPage({ id }: { id: number }) {
  const now = useNow();
  const store = useStore();
  const [fetched, setFetched] = useState<Repo | null>(null);
  const [missing, setMissing] = useState<string | null>(null);
  const repo = store.repos.find((r) => r.id === id) ?? fetched;
  const [deployments, setDeployments] = useState<Deployment[]>([]);
  const [nextBefore, setNextBefore] = useState<number | null>(null);
  const [containers, setContainers] = useState<Container[] | null | undefined>(undefined);
  // The stack's services of a `mode: swarm` repository (null for a compose one).
  const [swarm, setSwarm] = useState<SwarmService[] | null>(null);
  const [actions, setActions] = useState<Action[] | null | undefined>(undefined);
  const [logsOf, setLogsOf] = useState<LogSource | null>(null);
  const [notice, setNotice] = useState('');
  const [dialog, ask] = useConfirm();
  const shown = useRef(20);

  const loadDeployments = useCallback(async () => {
    const page = await getJson<Page<Deployment>>(`${repoPath(id)}/deployments?limit=${Math.min(shown.current, 100)}`);
    setDeployments(page.items);
    setNextBefore(page.nextBefore);
  }, [id]);
  const loadContainers = useCallback(async () => {
    const r = await optional<{ items: Container[]; services?: SwarmService[] }>(`${repoPath(id)}/containers`);
    setContainers(r?.items ?? null);
    setSwarm(r?.services ?? null);
  }, [id]);
  const loadActions = useCallback(async () => {
    setActions((await optional<Page<Action>>(`${repoPath(id)}/actions?limit=20`))?.items ?? null);
  }, [id]);
  const loadAll = useCallback(() => {
    getJson<Repo>(repoPath(id))
      .then((r) => {
        setFetched(r);
        setMissing(null);
      })
      .catch((err: unknown) => setMissing(err instanceof Error ? err.message : String(err)));
    void loadDeployments().catch(() => undefined);
    void loadContainers().catch(() => setContainers(null));
    void loadActions().catch(() => setActions(null));
  }, [id, loadDeployments, loadContainers, loadActions]);

  useEffect(() => {
    shown.current = 20;
    loadAll();
    return onReconnect(loadAll);
  }, [loadAll]);

  const key = repo?.key;
  useEffect(() => {
    if (!key) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const later = (fn: () => void) => {
      clearTimeout(timer);
      timer = setTimeout(fn, 200);
    };
    const off = onEvent((e) => {
      if (!('repoKey' in e) || e.repoKey !== key) return;
      if (e.type === 'deployment.started' || e.type === 'deployment.finished') {
        later(() => {
          void loadDeployments().catch(() => undefined);
          if (e.type === 'deployment.finished') void loadContainers().catch(() => undefined);
        });
      } else if (e.type === 'action') {
        later(() => {
          void loadActions().catch(() => undefined);
          void loadContainers().catch(() => undefined);
        });
      }
    });
    return () => {
      off();
      clearTimeout(timer);
    };
  }, [key, loadDeployments, loadContainers, loadActions]);

  const current = repo?.currentDeploymentId ?? null;
  const running = deployments.find((d) => d.status === 'running' || d.status === 'pending');
  const liveId = current ?? running?.id ?? null;
  const lines = useLiveLines(liveId);

  if (!repo) {
    return missing ? (
      <p class="error" role="alert">
        {missing}
      </p>
    ) : (
      <p>Loading…</p>
    );
  }

  const command = (req: Omit<ConfirmRequest, 'run'> & { run: () => Promise<string> }) =>
    ask({
      ...req,
      run: async () => {
        setNotice(await req.run());
        await refreshRepo(repo.key);
        void loadDeployments().catch(() => undefined);
      },
    });
  const base = repoPath(repo.id);
  const deploy = () =>
    command({
      title: `Deploy ${repo.key} now?`,
      body: <p>Checks the branch {repo.branch} and deploys its head, even if it is the deployed commit.</p>,
      confirm: 'Confirm',
      run: async () => {
        const r = await post<{ deploymentId: number }>(`${base}/deploy`);
        return `Deployment #${r.deploymentId} requested.`;
      },
    });
  const rollback = (d: Deployment) =>
    command({
      title: `Roll back ${repo.key}?`,
      body: (
        <p>
          Deploys commit <code>{short(d.commit)}</code> {d.commitSubject ?? ''} again (deployment #{d.id}); the current
          commit is pinned so polling does not redeploy it.
        </p>
      ),
      confirm: 'Confirm',
      danger: true,
      run: async () => {
        const r = await post<{ deploymentId: number }>(`${base}/rollback`, { commit: d.commit });
        return `Rollback #${r.deploymentId} to ${short(d.commit)} requested.`;
      },
    });
  const simple = (verb: 'suspend' | 'resume') =>
    command({
      title: `${verb === 'suspend' ? 'Suspend' : 'Resume'} ${repo.key}?`,
      body: (
        <p>
          {verb === 'suspend'
            ? 'No polls, webhooks or deploys run until it is resumed. Running containers are left alone.'
            : 'Polling starts again with a check of the branch.'}
        </p>
      ),
      confirm: 'Confirm',
      run: async () => {
        await post(`${base}/${verb}`);
        return verb === 'suspend' ? 'Suspended.' : 'Resumed.';
      },
    });
  const unpin = () =>
    command({
      title: `Unpin ${short(repo.pinnedCommit)}?`,
      body: (
        <p>
          Commit <code>{short(repo.pinnedCommit)}</code> failed and is skipped by polling. Unpinning allows it again:
          the pin is cleared and the branch head is deployed now.
        </p>
      ),
      confirm: 'Confirm',
      run: async () => {
        let cleared = false;
        try {
          await post(`${base}/unpin`);
          cleared = true;
        } catch (err) {
          // A daemon without the unpin endpoint: a successful deploy of the head clears the pin instead.
          if (!(err instanceof ApiError) || (err.status !== 404 && err.status !== 405)) throw err;
        }
        // Clearing the pin alone waits for the next poll (maybe an hour away): deploy the head now, as promised.
        const r = await post<{ deploymentId: number }>(`${base}/deploy`);
        return cleared
          ? `Unpinned; deployment #${r.deploymentId} of the branch head requested.`
          : `Deployment #${r.deploymentId} of the branch head requested (clears the pin on success).`;
      },
    });
  const remove = () =>
    command({
      title: swarm ? `Remove the services of ${repo.key}?` : `Remove the containers of ${repo.key}?`,
      body: swarm ? (
        <p>
          Removes every service of stack <code>{repo.composeProject}</code>. Its networks, configs, secrets and volumes
          stay; the next deploy creates the services again.
        </p>
      ) : (
        <p>
          Stops and removes every container of compose project <code>{repo.composeProject}</code>. Volumes and files
          stay; the next deploy creates the containers again.
        </p>
      ),
      confirm: 'Confirm',
      danger: true,
      run: async () => {
        await post(`${base}/remove`);
        void loadContainers().catch(() => undefined);
        return swarm ? 'Services removed.' : 'Containers removed.';
      },
    });
  const serviceAction = (c: { service: string }, verb: 'restart' | 'stop' | 'start') =>
    command({
      title: `${verb[0]!.toUpperCase()}${verb.slice(1)} service ${c.service}?`,
      body: swarm ? (
        <p>
          {verb === 'restart'
            ? 'Replaces every task of swarm service '
            : verb === 'stop'
              ? 'Scales to 0 (the replica count is kept for Start) swarm service '
              : 'Scales back to the replica count it had before Stop swarm service '}
          <code>{c.service}</code>.
        </p>
      ) : (
        <p>
          {verb === 'restart' ? 'Restarts' : verb === 'stop' ? 'Stops' : 'Starts'} the containers of service{' '}
          <code>{c.service}</code>.
        </p>
      ),
      confirm: 'Confirm',
      danger: verb === 'stop',
      // A restart waits for the container's stop timeout: the dialog closes at once and the notice follows it.
      run: () => {
        post(`${base}/services/${encodeURIComponent(c.service)}/${verb}`)
          .then(
            () => setNotice(`${c.service}: ${verb} done.`),
            (err: unknown) =>
              setNotice(`${c.service}: ${verb} failed: ${err instanceof Error ? err.message : String(err)}`),
          )
          .finally(() => {
            void loadContainers().catch(() => undefined);
            void loadActions().catch(() => undefined);
          });
        return Promise.resolve(`${c.service}: ${verb} running…`);
      },
    });
  const loadOlder = async () => {
    if (nextBefore === null) return;
    const page = await getJson<Page<Deployment>>(`${base}/deployments?limit=20&before=${nextBefore}`);
    shown.current = deployments.length + page.items.length;
    setDeployments((list) => [...list, ...page.items]);
    setNextBefore(page.nextBefore);
  };

  return (
    <>
      <p class="crumbs">
        <a href="#/">Overview</a> / {repo.project}
      </p>
      <h1>
        {repo.key} <Badge value={repo.state} />
      </h1>
      <div class="actions" role="group" aria-label="Repository actions">
        <button type="button" class="primary" onClick={deploy} disabled={repo.suspended}>
          Deploy
        </button>
        {repo.suspended ? (
          <button type="button" onClick={() => simple('resume')}>
            Resume
          </button>
        ) : (
          <button type="button" onClick={() => simple('suspend')}>
            Suspend
          </button>
        )}
        {repo.pinnedCommit ? (
          <button type="button" onClick={unpin}>
            Unpin
          </button>
        ) : null}
        {containers ? (
          <button type="button" class="danger" onClick={remove}>
            Remove
          </button>
        ) : null}
      </div>
      <p class="notice" role="status">
        {notice}
      </p>
      {dialog}
      <dl class="facts">
        <dt>Deployed</dt>
        <dd>
          <code>{short(repo.lastDeployedCommit)}</code> {repo.lastCommitSubject ?? ''}{' '}
          <Time at={repo.lastDeployedAt} now={now} />
        </dd>
        <dt>Branch</dt>
        <dd>
          {repo.branch} <span class="muted">{repo.url}</span>
        </dd>
        <dt>Compose project</dt>
        <dd>
          <code>{repo.composeProject}</code> (path <code>{repo.path || '.'}</code>)
        </dd>
        <dt>Containers</dt>
        <dd>
          {repo.containers
            ? `${repo.containers.running}/${repo.containers.total} running, ${repo.containers.unhealthy} unhealthy`
            : '–'}
        </dd>
        <dt>Next poll</dt>
        <dd>{repo.suspended ? 'suspended' : <Time at={repo.nextCheckAt} now={now} />}</dd>
        <dt>Last check</dt>
        <dd>
          <Time at={repo.lastCheckAt} now={now} />
        </dd>
        <dt>State since</dt>
        <dd>
          <Time at={repo.since} now={now} />
        </dd>
        {repo.pinnedCommit ? (
          <>
            <dt>Pinned bad commit</dt>
            <dd>
              <code>{short(repo.pinnedCommit)}</code>
            </dd>
          </>
        ) : null}
        {repo.lastError ? (
          <>
            <dt>Last error</dt>
            <dd class="error">
              {repo.lastError.stage} ({repo.lastError.code}): {repo.lastError.message}
            </dd>
          </>
        ) : null}
      </dl>

      <PlanPanel id={id} />
      <ImagesPanel id={id} repoKey={repo.key} now={now} />

      {liveId !== null || lines.length > 0 ? (
        <section aria-labelledby="live-title">
          <h2 id="live-title">
            Live output{' '}
            <a href={`#/deployment/${liveId}`} class="muted">
              deployment #{liveId}
            </a>
          </h2>
          <LogView text={lines.join('\n')} label="Live deploy output" live />
        </section>
      ) : null}

      {swarm ? (
        <SwarmServices
          services={swarm}
          now={now}
          act={serviceAction}
          logs={(s) =>
            setLogsOf({ path: `${base}/services/${encodeURIComponent(s.service)}/logs`, name: `service ${s.service}` })
          }
        />
      ) : null}
      {swarm && logsOf ? <ContainerLogs container={logsOf} onClose={() => setLogsOf(null)} /> : null}

      {containers !== null && !swarm ? (
        <section aria-labelledby="containers-title">
          <h2 id="containers-title">Containers</h2>
          {containers === undefined ? (
            <p>Loading…</p>
          ) : containers.length === 0 ? (
            <p class="muted">No containers.</p>
          ) : (
            <table class="containers">
              <thead>
                <tr>
                  <th scope="col">Service</th>
                  <th scope="col">State</th>
                  <th scope="col">Health</th>
                  <th scope="col">Image</th>
                  <th scope="col">Started</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                {containers.map((c) => (
                  <tr key={c.id} data-service={c.service}>
                    <td data-label="Service">
                      {c.service} <span class="muted">{c.name}</span>
                    </td>
                    <td data-label="State">
                      <Badge value={c.state} />
                    </td>
                    <td data-label="Health">{c.health ? <Badge value={c.health} /> : '–'}</td>
                    <td data-label="Image">
                      <code>{c.image}</code>
                    </td>
                    <td data-label="Started">
                      <Time at={c.startedAt} now={now} />
                    </td>
                    <td data-label="Actions" class="row-actions">
                      <button type="button" onClick={() => serviceAction(c, 'restart')}>
                        Restart
                      </button>
                      {c.state === 'running' ? (
                        <button type="button" onClick={() => serviceAction(c, 'stop')}>
                          Stop
                        </button>
                      ) : (
                        <button type="button" onClick={() => serviceAction(c, 'start')}>
                          Start
                        </button>
                      )}
                      <button
                        type="button"
                        onClick={() => setLogsOf({ path: `containers/${encodeURIComponent(c.id)}/logs`, name: c.name })}
                        aria-label={`Logs of ${c.name}`}
                      >
                        Logs
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {logsOf ? <ContainerLogs container={logsOf} onClose={() => setLogsOf(null)} /> : null}
        </section>
      ) : null}

      {actions ? (
        <section aria-labelledby="actions-title">
          <h2 id="actions-title">Actions</h2>
          {actions.length === 0 ? (
            <p class="muted">No container actions yet.</p>
          ) : (
            <ul class="action-list">
              {actions.map((a) => (
                <li key={a.id}>
                  <Badge value={a.status} /> {a.action}
                  {a.service ? ` ${a.service}` : ''} <span class="muted">{a.triggeredBy ?? ''}</span>{' '}
                  <Time at={a.startedAt} now={now} />
                  {a.error ? <span class="error"> {a.error}</span> : null}
                </li>
              ))}
            </ul>
          )}
        </section>
      ) : null}

      <section aria-labelledby="timeline-title">
        <h2 id="timeline-title">Deployments</h2>
        {deployments.length === 0 ? <p class="muted">No deployments yet.</p> : null}
        <ol class="timeline">
          {deployments.map((d) => (
            <li key={d.id} data-deployment={d.id}>
              <div class="head">
                <a href={`#/deployment/${d.id}`}>#{d.id}</a> <Badge value={d.status} />{' '}
                <span>
                  {d.trigger}
                  {d.triggeredBy ? ` by ${d.triggeredBy}` : ''}
                </span>{' '}
                <Time at={d.startedAt} now={now} />
              </div>
              <div>
                {d.previousCommit && d.previousCommit !== d.commit ? (
                  <>
                    <code>{short(d.previousCommit)}</code> →{' '}
                  </>
                ) : null}
                <code>{short(d.commit)}</code> {d.commitSubject ?? ''}
                <span class="muted">
                  {' '}
                  · {duration(d.durationMs)}
                  {d.stage ? ` · stage ${d.stage}` : ''}
                  {d.rolledBackTo ? ` · rolled back to ${short(d.rolledBackTo)}` : ''}
                </span>
              </div>
              {d.reason?.summary ? <div class="muted">{d.reason.summary}</div> : null}
              {d.error ? <div class="error">{d.error}</div> : null}
              {d.status === 'success' && d.commit && d.commit !== repo.lastDeployedCommit ? (
                <button
                  type="button"
                  onClick={() => rollback(d)}
                  aria-describedby={`dep-${d.id}`}
                  disabled={repo.suspended}
                >
                  Roll back
                </button>
              ) : null}
              <span id={`dep-${d.id}`} class="visually-hidden">
                to {short(d.commit)} (deployment {d.id})
              </span>
            </li>
          ))}
        </ol>
        {nextBefore !== null ? (
          <button type="button" onClick={() => void loadOlder()}>
            Load older deployments
          </button>
        ) : null}
      </section>
    </>
  );
}
