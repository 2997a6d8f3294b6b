/** @module One deployment (`#/deployment/:id`): its facts and full log, live lines while it runs. */
import { useEffect, useState } from 'preact/hooks';
import type { CommitStatusRecord } from '../src/domain/types.ts';
import { getJson, getText, type Deployment } from './api.ts';
import { Badge, Time, useNow } from './common.tsx';
import { duration, short } from './format.ts';
import { onEvent, onReconnect } from './live.ts';
import { LogView, useLiveLines } from './repo.tsx';
import { PlanTable } from './plan.tsx';

/** The deployment page. */
export function DeploymentPage({ id }: { id: number }) {
  const now = useNow();
  const [d, setD] = useState<Deployment | null>(null);
  const [log, setLog] = useState('');
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const load = () => {
      getJson<Deployment>(`api/deployments/${id}`)
        .then((dep) => {
          setD(dep);
          setError(null);
          return getText(`api/deployments/${id}/logs`).then(setLog);
        })
        .catch((err: unknown) => setError(err instanceof Error ? err.message : String(err)));
    };
    load();
    const offEvent = onEvent((e) => {
      if ((e.type === 'deployment.finished' || e.type === 'deployment.started') && e.deploymentId === id) load();
    });
    const offReconnect = onReconnect(load);
    return () => {
      offEvent();
      offReconnect();
    };
  }, [id]);
  const open = d !== null && (d.status === 'running' || d.status === 'pending');
  const lines = useLiveLines(open ? id : null);

  if (error) {
    return (
      <p class="error" role="alert">
        {error}
      </p>
    );
  }
  if (!d) return <p>Loading…</p>;
  return (
    <>
      <p class="crumbs">
        <a href="#/">Overview</a> / <a href={`#/repo/${d.repositoryId}`}>{d.repoKey}</a>
      </p>
      <h1>
        Deployment #{d.id} <Badge value={d.status} />
      </h1>
      <dl class="facts">
        <dt>Commit</dt>
        <dd>
          {d.previousCommit && d.previousCommit !== d.commit ? <code>{short(d.previousCommit)} → </code> : null}
          <code>{short(d.commit)}</code> {d.commitSubject ?? ''}
        </dd>
        <dt>Trigger</dt>
        <dd>
          {d.trigger}
          {d.triggeredBy ? ` by ${d.triggeredBy}` : ''}
        </dd>
        {d.reason?.summary ? (
          <>
            <dt>Reason</dt>
            <dd>{d.reason.summary}</dd>
          </>
        ) : null}
        <dt>Started</dt>
        <dd>
          <Time at={d.startedAt} now={now} />
        </dd>
        <dt>Duration</dt>
        <dd>{duration(d.durationMs)}</dd>
        <dt>Stage reached</dt>
        <dd>{d.stage ?? '–'}</dd>
        {d.rolledBackTo ? (
          <>
            <dt>Rolled back to</dt>
            <dd>
              <code>{short(d.rolledBackTo)}</code>
            </dd>
          </>
        ) : null}
        {d.error ? (
          <>
            <dt>Error</dt>
            <dd class="error">{d.error}</dd>
          </>
        ) : null}
      </dl>
      {d.plan && d.plan.length > 0 ? (
        <section aria-labelledby="applied-plan-title">
          <h2 id="applied-plan-title">Plan applied</h2>
          <PlanTable plan={{ commit: d.commit ?? '', services: d.plan, noop: d.status === 'skipped' }} />
        </section>
      ) : null}
      {d.commitStatuses && d.commitStatuses.length > 0 ? <CommitStatuses records={d.commitStatuses} now={now} /> : null}
      <section aria-labelledby="log-title">
        <h2 id="log-title">{open ? 'Live output' : 'Log'}</h2>
        {d.logTruncatedBytes > 0 ? (
          <p class="muted">The log was cut: {d.logTruncatedBytes} bytes were dropped.</p>
        ) : null}
        <LogView
          text={open && lines.length > 0 ? `${log}${log && !log.endsWith('\n') ? '\n' : ''}${lines.join('\n')}` : log}
          label={open ? 'Live deploy output' : `Log of deployment ${d.id}`}
          live={open}
        />
      </section>
    </>
  );
}

/** The statuses this deployment posted to its forge: what was sent, and whether the forge took it. */
function CommitStatuses({ records, now }: { records: CommitStatusRecord[]; now: number }) {
  return (
    <section aria-labelledby="statuses-title">
      <h2 id="statuses-title">Commit statuses</h2>
      <table class="containers statuses">
        <thead>
          <tr>
            <th scope="col">State</th>
            <th scope="col">Forge</th>
            <th scope="col">Description</th>
            <th scope="col">Delivery</th>
            <th scope="col">When</th>
          </tr>
        </thead>
        <tbody>
          {records.map((r) => (
            <tr key={`${r.state}-${r.at}`} data-state={r.state} data-result={r.result}>
              <td data-label="State">
                <Badge value={r.state} />
                {r.forgeState !== r.state ? <span class="muted"> ({r.forgeState})</span> : null}
              </td>
              <td data-label="Forge">
                {r.provider} <code>{r.context}</code> <code>{short(r.commit)}</code>
              </td>
              <td data-label="Description">{r.description}</td>
              <td data-label="Delivery">
                <Badge value={r.result} />{' '}
                <span class="muted">
                  {r.attempts} {r.attempts === 1 ? 'request' : 'requests'}
                  {r.httpStatus !== null ? `, HTTP ${r.httpStatus}` : ''}
                </span>
                {r.lastError ? <span class="error"> {r.lastError}</span> : null}
              </td>
              <td data-label="When">
                <Time at={r.at} now={now} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
