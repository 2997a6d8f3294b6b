/** @module Remote URL + credentials → a credential-free URL and an Authorization header (never a URL with secrets). */
import { GitError } from './errors.ts';

/** Where and how to reach a remote. `url` never carries credentials; `secrets` lists values to mask in messages. */
export interface RemoteTarget {
  url: string;
  headers: Record<string, string>;
  secrets: string[];
}

/**
 * The Basic-auth username paired with a token: GitLab wants `oauth2`, GitHub, Gitea/Forgejo and
 * Bitbucket accept `x-access-token` (the password is what they check).
 */
export function tokenUsername(host: string): string {
  return /(^|\.)gitlab\./i.test(host) || /^gitlab/i.test(host) ? 'oauth2' : 'x-access-token';
}

const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

function decode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/**
 * Builds the request target for a remote. Credentials embedded in the URL (`https://user:pass@host/…`)
 * are moved into the header; an explicit `token` wins over them. A URL without scheme gets `https://`.
 * Only http(s) remotes are supported (isomorphic-git speaks smart HTTP only).
 */
export function remoteTarget(rawUrl: string, token?: string): RemoteTarget {
  const trimmed = rawUrl.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) ? trimmed : `https://${trimmed}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new GitError('GIT_INVALID_INPUT', 'invalid repository URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new GitError(
      'GIT_INVALID_INPUT',
      `unsupported repository URL scheme "${url.protocol}" (only http and https)`,
    );
  }
  const user = decode(url.username);
  const pass = decode(url.password);
  url.username = '';
  url.password = '';
  const headers: Record<string, string> = {};
  const secrets: string[] = [];
  if (token) {
    headers.Authorization = basic(tokenUsername(url.hostname), token);
    secrets.push(token);
  } else if (user || pass) {
    headers.Authorization = basic(user, pass);
    // `https://<token>@host` puts the secret in the username.
    secrets.push(...(pass ? [pass] : [user]));
  }
  return { url: url.href, headers, secrets };
}
