/**
 * @module Turns a validated project file into resolved `ProjectConfig`/`RepoConfig` values: normalised URLs without
 * credentials, absolute checkout paths, paths that cannot escape their base, tokens picked by host, defaults, and the
 * deploy-relevant `configHash`. Pure apart from hashing and one kind of look-up: the Docker engine settings' files
 * (TLS certificates, ssh keys, known_hosts, the Docker CLI context store) must exist, so a typo is a config error with
 * its key path rather than a failed deploy.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ConfigIssue } from '../domain/types.ts';
import type {
  ImageWatchConfig,
  ProjectConfig,
  ProjectFile,
  RegistryCredentials,
  RepoCommitStatus,
  RepoConfig,
  RepoEngine,
  RepositoryFile,
} from './schema.ts';

/** What resolution needs to know about the host. */
export interface ResolveContext {
  /** Absolute SHIPARR_DATA_PATH; relative `local_path` values live under it. */
  dataPath: string;
  /** Absolute project-file directory: no checkout may live inside it. */
  configDir: string;
  /** GITHUB_TOKEN: the last-resort token for github.com repositories. */
  githubToken?: string;
  /** The Docker CLI config directory holding contexts (default DOCKER_CONFIG, else ~/.docker). */
  dockerConfigDir?: string;
  /** Registry credentials from SHIPARR_DOCKER_CONFIG, for hosts a project file's `registries` does not list. */
  registryAuths?: Record<string, RegistryCredentials>;
}

export interface ResolveResult {
  project?: ProjectConfig;
  issues: ConfigIssue[];
  warnings: ConfigIssue[];
}

/** Formats a key path as `repositories.media-stack.decrypt[0].file` (keys with odd characters in `["…"]`). */
export function formatKeyPath(segments: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of segments) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z0-9_-]+$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

/** Git hosts with a well-known short token key in `tokens`. */
const HOST_ALIASES: Record<string, readonly string[]> = {
  'github.com': ['github'],
  'gitlab.com': ['gitlab'],
  'codeberg.org': ['codeberg', 'gitea'],
};

export type NormalisedUrl =
  { ok: true; url: string; host: string; hostname: string; password?: string } | { ok: false; message: string };

/**
 * Normalises a clone URL: no scheme → `https://`; only http(s); credentials are removed from the URL (the password,
 * if any, is returned separately so it can serve as the token). Messages never echo the URL (it may hold a secret).
 */
export function normaliseGitUrl(raw: string): NormalisedUrl {
  const text = raw.trim();
  if (/^[^/\s:@]+@[^/\s:]+:/.test(text) || /^ssh:\/\//i.test(text) || /^git:\/\//i.test(text)) {
    return {
      ok: false,
      message: 'SSH and git:// URLs are not supported: use an https:// URL (with a token for private repositories)',
    };
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(text);
  if (scheme && !/^https?$/i.test(scheme[1] ?? '')) {
    return { ok: false, message: `unsupported URL scheme "${scheme[1]}": only http:// and https:// are supported` };
  }
  let u: URL;
  try {
    u = new URL(scheme ? text : `https://${text}`);
  } catch {
    return { ok: false, message: 'is not a valid URL (expected e.g. https://github.com/user/repo.git)' };
  }
  if (!u.hostname || !/^[^.]/.test(u.hostname)) {
    return { ok: false, message: 'is not a valid URL: missing host name' };
  }
  if (u.pathname === '/' || u.pathname === '') {
    return { ok: false, message: 'has no repository path (expected e.g. https://github.com/user/repo.git)' };
  }
  if (u.search || u.hash) {
    return { ok: false, message: 'must not contain a query string or fragment' };
  }
  let password: string | undefined;
  if (u.password) {
    try {
      password = decodeURIComponent(u.password);
    } catch {
      password = u.password;
    }
  }
  u.username = '';
  u.password = '';
  return { ok: true, url: u.toString(), host: u.host.toLowerCase(), hostname: u.hostname.toLowerCase(), password };
}

/** The `tokens` entry for a host: an exact `host[:port]`/hostname key first, then the provider alias. */
export function tokenForHost(tokens: Record<string, string>, host: string, hostname: string): string | undefined {
  const lower = new Map(Object.entries(tokens).map(([k, v]) => [k.toLowerCase(), v] as const));
  const candidates = [host, hostname, ...(HOST_ALIASES[hostname] ?? [])];
  for (const key of candidates) {
    const v = lower.get(key);
    if (v) return v;
  }
  return undefined;
}

/** Default compose project name: `<project>-<repo>` lowercased, characters compose rejects replaced by `-`. */
export function defaultComposeProject(project: string, repo: string): string {
  return `${project}-${repo}`.toLowerCase().replace(/[^a-z0-9_-]/g, '-');
}

/** Deterministic JSON: object keys sorted, `undefined` members dropped. */
export function stableStringify(value: unknown): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => stableStringify(v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableStringify(v)}`).join(',')}}`;
}

/**
 * Hash of what changes the deployed result: a difference here redeploys without a new commit. Poll interval,
 * notifications and tokens are deliberately left out so editing them never restarts containers.
 */
export function computeConfigHash(r: Omit<RepoConfig, 'configHash'>): string {
  const relevant = {
    url: r.url,
    branch: r.branch,
    path: r.path,
    composeFiles: r.composeFiles,
    composeProject: r.composeProject,
    pull: r.pull,
    build: r.build,
    removeOrphans: r.removeOrphans,
    decrypt: r.decrypt,
    dockerHost: r.dockerHost,
    // Absent for compose repositories, so their hashes (and the redeploy decision) are unchanged.
    mode: r.mode,
    engine: r.engine,
  };
  return createHash('sha256').update(stableStringify(relevant)).digest('hex').slice(0, 16);
}

/** True when `child` is `parent` or lies below it (both absolute). */
export function isInside(parent: string, child: string): boolean {
  const rel = path.relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Normalises a path that must stay inside its base (`docker/` → `docker`, `a/../b` → `b`).
 * Returns a problem sentence for absolute paths and `..` escapes.
 */
export function normaliseRelative(
  p: string,
  what: string,
): { ok: true; value: string } | { ok: false; message: string } {
  if (isAbsolutePath(p)) return { ok: false, message: `must be a relative path inside ${what}, not an absolute path` };
  const n = normalisePosix(p);
  if (n === '..' || n.startsWith('../')) return { ok: false, message: `escapes ${what} ("..")` };
  return { ok: true, value: n };
}

// Windows drive and UNC forms are refused too: a path from a project file must never be absolute anywhere.
function isAbsolutePath(p: string): boolean {
  return path.posix.isAbsolute(p) || /^[A-Za-z]:[\\/]/.test(p) || p.startsWith('\\');
}

function normalisePosix(p: string): string {
  return path.posix.normalize(p.replace(/\\/g, '/')).replace(/\/+$/, '') || '.';
}

function dedupe(list: readonly string[]): string[] {
  return [...new Set(list)];
}

const nonEmpty = (v: string | undefined): string | undefined => (v === undefined || v.trim() === '' ? undefined : v);

/** Main-thread time a loop over a project's repositories may run before it yields to the event loop (ms). */
const SLICE_MS = 10;

/**
 * A pause for loops over thousands of repositories: each call yields to the event loop (setImmediate) once `sliceMs`
 * of work passed since the last yield, and is a no-op otherwise. One slicer is shared by the stages of a load.
 */
export function timeSlicer(sliceMs = SLICE_MS): () => Promise<void> {
  let since = performance.now();
  return async () => {
    if (performance.now() - since < sliceMs) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    since = performance.now();
  };
}

/**
 * Resolves one validated project file, yielding to the event loop through `pause` between repositories. Any issue
 * means the project is not returned (a half-resolved project must never reach the supervisor); warnings do not block.
 */
export async function resolveProject(
  file: string,
  data: ProjectFile,
  ctx: ResolveContext,
  pause: () => Promise<void> = timeSlicer(),
): Promise<ResolveResult> {
  const issues: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  const repositories: RepoConfig[] = [];
  const at = (segments: PropertyKey[], message: string) =>
    issues.push({ file, path: formatKeyPath(segments), message });

  for (const [name, repo] of Object.entries(data.repositories)) {
    await pause();
    const resolved = resolveRepository(data, name, repo, { ...ctx, file }, at);
    if (repo.check_interval < 10) {
      warnings.push({
        file,
        path: formatKeyPath(['repositories', name, 'check_interval']),
        message: `polling every ${repo.check_interval}s is very frequent; consider webhooks or at least 10 seconds`,
      });
    }
    if (resolved?.token && resolved.url.startsWith('http://')) {
      warnings.push({
        file,
        path: formatKeyPath(['repositories', name, 'url']),
        message: 'a token will be sent over plain http://; use https:// unless this host is on a trusted network',
      });
    }
    if (resolved) repositories.push(resolved);
  }

  // Two repositories of one project sharing a checkout or compose project would overwrite each other.
  issues.push(...(await findRepoConflictsSliced(file, repositories, [], pause)));
  if (issues.length) return { issues, warnings };
  const project: ProjectConfig = { name: data.project, file, repositories };
  if (data.description !== undefined) project.description = data.description;
  return { project, issues, warnings };
}

function resolveRepository(
  data: ProjectFile,
  name: string,
  repo: RepositoryFile,
  ctx: ResolveContext & { file: string },
  at: (segments: PropertyKey[], message: string) => void,
): RepoConfig | undefined {
  const base = ['repositories', name];
  let ok = true;
  const fail = (key: PropertyKey[], message: string) => {
    ok = false;
    at([...base, ...key], message);
  };
  const failAt = (segments: PropertyKey[], message: string) => {
    ok = false;
    at(segments, message);
  };

  const url = normaliseGitUrl(repo.url);
  if (!url.ok) fail(['url'], url.message);

  const sub = normaliseRelative(repo.path, 'the checkout');
  if (!sub.ok) fail(['path'], sub.message);
  const subPath = sub.ok ? sub.value : '.';

  // Files named relative to `path` may point elsewhere in the checkout (e.g. ../base.yaml), never out of it.
  const inCheckout = (p: string, key: PropertyKey[]): string | undefined => {
    if (isAbsolutePath(p)) return void fail(key, 'must be a relative path inside the checkout, not an absolute path');
    const rel = normalisePosix(p);
    const fromRoot = path.posix.normalize(path.posix.join(subPath, rel));
    if (fromRoot === '..' || fromRoot.startsWith('../'))
      return void fail(key, `escapes the checkout (resolved against path "${subPath}")`);
    return rel;
  };

  const composeFiles = repo.compose_files.map((f, i) => inCheckout(f, ['compose_files', i]) ?? f);
  const decrypt: RepoConfig['decrypt'] = [];
  if (repo.env_file !== undefined) {
    const f = inCheckout(repo.env_file, ['env_file']);
    if (f) decrypt.push({ file: f });
  }
  repo.decrypt.forEach((d, i) => {
    const f = inCheckout(d.file, ['decrypt', i, 'file']);
    const entry: RepoConfig['decrypt'][number] = { file: f ?? d.file };
    if (d.format !== undefined) entry.format = d.format;
    if (d.output !== undefined) {
      const o = inCheckout(d.output, ['decrypt', i, 'output']);
      entry.output = o ?? d.output;
    }
    decrypt.push(entry);
  });

  const localPath = resolveLocalPath(data.project, name, repo.local_path, ctx, (m) => fail(['local_path'], m));

  // Project and repository names start with a letter or digit, so the default is always a valid compose name.
  const composeProject = repo.compose_project ?? defaultComposeProject(data.project, name);

  // docker stack deploy ignores `build:` and has no `up --pull`: refuse settings a stack cannot honour.
  if (repo.mode === 'swarm' && repo.build)
    fail(['build'], 'mode swarm cannot build images (docker stack deploy ignores build:); push the image instead');

  if (!ok || !url.ok || !localPath) return undefined;

  const token =
    nonEmpty(repo.token) ??
    nonEmpty(url.password) ??
    tokenForHost(data.tokens, url.host, url.hostname) ??
    (url.hostname === 'github.com' ? nonEmpty(ctx.githubToken) : undefined);

  const healthcheck: RepoConfig['healthcheck'] = {
    timeout: repo.healthcheck.timeout,
    retries: repo.healthcheck.retries,
    interval: repo.healthcheck.interval,
  };
  if (repo.healthcheck.url !== undefined) healthcheck.url = repo.healthcheck.url;

  const resolved: Omit<RepoConfig, 'configHash'> = {
    key: `${data.project}/${name}`,
    project: data.project,
    name,
    url: url.url,
    branch: repo.branch,
    localPath,
    path: subPath,
    checkInterval: repo.check_interval,
    composeFiles,
    composeProject,
    pull: repo.pull,
    build: repo.build,
    removeOrphans: repo.remove_orphans,
    healthcheck,
    rollback: repo.rollback,
    decrypt,
    keepDecrypted: repo.keep_decrypted,
    enabled: repo.enabled,
    suspended: repo.suspended,
    shallow: repo.shallow,
    timeouts: { ...repo.timeouts },
    // Project-wide targets travel with each repository so an actor needs nothing but its own RepoConfig.
    notifications: { success: dedupe(repo.notifications.success), failure: dedupe(repo.notifications.failure) },
    globalNotifications: {
      success: dedupe(data.global_notifications.success),
      failure: dedupe(data.global_notifications.failure),
    },
    notifyRepeatInterval: data.notify_repeat_interval,
  };
  // Optional members are only present when set, so deep comparisons and clones stay stable.
  if (token !== undefined) resolved.token = token;
  const webhookSecret = nonEmpty(repo.webhook_secret);
  if (webhookSecret !== undefined) resolved.webhookSecret = webhookSecret;
  const engine = resolveEngine(data, repo, ctx, base, failAt);
  if (!ok) return undefined;
  if (engine?.host !== undefined) resolved.dockerHost = engine.host;
  if (engine !== undefined) resolved.engine = engine;
  if (repo.mode === 'swarm') resolved.mode = 'swarm';
  if (repo.commit_status) {
    const cs = resolveCommitStatus(repo.commit_status, url.url, token, `shiparr/${data.project}/${name}`, (k, m) =>
      fail(['commit_status', k], m),
    );
    if (!cs) return undefined;
    resolved.commitStatus = cs;
  }
  const registries = resolveRegistries(data.registries, ctx.registryAuths);
  if (registries) resolved.registries = registries;
  if (repo.image_updates !== 'off') resolved.imageWatch = resolveImageWatch(repo, repo.image_updates);
  return { ...resolved, configHash: computeConfigHash(resolved) };
}

/** The API version path each provider's API root ends with (GitHub's is its own host, or `/api/v3` for Enterprise). */
const API_SUFFIX = { github: '', gitea: '/api/v1', gitlab: '/api/v4' } as const;

/**
 * A repository's `commit_status`, resolved: the API root (defaults: api.github.com for github.com, gitlab.com/api/v4
 * for gitlab.com, the clone URL's origin + /api/v1 for Gitea; a Gitea or GitLab `api_url` without its version path
 * gets it appended), the repository path on the forge from the clone URL (a path prefix the API root shares, as
 * in a sub-path install, is dropped), the token (`commit_status.token`, else the repository token) and the context.
 */
function resolveCommitStatus(
  cs: NonNullable<RepositoryFile['commit_status']>,
  cloneUrl: string,
  repoToken: string | undefined,
  defaultContext: string,
  fail: (key: string, message: string) => void,
): RepoCommitStatus | undefined {
  const clone = new URL(cloneUrl);
  const host = clone.hostname.toLowerCase();
  const suffix = API_SUFFIX[cs.provider];
  let apiUrl: string | undefined;
  if (cs.api_url !== undefined) {
    const root = cs.api_url.replace(/\/+$/, '');
    apiUrl = suffix && !root.endsWith(suffix) ? `${root}${suffix}` : root;
  } else if (cs.provider === 'github' && host === 'github.com') apiUrl = 'https://api.github.com';
  else if (cs.provider === 'gitlab' && host === 'gitlab.com') apiUrl = 'https://gitlab.com/api/v4';
  else if (cs.provider === 'gitea') apiUrl = `${clone.origin}${suffix}`;
  if (apiUrl === undefined) {
    const example = cs.provider === 'github' ? `https://${host}/api/v3` : `https://${host}/api/v4`;
    const what = cs.provider === 'github' ? 'GitHub Enterprise' : 'a self-hosted GitLab';
    fail('api_url', `is required for ${what} (${host}): set it to the API root, e.g. ${example}`);
    return undefined;
  }
  let segments = clone.pathname
    .replace(/\.git\/?$/i, '')
    .split('/')
    .filter((p) => p !== '');
  // A forge under a sub-path (https://host/gitea/owner/repo.git with api_url https://host/gitea): drop the prefix.
  const api = new URL(apiUrl);
  if (api.host === clone.host) {
    const prefix = api.pathname
      .slice(0, api.pathname.length - suffix.length)
      .split('/')
      .filter((p) => p !== '');
    if (prefix.length > 0 && prefix.every((p, i) => segments[i] === p)) segments = segments.slice(prefix.length);
  }
  segments = segments.map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  const twoParts = cs.provider !== 'gitlab';
  if (segments.length < 2 || (twoParts && segments.length > 2)) {
    fail(
      'provider',
      twoParts
        ? `cannot tell <owner>/<repo> from the repository url (expected https://host/<owner>/<repo>.git; for a forge under a sub-path set api_url)`
        : 'cannot tell <namespace>/<project> from the repository url (expected https://host/<group>/<project>.git)',
    );
    return undefined;
  }
  const token = nonEmpty(cs.token) ?? repoToken;
  if (token === undefined) {
    fail('token', "no token to post commit statuses with: set commit_status.token or the repository's token");
    return undefined;
  }
  return { provider: cs.provider, apiUrl, repoPath: segments.join('/'), token, context: cs.context ?? defaultContext };
}

/** Docker Hub's other names, as keys of `registries` and of a Docker CLI config's `auths`. */
const DOCKER_HUB_ALIASES = new Set(['index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/** A registry key as image references name it: lowercase, Docker Hub as `docker.io`. */
function registryKey(host: string): string {
  const h = host.toLowerCase();
  return DOCKER_HUB_ALIASES.has(h) ? 'docker.io' : h;
}

/** The project file's `registries` over the SHIPARR_DOCKER_CONFIG auths (keys normalised); undefined when none. */
function resolveRegistries(
  fromFile: ProjectFile['registries'],
  fromDockerConfig: Record<string, RegistryCredentials> | undefined,
): Record<string, RegistryCredentials> | undefined {
  const out: Record<string, RegistryCredentials> = {};
  for (const [host, c] of Object.entries(fromDockerConfig ?? {})) out[registryKey(host)] = { ...c };
  for (const [host, c] of Object.entries(fromFile ?? {})) {
    const entry: RegistryCredentials = { username: c.username, password: c.password };
    if (c.insecure !== undefined) entry.insecure = c.insecure;
    out[registryKey(host)] = entry;
  }
  return Object.keys(out).length ? out : undefined;
}

/** The image watch keys (validated by the schema: semver ranges, RE2 patterns). */
function resolveImageWatch(repo: RepositoryFile, mode: 'notify' | 'auto'): ImageWatchConfig {
  const policy: ImageWatchConfig['policy'] = {};
  for (const [service, p] of Object.entries(repo.image_policy)) {
    const entry: ImageWatchConfig['policy'][string] = {};
    if (p.semver !== undefined) entry.semver = p.semver;
    if (p.tag_regex !== undefined) entry.tagRegex = p.tag_regex;
    policy[service] = entry;
  }
  return { mode, interval: repo.image_check_interval, policy, writeBack: repo.write_back };
}

const ENGINE_SCHEMES = /^(unix|tcp|http|https|ssh):$/;

/**
 * The repository's engine: its own keys when it sets `docker_host` or `docker_context`, else the project's. Checks
 * the scheme, that TLS goes with tcp/http(s) and ssh options with ssh://, that the files exist (relative paths
 * resolve against the project file's folder) and that a context is in the context store.
 */
function resolveEngine(
  data: ProjectFile,
  repo: RepositoryFile,
  ctx: ResolveContext & { file: string },
  base: PropertyKey[],
  fail: (segments: PropertyKey[], message: string) => void,
): RepoEngine | undefined {
  const own = nonEmpty(repo.docker_host) !== undefined || repo.docker_context !== undefined;
  const src = own ? repo : data;
  // Errors in project-level keys are reported at their own (top-level) path.
  const at = (key: PropertyKey[], message: string) => fail(own ? [...base, ...key] : key, message);
  const file = ctx.file;
  const host = nonEmpty(src.docker_host);
  const context = src.docker_context;
  if (host === undefined && context === undefined) {
    if (src.docker_tls) at(['docker_tls'], 'needs docker_host (a tcp:// engine)');
    if (src.docker_ssh) at(['docker_ssh'], 'needs docker_host (an ssh:// engine)');
    return undefined;
  }
  const engine: RepoEngine = {};
  if (host !== undefined && context !== undefined) {
    at(['docker_context'], 'set either docker_host or docker_context, not both');
    return undefined;
  }
  const baseDir = path.dirname(path.resolve(file));
  const fileAt = (key: PropertyKey[], p: string): string => {
    const abs = path.resolve(baseDir, p);
    if (!existsSync(abs)) at(key, `file ${abs} not found`);
    return abs;
  };
  let scheme = '';
  if (host !== undefined) {
    engine.host = host;
    try {
      scheme = new URL(host).protocol;
    } catch {
      at(['docker_host'], 'is not a URL (expected unix://, tcp://, http(s):// or ssh://)');
      return undefined;
    }
    if (!ENGINE_SCHEMES.test(scheme)) {
      at(['docker_host'], `has unsupported scheme "${scheme}" (expected unix://, tcp://, http(s):// or ssh://)`);
      return undefined;
    }
  } else if (context !== undefined && context !== 'default') {
    engine.context = context;
    const configDir = ctx.dockerConfigDir ?? (process.env.DOCKER_CONFIG || path.join(os.homedir(), '.docker'));
    const id = createHash('sha256').update(context).digest('hex');
    if (!existsSync(path.join(configDir, 'contexts', 'meta', id, 'meta.json'))) {
      at(['docker_context'], `docker context "${context}" not found in ${configDir}`);
    }
  }
  if (src.docker_tls) {
    if (scheme && !/^(tcp|http|https):$/.test(scheme)) at(['docker_tls'], 'applies only to tcp:// engines');
    const t = src.docker_tls;
    engine.tls = { verify: t.verify };
    if (t.ca !== undefined) engine.tls.ca = fileAt(['docker_tls', 'ca'], t.ca);
    if (t.cert !== undefined) engine.tls.cert = fileAt(['docker_tls', 'cert'], t.cert);
    if (t.key !== undefined) engine.tls.key = fileAt(['docker_tls', 'key'], t.key);
    if (t.verify && t.ca === undefined) at(['docker_tls', 'ca'], 'is required when verify is true');
    if ((t.cert === undefined) !== (t.key === undefined)) at(['docker_tls'], 'cert and key go together');
  }
  if (src.docker_ssh) {
    if (scheme !== 'ssh:') at(['docker_ssh'], 'applies only to ssh:// engines');
    const s = src.docker_ssh;
    engine.ssh = {};
    if (s.key !== undefined) engine.ssh.key = fileAt(['docker_ssh', 'key'], s.key);
    if (s.known_hosts !== undefined) engine.ssh.knownHosts = fileAt(['docker_ssh', 'known_hosts'], s.known_hosts);
  }
  return engine;
}

function resolveLocalPath(
  project: string,
  repo: string,
  localPath: string | undefined,
  ctx: ResolveContext,
  fail: (message: string) => void,
): string | undefined {
  const dataPath = path.resolve(ctx.dataPath);
  if (localPath === undefined) return path.join(dataPath, 'deployments', project, repo);
  let abs: string;
  if (path.isAbsolute(localPath)) {
    abs = path.resolve(localPath);
  } else {
    const rel = normaliseRelative(localPath, 'SHIPARR_DATA_PATH');
    if (!rel.ok) return void fail(rel.message);
    abs = path.resolve(dataPath, rel.value);
  }
  // Checkouts are force-reset and cleaned: they must never cover the filesystem root, the data directory
  // (database) or the project files themselves.
  if (abs === path.parse(abs).root) return void fail('must not be the filesystem root');
  if (isInside(abs, dataPath)) return void fail('must not be SHIPARR_DATA_PATH itself or one of its parents');
  const configDir = path.resolve(ctx.configDir);
  if (isInside(configDir, abs) || isInside(abs, configDir))
    return void fail('must not be inside (or contain) the Shiparr config directory');
  return abs;
}

/**
 * The checkout directories and compose project names of repositories accepted so far, indexed so that checking one
 * more repository costs a walk up its own path instead of a comparison with every other repository (a boot with
 * thousands of repositories would otherwise spend seconds here).
 */
export class RepoConflictIndex {
  readonly #compose = new Map<string, RepoConfig>();
  /** Exact checkout directory → its repository. */
  readonly #paths = new Map<string, RepoConfig>();
  /** Every directory above a checkout → the first repository below it. */
  readonly #above = new Map<string, RepoConfig>();

  constructor(repos: Iterable<RepoConfig> = []) {
    for (const r of repos) this.add(r);
  }

  add(r: RepoConfig): void {
    if (!this.#compose.has(r.composeProject)) this.#compose.set(r.composeProject, r);
    const dir = path.resolve(r.localPath);
    if (!this.#paths.has(dir)) this.#paths.set(dir, r);
    for (let d = path.dirname(dir); ; d = path.dirname(d)) {
      if (!this.#above.has(d)) this.#above.set(d, r);
      if (d === path.dirname(d)) break;
    }
  }

  /** The accepted repository using the same compose project, if any. */
  sameCompose(r: RepoConfig): RepoConfig | undefined {
    return this.#compose.get(r.composeProject);
  }

  /** An accepted repository whose checkout is the same directory as `r`'s, above it or below it. */
  overlapping(r: RepoConfig): RepoConfig | undefined {
    const dir = path.resolve(r.localPath);
    const exact = this.#paths.get(dir);
    if (exact) return exact;
    for (let d = path.dirname(dir); ; d = path.dirname(d)) {
      const above = this.#paths.get(d);
      if (above) return above;
      if (d === path.dirname(d)) break;
    }
    return this.#above.get(dir);
  }
}

/**
 * Conflicts between `candidates` (one project) and each other or already `accepted` repositories: a shared checkout
 * directory (or one nested in another) or a shared compose project name. Accepted repositories can be given as an
 * index the caller keeps; the candidates are not added to it.
 */
export function findRepoConflicts(
  file: string,
  candidates: readonly RepoConfig[],
  accepted: readonly RepoConfig[] | RepoConflictIndex,
): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const others = accepted instanceof RepoConflictIndex ? accepted : new RepoConflictIndex(accepted);
  const own = new RepoConflictIndex();
  for (const r of candidates) issues.push(...repoConflicts(file, r, others, own));
  return issues;
}

/** {@link findRepoConflicts}, yielding to the event loop through `pause` between repositories. */
export async function findRepoConflictsSliced(
  file: string,
  candidates: readonly RepoConfig[],
  accepted: readonly RepoConfig[] | RepoConflictIndex,
  pause: () => Promise<void>,
): Promise<ConfigIssue[]> {
  const issues: ConfigIssue[] = [];
  const others = accepted instanceof RepoConflictIndex ? accepted : new RepoConflictIndex(accepted);
  const own = new RepoConflictIndex();
  for (const r of candidates) {
    await pause();
    issues.push(...repoConflicts(file, r, others, own));
  }
  return issues;
}

/** The conflicts of one candidate with `others` and the candidates before it (`own`, which it is added to). */
function repoConflicts(file: string, r: RepoConfig, others: RepoConflictIndex, own: RepoConflictIndex): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const base = ['repositories', r.name];
  const sameCompose = others.sameCompose(r) ?? own.sameCompose(r);
  if (sameCompose) {
    issues.push({
      file,
      path: formatKeyPath([...base, 'compose_project']),
      message: `compose project "${r.composeProject}" is already used by ${sameCompose.key}`,
    });
  }
  const samePath = others.overlapping(r) ?? own.overlapping(r);
  if (samePath) {
    issues.push({
      file,
      path: formatKeyPath([...base, 'local_path']),
      message: `checkout directory overlaps the one of ${samePath.key}`,
    });
  }
  own.add(r);
  return issues;
}
