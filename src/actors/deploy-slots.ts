/** @module Global limit on concurrent deploys (SHIPARR_MAX_CONCURRENT_DEPLOYS): a FIFO semaphore keyed by repository. */

export class DeploySlots {
  readonly #max: number;
  readonly #holders = new Set<string>();
  readonly #waiting: { key: string; resolve: () => void; reject: (e: Error) => void }[] = [];

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
}
