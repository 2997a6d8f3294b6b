/**
 * @module Worker task: `docker stack deploy` of one repository (mode `swarm`), see compose/swarm.ts. Expected failures
 * come back as `{ ok:false }` results. The values of the deploy's decrypted files are read here and masked in the
 * captured output before it leaves the worker. After a deploy, the stack's configs and secrets that no current or
 * previous service spec uses are removed (content-hashed names would otherwise pile up), through the same engine as
 * the deploy: its API client is built from the task's engine environment (TLS, ssh, contexts) or DOCKER_HOST.
 */
import { deployStack, pruneStackObjects, type StackDeployInput } from '../../compose/swarm.ts';
import type { ComposeOutput } from '../../compose/cli.ts';
import { createDocker } from '../../compose/verify.ts';
import { engineSettingsFromEnv, prepareEngine } from '../../compose/engine.ts';
import { valueMasker } from '../../lib/redact.ts';
import type { TaskResult } from '../../lib/task-result.ts';
import { secretValuesOfFiles } from '../../secrets/values.ts';
import { badComposeFile } from './compose-up.ts';

/** Deploys the stack: `compose config` → rewritten stack file → `docker stack deploy -c - <stack>`. */
export default async function stackDeploy(input: StackDeployInput): Promise<TaskResult<ComposeOutput>> {
  const started = performance.now();
  const elapsed = (): number => Math.round(performance.now() - started);
  const bad = await badComposeFile(input);
  if (bad) return { ok: false, code: 'COMPOSE_BAD_PATH', message: bad, transient: false, durationMs: elapsed() };
  const mask = input.secretFiles?.length ? valueMasker(await secretValuesOfFiles(input.secretFiles)) : undefined;
  const r = await deployStack(input, mask);
  if (!r.ok) return { ...r, durationMs: elapsed() };
  let output = r.output;
  try {
    const settings = input.engineEnv ? engineSettingsFromEnv(input.engineEnv) : undefined;
    const docker = settings ? createDocker(prepareEngine(settings)) : createDocker(input.dockerHost);
    const removed = await pruneStackObjects(docker, input.project);
    if (removed.length) output += `\nremoved unused configs/secrets: ${removed.join(', ')}`;
  } catch {
    // Leftover objects cost nothing but a name; the next deploy tries again.
  }
  return { ok: true, durationMs: elapsed(), output };
}
