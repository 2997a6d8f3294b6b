/**
 * @module Why a deployment happened: pure builders of the DeploymentReason stored on every deployment row. The
 * repository's actor builds the opening reason when it opens the row (from the run's trigger, who asked and the
 * run's cause) and refines it once the checkout is synced and the commit range is known. Every summary is one line,
 * masked with lib/redact like any free text (commit subjects are commit text, not secrets, but masked all the same).
 */
import type { RepoConfig } from '../config/schema.ts';
import type { DeploymentReason, DeploymentTrigger } from '../domain/types.ts';
import { maskSecrets } from '../lib/redact.ts';

/** What the deploy machine knows about why a run started, beyond its trigger (clone-safe; every field optional). */
export interface RunCause {
  /** The webhook delivery that asked for the check (trigger `webhook`). */
  webhook?: { provider: string; deliveryId: string | null };
  /** Keys of the repository's config that changed (trigger `config`, snake_case as in the project file). */
  configKeys?: string[];
  /** The deployment a crash interrupted, redeployed by the boot check (trigger `boot`). */
  interruptedDeploymentId?: number | null;
  /** The deployment a manual rollback returns to, when one was named (trigger `rollback`). */
  rollbackOf?: number | null;
  /** Consecutive transient failures before this retry (trigger `retry`). */
  attempt?: number;
  /** The services whose image tag moved in the registry (trigger `image-update`): old → new digest. */
  imageUpdate?: ImageUpdateChange[];
}

/** One service whose tag now names another digest (digests `sha256:…`; `from` null when none was known). */
export interface ImageUpdateChange {
  service: string;
  /** The image reference as deployed (e.g. `127.0.0.1:5000/app:latest`). */
  image?: string;
  from: string | null;
  to: string;
}

/** `sha256:0123456789ab` (the first 12 hex digits, like Docker prints image ids). */
const shortDigest = (d: string | null | undefined): string => {
  if (!d) return 'unknown';
  const i = d.indexOf(':');
  return i >= 0 ? `${d.slice(0, i + 1)}${d.slice(i + 1, i + 13)}` : d.slice(0, 12);
};

/** The commits between the previously deployed commit and the new one (as read from the checkout's objects). */
export interface CommitRangeInfo {
  /** Commits in from..to; null when the history between them is not known (shallow checkout). */
  count: number | null;
  /** Subjects of the newest commits (at most 5, newest first). */
  subjects: string[];
}

/** What the opening reason is built from: the run as the machine records it. */
export interface ReasonInput {
  trigger: DeploymentTrigger;
  triggeredBy?: string | null;
  commit: string | null;
  previousCommit: string | null;
  cause?: RunCause | null;
  /** false for a check asked through the API (resume, check): its new commits are the reason, not a forced deploy. */
  forced?: boolean;
}

/** Subjects kept on a reason, and shown in its summary. */
const MAX_SUBJECTS = 5;
const SHOWN_SUBJECTS = 3;
const MAX_SUBJECT_CHARS = 72;
const MAX_SUMMARY_CHARS = 300;

const short = (sha: string | null | undefined): string => (sha ? sha.slice(0, 7) : 'unknown');

/** One line, masked, at most `max` characters. */
function clean(text: string, max: number): string {
  const line = maskSecrets(text).replace(/\s+/g, ' ').trim();
  const chars = [...line];
  return chars.length <= max ? line : `${chars.slice(0, max - 1).join('')}…`;
}

/** "3 new commits 1a2b3c4..5d6e7f8: Fix login; Bump db; …" (the part a range adds to any summary). */
export function describeCommits(from: string | null, to: string, range: CommitRangeInfo | null): string {
  const subjects = range ? range.subjects.slice(0, SHOWN_SUBJECTS) : [];
  const more =
    from !== null && range && (range.count === null || range.count > subjects.length) && subjects.length > 0
      ? '; …'
      : '';
  const list = subjects.length ? `: ${subjects.join('; ')}${more}` : '';
  if (from === null) return `first deployment of ${short(to)}${list}`;
  if (from === to) return `redeploy of ${short(to)} (no new commits)`;
  if (!range) return `new head ${short(to)} (was ${short(from)})`;
  const count =
    range.count === null
      ? 'new commits'
      : range.count === 0
        ? 'no new commits'
        : `${range.count} new commit${range.count === 1 ? '' : 's'}`;
  const unknown = range.count === null ? ' (count unknown: shallow history)' : '';
  return `${count} ${short(from)}..${short(to)}${unknown}${list}`;
}

function summaryOf(reason: DeploymentReason): string {
  switch (reason.kind) {
    case 'commits':
      // Nothing known yet (count null, no subjects: the row was just opened) reads as the new head alone.
      return describeCommits(
        reason.from,
        reason.to,
        reason.count === null && reason.subjects.length === 0
          ? null
          : { count: reason.count, subjects: reason.subjects },
      );
    case 'config':
      return reason.keys.length ? `config changed: ${reason.keys.join(', ')}` : reason.summary;
    case 'forced':
      return `forced deploy by ${reason.by ?? 'an anonymous request'} via ${reason.via}`;
    case 'webhook':
      return `webhook from ${reason.provider}${reason.deliveryId ? ` (delivery ${reason.deliveryId})` : ''}`;
    case 'rollback':
      return (
        `${reason.automatic ? 'automatic' : 'manual'} rollback ${short(reason.from)} → ${short(reason.to)}` +
        (reason.deploymentId !== null ? ` (deployment #${reason.deploymentId})` : '') +
        (reason.by ? ` by ${reason.by}` : '')
      );
    case 'recovery':
      return reason.interruptedDeploymentId !== null
        ? `recovery: redeploy after deployment #${reason.interruptedDeploymentId} was interrupted`
        : 'recovery: redeploy after an interrupted deployment';
    case 'retry':
      return `retry after ${reason.attempt} transient failure${reason.attempt === 1 ? '' : 's'}`;
    case 'image-update':
      return reason.services.length
        ? `image update: ${reason.services
            .map((s) => `${s.service} ${shortDigest(s.from)} → ${shortDigest(s.to)}`)
            .join(', ')}`
        : reason.summary;
    default:
      return reason.summary;
  }
}

/** The reason with its summary (re)written from its fields, masked and bounded. */
function finish<R extends DeploymentReason>(reason: R, extra = ''): R {
  return { ...reason, summary: clean(`${summaryOf(reason)}${extra}`, MAX_SUMMARY_CHARS) };
}

/** Masked, single-line, bounded commit subjects (at most 5, newest first). */
function cleanSubjects(subjects: readonly string[]): string[] {
  return subjects.slice(0, MAX_SUBJECTS).map((s) => clean(s, MAX_SUBJECT_CHARS));
}

/** A masked principal or identifier (who asked, a delivery id): never a secret, bounded. */
const cleanId = (v: string | null | undefined): string | null => (v ? clean(v, 100) : null);

/**
 * Why a run's deployment row is opened: from the trigger, who asked and the machine's cause. A poll is `commits`
 * (refined with the range after the sync), an API or CLI deploy `forced`, a webhook `webhook`, a config reload
 * `config`, a boot check `recovery` (after an interrupted deployment) or `boot`, a backoff check `retry`, a manual
 * rollback `rollback`. Automatic rollbacks never open a row: they run inside the failed deployment's row, which keeps
 * the reason it started with (its `rolledBackTo` and log say the rest).
 */
export function openingReason(input: ReasonInput): DeploymentReason {
  const { trigger, commit, previousCommit } = input;
  const cause = input.cause ?? {};
  const by = cleanId(input.triggeredBy);
  switch (trigger) {
    case 'rollback':
      return finish({
        kind: 'rollback',
        summary: '',
        from: previousCommit,
        to: commit ?? 'unknown',
        automatic: false,
        by,
        deploymentId: cause.rollbackOf ?? null,
      });
    case 'api':
    case 'cli':
      if (input.forced !== false) return finish({ kind: 'forced', summary: '', by, via: trigger });
      return openingReason({ ...input, trigger: 'poll' });
    case 'webhook': {
      const provider = cause.webhook?.provider ?? (by?.startsWith('webhook:') ? by.slice(8) : 'unknown');
      return finish({
        kind: 'webhook',
        summary: '',
        provider: clean(provider, 40),
        deliveryId: cleanId(cause.webhook?.deliveryId),
      });
    }
    case 'config':
      return finish({
        kind: 'config',
        summary: 'config changed',
        keys: (cause.configKeys ?? []).map((k) => clean(k, 60)),
      });
    case 'retry':
      return finish({ kind: 'retry', summary: '', attempt: Math.max(1, cause.attempt ?? 1) });
    case 'boot':
      if (cause.interruptedDeploymentId !== undefined)
        return finish({
          kind: 'recovery',
          summary: '',
          interruptedDeploymentId: cause.interruptedDeploymentId,
        });
      return finish({
        kind: 'boot',
        summary:
          previousCommit === null
            ? `first check after start: ${short(commit)} not deployed yet`
            : commit === previousCommit
              ? `check at start: config differs from the last successful deployment of ${short(commit)}`
              : `check at start found ${short(commit)} (was ${short(previousCommit)})`,
      });
    case 'self-update':
      return finish({ kind: 'self-update', summary: 'self-update of the compose project Shiparr runs in' });
    case 'image-update':
      return finish({
        kind: 'image-update',
        summary: 'image update',
        services: (cause.imageUpdate ?? []).map((c) => ({
          service: clean(c.service, 100),
          from: c.from === null ? null : clean(c.from, 100),
          to: clean(c.to, 100),
        })),
      });
    case 'poll':
      // The head did not move: what differs is the deploy-relevant config (e.g. a config change whose deploy failed).
      if (commit !== null && commit === previousCommit)
        return finish({
          kind: 'config',
          summary: `config differs from the last successful deployment of ${short(commit)}`,
          keys: [],
        });
      return finish({
        kind: 'commits',
        summary: '',
        from: previousCommit,
        to: commit ?? 'unknown',
        count: null,
        subjects: [],
      });
  }
}

/**
 * The reason once the checkout is synced to `to`: a `commits` reason gets the count and subjects; any other reason
 * (but a rollback, whose from/to say it all) gets the range appended to its summary when there are new commits.
 */
export function refineReason(
  reason: DeploymentReason,
  from: string | null,
  to: string,
  range: CommitRangeInfo | null,
): DeploymentReason {
  const subjects = range ? cleanSubjects(range.subjects) : [];
  const r = range ? { count: range.count, subjects } : null;
  if (reason.kind === 'commits') {
    return finish({ ...reason, from, to, count: r ? r.count : null, subjects });
  }
  if (reason.kind === 'rollback' || !r || from === to || (r.count === 0 && from !== null)) return reason;
  return { ...reason, summary: clean(`${reason.summary}; ${describeCommits(from, to, r)}`, MAX_SUMMARY_CHARS) };
}

/** Project-file names of the RepoConfig fields (the resolved config is camelCase). */
const FILE_KEYS: Partial<Record<keyof RepoConfig, string>> = {
  composeFiles: 'compose_files',
  composeProject: 'compose_project',
  removeOrphans: 'remove_orphans',
  dockerHost: 'docker_host',
  decrypt: 'decrypt',
  localPath: 'local_path',
  keepDecrypted: 'keep_decrypted',
  checkInterval: 'check_interval',
  webhookSecret: 'webhook_secret',
  globalNotifications: 'global_notifications',
  notifyRepeatInterval: 'notify_repeat_interval',
};

/**
 * Which keys of a repository's config differ between two resolved versions (names only, never values), sorted.
 * `configHash` itself is not a key; a changed hash without another difference yields no keys.
 */
export function changedConfigKeys(prev: RepoConfig, next: RepoConfig): string[] {
  const keys = new Set<string>([...Object.keys(prev), ...Object.keys(next)]);
  const out: string[] = [];
  for (const k of keys) {
    if (k === 'configHash') continue;
    const a = (prev as unknown as Record<string, unknown>)[k];
    const b = (next as unknown as Record<string, unknown>)[k];
    if (JSON.stringify(a) === JSON.stringify(b)) continue;
    out.push(FILE_KEYS[k as keyof RepoConfig] ?? k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`));
  }
  return out.sort();
}
