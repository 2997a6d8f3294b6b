/**
 * @module Read-only queries tests and benches use to observe the store, built on its public API (the daemon itself
 * never needs them, so they are not Store methods). Fine for test-sized histories: they page through every row.
 */
import type { Deployment, DeploymentStatus } from '../../src/domain/types.ts';
import type { ProjectRow } from '../../src/store/types.ts';
import type { Store } from '../../src/store/store.ts';

/** One project by name (active or not). */
export function getProject(store: Store, name: string): ProjectRow | undefined {
  return store.listProjects({ includeInactive: true }).find((p) => p.name === name);
}

/** Every deployment of one repository (newest first; none for an unknown key), or of all repositories. */
function allDeployments(store: Store, repoKey?: string): Deployment[] {
  const keys = repoKey !== undefined ? [repoKey] : store.listRepositories({ includeInactive: true }).map((r) => r.key);
  const out: Deployment[] = [];
  for (const key of keys) {
    if (!store.getRepository(key)) continue;
    let before: number | undefined;
    do {
      const page = store.listDeployments(key, { limit: 100, before });
      out.push(...page.items);
      before = page.nextBefore ?? undefined;
    } while (before !== undefined);
  }
  return out;
}

/** The newest successful deployment of a repository. */
export function lastSuccessfulDeployment(store: Store, repoKey: string): Deployment | undefined {
  return allDeployments(store, repoKey).find((d) => d.status === 'success');
}

/** Number of deployments of one repository (0 for an unknown key), or of all. */
export function countDeployments(store: Store, repoKey?: string): number {
  return allDeployments(store, repoKey).length;
}

/** All deployments in one status, oldest first. */
export function listDeploymentsByStatus(store: Store, status: DeploymentStatus): Deployment[] {
  return allDeployments(store)
    .filter((d) => d.status === status)
    .sort((a, b) => a.id - b.id);
}
