/** @module Tests for loadSettings (service settings from the environment). */
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadSettings } from '../../../src/config/settings.ts';
import { SettingsError } from '../../../src/errors.ts';

const cwd = '/srv/shiparr';

function settingsError(env: NodeJS.ProcessEnv): SettingsError {
  try {
    loadSettings(env, cwd);
  } catch (err) {
    assert.ok(err instanceof SettingsError);
    return err;
  }
  assert.fail('expected a SettingsError');
}

test('defaults as documented in README.md, paths made absolute against cwd', () => {
  const s = loadSettings({}, cwd);
  assert.equal(s.port, 8080);
  assert.equal(s.host, '127.0.0.1', 'a checkout binds the loopback address unless told otherwise');
  assert.equal(s.configPath, path.join(cwd, 'config/projects'));
  assert.equal(s.dataPath, path.join(cwd, 'data'));
  assert.equal(s.logLevel, 'info');
  assert.equal(s.logFormat, 'auto');
  assert.deepEqual(s.auth, {
    mode: 'none',
    enabled: false,
    username: 'admin',
    password: undefined,
    publicWidgets: false,
    forwardHeader: 'Remote-User',
    trustedProxies: [],
    tokens: [],
  });
  assert.deepEqual(s.allowedHosts, ['localhost', '127.0.0.1', '::1', os.hostname().toLowerCase()]);
  assert.equal(s.allowUnauthenticated, false);
  assert.equal(s.maxConcurrentDeploys, 2);
  assert.equal(s.shutdownGraceSeconds, 30);
  assert.ok(s.workers >= 2 && s.workers <= 4);
  assert.equal(s.githubToken, undefined);
  assert.equal(s.sopsAgeKeyFile, undefined);
});

test("SHIPARR_* values are parsed; the original Shiparr script's spelling Shiparr_* is accepted and SHIPARR_* wins", () => {
  const s = loadSettings(
    {
      Shiparr_PORT: '9000',
      Shiparr_CONFIG_PATH: '/etc/shiparr/projects',
      SHIPARR_DATA_PATH: 'var',
      Shiparr_DATA_PATH: '/ignored',
      SHIPARR_LOG_LEVEL: 'DEBUG',
      SHIPARR_AUTH_ENABLED: 'yes',
      SHIPARR_AUTH_PASSWORD: 'pw',
      SHIPARR_WORKERS: '3',
      SOPS_AGE_KEY_FILE: 'keys/age.txt',
      GITHUB_TOKEN: '',
    },
    cwd,
  );
  assert.equal(s.port, 9000);
  assert.equal(s.configPath, '/etc/shiparr/projects');
  assert.equal(s.dataPath, path.join(cwd, 'var'));
  assert.equal(s.logLevel, 'debug');
  assert.equal(s.auth.mode, 'basic', 'SHIPARR_AUTH_ENABLED=true means basic');
  assert.deepEqual([s.auth.enabled, s.auth.username, s.auth.password], [true, 'admin', 'pw']);
  assert.equal(s.workers, 3);
  assert.equal(s.sopsAgeKeyFile, path.join(cwd, 'keys/age.txt'));
  assert.equal(s.githubToken, undefined, 'an empty variable counts as unset');
});

test('a non-numeric port is a SettingsError naming SHIPARR_PORT', () => {
  const e = settingsError({ SHIPARR_PORT: 'abc' });
  assert.equal(e.code, 'SETTINGS_INVALID');
  assert.equal(e.issues.length, 1);
  assert.match(e.issues[0] ?? '', /^SHIPARR_PORT: must be a whole number \(got "abc"\)$/);
  assert.match(settingsError({ Shiparr_PORT: '70000' }).message, /SHIPARR_PORT: must be at most 65535/);
});

test('an unknown log level is rejected with the allowed list', () => {
  const e = settingsError({ SHIPARR_LOG_LEVEL: 'verbose' });
  assert.match(e.message, /SHIPARR_LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent/);
});

test('SHIPARR_LOG_FORMAT takes auto, json or pretty, and nothing else', () => {
  assert.equal(loadSettings({ SHIPARR_LOG_FORMAT: 'JSON' }, cwd).logFormat, 'json');
  assert.equal(loadSettings({ Shiparr_LOG_FORMAT: 'pretty' }, cwd).logFormat, 'pretty');
  assert.match(
    settingsError({ SHIPARR_LOG_FORMAT: 'xml' }).message,
    /SHIPARR_LOG_FORMAT: must be one of auto, json, pretty \(got "xml"\)/,
  );
});

test('auth enabled without a password is rejected', () => {
  const e = settingsError({ SHIPARR_AUTH_ENABLED: 'true' });
  assert.deepEqual(e.issues, ['SHIPARR_AUTH_PASSWORD: must be set when SHIPARR_AUTH_ENABLED=true']);
  assert.match(
    settingsError({ SHIPARR_AUTH_ENABLED: 'perhaps' }).message,
    /SHIPARR_AUTH_ENABLED: must be true or false/,
  );
});

test('every bad variable is listed at once', () => {
  const e = settingsError({
    SHIPARR_PORT: 'x',
    SHIPARR_MAX_CONCURRENT_DEPLOYS: '0',
    SHIPARR_WEBHOOK_SECRET: 's',
    SHIPARR_WORKERS: 'many',
  });
  assert.equal(e.issues.length, 3);
  assert.match(e.message, /SHIPARR_MAX_CONCURRENT_DEPLOYS: must be at least 1/);
  assert.match(e.message, /SHIPARR_WORKERS: must be a whole number/);
});
