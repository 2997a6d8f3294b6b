/**
 * @module Makes isomorphic-git write pack indexes (.idx, after every clone or fetch) in linear time. Its
 * `GitPackIndex.toBuffer` fills the 256 fan-out entries by scanning all object ids 256 times (7,500 objects: 1.9
 * million string parses, ~5 % of a full clone). The class is not exported, so its prototype is reached through the
 * pack-index cache of one `readObject` on an in-memory repository holding an empty pack index, and only `toBuffer` is
 * replaced, with one that counts the ids once and writes the same bytes. It is installed only when the prototype has
 * the expected shape and the replacement gives byte-identical output to the original on a sample index; otherwise
 * isomorphic-git keeps its own. No patch of node_modules.
 */
import { createHash } from 'node:crypto';
import git from 'isomorphic-git';

/** The fields of isomorphic-git's GitPackIndex that `toBuffer` reads. */
interface PackIndexFields {
  hashes: string[];
  crcs: Record<string, number>;
  offsets: Map<string, number>;
  packfileSha: string;
}
type ToBuffer = (this: PackIndexFields) => Promise<Buffer>;
interface PackIndexPrototype {
  toBuffer: ToBuffer & { shiparrLinear?: true };
}

/** Same layout as isomorphic-git's `toBuffer` (pack index v2): header, fan-out, ids, CRCs, offsets, pack sha, sha. */
export async function packIndexToBuffer(this: PackIndexFields): Promise<Buffer> {
  const { hashes, crcs, offsets } = this;
  const n = hashes.length;
  const buf = Buffer.alloc(8 + 256 * 4 + n * 28 + 40);
  buf.write('ff744f6300000002', 0, 'hex');
  const counts = new Uint32Array(256);
  // An id whose first byte does not parse is counted in no fan-out entry, as the original does.
  for (const hash of hashes) {
    const first = parseInt(hash.slice(0, 2), 16);
    if (first >= 0 && first <= 255) counts[first]!++;
  }
  let pos = 8;
  let total = 0;
  for (let i = 0; i < 256; i++) {
    total += counts[i]!;
    buf.writeUInt32BE(total, pos);
    pos += 4;
  }
  for (const hash of hashes) pos += buf.write(hash, pos, 'hex');
  for (const hash of hashes) pos = buf.writeUInt32BE(crcs[hash] as number, pos);
  for (const hash of hashes) pos = buf.writeUInt32BE(offsets.get(hash) as number, pos);
  pos += buf.write(this.packfileSha, pos, 'hex');
  const body = buf.subarray(0, pos);
  const sha = createHash('sha1').update(body).digest();
  return Buffer.concat([body, sha]);
}

/** An empty pack index (v2: header, 256 zero fan-out entries, pack sha, index sha). */
function emptyPackIndex(): Buffer {
  const body = Buffer.concat([Buffer.from('ff744f6300000002', 'hex'), Buffer.alloc(256 * 4), Buffer.alloc(20)]);
  return Buffer.concat([body, createHash('sha1').update(body).digest()]);
}

const notFound = (p: string) => Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });

/** isomorphic-git's GitPackIndex prototype, read from the pack-index cache of a readObject on an in-memory repo. */
async function findPrototype(): Promise<unknown> {
  const idxPath = '/repo/objects/pack/pack-0.idx';
  const idx = emptyPackIndex();
  const fail = async (p: string) => {
    throw notFound(String(p));
  };
  const promises = {
    readFile: async (p: string) => {
      if (p === idxPath) return idx;
      throw notFound(p);
    },
    readdir: async (p: string) => {
      if (p === '/repo/objects/pack') return ['pack-0.idx'];
      throw notFound(p);
    },
    stat: async (p: string) => {
      if (p === '/repo') return { isDirectory: () => true, isFile: () => false };
      throw notFound(p);
    },
    lstat: fail,
    writeFile: fail,
    mkdir: fail,
    rmdir: fail,
    unlink: fail,
    readlink: fail,
    symlink: fail,
    chmod: fail,
  };
  const cache: Record<symbol, unknown> = {};
  await git.readObject({ fs: { promises }, gitdir: '/repo', oid: '0'.repeat(40), cache }).catch(() => undefined);
  const sym = Object.getOwnPropertySymbols(cache).find((s) => s.description === 'PackfileCache');
  const packs = sym ? cache[sym] : undefined;
  if (!(packs instanceof Map)) return null;
  const index: unknown = await packs.get(idxPath);
  if (typeof index !== 'object' || index === null) return null;
  const proto: unknown = Object.getPrototypeOf(index);
  return proto;
}

/** A small index with every fan-out bucket shape (empty, repeated, first and last byte) to compare both writers on. */
function sampleIndex(): PackIndexFields {
  const hashes = ['00', '00', '01', '7f', 'a0', 'ff'].map((p, i) =>
    (p + createHash('sha1').update(String(i)).digest('hex')).slice(0, 40),
  );
  hashes.sort();
  return {
    hashes,
    crcs: Object.fromEntries(hashes.map((h, i) => [h, 0xfffffff0 + i])),
    offsets: new Map(hashes.map((h, i) => [h, 12 + i * 1000])),
    packfileSha: createHash('sha1').update('pack').digest('hex'),
  };
}

/**
 * Replaces `proto.toBuffer` with {@link packIndexToBuffer} when it is a function that writes the same bytes on a
 * sample index; else leaves it alone and returns false. Never throws.
 */
export async function replaceToBuffer(proto: unknown): Promise<boolean> {
  try {
    if (typeof proto !== 'object' || proto === null) return false;
    const current = (proto as Partial<PackIndexPrototype>).toBuffer;
    if (typeof current !== 'function') return false;
    if (current.shiparrLinear) return true;
    const sample = sampleIndex();
    const [expected, actual] = await Promise.all([current.call(sample), packIndexToBuffer.call(sample)]);
    if (!Buffer.isBuffer(expected) || !expected.equals(actual)) return false;
    const linear: PackIndexPrototype['toBuffer'] = function toBuffer(this: PackIndexFields) {
      return packIndexToBuffer.call(this);
    };
    linear.shiparrLinear = true;
    (proto as PackIndexPrototype).toBuffer = linear;
    return true;
  } catch {
    return false;
  }
}

let installed: Promise<boolean> | undefined;

/**
 * Installs {@link packIndexToBuffer} as isomorphic-git's `GitPackIndex.prototype.toBuffer` (idempotent; never throws).
 * Resolves false when the prototype cannot be found or the two writers disagree on the sample: then nothing is
 * replaced.
 */
export function useLinearPackIndex(): Promise<boolean> {
  installed ??= findPrototype()
    .then(replaceToBuffer)
    .catch(() => false);
  return installed;
}
