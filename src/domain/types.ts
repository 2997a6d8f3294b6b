/**
 * @module The domain vocabulary every layer shares: deployments, their status, stage and trigger, verification and
 * notification outcomes, the activity events and the read views of a repository. Type-only; the bottom
 * layer with lib/: anyone may import it, and it imports nothing.
 */

/** Statuses a deployment is created or updated with before it finishes. */
type OpenDeploymentStatus = 'pending' | 'running';
/** Statuses a deployment finishes with. */
export type FinalDeploymentStatus = 'success' | 'failed' | 'rolled_back' | 'interrupted' | 'skipped';
/**
 * Lifecycle of a deployment row. `pending`/`running` are open; the rest are final. `skipped`: the plan said every
 * service stays as it is, so compose did not run (the checked commit still moves forward).
 */
export type DeploymentStatus = OpenDeploymentStatus | FinalDeploymentStatus;

/** Stages of a deployment, as the machine runs them, the store records them and notifications show them. */
export type DeployStage =
  'checking' | 'pulling' | 'decrypting' | 'applying' | 'verifying' | 'rollingBack' | 'notifying';

/** What starts a run of the deploy machine. */
export type DeployTrigger =
  'poll' | 'webhook' | 'api' | 'cli' | 'boot' | 'config' | 'rollback' | 'retry' | 'image-update';
/** What a deployment row records as its trigger: a run's trigger, or a self-update finalised at boot. */
export type DeploymentTrigger = DeployTrigger | 'self-update';

/**
 * Why a deployment happened, stored with it and shown by the API, notifications, the CLI and the UI. Every variant
 * has a `summary` (one human line, never a secret value); the other fields are for programs.
 */
export type DeploymentReason =
  | {
      kind: 'commits';
      summary: string;
      /** The commit deployed before (null: first deployment). */
      from: string | null;
      to: string;
      /** Commits in from..to (null when the history between them is not known, e.g. a shallow checkout). */
      count: number | null;
      /** Subjects of the newest commits in the range (at most 5). */
      subjects: string[];
    }
  | { kind: 'config'; summary: string; keys: string[] }
  | { kind: 'forced'; summary: string; by: string | null; via: 'api' | 'cli' }
  | { kind: 'webhook'; summary: string; provider: string; deliveryId: string | null }
  | {
      kind: 'rollback';
      summary: string;
      from: string | null;
      to: string;
      automatic: boolean;
      by: string | null;
      /** The deployment rolled back to, when one was named. */
      deploymentId: number | null;
    }
  | { kind: 'recovery'; summary: string; interruptedDeploymentId: number | null }
  | { kind: 'retry'; summary: string; attempt: number }
  | { kind: 'boot'; summary: string }
  | { kind: 'self-update'; summary: string }
  | { kind: 'image-update'; summary: string; services: { service: string; from: string | null; to: string }[] };

/** What a plan decides for one service. */
type ServicePlanAction = 'create' | 'recreate' | 'keep' | 'remove' | 'pull';

/** One service in a plan, with why (never a secret value: hashes and key names only). */
export interface ServicePlan {
  service: string;
  action: ServicePlanAction;
  /** Human reasons, e.g. "config hash changed", "env changed (DB_PASSWORD)", "bind-mounted file changed (./conf)". */
  reasons: string[];
}

/** The image one service ran after a successful apply: what an exact rollback pins it back to. */
export interface ServiceImage {
  service: string;
  /** The image reference in the compose file (e.g. `app:latest`). */
  image: string;
  /** The engine's image id (`sha256:…`) of the running container. */
  imageId: string;
  /** A repository digest (`name@sha256:…`) when the image has one (pulled or pushed), else null. */
  digest: string | null;
}

/** One deployment as the store returns it and the API shows it (logs are read separately). */
export interface Deployment {
  id: number;
  repositoryId: number;
  repoKey: string;
  commit: string | null;
  status: DeploymentStatus;
  trigger: DeploymentTrigger;
  /** Last stage reached, or the stage that failed. */
  stage: string | null;
  error: string | null;
  previousCommit: string | null;
  rolledBackTo: string | null;
  startedAt: string;
  finishedAt: string | null;
  durationMs: number | null;
  configHash: string | null;
  /** Per-URL notification results (masked), as given by the notifier. */
  notifications: unknown[] | null;
  selfUpdate: boolean;
  /** Bytes of log text stored. */
  logBytes: number;
  /** Bytes of log text dropped by the cap (0 = the log is complete). */
  logTruncatedBytes: number;
  /**
   * Who asked for it (audit trail): `user:<name>`, `token:<name>` or `webhook:<provider>`; null for polls, boots and
   * anonymous requests.
   */
  triggeredBy: string | null;
  /** Why it happened (null only for rows written before reasons existed). */
  reason: DeploymentReason | null;
  /** The plan's per-service summary recorded when it was applied (null when no plan was made). */
  plan: ServicePlan[] | null;
  /** The images each service ran after this deployment succeeded (null before or when unknown). */
  serviceImages: ServiceImage[] | null;
  /** Subject line of the deployed commit (at most 200 characters); null when unknown. */
  commitSubject: string | null;
  /** The commit statuses posted to the forge for this deployment (`commit_status`), oldest first; null when none. */
  commitStatuses?: CommitStatusRecord[] | null;
}

/** Outcome of the health verification after `compose up`. Expected failures are results, never throws. */
export type VerifyResult =
  { ok: true; summary: string } | { ok: false; code: string; message: string; transient: boolean };

/** Outcome of one notification URL (the URL masked). */
export interface NotifyOutcome {
  url: string;
  service: string;
  ok: boolean;
  error?: string;
  /** Last HTTP status (or SMTP reply code) when the failure came from the server. */
  status?: number;
  attempts?: number;
}

/** What happened, as the actors and the supervisor report it (SSE frames, metrics). `at` is an ISO time. */
export type ActivityEvent =
  | { type: 'state'; repoKey: string; repoId: number; state: string; previous: string | null; at: string }
  | { type: 'check'; repoKey: string; result: 'changed' | 'unchanged' | 'error'; at: string }
  | {
      type: 'deployment.started';
      repoKey: string;
      deploymentId: number;
      commit: string | null;
      trigger: DeployTrigger;
      at: string;
      /** Why it started (the row's reason when the run took its deploy slot). */
      reason?: DeploymentReason | null;
      /** Who asked (see Deployment.triggeredBy); null for polls, boots and anonymous requests. */
      triggeredBy?: string | null;
    }
  | {
      type: 'deployment.finished';
      repoKey: string;
      deploymentId: number;
      status: DeploymentStatus;
      stage: DeployStage | null;
      commit: string | null;
      durationMs: number | null;
      at: string;
    }
  | { type: 'notification'; repoKey: string; url: string; service: string; ok: boolean; at: string }
  | { type: 'config.reloaded'; errors: number; at: string }
  | {
      type: 'deployment.log';
      repoKey: string;
      deploymentId: number;
      stage: DeployStage;
      /** Output lines as the stage's tools produced them (masked), batched. */
      lines: string[];
      at: string;
    }
  | {
      type: 'action';
      repoKey: string;
      actionId: number;
      action: ServiceActionName;
      service: string | null;
      status: ActionStatus;
      triggeredBy: string | null;
      at: string;
    };

/** What a service action does: restart/stop/start one service, remove the project's containers, clear the pin. */
export type ServiceActionName = 'restart' | 'stop' | 'start' | 'remove' | 'unpin';
/** Outcome of a service action. */
type ActionStatus = 'success' | 'failed';

/** One recorded service action (the `actions` table), as the API shows it. */
export interface ActionRecord {
  id: number;
  repositoryId: number;
  action: ServiceActionName;
  /** The compose service acted on; null for project-wide actions (remove, unpin). */
  service: string | null;
  status: ActionStatus;
  /** Why it failed (masked); null on success. */
  error: string | null;
  /** The audit principal (`user:<name>`, `token:<name>`), null for anonymous requests. */
  triggeredBy: string | null;
  startedAt: string;
  finishedAt: string;
}

/** A new action row (the store stamps nothing: both times come from the caller). */
export interface CreateActionInput {
  repoKey: string;
  action: ServiceActionName;
  service: string | null;
  status: ActionStatus;
  error: string | null;
  triggeredBy: string | null;
  startedAt: string;
  finishedAt: string;
}

/** Containers of a repository's compose project, counted (RepoStatus.containers). */
export interface ContainerCounts {
  total: number;
  running: number;
  unhealthy: number;
}

/** One container of a repository's compose project, as the API lists it. */
export interface ContainerInfo {
  id: string;
  name: string;
  service: string;
  /** Engine state: running, exited, paused, restarting, created, dead. */
  state: string;
  /** healthy, unhealthy or starting; null without a healthcheck. */
  health: string | null;
  image: string;
  /** ISO time the container last started; null if it never did. */
  startedAt: string | null;
}

/** The activity events a repository's actor reports; the supervisor adds `state` and `config.reloaded`. */
export type RepoActivity = Extract<
  ActivityEvent,
  { type: 'check' | 'deployment.started' | 'deployment.finished' | 'notification' | 'deployment.log' }
>;

/** One problem in one project file: file, key path (dot/bracket notation) and a human reason. */
export interface ConfigIssue {
  file: string;
  path: string;
  message: string;
}

/** Config + live actor state of one repository. */
export interface RepoStatus {
  id: number;
  key: string;
  project: string;
  name: string;
  url: string;
  branch: string;
  path: string;
  composeProject: string;
  checkInterval: number;
  active: boolean;
  /** Deploy machine state: idle|checking|pulling|decrypting|applying|verifying|rollingBack|notifying|suspended|backoff|failed|stopped */
  state: string;
  /** ISO time the state was entered. */
  since: string;
  busy: boolean;
  currentDeploymentId: number | null;
  lastDeployedCommit: string | null;
  lastDeployedAt: string | null;
  lastCheckAt: string | null;
  nextCheckAt: string | null;
  lastError: { stage: string; code: string; message: string } | null;
  pinnedCommit: string | null;
  suspended: boolean;
  attempt: number;
  restarts: number;
  /** Containers of the compose project (one cached engine list for all projects); null when the engine is unreachable. */
  containers: ContainerCounts | null;
  /** Subject line of the last deployed commit, when recorded. */
  lastCommitSubject: string | null;
}

/** One project as the read view shows it. */
export interface ProjectInfo {
  name: string;
  description: string | null;
  file: string | null;
  active: boolean;
  error: ConfigIssue[] | null;
  repositories: number;
}

/** What a config reload did, as repository keys. */
export interface ReloadResult {
  errors: ConfigIssue[];
  added: string[];
  removed: string[];
  changed: string[];
}

// ---- Writing a deployment (the repository actor writes, the store persists) ----------------------------------

/** A new deployment row. */
export interface CreateDeploymentInput {
  repoKey: string;
  trigger: DeploymentTrigger;
  status: OpenDeploymentStatus;
  commit?: string | null;
  previousCommit?: string | null;
  configHash?: string | null;
  selfUpdate?: boolean;
  /** The principal who asked (see Deployment.triggeredBy). */
  triggeredBy?: string | null;
  reason?: DeploymentReason | null;
}

/** Changes to an open deployment; `undefined` fields are left as they are. */
export interface DeploymentPatch {
  status?: OpenDeploymentStatus;
  stage?: string | null;
  commit?: string | null;
  error?: string | null;
  previousCommit?: string | null;
  configHash?: string | null;
  selfUpdate?: boolean;
  reason?: DeploymentReason | null;
  plan?: ServicePlan[] | null;
  serviceImages?: ServiceImage[] | null;
  /** Subject line of the checked-out commit (capped at 200 characters by the store). */
  commitSubject?: string | null;
}

export interface FinishDeploymentInput {
  status: FinalDeploymentStatus;
  /** `undefined` keeps the stored stage. */
  stage?: string | null;
  error?: string | null;
  rolledBackTo?: string | null;
  /** `undefined`/null keeps the stored commit. */
  commit?: string | null;
  notifications?: unknown[] | null;
}

/**
 * A plaintext file a deployment wrote, identified without its contents: the same path, device, inode, size and
 * modification time (ns) mean the file on disk is still the one Shiparr wrote (a rewrite by anyone else, git
 * included, gives a new inode or mtime). Numbers are decimal strings (64-bit values).
 */
export interface PlaintextFile {
  path: string;
  dev: string;
  ino: string;
  size: string;
  mtimeNs: string;
}

/** A commit status as Shiparr posts it; each forge spells these states its own way (see src/forge/). */
export type CommitStatusState = 'pending' | 'success' | 'failure' | 'error';

/**
 * The delivery of one commit status to the forge, as recorded on its deployment. `result`: `queued` (waiting for its
 * turn), `retrying` (a transient failure, another try is scheduled), `delivered`, `refused` (a 4xx other than 429:
 * not retried), `gave-up` (too many tries or too long), `superseded` (a newer state for the same commit replaced it
 * before it was delivered) or `dropped` (queue full, or Shiparr stopped first).
 */
export interface CommitStatusRecord {
  /** The state Shiparr posted (`pending`, `success`, `failure`, `error`). */
  state: CommitStatusState;
  /** The provider's own name of that state (e.g. GitLab `running`, `failed`). */
  forgeState: string;
  provider: 'github' | 'gitea' | 'gitlab';
  context: string;
  /** The full commit sha the status is for. */
  commit: string;
  description: string;
  result: 'queued' | 'retrying' | 'delivered' | 'refused' | 'gave-up' | 'superseded' | 'dropped';
  /** true once the forge accepted it. */
  ok: boolean;
  /** HTTP requests made so far. */
  attempts: number;
  /** The last HTTP status the forge answered, when it answered. */
  httpStatus: number | null;
  /** Why the last try failed (masked), or null. */
  lastError: string | null;
  /** ISO time of the last change of this record. */
  at: string;
}

// ---- The image watch (image_updates) ---------------------------------------------------------------------------

/** Where a watched service's image stands: its tag names the digest it runs, another one, or it was not checked. */
export type ImageWatchStatus = 'up-to-date' | 'update-available' | 'error' | 'skipped';

/**
 * One service of a repository as the image watch last saw it (persisted per repository and service, shown by
 * `GET /api/repositories/:id/images`). Digests are `sha256:…`; no field ever holds a credential.
 */
export interface ImageWatchEntry {
  service: string;
  /** The image reference the service runs (as in the compose file: `127.0.0.1:5000/app:latest`). */
  image: string;
  /** The repository digest the running image was pulled or pushed with for that registry repository. */
  localDigest: string | null;
  /** The digest the tag names in the registry at the last check. */
  remoteDigest: string | null;
  status: ImageWatchStatus;
  /** Why it was skipped, what the error was (naming the registry), or a note on an update (null when none). */
  reason: string | null;
  /** The registry error code of a failed check (`REGISTRY_AUTH`, …). */
  errorCode: string | null;
  /** ISO time of the last check of this service. */
  checkedAt: string | null;
  /** The remote digest last notified (notify: once per new digest, across restarts). */
  notifiedDigest: string | null;
  /** The error last notified (failure notifications: once per distinct error). */
  notifiedError: string | null;
  /** The remote digest an image-update deploy was last asked for (auto: a digest that failed is not retried). */
  deployedDigest: string | null;
  /** A newer tag within the service's `image_policy` found at the last check (null when none or no policy). */
  newerTag: string | null;
  /** The newer tag last acted on (notified, or written back), once per tag across restarts. */
  notifiedTag: string | null;
}

/** One task of a stack service as the API lists it. */
export interface SwarmTask {
  id: string;
  /** Replica slot (replicated mode), null for global services. */
  slot: number | null;
  /** Node host name (its id when the node list is not readable). */
  node: string;
  /** The task's state: new, pending, assigned, preparing, starting, running, complete, failed, shutdown, rejected… */
  state: string;
  desiredState: string;
  /** Swarm's error text for a failed or rejected task. */
  error: string | null;
  image: string;
  /** Id of the task's container, once it has one. */
  containerId: string | null;
  /** ISO time of the task's last state change. */
  since: string | null;
}

/** One service of a stack as the API lists it. */
export interface SwarmService {
  id: string;
  /** Full name (`<stack>_<service>`). */
  name: string;
  /** The compose service name (the name without the stack prefix). */
  service: string;
  mode: 'replicated' | 'global' | 'job';
  /** Desired replicas (replicated mode), null otherwise. */
  desired: number | null;
  /** Tasks of the service in state running. */
  running: number;
  image: string;
  /** `UpdateStatus.State`, null when the service has had no update. */
  update: string | null;
  /** Replicas a stop recorded (a service label), null when not stopped by Shiparr. */
  stoppedReplicas: number | null;
  /** Tasks that are meant to run, or did not finish shutting down, newest first. */
  tasks: SwarmTask[];
}
