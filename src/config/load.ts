/**
 * @module Project-file loader: reads every `*.yaml`/`*.yml` of the config directory, parses it (YAML syntax errors with
 * line:column), resolves `${VAR}` references, validates with the zod schema (issues translated into human sentences),
 * resolves each project and rejects cross-project conflicts. One bad file never stops the others from loading.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { z } from 'zod';
import type { ConfigIssue } from '../domain/types.ts';
import { interpolateTree } from './env.ts';
import type { ValuePath } from './env.ts';
import {
  RepoConflictIndex,
  findRepoConflicts,
  findRepoConflictsSliced,
  formatKeyPath,
  resolveProject,
  timeSlicer,
} from './resolve.ts';
import { ProjectFileSchema, projectSchemas } from './schema.ts';
import { parseYamlTextAsync } from './yaml-text.ts';
import type { NotificationUrlCheck, ProjectConfig, ProjectFile, RegistryCredentials } from './schema.ts';

/** What the loader needs from the host. */
export interface LoadContext {
  /** Source of `${VAR}` values. */
  env: NodeJS.ProcessEnv;
  /** SHIPARR_DATA_PATH (made absolute here). */
  dataPath: string;
  /** GITHUB_TOKEN, used for github.com repositories without a configured token. */
  githubToken?: string;
  /** Registry credentials from SHIPARR_DOCKER_CONFIG, for hosts a project file's `registries` does not list. */
  registryAuths?: Record<string, RegistryCredentials>;
  /** The config directory; defaults to the directory being loaded (or the file's directory). */
  configDir?: string;
  /**
   * Validates each notification URL (null = fine, else the problem). Default: a scheme is required, nothing more;
   * the daemon and `shiparr validate` pass notify's `validateNotificationUrl`.
   */
  checkNotificationUrl?: NotificationUrlCheck;
}

/** One project file's outcome. `project` is the declared name even when the file is invalid (when it could be read). */
interface LoadedFile {
  file: string;
  project?: string;
  ok: boolean;
}

export interface LoadResult {
  projects: ProjectConfig[];
  errors: ConfigIssue[];
  /** Non-fatal remarks (e.g. a very short check_interval). */
  warnings: ConfigIssue[];
  files: LoadedFile[];
}

/** The outcome of loading a single file, before cross-file checks. */
export interface FileLoadResult {
  file: string;
  /** The `project` value when the file declares a usable one, even if other keys are invalid. */
  projectName?: string;
  /** Present only when `errors` is empty. */
  project?: ProjectConfig;
  errors: ConfigIssue[];
  warnings: ConfigIssue[];
}

/** Project files larger than this are refused: real ones are a few KiB, and YAML parsing is not free. */
const MAX_PROJECT_FILE_BYTES = 1024 * 1024;

/**
 * Whether a directory entry is a project file: `*.yaml`/`*.yml`, not hidden (`.foo.yaml`, emacs `.#foo.yaml`,
 * Kubernetes ConfigMap `..data`), not an editor backup (`foo.yaml~`, `foo.yaml.swp` never match the extension anyway).
 */
export function isProjectFileName(name: string): boolean {
  return !name.startsWith('.') && !name.endsWith('~') && /\.ya?ml$/i.test(name);
}

/** Project files of `dir`, non-recursive, sorted by code point (locale-independent), symlinks to files included. */
async function listProjectFiles(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true });
  const names = entries
    .filter((e) => isProjectFileName(e.name) && (e.isFile() || e.isSymbolicLink()))
    .map((e) => e.name);
  names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const files: string[] = [];
  for (const name of names) {
    const full = path.join(dir, name);
    // A dangling symlink or a symlink to a directory is skipped rather than reported as a broken project.
    const st = await fs.stat(full).catch(() => null);
    if (st?.isFile()) files.push(full);
  }
  return files;
}

/**
 * Loads every project file of `dir`. Files are processed in name order, so on a duplicate project name or compose
 * project the later file is the one rejected. A missing/unreadable directory is reported as an error, not thrown.
 */
export async function loadProjects(dir: string, ctx: LoadContext): Promise<LoadResult> {
  const result: LoadResult = { projects: [], errors: [], warnings: [], files: [] };
  let files: string[];
  try {
    files = await listProjectFiles(dir);
  } catch (err) {
    result.errors.push({ file: dir, path: '', message: `cannot read the config directory: ${errnoText(err)}` });
    return result;
  }
  const fileCtx: LoadContext = { ...ctx, configDir: ctx.configDir ?? dir };
  const accepted = new RepoConflictIndex();
  // Thousands of repositories: the loops over them yield to the event loop every few milliseconds.
  const pause = timeSlicer();
  for (const file of files) {
    const loaded = await loadProjectFile(file, fileCtx);
    const errors = [
      ...loaded.errors,
      ...(loaded.project ? await projectConflictsSliced(loaded.project, result.projects, accepted, pause) : []),
    ];
    // A file whose name clashes with an accepted project is reported even when it has other errors, so the user
    // sees the clash before fixing the rest.
    if (!loaded.project && loaded.projectName) {
      const dup = findDuplicateName(loaded.projectName, result.projects);
      if (dup) errors.unshift(duplicateNameIssue(file, loaded.projectName, dup));
    }
    result.errors.push(...errors);
    result.warnings.push(...loaded.warnings);
    const ok = errors.length === 0 && loaded.project !== undefined;
    if (ok && loaded.project) {
      result.projects.push(loaded.project);
      for (const r of loaded.project.repositories) {
        await pause();
        accepted.add(r);
      }
    }
    const entry: LoadedFile = { file, ok };
    if (loaded.projectName !== undefined) entry.project = loaded.projectName;
    result.files.push(entry);
  }
  return result;
}

function findDuplicateName(name: string, accepted: readonly ProjectConfig[]): ProjectConfig | undefined {
  // Case-insensitive: names become compose projects, directories and URL segments, where case is unreliable.
  return accepted.find((p) => p.name.toLowerCase() === name.toLowerCase());
}

function duplicateNameIssue(file: string, name: string, first: ProjectConfig): ConfigIssue {
  return { file, path: 'project', message: `project "${name}" is already defined in ${first.file}` };
}

/**
 * Cross-project checks of one loaded project against projects already accepted (for hot reload: the other files'
 * current projects): duplicate project name, shared compose project, overlapping checkout directories.
 */
export function checkProjectConflicts(
  project: ProjectConfig,
  accepted: readonly ProjectConfig[],
  index?: RepoConflictIndex,
): ConfigIssue[] {
  const others = accepted.filter((p) => p.file !== project.file);
  const dup = findDuplicateName(project.name, others);
  if (dup) return [duplicateNameIssue(project.file, project.name, dup)];
  // `index` (kept by loadProjects) holds the repositories of `accepted`, none of them from this file.
  return findRepoConflicts(project.file, project.repositories, index ?? others.flatMap((p) => p.repositories));
}

/** {@link checkProjectConflicts} against the index loadProjects keeps, yielding through `pause`. */
async function projectConflictsSliced(
  project: ProjectConfig,
  accepted: readonly ProjectConfig[],
  index: RepoConflictIndex,
  pause: () => Promise<void>,
): Promise<ConfigIssue[]> {
  const dup = findDuplicateName(project.name, accepted);
  if (dup) return [duplicateNameIssue(project.file, project.name, dup)];
  return findRepoConflictsSliced(project.file, project.repositories, index, pause);
}

/** Loads and resolves one project file (no cross-file checks: see checkProjectConflicts). Never throws for bad input. */
export async function loadProjectFile(file: string, ctx: LoadContext): Promise<FileLoadResult> {
  let text: string;
  try {
    const st = await fs.stat(file);
    if (!st.isFile()) return failed(file, 'is not a regular file');
    if (st.size > MAX_PROJECT_FILE_BYTES)
      return failed(file, `is too large (${st.size} bytes, limit ${MAX_PROJECT_FILE_BYTES})`);
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    return failed(file, `cannot read file: ${errnoText(err)}`);
  }
  return await parseProjectText(text, file, { ...ctx, configDir: ctx.configDir ?? path.dirname(file) });
}

function failed(file: string, message: string): FileLoadResult {
  return { file, errors: [{ file, path: '', message }], warnings: [] };
}

function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT') return 'no such file or directory';
  if (e?.code === 'EACCES' || e?.code === 'EPERM') return 'permission denied';
  if (e?.code === 'ENOTDIR') return 'not a directory';
  return e?.code ?? 'unknown error';
}

/** Lets timers and requests run between the stages of a large file (a boot with thousands of repositories). */
const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Parses, interpolates, validates and resolves the text of one project file. Side-effect free; it yields to the
 * event loop between its stages, each of which is synchronous.
 */
async function parseProjectText(text: string, file: string, ctx: LoadContext): Promise<FileLoadResult> {
  const out: FileLoadResult = { file, errors: [], warnings: [] };
  const issue = (p: readonly PropertyKey[], message: string) =>
    out.errors.push({ file, path: formatKeyPath(p), message });

  // The one synchronous step that grows with the file: large texts are parsed on a worker thread.
  const yaml = await parseYamlTextAsync(text);
  if (yaml.kind === 'syntax') {
    for (const message of yaml.messages) out.errors.push({ file, path: '', message });
    return out;
  }
  if (yaml.kind === 'convert') {
    issue([], yaml.message);
    return out;
  }
  const raw = yaml.value;
  if (raw === null || raw === undefined) {
    issue([], 'file is empty (expected at least "project:" and "repositories:")');
    return out;
  }

  await yieldToLoop();
  const interp = interpolateTree(raw, ctx.env);
  for (const i of interp.issues) issue(i.path, i.message);
  const brokenPaths = new Set(interp.issues.map((i) => pathKey(i.path)));
  let data = interp.value;
  if (isRecord(data) && typeof data.project === 'string' && data.project.trim() !== '') out.projectName = data.project;

  await yieldToLoop();
  const schema = projectSchemas(ctx.checkNotificationUrl).ProjectFileSchema;
  let parsed = schema.safeParse(data, { error: () => ZOD_DEFAULT });
  if (!parsed.success) {
    // `check_interval: ${INTERVAL}` yields a string; accept it where the schema wants a number or boolean.
    const coerced = coerceInterpolated(data, parsed.error.issues, interp.interpolated);
    if (coerced !== undefined) {
      data = coerced;
      parsed = schema.safeParse(data, { error: () => ZOD_DEFAULT });
    }
  }
  if (!parsed.success) {
    for (const zi of parsed.error.issues) {
      for (const t of translateIssue(zi, data)) {
        // An unresolved ${VAR} already explains why the value looks wrong.
        if (![...brokenPaths].some((b) => pathKey(t.path).startsWith(b))) issue(t.path, t.message);
      }
    }
  }
  if (out.errors.length || !parsed.success) return out;

  await yieldToLoop();
  const resolved = await resolveProject(file, parsed.data as ProjectFile, {
    dataPath: path.resolve(ctx.dataPath),
    configDir: path.resolve(ctx.configDir ?? path.dirname(file)),
    githubToken: ctx.githubToken,
    ...(ctx.registryAuths ? { registryAuths: ctx.registryAuths } : {}),
  });
  out.errors.push(...resolved.issues);
  out.warnings.push(...resolved.warnings);
  if (resolved.project && out.errors.length === 0) out.project = resolved.project;
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// zod issue → sentence

/** Marks issues that carry zod's default wording (schema-level custom messages win over a per-parse error map). */
const ZOD_DEFAULT = '\u0000zod-default';

const pathKey = (p: readonly PropertyKey[]): string => JSON.stringify(p.map(String)).slice(0, -1);

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function valueAt(root: unknown, p: readonly PropertyKey[]): unknown {
  let cur: unknown = root;
  for (const seg of p) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, seg)) return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[seg];
  }
  return cur;
}

function describeValue(v: unknown): string {
  if (v === null) return 'empty (null)';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return 'text';
  if (typeof v === 'number') return 'a number';
  if (typeof v === 'boolean') return 'true/false';
  return typeof v;
}

const EXPECTED: Record<string, string> = {
  string: 'text',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping (key: value)',
  record: 'a mapping (key: value)',
  array: 'a list',
};

function coerceInterpolated(
  data: unknown,
  issues: readonly z.core.$ZodIssue[],
  interpolated: readonly ValuePath[],
): unknown {
  const candidates = new Set(interpolated.map((p) => pathKey(p)));
  let copy: unknown;
  for (const iss of issues) {
    if (iss.code !== 'invalid_type' || !candidates.has(pathKey(iss.path))) continue;
    const v = valueAt(data, iss.path);
    if (typeof v !== 'string') continue;
    let next: unknown;
    if (iss.expected === 'number' && /^-?\d+(\.\d+)?$/.test(v.trim())) next = Number(v);
    else if (iss.expected === 'boolean' && /^(true|false)$/i.test(v.trim())) next = v.trim().toLowerCase() === 'true';
    else continue;
    copy ??= structuredClone(data);
    const parent = valueAt(copy, iss.path.slice(0, -1)) as Record<PropertyKey, unknown>;
    parent[iss.path[iss.path.length - 1] as PropertyKey] = next;
  }
  return copy;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** One zod issue → one or more `{ path, message }` in plain English. Values are never echoed (they may be secrets). */
function translateIssue(iss: z.core.$ZodIssue, data: unknown): { path: PropertyKey[]; message: string }[] {
  const p = [...iss.path];
  const custom = iss.message !== ZOD_DEFAULT ? iss.message : undefined;
  switch (iss.code) {
    case 'invalid_type': {
      const v = valueAt(data, p);
      const present =
        p.length === 0
          ? data !== undefined
          : (() => {
              const parent = valueAt(data, p.slice(0, -1));
              return isRecord(parent) || Array.isArray(parent)
                ? Object.hasOwn(parent, p[p.length - 1] as PropertyKey)
                : false;
            })();
      if (!present) return [{ path: p, message: 'is required' }];
      const want = EXPECTED[iss.expected] ?? iss.expected;
      if (p.length === 0)
        return [{ path: p, message: `the file must contain a mapping (key: value), not ${describeValue(v)}` }];
      return [{ path: p, message: `must be ${want}, not ${describeValue(v)}` }];
    }
    case 'unrecognized_keys':
      return iss.keys.map((key) => {
        const hint = suggestKey(key, knownKeysAt(p));
        return { path: p, message: `unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}` };
      });
    case 'invalid_value':
      if (custom) return [{ path: p, message: custom }];
      return [
        {
          path: p,
          message:
            iss.values.length === 1
              ? `must be ${JSON.stringify(iss.values[0])}`
              : `must be one of ${iss.values.map((v) => JSON.stringify(v)).join(', ')}`,
        },
      ];
    case 'too_small': {
      if (custom) return [{ path: p, message: custom }];
      const min = Number(iss.minimum);
      if (iss.origin === 'string')
        return [{ path: p, message: min <= 1 ? 'must not be empty' : `must be at least ${plural(min, 'character')}` }];
      if (iss.origin === 'array' || iss.origin === 'set')
        return [{ path: p, message: `must have at least ${plural(min, 'item')}` }];
      return [{ path: p, message: `must be ${iss.inclusive ? 'at least' : 'greater than'} ${min}` }];
    }
    case 'too_big': {
      if (custom) return [{ path: p, message: custom }];
      const max = Number(iss.maximum);
      if (iss.origin === 'string') return [{ path: p, message: `must be at most ${plural(max, 'character')}` }];
      if (iss.origin === 'array' || iss.origin === 'set')
        return [{ path: p, message: `must have at most ${plural(max, 'item')}` }];
      return [{ path: p, message: `must be ${iss.inclusive ? 'at most' : 'less than'} ${max}` }];
    }
    case 'invalid_format':
      if (custom) return [{ path: p, message: custom }];
      return [
        { path: p, message: iss.format === 'url' ? 'must be a valid URL' : `has an invalid format (${iss.format})` },
      ];
    case 'invalid_key': {
      const key = String(p[p.length - 1] ?? '');
      const inner = iss.issues.find((i) => i.message !== ZOD_DEFAULT)?.message ?? 'is not a valid name';
      return [{ path: p.slice(0, -1), message: `invalid name "${key}": ${inner}` }];
    }
    case 'not_multiple_of':
      return [{ path: p, message: custom ?? `must be a multiple of ${String(iss.divisor)}` }];
    case 'invalid_union':
      return [{ path: p, message: custom ?? 'does not match any allowed form' }];
    default:
      return [{ path: p, message: custom ?? 'is invalid' }];
  }
}

// ---------------------------------------------------------------------------------------------------------------
// "did you mean": known keys of the strict object at a path, read from the schema itself

interface SchemaNode {
  _zod: {
    def: {
      type: string;
      shape?: Record<string, SchemaNode>;
      innerType?: SchemaNode;
      valueType?: SchemaNode;
      element?: SchemaNode;
      in?: SchemaNode;
    };
  };
}

function unwrap(node: SchemaNode | undefined): SchemaNode | undefined {
  let cur = node;
  for (let i = 0; cur && i < 10; i++) {
    const def = cur._zod.def;
    if (['default', 'optional', 'nullable', 'prefault', 'readonly', 'catch', 'nonoptional'].includes(def.type))
      cur = def.innerType;
    else if (def.type === 'pipe') cur = def.in;
    else return cur;
  }
  return cur;
}

function knownKeysAt(p: readonly PropertyKey[]): string[] {
  let node = unwrap(ProjectFileSchema as unknown as SchemaNode);
  for (const seg of p) {
    const def = node?._zod.def;
    if (!def) return [];
    if (def.type === 'object') node = unwrap(def.shape?.[String(seg)]);
    else if (def.type === 'record') node = unwrap(def.valueType);
    else if (def.type === 'array') node = unwrap(def.element);
    else return [];
  }
  const def = node?._zod.def;
  return def?.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

/** Optimal-string-alignment distance: like Levenshtein, but a swap of two neighbours ("branhc") costs 1. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  const at = (i: number, j: number) => d[i]?.[j] ?? Infinity;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = v;
    }
  }
  return at(a.length, b.length);
}

function suggestKey(key: string, known: readonly string[]): string | undefined {
  const squash = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  const exact = known.find((k) => squash(k) === squash(key));
  if (exact) return exact;
  let best: string | undefined;
  let bestDist = Infinity;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k);
    if (d < bestDist) [best, bestDist] = [k, d];
  }
  return bestDist <= Math.max(1, Math.min(3, Math.floor(key.length / 4))) ? best : undefined;
}
