/**
 * @module Boot wiring of self-updates: the actors' `selfApply`, which runs compose for Shiparr's own project in a
 * helper container (compose/self-update-helper.ts) with the same arguments a normal apply uses.
 */
import path from 'node:path';
import type { RepoConfig } from '../config/schema.ts';
import { detectCompose, upArgs, type ComposeCommand, type ComposeOutput } from '../compose/cli.ts';
import { runSelfUpdateHelper, type HelperSelf } from '../compose/self-update-helper.ts';
import type { TaskResult } from '../lib/task-result.ts';

/** The actors' `selfApply` for our own container, or undefined when no helper can be started (image unknown). */
export function selfApplier(
  self: HelperSelf | null,
  dataPath: string,
): ((repo: RepoConfig, deploymentId: number, signal: AbortSignal) => Promise<TaskResult<ComposeOutput>>) | undefined {
  if (!self?.image) return undefined;
  return async (repo, deploymentId, signal) => {
    // The helper runs our own image, so it has the compose we have.
    const fallback: ComposeCommand = { file: 'docker', baseArgs: ['compose'], version: 2, versionText: 'unknown' };
    const cmd = (await detectCompose({ timeoutMs: 15_000 })) ?? fallback;
    return runSelfUpdateHelper({
      self,
      deploymentId,
      dataPath,
      cwd: path.resolve(repo.localPath, repo.path),
      compose: [
        cmd.file,
        ...upArgs(cmd, {
          project: repo.composeProject,
          files: repo.composeFiles,
          pull: repo.pull,
          build: repo.build,
          removeOrphans: repo.removeOrphans,
        }),
      ],
      dockerHost: repo.dockerHost,
      timeoutMs: repo.timeouts.apply * 1000,
      signal,
    });
  };
}
