/**
 * @module The commit-status queue (one per daemon): deploys hand it statuses and never wait for it. Delivery is
 * ordered per commit (a lane per forge repository, commit and context): one request at a time, and a newer state
 * replaces one still waiting, so a late `pending` can never land after the `success` of the same commit.
 *
 * Retries: network errors, timeouts, 5xx and 429 are retried with exponential back-off and jitter (2 s doubling up
 * to 60 s between tries, each delay drawn from its upper half; a `Retry-After` answer is honoured when longer); a
 * status is given up after 12 tries or 10 minutes. Any other 4xx is final: logged once, never retried. Every change
 * of a delivery (queued, retrying, delivered, refused, gave-up, superseded, dropped) goes to `record`. Memory is
 * bounded: at most `maxLanes` commits in flight, each with one delivery under way and at most one waiting.
 */
import type { Logger } from 'pino';
import type { RepoCommitStatus } from '../config/schema.ts';
import type { CommitStatusRecord } from '../domain/types.ts';
import { maskSecrets } from '../lib/redact.ts';
import { PROVIDER_NAMES, fitDescription, forgeMessage, forgeState, statusRequest } from './requests.ts';
import type { CommitStatus, StatusRequest } from './requests.ts';

/** One status for one commit, on behalf of one deployment. */
export interface StatusJob {
  deploymentId: number;
  target: RepoCommitStatus;
  /** Full commit sha. */
  commit: string;
  status: CommitStatus;
}

/** What the forge answered (any HTTP status); a network failure or timeout rejects instead. */
export interface ForgeAnswer {
  status: number;
  /** The `Retry-After` header, when present. */
  retryAfter: string | null;
  body: string;
}

/** Timers the queue uses (injected by unit tests to drive back-off without waiting). */
export interface QueueTimers {
  now(): number;
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

export interface QueueOptions {
  /** Sends one request; rejects on network errors and when `signal` aborts. */
  send(req: StatusRequest, signal: AbortSignal): Promise<ForgeAnswer>;
  /** Persists the state of a delivery (on its deployment). Must not throw; errors are logged and ignored. */
  record(deploymentId: number, record: CommitStatusRecord): void;
  log: Logger;
  timers?: QueueTimers;
  /** Random in [0, 1) for jitter. */
  random?: () => number;
  /** First retry delay (default 2 s); doubles per try. */
  baseDelayMs?: number;
  /** Longest delay between two tries (default 60 s). */
  maxDelayMs?: number;
  /** Tries per status before giving up (default 12). */
  maxAttempts?: number;
  /** Time from the first try after which a status is given up (default 10 min). */
  giveUpAfterMs?: number;
  /** Timeout of one request (default 10 s). */
  requestTimeoutMs?: number;
  /** Commits with statuses under way at most (default 500); beyond, new statuses are dropped and recorded so. */
  maxLanes?: number;
}

interface Delivery {
  job: StatusJob;
  attempts: number;
  firstAt: number | null;
  httpStatus: number | null;
  lastError: string | null;
  timer: unknown;
  abort: AbortController | null;
  settled: boolean;
}

interface Lane {
  key: string;
  current: Delivery;
  /** The newest state queued behind the current one (an older waiting one is superseded). */
  next: Delivery | null;
}

const realTimers: QueueTimers = {
  now: () => Date.now(),
  set: (fn, ms) => setTimeout(fn, ms).unref(),
  clear: (h) => clearTimeout(h as NodeJS.Timeout),
};

const short = (sha: string) => sha.slice(0, 7);

/** Milliseconds a `Retry-After` value asks for (seconds or an HTTP date), or null when absent or unreadable. */
export function retryAfterMs(value: string | null, now: number): number | null {
  if (value === null || value.trim() === '') return null;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

/** See the module comment. `enqueue` never throws and never waits. */
export class CommitStatusQueue {
  readonly #o: Required<Omit<QueueOptions, 'timers' | 'random'>>;
  readonly #timers: QueueTimers;
  readonly #random: () => number;
  readonly #lanes = new Map<string, Lane>();
  #closing = false;
  #idle: (() => void)[] = [];

  constructor(opts: QueueOptions) {
    this.#o = {
      send: opts.send,
      record: opts.record,
      log: opts.log,
      baseDelayMs: opts.baseDelayMs ?? 2_000,
      maxDelayMs: opts.maxDelayMs ?? 60_000,
      maxAttempts: opts.maxAttempts ?? 12,
      giveUpAfterMs: opts.giveUpAfterMs ?? 10 * 60_000,
      requestTimeoutMs: opts.requestTimeoutMs ?? 10_000,
      maxLanes: opts.maxLanes ?? 500,
    };
    this.#timers = opts.timers ?? realTimers;
    this.#random = opts.random ?? Math.random;
  }

  /** Commits with statuses under way. */
  get size(): number {
    return this.#lanes.size;
  }

  /** Queues a status; fire-and-forget. */
  enqueue(job: StatusJob): void {
    const d: Delivery = {
      job,
      attempts: 0,
      firstAt: null,
      httpStatus: null,
      lastError: null,
      timer: null,
      abort: null,
      settled: false,
    };
    const key = `${job.target.provider} ${job.target.apiUrl} ${job.target.repoPath}@${job.commit} ${job.target.context}`;
    const lane = this.#lanes.get(key);
    if (this.#closing) return this.#settle(d, 'dropped', 'Shiparr is stopping');
    if (!lane) {
      if (this.#lanes.size >= this.#o.maxLanes) {
        this.#o.log.warn(
          { deploymentId: job.deploymentId, commit: short(job.commit) },
          `commit status queue full (${this.#o.maxLanes} commits): ${job.status.state} status dropped`,
        );
        return this.#settle(d, 'dropped', 'the commit status queue is full');
      }
      this.#lanes.set(key, { key, current: d, next: null });
      this.#write(d, 'queued');
      return void this.#attempt(key, d);
    }
    if (lane.next) this.#settle(lane.next, 'superseded', null);
    lane.next = d;
    this.#write(d, 'queued');
    // A state waiting for its retry is not sent at all once a newer one is queued.
    if (lane.current.abort === null) {
      this.#timers.clear(lane.current.timer);
      this.#settle(lane.current, 'superseded', lane.current.lastError);
      this.#advance(key);
    }
  }

  /**
   * Stops taking statuses, lets those under way finish for up to `graceMs`, then drops (and records) the rest.
   * Resolves when nothing is left.
   */
  async close(graceMs: number): Promise<void> {
    this.#closing = true;
    if (this.#lanes.size > 0) {
      let timer: unknown;
      await Promise.race([
        new Promise<void>((resolve) => this.#idle.push(resolve)),
        new Promise<void>((resolve) => (timer = this.#timers.set(resolve, Math.max(0, graceMs)))),
      ]);
      this.#timers.clear(timer);
    }
    for (const lane of [...this.#lanes.values()]) {
      this.#lanes.delete(lane.key);
      for (const d of [lane.current, lane.next]) {
        if (!d) continue;
        this.#timers.clear(d.timer);
        d.abort?.abort();
        this.#settle(d, 'dropped', d.lastError ?? 'Shiparr stopped before the forge accepted it');
      }
    }
    if (this.#lanes.size === 0) this.#wakeIdle();
  }

  async #attempt(key: string, d: Delivery): Promise<void> {
    const { job } = d;
    const now = this.#timers.now();
    d.firstAt ??= now;
    d.attempts += 1;
    d.timer = null;
    const abort = new AbortController();
    d.abort = abort;
    const timeout = this.#timers.set(() => abort.abort(new Error('timed out')), this.#o.requestTimeoutMs);
    let answer: ForgeAnswer | null = null;
    let failure: string | null = null;
    try {
      answer = await this.#o.send(statusRequest(job.target, job.commit, job.status), abort.signal);
    } catch (err) {
      const reason = abort.signal.aborted ? abort.signal.reason : err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      failure = maskSecrets(
        reason instanceof Error && reason.message === 'timed out'
          ? `no answer within ${this.#o.requestTimeoutMs / 1000} s`
          : (cause?.code ?? cause?.message ?? (err as Error).message ?? String(err)),
      );
    } finally {
      this.#timers.clear(timeout);
      d.abort = null;
    }
    if (d.settled) return;
    const { target } = job;
    const where = `${target.repoPath}@${short(job.commit)}`;
    const forge = PROVIDER_NAMES[target.provider];
    if (answer && answer.status >= 200 && answer.status < 300) {
      d.httpStatus = answer.status;
      d.lastError = null;
      this.#o.log.debug(
        { deploymentId: job.deploymentId, state: job.status.state, attempts: d.attempts },
        `${forge} accepted the ${job.status.state} commit status for ${where}`,
      );
      this.#settle(d, 'delivered', null);
      return this.#advance(key);
    }
    if (answer) {
      d.httpStatus = answer.status;
      const message = forgeMessage(answer.body);
      d.lastError = `${answer.status}${message ? ` ${message}` : ''}`;
      if (answer.status < 500 && answer.status !== 429) {
        this.#o.log.warn(
          { deploymentId: job.deploymentId, state: job.status.state, status: answer.status },
          `${forge} refused the commit status for ${where}: ${d.lastError}`,
        );
        this.#settle(d, 'refused', d.lastError);
        return this.#advance(key);
      }
    } else {
      d.lastError = failure;
    }
    // Transient: retry unless a newer state is waiting (it replaces this one), or the budget is spent.
    if (this.#lanes.get(key)?.next) {
      this.#settle(d, 'superseded', d.lastError);
      return this.#advance(key);
    }
    const backoff = Math.min(this.#o.maxDelayMs, this.#o.baseDelayMs * 2 ** (d.attempts - 1));
    const asked = answer ? retryAfterMs(answer.retryAfter, this.#timers.now()) : null;
    const delay = Math.max(backoff / 2 + (this.#random() * backoff) / 2, asked ?? 0);
    const elapsed = this.#timers.now() + delay - (d.firstAt ?? now);
    if (this.#closing || d.attempts >= this.#o.maxAttempts || elapsed > this.#o.giveUpAfterMs) {
      if (!this.#closing)
        this.#o.log.warn(
          { deploymentId: job.deploymentId, state: job.status.state, attempts: d.attempts },
          `gave up posting the ${job.status.state} commit status to ${forge} for ${where}: ${d.lastError ?? ''}`,
        );
      this.#settle(d, this.#closing ? 'dropped' : 'gave-up', d.lastError);
      return this.#advance(key);
    }
    this.#o.log.debug(
      { deploymentId: job.deploymentId, state: job.status.state, attempts: d.attempts, delayMs: Math.round(delay) },
      `${forge} commit status for ${where} failed (${d.lastError ?? ''}); retrying`,
    );
    this.#write(d, 'retrying');
    d.timer = this.#timers.set(() => void this.#attempt(key, d), delay);
  }

  /** The lane's next delivery, if any, becomes current; an empty lane is removed. */
  #advance(key: string): void {
    const lane = this.#lanes.get(key);
    if (!lane) return;
    if (lane.next && !this.#closing) {
      lane.current = lane.next;
      lane.next = null;
      void this.#attempt(key, lane.current);
      return;
    }
    if (lane.next) this.#settle(lane.next, 'dropped', 'Shiparr stopped before the forge accepted it');
    this.#lanes.delete(key);
    if (this.#lanes.size === 0) this.#wakeIdle();
  }

  #wakeIdle(): void {
    const waiters = this.#idle;
    this.#idle = [];
    for (const w of waiters) w();
  }

  #settle(d: Delivery, result: CommitStatusRecord['result'], error: string | null): void {
    if (d.settled) return;
    d.settled = true;
    d.lastError = error;
    this.#write(d, result);
  }

  #write(d: Delivery, result: CommitStatusRecord['result']): void {
    const { job } = d;
    const record: CommitStatusRecord = {
      state: job.status.state,
      forgeState: forgeState(job.target.provider, job.status.state),
      provider: job.target.provider,
      context: job.target.context,
      commit: job.commit,
      description: fitDescription(job.status.description),
      result,
      ok: result === 'delivered',
      attempts: d.attempts,
      httpStatus: d.httpStatus,
      lastError: d.lastError === null ? null : maskSecrets(d.lastError),
      at: new Date(this.#timers.now()).toISOString(),
    };
    try {
      this.#o.record(job.deploymentId, record);
    } catch (err) {
      this.#o.log.debug({ err, deploymentId: job.deploymentId }, 'could not record a commit status');
    }
  }
}
