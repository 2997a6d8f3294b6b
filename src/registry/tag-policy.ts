/**
 * @module "Newer tag" policies: which tag of an image a service may move to. Pure: no I/O, no clock.
 *
 * A tag is read as `[v]MAJOR[.MINOR[.PATCH]][-PRERELEASE][-VARIANT]` (`16`, `v16.2`, `16.2.1-alpine`,
 * `1.0.0-rc.1`, `7.2-rc2-alpine`), or as a numeric tag `YYYY-MM-DD` / `YYYY_MM_DD` (digit groups joined by one kind of
 * dash or underscore). Rules (see docs/image-updates.md "Tag policies and write-back"):
 *
 *   - Family: a candidate keeps the current tag's `v` prefix and its variant exactly (`16-alpine` only moves to
 *     `…-alpine` tags, never to `17` or `17-bookworm`; `alpine3.20` is another variant than `alpine`).
 *   - Order: missing MINOR/PATCH count as 0 (`16` = 16.0.0), so `16` may move to `16.2.1`; between equal versions
 *     (`16.3` and `16.3.0`) the one with the current tag's precision wins. Numeric tags compare group by group and need
 *     the same number of groups and the same separator.
 *   - Prereleases (`-alpha`, `-beta`, `-rc`, `-pre`, `-preview`, `-dev`, `-canary`, `-nightly`, `-snapshot`, with an
 *     optional number) are skipped unless the current tag or the semver range has one.
 *   - `semver`: the candidate's version must satisfy the range (node-semver syntax, `^16`, `~1.27`, `>=16 <18`).
 *   - `tag_regex`: the candidate must match the whole pattern (RE2 syntax, linear time). Alone, it still orders the
 *     matches by version: when the current tag is not a version (`latest`, `stable`, a commit sha), nothing is
 *     comparable and the answer is null.
 *
 * Tags that do not parse (`latest`, `alpine`, `sha-1a2b3c`) are never candidates.
 */
import { RE2JS, RE2JSSyntaxException } from 're2js';
import semver from 'semver';

/** A per-service policy for "newer tag" updates; at least one of the two keys. */
export interface TagPolicy {
  /** node-semver range the new version must satisfy (`^16`, `~1.27`, `>=16 <18`). */
  semver?: string;
  /** RE2 pattern the whole new tag must match (`^\d{4}-\d{2}-\d{2}$`; anchors optional). */
  tag_regex?: string;
}

const PRERELEASE = /^(alpha|beta|rc|pre|preview|dev|canary|nightly|snapshot)((?:\.?\d+)*)$/i;
const VERSION = /^([vV]?)(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z][0-9A-Za-z._-]*))?$/;
const NUMERIC = /^\d+(?:([-_])\d+)(?:\1\d+)*$/;

/** A tag read as a version. */
export interface ParsedTag {
  tag: string;
  /** Everything that must be equal for two tags to be comparable (prefix, variant, shape of numeric tags). */
  family: string;
  /** Coerced semver (`16` → `16.0.0`, `7.2-rc2` → `7.2.0-rc.2`); null for numeric tags. */
  version: string | null;
  /** Numeric groups, for ordering numeric tags and precision ties. */
  numbers: number[];
  prerelease: boolean;
}

const int = (s: string): number => Number.parseInt(s, 10);

/** Reads a tag as a version (see the module comment); null when it is none (`latest`, `sha-abc`, `1.2.3.4`). */
export function parseTag(tag: string): ParsedTag | null {
  const numeric = NUMERIC.exec(tag);
  if (numeric) {
    const numbers = tag.split(numeric[1] ?? '-').map(int);
    return { tag, family: `numeric:${numeric[1]}:${numbers.length}`, version: null, numbers, prerelease: false };
  }
  const m = VERSION.exec(tag);
  if (!m) return null;
  const [, prefix = '', major = '', minor, patch, suffix] = m;
  const numbers = [major, minor, patch].filter((n): n is string => n !== undefined).map(int);
  if (numbers.some((n) => !Number.isSafeInteger(n))) return null;
  // Leading suffix segments that look like prerelease labels are the prerelease; the rest is the variant.
  const segments = suffix ? suffix.split('-') : [];
  const pre: string[] = [];
  while (segments.length > 0) {
    const p = PRERELEASE.exec(segments[0] ?? '');
    if (!p) break;
    segments.shift();
    const nums = (p[2] ?? '').split('.').filter((n) => n !== '');
    pre.push([p[1]?.toLowerCase(), ...nums.map((n) => String(int(n)))].join('.'));
  }
  const variant = segments.join('-');
  const core = `${numbers[0]}.${numbers[1] ?? 0}.${numbers[2] ?? 0}`;
  const version = semver.valid(pre.length > 0 ? `${core}-${pre.join('.')}` : core);
  if (!version) return null;
  return { tag, family: `${prefix}|${variant}`, version, numbers, prerelease: pre.length > 0 };
}

function compileRegex(pattern: string): RE2JS {
  return RE2JS.compile(pattern);
}

/** Validates a policy: null when fine, else what is wrong (`semver range "^x.y.z" is not valid`). */
export function checkTagPolicy(p: TagPolicy): string | null {
  if (typeof p !== 'object' || p === null) return 'a tag policy must be a mapping with "semver" and/or "tag_regex"';
  if (p.semver === undefined && p.tag_regex === undefined) return 'a tag policy needs "semver" or "tag_regex"';
  if (p.semver !== undefined) {
    if (typeof p.semver !== 'string' || p.semver.trim() === '') return 'semver range must be a non-empty string';
    if (semver.validRange(p.semver) === null) return `semver range "${p.semver}" is not valid`;
  }
  if (p.tag_regex !== undefined) {
    if (typeof p.tag_regex !== 'string' || p.tag_regex === '') return 'tag_regex must be a non-empty string';
    try {
      compileRegex(p.tag_regex);
    } catch (err) {
      const reason = err instanceof RE2JSSyntaxException ? err.message : 'cannot be compiled';
      return `tag_regex "${p.tag_regex}" is not a valid RE2 regular expression (${reason})`;
    }
  }
  return null;
}

/** Negative, zero or positive like a sort comparator; both tags of the same family. */
function compareTags(a: ParsedTag, b: ParsedTag, precision: number): number {
  if (a.version !== null && b.version !== null) {
    const c = semver.compare(a.version, b.version);
    if (c !== 0) return c;
    // Same version: the current tag's precision first, then the more precise tag.
    const aSame = a.numbers.length === precision ? 1 : 0;
    const bSame = b.numbers.length === precision ? 1 : 0;
    return aSame - bSame || a.numbers.length - b.numbers.length;
  }
  for (let i = 0; i < Math.max(a.numbers.length, b.numbers.length); i++) {
    const d = (a.numbers[i] ?? 0) - (b.numbers[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

function isNewer(t: ParsedTag, cur: ParsedTag): boolean {
  if (t.version !== null && cur.version !== null) return semver.gt(t.version, cur.version);
  return compareTags(t, cur, cur.numbers.length) > 0;
}

/**
 * The best tag newer than `current` allowed by the policy, or null (also for an invalid policy: validate it with
 * {@link checkTagPolicy} first). See the module comment for the rules.
 */
export function newerTag(current: string, tags: readonly string[], p: TagPolicy): string | null {
  if (checkTagPolicy(p) !== null) return null;
  const cur = parseTag(current);
  if (!cur) return null;
  const range = p.semver !== undefined ? new semver.Range(p.semver) : null;
  const regex = p.tag_regex !== undefined ? compileRegex(p.tag_regex) : null;
  // semver writes caret/tilde/x upper bounds as `<2.0.0-0`: that `-0` is its own bookkeeping, not a prerelease the
  // user asked for, so it does not let prereleases in.
  const rangeHasPrerelease =
    range?.set.some((set) =>
      set.some(
        (c) =>
          c.semver instanceof semver.SemVer &&
          c.semver.prerelease.length > 0 &&
          !(c.operator === '<' && c.semver.prerelease.join('.') === '0'),
      ),
    ) ?? false;
  const allowPrerelease = cur.prerelease || rangeHasPrerelease;
  let best: ParsedTag | null = null;
  for (const tag of new Set(tags)) {
    const t = parseTag(tag);
    if (!t || t.family !== cur.family) continue;
    if (t.prerelease && !allowPrerelease) continue;
    if (regex && !regex.matches(tag)) continue;
    if (range && (t.version === null || !semver.satisfies(t.version, range, { includePrerelease: allowPrerelease })))
      continue;
    if (!isNewer(t, cur)) continue;
    if (!best || compareTags(t, best, cur.numbers.length) > 0) best = t;
  }
  return best?.tag ?? null;
}
