/** @module /metrics and createMetrics: names, event-fed counters, scrape-time repository gauges. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createMetrics } from '../../../src/http/metrics.ts';
import { type FakeSupervisor, repoStatus, serve } from './fakes.ts';

const at = '2025-06-28T18:00:00.000Z';

describe('metrics', () => {
  test('GET /metrics (app-owned registry) counts supervisor events and reads states at scrape time', async () => {
    const s = await serve();
    const sup = s.deps.supervisor as FakeSupervisor;
    try {
      sup.emit({ type: 'check', repoKey: 'homelab/dns', result: 'changed', at });
      sup.emit({ type: 'check', repoKey: 'homelab/dns', result: 'unchanged', at });
      sup.emit({ type: 'check', repoKey: 'homelab/dns', result: 'unchanged', at });
      sup.emit({
        type: 'deployment.finished',
        repoKey: 'homelab/dns',
        deploymentId: 1,
        status: 'success',
        stage: null,
        commit: 'a',
        durationMs: 42_000,
        at,
      });
      sup.emit({
        type: 'deployment.finished',
        repoKey: 'homelab/dns',
        deploymentId: 2,
        status: 'failed',
        stage: 'applying',
        commit: 'b',
        durationMs: null,
        at,
      });
      sup.emit({
        type: 'notification',
        repoKey: 'homelab/dns',
        url: 'discord://***@x',
        service: 'discord',
        ok: false,
        at,
      });
      sup.emit({
        type: 'notification',
        repoKey: 'homelab/dns',
        url: 'discord://***@x',
        service: 'discord',
        ok: true,
        at,
      });
      sup.repos[1] = { ...sup.repos[1]!, state: 'applying', busy: true };

      const res = await fetch(`${s.url}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
      const text = await res.text();
      assert.match(text, /^shiparr_checks_total\{result="changed"\} 1$/m);
      assert.match(text, /^shiparr_checks_total\{result="unchanged"\} 2$/m);
      assert.match(text, /^shiparr_deployments_total\{status="success"\} 1$/m);
      assert.match(text, /^shiparr_deployments_total\{status="failed"\} 1$/m);
      assert.match(text, /^shiparr_deploy_duration_seconds_bucket\{le="60",status="success"\} 1$/m);
      assert.match(text, /^shiparr_deploy_duration_seconds_bucket\{le="30",status="success"\} 0$/m);
      assert.match(text, /^shiparr_notification_failures_total\{service="discord"\} 1$/m);
      assert.match(text, /^shiparr_repositories\{state="idle"\} 2$/m);
      assert.match(text, /^shiparr_repositories\{state="applying"\} 1$/m);
      assert.match(text, /^shiparr_repositories\{state="suspended"\} 0$/m);
      assert.match(text, /^shiparr_deployments_in_progress 1$/m);
      assert.match(text, /^process_cpu_user_seconds_total /m);
      assert.match(text, /^nodejs_eventloop_lag_seconds /m);
    } finally {
      await s.close();
    }
  });

  test('a registry passed in deps is served as is', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    metrics.setActorStates([repoStatus({ id: 1, project: 'p', name: 'a', state: 'suspended', suspended: true })]);
    metrics.observe({ type: 'check', repoKey: 'p/a', result: 'error', at });
    const s = await serve({ metrics: metrics.registry });
    try {
      const text = await (await fetch(`${s.url}/metrics`)).text();
      assert.match(text, /^shiparr_checks_total\{result="error"\} 1$/m);
      assert.match(text, /^shiparr_repositories\{state="suspended"\} 1$/m);
      assert.match(text, /^shiparr_repositories_suspended 1$/m);
      assert.doesNotMatch(text, /process_cpu/);
    } finally {
      await s.close();
    }
  });
});
