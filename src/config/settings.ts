/** @module Service settings from the environment (`SHIPARR_*`, also the original Shiparr script's `Shiparr_*` spelling), validated with zod. */
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { SettingsError } from '../errors.ts';

const bool = z
  .string()
  .trim()
  .toLowerCase()
  .refine((v) => ['true', 'false', '1', '0', 'yes', 'no', 'on', 'off', ''].includes(v), 'must be true or false')
  .transform((v) => ['true', '1', 'yes', 'on'].includes(v));

const int = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v === '' ? undefined : v));

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** How API callers are authenticated (API tokens are accepted in every mode). */
export const AUTH_MODES = ['basic', 'forward', 'none'] as const;
/** `auto`: human-readable lines when stdout is a terminal, JSON lines otherwise. */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;

/** Raw environment names → settings keys. The defaults are the ones README.md lists under "Service settings". */
const SettingsEnvSchema = z.object({
  SHIPARR_PORT: int(0, 65535).default(8080),
  SHIPARR_HOST: z.string().trim().min(1).default('127.0.0.1'),
  SHIPARR_CONFIG_PATH: z.string().trim().min(1).default('./config/projects'),
  SHIPARR_DATA_PATH: z.string().trim().min(1).default('./data'),
  SHIPARR_LOG_LEVEL: z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }))
    .default('info'),
  SHIPARR_LOG_FORMAT: z
    .string()
    .trim()
    .toLowerCase()
    .pipe(z.enum(LOG_FORMATS, { error: `must be one of ${LOG_FORMATS.join(', ')}` }))
    .default('auto'),
  SOPS_AGE_KEY_FILE: optionalText,
  SOPS_AGE_KEY: optionalText,
  // Empty counts as unset (.env.example lists it empty): the mode then follows SHIPARR_AUTH_ENABLED.
  SHIPARR_AUTH_MODE: z
    .string()
    .trim()
    .toLowerCase()
    .transform((v) => (v === '' ? undefined : v))
    .pipe(z.enum(AUTH_MODES, { error: `must be one of ${AUTH_MODES.join(', ')}` }).optional())
    .optional(),
  SHIPARR_AUTH_ENABLED: bool.default(false),
  SHIPARR_AUTH_USERNAME: z.string().default('admin'),
  SHIPARR_AUTH_PASSWORD: optionalText,
  SHIPARR_PUBLIC_WIDGETS: bool.default(false),
  SHIPARR_FORWARD_AUTH_HEADER: z
    .string()
    .trim()
    .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, 'must be an HTTP header name')
    .default('Remote-User'),
  SHIPARR_TRUSTED_PROXIES: optionalText,
  SHIPARR_API_TOKENS: optionalText,
  SHIPARR_ALLOWED_HOSTS: optionalText,
  SHIPARR_ALLOW_UNAUTHENTICATED: bool.default(false),
  SHIPARR_WEBHOOK_SECRET: optionalText,
  GITHUB_TOKEN: optionalText,
  SHIPARR_MAX_CONCURRENT_DEPLOYS: int(1, 64).default(2),
  SHIPARR_MAX_CONCURRENT_DEPLOYS_PER_HOST: int(0, 64).default(0),
  SHIPARR_WORKERS: int(1, 64).optional(),
  SHIPARR_SHUTDOWN_GRACE: int(0, 3600).default(30),
  SHIPARR_HISTORY_KEEP: int(0, 1_000_000).default(1000),
  SHIPARR_DOCKER_CONFIG: optionalText,
  DOCKER_HOST: optionalText,
  SHIPARR_AUTH_MAX_FAILURES: int(1, 1_000_000).default(20),
  SHIPARR_AUTH_BLOCK_SECONDS: int(1, 86_400).default(60),
  SHIPARR_MAX_SSE_CLIENTS: int(1, 100_000).default(64),
  SHIPARR_MAX_WEBHOOKS_IN_FLIGHT: int(1, 10_000).default(8),
});

export type LogLevel = (typeof LOG_LEVELS)[number];
export type AuthMode = (typeof AUTH_MODES)[number];

/** An API token (`Authorization: Bearer …`); `name` is what the audit trail shows (`token:<name>`), never the value. */
export interface ApiToken {
  name: string;
  token: string;
}
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface Settings {
  port: number;
  host: string;
  /** Absolute. */
  configPath: string;
  /** Absolute. */
  dataPath: string;
  logLevel: LogLevel;
  logFormat: LogFormat;
  sopsAgeKeyFile: string | undefined;
  sopsAgeKey: string | undefined;
  /**
   * `mode`: basic (user + password), forward (a user header set by a trusted reverse proxy) or none; `enabled` is
   * `mode === 'basic'`. `publicWidgets`: serve the Dashy widget routes without auth (Dashy's browser fetch sends no
   * credentials). `tokens` are accepted as `Authorization: Bearer …` in every mode.
   */
  auth: {
    mode: AuthMode;
    enabled: boolean;
    username: string;
    password: string | undefined;
    publicWidgets: boolean;
    forwardHeader: string;
    /** CIDR blocks (or single addresses) whose TCP connections may set the forward-auth header. */
    trustedProxies: string[];
    tokens: ApiToken[];
  };
  /**
   * Host names the API answers to when no authentication is configured (DNS-rebinding guard); `*` disables the
   * check. Default: localhost, 127.0.0.1, ::1, the bound address when specific, and this machine's host name.
   */
  allowedHosts: string[];
  /** Listen on a non-loopback address without authentication anyway (logged as a warning at every start). */
  allowUnauthenticated: boolean;
  webhookSecret: string | undefined;
  githubToken: string | undefined;
  /** SHIPARR_DOCKER_CONFIG: a Docker CLI config.json whose `auths` serve registries no project file lists. */
  dockerConfigFile: string | undefined;
  maxConcurrentDeploys: number;
  /** Deploys at once on one Docker engine (SHIPARR_MAX_CONCURRENT_DEPLOYS_PER_HOST); 0 = only the global limit. */
  maxConcurrentDeploysPerHost: number;
  workers: number;
  /** Seconds in-flight deploys get to finish on SIGTERM. */
  shutdownGraceSeconds: number;
  /** Deployment rows kept per repository (older finished ones are pruned with their logs); 0 keeps all. */
  historyKeep: number;
  dockerHost: string | undefined;
  /** HTTP abuse limits: failed authentications per address per 60 s, block seconds, open SSE streams, webhooks in flight. */
  limits: { authMaxFailures: number; authBlockSeconds: number; maxSseClients: number; maxWebhooksInFlight: number };
}

/**
 * Reads settings from an environment object. `SHIPARR_X` wins over `Shiparr_X`.
 * Throws SettingsError listing every bad variable (the CLI prints it and exits 2).
 */
export function loadSettings(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): Settings {
  const normalised: Record<string, string | undefined> = {};
  for (const key of Object.keys(SettingsEnvSchema.shape)) {
    const seedKey = key.startsWith('SHIPARR_') ? `Shiparr_${key.slice('SHIPARR_'.length)}` : key;
    const value = env[key] ?? env[seedKey];
    if (value !== undefined) normalised[key] = value;
  }
  const parsed = SettingsEnvSchema.safeParse(normalised);
  if (!parsed.success) {
    throw new SettingsError(
      parsed.error.issues.map((i) => {
        const name = String(i.path[0] ?? '');
        const raw = normalised[name];
        const shown =
          raw === undefined || /PASSWORD|SECRET|TOKEN|KEY/.test(name) ? '' : ` (got ${JSON.stringify(raw)})`;
        return `${name}: ${i.message}${shown}`;
      }),
    );
  }
  const e = parsed.data;
  const issues: string[] = [];
  // SHIPARR_AUTH_ENABLED=true is the older spelling of SHIPARR_AUTH_MODE=basic; false leaves the choice to the mode.
  if (e.SHIPARR_AUTH_ENABLED && e.SHIPARR_AUTH_MODE !== undefined && e.SHIPARR_AUTH_MODE !== 'basic') {
    issues.push(
      `SHIPARR_AUTH_MODE: "${e.SHIPARR_AUTH_MODE}" conflicts with SHIPARR_AUTH_ENABLED=true (which means basic); unset one of them`,
    );
  }
  const mode: AuthMode = e.SHIPARR_AUTH_MODE ?? (e.SHIPARR_AUTH_ENABLED ? 'basic' : 'none');
  const basicBy = e.SHIPARR_AUTH_MODE === 'basic' ? 'SHIPARR_AUTH_MODE=basic' : 'SHIPARR_AUTH_ENABLED=true';
  if (mode === 'basic' && !e.SHIPARR_AUTH_PASSWORD) {
    issues.push(`SHIPARR_AUTH_PASSWORD: must be set when ${basicBy}`);
  }
  if (mode === 'basic' && !e.SHIPARR_AUTH_USERNAME) {
    issues.push(`SHIPARR_AUTH_USERNAME: must not be empty when ${basicBy}`);
  }
  const trustedProxies = list(e.SHIPARR_TRUSTED_PROXIES);
  for (const cidr of trustedProxies) {
    const reason = cidrProblem(cidr);
    if (reason) issues.push(`SHIPARR_TRUSTED_PROXIES: ${JSON.stringify(cidr.slice(0, 60))} ${reason}`);
  }
  if (mode === 'forward' && trustedProxies.length === 0) {
    issues.push('SHIPARR_TRUSTED_PROXIES: must list the reverse proxy address(es) when SHIPARR_AUTH_MODE=forward');
  }
  const tokens = parseTokens(e.SHIPARR_API_TOKENS, issues);
  if (issues.length) throw new SettingsError(issues);
  return {
    port: e.SHIPARR_PORT,
    host: e.SHIPARR_HOST,
    configPath: path.resolve(cwd, e.SHIPARR_CONFIG_PATH),
    dataPath: path.resolve(cwd, e.SHIPARR_DATA_PATH),
    logLevel: e.SHIPARR_LOG_LEVEL,
    logFormat: e.SHIPARR_LOG_FORMAT,
    sopsAgeKeyFile: e.SOPS_AGE_KEY_FILE ? path.resolve(cwd, e.SOPS_AGE_KEY_FILE) : undefined,
    sopsAgeKey: e.SOPS_AGE_KEY,
    auth: {
      mode,
      enabled: mode === 'basic',
      username: e.SHIPARR_AUTH_USERNAME,
      password: e.SHIPARR_AUTH_PASSWORD,
      publicWidgets: e.SHIPARR_PUBLIC_WIDGETS,
      forwardHeader: e.SHIPARR_FORWARD_AUTH_HEADER,
      trustedProxies,
      tokens,
    },
    allowedHosts:
      e.SHIPARR_ALLOWED_HOSTS === undefined
        ? defaultAllowedHosts(e.SHIPARR_HOST)
        : list(e.SHIPARR_ALLOWED_HOSTS).map(normaliseHost),
    allowUnauthenticated: e.SHIPARR_ALLOW_UNAUTHENTICATED,
    webhookSecret: e.SHIPARR_WEBHOOK_SECRET,
    githubToken: e.GITHUB_TOKEN,
    dockerConfigFile: e.SHIPARR_DOCKER_CONFIG ? path.resolve(cwd, e.SHIPARR_DOCKER_CONFIG) : undefined,
    maxConcurrentDeploys: e.SHIPARR_MAX_CONCURRENT_DEPLOYS,
    maxConcurrentDeploysPerHost: e.SHIPARR_MAX_CONCURRENT_DEPLOYS_PER_HOST,
    workers: e.SHIPARR_WORKERS ?? Math.max(2, Math.min(4, os.availableParallelism())),
    shutdownGraceSeconds: e.SHIPARR_SHUTDOWN_GRACE,
    historyKeep: e.SHIPARR_HISTORY_KEEP,
    dockerHost: e.DOCKER_HOST,
    limits: {
      authMaxFailures: e.SHIPARR_AUTH_MAX_FAILURES,
      authBlockSeconds: e.SHIPARR_AUTH_BLOCK_SECONDS,
      maxSseClients: e.SHIPARR_MAX_SSE_CLIENTS,
      maxWebhooksInFlight: e.SHIPARR_MAX_WEBHOOKS_IN_FLIGHT,
    },
  };
}

/** Comma-separated list → trimmed, non-empty items. */
function list(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** Lower-case host name without IPv6 brackets (as the Host check compares it). */
function normaliseHost(host: string): string {
  return host.toLowerCase().replace(/^\[(.*)\]$/, '$1');
}

/** true for addresses that only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = normaliseHost(host);
  return h === 'localhost' || h === '::1' || /^127\.\d+\.\d+\.\d+$/.test(h) || /^::ffff:127\.\d+\.\d+\.\d+$/.test(h);
}

/** localhost, 127.0.0.1, ::1, the bound address when it is a specific one, and this machine's host name. */
function defaultAllowedHosts(bind: string): string[] {
  const hosts = new Set(['localhost', '127.0.0.1', '::1']);
  const b = normaliseHost(bind);
  if (b !== '0.0.0.0' && b !== '::') hosts.add(b);
  const name = os.hostname().toLowerCase();
  if (name) hosts.add(name);
  return [...hosts];
}

/** Why `cidr` is not an address or an address/prefix block, or null when it is one. */
function cidrProblem(cidr: string): string | null {
  const [addr = '', prefix, extra] = cidr.split('/');
  const family = net.isIP(addr);
  if (family === 0 || extra !== undefined) return 'is not an IP address or CIDR block';
  if (prefix === undefined) return null;
  const max = family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(prefix) || Number(prefix) > max) return `has a prefix length outside 0–${max}`;
  return null;
}

/** Minimum API token length: 32 characters (e.g. `openssl rand -hex 16` or longer). */
const MIN_TOKEN_LENGTH = 32;

/**
 * Parses SHIPARR_API_TOKENS: comma-separated tokens, each optionally `name:token`. Unnamed tokens are called
 * `token-<n>` (their position). Problems are described by position and name, never by the token's characters.
 */
function parseTokens(raw: string | undefined, issues: string[]): ApiToken[] {
  const tokens: ApiToken[] = [];
  const names = new Set<string>();
  list(raw).forEach((item, i) => {
    const named = /^([A-Za-z0-9_.-]{1,64}):(.+)$/.exec(item);
    const name = named?.[1] ?? `token-${i + 1}`;
    const token = named?.[2] ?? item;
    const which = named ? `token "${name}"` : `token ${i + 1}`;
    if (token.length < MIN_TOKEN_LENGTH)
      issues.push(
        `SHIPARR_API_TOKENS: ${which} is too short (each token needs at least ${MIN_TOKEN_LENGTH} characters)`,
      );
    else if (/[\s]/.test(token)) issues.push(`SHIPARR_API_TOKENS: ${which} contains white space`);
    else if (names.has(name)) issues.push(`SHIPARR_API_TOKENS: the name "${name}" is used twice`);
    names.add(name);
    tokens.push({ name, token });
  });
  return tokens;
}

/**
 * Why serving with these settings would expose an unauthenticated API to the network (listening on a non-loopback
 * address with SHIPARR_AUTH_MODE=none), naming the fixes; null when the settings are safe or
 * SHIPARR_ALLOW_UNAUTHENTICATED=true accepts the risk. `shiparr serve` refuses to start (exit 2) with this message.
 */
export function unauthenticatedExposure(
  settings: Pick<Settings, 'host' | 'auth' | 'allowUnauthenticated'>,
): string | null {
  if (settings.auth.mode !== 'none' || isLoopbackHost(settings.host) || settings.allowUnauthenticated) return null;
  return (
    `refusing to serve the API on ${settings.host} without authentication: anyone who can reach the port could deploy. ` +
    'Enable auth (SHIPARR_AUTH_MODE=basic with SHIPARR_AUTH_PASSWORD, or SHIPARR_AUTH_MODE=forward behind a proxy), ' +
    'or bind SHIPARR_HOST=127.0.0.1, or set SHIPARR_ALLOW_UNAUTHENTICATED=true to accept the risk'
  );
}
