/**
 * @module Webhooks refuse without an oracle (an unknown repository, an undeployed branch and a bad signature get
 * byte-identical answers for every provider) and cap deliveries in flight (503 + Retry-After beyond the cap).
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { describe, test } from 'node:test';
import { signatureHeaders, type Provider } from '../../../src/http/webhooks.ts';
import { until } from '../../helpers/wait.ts';
import { captureLogger, serve, world } from './fakes.ts';

const SECRET = 'oracle-test-secret';
const GLOBAL = 'oracle-global-secret';

function push(provider: Provider, url: string, branch = 'main'): string {
  const ref = `refs/heads/${branch}`;
  if (provider === 'gitlab') return JSON.stringify({ ref, project: { git_http_url: url } });
  if (provider === 'generic') return JSON.stringify({ url, branch });
  return JSON.stringify({ ref, repository: { clone_url: url } });
}

const EVENT: Record<Provider, Record<string, string>> = {
  github: { 'x-github-event': 'push' },
  gitlab: { 'x-gitlab-event': 'Push Hook' },
  gitea: { 'x-gitea-event': 'push' },
  generic: {},
};

describe('webhook refusals say nothing about what is deployed', () => {
  for (const globalSecret of [undefined, GLOBAL]) {
    test(`unknown repository = undeployed branch = bad signature (global secret ${globalSecret ? 'set' : 'unset'})`, async () => {
      const w = world();
      w.supervisor.targets = [
        { key: 'homelab/media-stack', url: 'github.com/acme/media-stack', branch: 'main', webhookSecret: SECRET },
      ];
      const { log, lines } = captureLogger();
      const s = await serve({ ...w, log, webhookSecret: globalSecret, limits: { authMaxFailures: 1000 } });
      try {
        for (const provider of ['github', 'gitlab', 'gitea', 'generic'] as const) {
          const post = async (body: string, secret: string | null) => {
            const res = await fetch(`${s.url}/api/webhooks/${provider}`, {
              method: 'POST',
              headers: {
                'content-type': 'application/json',
                ...EVENT[provider],
                ...(secret === null ? {} : signatureHeaders(provider, body, secret)),
              },
              body,
            });
            return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
          };
          const deployed = push(provider, 'https://github.com/acme/media-stack.git');
          const unknown = push(provider, 'https://github.com/acme/not-deployed-here.git');
          const otherBranch = push(provider, 'https://github.com/acme/media-stack.git', 'feature');
          const reference = await post(deployed, 'wrong-secret');
          assert.equal(reference.status, 401, provider);
          for (const [what, answer] of [
            ['deployed, unsigned', await post(deployed, null)],
            ['unknown, unsigned', await post(unknown, null)],
            ['unknown, signed with a guess', await post(unknown, 'wrong-secret')],
            ['unknown, signed with the secret of another repository', await post(unknown, SECRET)],
            ['other branch, unsigned', await post(otherBranch, null)],
          ] as const)
            assert.deepEqual(answer, reference, `${provider}: ${what}`);
          // Whoever holds a secret learns the truth.
          assert.equal((await post(deployed, SECRET)).status, 202, provider);
          assert.equal((await post(otherBranch, SECRET)).body, '{"matched":[]}', provider);
          if (globalSecret) assert.equal((await post(unknown, globalSecret)).body, '{"matched":[]}', provider);
        }
        assert.ok(!JSON.stringify(lines).includes(SECRET) && !JSON.stringify(lines).includes(GLOBAL));
      } finally {
        await s.close();
      }
    });
  }
});

/** Starts a delivery whose body never completes: it holds a slot until `finish` is called. */
function stuckDelivery(url: string, body: string): { socket: Socket; finish(): Promise<string> } {
  const u = new URL(url);
  const socket = connect(Number(u.port), u.hostname);
  const half = Math.floor(body.length / 2);
  socket.write(
    `POST /api/webhooks/generic HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body.slice(0, half)}`,
  );
  let got = '';
  socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
  const closed = new Promise<string>((resolve) => socket.on('close', () => resolve(got)));
  return {
    socket,
    finish() {
      socket.write(body.slice(half));
      return closed;
    },
  };
}

describe('webhook deliveries in flight', () => {
  test('beyond SHIPARR_MAX_WEBHOOKS_IN_FLIGHT → 503 with Retry-After; slots free up when deliveries end', async () => {
    const w = world();
    w.supervisor.targets = [
      { key: 'homelab/media-stack', url: 'github.com/acme/media-stack', branch: 'main', webhookSecret: SECRET },
    ];
    const { log, lines } = captureLogger();
    const s = await serve({ ...w, log, limits: { maxWebhooksInFlight: 2 } });
    const body = push('generic', 'https://github.com/acme/media-stack.git');
    const signed = signatureHeaders('generic', body, SECRET);
    const deliver = () =>
      fetch(`${s.url}/api/webhooks/generic`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signed },
        body,
      });
    const stuck = [stuckDelivery(s.url, body), stuckDelivery(s.url, body)];
    try {
      const busy = await until(async () => {
        const res = await deliver();
        return res.status === 503 ? res : null;
      }, 'the third delivery to be refused');
      assert.ok(Number(busy.headers.get('retry-after')) >= 1, 'Retry-After');
      assert.equal(((await busy.json()) as { error: { code: string } }).error.code, 'SERVICE_UNAVAILABLE');
      // The stuck ones were not signed in their headers: they end in 401 once their bodies arrive.
      const answers = await Promise.all(stuck.map((d) => d.finish()));
      for (const a of answers) assert.match(a, /^HTTP\/1\.1 401 /);
      const ok = await deliver();
      assert.equal(ok.status, 202);
      assert.deepEqual(await ok.json(), { matched: ['homelab/media-stack'] });
      assert.deepEqual(
        lines.filter((l) => l['msg'] === 'http request failed'),
        [],
        'a 503 refusal is not logged as a server error',
      );
    } finally {
      for (const d of stuck) d.socket.destroy();
      await s.close();
    }
  });
});
