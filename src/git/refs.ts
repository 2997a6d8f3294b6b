/** @module Validation of branch names and commit ids coming from configuration or the API. */
import { GitError } from './errors.ts';

const hasControlChar = (s: string): boolean => [...s].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);

/** Accepts `main` or `refs/heads/main`; returns the short branch name. Rejects names git itself would refuse. */
export function normalizeBranch(branch: string): string {
  const name = branch.trim().replace(/^refs\/heads\//, '');
  // Subset of git-check-ref-format: enough to keep odd input out of ref paths and wire requests.
  if (
    !name ||
    name.startsWith('-') ||
    name.startsWith('/') ||
    name.endsWith('/') ||
    name.endsWith('.lock') ||
    name.endsWith('.') ||
    name.includes('..') ||
    name.includes('//') ||
    name.includes('@{') ||
    /[\s~^:?*[\\]/.test(name) ||
    hasControlChar(name)
  ) {
    throw new GitError('GIT_INVALID_INPUT', `invalid branch name "${branch.slice(0, 100)}"`);
  }
  return name;
}

/** Accepts a full or abbreviated (≥ 4 hex digits) commit id; returns it lower-cased. */
export function normalizeCommit(commit: string): string {
  const c = commit.trim().toLowerCase();
  if (!/^[0-9a-f]{4,40}$/.test(c))
    throw new GitError('GIT_INVALID_INPUT', `invalid commit id "${commit.slice(0, 64)}"`);
  return c;
}

/** First 7 digits, for messages. */
export const shortSha = (sha: string): string => sha.slice(0, 7);
