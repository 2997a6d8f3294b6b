/**
 * @module Bounded reads against real parts: the container log reader keeps only the newest 1 MiB of a container that
 * spams long lines (marked, starting at a whole line), and the health check URL's endless body is cancelled at once
 * instead of being read until the request timeout.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { test, type TestContext } from 'node:test';
import { createContainerLogReader, LOG_READ_MAX_BYTES } from '../../../src/compose/logs.ts';
import { createDocker, verifyProject } from '../../../src/compose/verify.ts';
import composeUp from '../../../src/workers/tasks/compose-up.ts';
import {
  BUSYBOX_IMAGE,
  cleanupProject,
  composeDir,
  docker,
  ensureBusyboxImage,
  requireDocker,
  uniqueProjectName,
} from '../../helpers/docker.ts';
import { until } from '../../helpers/wait.ts';

const engine = createDocker();
/** Lines the spamming container prints: `<i> ` + 990 × `x`, far more than 1 MiB within the 5,000-line tail. */
const LINES = 6000;
const LINE_BYTES = (i: number) => `${i} `.length + 990 + 1;

async function up(t: TestContext, prefix: string, script: string): Promise<{ project: string; id: string }> {
  await ensureBusyboxImage();
  const project = uniqueProjectName(prefix);
  cleanupProject(t, project);
  const yaml = [
    'services:',
    '  app:',
    `    image: ${JSON.stringify(BUSYBOX_IMAGE)}`,
    '    pull_policy: never',
    '    init: true',
    // `$` is compose interpolation: `$$` passes a literal one to the shell.
    `    command: ["sh", "-c", ${JSON.stringify(script.split('$').join('$$'))}]`,
    '',
  ].join('\n');
  const cwd = await composeDir(t, yaml);
  const r = await composeUp({
    cwd,
    project,
    files: [],
    pull: 'never',
    build: false,
    removeOrphans: true,
    timeoutMs: 120_000,
  });
  assert.equal(r.ok, true, r.ok ? '' : `${r.code}: ${r.message}`);
  const ps = await docker(['ps', '-aq', '--no-trunc', '--filter', `label=com.docker.compose.project=${project}`]);
  return { project, id: ps.stdout.trim() };
}

test('a container spamming long lines: the log read keeps the newest 1 MiB, marked, from a whole line', async (t) => {
  if (!(await requireDocker(t))) return;
  const script = `l=$(printf '%990s' '' | tr ' ' x); i=0; while [ $i -lt ${LINES} ]; do echo "$i $l"; i=$((i+1)); done; echo LAST-LINE; exec sleep 3600`;
  const { project, id } = await up(t, 'logs-spam', script);
  await until(
    async () => (await docker(['logs', '--tail', '1', id])).stdout.includes('LAST-LINE'),
    'the container to print its last line',
    60_000,
    100,
  );
  const reader = createContainerLogReader(engine, (p) => p === project);

  const text = await reader.logs(id, { tail: 1_000_000 });
  assert.ok(text !== null);
  const marker = /^…\[(\d+) bytes of older output truncated; the last (\d+) bytes follow\]\n/.exec(text);
  assert.ok(marker, `marked at the top: ${text.slice(0, 120)}`);
  const body = text.slice(marker[0].length);
  const kept = Buffer.byteLength(body);
  assert.equal(Number(marker[2]), kept);
  assert.ok(kept <= LOG_READ_MAX_BYTES, `${kept} bytes kept`);
  assert.ok(kept > LOG_READ_MAX_BYTES - 1000, 'the cap is used up to the last whole line');
  assert.ok(body.endsWith('\n') && body.trimEnd().split('\n').at(-1) === 'LAST-LINE', 'the newest output is kept');
  const lines = body.trimEnd().split('\n');
  assert.match(lines[0] ?? '', /^\d+ x{990}$/, 'the kept part starts at a whole line');
  for (const l of lines.slice(0, -1)) assert.match(l, /^\d+ x{990}$/);
  // The tail is capped at 5,000 lines: the engine sent the last 4,999 numbered lines + LAST-LINE, no more.
  const first = Number((lines[0] ?? '').split(' ')[0]);
  let sent = 'LAST-LINE\n'.length;
  for (let i = LINES - 4999; i < LINES; i++) sent += LINE_BYTES(i);
  assert.equal(Number(marker[1]) + kept, sent, 'dropped + kept = what the 5,000-line tail holds');
  assert.ok(first > LINES - 4999);

  // A small tail stays whole and unmarked.
  const small = await reader.logs(id, { tail: 3 });
  assert.ok(small !== null && !small.startsWith('…['));
  assert.deepEqual(
    small
      .trimEnd()
      .split('\n')
      .map((l) => l.split(' ')[0]),
    [String(LINES - 2), String(LINES - 1), 'LAST-LINE'],
  );
});

test('health check URL with an endless body: the body is cancelled right after the status', async (t) => {
  if (!(await requireDocker(t))) return;
  let sent = 0;
  let requestedAt = 0;
  let closedAt = 0;
  const chunk = Buffer.alloc(16 * 1024, 'y');
  const server = http.createServer((req, res) => {
    requestedAt = Date.now();
    res.writeHead(200, { 'content-type': 'text/plain' });
    const pump = () => {
      while (!res.destroyed && res.write(chunk)) sent += chunk.length;
    };
    res.on('drain', pump);
    res.on('close', () => (closedAt = Date.now()));
    pump();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  const { project } = await up(t, 'v-endless', 'exec sleep 3600');
  const port = (server.address() as AddressInfo).port;

  // A 10 s interval gives each request a 10 s timeout: reading the whole body would take that long.
  const r = await verifyProject({
    docker: engine,
    project,
    timeoutMs: 60_000,
    pollMs: 250,
    url: `http://127.0.0.1:${port}/health`,
    retries: 1,
    intervalMs: 10_000,
  });
  assert.equal(r.ok, true, r.ok ? '' : r.message);
  await until(() => closedAt > 0, 'the client to close the endless response', 5_000, 20);
  const held = closedAt - requestedAt;
  assert.ok(held < 3_000, `the response was cancelled after ${held} ms (not read until the 10 s timeout)`);
  assert.ok(sent < 32 * 1024 * 1024, `only ${sent} bytes were pushed before the cancel`);
});
