/**
 * @module The one notion of "the same git repository" for the whole code base: webhook matching (clone URLs from a
 * push payload against the configured URL) and the checkout (is this directory's origin the configured remote?) both
 * compare the keys made here, so a URL spelled differently is never mistaken for a different repository.
 */

/**
 * Reduces a git URL to a comparison key: drops scheme, credentials, default ports (22, 80, 443), a `www.` prefix and
 * a trailing dot of the host, query and fragment, `.git` and trailing slashes; turns scp-like `git@host:owner/repo`
 * into `host/owner/repo`; lowercases everything (GitHub, GitLab and Gitea paths are case-insensitive, and users type
 * owner names in any case). `null` for things that are not URLs.
 */
export function normaliseRepoUrl(input: string): string | null {
  let s = input.trim();
  if (s === '' || s.length > 2048 || /\s/.test(s)) return null;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(s);
  if (scheme) s = s.slice(scheme[0].length);
  else {
    // scp-like syntax: [user@]host:path (but not host:port/path)
    const scp = /^(?:[^@/]+@)?([^:/]+):(?!\d+(?:\/|$))(.+)$/.exec(s);
    if (scp) s = `${scp[1]}/${scp[2]}`;
  }
  const at = s.indexOf('@');
  const slash = s.indexOf('/');
  if (at !== -1 && (slash === -1 || at < slash)) s = s.slice(at + 1);
  // Default ports carry no meaning for matching (ssh://host:22/x and https://host/x are the same repository).
  s = s.replace(/^([^/:]+):(?:22|80|443)(?=\/|$)/, '$1');
  // Host spellings: `www.github.com` and `github.com.` name the same server as `github.com`.
  s = s.replace(/^www\./i, '').replace(/^([^/:]+)\.(?=[:/]|$)/, '$1');
  s = s.replace(/[?#].*$/, '');
  s = s
    .replace(/\/+$/, '')
    .replace(/\.git$/i, '')
    .replace(/\/+$/, '');
  s = s.replace(/\/{2,}/g, '/');
  if (s === '' || s.startsWith('/')) return null;
  return s.toLowerCase();
}

/** True when two git URLs name the same repository (see normaliseRepoUrl); false when either is not a URL. */
export function sameRepository(a: string, b: string): boolean {
  const ka = normaliseRepoUrl(a);
  return ka !== null && ka === normaliseRepoUrl(b);
}
