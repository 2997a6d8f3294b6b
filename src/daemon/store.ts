/**
 * @module Boot step 1, the store: open the database, mark the deployments a previous process left open as
 * interrupted (self-updates excepted), and, once the Docker client exists, finalise those self-updates. Then the
 * plaintext sweep removes the decrypted files such deployments left behind, and history retention prunes old rows.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import type { Settings } from '../config/settings.ts';
import { Store } from '../store/index.ts';
import { detectSelf, finaliseSelfUpdates, type FinaliseResult, type SelfInfo } from '../compose/self-update.ts';
import { clearHelpers } from '../compose/self-update-helper.ts';
import { removePlaintext } from '../workers/plaintext.ts';

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

/**
 * Removes the plaintext files that finished deployments recorded but never removed (the process died mid-deploy):
 * only the recorded paths, and only while each is still the regular file Shiparr wrote (same device, inode, size,
 * mtime); anything else found there is left alone and logged. Run before the actors start.
 * @returns how many files were removed.
 */
export async function sweepPlaintext(store: Store, log: Logger): Promise<number> {
  let removed = 0;
  for (const p of store.pendingPlaintext()) {
    let failed = false;
    for (const f of p.files) {
      const at = { deploymentId: p.deploymentId, repo: p.repoKey, file: f.path };
      try {
        const outcome = await removePlaintext(f);
        if (outcome === 'removed') {
          removed += 1;
          log.warn(at, 'removed a decrypted file left by an interrupted deployment');
        } else if (outcome === 'changed') {
          log.warn(at, 'decrypted file of an interrupted deployment changed since it was written; left in place');
        }
      } catch (err) {
        failed = true;
        log.error({ ...at, err }, 'could not remove a decrypted file left by an interrupted deployment');
      }
    }
    // A failure keeps the row pending: the next start tries again.
    if (!failed) store.markPlaintextHandled(p.deploymentId);
  }
  return removed;
}

/** Interval of history pruning after the one at start. */
const PRUNE_INTERVAL_MS = 60 * 60 * 1000;

/**
 * Prunes the deployment history now and then hourly (see `Store.pruneHistory`); `keep` 0 disables it. The timer
 * does not keep the process alive; the returned function stops it.
 */
export function scheduleHistoryPruning(store: Store, keep: number, log: Logger): () => void {
  if (keep === 0) return () => undefined;
  let running = false;
  const prune = () => {
    if (running) return;
    running = true;
    store
      .pruneHistory(keep)
      .then((r) => {
        if (r.deleted > 0) log.info({ deleted: r.deleted, keep }, 'old deployment history pruned');
      })
      .catch((err: unknown) => log.warn({ err }, 'history pruning failed'))
      .finally(() => (running = false));
  };
  prune();
  const timer = setInterval(prune, PRUNE_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
