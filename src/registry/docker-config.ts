/**
 * @module Docker CLI configuration for registry credentials: reading the `auths` of a mounted config.json
 * (SHIPARR_DOCKER_CONFIG), and writing a private, throwaway DOCKER_CONFIG directory for one compose run that holds
 * only the `auths` of the registries the project's images use (never the user's own ~/.docker).
 */
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { RegistryAuth } from './client.ts';
import { DOCKER_HUB, parseImageRef } from './ref.ts';

/** The key the Docker CLI files Docker Hub's credentials under. */
const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

/** A `auths` key of a Docker CLI config as image references name the registry (`docker.io` for Docker Hub). */
function registryOfAuthKey(key: string): string {
  const host = key
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
  return host === 'index.docker.io' || host === 'registry-1.docker.io' || host === 'registry.hub.docker.com'
    ? DOCKER_HUB
    : host;
}

export interface DockerConfigAuths {
  /** Credentials by registry (`docker.io` for Docker Hub). */
  auths: Record<string, RegistryAuth>;
  /** Problems worth a warning (unsupported credential stores, unreadable entries); never contain secrets. */
  warnings: string[];
}

/**
 * Reads the `auths` of a Docker CLI config.json (`auth` = base64 `user:password`, or `username`/`password`).
 * `credsStore`/`credHelpers` are not supported (a warning names the file). Throws an Error naming the file when it
 * cannot be read or is not JSON.
 */
export async function readDockerConfigAuths(file: string): Promise<DockerConfigAuths> {
  let data: unknown;
  try {
    data = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    const reason =
      err instanceof SyntaxError ? 'not valid JSON' : ((err as NodeJS.ErrnoException).code ?? 'unreadable');
    throw new Error(`${file}: cannot read the Docker config (${reason})`, { cause: err });
  }
  const warnings: string[] = [];
  const auths: Record<string, RegistryAuth> = {};
  if (typeof data !== 'object' || data === null) throw new Error(`${file}: not a Docker config (expected an object)`);
  const cfg = data as { auths?: unknown; credsStore?: unknown; credHelpers?: unknown };
  if (cfg.credsStore !== undefined || cfg.credHelpers !== undefined)
    warnings.push(
      `${file}: credsStore/credHelpers are not supported (credential helpers are not run); only "auths" entries are used`,
    );
  const entries = typeof cfg.auths === 'object' && cfg.auths !== null ? Object.entries(cfg.auths) : [];
  for (const [key, value] of entries) {
    const v = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>;
    let username = typeof v['username'] === 'string' ? v['username'] : '';
    let password = typeof v['password'] === 'string' ? v['password'] : '';
    if ((!username || !password) && typeof v['auth'] === 'string' && v['auth']) {
      const decoded = Buffer.from(v['auth'], 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) {
        username = decoded.slice(0, colon);
        password = decoded.slice(colon + 1);
      }
    }
    if (!username || !password) {
      warnings.push(`${file}: auths.${JSON.stringify(key)} has no usable credentials (auth or username/password)`);
      continue;
    }
    auths[registryOfAuthKey(key)] = { username, password };
  }
  return { auths, warnings };
}

/** The registries of a list of image references (unparseable ones are skipped). */
export function registriesOfImages(images: Iterable<string>): Set<string> {
  const out = new Set<string>();
  for (const image of images) {
    try {
      out.add(parseImageRef(image).registry);
    } catch {
      // Not a reference a registry serves (compose validates images itself).
    }
  }
  return out;
}

/** The user's Docker CLI config directory (DOCKER_CONFIG, else ~/.docker). */
function userDockerConfigDir(env: NodeJS.ProcessEnv): string {
  return env['DOCKER_CONFIG'] || path.join(os.homedir(), '.docker');
}

/** Settings of the user's config.json the CLI needs for its plugins, contexts and proxies (no credentials). */
const KEPT_KEYS = ['currentContext', 'cliPluginsExtraDirs', 'proxies'];

/**
 * Creates a private DOCKER_CONFIG directory (0700) under `parent` with a config.json (0600) holding only `auths`
 * for `credentials`; the user's `cli-plugins` and `contexts` are linked in (so `docker compose` and contexts keep
 * working). Call `remove()` in a `finally`.
 */
export async function createPrivateDockerConfig(
  parent: string,
  credentials: Record<string, RegistryAuth>,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ dir: string; remove(): Promise<void> }> {
  await mkdir(parent, { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(path.join(parent, 'docker-config-'));
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    await chmod(dir, 0o700);
    const user = userDockerConfigDir(env);
    const config: Record<string, unknown> = {};
    try {
      const own = JSON.parse(await readFile(path.join(user, 'config.json'), 'utf8')) as Record<string, unknown>;
      for (const k of KEPT_KEYS) if (own[k] !== undefined) config[k] = own[k];
    } catch {
      // No (readable) user config: nothing to keep.
    }
    const auths: Record<string, { auth: string }> = {};
    for (const [registry, c] of Object.entries(credentials)) {
      auths[registry === DOCKER_HUB ? DOCKER_HUB_AUTH_KEY : registry] = {
        auth: Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64'),
      };
    }
    config['auths'] = auths;
    await writeFile(path.join(dir, 'config.json'), JSON.stringify(config), { mode: 0o600 });
    for (const sub of ['cli-plugins', 'contexts']) {
      const from = path.join(user, sub);
      if (existsSync(from)) await symlink(from, path.join(dir, sub));
    }
    return { dir, remove };
  } catch (err) {
    await remove();
    throw err;
  }
}
