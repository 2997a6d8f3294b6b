/**
 * @module Shared pieces of the resilience suite: temp dirs, compose wrapper scripts, project YAML, read-only DB access
 * and a tiny HTTP sink that counts notification requests.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { TestContext } from 'node:test';
import { FAKE_COMPOSE } from '../helpers/fake-compose/index.ts';

export interface Dirs {
  root: string;
  configDir: string;
  dataDir: string;
}

/** Fresh config/data dirs under the OS temp dir, removed after the test (or suite). */
export async function tempDirs(t: { after(fn: () => unknown): void }, prefix: string): Promise<Dirs> {
  const root = await mkdtemp(path.join(os.tmpdir(), `shiparr-${prefix}-`));
  const configDir = path.join(root, 'config');
  const dataDir = path.join(root, 'data');
  await mkdir(configDir, { recursive: true });
  await mkdir(dataDir, { recursive: true });
  t.after(() => rm(root, { recursive: true, force: true }));
  return { root, configDir, dataDir };
}

/**
 * A compose command that sleeps `delaySeconds` before `up` (so a test can act while a deploy is `applying`), logs its
 * argv and pid (`wrapper-pids`), and then runs the real `docker compose`. When `<dir>/mode` contains `hang`, it execs the fake compose in hang
 * mode instead (FAKE_COMPOSE_PIDS goes to `<dir>/pids`).
 */
export async function composeWrapper(
  dir: string,
  delaySeconds = 0,
): Promise<{ command: string; log: string; modeFile: string; pidsFile: string; wrapperPids: string }> {
  const command = path.join(dir, 'compose-wrapper');
  const wrapperPids = path.join(dir, 'wrapper-pids');
  const log = path.join(dir, 'compose-argv.log');
  const modeFile = path.join(dir, 'mode');
  const pidsFile = path.join(dir, 'pids');
  await writeFile(
    command,
    [
      '#!/bin/sh',
      `echo "$*" >> '${log}'`,
      // Each invocation leads its own process group (Shiparr spawns it detached): tests can kill it by id.
      `echo $$ >> '${wrapperPids}'`,
      `if [ "$(cat '${modeFile}' 2>/dev/null)" = hang ]; then FAKE_COMPOSE_MODE=hang FAKE_COMPOSE_PIDS='${pidsFile}' exec '${FAKE_COMPOSE}' "$@"; fi`,
      `case " $* " in *" up "*) sleep ${delaySeconds} ;; esac`,
      'exec docker compose "$@"',
      '',
    ].join('\n'),
  );
  await chmod(command, 0o755);
  return { command, log, modeFile, pidsFile, wrapperPids };
}

/** One repository entry of a project file. */
export interface RepoYaml {
  url: string;
  branch?: string;
  composeProject?: string;
  checkInterval?: number;
  extra?: string[];
}

/** A project file with the given repositories (YAML text). */
export function projectYaml(project: string, repos: Record<string, RepoYaml>, top: string[] = []): string {
  const lines = [`project: ${project}`, ...top, 'repositories:'];
  for (const [name, r] of Object.entries(repos)) {
    lines.push(
      `  ${name}:`,
      `    url: ${r.url}`,
      `    branch: ${r.branch ?? 'main'}`,
      `    check_interval: ${r.checkInterval ?? 1}`,
      '    pull: never',
    );
    if (r.composeProject) lines.push(`    compose_project: ${r.composeProject}`);
    for (const e of r.extra ?? []) lines.push(`    ${e}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Opens the daemon's database read-only (only after the daemon exited, or for WAL-safe reads while it runs). */
export function openDb(dataDir: string): Database.Database {
  return new Database(path.join(dataDir, 'shiparr.db'), { readonly: true, fileMustExist: true });
}

export interface DeploymentRow {
  id: number;
  status: string;
  stage: string | null;
  commit_hash: string | null;
  trigger: string;
  error: string | null;
}

/** Deployment rows of one repository key, oldest first, read through a short-lived read-only connection. */
export function deploymentRows(dataDir: string, repoKey: string): DeploymentRow[] {
  const db = openDb(dataDir);
  try {
    return db
      .prepare(
        `SELECT d.id, d.status, d.stage, d.commit_hash, d.trigger, d.error FROM deployments d
         JOIN repositories r ON r.id = d.repository_id WHERE r.key = ? ORDER BY d.id`,
      )
      .all(repoKey) as DeploymentRow[];
  } finally {
    db.close();
  }
}

export interface HookSink {
  /** `generic+http://127.0.0.1:PORT/hook` plus query. */
  url: string;
  /** Bodies received (parsed JSON when possible). */
  received: { path: string; body: string }[];
  close(): Promise<void>;
}

/** A real HTTP server on 127.0.0.1 that records every POST (a generic webhook notification target). */
export async function startHookSink(t: TestContext | { after(fn: () => unknown): void }): Promise<HookSink> {
  const received: { path: string; body: string }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  const sink: HookSink = {
    url: `generic+http://127.0.0.1:${port}/hook`,
    received,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
  t.after(() => sink.close());
  return sink;
}
