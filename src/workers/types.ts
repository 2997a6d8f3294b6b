/**
 * @module Task contracts between the main thread and the Piscina workers. Type-only and clone-safe:
 * inputs and outputs are plain data (structured clone). Expected failures are results, never throws. The input and
 * output types belong to the modules that do the work (git/, compose/); this file only maps task names to them.
 */
import type { ComposeOutput, ComposeUpInput } from '../compose/cli.ts';
import type { StackDeployInput } from '../compose/swarm.ts';
import type { RemoteHeadOptions } from '../git/check.ts';
import type { SyncOptions, SyncResult } from '../git/sync.ts';
import type { PlaintextFile } from '../domain/types.ts';
import type { TaskResult } from '../lib/task-result.ts';
import type { PlanTaskInput, PlanTaskOutput } from './tasks/plan.ts';

interface GitCheckOutput {
  /** Head commit of the branch on the remote. */
  commit: string;
}

export interface DecryptInput {
  /** Absolute directory the `file`/`output` paths are relative to (the repo's compose directory). */
  baseDir: string;
  /**
   * Absolute checkout root (default `baseDir`): inputs and outputs must stay inside it, compared by real paths; a
   * symlinked input or an existing symlink at an output is refused.
   */
  rootDir?: string;
  files: { file: string; format?: 'dotenv' | 'yaml' | 'json' | 'binary'; output?: string }[];
  ageKeyFile?: string;
  ageKey?: string;
  timeoutMs: number;
  /**
   * Plaintext files Shiparr wrote earlier (see plaintext.ts): an output path that already holds one of them is
   * overwritten; any other existing file there fails the task (SOPS_OUTPUT_EXISTS) and is left untouched.
   */
  owned?: PlaintextFile[];
  /**
   * Absolute private directory (created 0700): a dotenv file without an `output` is written there as `.env`
   * instead of beside the compose file, out of any build context (used with `build: true`).
   */
  envFileDir?: string;
}
export interface DecryptOutput {
  /** Absolute paths of written plaintext files (mode 0600). */
  written: string[];
  /** The identity of each written file, recorded on the deployment before compose runs. */
  files?: PlaintextFile[];
  /** The `.env` written into `envFileDir`, for compose's `--env-file`. */
  envFile?: string;
}

/** Task name → input/output. Task names equal the worker file names in src/workers/tasks/. */
interface TaskMap {
  'git-check': { input: RemoteHeadOptions; output: TaskResult<GitCheckOutput> };
  /** `subject`: the first line of the checked-out commit's message (null when unreadable). */
  'git-sync': { input: SyncOptions; output: TaskResult<SyncResult & { subject?: string | null }> };
  'sops-decrypt': { input: DecryptInput; output: TaskResult<DecryptOutput> };
  'compose-up': { input: ComposeUpInput; output: TaskResult<ComposeOutput> };
  'stack-deploy': { input: StackDeployInput; output: TaskResult<ComposeOutput> };
  plan: { input: PlanTaskInput; output: PlanTaskOutput };
}
export type TaskName = keyof TaskMap;
type TaskInput<K extends TaskName> = TaskMap[K]['input'];
export type TaskOutput<K extends TaskName> = TaskMap[K]['output'];

/** Options of one task run: `onLines` receives live output batches (compose-up only; see ComposeUpInput.progress). */
export interface RunTaskOptions {
  onLines?: (lines: string[]) => void;
}

/** Runs a task in the pool. Never rejects for expected failures; rejects on abort or a worker crash. */
export type RunTask = <K extends TaskName>(
  name: K,
  input: TaskInput<K>,
  signal?: AbortSignal,
  opts?: RunTaskOptions,
) => Promise<TaskOutput<K>>;
