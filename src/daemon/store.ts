/**
 * @module Boot step 1, the store: open the database, mark the deployments a previous process left open as
 * interrupted (self-updates excepted), and, once the Docker client exists, finalise those self-updates.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import type { Settings } from '../config/settings.ts';
import { Store } from '../store/index.ts';
import { detectSelf, finaliseSelfUpdates, type FinaliseResult, type SelfInfo } from '../compose/self-update.ts';
import { clearHelpers } from '../compose/self-update-helper.ts';

/** Opens `<dataPath>/shiparr.db` (creating the directory) and runs crash recovery. */
export async function openStore(settings: Settings, log: Logger): Promise<Store> {
  await mkdir(settings.dataPath, { recursive: true });
  const store = Store.open(path.join(settings.dataPath, 'shiparr.db'));
  const interrupted = store.markInterrupted({ exceptSelfUpdate: true });
  if (interrupted.length)
    log.warn(
      { deployments: interrupted.map((d) => d.id) },
      'deployments left open by a previous run were marked interrupted',
    );
  return store;
}

/** Finds our own container, and finishes the self-update deployments a replaced predecessor left open. */
export async function recoverSelfUpdates(
  store: Store,
  docker: Dockerode,
  log: Logger,
  dataPath: string,
): Promise<{ self: SelfInfo | null; finalised: FinaliseResult[] }> {
  const selfLog = log.child({ component: 'self-update' });
  const self = await detectSelf({ docker, log: selfLog });
  // A helper may still be finishing (compose starts us, then exits): let it, then remove what is left.
  if (self) {
    const cleared = await clearHelpers(docker);
    if (cleared) selfLog.info({ helpers: cleared }, 'self-update helper container(s) removed');
  }
  const finalised = await finaliseSelfUpdates({ store, self, docker, log: selfLog, dataPath });
  return { self, finalised };
}
