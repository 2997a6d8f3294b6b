/**
 * @module Commit-status requests as each forge documents them: the URL, headers and JSON body of one status, and the
 * forge's own words for a refusal. Pure: no I/O, no clock.
 *
 * - GitHub: `POST {api}/repos/{owner}/{repo}/statuses/{sha}`, `Authorization: Bearer <token>`,
 *   `Accept: application/vnd.github+json`; body `{state, target_url, description, context}`, states
 *   pending|success|failure|error.
 * - Gitea / Forgejo: `POST {api}/repos/{owner}/{repo}/statuses/{sha}` (api = …/api/v1), `Authorization: token <token>`;
 *   body `{state, target_url, description, context}`, states pending|success|error|failure|warning.
 * - GitLab: `POST {api}/projects/{id}/statuses/{sha}` (api = …/api/v4, id = the URL-encoded `namespace/project`),
 *   `PRIVATE-TOKEN: <token>`; body `{state, target_url, description, name}`, states
 *   pending|running|success|failed|canceled.
 */
import type { RepoCommitStatus } from '../config/schema.ts';
import type { CommitStatusState } from '../domain/types.ts';
import { maskSecrets } from '../lib/redact.ts';
import { VERSION } from '../version.ts';

/** One status to post: Shiparr's state, a human line and the deployment's page in the UI. */
export interface CommitStatus {
  state: CommitStatusState;
  description: string;
  /** `<SHIPARR_PUBLIC_URL>/#/deployment/<id>`; absent without SHIPARR_PUBLIC_URL. */
  targetUrl?: string;
}

/** An HTTP request ready for `fetch` (always a POST with a JSON body). */
export interface StatusRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** Longest description sent: GitHub's documented limit (the others allow more). */
export const DESCRIPTION_MAX = 140;

/** How each provider is named in messages. */
export const PROVIDER_NAMES: Record<RepoCommitStatus['provider'], string> = {
  github: 'GitHub',
  gitea: 'Gitea',
  gitlab: 'GitLab',
};

/**
 * The provider's own name of a state. GitLab: a deploy under way is `running`, a failure `failed`, an interrupted
 * one `canceled`; GitHub and Gitea use Shiparr's names.
 */
export function forgeState(provider: RepoCommitStatus['provider'], state: CommitStatusState): string {
  if (provider !== 'gitlab') return state;
  return { pending: 'running', success: 'success', failure: 'failed', error: 'canceled' }[state];
}

/** `text` cut to {@link DESCRIPTION_MAX} characters (an ellipsis marks the cut). */
export function fitDescription(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > DESCRIPTION_MAX ? `${line.slice(0, DESCRIPTION_MAX - 1)}…` : line;
}

/** The request that posts `status` for commit `sha` of the target's repository. */
export function statusRequest(target: RepoCommitStatus, sha: string, status: CommitStatus): StatusRequest {
  const api = target.apiUrl.replace(/\/+$/, '');
  const commit = encodeURIComponent(sha);
  const description = fitDescription(status.description);
  const state = forgeState(target.provider, status.state);
  const link = status.targetUrl !== undefined ? { target_url: status.targetUrl } : {};
  const common = { 'Content-Type': 'application/json', 'User-Agent': `Shiparr/${VERSION}` };
  if (target.provider === 'gitlab') {
    return {
      url: `${api}/projects/${encodeURIComponent(target.repoPath)}/statuses/${commit}`,
      headers: { ...common, Accept: 'application/json', 'PRIVATE-TOKEN': target.token },
      body: JSON.stringify({ state, ...link, description, name: target.context }),
    };
  }
  const repo = target.repoPath.split('/').map(encodeURIComponent).join('/');
  const url = `${api}/repos/${repo}/statuses/${commit}`;
  const body = JSON.stringify({ state, ...link, description, context: target.context });
  if (target.provider === 'github') {
    return {
      url,
      headers: {
        ...common,
        Accept: 'application/vnd.github+json',
        Authorization: `Bearer ${target.token}`,
        'X-GitHub-Api-Version': '2022-11-28',
      },
      body,
    };
  }
  return { url, headers: { ...common, Accept: 'application/json', Authorization: `token ${target.token}` }, body };
}

/**
 * The forge's reason from an error answer: the `message` (GitHub, Gitea, GitLab) or `error` (GitLab) member of a
 * JSON body, else the start of the text; masked, at most 200 characters, empty when there is none.
 */
export function forgeMessage(body: string): string {
  let text = body.trim();
  try {
    const parsed = JSON.parse(text) as { message?: unknown; error?: unknown };
    const m = parsed.message ?? parsed.error;
    if (m !== undefined) text = typeof m === 'string' ? m : JSON.stringify(m);
  } catch {
    // Not JSON: the text itself (an HTML error page is cut short below).
  }
  text = maskSecrets(text.replace(/\s+/g, ' '));
  return text.length > 200 ? `${text.slice(0, 199)}…` : text;
}
