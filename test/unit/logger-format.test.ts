/**
 * @module Log format: human-readable lines on a terminal, JSON lines otherwise or when SHIPARR_LOG_FORMAT=json.
 * Runs the real logger in a child process whose stdout is a pipe, or a pseudo-terminal (util-linux `script`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Writable } from 'node:stream';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger } from '../../src/logger.ts';
import { until } from '../helpers/wait.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Logs one line with a secret in it through the settings the environment gives, as `shiparr serve` does. */
const PROGRAM = [
  "const { loadSettings } = await import('./src/config/settings.ts');",
  "const { createLogger } = await import('./src/logger.ts');",
  'const s = loadSettings(process.env);',
  "createLogger({ level: s.logLevel, format: s.logFormat }).info({ repo: 'media', token: 'tok-secret-1' }, 'deployment succeeded');",
].join(' ');

function runLogger(env: Record<string, string>, tty: boolean): string {
  const node = [process.execPath, '--import', 'tsx', '--input-type=module', '-e', PROGRAM];
  const cmd = tty ? 'script' : node[0]!;
  const quoted = node.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const args = tty ? ['-qec', quoted, '/dev/null'] : node.slice(1);
  const r = spawnSync(cmd, args, {
    cwd: ROOT,
    env: { ...process.env, SHIPARR_LOG_LEVEL: 'info', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}`);
  return r.stdout;
}

const scriptAvailable = spawnSync('script', ['--version']).status === 0;

test('stdout is a pipe: one JSON object a line, secrets redacted', () => {
  const out = runLogger({}, false).trim();
  const row = JSON.parse(out) as Record<string, unknown>;
  assert.equal(row['msg'], 'deployment succeeded');
  assert.equal(row['level'], 30);
  assert.equal(row['token'], '[Redacted]');
  assert.ok(!out.includes('tok-secret-1'));
});

test('SHIPARR_LOG_FORMAT=pretty on a pipe: a human line, no JSON, secrets redacted', () => {
  const out = runLogger({ SHIPARR_LOG_FORMAT: 'pretty' }, false);
  assert.match(out, /^\[\d\d:\d\d:\d\d\] INFO: deployment succeeded$/m);
  assert.match(out, /repo: "media"/);
  assert.throws(() => JSON.parse(out.trim()));
  assert.ok(!out.includes('tok-secret-1'));
  assert.ok(!out.includes('\u001b['), 'no colour codes when stdout is not a terminal');
});

test(
  'a terminal gets human lines by default, and JSON when SHIPARR_LOG_FORMAT=json',
  { skip: !scriptAvailable && 'util-linux `script` is not installed' },
  () => {
    const pretty = runLogger({}, true);
    assert.match(pretty, /INFO.*deployment succeeded/);
    assert.ok(!pretty.includes('"msg"'), pretty);
    const json = runLogger({ SHIPARR_LOG_FORMAT: 'json' }, true);
    assert.match(json, /"msg":"deployment succeeded"/);
  },
);

test('pretty output to a destination stream keeps redaction and masking', async () => {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString());
      cb();
    },
  });
  const log = createLogger({ level: 'info', format: 'pretty', destination });
  log.warn({ password: 'hunter2' }, 'clone https://user:pa55@git.example.com/r failed');
  const out = await until(() => lines.join(''), 'the pretty line', 5_000, 5);
  assert.match(out, /WARN: clone https:\/\/\*\*\*@git\.example\.com\/r failed/);
  assert.match(out, /password: "\[Redacted\]"/);
  assert.ok(!out.includes('hunter2') && !out.includes('pa55'), out);
});
