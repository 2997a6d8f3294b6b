/** @module Service settings from the environment (`SHIPARR_*`, also the original Shiparr script's `Shiparr_*` spelling), validated with zod. */
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
/** `auto`: human-readable lines when stdout is a terminal, JSON lines otherwise. */
export const LOG_FORMATS = ['auto', 'json', 'pretty'] as const;

/** Raw environment names → settings keys. The defaults are the ones README.md lists under "Service settings". */
const SettingsEnvSchema = z.object({
  SHIPARR_PORT: int(0, 65535).default(8080),
  SHIPARR_HOST: z.string().trim().min(1).default('0.0.0.0'),
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
  SHIPARR_AUTH_ENABLED: bool.default(false),
  SHIPARR_AUTH_USERNAME: z.string().default('admin'),
  SHIPARR_AUTH_PASSWORD: optionalText,
  SHIPARR_PUBLIC_WIDGETS: bool.default(false),
  SHIPARR_WEBHOOK_SECRET: optionalText,
  GITHUB_TOKEN: optionalText,
  SHIPARR_MAX_CONCURRENT_DEPLOYS: int(1, 64).default(2),
  SHIPARR_WORKERS: int(1, 64).optional(),
  SHIPARR_SHUTDOWN_GRACE: int(0, 3600).default(30),
  SHIPARR_HISTORY_KEEP: int(0, 1_000_000).default(1000),
  DOCKER_HOST: optionalText,
});

export type LogLevel = (typeof LOG_LEVELS)[number];
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
  /** `publicWidgets`: serve the Dashy widget routes without Basic Auth (Dashy's browser fetch sends no credentials). */
  auth: { enabled: boolean; username: string; password: string | undefined; publicWidgets: boolean };
  webhookSecret: string | undefined;
  githubToken: string | undefined;
  maxConcurrentDeploys: number;
  workers: number;
  /** Seconds in-flight deploys get to finish on SIGTERM. */
  shutdownGraceSeconds: number;
  /** Deployment rows kept per repository (older finished ones are pruned with their logs); 0 keeps all. */
  historyKeep: number;
  dockerHost: string | undefined;
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
  if (e.SHIPARR_AUTH_ENABLED && !e.SHIPARR_AUTH_PASSWORD) {
    issues.push('SHIPARR_AUTH_PASSWORD: must be set when SHIPARR_AUTH_ENABLED=true');
  }
  if (e.SHIPARR_AUTH_ENABLED && !e.SHIPARR_AUTH_USERNAME) {
    issues.push('SHIPARR_AUTH_USERNAME: must not be empty when SHIPARR_AUTH_ENABLED=true');
  }
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
      enabled: e.SHIPARR_AUTH_ENABLED,
      username: e.SHIPARR_AUTH_USERNAME,
      password: e.SHIPARR_AUTH_PASSWORD,
      publicWidgets: e.SHIPARR_PUBLIC_WIDGETS,
    },
    webhookSecret: e.SHIPARR_WEBHOOK_SECRET,
    githubToken: e.GITHUB_TOKEN,
    maxConcurrentDeploys: e.SHIPARR_MAX_CONCURRENT_DEPLOYS,
    workers: e.SHIPARR_WORKERS ?? Math.max(2, Math.min(4, os.availableParallelism())),
    shutdownGraceSeconds: e.SHIPARR_SHUTDOWN_GRACE,
    historyKeep: e.SHIPARR_HISTORY_KEEP,
    dockerHost: e.DOCKER_HOST,
  };
}
