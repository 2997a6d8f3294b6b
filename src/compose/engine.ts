/**
 * @module Docker engines: the one place that turns a repository's engine settings (`docker_host`, `docker_tls`,
 * `docker_ssh`, `docker_context`) into (a) the environment of the docker/compose CLI and (b) dockerode options, so
 * the compose CLI, verification, container logs, the container actions and self-update detection all talk to the
 * same endpoint.
 *
 * - `unix://` and plain `tcp://`: DOCKER_HOST / socketPath or host+port.
 * - `tcp://` with TLS: the CA, certificate and key are copied into a private per-engine directory (0700, files 0600)
 *   under the state directory; the CLI gets DOCKER_TLS_VERIFY=1 + DOCKER_CERT_PATH, dockerode `{ca, cert, key}`.
 * - `ssh://user@host[:port]`: the CLI runs the system `ssh` through a generated wrapper (first on PATH) with its own
 *   config file (StrictHostKeyChecking yes, the configured known_hosts, BatchMode, the configured key); dockerode
 *   uses ssh2 with a host-key check against the same known_hosts file. Unknown or changed host keys are refused.
 * - `docker_context: NAME`: read from the Docker CLI context store (`$DOCKER_CONFIG/contexts/meta/<sha256>/meta.json`
 *   and its TLS files), then handled like the host it names.
 * - none of them: the process's own DOCKER_HOST / DOCKER_TLS_VERIFY / DOCKER_CERT_PATH (or the local socket).
 *
 * Key and certificate contents are never logged or put into error messages; engine labels carry no credentials.
 */
import { createHash, createHmac } from 'node:crypto';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import type Dockerode from 'dockerode';
import YAML from 'yaml';
import { AppError } from '../errors.ts';
import { maskSecrets } from '../lib/redact.ts';

/** A repository's engine settings as resolved from its project file (absolute paths). Clone-safe. */
export interface EngineSettings {
  /** DOCKER_HOST value: unix://, tcp://, http(s)://, ssh://. */
  host?: string;
  /** Client TLS material for a tcp:// engine. `verify: false` encrypts without checking the server certificate. */
  tls?: { ca?: string; cert?: string; key?: string; verify: boolean };
  /** ssh:// engines: private key (else the ssh agent) and known_hosts file (else ~/.ssh/known_hosts). */
  ssh?: { key?: string; knownHosts?: string };
  /** A Docker CLI context name (read from the context store); `host`/`tls` take precedence when set too. */
  context?: string;
}

/** An engine ready to use: what the CLI and dockerode need, plus a label safe to show. */
export interface Engine {
  /** Stable identity of the settings (for caches and per-engine limits); no secrets. */
  key: string;
  /** The endpoint for logs, health and metrics: no credentials, no key material ("default" for the local engine). */
  label: string;
  /** {@link engineId} of the resolved settings (a context's endpoint and TLS files, not its name). */
  id: string;
  /** Environment for the docker/compose CLI (merged over the allow-listed environment by `composeEnv`). */
  env: Record<string, string>;
  /** Options for `new Dockerode(…)`. */
  dockerode: Dockerode.DockerOptions;
  /** The containers run on another host (tcp://, ssh://, http(s)://): bind mounts name that host's filesystem. */
  remote: boolean;
}

/** Engine settings Shiparr cannot use (bad scheme, missing file, unknown context). */
class EngineError extends AppError {
  readonly code = 'DOCKER_HOST_INVALID';
}

/** Per-request socket timeout: a hung engine must not hang verification or the logs endpoint forever. */
const REQUEST_TIMEOUT_MS = 30_000;

/** Names of the private known_hosts and key copies of an ssh:// engine in its directory (bin/ssh is the wrapper). */
const SSH_KNOWN_HOSTS = 'known_hosts';
const SSH_KEY = 'id_key';

/** The label of the engine used when a repository sets none. */
const DEFAULT_ENGINE_LABEL = 'default';

/** The identity of engine settings: repositories with the same key share one client and one per-engine limit. */
export function engineKey(s: EngineSettings | undefined): string {
  if (!s || (!s.host && !s.context)) return DEFAULT_ENGINE_LABEL;
  return JSON.stringify([s.host ?? '', s.context ?? '', s.tls ?? null, s.ssh ?? null]);
}

/**
 * A short, secret-free identity of engine settings (8 hex digits of a SHA-256 over the masked host, the context
 * name and the TLS/ssh file paths — never a credential or file content): two engines on the same endpoint with
 * different TLS or ssh settings get different ids, so the metrics can tell them apart.
 */
export function engineId(s: EngineSettings | undefined): string {
  if (!s || (!s.host && !s.context)) return DEFAULT_ENGINE_LABEL;
  const parts = [s.host ? maskEngineHost(s.host) : '', s.context ?? '', s.tls ?? null, s.ssh ?? null];
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 8);
}

/**
 * The engine settings behind a CLI environment that {@link prepareEngine} built (`Engine.env`): its DOCKER_HOST, the
 * private TLS copies of DOCKER_CERT_PATH, and for ssh:// the private known_hosts and key copies next to the ssh
 * wrapper first on PATH. A worker that only receives the CLI environment builds its API client from these, so both
 * talk to the same endpoint with the same credentials. `undefined` when the environment names no engine.
 */
export function engineSettingsFromEnv(env: Readonly<Record<string, string>>): EngineSettings | undefined {
  const host = env.DOCKER_HOST;
  if (!host) return undefined;
  const out: EngineSettings = { host };
  const certPath = env.DOCKER_CERT_PATH;
  if (certPath && (env.DOCKER_TLS_VERIFY === '1' || env.DOCKER_TLS === '1')) {
    const file = (name: string): string | undefined => {
      const f = path.join(certPath, `${name}.pem`);
      return existsSync(f) ? f : undefined;
    };
    out.tls = { ca: file('ca'), cert: file('cert'), key: file('key'), verify: env.DOCKER_TLS_VERIFY === '1' };
  }
  if (host.startsWith('ssh:')) {
    const bin = (env.PATH ?? '').split(path.delimiter)[0] ?? '';
    const dir = path.dirname(bin);
    if (path.basename(bin) === 'bin' && existsSync(path.join(dir, SSH_KNOWN_HOSTS))) {
      const key = path.join(dir, SSH_KEY);
      out.ssh = { knownHosts: path.join(dir, SSH_KNOWN_HOSTS), ...(existsSync(key) ? { key } : {}) };
    }
  }
  return out;
}

/** A DOCKER_HOST value without credentials (user and password removed), for logs, health and metrics. */
export function maskEngineHost(host: string): string {
  try {
    const u = new URL(host);
    if (u.username || u.password) {
      u.username = '';
      u.password = '';
    }
    return maskSecrets(u.protocol === 'unix:' ? `unix://${u.pathname}` : u.toString().replace(/\/$/, ''));
  } catch {
    return maskSecrets(host.replace(/\/\/[^/@]*@/, '//'));
  }
}

/** The Docker CLI configuration directory: DOCKER_CONFIG, else ~/.docker. */
function dockerConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.DOCKER_CONFIG || path.join(os.homedir(), '.docker');
}

/** Where a Docker CLI context lives in the context store (`null` for the built-in `default`). */
function contextPaths(name: string, configDir = dockerConfigDir()): { meta: string; tls: string } {
  const id = createHash('sha256').update(name).digest('hex');
  return {
    meta: path.join(configDir, 'contexts', 'meta', id, 'meta.json'),
    tls: path.join(configDir, 'contexts', 'tls', id, 'docker'),
  };
}

/**
 * Reads a context's docker endpoint: its Host and, when the store holds them, its TLS files. Throws an
 * {@link EngineError} naming the context when it is unknown or unreadable.
 */
function readContext(name: string, configDir = dockerConfigDir()): Pick<EngineSettings, 'host' | 'tls'> {
  const p = contextPaths(name, configDir);
  let meta: { Endpoints?: { docker?: { Host?: string; SkipTLSVerify?: boolean } } };
  try {
    meta = JSON.parse(readFileSync(p.meta, 'utf8')) as typeof meta;
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : 'unreadable';
    throw new EngineError(`docker context "${name}" ${why} in the context store of ${configDir}`);
  }
  const ep = meta.Endpoints?.docker;
  if (!ep?.Host) throw new EngineError(`docker context "${name}" has no docker endpoint`);
  const files = {
    ca: path.join(p.tls, 'ca.pem'),
    cert: path.join(p.tls, 'cert.pem'),
    key: path.join(p.tls, 'key.pem'),
  };
  const present = Object.fromEntries(Object.entries(files).filter(([, f]) => existsSync(f)));
  const out: Pick<EngineSettings, 'host' | 'tls'> = { host: ep.Host };
  if (Object.keys(present).length) out.tls = { ...present, verify: ep.SkipTLSVerify !== true };
  return out;
}

export interface PrepareOptions {
  /**
   * A private directory for per-engine files (TLS copies, ssh config and wrapper); created 0700. Without it only the
   * dockerode options are complete (the CLI environment then lacks TLS files and the ssh wrapper).
   */
  stateDir?: string;
  /** Environment the engine is prepared from (default process.env): PATH, DOCKER_CONFIG, SSH_AUTH_SOCK. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Prepares an engine for use: validates the host, resolves a context, copies TLS and ssh material into a private
 * directory and builds the CLI environment and dockerode options. Throws an {@link EngineError} (message names the
 * masked engine, never file contents) when the settings cannot work.
 */
export function prepareEngine(settings: EngineSettings | undefined, o: PrepareOptions = {}): Engine {
  const env = o.env ?? process.env;
  const key = engineKey(settings);
  if (!settings || key === DEFAULT_ENGINE_LABEL) {
    return {
      key,
      label: DEFAULT_ENGINE_LABEL,
      id: DEFAULT_ENGINE_LABEL,
      env: {},
      dockerode: { timeout: REQUEST_TIMEOUT_MS },
      remote: false,
    };
  }
  let { host, tls } = settings;
  if (!host && settings.context) ({ host, tls } = readContext(settings.context, dockerConfigDir(env)));
  if (!host) throw new EngineError('no docker host');
  const label = maskEngineHost(host);
  const id = engineId({ host, ...(tls ? { tls } : {}), ...(settings.ssh ? { ssh: settings.ssh } : {}) });
  let u: URL;
  try {
    u = new URL(host);
  } catch {
    throw new EngineError(`invalid docker host "${label}": expected unix://, tcp://, http(s):// or ssh://`);
  }
  const dir = o.stateDir ? path.join(o.stateDir, createHash('sha256').update(key).digest('hex').slice(0, 16)) : null;
  const cliEnv: Record<string, string> = { DOCKER_HOST: host };
  const base: Dockerode.DockerOptions = {
    timeout: REQUEST_TIMEOUT_MS,
    // The process's own DOCKER_CERT_PATH must not leak into another engine's client (docker-modem merges it in).
    ca: undefined,
    cert: undefined,
    key: undefined,
  };

  switch (u.protocol) {
    case 'unix:': {
      const socketPath = decodeURIComponent(u.pathname);
      if (!socketPath) throw new EngineError(`invalid docker host "${label}": unix:// needs a socket path`);
      return { key, label, id, env: cliEnv, dockerode: { ...base, socketPath }, remote: false };
    }
    case 'tcp:':
    case 'http:':
    case 'https:': {
      const hostname = u.hostname.replace(/^\[|\]$/g, '');
      if (!hostname) throw new EngineError(`invalid docker host "${label}": missing host name`);
      // Port 2376 means TLS, like docker-modem's default.
      const useTls = !!tls || u.protocol === 'https:' || u.port === '2376';
      const port = u.port || (useTls ? '2376' : u.protocol === 'http:' ? '80' : '2375');
      const opts: Dockerode.DockerOptions = { ...base, host: hostname, port, protocol: useTls ? 'https' : 'http' };
      if (tls) {
        const copied = dir ? copyTls(tls, dir, label) : checkTls(tls, label);
        if (dir) cliEnv.DOCKER_CERT_PATH = dir;
        if (tls.verify) cliEnv.DOCKER_TLS_VERIFY = '1';
        else cliEnv.DOCKER_TLS = '1';
        const material = {
          ca: copied.ca ? readFileSync(copied.ca) : undefined,
          cert: copied.cert ? readFileSync(copied.cert) : undefined,
          key: copied.key ? readFileSync(copied.key) : undefined,
        };
        if (tls.verify) Object.assign(opts, material);
        // Without verification the server certificate is not checked (like `docker --tls`): an agent that allows it.
        else
          (opts as { agent?: https.Agent }).agent = new https.Agent({
            ...material,
            ca: undefined,
            rejectUnauthorized: false,
          });
      }
      return { key, label, id, env: cliEnv, dockerode: opts, remote: true };
    }
    case 'ssh:':
      return prepareSsh(u, settings.ssh ?? {}, { key, label, id, dir, env, cliEnv, base });
    default:
      throw new EngineError(
        `unsupported docker host scheme "${u.protocol}" in "${label}": expected unix://, tcp://, http(s):// or ssh://`,
      );
  }
}

function privateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

function copyPrivate(from: string, to: string, what: string, label: string): void {
  try {
    copyFileSync(from, to);
    chmodSync(to, 0o600);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found' : 'unreadable';
    throw new EngineError(`engine ${label}: ${what} file ${from} ${why}`);
  }
}

/** The TLS files as they are (no private copy), each checked to exist. */
function checkTls(tls: NonNullable<EngineSettings['tls']>, label: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of ['ca', 'cert', 'key'] as const) {
    const file = tls[name];
    if (!file) continue;
    if (!existsSync(file)) throw new EngineError(`engine ${label}: TLS ${name} file ${file} not found`);
    out[name] = file;
  }
  return out;
}

/** Copies ca.pem / cert.pem / key.pem into `dir` (0600): the layout DOCKER_CERT_PATH expects. */
function copyTls(tls: NonNullable<EngineSettings['tls']>, dir: string, label: string): Record<string, string> {
  privateDir(dir);
  const out: Record<string, string> = {};
  for (const [name, file] of [
    ['ca', tls.ca],
    ['cert', tls.cert],
    ['key', tls.key],
  ] as const) {
    if (!file) continue;
    const to = path.join(dir, `${name}.pem`);
    copyPrivate(file, to, `TLS ${name}`, label);
    out[name] = to;
  }
  return out;
}

/** Finds an executable on PATH outside `exclude`. */
function which(name: string, pathVar: string, exclude: string): string | null {
  for (const d of pathVar.split(path.delimiter)) {
    if (!d || path.resolve(d) === path.resolve(exclude)) continue;
    const f = path.join(d, name);
    if (existsSync(f)) return f;
  }
  return null;
}

const sshQuote = (p: string): string => `"${p.replace(/(["\\])/g, '\\$1')}"`;

function prepareSsh(
  u: URL,
  ssh: NonNullable<EngineSettings['ssh']>,
  c: {
    key: string;
    label: string;
    id: string;
    dir: string | null;
    env: NodeJS.ProcessEnv;
    cliEnv: Record<string, string>;
    base: Dockerode.DockerOptions;
  },
): Engine {
  if (!u.hostname) throw new EngineError(`invalid docker host "${c.label}": missing host name`);
  const knownHosts = ssh.knownHosts ?? path.join(os.homedir(), '.ssh', 'known_hosts');
  if (!existsSync(knownHosts)) throw new EngineError(`engine ${c.label}: known_hosts file ${knownHosts} not found`);
  if (ssh.key && !existsSync(ssh.key)) throw new EngineError(`engine ${c.label}: ssh key file ${ssh.key} not found`);
  if (c.dir) prepareSshCli(ssh, knownHosts, c.dir, c.env, c.cliEnv, c.label);

  const hostname = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port || 22);
  const trusted = readKnownHosts(knownHosts, hostname, port);
  const sshOptions: Record<string, unknown> = {
    // Strict host key checking, like the CLI's StrictHostKeyChecking=yes: only a listed key is accepted.
    hostVerifier: (hostKey: Buffer) => trusted.some((k) => k.equals(hostKey)),
    readyTimeout: REQUEST_TIMEOUT_MS,
  };
  if (ssh.key) sshOptions.privateKey = readFileSync(ssh.key);
  else if (c.env.SSH_AUTH_SOCK) sshOptions.agent = c.env.SSH_AUTH_SOCK;
  const dockerode = {
    ...c.base,
    // An ssh2 channel has no setTimeout: node's http would throw (uncaught) on a socket timeout. Requests over ssh
    // are bounded by their abort signals and ssh2's readyTimeout instead.
    timeout: undefined,
    protocol: 'ssh',
    host: hostname,
    port: String(port),
    username: u.username ? decodeURIComponent(u.username) : undefined,
    sshOptions,
  } as Dockerode.DockerOptions;
  return { key: c.key, label: c.label, id: c.id, env: c.cliEnv, dockerode, remote: true };
}

/**
 * The docker CLI runs `ssh` from PATH with its own arguments: a wrapper first on PATH adds a generated config file
 * (strict host key checking against a private copy of known_hosts, batch mode, the key copied 0600).
 */
function prepareSshCli(
  ssh: NonNullable<EngineSettings['ssh']>,
  knownHosts: string,
  dir: string,
  env: NodeJS.ProcessEnv,
  cliEnv: Record<string, string>,
  label: string,
): void {
  privateDir(dir);
  const khCopy = path.join(dir, SSH_KNOWN_HOSTS);
  copyPrivate(knownHosts, khCopy, 'known_hosts', label);
  let keyCopy: string | undefined;
  if (ssh.key) {
    keyCopy = path.join(dir, SSH_KEY);
    copyPrivate(ssh.key, keyCopy, 'ssh key', label);
  }
  const c = { dir, env, cliEnv, label };
  const bin = path.join(c.dir, 'bin');
  privateDir(bin);
  const pathVar = c.env.PATH ?? '/usr/bin:/bin';
  const realSsh = which('ssh', pathVar, bin);
  if (!realSsh) throw new EngineError(`engine ${c.label}: the ssh client is not installed (ssh not found on PATH)`);
  const config = path.join(c.dir, 'ssh_config');
  const lines = [
    'Host *',
    '  StrictHostKeyChecking yes',
    `  UserKnownHostsFile ${sshQuote(khCopy)}`,
    '  GlobalKnownHostsFile /dev/null',
    '  UpdateHostKeys no',
    '  BatchMode yes',
    '  ConnectTimeout 30',
    ...(keyCopy ? [`  IdentityFile ${sshQuote(keyCopy)}`, '  IdentitiesOnly yes'] : []),
  ];
  writeFileSync(config, `${lines.join('\n')}\n`, { mode: 0o600 });
  const wrapper = path.join(bin, 'ssh');
  writeFileSync(wrapper, `#!/bin/sh\nexec ${shQuote(realSsh)} -F ${shQuote(config)} "$@"\n`, { mode: 0o700 });
  chmodSync(wrapper, 0o700);
  c.cliEnv.PATH = `${bin}${path.delimiter}${pathVar}`;
}

const shQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** known_hosts name of a host: `host` on port 22, else `[host]:port`. */
function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  return re.test(name);
}

function hostMatches(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    const h = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return h === hash;
  }
  let matched = false;
  for (const p of field.split(',')) {
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) return false;
    } else if (globMatch(p, name)) matched = true;
  }
  return matched;
}

/**
 * The host keys known_hosts trusts for `host:port` (raw key blobs, as ssh2 hands them to `hostVerifier`).
 * `@cert-authority` lines are not supported (ignored); a key listed as `@revoked` is never trusted.
 */
function readKnownHosts(file: string, host: string, port: number): Buffer[] {
  const name = knownHostsName(host, port);
  const keys: Buffer[] = [];
  const revoked: Buffer[] = [];
  for (const raw of readFileSync(file, 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const parts = line.split(/\s+/);
    const marker = parts[0]?.startsWith('@') ? parts.shift() : undefined;
    const [hosts, , b64] = parts;
    if (!hosts || !b64 || !hostMatches(hosts, name)) continue;
    const blob = Buffer.from(b64, 'base64');
    if (marker === '@revoked') revoked.push(blob);
    else if (!marker) keys.push(blob);
  }
  return keys.filter((k) => !revoked.some((r) => r.equals(k)));
}

/** Compose's default file names, in its lookup order. */
const DEFAULT_COMPOSE_FILES = ['compose.yaml', 'compose.yml', 'docker-compose.yml', 'docker-compose.yaml'];

const isRelativeSource = (src: unknown): src is string =>
  typeof src === 'string' && (src.startsWith('./') || src.startsWith('../') || src === '.' || src.startsWith('~'));

/**
 * What will not work as written on a remote engine: bind mounts of relative paths (`./data:/data`, long syntax
 * `source: ./x`) and `configs:`/`secrets:` with `file:` name paths of the checkout, which are looked up on the
 * remote host. One sentence per finding; unreadable or invalid files give none (compose reports those itself).
 */
export async function remoteComposeWarnings(cwd: string, files: readonly string[]): Promise<string[]> {
  const list = files.length ? files : DEFAULT_COMPOSE_FILES.filter((f) => existsSync(path.join(cwd, f))).slice(0, 1);
  const out: string[] = [];
  for (const file of list) {
    let doc: unknown;
    try {
      doc = YAML.parse(await readFile(path.resolve(cwd, file), 'utf8'));
    } catch {
      continue;
    }
    if (!doc || typeof doc !== 'object') continue;
    const d = doc as Record<string, unknown>;
    for (const [name, svc] of Object.entries((d.services as Record<string, unknown>) ?? {})) {
      const volumes = (svc as { volumes?: unknown })?.volumes;
      if (!Array.isArray(volumes)) continue;
      for (const v of volumes) {
        const src = typeof v === 'string' ? v.split(':')[0] : (v as { source?: unknown })?.source;
        if (isRelativeSource(src))
          out.push(
            `${file}: service ${name} bind-mounts ${src}, a path on the remote engine's host (the checkout is not there)`,
          );
      }
    }
    for (const kind of ['configs', 'secrets'] as const) {
      for (const [name, def] of Object.entries((d[kind] as Record<string, unknown>) ?? {})) {
        const src = (def as { file?: unknown })?.file;
        if (typeof src === 'string')
          out.push(
            `${file}: ${kind} ${name} is read from file ${src} on the remote engine's host, not from the checkout`,
          );
      }
    }
  }
  return out;
}
