/**
 * @module Task contracts between the main thread and the Piscina workers. Type-only and clone-safe:
 * inputs and outputs are plain data (structured clone). Expected failures are results, never throws.
 */

/** A task's outcome. `ok:false` is an expected failure (bad compose file, network down, wrong key…). */
export type TaskResult<T> =
  | ({ ok: true; durationMs: number } & T)
  | {
      ok: false;
      durationMs: number;
      /** Stable machine code, e.g. GIT_UNREACHABLE, COMPOSE_UP_FAILED, SOPS_MAC_MISMATCH. */
      code: string;
      /** One-line human reason, free of secrets. */
      message: string;
      /** Network/engine problems worth retrying with backoff. */
      transient: boolean;
      /** Captured, capped tool output (compose stderr…), free of secrets. */
      output?: string;
    };

export interface GitAuth {
  /** Token sent as HTTP Basic credentials (x-access-token:<token>) in an Authorization header; never in URLs. */
  token?: string;
}

export interface GitCheckInput extends GitAuth {
  url: string;
  branch: string;
  timeoutMs: number;
}
export interface GitCheckOutput {
  /** Head commit of the branch on the remote. */
  commit: string;
}

export interface GitSyncInput extends GitAuth {
  url: string;
  branch: string;
  /** Exact commit to check out (forced); when omitted, the fetched branch head. */
  commit?: string;
  /** Absolute checkout directory. */
  dir: string;
  shallow: boolean;
  timeoutMs: number;
}
export interface GitSyncOutput {
  commit: string;
  /** true when the directory was (re)cloned (first use, or corrupted / not a git checkout). */
  cloned: boolean;
}

export interface DecryptInput {
  /** Absolute directory the `file`/`output` paths are relative to (the repo's compose directory). */
  baseDir: string;
  files: { file: string; format?: 'dotenv' | 'yaml' | 'json' | 'binary'; output?: string }[];
  ageKeyFile?: string;
  ageKey?: string;
  timeoutMs: number;
}
export interface DecryptOutput {
  /** Absolute paths of written plaintext files (mode 0600). */
  written: string[];
}

export interface ComposeInput {
  /** Absolute working directory (the repo's compose directory). */
  cwd: string;
  project: string;
  /** Compose files relative to cwd; empty = compose's own default lookup. */
  files: string[];
  dockerHost?: string;
  timeoutMs: number;
}
export interface ComposeUpInput extends ComposeInput {
  pull: 'always' | 'missing' | 'never';
  build: boolean;
  removeOrphans: boolean;
}
export interface ComposeOutput {
  /** Combined stdout+stderr, capped. */
  output: string;
}
export interface ComposePsOutput extends ComposeOutput {
  containers: { id: string; name: string; service: string; state: string; health: string; exitCode: number }[];
}

/** Task name → input/output. Task names equal the worker file names in src/workers/tasks/. */
export interface TaskMap {
  'git-check': { input: GitCheckInput; output: TaskResult<GitCheckOutput> };
  'git-sync': { input: GitSyncInput; output: TaskResult<GitSyncOutput> };
  'sops-decrypt': { input: DecryptInput; output: TaskResult<DecryptOutput> };
  'compose-up': { input: ComposeUpInput; output: TaskResult<ComposeOutput> };
  'compose-down': { input: ComposeInput; output: TaskResult<ComposeOutput> };
  'compose-ps': { input: ComposeInput; output: TaskResult<ComposePsOutput> };
}
export type TaskName = keyof TaskMap;
export type TaskInput<K extends TaskName> = TaskMap[K]['input'];
export type TaskOutput<K extends TaskName> = TaskMap[K]['output'];

/** Runs a task in the pool. Never rejects for expected failures; rejects on abort or a worker crash. */
export type RunTask = <K extends TaskName>(name: K, input: TaskInput<K>, signal?: AbortSignal) => Promise<TaskOutput<K>>;
