/**
 * @module The native inflate installed into isomorphic-git's pako: same results and pako's contract (how much input an
 * object used, streams continued over several pushes, corrupt data as a thrown string), on the pako instance
 * isomorphic-git itself loads.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import zlib from 'node:zlib';
import { useNativeInflate } from '../../../src/git/native-inflate.ts';

interface Inflator {
  result: Uint8Array | false | undefined | null;
  err: number;
  strm: { avail_in: number };
  push(data: Uint8Array, mode?: boolean): boolean;
}
const pako = createRequire(createRequire(import.meta.url).resolve('isomorphic-git'))('pako') as {
  inflate(d: Uint8Array): Uint8Array;
  Inflate: new () => Inflator;
};

/** The inflated bytes (fails when the stream has not ended). */
function output(i: Inflator): Buffer {
  assert.ok(i.result instanceof Uint8Array, 'inflated');
  return Buffer.from(i.result);
}

describe('native inflate for isomorphic-git', () => {
  const original = { inflate: pako.inflate, Inflate: pako.Inflate };
  const big = Buffer.from(Array.from({ length: 20_000 }, (_, i) => `line ${i} ${(i * 7919) % 104729}\n`).join(''));
  const a = zlib.deflateSync(big);
  const b = zlib.deflateSync(Buffer.from('next object'));

  it('replaces pako.inflate / pako.Inflate once (idempotent)', () => {
    assert.equal(useNativeInflate(), true);
    assert.equal(useNativeInflate(), true);
    assert.notEqual(pako.inflate, original.inflate);
    assert.notEqual(pako.Inflate, original.Inflate);
  });

  it('inflates one object followed by other bytes, reporting the unused input like pako', () => {
    assert.deepEqual(Buffer.from(pako.inflate(Buffer.concat([a, b]))), big);
    for (const Impl of [original.Inflate, pako.Inflate]) {
      const inf = new Impl();
      inf.push(Buffer.concat([a, b]), false);
      assert.equal(inf.err, 0);
      assert.deepEqual(output(inf), big);
      assert.equal(inf.strm.avail_in, b.length, Impl.name);
    }
  });

  it('a stream split over several pushes still inflates (pako takes over for that object)', () => {
    const inf = new pako.Inflate();
    const cut = Math.floor(a.length / 3);
    inf.push(a.subarray(0, cut), false);
    assert.ok(!inf.result);
    inf.push(a.subarray(cut, 2 * cut), false);
    assert.ok(!inf.result);
    inf.push(Buffer.concat([a.subarray(2 * cut), b]), false);
    assert.deepEqual(output(inf), big);
    assert.equal(inf.strm.avail_in, b.length);
  });

  it('corrupt data: a thrown string from inflate, an error code from Inflate', () => {
    const bad = Buffer.from(a);
    bad[10] = bad[10]! ^ 0xff;
    bad[11] = bad[11]! ^ 0xff;
    assert.throws(
      () => pako.inflate(bad),
      (e: unknown) => typeof e === 'string' && e.length > 0,
    );
    const inf = new pako.Inflate();
    inf.push(Buffer.from([0x78, 0x9c, 0xff, 0xff, 0xff, 0xff]), false);
    assert.notEqual(inf.err, 0);
    assert.ok(!inf.result);
  });
});
