/**
 * @module The dependency patches in patches/ are applied: isomorphic-git inflates pack objects with Node's zlib. A
 * missing `postinstall` (or an upgrade that silently dropped the patch) fails here instead of only being slower.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { deflateSync, inflateSync } from 'node:zlib';

const require = createRequire(import.meta.url);

test('the isomorphic-git patch matches the installed version and is applied', () => {
  const main = require.resolve('isomorphic-git');
  const pkg = JSON.parse(readFileSync(path.join(path.dirname(main), 'package.json'), 'utf8')) as { version: string };
  const version = pkg.version;
  const patches = readdirSync('patches').filter((f) => f.startsWith('isomorphic-git+'));
  assert.deepEqual(patches, [`isomorphic-git+${version}.patch`], 'one patch, for the installed version');
  const source = readFileSync(main, 'utf8');
  assert.match(source, /zlib\.inflateSync\(rest, \{ info: true \}\)/, 'listpack inflates natively');
  assert.match(source, /: zlib\.inflateSync\(buffer\)/, 'inflate() uses zlib');
});

test('native inflation reports the input it used, which the pack parser relies on', () => {
  const first = deflateSync(Buffer.from('object one '.repeat(50)));
  const rest = Buffer.concat([first, deflateSync(Buffer.from('object two'))]);
  const r = inflateSync(rest, { info: true }) as unknown as { buffer: Buffer; engine: { bytesWritten: number } };
  assert.equal(r.buffer.toString(), 'object one '.repeat(50));
  assert.equal(r.engine.bytesWritten, first.length);
});
