/** @module exec(): real child processes (no Docker): exit codes, capping, start failures, process-group kills. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { exec } from '../../../src/lib/exec.ts';
import { until } from '../../helpers/wait.ts';

/** Running (zombies count as dead: an orphan is reaped by whatever PID 1 this host has, possibly late). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

async function tmp(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'shiparr-exec-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('non-zero exit resolves with code and both streams, interleaved output', async () => {
  const r = await exec('sh', ['-c', 'echo out1; echo err1 >&2; sleep 0.05; echo out2; exit 3'], { timeoutMs: 10_000 });
  assert.equal(r.code, 3);
  assert.equal(r.signal, null);
  assert.equal(r.stdout, 'out1\nout2\n');
  assert.equal(r.stderr, 'err1\n');
  assert.match(r.output, /out1\n[\s\S]*err1\n[\s\S]*out2\n/);
  assert.equal(r.timedOut, false);
  assert.equal(r.aborted, false);
  assert.equal(r.error, undefined);
});

test('a missing command resolves with code null and a clear error', async () => {
  const r = await exec('shiparr-no-such-command-xyz', ['x'], { timeoutMs: 5_000 });
  assert.equal(r.code, null);
  assert.equal(r.errorCode, 'ENOENT');
  assert.match(r.error ?? '', /ENOENT.*command not found/);
});

test('output is capped and keeps the tail', async () => {
  const r = await exec('sh', ['-c', 'i=0; while [ $i -lt 2000 ]; do echo "line $i"; i=$((i+1)); done'], {
    timeoutMs: 10_000,
    maxOutputBytes: 100,
  });
  assert.equal(r.code, 0);
  assert.equal(r.truncated, true);
  assert.ok(Buffer.byteLength(r.stdout) <= 100);
  assert.ok(r.stdout.endsWith('line 1999\n'), r.stdout);
  assert.ok(!r.stdout.includes('line 0\n'));
});

test('input is written to stdin; env is merged over process.env and can remove keys', async () => {
  process.env['SHIPARR_EXEC_TEST_KEEP'] = 'kept';
  const r = await exec('sh', ['-c', 'cat; echo "[$FOO][$SHIPARR_EXEC_TEST_KEEP][${HOME:-nohome}]"'], {
    timeoutMs: 5_000,
    input: 'hello\n',
    env: { FOO: 'bar', HOME: undefined },
  });
  delete process.env['SHIPARR_EXEC_TEST_KEEP'];
  assert.equal(r.stdout, 'hello\n[bar][kept][nohome]\n');
});

test('timeout kills the whole process group, grandchildren included', async (t) => {
  const dir = await tmp(t);
  const pidFile = path.join(dir, 'pid');
  // The shell starts sleep as a child and waits: killing only the shell would leave sleep running.
  const r = await exec('sh', ['-c', `sleep 1000 & echo $! > ${pidFile}; wait`], { timeoutMs: 300 });
  assert.equal(r.timedOut, true);
  assert.equal(r.code, null);
  assert.equal(r.signal, 'SIGTERM');
  const pid = Number((await readFile(pidFile, 'utf8')).trim());
  assert.ok(pid > 0);
  await until(() => (alive(pid) ? undefined : true), `sleep ${pid} to die`);
  assert.equal(alive(pid), false);
});

test('a process ignoring SIGTERM gets SIGKILL after the grace period', async (t) => {
  const dir = await tmp(t);
  const pidFile = path.join(dir, 'pid');
  const r = await exec('sh', ['-c', `trap '' TERM; echo $$ > ${pidFile}; while :; do sleep 0.05; done`], {
    timeoutMs: 200,
    killGraceMs: 300,
  });
  assert.equal(r.timedOut, true);
  assert.equal(r.signal, 'SIGKILL');
  const pid = Number((await readFile(pidFile, 'utf8')).trim());
  await until(() => (alive(pid) ? undefined : true), `shell ${pid} to die`);
});

test('abort kills the process group and reports aborted', async (t) => {
  const dir = await tmp(t);
  const pidFile = path.join(dir, 'pid');
  const ac = new AbortController();
  const run = exec('sh', ['-c', `sleep 1000 & echo $! > ${pidFile}; wait`], { timeoutMs: 60_000, signal: ac.signal });
  const pid = await until(async () => {
    const s = await readFile(pidFile, 'utf8').catch(() => '');
    return s.trim() ? Number(s.trim()) : undefined;
  }, 'pid file');
  ac.abort();
  const r = await run;
  assert.equal(r.aborted, true);
  assert.equal(r.timedOut, false);
  await until(() => (alive(pid) ? undefined : true), `sleep ${pid} to die`);
});

test('an already aborted signal does not start the command', async () => {
  const r = await exec('sh', ['-c', 'echo should-not-run'], { timeoutMs: 5_000, signal: AbortSignal.abort() });
  assert.equal(r.aborted, true);
  assert.equal(r.stdout, '');
  assert.equal(r.code, null);
});

test('niceness lowers the child priority (compose runs as background work)', async () => {
  const r = await exec('sh', ['-c', 'sleep 0.3; nice'], { timeoutMs: 10_000, niceness: 10 });
  assert.equal(r.code, 0);
  assert.equal(r.stdout.trim(), '10');
  const plain = await exec('sh', ['-c', 'nice'], { timeoutMs: 10_000 });
  assert.equal(plain.stdout.trim(), String(os.getPriority()));
});
