/**
 * @module A commit missing from a shallow checkout (a rollback target) against a real git http-backend: fetched by
 * its hash when the server allows it, by deepening the history when it refuses.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { syncCheckout } from '../../../src/git/sync.ts';
import { syncSuite } from '../../helpers/sync-suite.ts';

const run = promisify(execFile);

describe('git sync of a commit outside the shallow history', () => {
  const fx = syncSuite('shiparr-by-hash-');

  /** A repository with four commits and a depth-1 checkout of its head. */
  const setup = async (name: string) => {
    await fx.server.createRepo(name, { 'f.txt': 'zero\n' });
    const c1 = await fx.server.commit(name, { 'f.txt': 'one\n' });
    const c2 = await fx.server.commit(name, { 'f.txt': 'two\n' });
    const c3 = await fx.server.commit(name, { 'f.txt': 'three\n' });
    const dir = fx.newDir();
    const head = await syncCheckout(fx.input(name, dir));
    assert.equal(head.commit, c3);
    assert.equal(head.fetched, undefined, 'the head needs no extra fetch');
    assert.ok(existsSync(path.join(dir, '.git', 'shallow')));
    return { c1, c2, dir };
  };

  test('allowed by the server: only that commit is fetched (depth 1), by its hash', async () => {
    const { c1, c2, dir } = await setup('allowed');
    const r = await syncCheckout(fx.input('allowed', dir, { commit: c1 }));
    assert.equal(r.commit, c1);
    assert.equal(r.fetched, 'by-hash');
    assert.equal(await readFile(path.join(dir, 'f.txt'), 'utf8'), 'one\n');
    // Depth 1: c1 is a new shallow boundary, and the commit between c1 and the head was never fetched.
    assert.match(await readFile(path.join(dir, '.git', 'shallow'), 'utf8'), new RegExp(c1));
    await assert.rejects(run('git', ['-C', dir, 'cat-file', '-e', `${c2}^{commit}`]), 'c2 is not in the checkout');
  });

  test('refused by the server: the history is deepened until the commit is there', async (t) => {
    const { c1, dir } = await setup('refused');
    // git http-backend (stateless RPC) sends any commit reachable from a ref, whatever uploadpack.* says; servers that
    // do not (older git over other transports, some hosted mirrors) answer "not our ref". A proxy in front answers so
    // to a request that wants c1 itself, and passes everything else through to the real server.
    const wantsOf = (body: string) => [...body.matchAll(/want ([0-9a-f]{40})/g)].map((m) => m[1]);
    let refused = 0;
    const proxy = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        if (req.method === 'POST' && wantsOf(body.toString('latin1')).includes(c1)) {
          refused++;
          const line = `ERR upload-pack: not our ref ${c1}\n`;
          res.writeHead(200, { 'content-type': 'application/x-git-upload-pack-result' });
          res.end(`${(line.length + 4).toString(16).padStart(4, '0')}${line}`);
          return;
        }
        const up = request(
          `${fx.server.baseUrl}${req.url ?? '/'}`,
          { method: req.method, headers: { ...req.headers, host: new URL(fx.server.baseUrl).host } },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        up.on('error', () => res.destroy());
        up.end(body);
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => proxy.close(() => resolve())));
    const port = (proxy.address() as AddressInfo).port;
    const url = `http://127.0.0.1:${port}/refused.git`;
    const r = await syncCheckout(fx.input('refused', dir, { commit: c1, url }));
    assert.equal(refused, 1, 'the fetch by hash was asked for, and refused');
    assert.equal(r.commit, c1);
    assert.equal(r.fetched, 'deepened');
    assert.equal(await readFile(path.join(dir, 'f.txt'), 'utf8'), 'one\n');
  });

  test('an abbreviated sha cannot be asked for: deepened', async () => {
    const { c1, dir } = await setup('abbrev');
    const r = await syncCheckout(fx.input('abbrev', dir, { commit: c1.slice(0, 10) }));
    assert.equal(r.commit, c1);
    assert.equal(r.fetched, 'deepened');
  });
});
