/**
 * @module sops' YAML, JSON and binary stores on top of the `yaml` package's node tree: the `sops` key is removed,
 * values are decrypted in place (so key order and comments survive), and the MAC walk follows document order.
 * JSON goes through the same node tree (JSON is YAML 1.2) and is emitted back as tab-indented JSON.
 */
import { isAlias, isMap, isScalar, isSeq, parseAllDocuments, Scalar } from 'yaml';
import type { Document, Node, Pair, YAMLMap, YAMLSeq } from 'yaml';
import { formatGoBool, formatGoFloat, formatGoInt, goYamlTimestamp } from './cipher.ts';
import { SopsError } from './errors.ts';
import type { ParsedDocument } from './dotenv-store.ts';
import type { TreeCrypt } from './tree-crypt.ts';

type Flavor = 'yaml' | 'json' | 'binary';

function malformed(message: string): SopsError {
  return new SopsError('SOPS_MALFORMED', message);
}

const where = (path: readonly string[]): string => (path.length ? path.join('.') : '(top level)');

/** Walks one document's node tree, decrypting in place. `raw` keeps decrypted bytes per node (for binary). */
class Walker {
  readonly raw = new Map<Scalar, Buffer>();
  readonly #crypt: TreeCrypt;
  readonly #flavor: Flavor;
  constructor(crypt: TreeCrypt, flavor: Flavor) {
    this.#crypt = crypt;
    this.#flavor = flavor;
  }

  /** Decrypts each line of a YAML comment that is an ENC value (comments take the containing path). */
  #comment(text: string | null | undefined, path: readonly string[]): string | undefined {
    if (!text) return text ?? undefined;
    return text
      .split('\n')
      .map((line) => this.#crypt.comment(line, path))
      .join('\n');
  }

  #comments(node: Node | null | undefined, path: readonly string[], stack: string[]): void {
    if (!node) return;
    if (node.commentBefore) {
      node.commentBefore = this.#comment(node.commentBefore, path) ?? null;
      stack.push(...(node.commentBefore ?? '').split('\n'));
    }
    if (node.comment) node.comment = this.#comment(node.comment, path) ?? null;
  }

  walk(node: unknown, path: string[], stack: readonly string[][]): void {
    if (node === null || node === undefined) return;
    if (isMap(node)) this.#map(node, path, stack);
    else if (isSeq(node)) this.#seq(node, path, stack);
    else if (isScalar(node)) this.#scalar(node, path, stack);
    else if (isAlias(node)) throw malformed(`YAML aliases are not supported in encrypted files (at ${where(path)})`);
    else throw malformed(`unsupported YAML node at ${where(path)}`);
  }

  #map(map: YAMLMap, path: string[], stack: readonly string[][]): void {
    const level: string[] = [];
    const inner = [...stack, level];
    for (const pair of map.items as Pair<unknown, unknown>[]) {
      const keyNode = pair.key;
      if (!isScalar(keyNode) || typeof keyNode.value !== 'string') {
        throw malformed(`non-string key in mapping at ${where(path)}`);
      }
      this.#comments(keyNode, path, level);
      if (isScalar(pair.value) || isMap(pair.value) || isSeq(pair.value)) {
        // A comment before the first entry of a nested block is an item *inside* that block for sops, so its AAD
        // is the block's path; before a scalar value it stays in the enclosing mapping.
        if (pair.value.commentBefore) {
          const commentPath = isScalar(pair.value) ? path : [...path, keyNode.value];
          pair.value.commentBefore = this.#comment(pair.value.commentBefore, commentPath) ?? null;
          level.push(...(pair.value.commentBefore ?? '').split('\n'));
        }
      }
      this.walk(pair.value, [...path, keyNode.value], inner);
      if ((isMap(pair.value) || isSeq(pair.value) || isScalar(pair.value)) && pair.value.comment) {
        pair.value.comment = this.#comment(pair.value.comment, path) ?? null;
      }
      level.length = 0;
    }
    if (map.comment) map.comment = this.#comment(map.comment, path) ?? null;
  }

  #seq(seq: YAMLSeq, path: string[], stack: readonly string[][]): void {
    const level: string[] = [];
    const inner = [...stack, level];
    for (const item of seq.items) {
      if (isScalar(item) || isMap(item) || isSeq(item)) {
        if (item.commentBefore) {
          item.commentBefore = this.#comment(item.commentBefore, path) ?? null;
          level.push(...(item.commentBefore ?? '').split('\n'));
        }
      }
      // List elements share their list's path: sops never puts indices into the AAD.
      this.walk(item, path, inner);
      if ((isScalar(item) || isMap(item) || isSeq(item)) && item.comment) {
        item.comment = this.#comment(item.comment, path) ?? null;
      }
      level.length = 0;
    }
    if (seq.comment) seq.comment = this.#comment(seq.comment, path) ?? null;
  }

  #scalar(node: Scalar, path: string[], stack: readonly string[][]): void {
    const v = node.value;
    if (v === null || v === undefined) return; // nil is neither encrypted nor hashed
    if (this.#crypt.isEncrypted(path, stack.flat())) {
      const dec = this.#crypt.decryptLeaf(v, path);
      if (!dec) return;
      this.raw.set(node, dec.raw);
      node.value = dec.value;
      node.type = undefined; // let the stringifier pick a style that round-trips the new value
      delete node.source;
      delete node.format;
      if (node.tag && this.#flavor !== 'json') delete node.tag;
      return;
    }
    if (typeof v === 'string') {
      // go-yaml turns unquoted timestamps into time.Time, hashed as RFC3339Nano by sops ≥ 3.10.
      const ts = this.#flavor === 'yaml' && node.type === Scalar.PLAIN && !node.tag ? goYamlTimestamp(v) : undefined;
      this.#crypt.plainLeaf(ts ?? v, v);
    } else if (typeof v === 'bigint') {
      // JSON before sops 3.13.2 decoded every number as float64.
      this.#crypt.plainLeaf(formatGoInt(v), this.#flavor === 'yaml' ? formatGoInt(v) : formatGoFloat(Number(v)));
    } else if (typeof v === 'number') {
      this.#crypt.plainLeaf(formatGoFloat(v));
    } else if (typeof v === 'boolean') {
      this.#crypt.plainLeaf(formatGoBool(v));
    } else if (v instanceof Uint8Array) {
      this.#crypt.plainLeaf(Buffer.from(v));
    } else {
      throw malformed(`unsupported value at ${where(path)}`);
    }
  }
}

function jsonScalar(node: Scalar): string {
  const v = node.value;
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw malformed('a non-finite float cannot be written as JSON');
    return String(v);
  }
  // Go's encoding/json writes []byte as base64.
  if (v instanceof Uint8Array) return JSON.stringify(Buffer.from(v).toString('base64'));
  return JSON.stringify(String(v));
}

/** Tab-indented JSON like sops' emitter (`json.Indent` with "\t"), from the decrypted node tree. */
function emitJson(node: unknown, depth: number): string {
  const pad = '\t'.repeat(depth + 1);
  const end = '\t'.repeat(depth);
  if (isMap(node)) {
    if (node.items.length === 0) return '{}';
    const parts = (node.items as Pair<unknown, unknown>[]).map((p) => {
      const key = isScalar(p.key) ? String(p.key.value) : String(p.key);
      return `${pad}${JSON.stringify(key)}: ${emitJson(p.value, depth + 1)}`;
    });
    return `{\n${parts.join(',\n')}\n${end}}`;
  }
  if (isSeq(node)) {
    if (node.items.length === 0) return '[]';
    return `[\n${node.items.map((i) => pad + emitJson(i, depth + 1)).join(',\n')}\n${end}]`;
  }
  if (isScalar(node)) return jsonScalar(node);
  if (node === null || node === undefined) return 'null';
  throw malformed('unsupported JSON node');
}

function parseDocs(text: string, flavor: Flavor): Document.Parsed[] {
  if (flavor !== 'yaml') {
    try {
      // The yaml parser accepts more than JSON; require real JSON so a wrong --format is caught early.
      JSON.parse(text);
    } catch {
      throw malformed(`invalid JSON${flavor === 'binary' ? ' (binary sops files are JSON envelopes)' : ''}`);
    }
  }
  const docs = parseAllDocuments(text, {
    intAsBigInt: true,
    uniqueKeys: flavor === 'yaml', // sops rejects duplicate YAML keys but keeps duplicate JSON keys
    prettyErrors: false,
    strict: true,
  });
  const list = Array.isArray(docs) ? docs : [];
  for (const doc of list) {
    const [err] = doc.errors;
    // Only the code and position: the parser's message may quote file content.
    if (err)
      throw malformed(
        `invalid ${flavor === 'yaml' ? 'YAML' : 'JSON'} (${err.code} at line ${err.linePos?.[0].line ?? '?'})`,
      );
  }
  return list;
}

/** Parses a sops YAML, JSON or binary document. @throws SopsError SOPS_MALFORMED */
export function parseTreeDocument(input: Uint8Array, flavor: Flavor): ParsedDocument {
  const text = Buffer.from(input.buffer, input.byteOffset, input.byteLength).toString('utf8');
  const docs = parseDocs(text, flavor);
  if (docs.length === 0) throw malformed('sops metadata not found (empty document)');
  if (flavor !== 'yaml' && docs.length > 1) throw malformed('invalid JSON (more than one document)');
  for (const doc of docs) {
    const c = doc.contents;
    if (c === null || (isScalar(c) && c.value === null)) continue;
    if (!isMap(c))
      throw malformed(
        `${flavor === 'yaml' ? 'YAML' : 'JSON'} documents must be mappings (sequences and scalars are not supported)`,
      );
  }
  const first = docs[0]?.contents;
  const sopsPairs = isMap(first)
    ? (first.items as Pair<unknown, unknown>[]).filter((p) => isScalar(p.key) && p.key.value === 'sops')
    : [];
  if (sopsPairs.length > 1) throw malformed('found duplicate sops entry');
  const sopsPair = sopsPairs[0];
  if (!sopsPair) throw malformed('sops metadata not found');
  const metadata = isMap(sopsPair.value) ? sopsPair.value.toJSON() : undefined;
  if (metadata === undefined) throw malformed('"sops" must be a mapping');
  for (const doc of docs) {
    const c = doc.contents;
    if (isMap(c)) c.items = c.items.filter((p) => !(isScalar(p.key) && p.key.value === 'sops'));
  }

  return {
    metadata,
    decrypt(crypt) {
      const walker = new Walker(crypt, flavor);
      for (const doc of docs) {
        if (doc.commentBefore)
          doc.commentBefore = doc.commentBefore
            .split('\n')
            .map((l) => crypt.comment(l, []))
            .join('\n');
        if (doc.comment)
          doc.comment = doc.comment
            .split('\n')
            .map((l) => crypt.comment(l, []))
            .join('\n');
        walker.walk(doc.contents, [], []);
      }
      crypt.verify();
      if (flavor === 'yaml') return Buffer.from(docs.map((d) => d.toString({ lineWidth: 0 })).join(''), 'utf8');
      const root = docs[0]?.contents;
      if (flavor === 'json') return Buffer.from(`${emitJson(root, 0)}\n`, 'utf8');
      const dataPair = isMap(root)
        ? (root.items as Pair<unknown, unknown>[]).find((p) => isScalar(p.key) && p.key.value === 'data')
        : undefined;
      const data = dataPair?.value;
      if (!isScalar(data)) throw malformed('binary sops file has no "data" value');
      const raw = walker.raw.get(data);
      if (raw) return raw;
      return typeof data.value === 'string' ? Buffer.from(data.value, 'utf8') : Buffer.alloc(0);
    },
  };
}
