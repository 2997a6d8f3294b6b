/**
 * @module The `sops` metadata block: validation into a typed shape, key-group selection, encryption rules
 * (`shouldBeEncrypted`), and the dotenv `sops_…__list_0__map_enc` flattening (stores/flatten.go).
 */
import { RE2JS, RE2JSSyntaxException } from 're2js';
import { SopsError } from './errors.ts';

/** One `age` key entry: the recipient and the armored age file whose plaintext is the 32-byte data key. */
interface AgeEntry {
  recipient: string;
  enc: string;
}

/** A compiled sops rule pattern: `test` is Go's `MatchString` (unanchored search), linear in the input length. */
interface RulePattern {
  test(input: string): boolean;
}

/** Which leaves are encrypted (sops allows at most one rule; none means `unencrypted_suffix: _unencrypted`). */
export interface CryptRules {
  unencryptedSuffix?: string;
  encryptedSuffix?: string;
  unencryptedRegex?: RulePattern;
  encryptedRegex?: RulePattern;
  unencryptedCommentRegex?: RulePattern;
  encryptedCommentRegex?: RulePattern;
}

/** The parts of the metadata decryption needs. */
export interface SopsMetadata {
  lastModified: string;
  mac: string;
  age: AgeEntry[];
  /** Other master-key types present (pgp, kms…): named in "no matching key" errors. */
  otherKeyTypes: string[];
  rules: CryptRules;
  macOnlyEncrypted: boolean;
}

const KEY_TYPES = ['pgp', 'kms', 'gcp_kms', 'hckms', 'azure_kv', 'hc_vault', 'age'] as const;
const RULE_KEYS = [
  'unencrypted_suffix',
  'encrypted_suffix',
  'unencrypted_regex',
  'encrypted_regex',
  'unencrypted_comment_regex',
  'encrypted_comment_regex',
] as const;

function malformed(message: string): SopsError {
  return new SopsError('SOPS_MALFORMED', `invalid sops metadata: ${message}`);
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function list(v: unknown, name: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw malformed(`"${name}" must be a list`);
  return v;
}

/** mapstructure WeaklyTypedInput: dotenv stores everything as strings. */
function weakBool(v: unknown, name: string): boolean {
  if (v === undefined || v === null || v === '') return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'string') {
    if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
    if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  }
  throw malformed(`"${name}" must be a boolean`);
}

/**
 * Compiles a rule pattern with RE2 semantics (re2js, a port of Go's regexp): the syntax sops itself accepts, and
 * matching in time linear in the input, so a crafted pattern such as `(a+)+$` cannot stall a worker. Patterns RE2
 * refuses (backreferences, lookarounds, possessive quantifiers) are refused here with the key and RE2's reason.
 */
function goRegExp(pattern: string, name: string): RulePattern {
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch (err) {
    const reason = err instanceof RE2JSSyntaxException ? err.message : 'cannot be compiled';
    throw malformed(`"${name}" is not a valid RE2 regular expression (${reason})`);
  }
  return { test: (input) => re.test(input) };
}

function ageEntries(group: Record<string, unknown>): AgeEntry[] {
  return list(group.age, 'age').map((e, i) => {
    if (!isRecord(e) || typeof e.enc !== 'string') throw malformed(`age entry ${i} has no "enc"`);
    return { recipient: typeof e.recipient === 'string' ? e.recipient : '(unknown recipient)', enc: e.enc };
  });
}

/**
 * Validates the metadata mapping (already extracted from the document).
 * @throws SopsError SOPS_MALFORMED for a broken block, SOPS_UNSUPPORTED for several key groups (Shamir).
 */
export function parseMetadata(raw: unknown): SopsMetadata {
  if (!isRecord(raw)) throw malformed('"sops" must be a mapping');
  const { lastmodified, mac } = raw;
  if (typeof lastmodified !== 'string' || lastmodified === '') throw malformed('"lastmodified" is missing');
  if (typeof mac !== 'string') throw malformed('"mac" is missing');

  let group: Record<string, unknown> | undefined;
  if (KEY_TYPES.some((t) => list(raw[t], t).length > 0)) {
    group = raw;
  } else {
    const groups = list(raw.key_groups, 'key_groups');
    if (groups.length > 1) {
      throw new SopsError(
        'SOPS_UNSUPPORTED',
        `file uses ${groups.length} key groups (Shamir); only one group is supported`,
      );
    }
    const [first] = groups;
    if (first !== undefined && !isRecord(first)) throw malformed('key group must be a mapping');
    group = first;
  }
  if (!group) throw new SopsError('SOPS_MALFORMED', 'no keys found in file');
  const age = ageEntries(group);
  const otherKeyTypes = KEY_TYPES.filter((t) => t !== 'age' && list(group[t], t).length > 0);

  const set = RULE_KEYS.filter((k) => typeof raw[k] === 'string' && raw[k] !== '');
  if (set.length > 1) throw malformed(`cannot use more than one of ${set.join(', ')}`);
  const rules: CryptRules = {};
  const str = (k: (typeof RULE_KEYS)[number]): string | undefined =>
    typeof raw[k] === 'string' && raw[k] !== '' ? raw[k] : undefined;
  const s1 = str('unencrypted_suffix');
  const s2 = str('encrypted_suffix');
  const r1 = str('unencrypted_regex');
  const r2 = str('encrypted_regex');
  const c1 = str('unencrypted_comment_regex');
  const c2 = str('encrypted_comment_regex');
  if (s1 !== undefined) rules.unencryptedSuffix = s1;
  if (s2 !== undefined) rules.encryptedSuffix = s2;
  if (r1 !== undefined) rules.unencryptedRegex = goRegExp(r1, 'unencrypted_regex');
  if (r2 !== undefined) rules.encryptedRegex = goRegExp(r2, 'encrypted_regex');
  if (c1 !== undefined) rules.unencryptedCommentRegex = goRegExp(c1, 'unencrypted_comment_regex');
  if (c2 !== undefined) rules.encryptedCommentRegex = goRegExp(c2, 'encrypted_comment_regex');
  if (set.length === 0) rules.unencryptedSuffix = '_unencrypted';

  return {
    lastModified: lastmodified,
    mac,
    age,
    otherKeyTypes,
    rules,
    macOnlyEncrypted: weakBool(raw.mac_only_encrypted, 'mac_only_encrypted'),
  };
}

/**
 * `Tree.shouldBeEncrypted`: whether the leaf at `path` (map keys only, no list indices) is encrypted.
 * `comments` are the comments preceding the item and its ancestors (only the comment-regex rules use them).
 */
export function shouldBeEncrypted(
  rules: CryptRules,
  path: readonly string[],
  comments: readonly string[] = [],
): boolean {
  let encrypted = true;
  if (rules.unencryptedSuffix !== undefined && path.some((p) => p.endsWith(rules.unencryptedSuffix as string)))
    encrypted = false;
  if (rules.encryptedSuffix !== undefined) encrypted = path.some((p) => p.endsWith(rules.encryptedSuffix as string));
  if (rules.unencryptedRegex && path.some((p) => (rules.unencryptedRegex as RulePattern).test(p))) encrypted = false;
  if (rules.encryptedRegex) encrypted = path.some((p) => (rules.encryptedRegex as RulePattern).test(p));
  if (rules.unencryptedCommentRegex && comments.some((c) => (rules.unencryptedCommentRegex as RulePattern).test(c)))
    encrypted = false;
  if (rules.encryptedCommentRegex)
    encrypted = comments.some((c) => (rules.encryptedCommentRegex as RulePattern).test(c));
  return encrypted;
}

type FlatNode = { leaf?: string; map?: Map<string, FlatNode>; list?: Map<number, FlatNode> };

/**
 * Rebuilds the metadata tree from dotenv's flattened `sops_*` keys (prefix already removed), as stores/flatten.go
 * `Unflatten`: `__map_` / `__list_N` separators; lists must be complete (0..n-1), no duplicates or type clashes.
 */
export function unflattenMetadata(entries: readonly (readonly [string, string])[]): Record<string, unknown> {
  const root: FlatNode = { map: new Map() };
  for (const [key, value] of entries) {
    const parts = key.split(/(__map_|__list_)/);
    let node = root;
    const steps: { kind: 'map' | 'list'; key: string }[] = [{ kind: 'map', key: parts[0] ?? '' }];
    for (let i = 1; i < parts.length; i += 2)
      steps.push({ kind: parts[i] === '__list_' ? 'list' : 'map', key: parts[i + 1] ?? '' });
    for (const [i, step] of steps.entries()) {
      let child: FlatNode | undefined;
      if (step.kind === 'map') {
        if (node.leaf !== undefined || node.list) throw malformed(`type mismatch at sops_${key}`);
        node.map ??= new Map();
        child = node.map.get(step.key);
        if (!child) node.map.set(step.key, (child = {}));
      } else {
        if (!/^\d+$/.test(step.key)) throw malformed(`bad list index in sops_${key}`);
        if (node.leaf !== undefined || node.map) throw malformed(`type mismatch at sops_${key}`);
        node.list ??= new Map();
        const idx = Number(step.key);
        child = node.list.get(idx);
        if (!child) node.list.set(idx, (child = {}));
      }
      if (i === steps.length - 1) {
        if (child.leaf !== undefined || child.map || child.list) throw malformed(`duplicate value sops_${key}`);
        child.leaf = value;
      }
      node = child;
    }
  }
  const build = (n: FlatNode): unknown => {
    if (n.leaf !== undefined) return n.leaf;
    if (n.list) {
      const out: unknown[] = [];
      for (let i = 0; i < n.list.size; i++) {
        const c = n.list.get(i);
        if (!c) throw malformed('incomplete list in dotenv metadata');
        out.push(build(c));
      }
      return out;
    }
    return Object.fromEntries([...(n.map ?? new Map<string, FlatNode>())].map(([k, c]) => [k, build(c)]));
  };
  return build(root) as Record<string, unknown>;
}
