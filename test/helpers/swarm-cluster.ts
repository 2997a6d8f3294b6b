/**
 * @module Docker Swarm test harness: extra `dockerd` engines, each in a network namespace the harness creates, joined
 * into a swarm. The shared engine is never touched (no `swarm init` on it): every swarm lives on these engines only.
 *
 * One node: `startSwarmCluster({ nodes: 1 })` starts one engine whose only network is its namespace's loopback and
 * makes it a manager advertising 127.0.0.1. Two nodes: two namespaces joined by a veth pair (10.213.0.1/24 and .2,
 * nothing else routed), the manager advertises its veth address and the second engine joins with the worker token.
 *
 * Each engine gets its own data root, exec root, socket, pid file and containerd namespaces; dockerd is started with
 * `nsenter --net=/run/netns/N` (not `ip netns exec`, which remounts /sys and hides the cgroup mounts). `dispose()`
 * leaves the swarm, stops every dockerd and waits for it to exit, then deletes the namespaces and directories — also
 * when a start step failed half-way. Needs root, `ip`, `nsenter` and `dockerd`.
 *
 * Skips: {@link requireSwarm} skips a test with the exact error of the step that failed, or fails it when
 * `SHIPARR_REQUIRE_DOCKER=1`.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { exec, type ExecResult } from '../../src/lib/exec.ts';
import { BUSYBOX_IMAGE, docker, ensureBusyboxImage } from './docker.ts';
import { until } from './wait.ts';

/** One engine of a test swarm. */
interface SwarmEngine {
  /** Network namespace name (`/run/netns/<netns>`). */
  netns: string;
  /** DOCKER_HOST value: `unix://<socket>`. */
  host: string;
  socket: string;
  /** Address the node uses for swarm traffic (127.0.0.1 on a one-node swarm). */
  address: string;
  /** `docker -H <host> …` (no shell). Never rejects. */
  docker(args: string[], opts?: { timeoutMs?: number; input?: string | Buffer }): Promise<ExecResult>;
}

export interface SwarmCluster {
  manager: SwarmEngine;
  /** Worker nodes (empty on a one-node swarm). */
  workers: SwarmEngine[];
  dispose(): Promise<void>;
}

/** Every engine the harness starts, across files in this process: teardown on exit if a test forgot. */
interface Started {
  netns: string;
  dir: string;
  pid: number | null;
  engine?: SwarmEngine;
}

const run = (file: string, args: string[], timeoutMs = 60_000): Promise<ExecResult> => exec(file, args, { timeoutMs });

async function must(what: string, r: Promise<ExecResult>): Promise<ExecResult> {
  const res = await r;
  if (res.code !== 0) throw new Error(`${what}: ${(res.error ?? res.output).trim() || `exit ${res.code}`}`);
  return res;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function startEngine(s: Started, address: string): Promise<SwarmEngine> {
  const socket = path.join(s.dir, 'd.sock');
  const host = `unix://${socket}`;
  const ns = path.basename(s.dir);
  const child = spawn(
    'nsenter',
    [
      `--net=/run/netns/${s.netns}`,
      'dockerd',
      '--data-root',
      path.join(s.dir, 'data'),
      '--exec-root',
      path.join(s.dir, 'x'),
      '--pidfile',
      path.join(s.dir, 'd.pid'),
      '-H',
      host,
      '--containerd-namespace',
      `sw-${ns}`,
      '--containerd-plugins-namespace',
      `sw-${ns}-plugins`,
      '--log-level',
      'warn',
    ],
    { detached: true, stdio: ['ignore', 'ignore', 'ignore'] },
  );
  child.unref();
  const started = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  await started;
  // nsenter execs dockerd: the child's pid is the daemon's.
  s.pid = child.pid ?? null;
  const engine: SwarmEngine = {
    netns: s.netns,
    host,
    socket,
    address,
    docker: (args, opts = {}) => docker(['-H', host, ...args], opts),
  };
  s.engine = engine;
  try {
    await until(
      async () => s.pid !== null && isAlive(s.pid) && (await engine.docker(['info'], { timeoutMs: 10_000 })).code === 0,
      `dockerd in netns ${s.netns} to answer`,
      60_000,
      200,
    );
  } catch (err) {
    const info = await engine.docker(['info'], { timeoutMs: 10_000 });
    throw new Error(
      `dockerd in netns ${s.netns} did not start: ${s.pid !== null && isAlive(s.pid) ? (info.error ?? info.output).trim() : 'the process exited'} (${String(err)})`,
    );
  }
  // The test image comes from the shared engine: no registry is reachable in tests.
  await ensureBusyboxImage();
  await loadImage(engine);
  return engine;
}

/** `docker save | docker -H S load` through a pipe (the image is binary: no string round trip). */
async function loadImage(engine: SwarmEngine): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const save = spawn('docker', ['save', BUSYBOX_IMAGE], { stdio: ['ignore', 'pipe', 'pipe'] });
    const load = spawn('docker', ['-H', engine.host, 'load', '-q'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    save.stderr.on('data', (b: Buffer) => (err += b.toString()));
    load.stderr.on('data', (b: Buffer) => (err += b.toString()));
    save.stdout.pipe(load.stdin);
    load.once('error', reject);
    save.once('error', reject);
    load.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`loading ${BUSYBOX_IMAGE} into ${engine.host}: ${err.trim()}`)),
    );
  });
}

async function stopEngine(s: Started): Promise<void> {
  if (s.engine) await s.engine.docker(['swarm', 'leave', '--force'], { timeoutMs: 30_000 });
  const pid = s.pid ?? Number((await readFile(path.join(s.dir, 'd.pid'), 'utf8').catch(() => '')).trim());
  if (pid > 0 && isAlive(pid)) {
    process.kill(pid, 'SIGTERM');
    try {
      await until(() => !isAlive(pid), `dockerd ${pid} to exit`, 30_000, 100);
    } catch {
      process.kill(pid, 'SIGKILL');
      await until(() => !isAlive(pid), `dockerd ${pid} to exit after SIGKILL`, 10_000, 100).catch(() => undefined);
    }
  }
  // Containers' mounts under the data root (overlay, shm) are gone with their shims; unmount leftovers anyway.
  await run('sh', ['-c', `grep -o " ${s.dir}[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l`]);
  await run('ip', ['netns', 'del', s.netns]);
  await rm(s.dir, { recursive: true, force: true });
}

/** A short, unique namespace name (`sw<pid><n>`): interface and socket paths have length limits. */
let seq = 0;
const nsName = (): string => `sw${process.pid}${seq++}`;

async function newNode(): Promise<Started> {
  // Short paths: containerd's sockets live under the exec root and unix socket paths are limited to 108 bytes.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sw-'));
  const s: Started = { netns: nsName(), dir, pid: null };
  await must(`ip netns add ${s.netns}`, run('ip', ['netns', 'add', s.netns]));
  await must('loopback up', run('ip', ['netns', 'exec', s.netns, 'ip', 'link', 'set', 'lo', 'up']));
  return s;
}

/**
 * Starts a swarm of `nodes` engines (1 or 2) in fresh network namespaces. Rejects with the exact error of the step
 * that failed, after tearing down whatever it had started.
 */
export async function startSwarmCluster(opts: { nodes: 1 | 2 }): Promise<SwarmCluster> {
  const nodes: Started[] = [];
  const dispose = async (): Promise<void> => {
    // Workers leave first, then the manager.
    for (const s of nodes.reverse()) await stopEngine(s).catch(() => undefined);
    nodes.length = 0;
  };
  try {
    for (let i = 0; i < opts.nodes; i++) nodes.push(await newNode());
    const [m, w] = nodes as [Started, Started | undefined];
    let managerAddr = '127.0.0.1';
    if (w) {
      const a = `v${m.netns}`.slice(0, 15);
      const b = `v${w.netns}`.slice(0, 15);
      await must('veth pair', run('ip', ['link', 'add', a, 'type', 'veth', 'peer', 'name', b]));
      await must('veth to netns', run('ip', ['link', 'set', a, 'netns', m.netns]));
      await must('veth to netns', run('ip', ['link', 'set', b, 'netns', w.netns]));
      for (const [s, dev, addr] of [
        [m, a, '10.213.0.1/24'],
        [w, b, '10.213.0.2/24'],
      ] as const) {
        await must('veth address', run('ip', ['netns', 'exec', s.netns, 'ip', 'addr', 'add', addr, 'dev', dev]));
        await must('veth up', run('ip', ['netns', 'exec', s.netns, 'ip', 'link', 'set', dev, 'up']));
      }
      managerAddr = '10.213.0.1';
    }
    const manager = await startEngine(m, managerAddr);
    await must(
      'docker swarm init',
      manager.docker(['swarm', 'init', '--advertise-addr', managerAddr, '--listen-addr', `${managerAddr}:2377`]),
    );
    const workers: SwarmEngine[] = [];
    if (w) {
      const worker = await startEngine(w, '10.213.0.2');
      const token = (await must('join token', manager.docker(['swarm', 'join-token', '-q', 'worker']))).stdout.trim();
      await must(
        'docker swarm join',
        worker.docker(['swarm', 'join', '--token', token, '--advertise-addr', '10.213.0.2', '10.213.0.1:2377']),
      );
      workers.push(worker);
      await until(
        async () =>
          (await manager.docker(['node', 'ls', '--format', '{{.Status}}'])).stdout.trim().split('\n').join(',') ===
          'Ready,Ready',
        'both swarm nodes Ready',
        60_000,
        200,
      );
    }
    return { manager, workers, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}

/** Why a swarm cannot run here (not root, a tool missing), or null. */
export async function swarmUnavailable(): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'the swarm tests start engines in network namespaces and need root';
  for (const tool of ['ip', 'nsenter', 'dockerd']) {
    const r = await run('sh', ['-c', `command -v ${tool}`], 10_000);
    if (r.code !== 0) return `${tool} is not installed`;
  }
  const d = await docker(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 15_000 });
  if (d.code !== 0) return `no Docker engine: ${(d.error ?? d.output).trim()}`;
  return null;
}

/**
 * Skips the test with `reason` (or throws under `SHIPARR_REQUIRE_DOCKER=1`) when it is not null; returns true when
 * the test can go on.
 */
export function requireSwarm(t: TestContext, reason: string | null): boolean {
  if (reason === null) return true;
  if (process.env['SHIPARR_REQUIRE_DOCKER'] === '1') {
    throw new Error(`swarm engines required (SHIPARR_REQUIRE_DOCKER=1) but unavailable: ${reason}`);
  }
  t.skip(reason);
  return false;
}
