/** @module Webhooks: every provider's signature scheme, URL/branch matching, pings, refusals and the body limit. */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { request } from 'node:http';
import { after, before, beforeEach, describe, test } from 'node:test';
import { BODY_LIMIT } from '../../../src/http/body.ts';
import { normaliseRepoUrl, sameRepository } from '../../../src/lib/git-url.ts';
import {
  branchFromRef,
  decodeBody,
  deliveryIdOf,
  extractPush,
  signatureHeaders,
  signedBytes,
  verifySignature,
  type Provider,
} from '../../../src/http/webhooks.ts';
import { captureLogger, type FakeSupervisor, serve, type Served, world } from './fakes.ts';

const REPO_SECRET = 'media-secret-1';
const GLOBAL_SECRET = 'global-secret-2';

function payload(provider: Provider, url: string, ref = 'refs/heads/main'): string {
  switch (provider) {
    case 'github':
      return JSON.stringify({
        ref,
        repository: { clone_url: url, html_url: url.replace(/\.git$/, ''), ssh_url: 'git@github.com:acme/x.git' },
      });
    case 'gitlab':
      return JSON.stringify({
        object_kind: 'push',
        ref,
        project: { git_http_url: url, web_url: url.replace(/\.git$/, '') },
      });
    case 'gitea':
      return JSON.stringify({ ref, repository: { clone_url: url, html_url: url.replace(/\.git$/, '') } });
    default:
      return JSON.stringify({ url, branch: ref.replace('refs/heads/', '') });
  }
}

const FORGEJO_SECRET = 'forgejo-secret-3';

/**
 * Go's url.QueryEscape, which url.Values.Encode applies to every value: bytes of A-Z a-z 0-9 - _ . ~ stay, a space
 * becomes '+', every other byte (UTF-8 included) becomes %XX with upper-case hex (net/url shouldEscape,
 * encodeQueryComponent). Unlike encodeURIComponent and URLSearchParams it escapes * ! ' ( ) and keeps ~.
 */
function goQueryEscape(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    if (/[A-Za-z0-9\-_.~]/.test(c)) out += c;
    else if (c === ' ') out += '+';
    else out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * A push as Gitea's "Gitea" hook type stores it: api.PushPayload through json.MarshalIndent(p, "", "  ") (struct field
 * order, HTML characters escaped as \u003c \u003e \u0026, other non-ASCII as raw UTF-8). Trimmed to a few fields.
 */
const GITEA_PUSH = String.raw`{
  "ref": "refs/heads/prod",
  "before": "6dcb09b5b57875f334f61aebed695e2e4193db5e",
  "after": "7fd1a60b01f91b314f59955a4e4d4e80d8edf11d",
  "compare_url": "https://gitea.example/acme/web/compare/6dcb09b5b57875f334f61aebed695e2e4193db5e...7fd1a60b01f91b314f59955a4e4d4e80d8edf11d",
  "commits": [
    {
      "id": "7fd1a60b01f91b314f59955a4e4d4e80d8edf11d",
      "message": "Café menu: 100% + \u003cbeta\u003e \u0026 ~tilde → prod (a*b=c; x/y?z)\n",
      "url": "https://gitea.example/acme/web/commit/7fd1a60b01f91b314f59955a4e4d4e80d8edf11d",
      "author": {
        "name": "Zoë Dev",
        "email": "zoe@gitea.example",
        "username": "zoe"
      }
    }
  ],
  "total_commits": 1,
  "repository": {
    "id": 7,
    "name": "web",
    "full_name": "acme/web",
    "html_url": "https://gitea.example/acme/web",
    "ssh_url": "git@gitea.example:acme/web.git",
    "clone_url": "https://gitea.example/acme/web.git",
    "default_branch": "prod"
  },
  "pusher": {
    "id": 3,
    "login": "zoe",
    "full_name": "Zoë Dev"
  }
}`;

/**
 * The same kind of push from Forgejo's "Forgejo" hook type: Forgejo re-marshals push payloads through a map to add
 * `compare` (services/webhook/default.go, addCompatCompareUrl), so every object's keys come out sorted.
 */
const FORGEJO_PUSH = String.raw`{
  "after": "0a6d2c1e9b8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b",
  "before": "1b2c3d4e5f60718293a4b5c6d7e8f90123456789",
  "commits": [
    {
      "id": "0a6d2c1e9b8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b",
      "message": "Härte + Tests: 'quote' \u0026 *stars* → main\n"
    }
  ],
  "compare": "https://codeberg.org/acme/forge/compare/1b2c3d4e5f60718293a4b5c6d7e8f90123456789...0a6d2c1e9b8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b",
  "compare_url": "https://codeberg.org/acme/forge/compare/1b2c3d4e5f60718293a4b5c6d7e8f90123456789...0a6d2c1e9b8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b",
  "ref": "refs/heads/main",
  "repository": {
    "clone_url": "https://codeberg.org/acme/forge.git",
    "full_name": "acme/forge",
    "html_url": "https://codeberg.org/acme/forge",
    "id": 42,
    "name": "forge",
    "ssh_url": "git@codeberg.org:acme/forge.git"
  },
  "total_commits": 1
}`;

type Forge = 'gitea' | 'forgejo';
type Encoding = 'json' | 'form';

/**
 * A delivery built the way Gitea (services/webhook/deliver.go) and Forgejo (services/webhook/default.go and
 * shared/payloader.go) build it: the HMACs are computed over the JSON payload, then the payload is sent either as
 * the body (application/json) or as url.Values{"payload": {json}}.Encode() (application/x-www-form-urlencoded).
 * Every signature header carries the same HMAC, whatever the encoding.
 */
function forgeDelivery(
  forge: Forge,
  json: string,
  secret: string,
  encoding: Encoding,
): { body: Buffer; headers: Record<string, string> } {
  const sha256 = createHmac('sha256', secret).update(json, 'utf8').digest('hex');
  const sha1 = createHmac('sha1', secret).update(json, 'utf8').digest('hex');
  const uuid = '5f0c3c2e-9d1a-4c55-8d8e-1b7a4c0e6f21';
  const headers: Record<string, string> = {
    'content-type': encoding === 'json' ? 'application/json' : 'application/x-www-form-urlencoded',
    'user-agent': 'Go-http-client/1.1',
  };
  if (forge === 'forgejo') {
    Object.assign(headers, {
      'x-forgejo-delivery': uuid,
      'x-forgejo-event': 'push',
      'x-forgejo-event-type': 'push',
      'x-forgejo-signature': sha256,
    });
  }
  Object.assign(headers, {
    'x-gitea-delivery': uuid,
    'x-gitea-event': 'push',
    'x-gitea-event-type': 'push',
    'x-gitea-signature': sha256,
    'x-gogs-delivery': uuid,
    'x-gogs-event': 'push',
    'x-gogs-event-type': 'push',
    'x-gogs-signature': sha256,
    'x-hub-signature': `sha1=${sha1}`,
    'x-hub-signature-256': `sha256=${sha256}`,
    'x-github-delivery': uuid,
    'x-github-event': 'push',
    'x-github-event-type': 'push',
  });
  const body = encoding === 'json' ? json : `payload=${goQueryEscape(json)}`;
  return { body: Buffer.from(body, 'utf8'), headers };
}

const EVENT: Record<Provider, Record<string, string>> = {
  github: { 'x-github-event': 'push' },
  gitlab: { 'x-gitlab-event': 'Push Hook' },
  gitea: { 'x-gitea-event': 'push' },
  generic: {},
};

describe('webhook helpers', () => {
  test('normaliseRepoUrl', () => {
    const same = [
      'https://github.com/Acme/Media-Stack.git',
      'http://github.com/acme/media-stack/',
      'github.com/acme/media-stack',
      'git@github.com:acme/media-stack.git',
      'ssh://git@github.com:22/acme/media-stack.git',
      'https://user:tok@GitHub.com/acme/media-stack.git',
      'https://github.com:443/acme/media-stack',
      'https://github.com/acme/media-stack.git?x=1#frag',
      'https://www.github.com/acme/media-stack',
      'https://github.com./acme/media-stack.git',
    ];
    for (const u of same) assert.equal(normaliseRepoUrl(u), 'github.com/acme/media-stack', u);
    assert.equal(normaliseRepoUrl('http://localhost:3000/org/repo.git'), 'localhost:3000/org/repo');
    assert.equal(normaliseRepoUrl('localhost:3000/org/repo'), 'localhost:3000/org/repo');
    for (const bad of ['', '   ', 'a b', 'https://', '/etc/passwd']) assert.equal(normaliseRepoUrl(bad), null, bad);
    assert.equal(sameRepository('http://git.example/a/b', 'https://GIT.example/a/b.git/'), true);
    assert.equal(sameRepository('https://git.example/a/b', 'https://git.example/a/c'), false);
    assert.equal(sameRepository('', ''), false);
  });

  test('branchFromRef and extractPush', () => {
    assert.equal(branchFromRef('refs/heads/feature/x'), 'feature/x');
    assert.equal(branchFromRef('refs/tags/v1'), null);
    assert.equal(branchFromRef(42), null);
    assert.deepEqual(extractPush('gitlab', JSON.parse(payload('gitlab', 'https://gitlab.com/a/b.git'))), {
      urls: ['gitlab.com/a/b'],
      branch: 'main',
    });
    assert.deepEqual(extractPush('generic', { repository: 'git@h.io:a/b.git', ref: 'refs/heads/dev' }), {
      urls: ['h.io/a/b'],
      branch: 'dev',
    });
    assert.deepEqual(extractPush('github', 'nonsense'), { urls: [], branch: null });
  });

  test('verifySignature rejects wrong prefixes, lengths and secrets', () => {
    const body = Buffer.from('{"a":1}');
    const good = signatureHeaders('github', body, 's');
    assert.equal(verifySignature('github', good, body, 's'), true);
    assert.equal(verifySignature('github', good, body, 't'), false);
    assert.equal(verifySignature('github', good, Buffer.from('{"a":2}'), 's'), false);
    assert.equal(
      verifySignature('github', { 'x-hub-signature-256': good['x-hub-signature-256']!.slice(7) }, body, 's'),
      false,
    );
    assert.equal(verifySignature('github', { 'x-hub-signature-256': 'sha256=' }, body, 's'), false);
    assert.equal(verifySignature('gitlab', { 'x-gitlab-token': 's' }, body, ''), false);
    assert.equal(
      verifySignature(
        'gitea',
        { 'x-forgejo-signature': signatureHeaders('gitea', body, 's')['x-gitea-signature']! },
        body,
        's',
      ),
      true,
    );
  });

  test('goQueryEscape reproduces Go url.QueryEscape byte for byte', () => {
    // Expected values worked out from net/url's rules (see goQueryEscape): space → '+', ~ kept, * ' ( ) ! escaped.
    assert.equal(goQueryEscape('{\n  "a": "b c"}'), '%7B%0A++%22a%22%3A+%22b+c%22%7D');
    assert.equal(goQueryEscape("~x*y'(z)!+é→"), '~x%2Ay%27%28z%29%21%2B%C3%A9%E2%86%92');
    assert.ok(
      forgeDelivery('gitea', GITEA_PUSH, 's', 'form')
        .body.toString()
        .startsWith('payload=%7B%0A++%22ref%22%3A+%22refs%2Fheads%2Fprod%22%2C%0A'),
    );
  });

  test('decodeBody: the exact payload bytes of JSON and form bodies; signedBytes per provider', () => {
    const json = Buffer.from(GITEA_PUSH, 'utf8');
    const asJson = decodeBody('application/json', json);
    assert.ok(asJson.payload.equals(json));
    const form = forgeDelivery('gitea', GITEA_PUSH, 's', 'form').body;
    const asForm = decodeBody('application/x-www-form-urlencoded; charset=utf-8', form);
    assert.equal(asForm.encoding, 'form');
    assert.ok(asForm.payload.equals(json), 'the percent-decoded payload is byte-identical to what Gitea signed');
    assert.ok(signedBytes('gitea', asForm).equals(json));
    assert.ok(signedBytes('github', asForm).equals(form), 'GitHub signs the form body itself');
    assert.ok(signedBytes('generic', asForm).equals(form));
    assert.ok(signedBytes('gitea', asJson).equals(json));
    // Only the Content-Type decides how the body is read.
    assert.ok(decodeBody('application/json', form).payload.equals(form));
    assert.throws(() => decodeBody('text/plain', json), { status: 415 });
    assert.throws(() => decodeBody(undefined, json), { status: 415 });
    for (const bad of ['payload=%7', 'payload=%zz', 'other=1', '', 'payload=1&payload=2']) {
      assert.throws(
        () => decodeBody('application/x-www-form-urlencoded', Buffer.from(bad)),
        { status: 400, code: 'INVALID_PAYLOAD' },
        bad,
      );
    }
    assert.ok(
      decodeBody('application/x-www-form-urlencoded', Buffer.from('x=1&&payload=a+b%2B%25&y')).payload.equals(
        Buffer.from('a b+%'),
      ),
    );
  });
});

describe('POST /api/webhooks/:provider', () => {
  let s: Served;
  let sup: FakeSupervisor;
  before(async () => {
    const w = world();
    w.supervisor.targets = [
      { key: 'homelab/media-stack', url: 'github.com/acme/media-stack', branch: 'main', webhookSecret: REPO_SECRET },
      { key: 'homelab/dns', url: 'git@github.com:acme/dns.git', branch: 'main' },
      { key: 'lab/web', url: 'https://gitea.example/acme/web', branch: 'prod' },
      { key: 'lab/forge', url: 'https://codeberg.org/acme/forge.git', branch: 'main', webhookSecret: FORGEJO_SECRET },
    ];
    // Many refused deliveries from one address: the failed-authentication limiter is tested in limits-*.test.ts.
    s = await serve({ ...w, webhookSecret: GLOBAL_SECRET, limits: { authMaxFailures: 1_000_000 } });
    sup = w.supervisor;
  });
  after(() => s.close());
  beforeEach(() => {
    sup.calls = [];
  });

  const post = (provider: string, body: string | Buffer, headers: Record<string, string> = {}) =>
    fetch(`${s.url}/api/webhooks/${provider}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });

  for (const provider of ['github', 'gitlab', 'gitea', 'generic'] as const) {
    test(`${provider}: a valid signature triggers a check of the matching repository`, async () => {
      const body = payload(provider, 'https://github.com/acme/media-stack.git');
      const res = await post(provider, body, { ...EVENT[provider], ...signatureHeaders(provider, body, REPO_SECRET) });
      assert.equal(res.status, 202);
      assert.deepEqual(await res.json(), { matched: ['homelab/media-stack'] });
      assert.deepEqual(sup.callsOf('check'), [{ method: 'check', key: 'homelab/media-stack', opts: 'webhook' }]);
    });

    test(`${provider}: an invalid or missing signature → 401 and no check`, async () => {
      const body = payload(provider, 'https://github.com/acme/media-stack.git');
      const wrong = await post(provider, body, {
        ...EVENT[provider],
        ...signatureHeaders(provider, body, 'not-the-secret'),
      });
      assert.equal(wrong.status, 401);
      assert.equal(((await wrong.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
      const missing = await post(provider, body, EVENT[provider]);
      assert.equal(missing.status, 401);
      // Signed with the right secret but for a different body (tampered payload).
      const tampered = await post(provider, `${body} `, {
        ...EVENT[provider],
        ...signatureHeaders(provider, body, REPO_SECRET),
      });
      // GitLab's token does not sign the body, so only the HMAC providers can detect tampering.
      assert.equal(tampered.status, provider === 'gitlab' ? 202 : 401);
      assert.equal(sup.callsOf('check').length, provider === 'gitlab' ? 1 : 0);
    });
  }

  test('the global secret signs repositories without their own; the repo secret is not accepted for others', async () => {
    const body = payload('github', 'git@github.com:acme/dns.git');
    const ok = await post('github', body, { ...EVENT.github, ...signatureHeaders('github', body, GLOBAL_SECRET) });
    assert.equal(ok.status, 202);
    assert.deepEqual(await ok.json(), { matched: ['homelab/dns'] });
    const other = await post('github', body, { ...EVENT.github, ...signatureHeaders('github', body, REPO_SECRET) });
    assert.equal(other.status, 401);
    assert.equal(sup.callsOf('check').length, 1);
  });

  test('branch mismatch, tag push and unknown repository: 202 with no match when signed, else the same 401', async () => {
    const refusal = await (
      await post('github', payload('github', 'https://github.com/acme/media-stack.git'), EVENT.github)
    ).text();
    for (const [body, secret] of [
      [payload('github', 'https://github.com/acme/media-stack.git', 'refs/heads/dev'), REPO_SECRET],
      [payload('github', 'https://github.com/acme/media-stack.git', 'refs/tags/v1.0.0'), REPO_SECRET],
      [payload('github', 'https://github.com/acme/unknown.git'), GLOBAL_SECRET],
    ] as const) {
      const signed = await post('github', body, { ...EVENT.github, ...signatureHeaders('github', body, secret) });
      assert.equal(signed.status, 202);
      assert.deepEqual(await signed.json(), { matched: [] });
      // Unsigned (or signed with a guess): exactly the answer of a bad signature on a deployed repository.
      for (const headers of [EVENT.github, { ...EVENT.github, ...signatureHeaders('github', body, 'guess') }]) {
        const res = await post('github', body, headers);
        assert.equal(res.status, 401);
        assert.equal(await res.text(), refusal);
      }
    }
    assert.deepEqual(sup.callsOf('check'), []);
  });

  test('pings and test events → 200 {pong:true}; other events ignored; nothing checked', async () => {
    const ping = await post('github', '{"zen":"Keep it simple"}', { 'x-github-event': 'ping' });
    assert.equal(ping.status, 200);
    assert.deepEqual(await ping.json(), { pong: true });
    const gitea = await post('gitea', '{}', { 'x-gitea-event': 'ping' });
    assert.deepEqual(await gitea.json(), { pong: true });
    const issues = await post('github', '{}', { 'x-github-event': 'issues' });
    assert.equal(issues.status, 200);
    assert.deepEqual(await issues.json(), { ignored: true, event: 'issues' });
    const mr = await post('gitlab', '{}', { 'x-gitlab-event': 'Merge Request Hook' });
    assert.deepEqual(await mr.json(), { ignored: true, event: 'Merge Request Hook' });
    assert.deepEqual(sup.callsOf('check'), []);
  });

  test('GitHub form-encoded deliveries are verified over the raw form body', async () => {
    const body = `payload=${encodeURIComponent(payload('github', 'https://github.com/acme/media-stack.git'))}`;
    const res = await fetch(`${s.url}/api/webhooks/github`, {
      method: 'POST',
      body,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...EVENT.github,
        ...signatureHeaders('github', body, REPO_SECRET),
      },
    });
    assert.equal(res.status, 202);
    assert.deepEqual(await res.json(), { matched: ['homelab/media-stack'] });
  });

  test('GitHub form deliveries signed over the decoded payload (the Gitea way) are refused', async () => {
    const json = payload('github', 'https://github.com/acme/media-stack.git');
    const body = `payload=${encodeURIComponent(json)}`;
    const res = await fetch(`${s.url}/api/webhooks/github`, {
      method: 'POST',
      body,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        ...EVENT.github,
        ...signatureHeaders('github', json, REPO_SECRET),
      },
    });
    assert.equal(res.status, 401);
    assert.deepEqual(sup.callsOf('check'), []);
  });

  const FORGES: { forge: Forge; json: string; secret: string; key: string }[] = [
    { forge: 'gitea', json: GITEA_PUSH, secret: GLOBAL_SECRET, key: 'lab/web' },
    { forge: 'forgejo', json: FORGEJO_PUSH, secret: FORGEJO_SECRET, key: 'lab/forge' },
  ];
  const deliver = (d: { body: Buffer; headers: Record<string, string> }) =>
    fetch(`${s.url}/api/webhooks/gitea`, { method: 'POST', headers: d.headers, body: d.body });

  for (const { forge, json, secret, key } of FORGES) {
    for (const encoding of ['json', 'form'] as const) {
      test(`${forge} ${encoding} delivery, exactly as ${forge} sends it, triggers a check of ${key} only`, async () => {
        const res = await deliver(forgeDelivery(forge, json, secret, encoding));
        assert.equal(res.status, 202);
        assert.deepEqual(await res.json(), { matched: [key] });
        assert.deepEqual(sup.callsOf('check'), [{ method: 'check', key, opts: 'webhook' }]);
      });

      test(`${forge} ${encoding} delivery with a wrong signature → 401 and no check`, async () => {
        const res = await deliver(forgeDelivery(forge, json, 'not-the-secret', encoding));
        assert.equal(res.status, 401);
        assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
        // Signed for this payload, but the payload was changed on the way (one byte of the JSON).
        const signed = forgeDelivery(forge, json, secret, encoding);
        const changed = forgeDelivery(
          forge,
          json.replace('"total_commits": 1', '"total_commits": 2'),
          secret,
          encoding,
        );
        assert.notDeepEqual(changed.body, signed.body);
        assert.equal((await deliver({ body: changed.body, headers: signed.headers })).status, 401);
        assert.deepEqual(sup.callsOf('check'), []);
      });
    }
  }

  test('forgejo: the X-Forgejo-* headers alone are enough, in both encodings', async () => {
    for (const encoding of ['json', 'form'] as const) {
      const d = forgeDelivery('forgejo', FORGEJO_PUSH, FORGEJO_SECRET, encoding);
      const headers = Object.fromEntries(
        Object.entries(d.headers).filter(([h]) => !/^x-(gitea|gogs|hub|github)-/.test(h)),
      );
      assert.ok('x-forgejo-signature' in headers && 'x-forgejo-event' in headers && !('x-gitea-signature' in headers));
      const res = await deliver({ body: d.body, headers });
      assert.equal(res.status, 202, encoding);
      const wrong = forgeDelivery('forgejo', FORGEJO_PUSH, 'not-the-secret', encoding);
      assert.equal(
        (
          await deliver({
            body: d.body,
            headers: { ...headers, 'x-forgejo-signature': wrong.headers['x-forgejo-signature']! },
          })
        ).status,
        401,
      );
    }
    assert.deepEqual(sup.callsOf('check'), [
      { method: 'check', key: 'lab/forge', opts: 'webhook' },
      { method: 'check', key: 'lab/forge', opts: 'webhook' },
    ]);
  });

  test('gitea form deliveries: only the payload signature counts, and only when the Content-Type says form', async () => {
    const form = forgeDelivery('gitea', GITEA_PUSH, GLOBAL_SECRET, 'form');
    // A signature over the form body (as GitHub would compute it) is not what Gitea sends: refused.
    const overForm = createHmac('sha256', GLOBAL_SECRET).update(form.body).digest('hex');
    const sigs = { 'x-gitea-signature': overForm, 'x-gogs-signature': overForm };
    assert.equal((await deliver({ body: form.body, headers: { ...form.headers, ...sigs } })).status, 401);
    // The form body announced as JSON is not JSON (400), and a JSON body announced as a form has no payload (400).
    assert.equal(
      (await deliver({ body: form.body, headers: { ...form.headers, 'content-type': 'application/json' } })).status,
      400,
    );
    const json = forgeDelivery('gitea', GITEA_PUSH, GLOBAL_SECRET, 'json');
    assert.equal(
      (
        await deliver({
          body: json.body,
          headers: { ...json.headers, 'content-type': 'application/x-www-form-urlencoded' },
        })
      ).status,
      400,
    );
    // A second payload field is refused rather than guessing which one was signed.
    const twice = Buffer.concat([form.body, Buffer.from('&payload=%7B%7D')]);
    assert.equal((await deliver({ body: twice, headers: form.headers })).status, 400);
    assert.deepEqual(sup.callsOf('check'), []);
  });

  test('unknown provider → 404; bad JSON → 400; wrong content type → 415; no URL → 400', async () => {
    assert.equal((await post('bitbucket', '{}')).status, 404);
    assert.equal((await post('github', '{"ref":', EVENT.github)).status, 400);
    assert.equal((await post('github', '{}', { ...EVENT.github, 'content-type': 'text/plain' })).status, 415);
    assert.equal((await post('generic', '{"branch":"main"}')).status, 400);
    assert.deepEqual(sup.callsOf('check'), []);
  });

  test('a suspended repository is matched but its check reports false (still 202)', async () => {
    sup.repos[0] = { ...sup.repos[0]!, suspended: true };
    try {
      const body = payload('generic', 'github.com/acme/media-stack');
      const res = await post('generic', body, signatureHeaders('generic', body, REPO_SECRET));
      assert.equal(res.status, 202);
      assert.deepEqual(await res.json(), { matched: ['homelab/media-stack'] });
      assert.equal(sup.callsOf('check').length, 1);
    } finally {
      sup.repos[0] = { ...sup.repos[0]!, suspended: false };
    }
  });

  test('body over 1 MiB → 413 (Content-Length and chunked), server keeps serving', async () => {
    const big = Buffer.alloc(BODY_LIMIT + 1, 0x20);
    const res = await post('github', big, EVENT.github).catch((e: unknown) => e);
    assert.ok(res instanceof Response, `fetch failed: ${String(res)}`);
    assert.equal(res.status, 413);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'PAYLOAD_TOO_LARGE');

    const status = await new Promise<number>((resolve, reject) => {
      const url = new URL(`${s.url}/api/webhooks/generic`);
      const req = request({
        host: url.hostname,
        port: url.port,
        path: url.pathname,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
      });
      req.on('response', (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      });
      req.on('error', reject);
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      let sent = 0;
      const pump = (): void => {
        while (sent <= BODY_LIMIT + chunk.length) {
          sent += chunk.length;
          if (!req.write(chunk)) {
            req.once('drain', pump);
            return;
          }
        }
        req.end();
      };
      pump();
    });
    assert.equal(status, 413);
    assert.equal((await fetch(`${s.url}/api/health`)).status, 200);
    assert.deepEqual(sup.callsOf('check'), []);
  });
});

describe('webhook without any secret', () => {
  test('a repository with no secret and no global secret refuses even correctly formed deliveries', async () => {
    const w = world();
    w.supervisor.targets = [{ key: 'lab/web', url: 'https://gitea.example/acme/web', branch: 'prod' }];
    const { log, lines } = captureLogger();
    const s = await serve({ ...w, log });
    try {
      const body = payload('gitea', 'https://gitea.example/acme/web.git', 'refs/heads/prod');
      const unsigned = await fetch(`${s.url}/api/webhooks/gitea`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      assert.equal(unsigned.status, 401);
      const signed = await fetch(`${s.url}/api/webhooks/gitea`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signatureHeaders('gitea', body, 'guess') },
        body,
      });
      assert.equal(signed.status, 401);
      assert.deepEqual(w.supervisor.callsOf('check'), []);
      assert.ok(lines.some((l) => l['msg'] === 'webhook refused: missing or invalid signature'));
      assert.ok(!JSON.stringify(lines).includes('guess'), 'signatures/secrets are not logged');
    } finally {
      await s.close();
    }
  });
});

test('delivery ids: the header of each provider, the first that is set, and only plain identifiers', () => {
  const uuid = '72d3162e-cc78-11e3-81ab-4c9367dc0958';
  assert.equal(deliveryIdOf('github', { 'x-github-delivery': uuid }), uuid);
  assert.equal(deliveryIdOf('gitea', { 'x-gitea-delivery': uuid }), uuid);
  assert.equal(deliveryIdOf('gitea', { 'x-forgejo-delivery': uuid }), uuid);
  assert.equal(deliveryIdOf('gitea', { 'x-gogs-delivery': uuid }), uuid);
  assert.equal(deliveryIdOf('gitlab', { 'x-gitlab-event-uuid': uuid, 'x-gitlab-webhook-uuid': 'other' }), uuid);
  assert.equal(deliveryIdOf('gitlab', { 'x-gitlab-webhook-uuid': uuid }), uuid);
  assert.equal(deliveryIdOf('generic', { 'x-shiparr-delivery': 'deploy-42' }), 'deploy-42');
  assert.equal(deliveryIdOf('generic', { 'x-request-id': 'req:7' }), 'req:7');
  assert.equal(deliveryIdOf('github', {}), null);
  assert.equal(deliveryIdOf('github', { 'x-gitea-delivery': uuid }), null, "another provider's header is not read");
  assert.equal(deliveryIdOf('github', { 'x-github-delivery': 'a b<script>' }), null);
  assert.equal(deliveryIdOf('github', { 'x-github-delivery': 'x'.repeat(101) }), null);
});
