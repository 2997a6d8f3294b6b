/**
 * @module Limits on concurrent deploys: a FIFO semaphore keyed by repository with a global limit
 * (SHIPARR_MAX_CONCURRENT_DEPLOYS) and an optional per-engine limit (SHIPARR_MAX_CONCURRENT_DEPLOYS_PER_HOST): a
 * waiter whose engine is full lets the ones behind it on other engines go first.
 * A repository can also be locked for a service action (restart/stop/start/remove): while locked, a deploy of that
 * repository waits before it takes a slot, and a lock is refused while the repository holds or waits for one.
 */

/** Names the engine a repository deploys to (its DOCKER_HOST or context; "default" for the local engine). */
export type EngineOf = (key: string) => string;

interface Waiter {
  key: string;
  resolve: () => void;
  reject: (e: Error) => void;
}

export class DeploySlots {
  readonly #max: number;
  readonly #perEngine: number;
  readonly #engineOf: EngineOf;
  /** Holder key → its engine. */
  readonly #holders = new Map<string, string>();
  readonly #waiting: Waiter[] = [];
  /** Repositories locked by a service action. */
  readonly #locked = new Set<string>();
  /** Deploys that wait for a repository's lock to go before they queue for a slot. */
  readonly #lockWaiting: Waiter[] = [];

  /** `perEngine` 0 (default) = no per-engine limit; `engineOf` defaults to one engine for every repository. */
  constructor(max: number, perEngine = 0, engineOf: EngineOf = () => 'default') {
    this.#max = Math.max(1, max);
    this.#perEngine = Math.max(0, perEngine);
    this.#engineOf = engineOf;
  }

  get inUse(): number {
    return this.#holders.size;
  }

  get queued(): number {
    return this.#waiting.length;
  }

  #fits(engine: string): boolean {
    if (this.#holders.size >= this.#max) return false;
    if (this.#perEngine === 0) return true;
    let onEngine = 0;
    for (const e of this.#holders.values()) if (e === engine) onEngine++;
    return onEngine < this.#perEngine;
  }

  /** Resolves when `key` holds a slot. A key holds at most one slot (re-acquiring is a no-op). */
  acquire(key: string, signal?: AbortSignal): Promise<void> {
    if (this.#locked.has(key))
      return new Promise<void>((resolve, reject) => {
        const entry = { key, resolve: () => this.acquire(key, signal).then(resolve, reject), reject };
        this.#lockWaiting.push(entry);
        signal?.addEventListener(
          'abort',
          () => {
            const i = this.#lockWaiting.indexOf(entry);
            if (i >= 0) this.#lockWaiting.splice(i, 1);
            reject(new Error('aborted while waiting for a service action'));
          },
          { once: true },
        );
      });
    if (this.#holders.has(key)) return Promise.resolve();
    const engine = this.#engineOf(key);
    if (this.#waiting.length === 0 && this.#fits(engine)) {
      this.#holders.set(key, engine);
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const entry = { key, resolve, reject };
      this.#waiting.push(entry);
      signal?.addEventListener(
        'abort',
        () => {
          const i = this.#waiting.indexOf(entry);
          if (i >= 0) this.#waiting.splice(i, 1);
          reject(new Error('aborted while waiting for a deploy slot'));
        },
        { once: true },
      );
      // A waiter may fit at once on its own engine even though others wait for theirs.
      this.#grant();
    });
  }

  /** Frees `key`'s slot (harmless when it holds none) and hands it to the first waiter that fits. */
  release(key: string): void {
    const l = this.#lockWaiting.findIndex((w) => w.key === key);
    if (l >= 0) {
      this.#lockWaiting.splice(l, 1)[0]?.reject(new Error('released while waiting'));
      return;
    }
    if (!this.#holders.delete(key)) {
      const i = this.#waiting.findIndex((w) => w.key === key);
      if (i >= 0) this.#waiting.splice(i, 1)[0]?.reject(new Error('released while waiting'));
      return;
    }
    this.#grant();
  }

  /** Hands free slots to waiters in FIFO order, skipping those whose engine is at its limit. */
  #grant(): void {
    for (let i = 0; i < this.#waiting.length && this.#holders.size < this.#max;) {
      const w = this.#waiting[i] as Waiter;
      const engine = this.#engineOf(w.key);
      if (this.#fits(engine)) {
        this.#waiting.splice(i, 1);
        this.#holders.set(w.key, engine);
        w.resolve();
      } else i++;
    }
  }

  /**
   * Locks `key` for a service action: true when taken, false when the repository holds or waits for a deploy slot
   * or is locked already. Synchronous, so a check and the lock cannot be split by a deploy starting in between.
   */
  tryLock(key: string): boolean {
    if (this.#locked.has(key) || this.#holders.has(key)) return false;
    if (this.#waiting.some((w) => w.key === key) || this.#lockWaiting.some((w) => w.key === key)) return false;
    this.#locked.add(key);
    return true;
  }

  /** Ends a service action's lock; deploys that waited for it queue for a slot now. */
  unlock(key: string): void {
    if (!this.#locked.delete(key)) return;
    for (let i = this.#lockWaiting.length - 1; i >= 0; i--) {
      const w = this.#lockWaiting[i];
      if (w?.key !== key) continue;
      this.#lockWaiting.splice(i, 1);
      w.resolve();
    }
  }
}
