/** @module Tests for the security settings: auth modes, trusted proxies, API tokens, allowed hosts, start refusal. */
import assert from 'node:assert/strict';
import os from 'node:os';
import { test } from 'node:test';
import { loadSettings, unauthenticatedExposure } from '../../../src/config/settings.ts';
import { SettingsError } from '../../../src/errors.ts';

const cwd = '/srv/shiparr';
const TOKEN = 'c0ffee'.repeat(6); // 36 characters

function issues(env: NodeJS.ProcessEnv): string[] {
  try {
    loadSettings(env, cwd);
  } catch (err) {
    assert.ok(err instanceof SettingsError);
    return err.issues;
  }
  assert.fail('expected a SettingsError');
}

test('SHIPARR_AUTH_MODE picks basic, forward or none; SHIPARR_AUTH_ENABLED=true is basic; a conflict is an error', () => {
  assert.equal(loadSettings({ SHIPARR_AUTH_MODE: 'BASIC', SHIPARR_AUTH_PASSWORD: 'pw' }, cwd).auth.mode, 'basic');
  assert.equal(loadSettings({ SHIPARR_AUTH_MODE: 'basic', SHIPARR_AUTH_PASSWORD: 'pw' }, cwd).auth.enabled, true);
  const forward = loadSettings(
    { SHIPARR_AUTH_MODE: 'forward', SHIPARR_TRUSTED_PROXIES: '10.0.0.0/8, fd00::/8,172.18.0.2' },
    cwd,
  );
  assert.equal(forward.auth.mode, 'forward');
  assert.equal(forward.auth.enabled, false);
  assert.equal(forward.auth.forwardHeader, 'Remote-User');
  assert.deepEqual(forward.auth.trustedProxies, ['10.0.0.0/8', 'fd00::/8', '172.18.0.2']);
  assert.equal(loadSettings({ SHIPARR_AUTH_MODE: 'none' }, cwd).auth.mode, 'none');
  // The older switch off leaves the choice to the mode (.env.example sets it to false).
  assert.equal(
    loadSettings({ SHIPARR_AUTH_ENABLED: 'false', SHIPARR_AUTH_MODE: 'basic', SHIPARR_AUTH_PASSWORD: 'p' }, cwd).auth
      .mode,
    'basic',
  );

  assert.deepEqual(issues({ SHIPARR_AUTH_ENABLED: 'true', SHIPARR_AUTH_PASSWORD: 'pw', SHIPARR_AUTH_MODE: 'none' }), [
    'SHIPARR_AUTH_MODE: "none" conflicts with SHIPARR_AUTH_ENABLED=true (which means basic); unset one of them',
  ]);
  assert.match(
    issues({ SHIPARR_AUTH_MODE: 'oauth' })[0] ?? '',
    /SHIPARR_AUTH_MODE: must be one of basic, forward, none/,
  );
  assert.deepEqual(issues({ SHIPARR_AUTH_MODE: 'basic' }), [
    'SHIPARR_AUTH_PASSWORD: must be set when SHIPARR_AUTH_MODE=basic',
  ]);
});

test('forward mode needs trusted proxies; each must be an address or a CIDR block', () => {
  assert.deepEqual(issues({ SHIPARR_AUTH_MODE: 'forward' }), [
    'SHIPARR_TRUSTED_PROXIES: must list the reverse proxy address(es) when SHIPARR_AUTH_MODE=forward',
  ]);
  assert.deepEqual(
    issues({ SHIPARR_AUTH_MODE: 'forward', SHIPARR_TRUSTED_PROXIES: '10.0.0.0/33,proxy.lan,::1/129,1.2.3.4/x' }),
    [
      'SHIPARR_TRUSTED_PROXIES: "10.0.0.0/33" has a prefix length outside 0–32',
      'SHIPARR_TRUSTED_PROXIES: "proxy.lan" is not an IP address or CIDR block',
      'SHIPARR_TRUSTED_PROXIES: "::1/129" has a prefix length outside 0–128',
      'SHIPARR_TRUSTED_PROXIES: "1.2.3.4/x" has a prefix length outside 0–32',
    ],
  );
  assert.match(issues({ SHIPARR_FORWARD_AUTH_HEADER: 'Remote User' })[0] ?? '', /must be an HTTP header name/);
});

test('API tokens: name:token or bare (named by position); a short token is refused without being echoed', () => {
  const s = loadSettings({ SHIPARR_API_TOKENS: `ci:${TOKEN}, ${TOKEN}x` }, cwd);
  assert.deepEqual(s.auth.tokens, [
    { name: 'ci', token: TOKEN },
    { name: 'token-2', token: `${TOKEN}x` },
  ]);
  const short = 'shortsecret123';
  const got = issues({ SHIPARR_API_TOKENS: `ci:${short},${short}` });
  assert.deepEqual(got, [
    'SHIPARR_API_TOKENS: token "ci" is too short (each token needs at least 32 characters)',
    'SHIPARR_API_TOKENS: token 2 is too short (each token needs at least 32 characters)',
  ]);
  for (const line of got) assert.ok(!line.includes(short), 'the token is not echoed');
  assert.deepEqual(issues({ SHIPARR_API_TOKENS: `a:${TOKEN},a:${TOKEN}1` }), [
    'SHIPARR_API_TOKENS: the name "a" is used twice',
  ]);
});

test('allowed hosts: default list with the bound address; an explicit list is normalised', () => {
  assert.deepEqual(loadSettings({ SHIPARR_HOST: '192.168.1.5' }, cwd).allowedHosts, [
    'localhost',
    '127.0.0.1',
    '::1',
    '192.168.1.5',
    os.hostname().toLowerCase(),
  ]);
  assert.ok(!loadSettings({ SHIPARR_HOST: '0.0.0.0' }, cwd).allowedHosts.includes('0.0.0.0'));
  assert.deepEqual(loadSettings({ SHIPARR_ALLOWED_HOSTS: 'Shiparr.LAN, [fd00::1],*' }, cwd).allowedHosts, [
    'shiparr.lan',
    'fd00::1',
    '*',
  ]);
});

test('serving on a network address without auth is refused unless SHIPARR_ALLOW_UNAUTHENTICATED=true', () => {
  const exposed = unauthenticatedExposure(loadSettings({ SHIPARR_HOST: '0.0.0.0' }, cwd));
  assert.match(exposed ?? '', /refusing to serve the API on 0\.0\.0\.0 without authentication/);
  for (const fix of ['SHIPARR_AUTH_MODE=basic', 'SHIPARR_HOST=127.0.0.1', 'SHIPARR_ALLOW_UNAUTHENTICATED=true'])
    assert.ok(exposed?.includes(fix), fix);
  for (const env of [
    {},
    { SHIPARR_HOST: '::1' },
    { SHIPARR_HOST: 'localhost' },
    { SHIPARR_HOST: '127.0.0.2' },
    { SHIPARR_HOST: '0.0.0.0', SHIPARR_ALLOW_UNAUTHENTICATED: 'true' },
    { SHIPARR_HOST: '0.0.0.0', SHIPARR_AUTH_MODE: 'basic', SHIPARR_AUTH_PASSWORD: 'pw' },
    { SHIPARR_HOST: '::', SHIPARR_AUTH_MODE: 'forward', SHIPARR_TRUSTED_PROXIES: '10.0.0.1' },
  ])
    assert.equal(unauthenticatedExposure(loadSettings(env, cwd)), null, JSON.stringify(env));
  assert.notEqual(unauthenticatedExposure(loadSettings({ SHIPARR_HOST: '::', SHIPARR_API_TOKENS: TOKEN }, cwd)), null);
});
