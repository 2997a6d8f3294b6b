/**
 * @module Refused requests with large bodies: the client gets its status (401, 404, 405, 413, 415, 429) over real
 * TCP, with no EPIPE/ECONNRESET, even when it writes its whole 2 MB body before reading. The server drains up to
 * the body limit and then closes gracefully; below the limit the connection stays usable.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { BODY_LIMIT } from '../../../src/http/body.ts';
import { basic, serve, type Served } from './fakes.ts';

const PASSWORD = 'drain-test-password';
const AUTH = `Authorization: ${basic('admin', PASSWORD)}\r\n`;
const TWO_MB = 2 * 1024 * 1024;

interface Exchange {
  /** Everything the server sent. */
  answer: string;
  /** The socket error the client saw, if any. */
  error: string | null;
  /** The server ended the connection (FIN) rather than the client giving up. */
  serverClosed: boolean;
}

/**
 * Writes the request head and the whole body, then reads until the server closes (or `keepOpenMs` passes for a
 * connection that stays open). Resolves with what arrived and any socket error.
 */
function exchange(s: Served, head: string, body: Buffer, opts: { chunked?: boolean; from?: string } = {}) {
  const url = new URL(s.url);
  return new Promise<Exchange>((resolve) => {
    const sock = connect({ port: Number(url.port), host: url.hostname, localAddress: opts.from });
    let answer = '';
    let error: string | null = null;
    let serverClosed = false;
    sock.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    sock.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? e.message));
    sock.on('end', () => {
      serverClosed = true;
      sock.end();
    });
    sock.on('close', () => resolve({ answer, error, serverClosed }));
    sock.setTimeout(15_000, () => sock.destroy());
    const framing = opts.chunked ? 'Transfer-Encoding: chunked' : `Content-Length: ${body.length}`;
    sock.write(`${head}\r\nHost: test\r\n${framing}\r\n\r\n`);
    if (opts.chunked) {
      sock.write(`${body.length.toString(16)}\r\n`);
      sock.write(body);
      sock.write('\r\n0\r\n\r\n');
    } else sock.write(body);
  });
}

describe('large bodies sent to refused routes', () => {
  let s: Served;
  before(async () => {
    s = await serve({ auth: { enabled: true, username: 'admin', password: PASSWORD } });
  });
  after(() => s.close());

  const json = 'Content-Type: application/json';
  const cases: { head: string; status: number; chunked?: boolean }[] = [
    // Unknown paths.
    { head: `POST /nope HTTP/1.1\r\n${json}`, status: 404 },
    { head: `PUT /api/unknown/deeper HTTP/1.1\r\n${json}`, status: 404, chunked: true },
    { head: `POST /api/webhooks/bitbucket HTTP/1.1\r\n${json}`, status: 404 },
    { head: `DELETE /%2e%2e/etc/passwd HTTP/1.1\r\n${json}`, status: 404 },
    // Wrong methods on known paths.
    { head: `PUT /api/health HTTP/1.1\r\n${json}`, status: 405 },
    { head: `DELETE /metrics HTTP/1.1\r\n${json}`, status: 405, chunked: true },
    { head: `PATCH /api/repositories HTTP/1.1\r\n${json}`, status: 405 },
    { head: `PROPFIND /api/projects HTTP/1.1\r\n${json}`, status: 405 },
    // Unauthenticated.
    { head: `POST /api/reload HTTP/1.1\r\n${json}`, status: 401 },
    { head: `POST /api/repositories/1/deploy HTTP/1.1\r\n${json}`, status: 401, chunked: true },
    { head: `POST /api/repositories/1/suspend HTTP/1.1\r\n${json}`, status: 401 },
    { head: `GET /api/repositories HTTP/1.1\r\n${json}`, status: 401 },
    {
      head: `POST /api/repositories/1/rollback HTTP/1.1\r\n${json}\r\n${AUTH.trim().replace(/\S+$/, 'Zm9vOmJhcg==')}`,
      status: 401,
    },
    // Too large.
    { head: `POST /api/webhooks/github HTTP/1.1\r\n${json}\r\nX-GitHub-Event: push`, status: 413 },
    { head: `POST /api/webhooks/generic HTTP/1.1\r\n${json}`, status: 413, chunked: true },
    { head: `POST /api/repositories/1/deploy HTTP/1.1\r\n${json}\r\n${AUTH.trim()}`, status: 413 },
    { head: `POST /api/repositories/1/rollback HTTP/1.1\r\n${json}\r\n${AUTH.trim()}`, status: 413, chunked: true },
    // Wrong content type.
    { head: `POST /api/repositories/1/rollback HTTP/1.1\r\nContent-Type: text/plain\r\n${AUTH.trim()}`, status: 415 },
    {
      head: `POST /api/repositories/1/deploy HTTP/1.1\r\nContent-Type: application/xml\r\n${AUTH.trim()}`,
      status: 415,
      chunked: true,
    },
    { head: `POST /api/webhooks/gitea HTTP/1.1\r\nContent-Type: text/plain\r\nX-Gitea-Event: push`, status: 413 },
  ];

  test(`2 MB bodies to ${cases.length} refused routes: each status arrives, no reset, then a graceful close`, async () => {
    assert.ok(cases.length >= 20);
    const body = Buffer.alloc(TWO_MB, 0x7b);
    const failures: string[] = [];
    for (const c of cases) {
      const r = await exchange(s, c.head, body, { chunked: c.chunked });
      const line = r.answer.split('\r\n', 1)[0] ?? '';
      const label = `${c.head.split('\r\n', 1)[0]}${c.chunked ? ' (chunked)' : ''}`;
      if (!line.startsWith(`HTTP/1.1 ${c.status} `)) failures.push(`${label}: got "${line}" (error ${r.error})`);
      else if (r.error !== null) failures.push(`${label}: ${c.status} arrived, then ${r.error}`);
      else if (!r.serverClosed) failures.push(`${label}: the server did not close the connection`);
      else if (!/\r\n\r\n\{"error":\{"code":"[A-Z_]+"/.test(r.answer)) failures.push(`${label}: no JSON error body`);
    }
    assert.deepEqual(failures, []);
    assert.equal((await fetch(`${s.url}/api/health`)).status, 200);
  });

  test('a blocked address gets its 429 the same way', async () => {
    const from = '127.0.0.7';
    for (let i = 0; i < 20; i++) {
      const r = await exchange(s, `GET /api/repositories HTTP/1.1\r\nConnection: close`, Buffer.alloc(0), { from });
      assert.match(r.answer, /^HTTP\/1\.1 401 /);
    }
    const r = await exchange(
      s,
      `POST /api/repositories/1/deploy HTTP/1.1\r\n${json}\r\n${AUTH.trim()}`,
      Buffer.alloc(TWO_MB, 0x20),
      {
        from,
      },
    );
    assert.match(r.answer, /^HTTP\/1\.1 429 /);
    assert.match(r.answer, /\r\nRetry-After: \d+\r\n/i);
    assert.equal(r.error, null);
  });

  test('a body within the limit is drained and the connection stays usable (keep-alive)', async () => {
    const url = new URL(s.url);
    const sock = connect(Number(url.port), url.hostname);
    let got = '';
    sock.on('data', (d: Buffer) => (got += d.toString('latin1')));
    const body = Buffer.alloc(BODY_LIMIT - 1, 0x41);
    sock.write(`POST /nope HTTP/1.1\r\nHost: t\r\nContent-Length: ${body.length}\r\n\r\n`);
    sock.write(body);
    sock.write('GET /api/health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n');
    await new Promise<void>((resolve, reject) => {
      sock.on('close', () => resolve());
      sock.on('error', reject);
    });
    const statuses = [...got.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
    assert.deepEqual(statuses, [404, 200]);
  });
});
