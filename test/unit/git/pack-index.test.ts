/**
 * @module The linear pack-index writer installed into isomorphic-git: the .idx isomorphic-git writes for a real pack
 * is byte for byte the one `git index-pack` writes, and the replacement is refused (original kept) when the function
 * it would replace does not write the same bytes.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import git from 'isomorphic-git';
import { packIndexToBuffer, replaceToBuffer, useLinearPackIndex } from '../../../src/git/pack-index.ts';
import { isolatedGitEnv } from '../../helpers/git-server.ts';

interface Fields {
  hashes: string[];
  crcs: Record<string, number>;
  offsets: Map<string, number>;
  packfileSha: string;
}

/** isomorphic-git's own writer (1.x): one scan of all ids per fan-out entry. */
async function quadraticToBuffer(this: Fields): Promise<Buffer> {
  const parts: Buffer[] = [Buffer.from('ff744f6300000002', 'hex')];
  const fanout = Buffer.alloc(256 * 4);
  for (let i = 0; i < 256; i++) {
    let count = 0;
    for (const hash of this.hashes) if (parseInt(hash.slice(0, 2), 16) <= i) count++;
    fanout.writeUInt32BE(count, i * 4);
  }
  parts.push(fanout, ...this.hashes.map((h) => Buffer.from(h, 'hex')));
  const crcs = Buffer.alloc(this.hashes.length * 4);
  const offsets = Buffer.alloc(this.hashes.length * 4);
  this.hashes.forEach((h, i) => {
    crcs.writeUInt32BE(this.crcs[h] as number, i * 4);
    offsets.writeUInt32BE(this.offsets.get(h) as number, i * 4);
  });
  parts.push(crcs, offsets, Buffer.from(this.packfileSha, 'hex'));
  const body = Buffer.concat(parts);
  return Buffer.concat([body, createHash('sha1').update(body).digest()]);
}

function randomIndex(n: number): Fields {
  const hashes = Array.from({ length: n }, (_, i) => createHash('sha1').update(`object ${i}`).digest('hex')).sort();
  return {
    hashes,
    crcs: Object.fromEntries(hashes.map((h, i) => [h, (i * 2654435761) >>> 0])),
    offsets: new Map(hashes.map((h, i) => [h, 12 + i * 37])),
    packfileSha: createHash('sha1').update('pack').digest('hex'),
  };
}

describe('linear pack index writer for isomorphic-git', () => {
  let tmp: string;
  before(async () => {
    tmp = await mkdtemp(path.join(os.tmpdir(), 'shiparr-pack-index-'));
  });
  after(async () => {
    await rm(tmp, { recursive: true, force: true });
  });

  it('writes the same bytes as the quadratic writer for 0, 1 and 3,000 objects', async () => {
    for (const n of [0, 1, 3000]) {
      const idx = randomIndex(n);
      assert.deepEqual(await packIndexToBuffer.call(idx), await quadraticToBuffer.call(idx), `${n} objects`);
    }
  });

  it('is installed into isomorphic-git (idempotent), and its .idx of a real pack is the one git writes', async () => {
    assert.equal(await useLinearPackIndex(), true);
    assert.equal(await useLinearPackIndex(), true);
    const env = isolatedGitEnv(tmp);
    const src = path.join(tmp, 'src');
    await mkdir(src);
    const run = (args: string[], cwd = src) => execFileSync('git', args, { cwd, env, encoding: 'utf8' });
    run(['init', '--quiet']);
    for (let i = 0; i < 600; i++) await writeFile(path.join(src, `f${i}.txt`), `file ${i}\n`);
    run(['add', '.']);
    run(['-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '--quiet', '-m', 'c']);
    run(['repack', '-a', '-d', '--quiet']);
    const packDir = path.join(src, '.git', 'objects', 'pack');
    const pack = (await readdir(packDir)).find((f) => f.endsWith('.pack'));
    assert.ok(pack);
    const dst = path.join(tmp, 'dst');
    await mkdir(path.join(dst, '.git', 'objects', 'pack'), { recursive: true });
    await copyFile(path.join(packDir, pack), path.join(dst, '.git', 'objects', 'pack', pack));
    const { oids } = await git.indexPack({ fs, dir: dst, filepath: `.git/objects/pack/${pack}` });
    assert.equal(oids.length, 602); // 600 blobs, a tree, a commit
    const idx = pack.replace(/\.pack$/, '.idx');
    assert.deepEqual(
      await readFile(path.join(dst, '.git', 'objects', 'pack', idx)),
      await readFile(path.join(packDir, idx)),
    );
  });

  it('leaves a function that writes other bytes (or no function) alone', async () => {
    const other = async () => Buffer.from('something else');
    const proto = { toBuffer: other };
    assert.equal(await replaceToBuffer(proto), false);
    assert.equal(proto.toBuffer, other);
    const throwing = {
      toBuffer: async () => {
        throw new Error('boom');
      },
    };
    assert.equal(await replaceToBuffer(throwing), false);
    assert.equal(await replaceToBuffer({}), false);
    assert.equal(await replaceToBuffer(null), false);
  });

  it('replaces a function that writes the same bytes, on that prototype only', async () => {
    class Index {
      constructor(fields: Fields) {
        Object.assign(this, fields);
      }
    }
    const proto = Index.prototype as unknown as { toBuffer: (this: Fields) => Promise<Buffer> };
    proto.toBuffer = quadraticToBuffer;
    assert.equal(await replaceToBuffer(proto), true);
    assert.notEqual(proto.toBuffer, quadraticToBuffer);
    const fields = randomIndex(500);
    const idx = new Index(fields) as unknown as Fields & { toBuffer(): Promise<Buffer> };
    assert.deepEqual(await idx.toBuffer(), await quadraticToBuffer.call(fields));
    assert.equal(await replaceToBuffer(proto), true); // already replaced
  });
});
