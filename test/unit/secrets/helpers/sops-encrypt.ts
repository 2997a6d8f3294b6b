/**
 * @module Test-only SOPS + age *encryptor*, written independently of the decryptor from the SOPS file format (see docs/sops.md) and C2SP age.md,
 * so tests can build custom and tampered files. Never used by the daemon.
 */
import crypto from 'node:crypto';
import { stringify } from 'yaml';
import { bech32Decode, bech32Encode } from '../../../../src/secrets/bech32.ts';

const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const b64raw = (b: Buffer): string => b.toString('base64').replace(/=+$/, '');

/** A fresh X25519 age identity and its recipient. */
export function generateIdentity(): { identity: string; recipient: string } {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('x25519');
  const sk = privateKey.export({ format: 'der', type: 'pkcs8' }).subarray(-32);
  const pk = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  return { identity: bech32Encode('age-secret-key-', sk).toUpperCase(), recipient: bech32Encode('age', pk) };
}

function seal(key: Buffer, nonce: Buffer, plain: Buffer): Buffer {
  const c = crypto.createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  return Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
}

function wrapBody(body: Buffer): string {
  const text = b64raw(body);
  const lines: string[] = [];
  for (let i = 0; i < text.length; i += 64) lines.push(text.slice(i, i + 64));
  if (text.length % 64 === 0) lines.push('');
  return lines.join('\n');
}

/** Extra stanza to put in the header, e.g. an unknown type. */
export interface RawStanza {
  type: string;
  args: string[];
  body: Buffer;
}

/** age-encrypts `plain` to X25519 recipients (plus optional raw stanzas); armored by default. */
export function ageEncrypt(
  plain: Buffer,
  recipients: string[],
  opts: { armor?: boolean; stanzas?: RawStanza[] } = {},
): Buffer {
  const fileKey = crypto.randomBytes(16);
  const stanzas: string[] = [];
  for (const r of recipients) {
    const decoded = bech32Decode(r);
    if (!decoded) throw new Error('bad recipient');
    const eph = crypto.generateKeyPairSync('x25519');
    const share = eph.publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
    const pub = crypto.createPublicKey({
      key: Buffer.concat([SPKI_PREFIX, decoded.data]),
      format: 'der',
      type: 'spki',
    });
    const shared = crypto.diffieHellman({ privateKey: eph.privateKey, publicKey: pub });
    const wrapKey = Buffer.from(
      crypto.hkdfSync('sha256', shared, Buffer.concat([share, decoded.data]), 'age-encryption.org/v1/X25519', 32),
    );
    stanzas.push(`-> X25519 ${b64raw(share)}\n${wrapBody(seal(wrapKey, Buffer.alloc(12), fileKey))}`);
  }
  for (const s of opts.stanzas ?? []) stanzas.push(`-> ${[s.type, ...s.args].join(' ')}\n${wrapBody(s.body)}`);
  const headerNoMac = `age-encryption.org/v1\n${stanzas.map((s) => `${s}\n`).join('')}---`;
  const hmacKey = Buffer.from(crypto.hkdfSync('sha256', fileKey, Buffer.alloc(0), 'header', 32));
  const mac = crypto.createHmac('sha256', hmacKey).update(headerNoMac).digest();
  const nonce = crypto.randomBytes(16);
  const payloadKey = Buffer.from(crypto.hkdfSync('sha256', fileKey, nonce, 'payload', 32));
  const chunks: Buffer[] = [];
  const size = 64 * 1024;
  const count = Math.max(1, Math.ceil(plain.length / size));
  for (let i = 0; i < count; i++) {
    const n = Buffer.alloc(12);
    n.writeUIntBE(i, 5, 6);
    n[11] = i === count - 1 ? 1 : 0;
    chunks.push(seal(payloadKey, n, plain.subarray(i * size, (i + 1) * size)));
  }
  const binary = Buffer.concat([Buffer.from(`${headerNoMac} ${b64raw(mac)}\n`), nonce, ...chunks]);
  if (opts.armor === false) return binary;
  const b64 = binary.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return Buffer.from(`-----BEGIN AGE ENCRYPTED FILE-----\n${lines.join('\n')}\n-----END AGE ENCRYPTED FILE-----\n`);
}

/** Go's FormatFloat(v,'f',-1,64) for the values tests use. */
function goFloat(v: number): string {
  return Number.isInteger(v) ? BigInt(v).toString() : String(v);
}

/** sops' AES-GCM value encoding. */
export function encryptValue(plain: Buffer, type: string, key: Buffer, aad: string): string {
  const iv = crypto.randomBytes(32);
  const c = crypto.createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad));
  const data = Buffer.concat([c.update(plain), c.final()]);
  return `ENC[AES256_GCM,data:${data.toString('base64')},iv:${iv.toString('base64')},tag:${c.getAuthTag().toString('base64')},type:${type}]`;
}

export interface EncryptOptions {
  recipients: string[];
  dataKey?: Buffer;
  lastModified?: string;
  unencryptedSuffix?: string;
  encryptedSuffix?: string;
  unencryptedRegex?: string;
  encryptedRegex?: string;
  macOnlyEncrypted?: boolean;
  /** Put the age entries under `key_groups[0]` instead of the top level. */
  keyGroups?: boolean;
}

export interface Encrypted {
  text: string;
  dataKey: Buffer;
}

class Enc {
  readonly key: Buffer;
  readonly hash = crypto.createHash('sha512');
  readonly o: EncryptOptions;
  constructor(o: EncryptOptions) {
    this.o = o;
    this.key = o.dataKey ?? crypto.randomBytes(32);
    if (o.macOnlyEncrypted) this.hash.update(crypto.createHash('sha256').update('sops').digest());
  }
  encrypted(path: string[]): boolean {
    const o = this.o;
    if (o.encryptedSuffix) return path.some((p) => p.endsWith(o.encryptedSuffix as string));
    if (o.encryptedRegex) return path.some((p) => new RegExp(o.encryptedRegex as string).test(p));
    if (o.unencryptedRegex) return !path.some((p) => new RegExp(o.unencryptedRegex as string).test(p));
    return !path.some((p) => p.endsWith(o.unencryptedSuffix ?? '_unencrypted'));
  }
  leaf(v: unknown, path: string[]): unknown {
    if (v === null) return null;
    let plain: Buffer;
    let type: string;
    if (typeof v === 'string') [plain, type] = [Buffer.from(v), 'str'];
    else if (Buffer.isBuffer(v)) [plain, type] = [v, 'str'];
    else if (typeof v === 'boolean') [plain, type] = [Buffer.from(v ? 'True' : 'False'), 'bool'];
    else if (typeof v === 'number')
      [plain, type] = Number.isSafeInteger(v) ? [Buffer.from(String(v)), 'int'] : [Buffer.from(goFloat(v)), 'float'];
    else throw new Error('unsupported leaf');
    const enc = this.encrypted(path);
    if (enc || !this.o.macOnlyEncrypted) this.hash.update(plain);
    if (!enc) return v;
    return plain.length === 0 ? '' : encryptValue(plain, type, this.key, `${path.join(':')}:`);
  }
  tree(v: unknown, path: string[]): unknown {
    if (Array.isArray(v)) return v.map((x) => this.tree(x, path));
    if (v && typeof v === 'object' && !Buffer.isBuffer(v)) {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, this.tree(x, [...path, k])]));
    }
    return this.leaf(v, path);
  }
  metadata(): Record<string, unknown> {
    const lastmodified = this.o.lastModified ?? '2025-01-02T03:04:05Z';
    const mac = encryptValue(Buffer.from(this.hash.digest('hex').toUpperCase()), 'str', this.key, lastmodified);
    const age = this.o.recipients.map((r) => ({ recipient: r, enc: ageEncrypt(this.key, [r]).toString() }));
    const meta: Record<string, unknown> = this.o.keyGroups ? { key_groups: [{ age }] } : { age };
    meta.lastmodified = lastmodified;
    meta.mac = mac;
    if (this.o.macOnlyEncrypted) meta.mac_only_encrypted = true;
    if (this.o.encryptedSuffix) meta.encrypted_suffix = this.o.encryptedSuffix;
    else if (this.o.encryptedRegex) meta.encrypted_regex = this.o.encryptedRegex;
    else if (this.o.unencryptedRegex) meta.unencrypted_regex = this.o.unencryptedRegex;
    else meta.unencrypted_suffix = this.o.unencryptedSuffix ?? '_unencrypted';
    meta.version = '3.9.0';
    return meta;
  }
}

/** Encrypts a YAML or JSON tree like sops (metadata appended as the last key). */
export function sopsEncryptTree(tree: Record<string, unknown>, format: 'yaml' | 'json', o: EncryptOptions): Encrypted {
  const e = new Enc(o);
  const doc = { ...(e.tree(tree, []) as Record<string, unknown>), sops: e.metadata() };
  const text = format === 'yaml' ? stringify(doc, { indent: 4, lineWidth: 0 }) : `${JSON.stringify(doc, null, '\t')}\n`;
  return { text, dataKey: e.key };
}

/** Encrypts dotenv items like sops (values unescape/escape `\n`; metadata flattened into sops_* lines). */
export function sopsEncryptDotenv(
  items: ({ key: string; value: string } | { comment: string })[],
  o: EncryptOptions,
): Encrypted {
  const e = new Enc(o);
  const lines: string[] = [];
  for (const item of items) {
    if ('comment' in item) {
      lines.push(`#${encryptValue(Buffer.from(item.comment), 'comment', e.key, ':')}`);
      continue;
    }
    const v = e.leaf(item.value, [item.key]) as string;
    lines.push(`${item.key}=${v.replaceAll('\n', '\\n')}`);
  }
  const meta = e.metadata();
  const flat: [string, string][] = [];
  const walk = (v: unknown, prefix: string): void => {
    if (Array.isArray(v)) v.forEach((x, i) => walk(x, `${prefix}__list_${i}`));
    else if (v && typeof v === 'object')
      for (const [k, x] of Object.entries(v)) walk(x, prefix === 'sops_' ? `${prefix}${k}` : `${prefix}__map_${k}`);
    else flat.push([prefix, String(v)]);
  };
  walk(meta, 'sops_');
  for (const [k, v] of flat.sort(([a], [b]) => (a < b ? -1 : 1))) lines.push(`${k}=${v.replaceAll('\n', '\\n')}`);
  return { text: `${lines.join('\n')}\n`, dataKey: e.key };
}

/** Encrypts raw bytes into sops' binary (JSON envelope) store. */
export function sopsEncryptBinary(data: Buffer, o: EncryptOptions): Encrypted {
  const e = new Enc(o);
  const doc = { data: e.leaf(data, ['data']), sops: e.metadata() };
  return { text: `${JSON.stringify(doc, null, '\t')}\n`, dataKey: e.key };
}
