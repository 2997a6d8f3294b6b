/** @module Shapes sent to clients. Defensive: repository URLs lose any embedded credentials, error text is masked. */
import { maskSecrets } from '../lib/redact.ts';
import type { ActionRecord, Deployment, RepoStatus } from '../domain/types.ts';

/** Removes `user:pass@` from a URL-ish string (config URLs may carry a token). */
function stripCredentials(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1');
}

/** RepoStatus as the API shows it. */
export function publicRepo(r: RepoStatus): RepoStatus {
  return {
    ...r,
    url: stripCredentials(r.url),
    lastError: r.lastError ? { ...r.lastError, message: maskSecrets(r.lastError.message) } : null,
  };
}

/** Deployment as the API shows it (with `commitStatuses`: the forge deliveries, their errors masked once more). */
export function publicDeployment(d: Deployment): Deployment {
  return {
    ...d,
    error: d.error === null ? null : maskSecrets(d.error),
    commitStatuses:
      d.commitStatuses?.map((s) => ({ ...s, lastError: s.lastError === null ? null : maskSecrets(s.lastError) })) ??
      null,
  };
}

/**
 * A service action as the API shows it: `{id, action, service, status, error, triggeredBy, startedAt, finishedAt}`
 * (the error masked once more).
 */
export function publicAction(a: ActionRecord): Omit<ActionRecord, 'repositoryId'> {
  return {
    id: a.id,
    action: a.action,
    service: a.service,
    status: a.status,
    error: a.error === null ? null : maskSecrets(a.error),
    triggeredBy: a.triggeredBy,
    startedAt: a.startedAt,
    finishedAt: a.finishedAt,
  };
}

/** A browsable https URL for a configured git URL (scp-like and scheme-less forms included), or null. */
export function webUrl(url: string): string | null {
  let s = stripCredentials(url.trim());
  const scp = /^(?:[^@/]+@)?([^:/]+):(?!\d+(?:\/|$))(.+)$/.exec(s);
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(s) && scp) s = `https://${scp[1]}/${scp[2]}`;
  else if (/^(ssh|git):\/\//i.test(s))
    s = `https://${s.replace(/^[a-z+]+:\/\/(?:[^@/]+@)?/i, '').replace(/^([^/:]+):\d+/, '$1')}`;
  else if (!/^https?:\/\//i.test(s)) s = `https://${s}`;
  s = s.replace(/\.git\/?$/i, '').replace(/\/+$/, '');
  try {
    const u = new URL(s);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return null;
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return null;
  }
}
