/**
 * @module Boot step 2, the configuration: the project loader the supervisor reloads with (notification URLs checked
 * by notify's validator, `only` repositories for one-shot deploys), and the config directory watcher.
 */
import type { Logger } from 'pino';
import type { Settings } from '../config/settings.ts';
import { loadProjects } from '../config/load.ts';
import { registerSecretValues } from '../lib/redact.ts';
import type { RegistryAuth } from '../registry/client.ts';
import { readDockerConfigAuths } from '../registry/docker-config.ts';
import { watchConfigDir, type ConfigWatcher } from '../config/watch.ts';
import { validateNotificationUrl } from '../notify/index.ts';
import type { LoadedConfig } from '../supervisor/supervisor.ts';

/** Loads every project file of the config directory, keeping only the `only` repositories when given. */
export function configLoader(
  settings: Settings,
  env: NodeJS.ProcessEnv,
  only?: string[],
  log?: Pick<Logger, 'warn'>,
): () => Promise<LoadedConfig> {
  const warned = new Set<string>();
  const warnOnce = (message: string) => {
    if (warned.has(message)) return;
    warned.add(message);
    log?.warn({ component: 'config' }, message);
  };
  return async () => {
    const registryAuths = await dockerConfigAuths(settings.dockerConfigFile, warnOnce);
    const r = await loadProjects(settings.configPath, {
      env,
      dataPath: settings.dataPath,
      githubToken: settings.githubToken,
      checkNotificationUrl: validateNotificationUrl,
      ...(registryAuths ? { registryAuths } : {}),
    });
    registerSecretValues(
      'projects',
      r.projects.flatMap((p) =>
        p.repositories.flatMap((x) => [
          x.token,
          x.webhookSecret,
          ...Object.values(x.registries ?? {}).flatMap((c) => [
            c.username,
            c.password,
            Buffer.from(`${c.username}:${c.password}`, 'utf8').toString('base64'),
          ]),
        ]),
      ),
    );
    if (only)
      r.projects = r.projects.map((p) => ({ ...p, repositories: p.repositories.filter((x) => only.includes(x.key)) }));
    return r;
  };
}

/** The `auths` of SHIPARR_DOCKER_CONFIG (read at every load); problems are warned about once, never fatal. */
async function dockerConfigAuths(
  file: string | undefined,
  warn: (message: string) => void,
): Promise<Record<string, RegistryAuth> | undefined> {
  if (!file) return undefined;
  try {
    const r = await readDockerConfigAuths(file);
    for (const w of r.warnings) warn(`SHIPARR_DOCKER_CONFIG: ${w}`);
    return r.auths;
  } catch (err) {
    warn(`SHIPARR_DOCKER_CONFIG: ${(err as Error).message}; its credentials are not used`);
    return undefined;
  }
}

/** Watches the config directory and reloads on change; resolves once the watcher is ready and a catch-up reload ran. */
export async function watchConfig(
  settings: Settings,
  reload: () => Promise<unknown>,
  log: Logger,
): Promise<ConfigWatcher> {
  const watcher = watchConfigDir(settings.configPath, reload, { log: log.child({ component: 'config' }) });
  // A file written between the first load and the end of the watcher's initial scan raises no event: reload once
  // the watcher is ready so such an edit is not missed until the next change (the diff is empty otherwise).
  await watcher.ready;
  await reload();
  return watcher;
}
