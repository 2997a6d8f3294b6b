/**
 * @module `${VAR}` interpolation in project files: `${VAR}`, `${VAR:-default}` (unset or empty → default),
 * `${VAR-default}` (unset → default) and `$${…}` as an escape for a literal `${…}`. A bare `$VAR` is left alone
 * so passwords containing `$` survive untouched.
 */

/** Path of a value inside a parsed document: keys and array indexes. */
export type ValuePath = readonly (string | number)[];

/** One reference that could not be resolved (or was malformed). Never carries a variable's value. */
interface InterpolationIssue {
  path: ValuePath;
  message: string;
}

export interface InterpolationResult {
  /** A copy of the input with every string value interpolated. */
  value: unknown;
  issues: InterpolationIssue[];
  /** Paths of the strings that contained at least one reference (used to coerce `"${PORT}"` to a number). */
  interpolated: ValuePath[];
}

const VAR_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
// `$${` is the escape; `${…}` a reference. Anything else (a lone `$`) is literal text.
const TOKEN = /\$\$\{|\$\{([^}]*)\}|\$\{/g;

/**
 * Interpolates one string. Returns the new string, or the problems found (the variable names only,
 * never values, since those are often tokens).
 */
export function interpolateString(
  input: string,
  env: NodeJS.ProcessEnv,
): { value: string; problems: string[]; changed: boolean } {
  const problems: string[] = [];
  let changed = false;
  const value = input.replace(TOKEN, (match: string, body: string | undefined) => {
    changed = true;
    if (match === '$${') return '${';
    if (body === undefined) {
      problems.push('has an unterminated "${" (write "$${" for a literal "${")');
      return match;
    }
    const ref = parseReference(body);
    if (!ref) {
      // The text between the braces is not echoed: a stray "${" may sit inside a password.
      problems.push('has an invalid variable reference (expected ${NAME}, ${NAME:-default} or $${ for a literal "${")');
      return match;
    }
    const raw = env[ref.name];
    if (ref.fallback !== undefined) {
      const useDefault = ref.emptyIsUnset ? raw === undefined || raw === '' : raw === undefined;
      return useDefault ? ref.fallback : (raw as string);
    }
    if (raw === undefined) {
      problems.push(`environment variable ${ref.name} is not set (use \${${ref.name}:-default} for a default)`);
      return match;
    }
    return raw;
  });
  return { value, problems, changed };
}

function parseReference(body: string): { name: string; fallback?: string; emptyIsUnset: boolean } | null {
  const colon = body.indexOf(':-');
  const dash = body.indexOf('-');
  if (colon > 0 && (dash === -1 || colon < dash)) {
    const name = body.slice(0, colon);
    return VAR_NAME.test(name) ? { name, fallback: body.slice(colon + 2), emptyIsUnset: true } : null;
  }
  if (dash > 0) {
    const name = body.slice(0, dash);
    return VAR_NAME.test(name) ? { name, fallback: body.slice(dash + 1), emptyIsUnset: false } : null;
  }
  return VAR_NAME.test(body) ? { name: body, emptyIsUnset: false } : null;
}

/**
 * Interpolates every string value (not keys) of a plain JSON-like tree. The input is not modified.
 */
export function interpolateTree(root: unknown, env: NodeJS.ProcessEnv): InterpolationResult {
  const issues: InterpolationIssue[] = [];
  const interpolated: ValuePath[] = [];
  const walk = (node: unknown, path: (string | number)[]): unknown => {
    if (typeof node === 'string') {
      const r = interpolateString(node, env);
      for (const message of r.problems) issues.push({ path: [...path], message });
      if (r.changed) interpolated.push([...path]);
      return r.value;
    }
    if (Array.isArray(node)) return node.map((item, i) => walk(item, [...path, i]));
    if (node !== null && typeof node === 'object') {
      const out: Record<string, unknown> = {};
      // defineProperty: a YAML key named "__proto__" must stay data, never become the prototype.
      for (const [k, v] of Object.entries(node)) {
        Object.defineProperty(out, k, {
          value: walk(v, [...path, k]),
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    return node;
  };
  return { value: walk(root, []), issues, interpolated };
}
