/** @module Pure diff of two resolved repository lists by `key`, driving hot reload (spawn / stop / update actors). */
import { isDeepStrictEqual } from 'node:util';
import type { RepoConfig } from './schema.ts';

export interface RepoDiff {
  /** In `next` only (order of `next`). */
  added: RepoConfig[];
  /** In `prev` only (order of `prev`). */
  removed: RepoConfig[];
  /** In both, with any field different (the `next` version, order of `next`). */
  changed: RepoConfig[];
  /** In both and deeply equal (the `next` version, order of `next`). */
  unchanged: RepoConfig[];
}

/**
 * Compares two repository lists by `key`. "Changed" is a deep comparison of the whole RepoConfig, not just
 * `configHash`: a new token or check_interval must reach the actor too, even though it does not force a redeploy.
 */
export function diffRepos(prev: readonly RepoConfig[], next: readonly RepoConfig[]): RepoDiff {
  const before = new Map(prev.map((r) => [r.key, r] as const));
  const nextKeys = new Set(next.map((r) => r.key));
  const diff: RepoDiff = { added: [], removed: [], changed: [], unchanged: [] };
  for (const r of next) {
    const old = before.get(r.key);
    if (!old) diff.added.push(r);
    else if (isDeepStrictEqual(old, r)) diff.unchanged.push(r);
    else diff.changed.push(r);
  }
  for (const r of prev) if (!nextKeys.has(r.key)) diff.removed.push(r);
  return diff;
}
