/** @module A complete, valid `RepoConfig` for tests that build repositories without a project file. */
import type { RepoConfig } from '../../src/config/schema.ts';

/** Repository `<project>/<name>` with small timeouts and no notifications; `over` replaces any field. */
export function repoConfig(project: string, name: string, over: Partial<RepoConfig> = {}): RepoConfig {
  return {
    key: `${project}/${name}`,
    project,
    name,
    url: `http://git.invalid/${name}.git`,
    branch: 'main',
    localPath: `/nonexistent/${project}/${name}`,
    path: '.',
    checkInterval: 60,
    composeFiles: [],
    composeProject: `${project}-${name}`,
    pull: 'never',
    build: false,
    removeOrphans: true,
    healthcheck: { timeout: 30, retries: 0, interval: 1 },
    rollback: true,
    decrypt: [],
    keepDecrypted: false,
    enabled: true,
    suspended: false,
    shallow: true,
    timeouts: { git: 10, apply: 60, decrypt: 10, notify: 5 },
    notifications: { success: [], failure: [] },
    globalNotifications: { success: [], failure: [] },
    notifyRepeatInterval: 3600,
    configHash: 'h1',
    ...over,
  };
}
