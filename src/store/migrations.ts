/**
 * @module Schema migrations keyed by `PRAGMA user_version`. Migration N (1-based) brings the schema from
 * version N-1 to N. Append new migrations; never edit a released one (databases in the field already ran it).
 */
import type Database from 'better-sqlite3';
import { StoreError } from './errors.ts';

/**
 * Ordered SQL migrations. Each runs in its own IMMEDIATE transaction together with the `user_version` bump,
 * so a crash mid-migration leaves the previous version intact.
 *
 * Design notes (v1):
 * - Rows are never deleted: projects/repositories leaving the config become `active = 0`, so history stays
 *   attached to them. Hence `ON DELETE RESTRICT`.
 * - Timestamps are ISO-8601 UTC strings (`Date#toISOString`), which sort lexically.
 * - `status` has a CHECK (a closed set); `trigger` is validated in code so a new trigger needs no table rebuild.
 * - `logs_truncated` counts bytes dropped by the log cap (see log-cap.ts).
 */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE projects (
    id          INTEGER PRIMARY KEY,
    name        TEXT    NOT NULL UNIQUE,
    description TEXT,
    file        TEXT    NOT NULL,
    active      INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at  TEXT    NOT NULL,
    updated_at  TEXT    NOT NULL
  );

  CREATE TABLE repositories (
    id               INTEGER PRIMARY KEY,
    project_id       INTEGER NOT NULL REFERENCES projects (id) ON DELETE RESTRICT,
    name             TEXT    NOT NULL,
    key              TEXT    NOT NULL UNIQUE,
    url              TEXT    NOT NULL,
    branch           TEXT    NOT NULL,
    path             TEXT    NOT NULL,
    local_path       TEXT    NOT NULL,
    check_interval   INTEGER NOT NULL,
    active           INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    last_commit      TEXT,
    last_deployed_at TEXT,
    pinned_commit    TEXT,
    suspended        INTEGER CHECK (suspended IN (0, 1)),
    last_checked_at  TEXT,
    last_seen_commit TEXT,
    config_hash      TEXT,
    notify_state     TEXT,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL
  );
  CREATE INDEX repositories_project ON repositories (project_id);

  CREATE TABLE deployments (
    id              INTEGER PRIMARY KEY,
    repository_id   INTEGER NOT NULL REFERENCES repositories (id) ON DELETE RESTRICT,
    commit_hash     TEXT,
    status          TEXT    NOT NULL
                    CHECK (status IN ('pending', 'running', 'success', 'failed', 'rolled_back', 'interrupted')),
    "trigger"       TEXT    NOT NULL,
    stage           TEXT,
    error           TEXT,
    previous_commit TEXT,
    rolled_back_to  TEXT,
    started_at      TEXT    NOT NULL,
    finished_at     TEXT,
    duration_ms     INTEGER,
    config_hash     TEXT,
    logs            TEXT    NOT NULL DEFAULT '',
    logs_truncated  INTEGER NOT NULL DEFAULT 0,
    notifications   TEXT,
    self_update     INTEGER NOT NULL DEFAULT 0 CHECK (self_update IN (0, 1))
  );
  CREATE INDEX deployments_repository_id ON deployments (repository_id, id DESC);
  CREATE INDEX deployments_status ON deployments (status);
  `,
  // 2: the principal who asked for a deployment (audit trail); null for polls, boots and older rows.
  `ALTER TABLE deployments ADD COLUMN triggered_by TEXT;`,
  // 3: plaintext files a deployment wrote (JSON list of {path, dev, ino, size, mtimeNs}, never contents) and
  // whether they may still be on disk (1 until removed, or handed over to keep_decrypted).
  `
  ALTER TABLE deployments ADD COLUMN plaintext_files TEXT;
  ALTER TABLE deployments ADD COLUMN plaintext_pending INTEGER NOT NULL DEFAULT 0 CHECK (plaintext_pending IN (0, 1));
  CREATE INDEX deployments_plaintext_pending ON deployments (plaintext_pending) WHERE plaintext_pending = 1;
  `,
  // 4: why each deployment happened (JSON DeploymentReason), the plan's per-service summary applied (JSON), the
  // images the services ran after a success (JSON, for exact rollbacks), and the final status `skipped` (a plan
  // with nothing to change). SQLite cannot alter a CHECK constraint, so the table is rebuilt with the same rows.
  `
  CREATE TABLE deployments_v4 (
    id                INTEGER PRIMARY KEY,
    repository_id     INTEGER NOT NULL REFERENCES repositories (id) ON DELETE RESTRICT,
    commit_hash       TEXT,
    status            TEXT    NOT NULL
                      CHECK (status IN ('pending', 'running', 'success', 'failed', 'rolled_back', 'interrupted',
                                        'skipped')),
    "trigger"         TEXT    NOT NULL,
    stage             TEXT,
    error             TEXT,
    previous_commit   TEXT,
    rolled_back_to    TEXT,
    started_at        TEXT    NOT NULL,
    finished_at       TEXT,
    duration_ms       INTEGER,
    config_hash       TEXT,
    logs              TEXT    NOT NULL DEFAULT '',
    logs_truncated    INTEGER NOT NULL DEFAULT 0,
    notifications     TEXT,
    self_update       INTEGER NOT NULL DEFAULT 0 CHECK (self_update IN (0, 1)),
    triggered_by      TEXT,
    plaintext_files   TEXT,
    plaintext_pending INTEGER NOT NULL DEFAULT 0 CHECK (plaintext_pending IN (0, 1)),
    reason            TEXT,
    plan              TEXT,
    service_images    TEXT
  );
  INSERT INTO deployments_v4 (id, repository_id, commit_hash, status, "trigger", stage, error, previous_commit,
                              rolled_back_to, started_at, finished_at, duration_ms, config_hash, logs, logs_truncated,
                              notifications, self_update, triggered_by, plaintext_files, plaintext_pending)
    SELECT id, repository_id, commit_hash, status, "trigger", stage, error, previous_commit, rolled_back_to,
           started_at, finished_at, duration_ms, config_hash, logs, logs_truncated, notifications, self_update,
           triggered_by, plaintext_files, plaintext_pending
    FROM deployments;
  DROP TABLE deployments;
  ALTER TABLE deployments_v4 RENAME TO deployments;
  CREATE INDEX deployments_repository_id ON deployments (repository_id, id DESC);
  CREATE INDEX deployments_status ON deployments (status);
  CREATE INDEX deployments_plaintext_pending ON deployments (plaintext_pending) WHERE plaintext_pending = 1;
  `,
  // 5: service actions from the API (restart/stop/start a service, remove the project's containers, unpin) and the
  // subject line of a deployment's commit.
  `
  CREATE TABLE actions (
    id            INTEGER PRIMARY KEY,
    repository_id INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    action        TEXT NOT NULL CHECK (action IN ('restart', 'stop', 'start', 'remove', 'unpin')),
    service       TEXT,
    status        TEXT NOT NULL CHECK (status IN ('success', 'failed')),
    error         TEXT,
    triggered_by  TEXT,
    started_at    TEXT NOT NULL,
    finished_at   TEXT NOT NULL
  );
  CREATE INDEX actions_repository_id ON actions (repository_id, id DESC);
  ALTER TABLE deployments ADD COLUMN commit_subject TEXT;
  `,
  // 6: the image watch's state per repository and service (image_updates): what the service runs, what its tag
  // names in the registry, the last check's result, and what was already notified or deployed (no repeat after a
  // restart).
  `
  CREATE TABLE image_watch (
    repository_id   INTEGER NOT NULL REFERENCES repositories (id) ON DELETE CASCADE,
    service         TEXT    NOT NULL,
    image           TEXT    NOT NULL,
    local_digest    TEXT,
    remote_digest   TEXT,
    status          TEXT    NOT NULL CHECK (status IN ('up-to-date', 'update-available', 'error', 'skipped')),
    reason          TEXT,
    error_code      TEXT,
    checked_at      TEXT,
    notified_digest TEXT,
    notified_error  TEXT,
    deployed_digest TEXT,
    newer_tag       TEXT,
    notified_tag    TEXT,
    PRIMARY KEY (repository_id, service)
  );
  `,
  // 7: the commit statuses posted to the forge for a deployment (JSON list of CommitStatusRecord: state, result,
  // attempts, last error, time; never a token).
  `ALTER TABLE deployments ADD COLUMN commit_statuses TEXT;`,
];

/** Schema version this code writes (the number of migrations). */
export const SCHEMA_VERSION = MIGRATIONS.length;

/** Reads `PRAGMA user_version` (0 for a new database). */
export function readUserVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Refuses a database written by a newer schema, without writing to it: a downgrade must not corrupt data
 * the newer version relies on.
 */
export function assertNotNewer(db: Database.Database, known: number = SCHEMA_VERSION): void {
  const version = readUserVersion(db);
  if (version > known) {
    throw new StoreError(
      'STORE_SCHEMA_TOO_NEW',
      `database ${db.name} has schema version ${version} but this Shiparr knows up to ${known}; ` +
        'it was written by a newer Shiparr: upgrade Shiparr or restore a backup (the file was not modified)',
    );
  }
}

/**
 * Applies the pending migrations in order, each in its own transaction. Re-running is a no-op.
 * The version is re-read inside each IMMEDIATE transaction, so two processes migrating the same file
 * cannot apply a migration twice.
 * @returns the version before and after.
 */
export function migrate(
  db: Database.Database,
  migrations: readonly string[] = MIGRATIONS,
): { from: number; to: number } {
  assertNotNewer(db, migrations.length);
  const from = readUserVersion(db);
  for (let target = from + 1; target <= migrations.length; target++) {
    const sql = migrations[target - 1] as string;
    const step = db.transaction(() => {
      if (readUserVersion(db) >= target) return;
      db.exec(sql);
      // user_version lives in the database header and is written by this same transaction.
      db.pragma(`user_version = ${target}`);
    });
    try {
      step.immediate();
    } catch (err) {
      throw new StoreError(
        'STORE_MIGRATION_FAILED',
        `migration to schema version ${target} of ${db.name} failed (rolled back)`,
        {
          cause: err,
        },
      );
    }
  }
  return { from, to: readUserVersion(db) };
}
