/**
 * @module Global limit on concurrent deploys (SHIPARR_MAX_CONCURRENT_DEPLOYS): a FIFO semaphore keyed by repository.
 * A repository can also be locked for a service action (restart/stop/start/remove): while locked, a deploy of that
 * repository waits before it takes a slot, and a lock is refused while the repository holds or waits for one.
 */

export class DeploySlots {
  readonly #max: number;
  readonly #holders = new Set<string>();
  readonly #waiting: { key: string; resolve: () => void; reject: (e: Error) => void }[] = [];
  /** Repositories locked by a service action. */
  readonly #locked = new Set<string>();
  /** Deploys that wait for a repository's lock to go before they queue for a slot. */
  readonly #lockWaiting: { key: string; resolve: () => void; reject: (e: Error) => void }[] = [];

  constructor(max: number) {
    this.#max = Math.max(1, max);
  }

  get inUse(): number {
    return this.#holders.size;
  }

  get queued(): number {
    return this.#waiting.length;
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
    if (this.#holders.size < this.#max) {
      this.#holders.add(key);
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
    });
  }

  /** Frees `key`'s slot (harmless when it holds none) and hands it to the next waiter. */
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
    const next = this.#waiting.shift();
    if (next) {
      this.#holders.add(next.key);
      next.resolve();
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
