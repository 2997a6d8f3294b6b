/**
 * @module The project-file format: one YAML file per project (the original Shiparr script's format plus optional extensions).
 * The only zod shapes for project files live here; `config/project.schema.json` is generated from them.
 */
import { RE2JS, RE2JSSyntaxException } from 're2js';
import semver from 'semver';
import { z } from 'zod';

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const nameMessage = 'must start with a letter or digit and contain only letters, digits, "_", "." or "-" (max 63)';

/** Checks one notification URL: null when it is fine, else what is wrong ("has an unknown service …"). */
export type NotificationUrlCheck = (url: string) => string | null;

/**
 * The check used when none is passed: config/ alone can only see that a URL has a scheme. The daemon and
 * `shiparr validate` pass notify's validator (service known, token present) to the loader instead.
 */
const basicNotificationUrlCheck: NotificationUrlCheck = (url) =>
  /^[a-z][a-z0-9+.-]*:\/\//i.test(url) ? null : 'is not a URL (expected service://…)';

const seconds = (def: number, what: string) =>
  z
    .number({ error: 'must be a number of seconds' })
    .positive('must be a positive number of seconds')
    .default(def)
    .describe(what);

const relativePath = z
  .string()
  .min(1)
  .refine((p) => !p.includes('\0'), 'must not contain NUL bytes');

const DecryptSchema = z.strictObject({
  file: relativePath.describe('SOPS-encrypted file, relative to the repository `path`'),
  format: z
    .enum(['dotenv', 'yaml', 'json', 'binary'])
    .optional()
    .describe('Store format; inferred from the file name when omitted'),
  output: relativePath
    .optional()
    .describe(
      'Where to write the plaintext, relative to `path` (default: `.env` for dotenv files, else the name without `.enc`)',
    ),
});

const HealthcheckSchema = z
  .strictObject({
    timeout: seconds(120, 'Seconds to wait for all containers to be running/healthy'),
    url: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
      .optional()
      .describe('Optional HTTP endpoint that must answer 2xx'),
    retries: z.number().int().min(0).default(5).describe('Retries for `url`'),
    interval: seconds(5, 'Seconds between `url` retries'),
  })
  .describe('Health verification after `compose up`');

const EngineTlsSchema = z
  .strictObject({
    ca: relativePath.optional().describe('CA certificate (PEM) the engine certificate must chain to'),
    cert: relativePath.optional().describe('Client certificate (PEM)'),
    key: relativePath.optional().describe('Client private key (PEM)'),
    verify: z.boolean().default(true).describe('Check the engine certificate against `ca` (default true)'),
  })
  .describe('TLS client material for a tcp:// engine; paths relative to the project file');

const EngineSshSchema = z
  .strictObject({
    key: relativePath.optional().describe('Private key file (default: the ssh agent)'),
    known_hosts: relativePath
      .optional()
      .describe('known_hosts file the engine host key must be listed in (default ~/.ssh/known_hosts)'),
  })
  .describe('ssh:// engine options; paths relative to the project file');

/** The engine keys shared by repositories and the project level (a project-wide default engine). */
const engineKeys = {
  docker_host: z.string().optional().describe('DOCKER_HOST: unix://, tcp://, http(s)://, ssh://user@host[:port]'),
  docker_tls: EngineTlsSchema.optional(),
  docker_ssh: EngineSshSchema.optional(),
  docker_context: z.string().min(1).optional().describe('Docker CLI context name (from $DOCKER_CONFIG/contexts)'),
};

const CommitStatusSchema = z
  .strictObject({
    provider: z
      .enum(['github', 'gitea', 'gitlab'], { error: 'must be github, gitea (also Forgejo) or gitlab' })
      .describe('The forge the repository lives on (`gitea` covers Forgejo and Codeberg)'),
    api_url: z
      .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
      .optional()
      .describe(
        'API root (default: https://api.github.com, https://gitlab.com/api/v4, or the clone URL origin + /api/v1 for Gitea); required for GitHub Enterprise and self-hosted GitLab',
      ),
    token: z
      .string()
      .optional()
      .describe('Token allowed to write commit statuses (default: the repository token); `${VAR}` works'),
    context: z
      .string()
      .min(1, 'must not be empty')
      .max(255, 'must be at most 255 characters')
      .optional()
      .describe('Status context / name shown by the forge (default `shiparr/<project>/<repo>`)'),
  })
  .describe('Post the deploy result back to the forge as a commit status');

const TimeoutsSchema = z
  .strictObject({
    git: seconds(120, 'Timeout for one git operation (check, clone, fetch)'),
    apply: seconds(600, 'Timeout for `docker compose up`'),
    decrypt: seconds(60, 'Timeout for decrypting all SOPS files'),
    notify: seconds(10, 'Timeout for one notification send'),
  })
  .describe('Per-stage timeouts in seconds');

const ImagePolicySchema = z
  .strictObject({
    semver: z
      .string()
      .min(1)
      .refine((r) => semver.validRange(r) !== null, 'is not a valid semver range (e.g. "^16", ">=1.2 <2")')
      .optional()
      .describe('Newer tags allowed: a semver range (npm syntax) over the tags of the image repository'),
    tag_regex: z
      .string()
      .min(1)
      .superRefine((pattern, ctx) => {
        try {
          RE2JS.compile(pattern);
        } catch (err) {
          const reason = err instanceof RE2JSSyntaxException ? err.message : 'cannot be compiled';
          ctx.addIssue({ code: 'custom', message: `is not a valid regular expression (RE2 syntax): ${reason}` });
        }
      })
      .optional()
      .describe('Newer tags allowed: tags must match this regular expression (RE2 syntax, whole tag)'),
  })
  .describe('Tag policy of one service: which newer tags count as updates');

function buildSchemas(checkUrl: NotificationUrlCheck) {
  const NotificationUrl = z.string().superRefine((url, ctx) => {
    const problem = checkUrl(url);
    if (problem) ctx.addIssue({ code: 'custom', message: `notification URL ${problem}` });
  });

  const NotificationsSchema = z
    .strictObject({
      success: z
        .array(NotificationUrl)
        .default([])
        .describe('Shoutrrr URLs notified when a deploy succeeds (and on recovery)'),
      failure: z
        .array(NotificationUrl)
        .default([])
        .describe('Shoutrrr URLs notified when a deploy fails or is rolled back'),
    })
    .describe('Notification targets');

  const RepositorySchema = z
    .strictObject({
      url: z
        .string()
        .min(1, 'must not be empty')
        .describe('Git URL; without a scheme, https:// is assumed (github.com/user/repo.git)'),
      branch: z.string().min(1).default('main').describe('Branch to deploy'),
      path: relativePath.default('.').describe('Sub-directory holding the compose file'),
      local_path: relativePath
        .optional()
        .describe('Checkout directory; relative → under SHIPARR_DATA_PATH (default deployments/<project>/<repo>)'),
      check_interval: seconds(300, 'Poll interval in seconds (values below 10 are allowed but logged as a warning)'),
      env_file: relativePath.optional().describe('SOPS file to decrypt (relative to `path`), e.g. .env.enc'),
      decrypt: z.array(DecryptSchema).default([]).describe('More SOPS files to decrypt'),
      keep_decrypted: z.boolean().default(false).describe('Keep plaintext files after the deploy'),
      notifications: NotificationsSchema.default({ success: [], failure: [] }),
      compose_files: z
        .array(relativePath)
        .default([])
        .describe('Compose files (relative to `path`); default: compose.yaml / docker-compose.yml …'),
      compose_project: z
        .string()
        .regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be lowercase letters, digits, "_" or "-"')
        .optional()
        .describe('Compose project name (default <project>-<repo>, lowercased)'),
      pull: z.enum(['always', 'missing', 'never']).default('missing').describe('`docker compose up --pull` policy'),
      build: z.boolean().default(false).describe('Pass --build to compose up'),
      remove_orphans: z.boolean().default(true).describe('Pass --remove-orphans to compose up'),
      healthcheck: HealthcheckSchema.default({ timeout: 120, retries: 5, interval: 5 }),
      rollback: z.boolean().default(true).describe('Roll back to the last good commit when a deploy fails'),
      token: z
        .string()
        .optional()
        .describe('Access token for this repository (HTTP Basic/Bearer); overrides project `tokens`'),
      webhook_secret: z.string().optional().describe('Secret for webhook signatures; overrides SHIPARR_WEBHOOK_SECRET'),
      enabled: z.boolean().default(true).describe('false: the repository is not watched at all'),
      suspended: z.boolean().default(false).describe('Start suspended (no polling or deploys until resumed)'),
      ...engineKeys,
      shallow: z.boolean().default(true).describe('Shallow clone (depth 1)'),
      timeouts: TimeoutsSchema.default({ git: 120, apply: 600, decrypt: 60, notify: 10 }),
      mode: z
        .enum(['compose', 'swarm'])
        .default('compose')
        .describe('`compose`: docker compose up; `swarm`: docker stack deploy on a Swarm manager (`docker_host`)'),
      commit_status: CommitStatusSchema.optional(),
      image_updates: z
        .enum(['off', 'notify', 'auto'])
        .default('off')
        .describe('Image watch: `notify` when a deployed tag moves in its registry, `auto` also redeploys (pulls it)'),
      image_check_interval: seconds(21600, 'Seconds between image checks (±10 % jitter); registry HEAD requests only'),
      image_policy: z
        .record(z.string(), ImagePolicySchema)
        .default({})
        .describe('Per service: newer tags that count as updates (semver range and/or tag regex)'),
      write_back: z
        .boolean()
        .default(false)
        .describe(
          'With `image_updates: auto` and `image_policy`: commit the newer tag to the repository (accepted; not acted on yet)',
        ),
    })
    .describe('One watched git repository');

  const ProjectFileSchema = z
    .strictObject({
      project: z
        .string({ error: 'is required' })
        .regex(NAME, nameMessage)
        .describe('Project name (unique across files)'),
      description: z.string().optional(),
      tokens: z
        .record(z.string(), z.string())
        .default({})
        .describe('Tokens by git host: `github`, `gitlab`, `gitea`/`codeberg` or a full host name'),
      repositories: z
        .record(z.string().regex(NAME, `repository name ${nameMessage}`), RepositorySchema)
        .refine((r) => Object.keys(r).length > 0, 'must list at least one repository')
        .describe('Repositories by name'),
      global_notifications: NotificationsSchema.default({ success: [], failure: [] }).describe(
        'URLs notified for every repository',
      ),
      notify_repeat_interval: seconds(3600, 'Identical failures are re-sent at most once per this many seconds'),
      // Project-wide default engine: used by every repository that sets neither docker_host nor docker_context.
      ...engineKeys,
      registries: z
        .record(
          z
            .string()
            .regex(/^[A-Za-z0-9.-]+(?::[0-9]+)?$|^\[[A-Fa-f0-9:]+\](?::[0-9]+)?$/, 'must be a registry host[:port]'),
          z
            .strictObject({
              username: z.string({ error: 'is required' }).min(1, 'must not be empty'),
              password: z.string({ error: 'is required' }).min(1, 'must not be empty'),
              insecure: z.boolean().optional().describe('Plain http to this registry (default: loopback hosts only)'),
            })
            .describe('Credentials for one registry (`${VAR}` references keep them out of git)'),
        )
        .optional()
        .describe('Image registry credentials by host[:port] (`docker.io` for Docker Hub): image checks and pulls'),
    })
    .describe('A Shiparr project file');

  return { RepositorySchema, ProjectFileSchema };
}

const built = new WeakMap<NotificationUrlCheck, ReturnType<typeof buildSchemas>>();
/** The project-file schemas with `checkUrl` validating every notification URL (built once per check). */
export function projectSchemas(
  checkUrl: NotificationUrlCheck = basicNotificationUrlCheck,
): ReturnType<typeof buildSchemas> {
  let schemas = built.get(checkUrl);
  if (!schemas) built.set(checkUrl, (schemas = buildSchemas(checkUrl)));
  return schemas;
}

/** The schemas with the basic URL check (their shape is the same whatever the check: JSON Schema, key hints). */
export const { RepositorySchema, ProjectFileSchema } = projectSchemas();

export type ProjectFile = z.infer<typeof ProjectFileSchema>;
export type RepositoryFile = z.infer<typeof RepositorySchema>;

/** Everything an actor needs about one repository, fully resolved (absolute paths, normalised URL). Clone-safe. */
export interface RepoConfig {
  /** `<project>/<repo>`: stable identity across reloads. */
  key: string;
  project: string;
  name: string;
  /** Normalised clone URL (https:// added), never containing credentials. */
  url: string;
  branch: string;
  /** Absolute checkout directory. */
  localPath: string;
  /** Sub-directory (relative to localPath) holding the compose files; '.' for the root. */
  path: string;
  checkInterval: number;
  composeFiles: string[];
  composeProject: string;
  pull: 'always' | 'missing' | 'never';
  build: boolean;
  removeOrphans: boolean;
  healthcheck: { timeout: number; url?: string; retries: number; interval: number };
  rollback: boolean;
  /** SOPS files to decrypt: `env_file` first, then `decrypt` entries. Paths relative to `path`. */
  decrypt: { file: string; format?: 'dotenv' | 'yaml' | 'json' | 'binary'; output?: string }[];
  keepDecrypted: boolean;
  /** Resolved token (repo `token`, project `tokens` by host, GITHUB_TOKEN for github.com). Secret. */
  token?: string;
  webhookSecret?: string;
  enabled: boolean;
  suspended: boolean;
  dockerHost?: string;
  /**
   * The Docker engine (repository keys, else the project's defaults; absolute file paths). Absent: the process's own
   * engine (DOCKER_HOST or the local socket).
   */
  engine?: RepoEngine;
  shallow: boolean;
  timeouts: { git: number; apply: number; decrypt: number; notify: number };
  notifications: { success: string[]; failure: string[] };
  /** The project's `global_notifications` (sent in addition; URLs are de-duplicated when sending). */
  globalNotifications: { success: string[]; failure: string[] };
  notifyRepeatInterval: number;
  /** Hash of the deploy-relevant config: a change redeploys even without a new commit. */
  configHash: string;
  /** `swarm`: deployed as a Docker Swarm stack (`docker stack deploy`); absent means `compose`. */
  mode?: 'swarm';
  /** Where deploy results go back to the forge as commit statuses (`commit_status`); absent: nowhere. */
  commitStatus?: RepoCommitStatus;
  /** The image watch (`image_updates` notify or auto); absent means off. Not part of `configHash`. */
  imageWatch?: ImageWatchConfig;
  /**
   * Registry credentials by host[:port] (`docker.io` for Docker Hub): the project file's `registries`, plus the
   * SHIPARR_DOCKER_CONFIG auths for hosts it does not list. Secret (username and password are masked).
   */
  registries?: Record<string, RegistryCredentials>;
}

/** A repository's `commit_status`, resolved. Clone-safe. */
export interface RepoCommitStatus {
  provider: 'github' | 'gitea' | 'gitlab';
  /** API root without a trailing slash, e.g. `https://api.github.com`, `https://gitea.example/api/v1`. */
  apiUrl: string;
  /** The repository on the forge: `owner/repo` (GitHub, Gitea) or `group/sub/project` (GitLab). */
  repoPath: string;
  /** Secret: the status token, else the repository token. */
  token: string;
  /** The status context (GitLab: `name`). */
  context: string;
}

/** A repository's image watch, resolved. Clone-safe. */
export interface ImageWatchConfig {
  /** `notify`: one notification per new digest; `auto`: also a deploy of the deployed commit pulling the service. */
  mode: 'notify' | 'auto';
  /** Seconds between checks (jittered ±10 %). */
  interval: number;
  /** Tag policies by service name (see `image_policy`). */
  policy: Record<string, { semver?: string; tagRegex?: string }>;
  /** Commit a newer tag back to the repository (auto + policy only). */
  writeBack: boolean;
}

/** Credentials for one image registry. Secret. */
export interface RegistryCredentials {
  username: string;
  password: string;
  insecure?: boolean;
}

/** A repository's Docker engine, resolved: absolute TLS/ssh file paths. Clone-safe. */
export interface RepoEngine {
  host?: string;
  tls?: { ca?: string; cert?: string; key?: string; verify: boolean };
  ssh?: { key?: string; knownHosts?: string };
  context?: string;
}

/** A loaded project: the file it came from, its metadata, and its resolved repositories. */
export interface ProjectConfig {
  name: string;
  description?: string;
  file: string;
  repositories: RepoConfig[];
}
