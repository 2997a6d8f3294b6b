/**
 * @module Row and input types of the SQLite store (type-only; camelCase mirrors of the snake_case columns). The
 * deployment row itself is the domain `Deployment`.
 */
import type { Deployment, PlaintextFile } from '../domain/types.ts';

/** One project file as last seen by `syncConfig`. */
export interface ProjectRow {
  id: number;
  name: string;
  description: string | null;
  /** Path of the project's config file. */
  file: string;
  /** false once the project left the configuration (rows are kept for history). */
  active: boolean;
  createdAt: string;
  updatedAt: string;
}

/** One repository: its config as last synced plus the persisted domain state of its actor. */
export interface RepositoryRow {
  id: number;
  projectId: number;
  /** Project name (joined). */
  project: string;
  name: string;
  /** `<project>/<name>`. */
  key: string;
  url: string;
  branch: string;
  path: string;
  localPath: string;
  checkInterval: number;
  active: boolean;
  /** Last SUCCESSFULLY deployed commit. */
  lastCommit: string | null;
  lastDeployedAt: string | null;
  /** Commit that failed and must not be redeployed automatically. */
  pinnedCommit: string | null;
  /** null = follow the config; true/false = explicit API choice that survives restarts. */
  suspended: boolean | null;
  lastCheckedAt: string | null;
  /** Remote branch head at the last check. */
  lastSeenCommit: string | null;
  /** Config hash of the last successful deploy. */
  configHash: string | null;
  /** Notifier bookkeeping (JSON value, opaque to the store). */
  notifyState: unknown;
  createdAt: string;
  updatedAt: string;
  /** Subject line of `lastCommit`, from its newest successful deployment (null when not recorded). */
  lastCommitSubject: string | null;
}

/** One repository as `syncConfig` takes it (a `RepoConfig` fits). */
export interface SyncRepositoryInput {
  /** Must equal `<project name>/<name>`. */
  key: string;
  name: string;
  url: string;
  branch: string;
  path: string;
  localPath: string;
  checkInterval: number;
}

/** One project as `syncConfig` takes it (a `ProjectConfig` fits). */
export interface SyncProjectInput {
  name: string;
  description?: string | null;
  file: string;
  repositories: readonly SyncRepositoryInput[];
}

/** What `syncConfig` changed, as repository keys. */
export interface SyncResult {
  /** New repositories and reactivated ones. */
  added: string[];
  /** Repositories marked inactive (left the config). */
  removed: string[];
  /** Active repositories whose stored config columns (url, branch, path…) changed. */
  changed: string[];
}

/** Persisted actor state; `undefined` fields are left as they are, `null` clears. */
export interface RepositoryStatePatch {
  lastCommit?: string | null;
  lastDeployedAt?: string | null;
  pinnedCommit?: string | null;
  suspended?: boolean | null;
  lastCheckedAt?: string | null;
  lastSeenCommit?: string | null;
  configHash?: string | null;
  /** Any JSON-serialisable value; null clears. */
  notifyState?: unknown;
}

export interface ListDeploymentsOptions {
  /** 1..100, default 20. */
  limit?: number;
  /** Only deployments with an id below this one (the previous page's `nextBefore`). */
  before?: number;
}

export interface DeploymentPage {
  /** Newest first. */
  items: Deployment[];
  /** Pass as `before` for the next page; null when this is the last page. */
  nextBefore: number | null;
}

/** A finished deployment whose plaintext files may still be on disk (see `Store.pendingPlaintext`). */
export interface PendingPlaintext {
  deploymentId: number;
  repoKey: string;
  files: PlaintextFile[];
}

/** What one `Store.pruneHistory` pass removed. */
export interface PruneResult {
  /** Deployment rows deleted (with their logs). */
  deleted: number;
  /** Transactions it took (one per batch). */
  batches: number;
}
