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
import { detectSelf, finaliseSelfUpdates, type SelfInfo } from '../compose/self-update.ts';

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
export async function recoverSelfUpdates(store: Store, docker: Dockerode, log: Logger): Promise<SelfInfo | null> {
  const selfLog = log.child({ component: 'self-update' });
  const self = await detectSelf({ docker, log: selfLog });
  await finaliseSelfUpdates({ store, self, docker, log: selfLog });
  return self;
}
