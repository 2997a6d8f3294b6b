/** @module Git failures: one typed error with a stable code, and the mapping from isomorphic-git / network errors to it. */
import { AppError } from '../errors.ts';
import { maskValues } from '../lib/redact.ts';

/** Stable codes of git failures (also the `code` of failed git task results). */
export type GitErrorCode =
  | 'GIT_UNREACHABLE'
  | 'GIT_TIMEOUT'
  | 'GIT_AUTH_FAILED'
  | 'GIT_REPO_NOT_FOUND'
  | 'GIT_BRANCH_NOT_FOUND'
  | 'GIT_COMMIT_NOT_FOUND'
  | 'GIT_REMOTE_ERROR'
  | 'GIT_TLS_FAILED'
  | 'GIT_INVALID_INPUT'
  | 'GIT_LOCAL_IO'
  | 'GIT_NOT_A_CHECKOUT'
  | 'GIT_CHECKOUT_CONFLICT'
  | 'GIT_CHECK_FAILED'
  | 'GIT_SYNC_FAILED'
  /** Write-back: the branch moved away from the expected commit, or moved twice / changed the compose files. */
  | 'GIT_WRITE_BACK_CONFLICT'
  /** Write-back: the compose files cannot be edited safely (`${VAR}` image, no such service…) or the push was refused. */
  | 'GIT_WRITE_BACK_REFUSED'
  | 'GIT_WRITE_BACK_FAILED';

/** A git operation failed. `transient` failures (network, 5xx, timeouts) are worth retrying with backoff. */
export class GitError extends AppError {
  readonly code: GitErrorCode;
  readonly transient: boolean;
  constructor(code: GitErrorCode, message: string, opts?: ErrorOptions & { transient?: boolean }) {
    super(message, opts);
    this.code = code;
    this.transient = opts?.transient ?? false;
  }
}

// Connection-level failures of Node's http client: the remote (or the path to it) is down.
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EPIPE',
  'ERR_STREAM_PREMATURE_CLOSE',
  'ECONNCLOSED',
]);
// Local filesystem problems: re-cloning would not help and must not be attempted.
const LOCAL_IO_CODES = new Set(['EACCES', 'EPERM', 'ENOSPC', 'EROFS', 'EDQUOT', 'EMFILE', 'ENFILE']);

interface ErrLike {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  data?: { statusCode?: unknown };
  cause?: unknown;
}

function oneLine(text: string, secrets: readonly (string | undefined)[]): string {
  return maskValues(text.replace(/\s+/g, ' ').trim(), secrets).slice(0, 500);
}

/**
 * Maps any error from a git operation to a GitError with a secret-free one-line message.
 * `fallback` is used for errors that are neither network, HTTP, TLS nor local I/O (bugs, corrupt data…).
 */
export function toGitError(
  err: unknown,
  fallback: GitErrorCode,
  secrets: readonly (string | undefined)[] = [],
): GitError {
  if (err instanceof GitError) return err;
  const e = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as ErrLike;
  const code = typeof e.code === 'string' ? e.code : '';
  const message = oneLine(typeof e.message === 'string' ? e.message : String(err), secrets);
  const opts = (transient: boolean) => ({ cause: err, transient });

  if (code === 'HttpError') {
    const status = Number(e.data?.statusCode);
    if (status === 401 || status === 403) {
      return new GitError(
        'GIT_AUTH_FAILED',
        `authentication failed (HTTP ${status}): check the token and its access to the repository`,
        opts(false),
      );
    }
    if (status === 404)
      return new GitError(
        'GIT_REPO_NOT_FOUND',
        'repository not found (HTTP 404), or the token has no access to it',
        opts(false),
      );
    if (status === 408 || status === 429 || status >= 500) {
      return new GitError('GIT_UNREACHABLE', `git server unavailable (HTTP ${status})`, opts(true));
    }
    return new GitError('GIT_REMOTE_ERROR', `git server refused the request: ${message}`, opts(false));
  }
  if (
    code === 'SmartHttpError' ||
    code === 'ParseError' ||
    code === 'UnknownTransportError' ||
    code === 'RemoteCapabilityError'
  ) {
    return new GitError('GIT_REMOTE_ERROR', `not a usable git smart-HTTP server: ${message}`, opts(false));
  }
  if (NETWORK_CODES.has(code) || /socket hang up|network|premature close/i.test(message)) {
    return new GitError('GIT_UNREACHABLE', `git server unreachable: ${message}`, opts(true));
  }
  if (/CERT|SSL|TLS|SELF_SIGNED|UNABLE_TO_VERIFY/.test(code)) {
    return new GitError('GIT_TLS_FAILED', `TLS failure talking to the git server: ${message}`, opts(false));
  }
  if (LOCAL_IO_CODES.has(code)) return new GitError('GIT_LOCAL_IO', `local filesystem error: ${message}`, opts(false));
  const name = typeof e.name === 'string' && e.name !== 'Error' ? `${e.name}: ` : '';
  return new GitError(fallback, `${name}${message}`, opts(false));
}
