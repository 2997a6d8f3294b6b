/** @module The arguments the repository commands share: `<project>/<repo> [--commit=<sha>]` and boolean flags. */

export interface RepoArgs {
  key: string;
  commit?: string;
  /** The boolean flags given (only ones listed as allowed). */
  flags: Set<string>;
}

/**
 * Parses `<project>/<repo> [--commit=<sha>] [flags…]`: null on anything else (a missing or malformed key, a commit
 * that is not 7–40 hex digits, an option not in `allowedFlags`, a second key), so the caller prints its usage.
 */
export function parseRepoArgs(args: readonly string[], allowedFlags: readonly string[] = []): RepoArgs | null {
  const keys = args.filter((a) => !a.startsWith('-'));
  const commits = args.filter((a) => a.startsWith('--commit='));
  const flags = args.filter((a) => a.startsWith('-') && !a.startsWith('--commit='));
  const key = keys[0];
  const commit = commits[0]?.slice('--commit='.length);
  if (!key || keys.length > 1 || !/^[^/]+\/[^/]+$/.test(key)) return null;
  if (commits.length > 1 || (commit !== undefined && !/^[0-9a-f]{7,40}$/i.test(commit))) return null;
  if (flags.some((f) => !allowedFlags.includes(f))) return null;
  return { key, ...(commit !== undefined ? { commit } : {}), flags: new Set(flags) };
}
