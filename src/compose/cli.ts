/**
 * @module The docker compose CLI: detection (v2 plugin preferred, v1 `docker-compose` as fallback), argument
 * building and failure classification. Used by the compose-up worker task.
 *
 * Test/ops hook: the environment variable `SHIPARR_COMPOSE_COMMAND` replaces detection with an explicit command
 * line, split on whitespace (no quoting), e.g. `docker compose`, `docker-compose` or `/path/to/fake-compose`.
 * The command must still answer `<cmd> version`; its output decides v1 vs v2 semantics (default v2).
 *
 * Environment: compose runs with an allow-list ({@link composeEnv}), never the daemon's whole environment, so a compose
 * file cannot read Shiparr's keys and passwords through `${…}`. `SHIPARR_COMPOSE_PASS_ENV` adds names to it.
 */
import type { MessagePort } from 'node:worker_threads';
import { exec, type ExecResult } from '../lib/exec.ts';
import { maskSecrets } from '../lib/redact.ts';

/** Environment variable overriding compose detection (see module doc). */
export const COMPOSE_COMMAND_ENV = 'SHIPARR_COMPOSE_COMMAND';

/** How to invoke compose: `file ...baseArgs <compose args>`. */
export interface ComposeCommand {
  file: string;
  baseArgs: string[];
  /** Major version: v1 lacks `up --pull` and `--ansi`. */
  version: 1 | 2;
  /** Version string as reported, e.g. '2.26.1'. */
  versionText: string;
}

export interface DetectOptions {
  /** Command line overriding detection; defaults to `process.env.SHIPARR_COMPOSE_COMMAND`. */
  override?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

// Per process (= per worker thread): detection spawns one or two processes, not worth repeating per deploy.
// Only successes are cached so that installing compose later does not need a restart.
const cache = new Map<string, ComposeCommand>();

/** Forgets cached detections (tests). */
export function resetComposeDetection(): void {
  cache.clear();
}

/** Finds a working compose CLI, or `null` when neither `docker compose` nor `docker-compose` answers. */
export async function detectCompose(opts: DetectOptions = {}): Promise<ComposeCommand | null> {
  const override = (opts.override ?? process.env[COMPOSE_COMMAND_ENV] ?? '').trim();
  const key = override || '<auto>';
  const hit = cache.get(key);
  if (hit) return hit;

  const candidates: { file: string; baseArgs: string[] }[] = override
    ? [splitCommand(override)]
    : [
        { file: 'docker', baseArgs: ['compose'] },
        { file: 'docker-compose', baseArgs: [] },
      ];
  for (const c of candidates) {
    const r = await exec(c.file, [...c.baseArgs, 'version'], {
      timeoutMs: opts.timeoutMs ?? 15_000,
      signal: opts.signal,
    });
    if (r.code !== 0) continue;
    const found = { ...c, ...parseVersion(r.stdout, c.file) };
    cache.set(key, found);
    return found;
  }
  return null;
}

function splitCommand(line: string): { file: string; baseArgs: string[] } {
  const [file, ...baseArgs] = line.split(/\s+/).filter(Boolean);
  return { file: file as string, baseArgs };
}

/** Parses `docker compose version` / `docker-compose version` output. */
export function parseVersion(text: string, file = ''): { version: 1 | 2; versionText: string } {
  const m = /version\s+v?(\d+)\.(\d+)\.(\d+)\S*/i.exec(text) ?? /v?(\d+)\.(\d+)\.(\d+)/.exec(text);
  if (!m) return { version: /docker-compose$/.test(file) ? 1 : 2, versionText: 'unknown' };
  const major = Number(m[1]);
  return { version: major === 1 ? 1 : 2, versionText: `${m[1]}.${m[2]}.${m[3]}` };
}

/** What every compose invocation names: the project and its files (relative to cwd; empty = compose's default). */
export interface ProjectArgs {
  project: string;
  files: readonly string[];
  /** Absolute `--env-file` replacing the project directory's `.env` (decrypted secrets kept out of the checkout). */
  envFile?: string;
  /**
   * Absolute paths of compose files Shiparr generated outside the checkout (`<data>/generated/<project>/<repo>/`),
   * passed with `-f` after the repository's own files (the content-hash labels of a plan, an exact rollback's image
   * pins).
   */
  overrideFiles?: readonly string[];
}

export interface UpArgs extends ProjectArgs {
  pull: 'always' | 'missing' | 'never';
  build: boolean;
  removeOrphans: boolean;
}

/** Input of a compose worker task: the project, where to run and against which engine. */
interface ComposeInput extends ProjectArgs {
  /** Absolute working directory (the repo's compose directory). */
  cwd: string;
  /** Compose files relative to cwd; empty = compose's own default lookup. */
  files: string[];
  /**
   * The checkout root (default `cwd`): each configured compose file must be a regular file (not a symlink) whose real
   * path is inside it.
   */
  rootDir?: string;
  /** DOCKER_HOST alone (kept for callers without engine settings); `engineEnv` wins when both are set. */
  dockerHost?: string;
  /** The engine's CLI environment (`Engine.env` of compose/engine.ts): DOCKER_HOST, TLS, ssh wrapper PATH. */
  engineEnv?: EngineEnv;
  timeoutMs: number;
}
export interface ComposeUpInput extends ComposeInput, UpArgs {
  files: string[];
  /**
   * Absolute paths of this deploy's decrypted files: the worker reads their values and masks them in compose's
   * output (values never cross the worker boundary in clear). Missing or unreadable files are skipped.
   */
  secretFiles?: string[];
  /**
   * Live output: compose's lines are posted here as they are produced, batched (`{ lines }`), then `{ end: true }`.
   * Transferred to the worker (see workers/pool.ts `onLines`); the captured output in the result is unchanged.
   */
  progress?: MessagePort;
  /**
   * Services whose image tag moved in the registry (an image-update deploy): `compose pull <service…>` runs before
   * `up`, which then keeps the repository's own pull policy.
   */
  pullServices?: string[];
  /**
   * Registry credentials by host (`docker.io` for Docker Hub). When any serves one of the project's images, compose
   * runs with a private DOCKER_CONFIG (under `scratchDir`) holding only those, removed when the task ends.
   */
  registryAuths?: Record<string, { username: string; password: string }>;
  /** Parent of the private DOCKER_CONFIG directory (default: the system temp dir). */
  scratchDir?: string;
}
export interface ComposeOutput {
  /** Combined stdout+stderr, capped. */
  output: string;
}

function globalArgs(c: ComposeCommand, p: ProjectArgs): string[] {
  // --ansi never: captured output goes to logs and the API, where colour codes are noise.
  const ansi = c.version === 2 ? ['--ansi', 'never'] : [];
  const envFile = p.envFile !== undefined ? ['--env-file', p.envFile] : [];
  return [
    ...c.baseArgs,
    ...ansi,
    '-p',
    p.project,
    ...envFile,
    ...[...p.files, ...(p.overrideFiles ?? [])].flatMap((f) => ['-f', f]),
  ];
}

/** `up -d [--remove-orphans] [--pull X] [--build]`. v1 has no `--pull`: use {@link pullArgs} first when pull=always. */
export function upArgs(c: ComposeCommand, o: UpArgs): string[] {
  const args = [...globalArgs(c, o), 'up', '-d'];
  if (o.removeOrphans) args.push('--remove-orphans');
  if (c.version === 2) args.push('--pull', o.pull);
  if (o.build) args.push('--build');
  return args;
}

/** `pull [service…]` (v1 stand-in for `up --pull always`; with services, the image watch's pull of moved tags). */
export function pullArgs(c: ComposeCommand, o: ProjectArgs, services: readonly string[] = []): string[] {
  return [...globalArgs(c, o), 'pull', ...(services.length ? ['--', ...services] : [])];
}

export interface RunOptions {
  cwd: string;
  /** Passed as DOCKER_HOST; otherwise the daemon's own DOCKER_HOST (if any) applies. */
  dockerHost?: string;
  /** The engine's CLI environment (wins over `dockerHost`); see {@link composeEnv}. */
  engineEnv?: EngineEnv;
  timeoutMs: number;
  signal?: AbortSignal;
  /**
   * Extra masking of every captured text (after {@link maskSecrets}), e.g. the values of the deploy's decrypted
   * files, applied where they are known (in the worker) so they never travel back in clear.
   */
  mask?: (text: string) => string;
  /** Receives compose's output line by line as it is produced, masked like the captured text. */
  onLine?: (line: string) => void;
  /** DOCKER_CONFIG for this run (a private directory with registry credentials); default: the daemon's own. */
  dockerConfig?: string;
}

/** Longest line passed to `onLine` (a longer one is cut with an ellipsis). */
const LIVE_LINE_MAX = 4_000;

/** Splits output chunks into lines (a partial line waits for its end; `end()` flushes it). */
function lineSplitter(emit: (line: string) => void): { push(chunk: Buffer): void; end(): void } {
  let partial = '';
  const decoder = new TextDecoder();
  const out = (line: string) => {
    const l = line.replace(/\r$/, '');
    emit(l.length > LIVE_LINE_MAX ? `${l.slice(0, LIVE_LINE_MAX)}…` : l);
  };
  return {
    push(chunk) {
      const lines = (partial + decoder.decode(chunk, { stream: true })).split('\n');
      partial = lines.pop() ?? '';
      // A line without an end for a long time is passed on in pieces rather than held without bound.
      if (partial.length > LIVE_LINE_MAX) {
        lines.push(partial);
        partial = '';
      }
      for (const l of lines) out(l);
    },
    end() {
      partial += decoder.decode();
      if (partial !== '') out(partial);
      partial = '';
    },
  };
}

/** Environment variable: more names for the compose allow-list, comma-separated; `PREFIX_*` allows a prefix. */
export const COMPOSE_PASS_ENV = 'SHIPARR_COMPOSE_PASS_ENV';

/** What compose and the docker CLI need on any host: executables, config dir (~/.docker), temp files, proxies. */
const PASS_NAMES = new Set([
  'PATH',
  'HOME',
  'TMPDIR',
  // Rootless engines: the default socket lives under XDG_RUNTIME_DIR; ssh:// engines need the agent socket.
  'XDG_RUNTIME_DIR',
  'SSH_AUTH_SOCK',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
  'http_proxy',
  'https_proxy',
  'no_proxy',
]);
const PASS_PREFIXES = ['DOCKER_', 'COMPOSE_'];
/** Never passed, even when listed in SHIPARR_COMPOSE_PASS_ENV: the daemon's own settings and keys. */
const NEVER_PASSED = /^(SHIPARR_|SOPS_)|^GITHUB_TOKEN$/;

/** An engine's CLI environment (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, PATH with the ssh wrapper). */
export type EngineEnv = Readonly<Record<string, string>>;

/** The daemon's own engine variables: dropped when a repository names its engine, so they cannot mix. */
const ENGINE_VARS = ['DOCKER_HOST', 'DOCKER_TLS_VERIFY', 'DOCKER_TLS', 'DOCKER_CERT_PATH', 'DOCKER_CONTEXT'];

/**
 * The environment compose runs with: an allow-list of `base` (PATH, HOME, TMPDIR, XDG_RUNTIME_DIR, SSH_AUTH_SOCK,
 * DOCKER_*, COMPOSE_*, the proxy variables in both cases, and the names of `SHIPARR_COMPOSE_PASS_ENV`), plus the
 * repository's engine: a DOCKER_HOST string, or an engine environment from compose/engine.ts (which replaces the
 * daemon's own DOCKER_HOST/DOCKER_TLS_VERIFY/DOCKER_CERT_PATH/DOCKER_CONTEXT). Nothing else of the daemon
 * (SOPS_AGE_KEY, SHIPARR_AUTH_PASSWORD, GITHUB_TOKEN…) is visible to `${…}` in a compose file. The project's `.env`
 * (e.g. the decrypted `.env.enc`) is read by compose itself.
 */
export function composeEnv(base: NodeJS.ProcessEnv, engine?: string | EngineEnv): NodeJS.ProcessEnv {
  const extra = (base[COMPOSE_PASS_ENV] ?? '')
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  const names = new Set([...PASS_NAMES, ...extra.filter((n) => !n.endsWith('*'))]);
  const prefixes = [...PASS_PREFIXES, ...extra.filter((n) => n.endsWith('*')).map((n) => n.slice(0, -1))];
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) {
    if (v === undefined || NEVER_PASSED.test(k)) continue;
    if (names.has(k) || prefixes.some((p) => k.startsWith(p))) env[k] = v;
  }
  if (typeof engine === 'string') {
    if (engine) env.DOCKER_HOST = engine;
  } else if (engine && Object.keys(engine).length) {
    for (const k of ENGINE_VARS) delete env[k];
    Object.assign(env, engine);
  }
  return env;
}

/** The files compose's own lookup tries in `cwd` (any `-f`, e.g. an override file, turns that lookup off). */
export const DEFAULT_COMPOSE_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yml', 'docker-compose.yaml'];

/**
 * Runs compose with the allow-listed environment of {@link composeEnv}; all captured text comes back passed through
 * {@link maskSecrets} and `o.mask`.
 */
export async function runCompose(c: ComposeCommand, args: readonly string[], o: RunOptions): Promise<ExecResult> {
  const mask = (text: string): string => (o.mask ? o.mask(maskSecrets(text)) : maskSecrets(text));
  const onLine = o.onLine;
  const lines = onLine ? lineSplitter((l) => onLine(mask(l))) : undefined;
  const r = await exec(c.file, args, {
    cwd: o.cwd,
    timeoutMs: o.timeoutMs,
    signal: o.signal,
    env: {
      ...composeEnv(process.env, o.engineEnv ?? o.dockerHost),
      ...(o.dockerConfig ? { DOCKER_CONFIG: o.dockerConfig } : {}),
    },
    inheritEnv: false,
    // compose is background work: keep the API and the other repositories' polls responsive on small hosts.
    niceness: 10,
    ...(lines ? { onOutput: (chunk: Buffer) => lines.push(chunk) } : {}),
  });
  lines?.end();
  return {
    ...r,
    stdout: mask(r.stdout),
    stderr: mask(r.stderr),
    output: mask(r.output),
    error: r.error && mask(r.error),
  };
}

const DAEMON_UNREACHABLE = [
  /Cannot connect to the Docker daemon/i,
  /error during connect/i,
  /dial unix [^\s:]+: connect: (no such file or directory|connection refused|permission denied)/i,
  /\.sock: connect: (no such file or directory|connection refused)/i,
  /dial tcp [^\s]+: connect: connection refused/i,
];

/**
 * true when compose output says the engine could not be reached (socket missing/closed, daemon stopped). Compose
 * file errors like `open compose.yaml: no such file or directory` are not matched: only socket/dial errors are.
 */
export function isDaemonUnreachable(text: string): boolean {
  return DAEMON_UNREACHABLE.some((re) => re.test(text));
}

/** Failure half of TaskResult (without durationMs). */
export interface ComposeFailure {
  ok: false;
  code: string;
  message: string;
  transient: boolean;
  output?: string;
}

/** Output kept in a failure result: the tail, where compose prints its error. */
const FAILURE_OUTPUT_BYTES = 16 * 1024;

/**
 * Maps a failed compose run to a task failure: COMPOSE_NOT_FOUND (could not start), COMPOSE_TIMEOUT (killed at
 * the timeout), COMPOSE_ABORTED, DOCKER_UNREACHABLE (transient) or `failCode` with compose's own error text.
 */
export function classifyFailure(r: ExecResult, failCode: string, what: string, timeoutMs: number): ComposeFailure {
  const output = tail(r.output, FAILURE_OUTPUT_BYTES);
  if (r.error && !r.aborted) {
    return {
      ok: false,
      code: 'COMPOSE_NOT_FOUND',
      message: `${what}: compose could not be started (${r.error})`,
      transient: false,
    };
  }
  if (r.timedOut) {
    return {
      ok: false,
      code: 'COMPOSE_TIMEOUT',
      message: `${what} timed out after ${Math.round(timeoutMs / 1000)} s and was killed`,
      transient: false,
      output,
    };
  }
  if (r.aborted) return { ok: false, code: 'COMPOSE_ABORTED', message: `${what} was aborted`, transient: true, output };
  if (isDaemonUnreachable(r.output)) {
    return {
      ok: false,
      code: 'DOCKER_UNREACHABLE',
      message: `${what}: Docker engine unreachable${sshReason(r.output) ?? `: ${lastLine(r.output)}`}`,
      transient: true,
      output,
    };
  }
  return {
    ok: false,
    code: failCode,
    message: `${what} failed (exit ${r.code ?? r.signal}): ${lastLine(r.output)}`,
    transient: false,
    output,
  };
}

/** The failure returned when no compose CLI is found. */
export function composeNotFound(): ComposeFailure {
  return {
    ok: false,
    code: 'COMPOSE_NOT_FOUND',
    message: `neither "docker compose" (v2) nor "docker-compose" (v1) is available${process.env[COMPOSE_COMMAND_ENV] ? ` (${COMPOSE_COMMAND_ENV} is set)` : ''}`,
    transient: false,
  };
}

/**
 * What ssh said when the docker CLI's `ssh … docker system dial-stdio` exited (` over ssh: <host>: Permission denied
 * (publickey).`, ` over ssh: Host key verification failed.`): the last line of ssh's stderr, without the user name;
 * null when the output is not such a failure. The CLI puts that stderr at the end of a long line {@link lastLine} cuts.
 */
function sshReason(text: string): string | null {
  const m = /command \[ssh [^\]]*\] has exited with exit status \d+.*?stderr=/.exec(text);
  if (!m) return null;
  // ssh's own last line says why (a changed host key comes with a banner of warnings before it).
  const said = text
    .slice(m.index + m[0].length)
    .split('\n')
    .map((l) => l.replace(/["\\]+$/, '').trim())
    .filter((l) => l !== '' && !/^@+$/.test(l))
    .at(-1)
    ?.replace(/\b[^\s@/]+@(?=[^\s@/]+:)/g, '');
  if (!said) return null;
  return ` over ssh: ${said.length > 300 ? `${said.slice(0, 300)}…` : said}`;
}

function lastLine(text: string): string {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const line = lines.at(-1) ?? 'no output';
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}

function tail(text: string, max: number): string {
  return text.length > max ? `…${text.slice(text.length - max)}` : text;
}
