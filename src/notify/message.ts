/** @module Deploy events → notification text: one title line and a short, secret-free body, the same for every service. */
import { maskSecrets } from '../lib/redact.ts';
import type { NotificationMessage } from './transport.ts';

/** What happened. `recovered` is the first success after failures; `test` comes from `shiparr notify-test`. */
export type DeployEventKind = 'success' | 'failure' | 'rolled_back' | 'recovered' | 'test';

/** A deploy outcome to notify about (built by the actor layer from the deploy machine's notice). */
export interface DeployEvent {
  event: DeployEventKind;
  project: string;
  /** Repository name inside the project. */
  repository: string;
  /** Full commit sha (shortened to 7 in messages), or null when unknown (e.g. the check failed). */
  commit: string | null;
  /** What started the deploy: poll, webhook, api, cli… */
  trigger: string;
  /** Why it happened: the summary of the deployment's reason (masked and capped like the error). */
  reason?: string;
  /** The failing stage (failure / rolled_back). */
  stage?: string;
  /** Error summary; masked and truncated before it is sent. */
  error?: string;
  durationMs?: number;
  /** The commit restored by a rollback. */
  rolledBackTo?: string;
  /** Optional link to the dashboard. */
  url?: string;
  /** Consecutive failures before a `recovered` event (filled in by the notifier). */
  failuresBefore?: number;
}

/** Error text is capped so one huge compose log cannot flood a chat (Telegram rejects > 4096 bytes anyway). */
const MAX_ERROR_CHARS = 500;

/** The title and body for an event. */
export function formatMessage(ev: DeployEvent): NotificationMessage {
  const name = `${ev.project}/${ev.repository}`;
  const commit = shortSha(ev.commit);
  const lines: string[] = [];
  let title: string;
  switch (ev.event) {
    case 'success':
      title = `✅ ${name}: deployed ${commit}`;
      break;
    case 'recovered':
      title = `✅ ${name}: recovered, deployed ${commit}`;
      break;
    case 'failure':
      title = `❌ ${name}: deploy failed${ev.stage ? ` (${ev.stage})` : ''}`;
      break;
    case 'rolled_back':
      title = `↩️ ${name}: deploy failed, rolled back to ${shortSha(ev.rolledBackTo ?? null)}`;
      break;
    case 'test':
      title = `🔔 Shiparr test notification`;
      lines.push('This is a test message from Shiparr: notifications to this URL work.');
      break;
  }
  if (ev.event !== 'test') {
    lines.push(`Project: ${ev.project}`, `Repository: ${ev.repository}`, `Commit: ${commit}`, `Trigger: ${ev.trigger}`);
    if (ev.reason) lines.push(`Why: ${summarizeError(ev.reason)}`);
    if ((ev.event === 'failure' || ev.event === 'rolled_back') && ev.stage) lines.push(`Failed stage: ${ev.stage}`);
    if ((ev.event === 'failure' || ev.event === 'rolled_back') && ev.error)
      lines.push(`Error: ${summarizeError(ev.error)}`);
    if (ev.event === 'rolled_back') lines.push(`Rolled back to: ${shortSha(ev.rolledBackTo ?? null)}`);
    if (ev.event === 'recovered' && ev.failuresBefore) lines.push(`Previous failures: ${ev.failuresBefore}`);
    if (ev.durationMs !== undefined) lines.push(`Duration: ${formatDuration(ev.durationMs)}`);
  }
  if (ev.url) lines.push(`Details: ${ev.url}`);
  return { title, body: lines.join('\n') };
}

/** First 7 characters of a sha, or "unknown". */
function shortSha(sha: string | null): string {
  return sha ? sha.slice(0, 7) : 'unknown';
}

/** One line, secrets masked, at most MAX_ERROR_CHARS characters. */
export function summarizeError(error: string): string {
  const oneLine = maskSecrets(error).replace(/\s+/g, ' ').trim();
  const chars = [...oneLine];
  return chars.length <= MAX_ERROR_CHARS ? oneLine : `${chars.slice(0, MAX_ERROR_CHARS - 1).join('')}…`;
}

/** 850 ms, 12.3 s, 4m 05s, 1h 02m. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return 'unknown';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const totalSeconds = Math.round(ms / 1000);
  const h = Math.floor(totalSeconds / 3600);
  const m = Math.floor((totalSeconds % 3600) / 60);
  const s = totalSeconds % 60;
  return h > 0 ? `${h}h ${String(m).padStart(2, '0')}m` : `${m}m ${String(s).padStart(2, '0')}s`;
}
