/**
 * @module The notifier: routes deploy events to the repository's and the project's URLs, suppresses repeated identical
 * failures, turns the first success after failures into a recovery message, and never throws. Runs on the main thread
 * (fetch and SMTP are I/O, not CPU work).
 */
import type { Logger } from '../logger.ts';
import { formatMessage, type DeployEvent, type DeployEventKind } from './message.ts';
import { sendNotification, type NotifyResult, type SendOptions, type ServiceOverrides } from './send.ts';
import type { NotificationMessage } from './transport.ts';

/** Per-repository notification memory (persistable: plain JSON data). */
export interface NotifyState {
  /** Failures (failure / rolled_back events) since the last success. */
  failures: number;
  /** `<commit>|<stage>` of the last failure that was notified. */
  lastFailureKey: string | null;
  /** When that failure was notified (ms since epoch, from `now`). */
  lastFailureSentAt: number | null;
}

/** Whether a value read back from storage (JSON) is a NotifyState. */
export function isNotifyState(value: unknown): value is NotifyState {
  if (value === null || typeof value !== 'object') return false;
  const v = value as Record<string, unknown>;
  const numberOrNull = (x: unknown) => x === null || typeof x === 'number';
  return (
    typeof v.failures === 'number' &&
    (v.lastFailureKey === null || typeof v.lastFailureKey === 'string') &&
    numberOrNull(v.lastFailureSentAt)
  );
}

/** Where the notifier keeps NotifyState; the default is an in-memory Map, the daemon may back it with SQLite. */
interface NotifyStateStore {
  get(repoKey: string): NotifyState | undefined;
  set(repoKey: string, state: NotifyState): void;
}

/** Whom to notify for one repository. */
export interface NotifyTarget {
  /** `<project>/<repo>`: the key of the de-duplication state. */
  repoKey: string;
  success: string[];
  failure: string[];
  global: { success: string[]; failure: string[] };
  /** Identical failures are re-sent at most once per this interval (default: the notifier's). */
  repeatIntervalMs?: number;
  /** Per-request timeout for this repository (its `timeouts.notify`), default: the notifier's. */
  timeoutMs?: number;
}

/** What notify() did. `event` is the event actually sent (a success after failures becomes `recovered`). */
interface NotificationOutcome {
  event: DeployEventKind;
  /** True when an identical failure was already sent within the repeat interval: nothing was sent. */
  suppressed: boolean;
  sent: NotifyResult[];
}

export interface NotifierOptions {
  log: Logger;
  /** Per request timeout (default 10 s). */
  timeoutMs?: number;
  /** Retries after a transient failure (default 1: two attempts). */
  retries?: number;
  /** Pause before the retry (default 1 s). */
  retryDelayMs?: number;
  /** Test hook: base URLs for services with fixed API hosts. */
  overrides?: ServiceOverrides;
  /** Clock for the repeat interval (default Date.now). */
  now?: () => number;
  /** Default repeat interval for identical failures (default 1 hour). */
  repeatIntervalMs?: number;
  stateStore?: NotifyStateStore;
}

export interface Notifier {
  /** Routes, de-duplicates, formats and sends a deploy event. Never rejects. */
  notify(target: NotifyTarget, ev: DeployEvent): Promise<NotificationOutcome>;
  /** Sends one message to one URL (no routing, no de-duplication): `notify-test` and the API's test button. */
  send(url: string, message: NotificationMessage, opts?: { timeoutMs?: number }): Promise<NotifyResult>;
}

const DEFAULT_REPEAT_INTERVAL_MS = 3_600_000;

/** A NotifyStateStore over a Map (the default). */
function createMemoryStateStore(): NotifyStateStore {
  const map = new Map<string, NotifyState>();
  return {
    get: (k) => {
      const s = map.get(k);
      return s ? { ...s } : undefined;
    },
    set: (k, s) => void map.set(k, { ...s }),
  };
}

export function createNotifier(opts: NotifierOptions): Notifier {
  const log = opts.log;
  const now = opts.now ?? Date.now;
  const store = opts.stateStore ?? createMemoryStateStore();

  const sendOptions = (timeoutMs?: number): SendOptions => ({
    timeoutMs: timeoutMs ?? opts.timeoutMs,
    ...(opts.retries !== undefined ? { retries: opts.retries } : {}),
    ...(opts.retryDelayMs !== undefined ? { retryDelayMs: opts.retryDelayMs } : {}),
    ...(opts.overrides ? { overrides: opts.overrides } : {}),
  });

  async function send(url: string, message: NotificationMessage, o?: { timeoutMs?: number }): Promise<NotifyResult> {
    let result: NotifyResult;
    try {
      result = await sendNotification(url, message, sendOptions(o?.timeoutMs));
    } catch (err) {
      // sendNotification does not throw; this guards the "never throws" promise against future bugs.
      result = {
        url: '***',
        service: 'unknown',
        ok: false,
        error: err instanceof Error ? err.name : 'error',
        attempts: 0,
      };
    }
    const fields = { url: result.url, service: result.service, attempts: result.attempts, status: result.status };
    if (result.ok) log.info(fields, 'notification sent');
    else log.warn({ ...fields, error: result.error }, 'notification failed');
    return result;
  }

  function readState(repoKey: string): NotifyState {
    try {
      const s = store.get(repoKey);
      if (s) return s;
    } catch (err) {
      log.warn({ err, repoKey }, 'notify state unavailable; starting fresh');
    }
    return { failures: 0, lastFailureKey: null, lastFailureSentAt: null };
  }

  function writeState(repoKey: string, s: NotifyState): void {
    try {
      store.set(repoKey, s);
    } catch (err) {
      log.warn({ err, repoKey }, 'notify state not saved');
    }
  }

  async function sendAll(urls: string[], message: NotificationMessage, timeoutMs?: number): Promise<NotifyResult[]> {
    return Promise.all(unique(urls).map((u) => send(u, message, { timeoutMs })));
  }

  async function notify(target: NotifyTarget, ev: DeployEvent): Promise<NotificationOutcome> {
    try {
      return await route(target, ev);
    } catch (err) {
      log.error({ err, repoKey: target.repoKey }, 'notification routing failed');
      return { event: ev.event, suppressed: false, sent: [] };
    }
  }

  async function route(target: NotifyTarget, ev: DeployEvent): Promise<NotificationOutcome> {
    const successUrls = [...target.success, ...target.global.success];
    const failureUrls = [...target.failure, ...target.global.failure];
    if (ev.event === 'test') {
      const sent = await sendAll([...successUrls, ...failureUrls], formatMessage(ev), target.timeoutMs);
      return { event: 'test', suppressed: false, sent };
    }
    const state = readState(target.repoKey);
    const at = now();

    if (ev.event === 'failure' || ev.event === 'rolled_back') {
      state.failures += 1;
      const key = `${ev.commit ?? ''}|${ev.stage ?? ''}`;
      const interval = target.repeatIntervalMs ?? opts.repeatIntervalMs ?? DEFAULT_REPEAT_INTERVAL_MS;
      if (state.lastFailureKey === key && state.lastFailureSentAt !== null && at - state.lastFailureSentAt < interval) {
        writeState(target.repoKey, state);
        log.debug(
          { repoKey: target.repoKey, event: ev.event, failures: state.failures },
          'repeated failure not re-notified',
        );
        return { event: ev.event, suppressed: true, sent: [] };
      }
      const sent = await sendAll(failureUrls, formatMessage(ev), target.timeoutMs);
      // Only a delivered notice starts the quiet period: if every endpoint was down, the next failure tries again.
      if (sent.length === 0 || sent.some((r) => r.ok)) {
        state.lastFailureKey = key;
        state.lastFailureSentAt = at;
      }
      writeState(target.repoKey, state);
      return { event: ev.event, suppressed: false, sent };
    }

    const recovered = ev.event === 'recovered' || state.failures > 0;
    const event: DeployEventKind = recovered ? 'recovered' : 'success';
    const failuresBefore = state.failures;
    writeState(target.repoKey, { failures: 0, lastFailureKey: null, lastFailureSentAt: null });
    const message = formatMessage({ ...ev, event, ...(recovered && failuresBefore > 0 ? { failuresBefore } : {}) });
    const sent = await sendAll(successUrls, message, target.timeoutMs);
    return { event, suppressed: false, sent };
  }

  return { notify, send };
}

function unique(urls: string[]): string[] {
  return [...new Set(urls.map((u) => u.trim()).filter((u) => u !== ''))];
}
