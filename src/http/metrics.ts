/**
 * @module Prometheus metrics (prom-client). Counters are fed from supervisor events (`observe`); the per-state
 * repository gauge is filled at scrape time from the live list, so it can never drift from the actors.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ActivityEvent, RepoStatus } from '../domain/types.ts';
import type { EngineStatus } from './ports.ts';

/** Every deploy machine state, so each series exists (as 0) from the first scrape on. */
const REPO_STATES = [
  'idle',
  'checking',
  'pulling',
  'decrypting',
  'applying',
  'verifying',
  'rollingBack',
  'notifying',
  'suspended',
  'backoff',
  'failed',
  'stopped',
] as const;

export interface Metrics {
  registry: Registry;
  /** Feed one supervisor event (subscribe it: `supervisor.subscribe(metrics.observe)`). */
  observe(e: ActivityEvent): void;
  /** Set the repository gauges from a list (called at scrape time when `repositories` was given). */
  setActorStates(list: RepoStatus[]): void;
}

export interface MetricsOptions {
  /** Live repository list read at each scrape (e.g. `() => supervisor.list()`). */
  repositories?: () => RepoStatus[];
  /** The engines the repositories use, pinged at scrape time (`shiparr_engine_up`, `shiparr_engine_info`). */
  engines?: () => Promise<EngineStatus[]>;
  /** Process default metrics (CPU, memory, event loop, GC). Default true. */
  defaultMetrics?: boolean;
}

/** Creates a registry with Shiparr's metrics (and the process defaults). */
export function createMetrics(opts: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });

  const checks = new Counter({
    name: 'shiparr_checks_total',
    help: 'Remote checks by result (changed, unchanged, error).',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const deployments = new Counter({
    name: 'shiparr_deployments_total',
    help: 'Finished deployments by final status.',
    labelNames: ['status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'shiparr_deploy_duration_seconds',
    help: 'Duration of finished deployments in seconds, by final status.',
    labelNames: ['status'] as const,
    buckets: [1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
    registers: [registry],
  });
  const notificationFailures = new Counter({
    name: 'shiparr_notification_failures_total',
    help: 'Notifications that could not be delivered, by service.',
    labelNames: ['service'] as const,
    registers: [registry],
  });
  const repositories = new Gauge({
    name: 'shiparr_repositories',
    help: 'Repositories by deploy machine state.',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      if (opts.repositories) setActorStates(opts.repositories());
    },
  });
  const inProgress = new Gauge({
    name: 'shiparr_deployments_in_progress',
    help: 'Repositories currently running a deployment (the deploy queue in flight).',
    registers: [registry],
  });
  const suspended = new Gauge({
    name: 'shiparr_repositories_suspended',
    help: 'Suspended repositories.',
    registers: [registry],
  });
  const restarts = new Gauge({
    name: 'shiparr_actor_restarts',
    help: 'Supervisor restarts of repository actors, summed over repositories.',
    registers: [registry],
  });

  // Both engine gauges are filled by one scrape-time ping round (the first collect fetches, the second reuses it).
  let engineScrape: Promise<EngineStatus[]> | null = null;
  const scrapeEngines = (): Promise<EngineStatus[]> => {
    if (!opts.engines) return Promise.resolve([]);
    engineScrape ??= opts.engines().finally(() => setTimeout(() => (engineScrape = null), 1_000).unref());
    return engineScrape;
  };
  const engineUp = new Gauge({
    name: 'shiparr_engine_up',
    help: 'Docker engine reachable (1) or not (0), by engine (endpoint without credentials; "#<id>" when settings differ).',
    labelNames: ['engine'] as const,
    registers: [registry],
    async collect() {
      const list = await scrapeEngines();
      this.reset();
      for (const e of list) this.set({ engine: engineLabel(e, list) }, e.ok ? 1 : 0);
    },
  });
  const engineInfo = new Gauge({
    name: 'shiparr_engine_info',
    help: 'Docker engine server version (always 1), by reachable engine.',
    labelNames: ['engine', 'version'] as const,
    registers: [registry],
    async collect() {
      const list = await scrapeEngines();
      this.reset();
      for (const e of list) if (e.version) this.set({ engine: engineLabel(e, list), version: e.version }, 1);
    },
  });
  void engineUp;
  void engineInfo;

  function setActorStates(list: RepoStatus[]): void {
    repositories.reset();
    for (const s of REPO_STATES) repositories.set({ state: s }, 0);
    let busy = 0;
    let paused = 0;
    let restarted = 0;
    for (const r of list) {
      repositories.inc({ state: r.state });
      if (r.busy) busy += 1;
      if (r.suspended) paused += 1;
      restarted += r.restarts;
    }
    inProgress.set(busy);
    suspended.set(paused);
    restarts.set(restarted);
  }

  function observe(e: ActivityEvent): void {
    switch (e.type) {
      case 'check':
        checks.inc({ result: e.result });
        break;
      case 'deployment.finished':
        deployments.inc({ status: e.status });
        if (e.durationMs !== null && Number.isFinite(e.durationMs) && e.durationMs >= 0) {
          duration.observe({ status: e.status }, e.durationMs / 1000);
        }
        break;
      case 'notification':
        if (!e.ok) notificationFailures.inc({ service: e.service });
        break;
      default:
        break;
    }
  }

  setActorStates([]);
  return { registry, observe, setActorStates };
}

/**
 * The `engine` label of an engine: its endpoint without credentials, plus `#<id>` (a short hash of its settings, see
 * EngineStatus.id) when another engine of the list has the same endpoint with other settings, e.g. other TLS files
 * (the same endpoint through a context and through docker_host is one label).
 */
function engineLabel(e: EngineStatus, list: readonly EngineStatus[]): string {
  const shared = list.some((o) => o.host === e.host && o.id !== e.id);
  return shared && e.id ? `${e.host}#${e.id}` : e.host;
}
