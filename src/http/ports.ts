/**
 * @module The narrow ports the HTTP layer talks through. The supervisor, the store and the
 * Docker client implement them; the HTTP layer never imports those modules, only these types
 * and the domain types they carry (src/domain/types.ts).
 */
import type { Readable } from 'node:stream';
import type { Registry } from 'prom-client';
import type {
  ActionRecord,
  ActivityEvent,
  ConfigIssue,
  ContainerInfo,
  Deployment,
  ImageWatchEntry,
  ProjectInfo,
  ReloadResult,
  RepoStatus,
  ServicePlan,
  SwarmService,
} from '../domain/types.ts';
import type { Logger } from '../logger.ts';

export interface SupervisorPort {
  list(): RepoStatus[];
  /** Numeric id or "<project>/<repo>". */
  get(idOrKey: number | string): RepoStatus | undefined;
  projects(): ProjectInfo[];
  /** false if unknown/suspended. `triggeredBy` names who asked (audit trail of a deployment the check starts). */
  check(
    key: string,
    trigger: 'webhook' | 'api',
    opts?: { triggeredBy?: string; webhook?: { provider: string; deliveryId: string | null } },
  ): boolean;
  /** Throws ConflictError if suspended. `triggeredBy`: the principal recorded on the deployment (`token:ci`). */
  deploy(key: string, opts: { trigger: 'api'; commit?: string; triggeredBy?: string }): { deploymentId: number };
  /** Resolves when finished (or with the current row at timeout). */
  waitForDeployment(id: number, timeoutMs: number): Promise<Deployment | undefined>;
  /**
   * Throws ConflictError when there is no previous success or `deploymentId` did not succeed, NotFoundError when
   * `deploymentId` is not a deployment of this repository.
   */
  rollback(
    key: string,
    opts: { commit?: string; deploymentId?: number; triggeredBy?: string },
  ): { deploymentId: number };
  suspend(key: string, opts?: { triggeredBy?: string }): RepoStatus;
  resume(key: string, opts?: { triggeredBy?: string }): RepoStatus;
  reload(): Promise<ReloadResult>;
  /** url normalised. */
  webhookTargets(): { key: string; url: string; branch: string; webhookSecret?: string }[];
  subscribe(listener: (e: ActivityEvent) => void): () => void;
}

/** What deploying a commit would change, per service (GET /api/repositories/:id/plan). */
export interface PlanReport {
  commit: string;
  services: ServicePlan[];
  /** Every service `keep`: a deploy of this commit would be skipped (unless forced). */
  noop: boolean;
}
/** A plan, or why none could be made: 404 unknown repository, 409 commit/config/secrets problem, 502 git or engine. */
export type PlanOutcome =
  { ok: true; plan: PlanReport } | { ok: false; status: 404 | 409 | 502; code: string; message: string };

/** Plans in a scratch directory (never the live checkout or the running stack). */
export interface PlanPort {
  /** `commit`: full or abbreviated sha; default the remote head of the branch. */
  plan(key: string, opts: { commit?: string }): Promise<PlanOutcome>;
}

export interface HistoryReader {
  getDeployment(id: number): Deployment | undefined;
  getDeploymentLogs(id: number): string | undefined;
  listDeployments(
    repoId: number,
    q: { limit: number; before?: number },
  ): { items: Deployment[]; nextBefore: number | null };
  /** The newest deployment of each repository of a project, keyed by repository id (never deployed: no entry). */
  latestDeployments(project: string): ReadonlyMap<number, DeploymentHead>;
}

/** The part of a deployment the widgets show. */
export type DeploymentHead = Pick<Deployment, 'id' | 'repositoryId' | 'status' | 'commit' | 'startedAt' | 'finishedAt'>;

/** `null` → the container is unknown or not part of a managed compose project (404). */
export interface ContainerLogReader {
  logs(containerId: string, q: { tail: number; since?: number }): Promise<string | null>;
  /** The log as produced until `signal` aborts or the container stops (`?follow=1`); without it follow is 503. */
  follow?(containerId: string, q: { tail: number; since?: number }, signal: AbortSignal): Promise<Readable | null>;
}

/** A service action the API can ask for (unpin has its own method: it is the actor's, not the engine's). */
export type EngineAction = 'restart' | 'stop' | 'start' | 'remove';

/**
 * The repositories' containers and the service actions on them. `busy`: a deploy of the repository runs (409);
 * `unknown-service`: the service has no container in the project (404); `refused`: the action cannot be done on
 * this service (409 with the message, e.g. starting a swarm service whose replica count before the stop is unknown).
 */
export interface ServicePort {
  containers(repoKey: string): Promise<ContainerInfo[]>;
  act(
    repoKey: string,
    action: EngineAction,
    service: string | null,
    opts: { triggeredBy?: string },
  ): Promise<
    | { ok: true; action: ActionRecord }
    | { ok: false; reason: 'busy' | 'unknown-service' }
    | { ok: false; reason: 'refused'; message: string }
  >;
  unpin(repoKey: string, opts: { triggeredBy?: string }): ActionRecord;
  /** The services and tasks of a `mode: swarm` repository's stack; null for a compose repository. */
  stackServices?(repoKey: string): Promise<SwarmService[] | null>;
  /**
   * Logs of one service of a swarm repository's stack (all its tasks), as text, or as a stream until `signal` aborts
   * when `follow`; null when the repository is not a swarm one or the stack has no such service.
   */
  serviceLogs?(
    repoKey: string,
    service: string,
    q: { tail: number; since?: number },
    follow: AbortSignal | null,
  ): Promise<string | Readable | null>;
  listActions(
    repoId: number,
    q: { limit: number; before?: number },
  ): { items: ActionRecord[]; nextBefore: number | null };
}

/** One Docker engine the repositories deploy to, as the health report shows it. */
export interface EngineStatus {
  /** The endpoint without credentials ("default" for the process's own engine). */
  host: string;
  ok: boolean;
  /** Server version when reachable. */
  version: string | null;
  error?: string;
  /** How many repositories deploy to it. */
  repositories: number;
  /** Secret-free identity of the engine settings: tells engines on the same endpoint apart (e.g. other TLS files). */
  id?: string;
}

export interface HealthReport {
  status: 'ok' | 'degraded';
  db: { ok: boolean; error?: string };
  docker: { ok: boolean; error?: string };
  /** Every engine the repositories use (one down makes the status degraded). */
  engines?: EngineStatus[];
  config: { ok: boolean; errors: ConfigIssue[] };
  version: string;
  uptimeSeconds: number;
}

export interface HttpDeps {
  supervisor: SupervisorPort;
  history: HistoryReader;
  containers: ContainerLogReader;
  /** Containers and service actions (the web UI); without it those routes answer 503. */
  services?: ServicePort;
  health(): Promise<HealthReport>;
  log: Logger;
  auth: {
    /** Basic Auth; the older switch, used when `mode` is not given. */
    enabled: boolean;
    /** basic, forward (user header from a trusted proxy) or none. Default: basic when `enabled`, else none. */
    mode?: 'basic' | 'forward' | 'none';
    username: string;
    password?: string;
    /** Serve the Dashy widget routes without Basic Auth (browsers cannot send credentials cross-origin). Default false. */
    publicWidgets?: boolean;
    /** Forward mode: the header holding the user name (default Remote-User). */
    forwardHeader?: string;
    /** Forward mode: addresses or CIDR blocks of the proxies allowed to set that header. */
    trustedProxies?: string[];
    /** API tokens accepted as `Authorization: Bearer …` in every mode; `name` is what the audit trail shows. */
    tokens?: { name: string; token: string }[];
  };
  /**
   * Host names the app answers to in auth mode none (DNS-rebinding guard; `*` = any). Default: localhost, 127.0.0.1,
   * ::1 and this machine's host name.
   */
  allowedHosts?: string[];
  webhookSecret?: string;
  /** prom-client registry created by createMetrics(); when omitted the app creates and wires its own. */
  metrics?: Registry;
  /** Milliseconds between SSE heartbeat comments (default 15 000). */
  sseHeartbeatMs?: number;
  /** Aborting ends every open SSE stream (shutdown); `closeEventStreams(app)` does the same. */
  signal?: AbortSignal;
  /** Abuse limits (README "Service settings"); each omitted value takes its default. */
  limits?: Partial<HttpLimits>;
  /** Plans (GET /api/repositories/:id/plan); without it that route answers 503. */
  plans?: PlanPort;
  /** The image watch (GET /api/repositories/:id/images, POST …/images/check); without it those routes answer 503. */
  images?: ImageWatchPort;
}

/** The image watch of the repositories (`image_updates`). */
export interface ImageWatchPort {
  /** The repository's image watch settings, or null when `image_updates` is off. */
  settings(repoKey: string): { mode: 'notify' | 'auto'; interval: number } | null;
  /** What the last checks found, per service. */
  entries(repoKey: string): ImageWatchEntry[];
  /** Starts a check now (in the background). */
  checkNow(repoKey: string): { result: 'started' | 'not-watched' | 'suspended' };
}

/** Abuse limits of the HTTP app. */
interface HttpLimits {
  /** 401 answers one client address may receive within 60 s before it is blocked (SHIPARR_AUTH_MAX_FAILURES). */
  authMaxFailures: number;
  /** Seconds a blocked address is answered 429 (SHIPARR_AUTH_BLOCK_SECONDS). */
  authBlockSeconds: number;
  /** Open /api/events streams at most; beyond → 503 (SHIPARR_MAX_SSE_CLIENTS). */
  maxSseClients: number;
  /** Webhook deliveries handled at once at most; beyond → 503 (SHIPARR_MAX_WEBHOOKS_IN_FLIGHT). */
  maxWebhooksInFlight: number;
}
