/**
 * @module The plan of a repository on its page: what a deploy of the branch head (or a given commit) would change,
 * per service, with the reasons, from `GET api/repositories/:id/plan`. Planning runs in a scratch directory on the
 * server; the running stack and the live checkout are never touched.
 */
import { useState } from 'preact/hooks';
import type { ServicePlan } from '../src/domain/types.ts';
import { getJson, repoPath } from './api.ts';

/** The answer of the plan endpoint. */
interface PlanReport {
  commit: string;
  services: ServicePlan[];
  noop: boolean;
}

/** A "Plan" button and, once asked, the per-service table (or the reason no plan could be made). */
export function PlanPanel({ id }: { id: number }) {
  const [commit, setCommit] = useState('');
  const [state, setState] = useState<
    { kind: 'idle' } | { kind: 'busy' } | { kind: 'done'; plan: PlanReport } | { kind: 'error'; message: string }
  >({ kind: 'idle' });
  const run = async (e: Event) => {
    e.preventDefault();
    setState({ kind: 'busy' });
    const sha = commit.trim();
    try {
      const plan = await getJson<PlanReport>(`${repoPath(id)}/plan${sha ? `?commit=${encodeURIComponent(sha)}` : ''}`);
      setState({ kind: 'done', plan });
    } catch (err) {
      setState({ kind: 'error', message: err instanceof Error ? err.message : String(err) });
    }
  };
  return (
    <section aria-labelledby="plan-title">
      <h2 id="plan-title">Plan</h2>
      <form class="plan-form" onSubmit={run}>
        <label for="plan-commit">Commit (empty: branch head)</label>
        <input
          id="plan-commit"
          value={commit}
          onInput={(e) => setCommit((e.target as HTMLInputElement).value)}
          placeholder="sha"
          autocomplete="off"
          spellcheck={false}
        />
        <button type="submit" disabled={state.kind === 'busy'}>
          Plan
        </button>
      </form>
      <div role="status" aria-live="polite">
        {state.kind === 'busy' ? <p>Planning…</p> : null}
        {state.kind === 'error' ? <p class="error">No plan: {state.message}</p> : null}
        {state.kind === 'done' ? <PlanTable plan={state.plan} /> : null}
      </div>
    </section>
  );
}

/** The per-service table of one plan. */
export function PlanTable({ plan }: { plan: PlanReport }) {
  return (
    <>
      <p>
        {plan.commit ? (
          <>
            Commit <code>{plan.commit.slice(0, 7)}</code>:{' '}
          </>
        ) : null}
        {plan.noop ? 'nothing to change (a deploy would be skipped unless forced).' : 'a deploy would change this:'}
      </p>
      <table class="plan">
        <thead>
          <tr>
            <th scope="col">Service</th>
            <th scope="col">Action</th>
            <th scope="col">Why</th>
          </tr>
        </thead>
        <tbody>
          {plan.services.map((s) => (
            <tr key={s.service} data-service={s.service} data-action={s.action}>
              <td>{s.service}</td>
              <td>{s.action}</td>
              <td>{s.reasons.join('; ') || '–'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
