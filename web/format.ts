/** @module Small display helpers: relative times, durations, short hashes, state classes. */

/** `3 min ago` / `in 2 h` for an ISO time, relative to `now` (ms). */
export function relative(iso: string, now: number): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const diff = t - now;
  const abs = Math.abs(diff);
  const past = diff <= 0;
  let text: string;
  if (abs < 45_000) return past ? 'just now' : 'in a moment';
  if (abs < 3_600_000) text = `${Math.round(abs / 60_000)} min`;
  else if (abs < 86_400_000) text = `${Math.round(abs / 3_600_000)} h`;
  else text = `${Math.round(abs / 86_400_000)} d`;
  return past ? `${text} ago` : `in ${text}`;
}

/** One formatter for every absolute time (Date#toLocaleString builds a new one per call, which is slow). */
const ABSOLUTE = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** Absolute local time for a `title`. */
export const absolute = (iso: string): string => {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : ABSOLUTE.format(d);
};

/** 1.2 s, 3 min 4 s. */
export function duration(ms: number | null): string {
  if (ms === null) return '–';
  if (ms < 1000) return `${ms} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${(ms / 1000).toFixed(1)} s`;
  return `${Math.floor(s / 60)} min ${s % 60} s`;
}

/** First 7 characters of a commit, or a dash. */
export const short = (c: string | null | undefined): string => (c ? c.slice(0, 7) : '–');

/** States that mean work in progress. */
const BUSY = new Set(['checking', 'pulling', 'decrypting', 'applying', 'verifying', 'rollingBack', 'notifying']);

/** Deployment statuses, image-watch statuses and commit-status deliveries by the colour of their badge. */
const WAITING = new Set(['running', 'pending', 'update-available', 'queued', 'retrying']);
const BAD = new Set(['failed', 'backoff', 'rolled_back', 'unhealthy', 'error', 'failure', 'refused', 'gave-up']);
const GOOD = new Set(['idle', 'success', 'healthy', 'up-to-date', 'delivered']);

/** CSS class of a deploy-machine state or deployment status badge. */
export function tone(state: string): string {
  if (BUSY.has(state) || WAITING.has(state)) return 'badge busy';
  if (BAD.has(state)) return 'badge bad';
  if (GOOD.has(state)) return 'badge good';
  return 'badge';
}
