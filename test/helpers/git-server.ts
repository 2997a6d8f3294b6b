/**
 * @module A real git smart-HTTP server for tests: node:http bridged to `git http-backend` (CGI) over bare
 * repositories in a temp dir, with optional Basic auth, fault injection and traffic counters.
 *
 *   test ──createRepo/commit──▶ private work clone ──git push (filesystem)──▶ <root>/<name>.git
 *   client ──HTTP──▶ node:http (auth, faults, counters) ──CGI env + stdin──▶ git http-backend ──stdout──▶ client
 *
 * Every git process runs with an isolated HOME and no system config, so the developer's own git
 * configuration (signing, hooks, templates, credential helpers) cannot change what tests see.
 */
import { spawn, execFile, execFileSync } from 'node:child_process';
import { mkdtemp, mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { SyncOptions } from '../../src/git/sync.ts';

const execFileAsync = promisify(execFile);

/** Path of the CGI program; Debian/Ubuntu ship it here. Override with SHIPARR_GIT_HTTP_BACKEND. */
const HTTP_BACKEND = process.env.SHIPARR_GIT_HTTP_BACKEND ?? '/usr/lib/git-core/git-http-backend';

export interface GitServerOptions {
  /** When set, every request must carry these HTTP Basic credentials (else 401 + WWW-Authenticate). */
  auth?: { username: string; password: string };
  /**
   * Accept pushes (`git-receive-pack`) without auth too (`http.receivepack=true` in every repository). With `auth`,
   * git http-backend accepts them already (it sees an authenticated REMOTE_USER).
   */
  push?: boolean;
}

/** What a {@link GitServer.setBeforeRequest} hook sees of a request. */
interface RequestInfo {
  method: string;
  /** Decoded path, e.g. `/app.git/info/refs`. */
  path: string;
  /** e.g. `service=git-receive-pack`. */
  query: string;
}

interface CommitOptions {
  /** Branch to commit on (created when missing). Default: the repository's first branch. */
  branch?: string;
  message?: string;
  /**
   * Commit to build on instead of the branch head: a sha or branch name, or `null` for a root commit
   * (an unrelated history). When the result does not descend from the current branch head the push
   * is forced, which is how tests simulate a force-push with new history.
   * For a new branch without `parent`, the new branch starts at the default branch's head.
   */
  parent?: string | null;
}

export interface GitServer {
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  readonly baseUrl: string;
  /** Directory holding the bare repositories (`<root>/<name>.git`). */
  readonly root: string;
  /** Clone URL of a repository: `${baseUrl}/${name}.git`. */
  repoUrl(name: string): string;
  /** Creates a bare repository with a first commit holding `files` (path → content); resolves to its sha. */
  createRepo(
    name: string,
    files: Record<string, string>,
    opts?: { branch?: string; message?: string },
  ): Promise<string>;
  /** Commits on a branch (`null` content deletes a file; always makes a commit, even if nothing changed); resolves to the sha. */
  commit(name: string, files: Record<string, string | null>, opts?: CommitOptions): Promise<string>;
  /** Moves `branch` to `sha` (any commit the server has), like `git push --force`. */
  forcePush(name: string, branch: string, sha: string): Promise<void>;
  /** Current head sha of `branch`, read from the bare repository. Throws when the branch does not exist. */
  head(name: string, branch: string): string;
  /** Answers every request with this HTTP status (e.g. 503) until called with `null`. */
  setUnavailable(status: number | null): void;
  /** Delays every response by `ms` before handling it (0 = off); for timeout tests. */
  setLatency(ms: number): void;
  /**
   * Runs `hook` before each request is handled (after it was counted); the request waits for its promise. For races:
   * e.g. commit on the branch when a client starts a push. `null` removes it.
   */
  setBeforeRequest(hook: ((req: RequestInfo) => Promise<void> | void) | null): void;
  /** HTTP requests received (including refused/faulted ones) since start or the last `resetCounters()`. */
  readonly requestCount: number;
  /** Bytes written to clients on the wire (headers + bodies) since start or the last `resetCounters()`. */
  readonly bytesOut: number;
  /** Bytes received from clients on the wire since start or the last `resetCounters()`. */
  readonly bytesIn: number;
  resetCounters(): void;
  /** Stops the server, drops open connections and deletes every repository. */
  close(): Promise<void>;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

function checkName(name: string): void {
  // Names become paths; refuse anything that could leave the temp dir.
  if (!NAME.test(name) || name.includes('..')) throw new Error(`invalid repository name: ${name}`);
}

function safeDecode(p: string): string {
  try {
    return decodeURIComponent(p);
  } catch {
    return p;
  }
}

/** An environment for git processes that no user or system git config can influence. */
export function isolatedGitEnv(home: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    XDG_CONFIG_HOME: home,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_TERMINAL_PROMPT: '0',
    LANG: 'C',
    LC_ALL: 'C',
  };
}

/** Starts a git smart-HTTP server on 127.0.0.1 on a free port. Always `close()` it (e.g. in `after`). */
export async function startGitServer(opts: GitServerOptions = {}): Promise<GitServer> {
  const base = await mkdtemp(path.join(os.tmpdir(), 'shiparr-git-server-'));
  const root = path.join(base, 'repos');
  const work = path.join(base, 'work');
  const home = path.join(base, 'home');
  await Promise.all([mkdir(root), mkdir(work), mkdir(home)]);

  // Isolated environment for every git process we start (CLI and CGI alike).
  const gitEnv = isolatedGitEnv(home);
  const gitConfig = [
    '-c',
    'user.name=Shiparr Test',
    '-c',
    'user.email=test@shiparr.invalid',
    '-c',
    'commit.gpgsign=false',
    '-c',
    'core.autocrlf=false',
    '-c',
    'init.defaultBranch=main',
    '-c',
    'advice.detachedHead=false',
  ];
  const git = async (cwd: string, args: string[]): Promise<string> => {
    try {
      const { stdout } = await execFileAsync('git', [...gitConfig, ...args], { cwd, env: gitEnv, maxBuffer: 64 << 20 });
      return stdout.trim();
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`git ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`, { cause: err });
    }
  };
  const bareDir = (name: string) => path.join(root, `${name}.git`);
  const workDir = (name: string) => path.join(work, name);
  const defaultBranch = new Map<string, string>();
  // Serialises mutations per repository: tests may fire commits concurrently.
  const queues = new Map<string, Promise<unknown>>();
  const serial = <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const next = (queues.get(name) ?? Promise.resolve()).then(fn, fn);
    queues.set(
      name,
      next.catch(() => undefined),
    );
    return next;
  };

  let unavailable: number | null = null;
  let latencyMs = 0;
  let beforeRequest: ((req: RequestInfo) => Promise<void> | void) | null = null;
  let requestCount = 0;
  const sockets = new Set<Socket>();
  // Wire bytes of closed sockets, plus a baseline per live socket so resetCounters() is exact.
  let closedOut = 0;
  let closedIn = 0;
  const baseline = new Map<Socket, { out: number; in: number }>();
  const pendingTimers = new Set<NodeJS.Timeout>();

  const expectedAuth = opts.auth
    ? `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}`
    : null;

  const children = new Set<ReturnType<typeof spawn>>();

  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    // The client may have given up while we delayed (setLatency): do not start a backend nobody reads.
    if (res.destroyed || req.socket.destroyed) return;
    if (unavailable !== null) {
      req.resume();
      res.writeHead(unavailable, { 'content-type': 'text/plain' }).end('unavailable (test fault)\n');
      return;
    }
    if (expectedAuth !== null && req.headers.authorization !== expectedAuth) {
      req.resume();
      res.writeHead(401, { 'www-authenticate': 'Basic realm="shiparr-test"', 'content-type': 'text/plain' });
      res.end('authentication required\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const env: NodeJS.ProcessEnv = {
      ...gitEnv,
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_PROTOCOL: 'HTTP/1.1',
      SERVER_SOFTWARE: 'shiparr-test-git-server',
      REQUEST_METHOD: req.method ?? 'GET',
      PATH_INFO: safeDecode(url.pathname),
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
      REMOTE_USER: opts.auth?.username ?? '',
      HTTP_GIT_PROTOCOL: String(req.headers['git-protocol'] ?? ''),
      // http-backend inflates gzip request bodies itself when told the encoding.
      HTTP_CONTENT_ENCODING: String(req.headers['content-encoding'] ?? ''),
    };
    if (req.headers['content-length'] !== undefined) env.CONTENT_LENGTH = req.headers['content-length'];
    const child = spawn(HTTP_BACKEND, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    child.on('exit', () => children.delete(child));
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.stdin.on('error', () => {
      /* backend may exit before reading the whole body (e.g. 404) */
    });
    req.pipe(child.stdin);
    res.on('close', () => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });

    let head = Buffer.alloc(0);
    let headersDone = false;
    child.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const crlf = head.indexOf('\r\n\r\n');
      const lf = head.indexOf('\n\n');
      const end = crlf >= 0 && (lf < 0 || crlf < lf) ? crlf + 4 : lf >= 0 ? lf + 2 : -1;
      if (end < 0) return;
      headersDone = true;
      let status = 200;
      let reason: string | undefined;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, end).toString('latin1').split(/\r?\n/)) {
        const i = line.indexOf(':');
        if (i <= 0) continue;
        const key = line.slice(0, i).trim();
        const value = line.slice(i + 1).trim();
        if (key.toLowerCase() === 'status') {
          const m = /^(\d{3})\s*(.*)$/.exec(value);
          if (m) {
            status = Number(m[1]);
            reason = m[2] || undefined;
          }
        } else {
          headers[key] = value;
        }
      }
      res.writeHead(status, reason, headers);
      const rest = head.subarray(end);
      if (rest.length > 0) res.write(rest);
    });
    child.stdout.on('end', () => {
      if (!headersDone && !res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain' }).end(`bad CGI response\n${stderr}`);
        return;
      }
      res.end();
    });
    child.on('error', (err) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`cannot run git http-backend: ${err.message}\n`);
    });
  };

  const server = http.createServer((req, res) => {
    requestCount += 1;
    const hook = beforeRequest;
    if (hook) {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      const info = { method: req.method ?? 'GET', path: safeDecode(url.pathname), query: url.search.slice(1) };
      Promise.resolve()
        .then(() => hook(info))
        .then(
          () => dispatch(req, res),
          (err: unknown) => {
            req.resume();
            if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
            res.end(`test hook failed: ${String(err)}\n`);
          },
        );
      return;
    }
    dispatch(req, res);
  });
  const dispatch = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (latencyMs > 0) {
      const t = setTimeout(() => {
        pendingTimers.delete(t);
        handle(req, res);
      }, latencyMs);
      pendingTimers.add(t);
    } else {
      handle(req, res);
    }
  };
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => {
      const b = baseline.get(socket) ?? { out: 0, in: 0 };
      closedOut += socket.bytesWritten - b.out;
      closedIn += socket.bytesRead - b.in;
      baseline.delete(socket);
      sockets.delete(socket);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;

  const sumLive = (pick: (s: Socket) => number, key: 'out' | 'in'): number => {
    let n = 0;
    for (const s of sockets) n += pick(s) - (baseline.get(s)?.[key] ?? 0);
    return n;
  };

  const writeFiles = async (dir: string, files: Record<string, string | null>): Promise<void> => {
    for (const [rel, content] of Object.entries(files)) {
      const target = path.resolve(dir, rel);
      if (!target.startsWith(dir + path.sep)) throw new Error(`file path escapes the repository: ${rel}`);
      if (content === null) {
        await rm(target, { force: true, recursive: true });
        // git keeps no empty directories: drop them, so a later entry may reuse the name as a file.
        for (let d = path.dirname(target); d !== dir && (await readdir(d).catch(() => null))?.length === 0;) {
          await rm(d, { recursive: true });
          d = path.dirname(d);
        }
      } else {
        await mkdir(path.dirname(target), { recursive: true });
        await writeFile(target, content);
      }
    }
  };

  const commit: GitServer['commit'] = (name, files, copts = {}) =>
    serial(name, async () => {
      checkName(name);
      const dir = workDir(name);
      if (!existsSync(dir)) throw new Error(`unknown repository: ${name}`);
      const branch = copts.branch ?? defaultBranch.get(name) ?? 'main';
      await git(dir, ['fetch', '--quiet', '--prune', 'origin', '+refs/heads/*:refs/remotes/origin/*']);
      const remoteHead = await git(dir, ['rev-parse', '--verify', '--quiet', `refs/remotes/origin/${branch}`]).catch(
        () => '',
      );
      if (copts.parent === null) {
        await git(dir, ['checkout', '--quiet', '--force', '--orphan', `shiparr-tmp-${Date.now()}`]);
        await git(dir, ['rm', '-r', '--quiet', '--cached', '--ignore-unmatch', '.']);
      } else {
        const from =
          copts.parent !== undefined
            ? (await git(dir, ['rev-parse', '--verify', '--quiet', `refs/remotes/origin/${copts.parent}`]).catch(
                () => '',
              )) || copts.parent
            : remoteHead || `refs/remotes/origin/${defaultBranch.get(name) ?? 'main'}`;
        await git(dir, ['checkout', '--quiet', '--force', '--detach', from]);
      }
      await git(dir, ['clean', '-fdxq']);
      await writeFiles(dir, files);
      await git(dir, ['add', '--all']);
      await git(dir, [
        'commit',
        '--quiet',
        '--allow-empty',
        '--no-verify',
        '-m',
        copts.message ?? `update ${Object.keys(files).join(', ') || '(empty)'}`,
      ]);
      const sha = await git(dir, ['rev-parse', 'HEAD']);
      // Always forced: harmless for a fast-forward, and required when `parent` started a new history.
      await git(dir, ['push', '--quiet', '--force', 'origin', `${sha}:refs/heads/${branch}`]);
      return sha;
    });

  return {
    baseUrl,
    root,
    repoUrl: (name) => `${baseUrl}/${name}.git`,
    async createRepo(name, files, ropts = {}) {
      checkName(name);
      if (existsSync(bareDir(name))) throw new Error(`repository already exists: ${name}`);
      const branch = ropts.branch ?? 'main';
      await git(root, ['init', '--quiet', '--bare', `--initial-branch=${branch}`, bareDir(name)]);
      // Like GitHub/GitLab: a client may ask for any commit reachable from a ref (fetch by sha).
      await git(bareDir(name), ['config', 'uploadpack.allowReachableSHA1InWant', 'true']);
      if (opts.push) await git(bareDir(name), ['config', 'http.receivepack', 'true']);
      await git(work, ['init', '--quiet', `--initial-branch=${branch}`, workDir(name)]);
      await git(workDir(name), ['remote', 'add', 'origin', bareDir(name)]);
      defaultBranch.set(name, branch);
      await writeFiles(workDir(name), files);
      await git(workDir(name), ['add', '--all']);
      await git(workDir(name), [
        'commit',
        '--quiet',
        '--allow-empty',
        '--no-verify',
        '-m',
        ropts.message ?? 'initial commit',
      ]);
      await git(workDir(name), ['push', '--quiet', 'origin', `HEAD:refs/heads/${branch}`]);
      return git(workDir(name), ['rev-parse', 'HEAD']);
    },
    commit,
    forcePush: (name, branch, sha) =>
      serial(name, async () => {
        checkName(name);
        // The bare repo holds every object ever pushed, so any earlier sha can become the head again.
        await git(bareDir(name), ['update-ref', `refs/heads/${branch}`, sha]);
      }),
    head(name, branch) {
      checkName(name);
      return execFileSync('git', ['rev-parse', '--verify', `refs/heads/${branch}^{commit}`], {
        cwd: bareDir(name),
        env: gitEnv,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      }).trim();
    },
    setUnavailable(status) {
      unavailable = status;
    },
    setLatency(ms) {
      latencyMs = Math.max(0, ms);
    },
    setBeforeRequest(hook) {
      beforeRequest = hook;
    },
    get requestCount() {
      return requestCount;
    },
    get bytesOut() {
      return closedOut + sumLive((s) => s.bytesWritten, 'out');
    },
    get bytesIn() {
      return closedIn + sumLive((s) => s.bytesRead, 'in');
    },
    resetCounters() {
      requestCount = 0;
      closedOut = 0;
      closedIn = 0;
      for (const s of sockets) baseline.set(s, { out: s.bytesWritten, in: s.bytesRead });
    },
    async close() {
      for (const t of pendingTimers) clearTimeout(t);
      pendingTimers.clear();
      for (const child of children) child.kill('SIGKILL');
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(base, { recursive: true, force: true });
    },
  };
}

/**
 * Builders for git-sync tests: `newDir()` gives a fresh checkout path under `tmp()`, `input(repo, dir)` the sync
 * options for a repository of `server()` (shallow, branch main). Getters, because the server and the temp folder are
 * created in the suite's `before`.
 */
export function syncFixture(
  server: () => GitServer,
  tmp: () => string,
): {
  newDir(): string;
  input(name: string, dir: string, extra?: Partial<SyncOptions>): SyncOptions;
} {
  let n = 0;
  return {
    newDir: () => path.join(tmp(), `co-${++n}`),
    input: (name, dir, extra = {}) => ({
      url: server().repoUrl(name),
      branch: 'main',
      dir,
      shallow: true,
      timeoutMs: 20_000,
      ...extra,
    }),
  };
}
