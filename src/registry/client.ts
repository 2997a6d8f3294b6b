/**
 * @module Docker registry (distribution v2) client for image checks: `HEAD` of a manifest (never a `GET`, which Docker
 * Hub counts as a pull) and the tag list. Authentication follows the registry's challenge: `Bearer` (token from the
 * realm, anonymous or with Basic credentials, cached per registry and scope until `expires_in`) or `Basic`. A 429
 * blocks the registry until its `Retry-After` has passed: requests in that window fail at once without being sent.
 * Messages always name the registry host and never contain a password or a token.
 */
import { maskValues } from '../lib/redact.ts';
import { DOCKER_HUB, type ImageRef } from './ref.ts';

export interface RegistryAuth {
  username: string;
  password: string;
}

export interface RegistryClientOptions {
  /** Credentials for a registry (key = ImageRef.registry). */
  credentials?: (registry: string) => RegistryAuth | undefined;
  /** Plain http for this registry (default: loopback hosts 127.0.0.0/8, ::1, localhost — Docker's own rule). */
  insecure?: (registry: string) => boolean;
  /** Per request (default 30 s). */
  timeoutMs?: number;
  /** Tags asked per page of the tag list (`?n=`); default: none, the registry's own page size. */
  tagsPageSize?: number;
}

export interface ManifestHead {
  digest: string;
  mediaType: string | null;
}

export type RegistryErrorCode =
  | 'REGISTRY_AUTH'
  | 'REGISTRY_NOT_FOUND'
  | 'REGISTRY_RATE_LIMITED'
  | 'REGISTRY_UNREACHABLE'
  | 'REGISTRY_BAD_RESPONSE'
  | 'REGISTRY_BAD_REF';

/** A registry request failed. The message names the registry and never contains credentials. */
export class RegistryError extends Error {
  code: RegistryErrorCode;
  /** Registry host[:port] (ImageRef.registry); '' for REGISTRY_BAD_REF. */
  registry: string;
  /** HTTP status of the answer, when there was one. */
  status?: number;
  /** For REGISTRY_RATE_LIMITED: how long the registry asked us to wait (Retry-After), else a default back-off. */
  retryAfterMs?: number;
  /** true for 429/5xx/network errors: worth retrying later. */
  transient: boolean;
  constructor(
    code: RegistryErrorCode,
    registry: string,
    message: string,
    opts: ErrorOptions & { status?: number; retryAfterMs?: number; transient?: boolean } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'RegistryError';
    this.code = code;
    this.registry = registry;
    if (opts.status !== undefined) this.status = opts.status;
    if (opts.retryAfterMs !== undefined) this.retryAfterMs = opts.retryAfterMs;
    this.transient = opts.transient ?? (code === 'REGISTRY_RATE_LIMITED' || code === 'REGISTRY_UNREACHABLE');
  }
}

export interface RegistryClient {
  /** The digest a tag points at now: HEAD /v2/<repo>/manifests/<tag> (never GET: a GET counts as a pull on Docker
   * Hub), Accept: OCI index, Docker manifest list, OCI manifest, Docker v2 manifest. */
  headManifest(ref: ImageRef, signal?: AbortSignal): Promise<ManifestHead>;
  /** All tags (GET /v2/<repo>/tags/list, following `Link` pagination). */
  listTags(ref: ImageRef, signal?: AbortSignal): Promise<string[]>;
}

/** Media types a manifest HEAD accepts, indexes first (a multi-arch tag answers with its index). */
const MANIFEST_MEDIA_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
] as const;

/** Back-off after a 429 without a usable Retry-After. */
const DEFAULT_RETRY_AFTER_MS = 60_000;
const DEFAULT_TIMEOUT_MS = 30_000;
/** Sent with every request, so a registry's access log tells Shiparr's checks from pulls. */
const USER_AGENT = 'shiparr';
/** Token lifetime when the token endpoint does not say (the distribution spec's default). */
const DEFAULT_TOKEN_SECONDS = 60;
/** Upper bound on tag-list pages (a registry whose `Link` loops must not keep us busy forever). */
const MAX_TAG_PAGES = 1_000;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;

/** The API host of a registry as named in references: Docker Hub's is registry-1.docker.io. */
export function registryApiHost(registry: string): string {
  return registry === DOCKER_HUB ? 'registry-1.docker.io' : registry;
}

/** Docker's rule for plain http: loopback registries (127.0.0.0/8, ::1, localhost), with or without a port. */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.startsWith('[') ? registry.slice(1, registry.indexOf(']')) : registry.replace(/:\d+$/, '');
  return host === 'localhost' || host === '::1' || /^127(?:\.\d{1,3}){3}$/.test(host);
}

/**
 * Parses `Retry-After` (delay in seconds or an HTTP date) into milliseconds from `now`; the default back-off (60 s)
 * when absent or unreadable.
 */
export function parseRetryAfter(value: string | null, now = Date.now()): number {
  const v = value?.trim();
  if (v) {
    if (/^\d+$/.test(v)) return Number(v) * 1000;
    const at = Date.parse(v);
    if (Number.isFinite(at)) return Math.max(0, at - now);
  }
  return DEFAULT_RETRY_AFTER_MS;
}

interface Challenge {
  scheme: 'bearer' | 'basic';
  params: Record<string, string>;
}

/** The first Bearer or Basic challenge of a `WWW-Authenticate` header, with its parameters. */
function parseChallenge(header: string | null): Challenge | null {
  if (!header) return null;
  const m = /(?:^|[\s,])(Bearer|Basic)(?:\s+|$)/i.exec(header);
  if (!m) return null;
  const scheme = m[1]!.toLowerCase() as Challenge['scheme'];
  const params: Record<string, string> = {};
  const rest = header.slice(m.index + m[0].length);
  for (const p of rest.matchAll(/([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]+))/g)) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  }
  return { scheme, params };
}

function basicHeader(auth: RegistryAuth): string {
  return `Basic ${Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64')}`;
}

async function discard(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => undefined);
}

/** Creates a client; it keeps its tokens and rate-limit windows in memory, so share one per process. */
export function createRegistryClient(opts: RegistryClientOptions = {}): RegistryClient {
  const credentials = opts.credentials ?? (() => undefined);
  const insecure = opts.insecure ?? isLoopbackRegistry;
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  /** Bearer tokens by `registry \n scope`. */
  const tokens = new Map<string, { token: string; expiresAt: number }>();
  /** Registries that asked for Basic auth: later requests send it at once. */
  const basicRegistries = new Set<string>();
  /** Rate-limit windows: no request to the registry before this time (ms since epoch). */
  const blockedUntil = new Map<string, number>();

  const base = (registry: string): string => `${insecure(registry) ? 'http' : 'https'}://${registryApiHost(registry)}`;

  function secretsOf(registry: string): string[] {
    const c = credentials(registry);
    return [
      c?.password ?? '',
      ...[...tokens.entries()].filter(([k]) => k.startsWith(`${registry}\n`)).map(([, v]) => v.token),
    ];
  }

  function checkBlocked(registry: string): void {
    const until = blockedUntil.get(registry);
    if (until === undefined) return;
    const left = until - Date.now();
    if (left <= 0) {
      blockedUntil.delete(registry);
      return;
    }
    throw new RegistryError(
      'REGISTRY_RATE_LIMITED',
      registry,
      `registry ${registry} is rate limiting: no request before ${new Date(until).toISOString()} (Retry-After)`,
      { retryAfterMs: left, status: 429 },
    );
  }

  function rateLimited(registry: string, res: Response, what: string): RegistryError {
    const ms = parseRetryAfter(res.headers.get('retry-after'));
    blockedUntil.set(registry, Math.max(blockedUntil.get(registry) ?? 0, Date.now() + ms));
    return new RegistryError(
      'REGISTRY_RATE_LIMITED',
      registry,
      `registry ${registry} rate limited ${what} (429): retry in ${Math.ceil(ms / 1000)} s`,
      { status: 429, retryAfterMs: ms },
    );
  }

  /** fetch with the per-request timeout and the caller's signal; network failures become RegistryErrors. */
  async function send(registry: string, url: string, init: RequestInit, signal?: AbortSignal): Promise<Response> {
    signal?.throwIfAborted();
    const timeout = AbortSignal.timeout(timeoutMs);
    try {
      return await fetch(url, {
        ...init,
        headers: { 'User-Agent': USER_AGENT, ...(init.headers as Record<string, string> | undefined) },
        redirect: 'follow',
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (timeout.aborted)
        throw new RegistryError(
          'REGISTRY_UNREACHABLE',
          registry,
          `registry ${registry} did not answer within ${timeoutMs} ms`,
          {
            cause: err,
          },
        );
      const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
      const detail =
        typeof cause?.code === 'string'
          ? cause.code
          : typeof cause?.message === 'string'
            ? cause.message
            : err instanceof Error
              ? err.message
              : String(err);
      throw new RegistryError(
        'REGISTRY_UNREACHABLE',
        registry,
        maskValues(`registry ${registry} unreachable: ${detail}`, secretsOf(registry)),
        { cause: err },
      );
    }
  }

  function authError(registry: string, repository: string, status: number, hadCredentials: boolean): RegistryError {
    const message = hadCredentials
      ? `registry ${registry} refused the credentials for ${repository} (${status})`
      : `registry ${registry} refused anonymous access to ${repository} (${status}): configure credentials for ${registry}, or check the repository name`;
    return new RegistryError('REGISTRY_AUTH', registry, message, { status });
  }

  async function fetchToken(
    registry: string,
    repository: string,
    challenge: Challenge,
    scope: string,
    signal?: AbortSignal,
  ): Promise<string> {
    const realm = challenge.params['realm'];
    let url: URL;
    try {
      url = new URL(realm ?? '');
    } catch {
      throw new RegistryError(
        'REGISTRY_BAD_RESPONSE',
        registry,
        `registry ${registry} sent a Bearer challenge without a usable realm`,
        { status: 401 },
      );
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:')
      throw new RegistryError('REGISTRY_BAD_RESPONSE', registry, `registry ${registry}: token realm is not http(s)`);
    const auth = credentials(registry);
    // Credentials go over plain http only where the registry itself is plain http (loopback or configured so).
    if (auth && url.protocol === 'http:' && !insecure(registry) && !isLoopbackRegistry(url.host))
      throw new RegistryError(
        'REGISTRY_BAD_RESPONSE',
        registry,
        `registry ${registry}: refusing to send credentials to the plain-http token realm ${url.origin}`,
      );
    if (challenge.params['service']) url.searchParams.set('service', challenge.params['service']);
    url.searchParams.set('scope', scope);
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (auth) headers['Authorization'] = basicHeader(auth);
    const res = await send(registry, url.href, { method: 'GET', headers }, signal);
    if (res.status === 401 || res.status === 403) {
      await discard(res);
      throw authError(registry, repository, res.status, !!auth);
    }
    if (res.status === 429) {
      await discard(res);
      throw rateLimited(registry, res, 'the token request');
    }
    if (!res.ok) {
      await discard(res);
      throw new RegistryError(
        'REGISTRY_BAD_RESPONSE',
        registry,
        `registry ${registry}: token endpoint ${url.origin}${url.pathname} answered ${res.status}`,
        { status: res.status, transient: res.status >= 500 || res.status === 408 },
      );
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = (await res.json()) as typeof body;
    } catch {
      throw new RegistryError('REGISTRY_BAD_RESPONSE', registry, `registry ${registry}: token endpoint sent no JSON`);
    }
    const token = typeof body.token === 'string' && body.token ? body.token : body.access_token;
    if (typeof token !== 'string' || !token)
      throw new RegistryError('REGISTRY_BAD_RESPONSE', registry, `registry ${registry}: token endpoint sent no token`);
    const seconds =
      typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_SECONDS;
    // A small margin so a token is not used in its last seconds.
    tokens.set(`${registry}\n${scope}`, {
      token,
      expiresAt: Date.now() + seconds * 1000 - Math.min(10_000, seconds * 100),
    });
    return token;
  }

  function cachedAuth(registry: string, scope: string): string | undefined {
    const key = `${registry}\n${scope}`;
    const t = tokens.get(key);
    if (t && t.expiresAt > Date.now()) return `Bearer ${t.token}`;
    if (t) tokens.delete(key);
    const auth = credentials(registry);
    if (auth && basicRegistries.has(registry)) return basicHeader(auth);
    return undefined;
  }

  /**
   * One authenticated request: sends cached auth when there is some; on a 401 answers the challenge (token or Basic)
   * and retries once. Returns the response for every status but 401/403 (REGISTRY_AUTH) and 429 (rate limited).
   */
  async function authed(
    ref: ImageRef,
    method: 'HEAD' | 'GET',
    url: string,
    accept: string,
    what: string,
    signal?: AbortSignal,
  ): Promise<Response> {
    const { registry, repository } = ref;
    const scope = `repository:${repository}:pull`;
    let authorization = cachedAuth(registry, scope);
    let answeredChallenge = false;
    for (;;) {
      checkBlocked(registry);
      const headers: Record<string, string> = { Accept: accept };
      if (authorization) headers['Authorization'] = authorization;
      const res = await send(registry, url, { method, headers }, signal);
      if (res.status === 429) {
        await discard(res);
        throw rateLimited(registry, res, what);
      }
      if (res.status !== 401 && res.status !== 403) return res;
      await discard(res);
      const challenge = res.status === 401 ? parseChallenge(res.headers.get('www-authenticate')) : null;
      if (answeredChallenge || !challenge) throw authError(registry, repository, res.status, !!credentials(registry));
      answeredChallenge = true;
      tokens.delete(`${registry}\n${scope}`);
      if (challenge.scheme === 'basic') {
        const auth = credentials(registry);
        if (!auth) throw authError(registry, repository, res.status, false);
        basicRegistries.add(registry);
        authorization = basicHeader(auth);
      } else {
        basicRegistries.delete(registry);
        const token = await fetchToken(registry, repository, challenge, challenge.params['scope'] || scope, signal);
        authorization = `Bearer ${token}`;
      }
    }
  }

  function unexpected(registry: string, res: Response, what: string): RegistryError {
    if (res.status === 404)
      return new RegistryError('REGISTRY_NOT_FOUND', registry, `registry ${registry} has no ${what} (404)`, {
        status: 404,
      });
    return new RegistryError(
      'REGISTRY_BAD_RESPONSE',
      registry,
      `registry ${registry} answered ${res.status} for ${what}`,
      {
        status: res.status,
        transient: res.status >= 500 || res.status === 408,
      },
    );
  }

  return {
    async headManifest(ref, signal) {
      const reference = ref.tag ?? ref.digest;
      if (!reference)
        throw new RegistryError('REGISTRY_BAD_REF', ref.registry, `image ${ref.repository} has neither tag nor digest`);
      const what = `manifest ${ref.repository}:${reference}`;
      const url = `${base(ref.registry)}/v2/${ref.repository}/manifests/${reference}`;
      const res = await authed(ref, 'HEAD', url, MANIFEST_MEDIA_TYPES.join(', '), what, signal);
      await discard(res);
      if (!res.ok) throw unexpected(ref.registry, res, what);
      const digest = res.headers.get('docker-content-digest')?.trim() || (ref.tag === null ? ref.digest : null);
      if (!digest || !DIGEST.test(digest))
        throw new RegistryError(
          'REGISTRY_BAD_RESPONSE',
          ref.registry,
          `registry ${ref.registry} sent no Docker-Content-Digest for ${what}`,
          { status: res.status },
        );
      const mediaType = res.headers.get('content-type')?.split(';')[0]?.trim() || null;
      return { digest, mediaType };
    },

    async listTags(ref, signal) {
      const what = `tag list of ${ref.repository}`;
      const origin = base(ref.registry);
      let url = `${origin}/v2/${ref.repository}/tags/list${opts.tagsPageSize ? `?n=${opts.tagsPageSize}` : ''}`;
      const tags: string[] = [];
      const seen = new Set<string>();
      for (let page = 0; page < MAX_TAG_PAGES; page++) {
        seen.add(url);
        const res = await authed(ref, 'GET', url, 'application/json', what, signal);
        if (!res.ok) {
          await discard(res);
          throw unexpected(ref.registry, res, what);
        }
        let body: { tags?: unknown };
        try {
          body = (await res.json()) as typeof body;
        } catch {
          throw new RegistryError(
            'REGISTRY_BAD_RESPONSE',
            ref.registry,
            `registry ${ref.registry} sent no JSON ${what}`,
            {
              status: res.status,
            },
          );
        }
        if (body.tags !== null && body.tags !== undefined && !Array.isArray(body.tags))
          throw new RegistryError(
            'REGISTRY_BAD_RESPONSE',
            ref.registry,
            `registry ${ref.registry} sent a malformed ${what}`,
          );
        for (const t of (body.tags as unknown[] | null | undefined) ?? []) if (typeof t === 'string') tags.push(t);
        const next = /<([^>]+)>\s*;[^,]*rel="?next"?/i.exec(res.headers.get('link') ?? '')?.[1];
        if (!next) return tags;
        const nextUrl = new URL(next, url);
        // Our Authorization header must not follow a Link to another host.
        if (nextUrl.origin !== new URL(origin).origin)
          throw new RegistryError(
            'REGISTRY_BAD_RESPONSE',
            ref.registry,
            `registry ${ref.registry} paginates ${what} to another host`,
          );
        if (seen.has(nextUrl.href)) return tags;
        url = nextUrl.href;
      }
      throw new RegistryError(
        'REGISTRY_BAD_RESPONSE',
        ref.registry,
        `registry ${ref.registry}: ${what} has over ${MAX_TAG_PAGES} pages`,
      );
    },
  };
}
