/**
 * @module The secret sweep: proof that no test secret reaches a log, the database or an API answer. When the suite
 * runs with `SHIPARR_TEST_SWEEP_DIR` set (scripts/test.sh sets it for a whole-suite run), the test daemons write
 * their logs at debug level into that directory, and before each one is closed its database rows and its API
 * answers are saved there too. Tests register the values they treat as secret (passwords, tokens, webhook secrets,
 * age keys, decrypted values); daemons started by the helpers register theirs automatically.
 * `scripts/secret-sweep.ts` then searches every saved artifact for every registered value and fails on a hit.
 *
 * Without the variable every function here is a no-op, so a single test file runs as before.
 */
import { randomUUID } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';

/** Environment names whose values are secrets (the same words the settings loader keeps out of its messages). */
const SECRET_NAME = /PASSWORD|SECRET|TOKEN|SOPS_AGE_KEY$/;
/** Values shorter than this are not searched: "1", "true" or a port would match everywhere. */
const MIN_LENGTH = 8;

/** The sweep directory, or undefined when the sweep is off. */
export function sweepDir(): string | undefined {
  const dir = process.env.SHIPARR_TEST_SWEEP_DIR;
  if (!dir) return undefined;
  mkdirSync(path.join(dir, 'artifacts'), { recursive: true });
  return dir;
}

/** Registers values that must never appear in any artifact (ignored when the sweep is off or a value is short). */
export function registerTestSecrets(label: string, values: Iterable<string | undefined>): void {
  const dir = sweepDir();
  if (!dir) return;
  const lines: string[] = [];
  for (const v of values) {
    if (typeof v !== 'string') continue;
    for (const part of splitSecret(v)) lines.push(JSON.stringify({ label, value: part }));
  }
  if (lines.length > 0) appendFileSync(path.join(dir, 'secrets.jsonl'), `${lines.join('\n')}\n`);
}

/**
 * The searchable pieces of one secret: the value itself, and for lists (`name:token,name:token`) and key files (age
 * identities among comment lines) each piece on its own.
 */
function splitSecret(value: string): string[] {
  const out = new Set<string>();
  const trimmed = value.trim();
  if (trimmed.length >= MIN_LENGTH && !trimmed.includes('\n') && !trimmed.includes(',')) out.add(trimmed);
  for (const line of trimmed.split(/\r?\n/)) {
    const l = line.trim();
    if (l === '' || l.startsWith('#')) continue;
    for (const item of l.split(',')) {
      const token = item.trim();
      // `name:token` lists keep the token, the name is not secret.
      const colon = token.indexOf(':');
      const bare = colon > 0 && !token.includes('://') ? token.slice(colon + 1) : token;
      if (bare.length >= MIN_LENGTH) out.add(bare);
    }
  }
  return [...out];
}

/** Registers the secret-looking variables of a daemon environment and the content of its age key file. */
export function registerEnvSecrets(label: string, env: Record<string, string | undefined>): void {
  if (!sweepDir()) return;
  const values: (string | undefined)[] = [];
  for (const [name, value] of Object.entries(env)) if (SECRET_NAME.test(name)) values.push(value);
  const keyFile = env.SOPS_AGE_KEY_FILE;
  if (keyFile) {
    try {
      values.push(readFileSync(keyFile, 'utf8'));
    } catch {
      // A test may point at a missing key file on purpose.
    }
  }
  registerTestSecrets(label, values);
}

/** A new file path in the artifacts folder, or undefined when the sweep is off. */
export function artifactPath(name: string): string | undefined {
  const dir = sweepDir();
  if (!dir) return undefined;
  return path.join(dir, 'artifacts', `${name.replace(/[^a-zA-Z0-9_.-]/g, '_')}-${randomUUID().slice(0, 8)}`);
}

/** Saves text captured by a test (child process output, an HTTP answer). */
export function saveArtifact(name: string, text: string): void {
  const file = artifactPath(name);
  if (file) writeFileSync(file, text);
}

/** Saves every row of every table of a Shiparr database (read-only; a missing file is skipped). */
export function saveDatabase(name: string, dbFile: string): void {
  const file = artifactPath(`${name}.db.jsonl`);
  if (!file) return;
  let db: Database.Database;
  try {
    db = new Database(dbFile, { readonly: true, fileMustExist: true });
  } catch {
    return;
  }
  try {
    const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as { name: string }[];
    const lines: string[] = [];
    for (const { name: table } of tables) {
      for (const row of db.prepare(`SELECT * FROM "${table.replace(/"/g, '""')}"`).iterate()) {
        lines.push(JSON.stringify({ table, row }));
      }
    }
    writeFileSync(file, `${lines.join('\n')}\n`);
  } finally {
    db.close();
  }
}

/**
 * Saves the answers of the read API of a running daemon: the lists, every repository's deployments with each
 * deployment and its log, health, metrics and the widgets. Failures are saved as text too (they are output as well).
 */
export async function saveApiAnswers(name: string, baseUrl: string, headers: Record<string, string>): Promise<void> {
  if (!sweepDir()) return;
  const out: string[] = [];
  const get = async (p: string): Promise<string> => {
    try {
      const res = await fetch(new URL(p, baseUrl), { headers, signal: AbortSignal.timeout(10_000) });
      const text = await res.text();
      out.push(`GET ${p} ${res.status}\n${text}`);
      return res.ok ? text : '';
    } catch (err) {
      out.push(`GET ${p} failed: ${(err as Error).message}`);
      return '';
    }
  };
  for (const p of ['/api/health', '/api/projects', '/metrics', '/widget/dashy', '/widget/dashy/custom-list', '/']) {
    await get(p);
  }
  const repos = parse<{ id: number }[]>(await get('/api/repositories')) ?? [];
  for (const repo of repos) {
    await get(`/api/repositories/${repo.id}`);
    const page = parse<{ items: { id: number }[] }>(await get(`/api/repositories/${repo.id}/deployments?limit=100`));
    for (const d of page?.items ?? []) {
      await get(`/api/deployments/${d.id}`);
      await get(`/api/deployments/${d.id}/logs`);
    }
  }
  saveArtifact(`${name}.api`, out.join('\n\n'));
}

function parse<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}

/** Credentials the sweep uses to read a daemon's API, from the environment the daemon was started with. */
export function sweepAuthHeaders(env: Record<string, string | undefined>): Record<string, string> {
  const token = env.SHIPARR_API_TOKENS?.split(',')[0]?.trim();
  if (token) {
    const colon = token.indexOf(':');
    return { authorization: `Bearer ${colon > 0 ? token.slice(colon + 1) : token}` };
  }
  const basic =
    env.SHIPARR_AUTH_MODE === 'basic' || ['true', '1', 'yes', 'on'].includes(env.SHIPARR_AUTH_ENABLED ?? '');
  if (basic && env.SHIPARR_AUTH_PASSWORD) {
    const user = env.SHIPARR_AUTH_USERNAME ?? 'admin';
    return { authorization: `Basic ${Buffer.from(`${user}:${env.SHIPARR_AUTH_PASSWORD}`).toString('base64')}` };
  }
  return {};
}

/** Registers the secret fields of a project file written by a test (tokens, webhook secrets, passwords). */
export function registerYamlSecrets(label: string, yaml: string): void {
  if (!sweepDir()) return;
  const values: string[] = [];
  for (const m of yaml.matchAll(/^\s*(?:webhook_secret|token|password|secret)\s*:\s*["']?([^"'\s#]+)/gim)) {
    // `${VAR}` references are names, not values.
    if (m[1] && !m[1].startsWith('${')) values.push(m[1]);
  }
  registerTestSecrets(label, values);
}

/** Runs `fn` with SHIPARR_TEST_SWEEP_DIR pointing at a fresh folder (the sweep tests' own), restored and removed after. */
export async function withSweepDir(fn: (dir: string) => void): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'shiparr-sweep-test-'));
  const before = process.env.SHIPARR_TEST_SWEEP_DIR;
  process.env.SHIPARR_TEST_SWEEP_DIR = dir;
  try {
    fn(dir);
  } finally {
    if (before === undefined) delete process.env.SHIPARR_TEST_SWEEP_DIR;
    else process.env.SHIPARR_TEST_SWEEP_DIR = before;
    await rm(dir, { recursive: true, force: true });
  }
}
