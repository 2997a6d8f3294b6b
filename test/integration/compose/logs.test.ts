/** @module Container log reader against real containers: demultiplexing, tail, and the managed-project gate. */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { createContainerLogReader, demuxLogs } from '../../../src/compose/logs.ts';
import { createDocker } from '../../../src/compose/verify.ts';
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

/** Waits until the container has exited (its whole output is then in the log). */
async function waitExited(id: string): Promise<void> {
  await until(
    async () => (await docker(['inspect', '--format', '{{.State.Status}}', id])).stdout.trim() === 'exited',
    `container ${id} to exit`,
    30_000,
    50,
  );
}

/** Starts a compose project whose single service prints to stdout and stderr, then exits; returns its container id. */
async function managedContainer(
  t: TestContext,
  opts: { tty?: boolean } = {},
): Promise<{ project: string; id: string }> {
  await ensureBusyboxImage();
  const project = uniqueProjectName('logs');
  cleanupProject(t, project);
  const yaml = [
    'services:',
    '  app:',
    `    image: ${JSON.stringify(BUSYBOX_IMAGE)}`,
    '    pull_policy: never',
    '    init: true',
    ...(opts.tty ? ['    tty: true'] : []),
    '    command: ["sh", "-c", "for i in 1 2 3 4 5; do echo out-$$i; echo err-$$i >&2; done"]',
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
  const id = ps.stdout.trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  await waitExited(id);
  return { project, id };
}

test('a managed container: demultiplexed stdout+stderr, tail respected', async (t) => {
  if (!(await requireDocker(t))) return;
  const { project, id } = await managedContainer(t);
  const reader = createContainerLogReader(engine, (name) => name === project);

  const all = await reader.logs(id, { tail: 100 });
  assert.ok(all !== null);
  const lines = all.trim().split('\n');
  assert.equal(lines.length, 10);
  for (let i = 1; i <= 5; i++) {
    assert.ok(lines.includes(`out-${i}`), `missing out-${i} in ${JSON.stringify(all)}`);
    assert.ok(lines.includes(`err-${i}`), `missing err-${i}`);
  }
  // No frame header bytes left over.
  assert.ok(![...all].some((ch) => ch.charCodeAt(0) <= 2), 'frame header bytes in the text');

  const last = await reader.logs(id, { tail: 2 });
  assert.equal(last?.trim().split('\n').length, 2);
  // A tail below 1 is clamped to 1, not "everything".
  const one = await reader.logs(id, { tail: 0 });
  assert.equal(one?.trim().split('\n').length, 1);
  // since in the future: nothing.
  const none = await reader.logs(id, { tail: 100, since: Math.floor(Date.now() / 1000) + 3600 });
  assert.equal(none, '');
});

test('a TTY container: raw stream passed through', async (t) => {
  if (!(await requireDocker(t))) return;
  const { project, id } = await managedContainer(t, { tty: true });
  const reader = createContainerLogReader(engine, (name) => name === project);
  const text = await reader.logs(id, { tail: 100 });
  assert.ok(text !== null);
  assert.match(text, /out-1\r?\n/);
  assert.match(text, /err-5/);
});

test('unmanaged containers read as null: no compose label, another project, unknown id', async (t) => {
  if (!(await requireDocker(t))) return;
  const image = await ensureBusyboxImage();
  const name = uniqueProjectName('plain');
  t.after(async () => {
    await docker(['rm', '-f', name]);
  });
  const run = await docker(['run', '-d', '--init', '--name', name, image, 'sh', '-c', 'echo secret-plain']);
  assert.equal(run.code, 0, run.output);
  const plainId = run.stdout.trim();
  await waitExited(plainId);

  const everything = createContainerLogReader(engine, () => true);
  assert.equal(await everything.logs(plainId, { tail: 10 }), null);
  assert.equal(await everything.logs(name, { tail: 10 }), null);
  assert.equal(await everything.logs('shiparr-no-such-container-xyz', { tail: 10 }), null);

  const { id } = await managedContainer(t);
  const otherProject = createContainerLogReader(engine, (p) => p === 'some-other-project');
  assert.equal(await otherProject.logs(id, { tail: 10 }), null);
});

test('demuxLogs strips frame headers and leaves unframed text alone', () => {
  const frame = (type: number, s: string): Buffer => {
    const body = Buffer.from(s);
    const h = Buffer.alloc(8);
    h[0] = type;
    h.writeUInt32BE(body.length, 4);
    return Buffer.concat([h, body]);
  };
  assert.equal(demuxLogs(Buffer.concat([frame(1, 'a\n'), frame(2, 'b\n'), frame(1, 'c\n')])).toString(), 'a\nb\nc\n');
  assert.equal(demuxLogs(Buffer.from('plain text, no frames\n')).toString(), 'plain text, no frames\n');
  assert.equal(demuxLogs(Buffer.from('hi\n')).toString(), 'hi\n');
});
