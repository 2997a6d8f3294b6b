/**
 * @module Docker test harness shared by every test that needs a real engine.
 *
 * - `requireDocker(t)` at the top of a test: skips it when no engine answers, or fails it when
 *   `SHIPARR_REQUIRE_DOCKER=1` (CI, where a missing engine must not silently skip the suite).
 * - `ensureBusyboxImage()` builds `shiparr-test/busybox:latest` from the host's static /bin/busybox via
 *   `docker import` (no registry is reachable in tests), once per engine.
 * - `webServiceCompose({ image, healthy, marker })` returns a compose file for a busybox httpd service whose
 *   index page and label carry `marker`, so a test can tell which commit's definition is running.
 * - `uniqueProjectName`, `composeDown`, `removeProjectContainers` for isolation and cleanup (call them in t.after).
 *
 * Compose files used in tests must set `pull_policy: never` and `init: true`.
 */
import { chmod, copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { exec, type ExecResult } from '../../src/lib/exec.ts';

/** Tag of the locally built test image. */
export const BUSYBOX_IMAGE = 'shiparr-test/busybox:latest';
/** Label carrying the marker of {@link webServiceCompose}. */
export const MARKER_LABEL = 'shiparr.test.marker';
const PROJECT_LABEL = 'com.docker.compose.project';

/** Runs the docker CLI (no shell). Never rejects. */
export function docker(
  args: string[],
  opts: { timeoutMs?: number; input?: string | Buffer; env?: NodeJS.ProcessEnv } = {},
): Promise<ExecResult> {
  return exec('docker', args, { timeoutMs: opts.timeoutMs ?? 120_000, input: opts.input, env: opts.env });
}

/** Runs `docker compose` (v2) with the given args in `cwd`. Never rejects. */
export function compose(
  cwd: string,
  args: string[],
  opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): Promise<ExecResult> {
  return exec('docker', ['compose', ...args], { cwd, timeoutMs: opts.timeoutMs ?? 120_000, env: opts.env });
}

let available: Promise<{ ok: boolean; reason: string }> | undefined;

function probe(): Promise<{ ok: boolean; reason: string }> {
  available ??= docker(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 15_000 }).then((r) =>
    r.code === 0 && r.stdout.trim()
      ? { ok: true, reason: `engine ${r.stdout.trim()}` }
      : { ok: false, reason: (r.error ?? r.output.trim().split('\n').at(-1) ?? `exit ${r.code}`) || 'no answer' },
  );
  return available;
}

/** true when a Docker engine answers through the `docker` CLI (result cached per process). */
export async function dockerAvailable(): Promise<boolean> {
  return (await probe()).ok;
}

/**
 * Call first in a Docker test: returns true when an engine is reachable. Otherwise skips the test (`t.skip`) and
 * returns false — or throws when `SHIPARR_REQUIRE_DOCKER=1`, so CI cannot pass by skipping.
 * @example if (!(await requireDocker(t))) return;
 */
export async function requireDocker(t: TestContext): Promise<boolean> {
  const p = await probe();
  if (p.ok) return true;
  if (process.env['SHIPARR_REQUIRE_DOCKER'] === '1') {
    throw new Error(`Docker engine required (SHIPARR_REQUIRE_DOCKER=1) but not reachable: ${p.reason}`);
  }
  t.skip(`no Docker engine: ${p.reason}`);
  return false;
}

let image: Promise<string> | undefined;

/**
 * Builds {@link BUSYBOX_IMAGE} once (skipped when the engine already has it): a rootfs with the host's static
 * busybox, a symlink per applet (sh, httpd, wget, sleep…), imported with `docker import`. Returns the tag.
 */
export function ensureBusyboxImage(): Promise<string> {
  image ??= buildBusyboxImage().catch((err: unknown) => {
    image = undefined;
    throw err;
  });
  return image;
}

async function buildBusyboxImage(): Promise<string> {
  if ((await docker(['image', 'inspect', '--format', '{{.Id}}', BUSYBOX_IMAGE], { timeoutMs: 30_000 })).code === 0)
    return BUSYBOX_IMAGE;
  const busybox = process.env['SHIPARR_TEST_BUSYBOX'] ?? '/bin/busybox';
  const list = await exec(busybox, ['--list'], { timeoutMs: 10_000 });
  if (list.code !== 0)
    throw new Error(`cannot build ${BUSYBOX_IMAGE}: ${busybox} --list failed: ${list.error ?? list.output}`);

  const dir = await mkdtemp(path.join(os.tmpdir(), 'shiparr-busybox-'));
  try {
    const root = path.join(dir, 'rootfs');
    for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'tmp', 'www', 'proc', 'sys', 'dev', 'root']) {
      await mkdir(path.join(root, d), { recursive: true });
    }
    await chmod(path.join(root, 'tmp'), 0o1777);
    await copyFile(busybox, path.join(root, 'bin/busybox'));
    await chmod(path.join(root, 'bin/busybox'), 0o755);
    // Relative symlinks (unlike `busybox --install -s`, which may point at the host path) work inside the image.
    for (const applet of list.stdout
      .split('\n')
      .map((s) => s.trim())
      .filter(Boolean)) {
      if (applet === 'busybox' || applet.includes('/')) continue;
      await symlink('busybox', path.join(root, 'bin', applet)).catch(() => undefined);
    }
    await writeFile(
      path.join(root, 'etc/passwd'),
      'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n',
    );
    await writeFile(path.join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
    await writeFile(path.join(root, 'www/index.html'), 'shiparr test image\n');

    const tar = path.join(dir, 'rootfs.tar');
    const t = await exec('tar', ['-C', root, '-cf', tar, '.'], { timeoutMs: 60_000 });
    if (t.code !== 0) throw new Error(`cannot build ${BUSYBOX_IMAGE}: tar failed: ${t.output}`);
    const r = await docker([
      'import',
      '--change',
      'CMD ["sh"]',
      '--change',
      'ENV PATH=/bin:/sbin:/usr/bin:/usr/sbin',
      tar,
      BUSYBOX_IMAGE,
    ]);
    if (r.code !== 0) throw new Error(`cannot build ${BUSYBOX_IMAGE}: docker import failed: ${r.output}`);
    return BUSYBOX_IMAGE;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A compose-valid, collision-free project name: `<prefix>-<pid>-<random>` (lowercase). */
export function uniqueProjectName(prefix: string): string {
  const clean =
    prefix
      .toLowerCase()
      .replace(/[^a-z0-9_-]+/g, '-')
      .replace(/^[^a-z0-9]+/, '') || 't';
  return `${clean}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

/** `docker compose -p <project> down --remove-orphans --volumes --timeout 1` (needs no compose file). Never rejects. */
export async function composeDown(project: string, opts: { cwd?: string } = {}): Promise<ExecResult> {
  return compose(opts.cwd ?? os.tmpdir(), ['-p', project, 'down', '--remove-orphans', '--volumes', '--timeout', '1']);
}

/** Force-removes every container and network labelled with the project (cleanup that works when compose can't). */
export async function removeProjectContainers(project: string): Promise<number> {
  const filter = `label=${PROJECT_LABEL}=${project}`;
  const ps = await docker(['ps', '-aq', '--filter', filter]);
  const ids = ps.stdout
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean);
  if (ids.length) await docker(['rm', '-f', '-v', ...ids]);
  const nets = await docker(['network', 'ls', '-q', '--filter', filter]);
  const netIds = nets.stdout
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean);
  if (netIds.length) await docker(['network', 'rm', ...netIds]);
  return ids.length;
}

/** Registers cleanup of the project (compose down, then forced removal by label) on the test. */
export function cleanupProject(t: TestContext, project: string): void {
  t.after(async () => {
    await composeDown(project);
    await removeProjectContainers(project);
  });
}

export interface WebServiceOptions {
  image: string;
  /** false: the healthcheck is `exit 1`, so the container turns unhealthy after ~2 s. */
  healthy: boolean;
  /** Served as the index page, set as env MARKER and as label `shiparr.test.marker`. */
  marker?: string;
  /** Service name (default `web`). */
  service?: string;
  /** Publishes container port 80 on 127.0.0.1:<hostPort>. */
  hostPort?: number;
}

/** Compose YAML for one busybox httpd service with a 1 s healthcheck (see {@link WebServiceOptions}). */
export function webServiceCompose(o: WebServiceOptions): string {
  const marker = o.marker ?? 'none';
  const q = (s: string): string => JSON.stringify(s);
  const test = o.healthy ? '["CMD", "wget", "-q", "-O-", "http://127.0.0.1/"]' : '["CMD-SHELL", "exit 1"]';
  return [
    'services:',
    `  ${o.service ?? 'web'}:`,
    `    image: ${q(o.image)}`,
    '    pull_policy: never',
    '    init: true',
    // $$ escapes compose interpolation: the container's shell expands MARKER.
    '    command: ["sh", "-c", "echo \\"$$MARKER\\" > /www/index.html && exec httpd -f -p 80 -h /www"]',
    '    environment:',
    `      MARKER: ${q(marker)}`,
    '    labels:',
    `      ${MARKER_LABEL}: ${q(marker)}`,
    ...(o.hostPort ? ['    ports:', `      - "127.0.0.1:${o.hostPort}:80"`] : []),
    '    healthcheck:',
    `      test: ${test}`,
    '      interval: 1s',
    '      timeout: 2s',
    '      retries: 2',
    '',
  ].join('\n');
}

/** A compose file in a fresh temp dir; returns the dir. Removed in t.after. */
export async function composeDir(t: TestContext, yaml: string, file = 'compose.yaml'): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'shiparr-compose-'));
  await writeFile(path.join(dir, file), yaml);
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}
