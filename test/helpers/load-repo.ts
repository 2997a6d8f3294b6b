/**
 * @module Loads one repository's keys through the real project-file loader: `repoLoader(prefix)` (called at a test
 * file's top level) gives `load(yaml)`, which writes `project: p` with repository `app` (github.com/u/app.git) plus
 * the given indented keys into a fresh directory and loads it; the directories are removed after the file's tests.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { loadProjects } from '../../src/config/load.ts';

export function repoLoader(tmpPrefix: string) {
  const roots: string[] = [];
  after(() => Promise.all(roots.map((r) => fs.rm(r, { recursive: true, force: true }))));
  return async function load(repo: string) {
    const base = await fs.mkdtemp(path.join(os.tmpdir(), tmpPrefix));
    roots.push(base);
    const dir = path.join(base, 'projects');
    await fs.mkdir(dir);
    const file = path.join(dir, 'p.yaml');
    await fs.writeFile(file, `project: p\nrepositories:\n  app:\n    url: github.com/u/app.git\n${repo}`);
    const r = await loadProjects(dir, { env: {}, dataPath: path.join(base, 'data') });
    return { ...r, file, repo: r.projects[0]?.repositories[0] };
  };
}
