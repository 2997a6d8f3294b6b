/**
 * @module The image watch (`image_updates: notify | auto`, issue #18): per repository a timer, independent of the git
 * poll, reads from the repository's engine which image each deployed service runs (and the repository digest it was
 * pulled or pushed with), asks the registry which digest the tag names now (a manifest `HEAD`: never a pull), and
 * when they differ either notifies (once per new digest) or asks the repository's actor, through the supervisor
 * facade, for a deploy of the commit deployed now that pulls the changed services (trigger `image-update`). The
 * actor stays the only writer of deployment rows; this service writes only its own `image_watch` rows.
 *
 * Scheduling: one timer per watched repository (`image_check_interval`, ±10 % jitter), re-timed by config reloads
 * ({@link ImageWatch.sync}); a suspended repository is not checked. At most a few registry requests run at once
 * daemon-wide, one per registry repository and tag per round; a registry that rate-limits (Retry-After) or fails
 * transiently is left alone for a while (back-off per registry).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { RE2JS } from 're2js';
import semver from 'semver';
import type { RepoConfig } from '../config/schema.ts';
import type { ImageWatchEntry } from '../domain/types.ts';
import type { ImageUpdateChange } from '../machines/reasons.ts';
import type { ImageNotice } from '../notify/index.ts';
import { createRegistryClient, isLoopbackRegistry, type RegistryAuth } from '../registry/client.ts';
import { parseImageRef } from '../registry/ref.ts';
import { newerTag } from '../registry/tag-policy.ts';
import { DEFAULT_COMPOSE_FILES } from '../compose/cli.ts';
import { writeBackImages } from '../git/write-back.ts';

/** An image reference, parsed (the shape of src/registry's ImageRef). */
export interface ImageRef {
  registry: string;
  repository: string;
  tag: string | null;
  digest: string | null;
}

/** The registry as the watch uses it: parse a compose `image:` value, HEAD a tag's manifest. */
export interface ImageRegistry {
  /** Throws (code REGISTRY_BAD_REF) naming the value when it is not an image reference. */
  parse(image: string): ImageRef;
  /** The digest the tag names now; rejects with a registry error (code, registry, transient, retryAfterMs). */
  head(ref: ImageRef, signal?: AbortSignal, repo?: RepoConfig): Promise<{ digest: string }>;
  /** The tags of the reference's registry repository; rejects with a registry error like `head`. */
  tags(ref: ImageRef, signal?: AbortSignal, repo?: RepoConfig): Promise<string[]>;
}

/** One service as the engine runs it. */
export interface ObservedService {
  service: string;
  /** The reference the service was deployed with (the compose file's `image`, without a Swarm-resolved digest). */
  image: string;
  /** The repository digests of what it runs (`name@sha256:…`): the image's RepoDigests, or a Swarm spec's digest. */
  repoDigests: string[];
}

/** A repository as the watch sees it: its config, whether it is suspended, the commit deployed now. */
export interface WatchedRepo {
  repo: RepoConfig;
  suspended: boolean;
  deployedCommit: string | null;
}

/** setTimeout and a clock (tests inject their own). */
export interface WatchClock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface ImageWatchDeps {
  /** The active repositories (enabled, spawned). */
  repos(): WatchedRepo[];
  /** The services of a repository's deployed project on its engine. */
  observe(repo: RepoConfig): Promise<ObservedService[]>;
  registry: ImageRegistry;
  store: {
    listImageWatch(repoKey: string): ImageWatchEntry[];
    saveImageWatch(repoKey: string, entries: readonly ImageWatchEntry[]): void;
  };
  notify(repo: RepoConfig, notice: ImageNotice): Promise<unknown>;
  /** Asks the repository's actor for an image-update deploy of the commit deployed now (supervisor facade). */
  deploy(key: string, changes: ImageUpdateChange[]): { deploymentId: number };
  /**
   * `auto` + `write_back`: commits the services' new image references to the repository's branch (expected at the
   * deployed commit) and asks for a check of the new commit; resolves to the pushed commit, or null when nothing
   * changed; rejects with a git error (code). Without it, newer tags are only notified.
   */
  writeBack?(
    repo: RepoConfig,
    deployedCommit: string,
    updates: readonly { service: string; image: string }[],
  ): Promise<{ commit: string } | null>;
  log: Logger;
  clock?: WatchClock;
  random?: () => number;
  /** Registry requests in flight daemon-wide at most (default 4). */
  maxInFlight?: number;
}

const SYSTEM_CLOCK: WatchClock = {
  now: Date.now,
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** A never-checked repository is checked within this long after it is first watched (spread by jitter). */
const FIRST_CHECK_MAX_MS = 30_000;
/** Back-off of a registry after a transient failure: doubled per failure, capped. */
const BACKOFF_BASE_MS = 30_000;
const BACKOFF_MAX_MS = 3_600_000;
/** Waiting for Retry-After of a rate-limited registry when it gave none. */
const RATE_LIMIT_DEFAULT_MS = 60_000;

/**
 * Milliseconds until a repository's next image check: the interval with a jitter of ±10 % (`random` in [0,1)),
 * counted from the last check when there was one (a restart does not reset the schedule), at once when that is past.
 */
export function nextCheckDelayMs(intervalS: number, random: number, lastCheckedAt: number | null, now: number): number {
  const jittered = Math.round(intervalS * 1000 * (0.9 + 0.2 * Math.min(1, Math.max(0, random))));
  if (lastCheckedAt === null) return Math.round(Math.min(jittered, FIRST_CHECK_MAX_MS) * Math.max(0, random));
  return Math.max(0, Math.min(jittered, lastCheckedAt + jittered - now));
}

/** `sha256:0123456789ab`. */
const short = (d: string | null): string => {
  if (!d) return 'unknown';
  const i = d.indexOf(':');
  return i >= 0 ? `${d.slice(0, i + 1)}${d.slice(i + 1, i + 13)}` : d.slice(0, 12);
};

/** A registry failure as the watch reads it (src/registry's RegistryError, or anything else thrown). */
interface CheckFailure {
  code: string;
  registry: string;
  message: string;
  transient: boolean;
  retryAfterMs?: number;
}
function failureOf(err: unknown, registry: string): CheckFailure {
  const e = (err ?? {}) as Partial<CheckFailure> & { message?: unknown };
  const message = typeof e.message === 'string' && e.message ? e.message : String(err);
  return {
    code: typeof e.code === 'string' ? e.code : 'REGISTRY_ERROR',
    registry: typeof e.registry === 'string' && e.registry ? e.registry : registry,
    // Every message names the registry, whatever produced it.
    message: message.includes(registry) ? message : `registry ${registry}: ${message}`,
    transient: e.transient === true,
    ...(typeof e.retryAfterMs === 'number' ? { retryAfterMs: e.retryAfterMs } : {}),
  };
}

/** A service to check, or why not. */
type Plan =
  | { service: string; image: string; skip: string }
  | { service: string; image: string; ref: ImageRef; group: string; localDigest: string };

/**
 * The tag policy place: a service with an `image_policy` is checked by digest like the others while its tag is
 * within the policy (semver range and/or tag regex); newer-tag updates (another tag than the deployed one) are the
 * tag policy's part, applied here. A tag outside the policy is skipped, with the reason.
 */
function tagPolicyGate(tag: string, policy: { semver?: string; tagRegex?: string } | undefined): string | null {
  if (!policy) return null;
  if (policy.semver !== undefined) {
    const v = semver.valid(tag, { loose: true }) ?? semver.coerce(tag)?.version ?? null;
    if (v === null || !semver.satisfies(v, policy.semver, { loose: true }))
      return `tag ${tag} is outside image_policy semver "${policy.semver}"`;
  }
  if (policy.tagRegex !== undefined && !RE2JS.compile(policy.tagRegex).matches(tag))
    return `tag ${tag} does not match image_policy tag_regex "${policy.tagRegex}"`;
  return null;
}

/** What to check for each observed service: the registry repository and tag, the local digest, or a skip reason. */
export function planChecks(
  observed: readonly ObservedService[],
  parse: ImageRegistry['parse'],
  policy: Record<string, { semver?: string; tagRegex?: string }> = {},
): Plan[] {
  const sameRepo = (a: ImageRef, b: ImageRef) => a.registry === b.registry && a.repository === b.repository;
  return observed.map((o): Plan => {
    const base = { service: o.service, image: o.image };
    let ref: ImageRef;
    try {
      ref = parse(o.image);
    } catch (err) {
      return { ...base, skip: `not a registry image reference: ${(err as Error).message}` };
    }
    if (ref.digest) return { ...base, skip: `pinned by digest (${short(ref.digest)}): its tag cannot move` };
    if (!ref.tag) return { ...base, skip: 'no tag to watch' };
    const outside = tagPolicyGate(ref.tag, policy[o.service]);
    if (outside) return { ...base, skip: outside };
    let localDigest: string | null = null;
    for (const d of o.repoDigests) {
      const at = d.indexOf('@');
      if (at < 0) continue;
      try {
        if (sameRepo(parse(d.slice(0, at)), ref)) localDigest = d.slice(at + 1);
      } catch {
        // A digest of another naming (unparsable) is not this registry repository's.
      }
      if (localDigest) break;
    }
    if (!localDigest)
      return {
        ...base,
        skip: `no digest from ${ref.registry}/${ref.repository}: built locally (build:) or never pulled from or pushed to that registry`,
      };
    return { ...base, ref, localDigest, group: `${ref.registry}/${ref.repository}:${ref.tag}` };
  });
}

/** What one round of a repository's check decided: the entries to store, the notices to send, the deploy to ask. */
interface RoundOutcome {
  entries: ImageWatchEntry[];
  notices: ImageNotice[];
  deploy: ImageUpdateChange[];
}

/** A group's answer: the remote digest, a failure, or nothing this round (its registry backs off). */
type GroupAnswer = { digest: string } | { failure: CheckFailure } | { deferred: true };

/**
 * Decides one round (pure): the new entries from the plans and the registry's answers, carrying over what was
 * notified and deployed before. `notify`: one notice per new remote digest (per image and digest; services sharing
 * it share the notice); `auto`: services whose new digest was not asked for yet go into one deploy request; a failed
 * check is reported once per distinct error.
 */
export function decideRound(
  mode: 'notify' | 'auto',
  plans: readonly Plan[],
  answers: ReadonlyMap<string, GroupAnswer>,
  previous: readonly ImageWatchEntry[],
  checkedAt: string,
  canDeploy: boolean,
): RoundOutcome {
  const prevOf = new Map(previous.map((p) => [p.service, p]));
  const entries: ImageWatchEntry[] = [];
  const updates = new Map<string, { services: string[]; image: string; from: string | null; to: string }>();
  const errors = new Map<string, { services: string[]; image: string; failure: CheckFailure }>();
  const deploy: ImageUpdateChange[] = [];
  for (const p of plans) {
    const prev = prevOf.get(p.service);
    const same = prev && prev.image === p.image ? prev : undefined;
    const memory = {
      notifiedDigest: same?.notifiedDigest ?? null,
      notifiedError: same?.notifiedError ?? null,
      deployedDigest: same?.deployedDigest ?? null,
      newerTag: same?.newerTag ?? null,
      notifiedTag: same?.notifiedTag ?? null,
    };
    if ('skip' in p) {
      entries.push({
        service: p.service,
        image: p.image,
        localDigest: null,
        remoteDigest: null,
        status: 'skipped',
        reason: p.skip,
        errorCode: null,
        checkedAt,
        ...memory,
        notifiedError: null,
      });
      continue;
    }
    const answer = answers.get(p.group) ?? { deferred: true };
    if ('deferred' in answer) {
      entries.push(
        same ?? {
          service: p.service,
          image: p.image,
          localDigest: p.localDigest,
          remoteDigest: null,
          status: 'error',
          reason: `registry ${p.ref.registry} is backing off after errors; checked again later`,
          errorCode: 'REGISTRY_BACKOFF',
          checkedAt: null,
          ...memory,
        },
      );
      continue;
    }
    if ('failure' in answer) {
      const f = answer.failure;
      if (memory.notifiedError !== f.message) {
        const k = `${f.registry}\n${f.message}`;
        const e = errors.get(k) ?? { services: [], image: p.image, failure: f };
        e.services.push(p.service);
        errors.set(k, e);
      }
      entries.push({
        service: p.service,
        image: p.image,
        localDigest: p.localDigest,
        remoteDigest: same?.remoteDigest ?? null,
        status: 'error',
        reason: f.message,
        errorCode: f.code,
        checkedAt,
        ...memory,
        notifiedError: f.message,
      });
      continue;
    }
    const remote = answer.digest;
    const entry: ImageWatchEntry = {
      service: p.service,
      image: p.image,
      localDigest: p.localDigest,
      remoteDigest: remote,
      status: remote === p.localDigest ? 'up-to-date' : 'update-available',
      reason: null,
      errorCode: null,
      checkedAt,
      ...memory,
      notifiedError: null,
    };
    if (entry.status === 'update-available') {
      if (mode === 'notify' && memory.notifiedDigest !== remote) {
        const k = `${p.image}\n${p.localDigest}\n${remote}`;
        const u = updates.get(k) ?? { services: [], image: p.image, from: p.localDigest, to: remote };
        u.services.push(p.service);
        updates.set(k, u);
        entry.notifiedDigest = remote;
      } else if (mode === 'auto' && memory.deployedDigest !== remote && canDeploy) {
        deploy.push({ service: p.service, image: p.image, from: p.localDigest, to: remote });
        entry.reason = `redeploy with ${short(remote)} asked for`;
      } else if (mode === 'auto' && memory.deployedDigest === remote) {
        entry.reason = `the deploy of ${short(remote)} did not bring it up (see the deployment); waiting for a newer digest`;
      }
    }
    entries.push(entry);
  }
  const notices: ImageNotice[] = [
    ...[...updates.values()].map((u) => ({ kind: 'image_update' as const, mode, ...u })),
    ...[...errors.values()].map((e) => ({
      kind: 'image_check_failed' as const,
      registry: e.failure.registry,
      services: e.services,
      image: e.image,
      error: e.failure.message,
    })),
  ];
  return { entries, notices, deploy };
}

/** A reason written by the newer-tag step (kept across rounds while the tag stays the newest). */
const tagNote = (reason: string): boolean => /^(tag \S+ (written back|already in git)|write-back of tag )/.test(reason);

/** A counting semaphore: at most `max` holders. */
class Limiter {
  #free: number;
  readonly #waiting: (() => void)[] = [];
  constructor(max: number) {
    this.#free = Math.max(1, max);
  }
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#free > 0) this.#free--;
    else await new Promise<void>((resolve) => this.#waiting.push(resolve));
    try {
      return await work();
    } finally {
      const next = this.#waiting.shift();
      if (next) next();
      else this.#free++;
    }
  }
}

/** The image watch of every repository with `image_updates` notify or auto. */
export class ImageWatch {
  readonly #deps: ImageWatchDeps;
  readonly #clock: WatchClock;
  readonly #random: () => number;
  readonly #limiter: Limiter;
  readonly #log: Logger;
  /** Per repository: its timer and the interval it was set for. */
  readonly #timers = new Map<string, { handle: unknown; interval: number }>();
  /** Checks in progress, by repository. */
  readonly #running = new Map<string, Promise<void>>();
  /** Per registry: no requests before `until` (ms), after `failures` consecutive transient failures. */
  readonly #backoff = new Map<string, { until: number; failures: number }>();
  readonly #abort = new AbortController();
  #stopped = false;

  constructor(deps: ImageWatchDeps) {
    this.#deps = deps;
    this.#clock = deps.clock ?? SYSTEM_CLOCK;
    this.#random = deps.random ?? Math.random;
    this.#limiter = new Limiter(deps.maxInFlight ?? 4);
    this.#log = deps.log.child({ component: 'image-watch' });
  }

  #watched(key: string): WatchedRepo | undefined {
    return this.#deps.repos().find((w) => w.repo.key === key && w.repo.imageWatch !== undefined);
  }

  /**
   * Starts, re-times or stops the repositories' timers to match the config (call after every config apply): a new
   * repository is scheduled from its last stored check, a changed interval is re-timed, a removed one stops.
   */
  sync(): void {
    if (this.#stopped) return;
    const wanted = new Map<string, number>();
    for (const w of this.#deps.repos()) if (w.repo.imageWatch) wanted.set(w.repo.key, w.repo.imageWatch.interval);
    for (const [key, t] of this.#timers)
      if (wanted.get(key) !== t.interval) {
        this.#clock.clearTimeout(t.handle);
        this.#timers.delete(key);
      }
    for (const [key, interval] of wanted)
      if (!this.#timers.has(key)) this.#schedule(key, interval, this.#lastCheck(key));
  }

  #lastCheck(key: string): number | null {
    const times = this.#deps.store
      .listImageWatch(key)
      .flatMap((e) => (e.checkedAt ? [Date.parse(e.checkedAt)] : []))
      .filter((t) => Number.isFinite(t));
    return times.length ? Math.max(...times) : null;
  }

  #schedule(key: string, interval: number, last: number | null): void {
    const delay = nextCheckDelayMs(interval, this.#random(), last, this.#clock.now());
    const handle = this.#clock.setTimeout(() => void this.#tick(key, interval), delay);
    this.#timers.set(key, { handle, interval });
  }

  async #tick(key: string, interval: number): Promise<void> {
    if (this.#timers.get(key)?.interval !== interval) return;
    this.#timers.delete(key);
    const w = this.#watched(key);
    if (!w || this.#stopped) return;
    // Suspended: no checks (the timer keeps running, so a resume is picked up at the next tick).
    if (!w.suspended) await this.#check(key);
    if (this.#stopped || this.#timers.has(key)) return;
    const now = this.#watched(key);
    if (now?.repo.imageWatch) this.#schedule(key, now.repo.imageWatch.interval, this.#clock.now());
  }

  /**
   * Runs a check of `key` now (the API's `POST …/images/check`); resolves when it is done.
   * @returns `not-watched` when the repository has no image watch, `suspended` when it is suspended, else `started`.
   */
  checkNow(key: string): { result: 'started' | 'not-watched' | 'suspended'; done: Promise<void> } {
    const w = this.#watched(key);
    if (!w) return { result: 'not-watched', done: Promise.resolve() };
    if (w.suspended) return { result: 'suspended', done: Promise.resolve() };
    return { result: 'started', done: this.#check(key) };
  }

  /** The repository's image watch settings, or null when it has none (the API's read). */
  settings(key: string): { mode: 'notify' | 'auto'; interval: number } | null {
    const watch = this.#watched(key)?.repo.imageWatch;
    return watch ? { mode: watch.mode, interval: watch.interval } : null;
  }

  /** The stored entries of a repository (the API's read). */
  entries(key: string): ImageWatchEntry[] {
    return this.#deps.store.listImageWatch(key);
  }

  /** One check of a repository; a check already running is joined. */
  #check(key: string): Promise<void> {
    const running = this.#running.get(key);
    if (running) return running;
    const p = this.#round(key)
      .catch((err: unknown) => this.#log.error({ err, repo: key }, 'image check failed'))
      .finally(() => this.#running.delete(key));
    this.#running.set(key, p);
    return p;
  }

  async #round(key: string): Promise<void> {
    const w = this.#watched(key);
    const watch = w?.repo.imageWatch;
    if (!w || !watch || w.suspended) return;
    const { repo } = w;
    let observed: ObservedService[];
    try {
      observed = await this.#deps.observe(repo);
    } catch (err) {
      this.#log.warn({ repo: key, err: (err as Error).message }, 'image check: cannot read the deployed services');
      return;
    }
    const plans = planChecks(observed, (i) => this.#deps.registry.parse(i), watch.policy);
    const groups = new Map<string, ImageRef>();
    for (const p of plans) if (!('skip' in p)) groups.set(p.group, p.ref);
    const answers = new Map<string, GroupAnswer>();
    await Promise.all(
      [...groups].map(async ([group, ref]) => {
        answers.set(group, await this.#head(ref, repo));
      }),
    );
    if (this.#stopped) return;
    const fresh = this.#watched(key);
    const canDeploy = fresh !== undefined && !fresh.suspended && fresh.deployedCommit !== null;
    const previous = this.#deps.store.listImageWatch(key);
    const round = decideRound(
      watch.mode,
      plans,
      answers,
      previous,
      new Date(this.#clock.now()).toISOString(),
      canDeploy,
    );
    for (const a of answers.values())
      if ('failure' in a)
        this.#log.warn(
          { repo: key, registry: a.failure.registry, code: a.failure.code },
          `image check failed: ${a.failure.message}`,
        );
    if (round.deploy.length > 0) {
      try {
        const { deploymentId } = this.#deps.deploy(key, round.deploy);
        this.#log.info(
          { repo: key, deploymentId, services: round.deploy.map((c) => c.service) },
          `image update: ${round.deploy.map((c) => `${c.service} ${short(c.from)} → ${short(c.to)}`).join(', ')}`,
        );
        const asked = new Map(round.deploy.map((c) => [c.service, c.to]));
        for (const e of round.entries) {
          const to = asked.get(e.service);
          if (to !== undefined) {
            e.deployedDigest = to;
            e.reason = `redeploy with ${short(to)} asked for (deployment ${deploymentId})`;
          }
        }
      } catch (err) {
        this.#log.warn({ repo: key, err: (err as Error).message }, 'image update: the deploy was not taken');
        for (const e of round.entries)
          if (round.deploy.some((c) => c.service === e.service))
            e.reason = `deploy not taken: ${(err as Error).message}`;
      }
    }
    const tagNotices = await this.#newerTags(key, plans, round.entries, previous);
    round.notices.push(...tagNotices);
    this.#deps.store.saveImageWatch(key, round.entries);
    for (const n of round.notices) {
      if (n.kind === 'image_update')
        this.#log.info(
          { repo: key, services: n.services },
          `image update available: ${n.image} ${short(n.from)} → ${short(n.to)}`,
        );
      await this.#deps
        .notify(repo, n)
        .catch((err: unknown) => this.#log.warn({ err, repo: key }, 'image notice failed'));
    }
  }

  /**
   * Newer tags (services with an `image_policy`): one tag list per registry repository, the newest tag within the
   * policy into the entry; a tag not acted on yet is notified (`notify`, or `auto` without `write_back`) or written
   * back (`auto` + `write_back`), once per service and tag (`notifiedTag`, stored), a failed write-back included.
   * Updates `entries` in place; returns the notices to send.
   */
  async #newerTags(
    key: string,
    plans: readonly Plan[],
    entries: ImageWatchEntry[],
    previous: readonly ImageWatchEntry[],
  ): Promise<ImageNotice[]> {
    const w = this.#watched(key);
    const watch = w?.repo.imageWatch;
    if (!w || !watch) return [];
    const checked = plans.flatMap((p) => ('skip' in p || !watch.policy[p.service] ? [] : [p]));
    const lists = new Map<string, Promise<string[] | null>>();
    for (const p of checked) {
      const k = `${p.ref.registry}/${p.ref.repository}`;
      if (!lists.has(k)) lists.set(k, this.#tags(p.ref, w.repo));
    }
    const byService = new Map(entries.map((e) => [e.service, e]));
    const prevOf = new Map(previous.map((e) => [e.service, e]));
    /** Per (image, newer tag): the services. */
    const found = new Map<string, { image: string; tag: string; services: string[] }>();
    for (const p of checked) {
      const entry = byService.get(p.service);
      const tags = await lists.get(`${p.ref.registry}/${p.ref.repository}`);
      const policy = watch.policy[p.service];
      if (!entry || !tags || !policy || !p.ref.tag) continue;
      const newer = newerTag(p.ref.tag, tags, {
        ...(policy.semver !== undefined ? { semver: policy.semver } : {}),
        ...(policy.tagRegex !== undefined ? { tag_regex: policy.tagRegex } : {}),
      });
      entry.newerTag = newer;
      if (newer !== null && entry.notifiedTag === newer) {
        // Acted on before: what came of it (written back, or the failure) stays visible.
        const prev = prevOf.get(p.service);
        if (entry.reason === null && prev?.notifiedTag === newer && prev.reason !== null && tagNote(prev.reason))
          entry.reason = prev.reason;
        continue;
      }
      if (newer === null) continue;
      const k = `${p.image}\n${newer}`;
      const f = found.get(k) ?? { image: p.image, tag: newer, services: [] };
      f.services.push(p.service);
      found.set(k, f);
    }
    if (found.size === 0) return [];
    const write = watch.mode === 'auto' && watch.writeBack && this.#deps.writeBack !== undefined;
    const mark = (services: readonly string[], tag: string, reason: string | null) => {
      for (const s of services) {
        const e = byService.get(s);
        if (!e) continue;
        e.notifiedTag = tag;
        if (reason !== null) e.reason = reason;
      }
    };
    if (!write) {
      return [...found.values()].map((f) => {
        mark(f.services, f.tag, null);
        this.#log.info({ repo: key, services: f.services }, `newer image tag: ${f.image} → ${f.tag}`);
        return { kind: 'image_newer_tag' as const, services: f.services, image: f.image, tag: f.tag, action: 'none' };
      });
    }
    const fresh = this.#watched(key);
    if (!fresh || fresh.suspended || fresh.deployedCommit === null || this.#stopped) return [];
    const updates = [...found.values()].flatMap((f) =>
      f.services.map((service) => ({ service, image: `${withoutTag(f.image)}:${f.tag}`, tag: f.tag })),
    );
    const all = [...found.values()];
    try {
      const pushed = await this.#deps.writeBack!(
        fresh.repo,
        fresh.deployedCommit,
        updates.map((u) => ({ service: u.service, image: u.image })),
      );
      for (const f of all)
        mark(
          f.services,
          f.tag,
          pushed ? `tag ${f.tag} written back (commit ${pushed.commit.slice(0, 12)})` : `tag ${f.tag} already in git`,
        );
      this.#log.info(
        { repo: key, commit: pushed?.commit ?? null, services: updates.map((u) => u.service) },
        `image write-back: ${updates.map((u) => `${u.service} → ${u.image}`).join(', ')}`,
      );
      return pushed
        ? all.map((f) => ({
            kind: 'image_newer_tag' as const,
            services: f.services,
            image: f.image,
            tag: f.tag,
            action: 'write-back' as const,
          }))
        : [];
    } catch (err) {
      const e = err as { code?: unknown; message?: unknown };
      const code = typeof e.code === 'string' ? e.code : 'GIT_WRITE_BACK_FAILED';
      const message = typeof e.message === 'string' ? e.message : String(err);
      this.#log.warn({ repo: key, code }, `image write-back failed (${code}): ${message}`);
      for (const f of all) mark(f.services, f.tag, `write-back of tag ${f.tag} failed (${code}): ${message}`);
      return [];
    }
  }

  /** One tag list, within the daemon-wide limit and the registry's back-off; null when not known this round. */
  async #tags(ref: ImageRef, repo: RepoConfig): Promise<string[] | null> {
    const b = this.#backoff.get(ref.registry);
    if (b && b.until > this.#clock.now()) return null;
    try {
      return await this.#limiter.run(() => this.#deps.registry.tags(ref, this.#abort.signal, repo));
    } catch (err) {
      const f = failureOf(err, ref.registry);
      this.#log.warn({ repo: repo.key, registry: f.registry, code: f.code }, `image tag list failed: ${f.message}`);
      return null;
    }
  }

  /** One manifest HEAD, within the daemon-wide limit and the registry's back-off. */
  async #head(ref: ImageRef, repo: RepoConfig): Promise<GroupAnswer> {
    const b = this.#backoff.get(ref.registry);
    if (b && b.until > this.#clock.now()) return { deferred: true };
    try {
      const { digest } = await this.#limiter.run(() => this.#deps.registry.head(ref, this.#abort.signal, repo));
      this.#backoff.delete(ref.registry);
      return { digest };
    } catch (err) {
      const failure = failureOf(err, ref.registry);
      const failures = (b?.failures ?? 0) + 1;
      if (failure.code === 'REGISTRY_RATE_LIMITED')
        this.#backoff.set(ref.registry, {
          until: this.#clock.now() + (failure.retryAfterMs ?? RATE_LIMIT_DEFAULT_MS),
          failures,
        });
      else if (failure.transient)
        this.#backoff.set(ref.registry, {
          until: this.#clock.now() + Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (failures - 1)),
          failures,
        });
      return { failure };
    }
  }

  /** Stops every timer and aborts registry requests in flight; resolves when running checks have ended. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#timers.values()) this.#clock.clearTimeout(t.handle);
    this.#timers.clear();
    this.#abort.abort();
    await Promise.all([...this.#running.values()]);
  }
}

/** The last `:tag` of a reference's name part (`host:5000/app:1` → `host:5000/app`). */
function withoutTag(image: string): string {
  const slash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  return colon > slash ? image.slice(0, colon) : image;
}

const PROJECT_LABEL = 'com.docker.compose.project';
const SERVICE_LABEL = 'com.docker.compose.service';
const ONEOFF_LABEL = 'com.docker.compose.oneoff';
const STACK_LABEL = 'com.docker.stack.namespace';

/**
 * The services of a repository's deployed project on its engine: for compose, one container per service (the
 * compose project label) with the image it was created from and that image's RepoDigests; for `mode: swarm`, the
 * stack's services, whose spec image carries the digest Swarm resolved (`ContainerSpec.Image` = `ref@sha256:…`).
 */
export async function observeServices(docker: Dockerode, repo: RepoConfig): Promise<ObservedService[]> {
  if (repo.mode === 'swarm') {
    const services = await docker.listServices({ filters: { label: [`${STACK_LABEL}=${repo.composeProject}`] } });
    return services
      .map((s): ObservedService => {
        const name = s.Spec?.Name ?? '';
        const task = s.Spec?.TaskTemplate as { ContainerSpec?: Dockerode.ContainerSpec } | undefined;
        const full = task?.ContainerSpec?.Image ?? '';
        const [resolved = '', digest] = full.split('@');
        // The compose file's own reference (a pinned digest stays visible), else the spec's without Swarm's digest.
        const image = s.Spec?.Labels?.['com.docker.stack.image'] ?? resolved;
        const service = name.startsWith(`${repo.composeProject}_`) ? name.slice(repo.composeProject.length + 1) : name;
        return { service, image, repoDigests: digest ? [`${withoutTag(resolved)}@${digest}`] : [] };
      })
      .sort((a, b) => a.service.localeCompare(b.service));
  }
  const listed = await docker.listContainers({
    all: true,
    filters: { label: [`${PROJECT_LABEL}=${repo.composeProject}`] },
  });
  const first = new Map<string, string>();
  for (const c of listed) {
    const labels = c.Labels ?? {};
    const service = labels[SERVICE_LABEL];
    if (!service || labels[ONEOFF_LABEL] === 'True' || first.has(service)) continue;
    first.set(service, c.Id);
  }
  const out: ObservedService[] = [];
  for (const [service, id] of first) {
    const info = await docker.getContainer(id).inspect();
    const inspected = await docker
      .getImage(info.Image)
      .inspect()
      .catch(() => null);
    out.push({ service, image: info.Config.Image, repoDigests: inspected?.RepoDigests ?? [] });
  }
  return out.sort((a, b) => a.service.localeCompare(b.service));
}

/**
 * The registry port over src/registry's client, with each repository's credentials (`registries` of its project
 * file and SHIPARR_DOCKER_CONFIG, resolved into RepoConfig.registries): one client per repository, kept while its
 * credentials stay the same (a client keeps its tokens and rate-limit windows).
 */
export function registryPort(): ImageRegistry {
  const clients = new Map<string, { sig: string; client: ReturnType<typeof createRegistryClient> }>();
  const clientOf = (repo: RepoConfig | undefined) => {
    const regs = repo?.registries ?? {};
    const key = repo?.key ?? '';
    const sig = JSON.stringify(regs);
    let hit = clients.get(key);
    if (!hit || hit.sig !== sig) {
      const client = createRegistryClient({
        credentials: (registry): RegistryAuth | undefined => {
          const c = regs[registry];
          return c ? { username: c.username, password: c.password } : undefined;
        },
        insecure: (registry) => regs[registry]?.insecure ?? isLoopbackRegistry(registry),
      });
      clients.set(key, (hit = { sig, client }));
    }
    return hit.client;
  };
  return {
    parse: parseImageRef,
    head: (ref, signal, repo) => clientOf(repo).headManifest(ref, signal),
    tags: (ref, signal, repo) => clientOf(repo).listTags(ref, signal),
  };
}

/**
 * The write-back of newer tags (`auto` + `write_back`): commits the new image references to the repository's branch
 * (which must still be at the deployed commit) in its compose files (`compose_files`, else the first default compose
 * file of the checkout), with scratch space under `scratchRoot`; after a pushed commit asks for a check (`check`), so
 * the normal pipeline deploys it.
 */
export function writeBackPort(
  scratchRoot: string,
  check: (key: string) => unknown,
): NonNullable<ImageWatchDeps['writeBack']> {
  return async (repo, deployedCommit, updates) => {
    const dir = path.join(repo.localPath, repo.path);
    const files =
      repo.composeFiles.length > 0
        ? repo.composeFiles
        : DEFAULT_COMPOSE_FILES.filter((f) => existsSync(path.join(dir, f))).slice(0, 1);
    const pushed = await writeBackImages({
      url: repo.url,
      branch: repo.branch,
      ...(repo.token ? { token: repo.token } : {}),
      workDir: scratchRoot,
      composeFiles: files.map((f) => path.posix.normalize(path.posix.join(repo.path.split(path.sep).join('/'), f))),
      updates,
      author: { name: 'Shiparr', email: 'shiparr@localhost' },
      timeoutMs: repo.timeouts.git * 1000,
      expectedHead: deployedCommit,
    });
    if (pushed) check(repo.key);
    return pushed;
  };
}
