/** @module Types of the deploy machine: context, events, effect inputs/outputs. Type-only; clone-safe data. */
import type { AnyActorRef } from 'xstate';
import type { RepoConfig } from '../config/schema.ts';
import type {
  DeployStage,
  DeployTrigger,
  DeploymentReason,
  FinalDeploymentStatus,
  ServicePlan,
} from '../domain/types.ts';
import type { ImageUpdateChange, RunCause } from './reasons.ts';

/** The domain types under the names the machine uses (one definition, in src/domain/types.ts). */
export type { DeployTrigger, DeployStage as Stage };
type DeploymentOutcome = Exclude<FinalDeploymentStatus, 'interrupted'>;

/** What a failed step reports: typed, secret-free. */
export interface StepError {
  stage: DeployStage;
  code: string;
  message: string;
  transient: boolean;
  output?: string;
}

/** The deployment in progress. */
export interface Run {
  deploymentId: number | null;
  trigger: DeployTrigger;
  /** Forced deploys ignore "unchanged" and the pinned commit. */
  forced: boolean;
  /** Commit being deployed (known after checking, or given explicitly for rollbacks). */
  commit: string | null;
  /** Last successful commit when the run started: the rollback target. */
  previousCommit: string | null;
  startedAt: number;
  /** Plaintext files written by decrypting (removed after the deploy unless keep_decrypted). */
  decrypted: string[];
  error: StepError | null;
  /** Error of a failed rollback attempt. */
  rollbackError: StepError | null;
  outcome: DeploymentOutcome | null;
  /** Who asked for it (audit trail, `token:ci`); null or absent for polls and anonymous requests. */
  triggeredBy?: string | null;
  /** Why it started beyond its trigger (webhook delivery, changed config keys, recovery…): its row's reason. */
  cause?: RunCause | null;
  /** The row's reason, as the actor hands the run to notifications (the machine itself never sets or reads it). */
  reason?: DeploymentReason | null;
  /** The plan found nothing to change and the run was not forced: finished `skipped`, compose did not run. */
  skipped?: boolean;
}

interface FollowUp {
  kind: 'check' | 'deploy';
  trigger: DeployTrigger;
  deploymentId: number | null;
  commit: string | null;
  triggeredBy?: string | null;
  cause?: RunCause | null;
}

export interface DeployContext {
  repo: RepoConfig;
  lastDeployedCommit: string | null;
  lastConfigHash: string | null;
  pinnedCommit: string | null;
  suspended: boolean;
  remoteHead: string | null;
  lastCheckAt: number | null;
  nextCheckAt: number | null;
  lastError: StepError | null;
  /** Consecutive transient failures (drives exponential backoff). */
  attempt: number;
  run: Run | null;
  /** Events that arrived while busy, coalesced into one follow-up. */
  followUp: FollowUp | null;
  /** A suspend asked for while busy takes effect at the next idle. */
  suspendRequested: boolean;
  /** A config change that arrived while busy, applied at the next idle. */
  pendingConfig: RepoConfig | null;
}

export interface DeployInput {
  repo: RepoConfig;
  lastDeployedCommit: string | null;
  lastConfigHash: string | null;
  pinnedCommit: string | null;
  suspended: boolean;
  /** Check at start (boot) rather than after one interval. */
  checkOnStart?: boolean;
  /** Wait this long before that first check (spreads the boot checks of many repositories). */
  bootDelayMs?: number;
  /** The latest deployment, when a crash interrupted it: the boot check's run is its recovery. */
  interruptedDeploymentId?: number | null;
}

export type DeployEvent =
  | {
      type: 'repo.check';
      trigger?: DeployTrigger;
      triggeredBy?: string | null;
      /** The webhook delivery that asked (provider, delivery id header). */
      webhook?: { provider: string; deliveryId: string | null };
    }
  | {
      type: 'repo.deploy';
      trigger?: DeployTrigger;
      commit?: string | null;
      triggeredBy?: string | null;
      /** A rollback to this deployment: its recorded images are pinned (exact rollback). */
      rollbackTo?: number | null;
      /** Trigger `image-update`: the services whose tag moved (pulled before `up`, listed in the reason). */
      imageUpdate?: ImageUpdateChange[];
    }
  | { type: 'repo.suspend' }
  | { type: 'repo.resume' }
  | { type: 'config.updated'; repo: RepoConfig }
  /** Clear the pinned (bad) commit, so the next check may deploy it again. */
  | { type: 'repo.unpin' }
  /** The reply of the openDeployment action: the row of an accepted deploy request exists. */
  | {
      type: 'deployment.opened';
      deploymentId: number;
      trigger: DeployTrigger;
      commit: string | null;
      triggeredBy?: string | null;
      cause?: RunCause | null;
    }
  /** The deploy slot actor holds a slot. */
  | { type: 'slot.acquired' }
  /** The repository left the configuration: the actor is stopped right after this event. */
  | { type: 'repo.removed' };

/** What the machine tells whoever sent a deploy request (`actor.on(...)`): the row that answers it, or why not. */
export type DeployEmitted =
  { type: 'deploy.accepted'; deploymentId: number } | { type: 'deploy.rejected'; reason: 'suspended' };

/** Params of the openDeployment action: record an accepted deploy request (and close the queued one it replaces). */
export interface OpenDeploymentParams {
  trigger: DeployTrigger;
  commit: string | null;
  previousCommit: string | null;
  /** A queued deploy whose row this request replaces (it never ran). */
  supersedes: number | null;
  triggeredBy?: string | null;
  cause?: RunCause | null;
  /** A rollback to this deployment: its recorded images are pinned (exact rollback). */
  rollbackTo?: number | null;
}

/** Input of the deploy slot actor: held from the start of a run's pull until the run is finished (or the actor ends). */
export interface SlotIn {
  key: string;
  deploymentId: number;
  owner: AnyActorRef;
}

/** Effect inputs (what the provided actors receive). */
export interface CheckIn {
  repo: RepoConfig;
}
export interface CheckOut {
  commit: string;
}
export interface OpenRunIn {
  repo: RepoConfig;
  run: Run;
}
export interface OpenRunOut {
  deploymentId: number;
}
export interface PullIn {
  repo: RepoConfig;
  deploymentId: number | null;
  commit: string | null;
  /** Deploy mode only: the commit deployed before (null: none), to read the range of new commits after the sync. */
  since?: string | null;
}
export interface PullOut {
  commit: string;
}
export interface DecryptIn {
  repo: RepoConfig;
  deploymentId: number | null;
}
export interface DecryptOut {
  written: string[];
}
export interface ApplyIn {
  repo: RepoConfig;
  deploymentId: number | null;
  commit: string | null;
  /** true in rollingBack (the automatic rollback to the last good commit). */
  rollingBack?: boolean;
}
export interface ApplyOut {
  output: string;
}
export interface VerifyIn {
  repo: RepoConfig;
  deploymentId: number | null;
  /** true in rollingBack (the automatic rollback to the last good commit). */
  rollingBack?: boolean;
}
export interface VerifyOut {
  summary: string;
}
/** Input of the planning step: what applying `commit` would change (per service). */
export interface PlanIn {
  repo: RepoConfig;
  deploymentId: number | null;
  commit: string | null;
  forced: boolean;
}
/** `noop`: every service stays as it is. `services`: the per-service plan (empty when no plan could be made). */
export interface PlanOut {
  noop: boolean;
  services: ServicePlan[];
}
export interface NotifyIn {
  repo: RepoConfig;
  run: Run;
}
export type NotifyOut = unknown;
