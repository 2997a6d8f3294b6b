/** @module Shared fixtures for the store tests: temp database files, a manual clock, sample config. */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Store, type SyncProjectInput, type SyncRepositoryInput } from '../../../src/store/index.ts';

/** A fresh temp directory with a database path inside a not-yet-existing sub-directory. */
export function tempDb(): { dir: string; file: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'shiparr-store-'));
  return {
    dir,
    file: path.join(dir, 'data', 'shiparr.db'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A clock the test moves by hand, so durations are exact without timing anything. */
export function manualClock(start = '2025-01-01T00:00:00.000Z'): { now: () => Date; advance: (ms: number) => void } {
  let t = Date.parse(start);
  return { now: () => new Date(t), advance: (ms) => void (t += ms) };
}

export function repo(project: string, name: string, over: Partial<SyncRepositoryInput> = {}): SyncRepositoryInput {
  return {
    key: `${project}/${name}`,
    name,
    url: `https://git.example.test/${name}.git`,
    branch: 'main',
    path: '.',
    localPath: `/data/deployments/${project}/${name}`,
    checkInterval: 300,
    ...over,
  };
}

export function project(name: string, repoNames: string[], over: Partial<SyncProjectInput> = {}): SyncProjectInput {
  return {
    name,
    description: `${name} services`,
    file: `/config/projects/${name}.yaml`,
    repositories: repoNames.map((r) => repo(name, r)),
    ...over,
  };
}

/** A store on a temp file with a manual clock, synced to `projects`, closed and removed after the test. */
export function openStore(
  t: { after: (fn: () => void) => void },
  projects: SyncProjectInput[],
): { store: Store; clock: ReturnType<typeof manualClock>; file: string } {
  const tmp = tempDb();
  const clock = manualClock();
  const store = Store.open(tmp.file, { now: clock.now });
  t.after(() => {
    store.close();
    tmp.cleanup();
  });
  store.syncConfig(projects);
  return { store, clock, file: tmp.file };
}
