/** @module The one root pino logger. Components take `log.child({ component })`; nothing else calls pino(). */
import { pino, type Logger, type LevelWithSilent, type DestinationStream } from 'pino';
import { build as prettyStream } from 'pino-pretty';
import { maskSecrets } from './lib/redact.ts';

export type { Logger };

/** Key paths whose values are always replaced by `[Redacted]`, at any of the first levels. */
const SECRET_KEYS = [
  'token',
  'tokens',
  'password',
  'pass',
  'secret',
  'webhook_secret',
  'webhookSecret',
  'authorization',
  'Authorization',
  'ageKey',
  'age_key',
  'sopsAgeKey',
  'SOPS_AGE_KEY',
  'cookie',
  'plaintext',
  'identity',
  'identities',
  'dataKey',
];
const REDACT_PATHS = [
  ...SECRET_KEYS,
  ...SECRET_KEYS.map((k) => `*.${k}`),
  ...SECRET_KEYS.map((k) => `*.*.${k}`),
  'headers.authorization',
  '*.headers.authorization',
  'req.headers.authorization',
  'req.headers.cookie',
  'headers["x-gitlab-token"]',
  'req.headers["x-gitlab-token"]',
];

function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return maskSecrets(value);
  if (depth > 4 || value === null || typeof value !== 'object') return value;
  if (value instanceof Error) return value;
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = scrub(v, depth + 1);
  return out;
}

export interface LoggerOptions {
  level: LevelWithSilent;
  /** `pretty`: human-readable lines; `json`: one JSON object a line; `auto` (default): pretty when stdout is a TTY. */
  format?: 'auto' | 'json' | 'pretty';
  /** Write here instead of stdout (tests). */
  destination?: DestinationStream;
}

/** Creates the root logger: redaction of secret keys + masking of URL credentials / keys in every string. */
export function createLogger(opts: LoggerOptions): Logger {
  const format = opts.format ?? 'auto';
  const pretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true && !opts.destination);
  const options = {
    level: opts.level,
    base: { pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: '[Redacted]' },
    formatters: { log: (obj: Record<string, unknown>) => scrub(obj) as Record<string, unknown> },
    hooks: {
      logMethod(this: Logger, args: Parameters<Logger['info']>, method: (...a: unknown[]) => void) {
        method.apply(
          this,
          args.map((a) => (typeof a === 'string' ? maskSecrets(a) : a)),
        );
      },
    },
    // Error messages and stacks can carry URLs with credentials: mask them like every other string.
    serializers: { err: (e: Error) => scrub(pino.stdSerializers.err(e)) },
  };
  const prettyOptions = { translateTime: 'SYS:HH:MM:ss', ignore: 'pid,hostname' };
  if (pretty && opts.destination)
    return pino(options, prettyStream({ ...prettyOptions, colorize: false, destination: opts.destination }));
  if (opts.destination) return pino(options, opts.destination);
  // A transport formats in a worker thread and flushes on exit; colours only on a terminal.
  if (pretty)
    return pino({
      ...options,
      transport: { target: 'pino-pretty', options: { ...prettyOptions, colorize: process.stdout.isTTY === true } },
    });
  return pino(options);
}

/** A logger that drops everything (tests, CLI one-shots). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
