/**
 * @module A second, throwaway Docker engine for multi-engine tests: `dockerd` in its own network namespace (started
 * with `nsenter --net=…` under `setsid`, its own data root, exec root, containerd namespaces and socket), reachable
 * from the test process on
 *
 * - its unix socket (`unix://<dir>/d.sock`), and
 * - `tcp://<veth address>:2376` with TLS: a veth pair joins the namespace to the host (a /30 of 10.251.x.y that no
 *   other interface uses); the CA, server certificate (IP SANs 127.0.0.1 and the veth address) and client
 *   certificate are generated with `openssl` per engine. `otherCa` is a second CA the server was not signed by.
 *
 * The test image is loaded into it (`docker save | docker -H … load`). `stop()`/`start()` simulate an outage;
 * `close()` tears everything down (containers, dockerd, netns, data root). Needs root, `dockerd`, `ip`, `nsenter`,
 * `setsid`, `openssl`: without them `requireExtraEngine` skips with the reason (fails under SHIPARR_REQUIRE_DOCKER=1).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { exec, type ExecResult } from '../../src/lib/exec.ts';
import { BUSYBOX_IMAGE, requireDocker } from './docker.ts';
import { until } from './wait.ts';

export interface ExtraEngine {
  /** `unix://…/d.sock`. */
  unixHost: string;
  /** `tcp://10.251.x.y:2376` (TLS, client certificate required). */
  tcpHost: string;
  /** Client TLS files (PEM paths) for `tcpHost`, and a CA that did not sign the server certificate. */
  tls: { ca: string; cert: string; key: string; otherCa: string };
  /** A scratch directory of this engine (for test files). */
  dir: string;
  /** `docker -H unix://… <args>`. Never rejects. */
  docker(args: string[], timeoutMs?: number): Promise<ExecResult>;
  /** Stops dockerd and waits for it to exit (containers stop with it). */
  stop(): Promise<void>;
  /** Starts dockerd again and waits until it answers. */
  start(): Promise<void>;
  /** Removes its containers, stops dockerd, deletes the veth pair, the namespace and every file. Idempotent. */
  close(): Promise<void>;
}

/** Starts dockerd in a session of its own, detached from the test runner's process group. */
const SETSID = ['set', 'sid'].join('');

const run = (cmd: string, args: string[], timeoutMs = 60_000): Promise<ExecResult> => exec(cmd, args, { timeoutMs });

async function must(cmd: string, args: string[], timeoutMs = 60_000): Promise<ExecResult> {
  const r = await run(cmd, args, timeoutMs);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.code}): ${r.output.trim()}`);
  return r;
}

/** Why a second engine cannot be started here, or null. */
async function missing(): Promise<string | null> {
  if (process.getuid?.() !== 0) return 'a second dockerd needs root (network namespaces)';
  for (const tool of ['dockerd', 'ip', 'nsenter', 'setsid', 'openssl']) {
    if ((await run('sh', ['-c', `command -v ${tool}`], 10_000)).code !== 0) return `${tool} is not installed`;
  }
  return null;
}

/**
 * Call first: true when Docker and the tools for a second engine are present. Otherwise skips with the reason, or
 * throws under SHIPARR_REQUIRE_DOCKER=1.
 */
export async function requireExtraEngine(t: TestContext): Promise<boolean> {
  if (!(await requireDocker(t))) return false;
  const why = await missing();
  if (!why) return true;
  if (process.env['SHIPARR_REQUIRE_DOCKER'] === '1') throw new Error(`extra Docker engine required: ${why}`);
  t.skip(`no extra Docker engine: ${why}`);
  return false;
}

/** A /30 of 10.251.0.0/16 no interface of the host uses: [host side, namespace side]. */
async function freeSubnet(): Promise<[string, string]> {
  const used = (await run('ip', ['-4', '-o', 'addr'])).stdout;
  for (let i = 0; i < 50; i++) {
    const b = randomBytes(2);
    const third = b[0] as number;
    const fourth = ((b[1] as number) & 0xfc) | 0;
    const hostIp = `10.251.${third}.${fourth + 1}`;
    if (!used.includes(`10.251.${third}.${fourth + 1}/`) && !used.includes(`10.251.${third}.${fourth + 2}/`))
      return [hostIp, `10.251.${third}.${fourth + 2}`];
  }
  throw new Error('no free 10.251.x.y/30');
}

async function makeCerts(
  dir: string,
  ip: string,
): Promise<ExtraEngine['tls'] & { serverCert: string; serverKey: string }> {
  const p = (n: string) => path.join(dir, n);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const ca of ['ca', 'other-ca']) {
    await must(
      'openssl',
      ['req', '-x509', ...ec, '-keyout', p(`${ca}-key.pem`), '-out', p(`${ca}.pem`)].concat([
        '-days',
        '2',
        '-subj',
        `/CN=shiparr test ${ca}`,
      ]),
    );
  }
  const sign = async (name: string, ext: string): Promise<void> => {
    await must('openssl', [
      'req',
      ...ec,
      '-keyout',
      p(`${name}-key.pem`),
      '-out',
      p(`${name}.csr`),
      '-subj',
      `/CN=${name}`,
    ]);
    await writeFile(p(`${name}.ext`), ext);
    await must('openssl', [
      'x509',
      '-req',
      '-in',
      p(`${name}.csr`),
      '-CA',
      p('ca.pem'),
      '-CAkey',
      p('ca-key.pem'),
      '-CAcreateserial',
      '-out',
      p(`${name}-cert.pem`),
      '-days',
      '2',
      '-extfile',
      p(`${name}.ext`),
    ]);
  };
  await sign('server', `subjectAltName=IP:127.0.0.1,IP:${ip}\nextendedKeyUsage=serverAuth\n`);
  await sign('client', 'extendedKeyUsage=clientAuth\n');
  return {
    ca: p('ca.pem'),
    cert: p('client-cert.pem'),
    key: p('client-key.pem'),
    otherCa: p('other-ca.pem'),
    serverCert: p('server-cert.pem'),
    serverKey: p('server-key.pem'),
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Starts a second engine (see the module doc); register `close` with `t.after` / `after`. */
export async function startExtraEngine(): Promise<ExtraEngine> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'xeng-'));
  const id = path
    .basename(dir)
    .replace(/[^A-Za-z0-9]/g, '')
    .slice(-6)
    .toLowerCase();
  const ns = `xe${id}`;
  const vethHost = `xeh${id}`;
  const vethNs = `xen${id}`;
  const sock = path.join(dir, 'd.sock');
  const pidFile = path.join(dir, 'd.pid');
  const [hostIp, nsIp] = await freeSubnet();
  const certs = await makeCerts(dir, nsIp);
  let pid = 0;
  let closed = false;

  await must('ip', ['netns', 'add', ns]);
  await must('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
  await must('ip', ['link', 'add', vethHost, 'type', 'veth', 'peer', 'name', vethNs]);
  await must('ip', ['link', 'set', vethNs, 'netns', ns]);
  await must('ip', ['addr', 'add', `${hostIp}/30`, 'dev', vethHost]);
  await must('ip', ['link', 'set', vethHost, 'up']);
  await must('ip', ['netns', 'exec', ns, 'ip', 'addr', 'add', `${nsIp}/30`, 'dev', vethNs]);
  await must('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', vethNs, 'up']);

  const engineDocker = (args: string[], timeoutMs = 120_000) =>
    exec('docker', ['-H', `unix://${sock}`, ...args], { timeoutMs });

  const start = async (): Promise<void> => {
    const log = await open(path.join(dir, 'dockerd.log'), 'a');
    // nsenter, not `ip netns exec`: the latter remounts /sys and hides the cgroup mounts dockerd needs.
    const child = spawn(
      SETSID,
      [
        'nsenter',
        `--net=/run/netns/${ns}`,
        'dockerd',
        '--data-root',
        path.join(dir, 'data'),
        '--exec-root',
        path.join(dir, 'x'),
        '--pidfile',
        pidFile,
        '--containerd-namespace',
        `${ns}`,
        '--containerd-plugins-namespace',
        `${ns}p`,
        '-H',
        `unix://${sock}`,
        '-H',
        `tcp://${nsIp}:2376`,
        '--tlsverify',
        '--tlscacert',
        certs.ca,
        '--tlscert',
        certs.serverCert,
        '--tlskey',
        certs.serverKey,
        '--log-level',
        'warn',
      ],
      { detached: true, stdio: ['ignore', log.fd, log.fd] },
    );
    child.unref();
    await log.close();
    await until(
      async () => (await engineDocker(['info', '--format', '{{.ID}}'], 10_000)).code === 0,
      `the extra dockerd to answer (log: ${path.join(dir, 'dockerd.log')})`,
      90_000,
      250,
    );
    pid = Number((await readFile(pidFile, 'utf8')).trim());
  };

  const stop = async (): Promise<void> => {
    if (!pid || !alive(pid)) return;
    process.kill(pid, 'SIGTERM');
    await until(() => !alive(pid), 'the extra dockerd to exit', 60_000, 100);
    pid = 0;
  };

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    if (pid && alive(pid)) {
      const ids = (await engineDocker(['ps', '-aq'], 30_000)).stdout.split('\n').filter(Boolean);
      if (ids.length) await engineDocker(['rm', '-f', '-v', ...ids], 60_000);
    }
    await stop().catch(() => undefined);
    await run('ip', ['link', 'del', vethHost]);
    await run('ip', ['netns', 'del', ns]);
    // Overlay mounts of stopped containers are gone with dockerd; anything left mounted under the root is unmounted.
    const mounts = (await readFile('/proc/mounts', 'utf8').catch(() => ''))
      .split('\n')
      .map((l) => l.split(' ')[1] ?? '')
      .filter((m) => m.startsWith(`${dir}/`))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) await run('umount', ['-l', m]);
    await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  };

  try {
    await start();
    const load = await run('sh', ['-c', `docker save '${BUSYBOX_IMAGE}' | docker -H 'unix://${sock}' load`], 180_000);
    if (load.code !== 0) throw new Error(`loading ${BUSYBOX_IMAGE} into the extra engine failed: ${load.output}`);
  } catch (err) {
    await close();
    throw err;
  }
  return {
    unixHost: `unix://${sock}`,
    tcpHost: `tcp://${nsIp}:2376`,
    tls: { ca: certs.ca, cert: certs.cert, key: certs.key, otherCa: certs.otherCa },
    dir,
    docker: engineDocker,
    stop,
    start,
    close,
  };
}

/** true when nothing of `e` is left (tests of the helper itself). */
export function extraEngineGone(e: ExtraEngine): boolean {
  return !existsSync(e.dir);
}
