/**
 * @module Child-process runner for CLI tools (docker compose, git…): timeout and abort kill the whole process
 * group, output is capped (the tail is kept, where the error usually is), and it never rejects.
 */
import os from 'node:os';
import { spawn } from 'node:child_process';

/** Default cap for each captured stream (and for the interleaved output). */
const DEFAULT_MAX_OUTPUT_BYTES = 256 * 1024;
/** Time between SIGTERM and SIGKILL when a run is killed. */
const KILL_GRACE_MS = 5_000;

export interface ExecOptions {
  cwd?: string;
  /**
   * Merged over `process.env`; a key set to `undefined` removes it. Merging (not replacing) keeps PATH and HOME,
   * which docker needs to find its CLI plugins. With `inheritEnv: false` it is the child's whole environment instead.
   */
  env?: NodeJS.ProcessEnv;
  /**
   * `false`: the child sees only `env` (keys set to `undefined` are dropped), nothing of `process.env`, so it cannot
   * read the daemon's own variables (keys, passwords). The caller then passes PATH, HOME… itself. Default `true`.
   */
  inheritEnv?: boolean;
  /** Hard limit for the run; the process group is killed after it. */
  timeoutMs: number;
  /** Aborting kills the process group, like a timeout. */
  signal?: AbortSignal;
  /** Cap per captured stream in bytes (default 256 KiB); the TAIL is kept. */
  maxOutputBytes?: number;
  /** Written to stdin, which is then closed. Without it stdin is /dev/null so no tool can wait for a prompt. */
  input?: string | Buffer;
  /** SIGTERM → SIGKILL grace (default 5 s). */
  killGraceMs?: number;
  /**
   * Nice value for the child (0–19; default 0). Background tools such as `docker compose` then yield the CPU to the
   * daemon's event loop on small hosts; failures to renice are ignored.
   */
  niceness?: number;
  /** Called with each chunk of stdout or stderr as it arrives (live output); the capture is unchanged. */
  onOutput?: (chunk: Buffer) => void;
}

export interface ExecResult {
  /** Exit code; `null` when killed by a signal or when the command could not be started (see `error`). */
  code: number | null;
  /** Terminating signal name, e.g. 'SIGTERM'. */
  signal: string | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved in arrival order, capped like each stream. */
  output: string;
  /** true when some output was dropped by the cap. */
  truncated: boolean;
  timedOut: boolean;
  aborted: boolean;
  durationMs: number;
  /** Set when the command could not be started, e.g. `spawn docker ENOENT: command not found`. */
  error?: string;
  /** errno code of a start failure, e.g. 'ENOENT', 'EACCES'. */
  errorCode?: string;
}

/** Byte buffer that keeps only the last `max` bytes. */
class TailBuffer {
  readonly #max: number;
  #chunks: Buffer[] = [];
  #size = 0;
  dropped = false;

  constructor(max: number) {
    this.#max = max;
  }

  push(chunk: Buffer): void {
    if (this.#max <= 0) {
      this.dropped ||= chunk.length > 0;
      return;
    }
    if (chunk.length >= this.#max) {
      this.dropped ||= this.#size > 0 || chunk.length > this.#max;
      this.#chunks = [chunk.subarray(chunk.length - this.#max)];
      this.#size = this.#max;
      return;
    }
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    while (this.#size > this.#max) {
      const first = this.#chunks[0] as Buffer;
      const excess = this.#size - this.#max;
      this.dropped = true;
      if (first.length <= excess) {
        this.#chunks.shift();
        this.#size -= first.length;
      } else {
        this.#chunks[0] = first.subarray(excess);
        this.#size -= excess;
      }
    }
  }

  toString(): string {
    let buf = Buffer.concat(this.#chunks, this.#size);
    // A cut may land inside a multi-byte UTF-8 character: skip its continuation bytes instead of emitting U+FFFD.
    if (this.dropped) {
      let i = 0;
      while (i < buf.length && i < 4 && ((buf[i] as number) & 0xc0) === 0x80) i++;
      buf = buf.subarray(i);
    }
    return buf.toString('utf8');
  }
}

function killGroup(pid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    // Negative pid = the whole process group (the child was spawned detached, so it leads its own group).
    process.kill(-pid, sig);
    return true;
  } catch {
    return false;
  }
}

function groupAlive(pid: number): boolean {
  // Signal 0 only probes for existence.
  return killGroup(pid, 0);
}

/**
 * Runs `cmd args` without a shell. Resolves for every outcome: non-zero exit, timeout, abort and start failures
 * (code `null` with `error`). On timeout/abort the process group gets SIGTERM, then SIGKILL after the grace period,
 * so grandchildren (compose plugins, ssh, git-remote-http…) die too.
 */
export function exec(cmd: string, args: readonly string[], opts: ExecOptions): Promise<ExecResult> {
  const started = performance.now();
  const max = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const grace = opts.killGraceMs ?? KILL_GRACE_MS;
  const stdout = new TailBuffer(max);
  const stderr = new TailBuffer(max);
  const output = new TailBuffer(max);

  const result = (extra: Partial<ExecResult>): ExecResult => ({
    code: null,
    signal: null,
    stdout: stdout.toString(),
    stderr: stderr.toString(),
    output: output.toString(),
    truncated: stdout.dropped || stderr.dropped || output.dropped,
    timedOut: false,
    aborted: false,
    durationMs: Math.round(performance.now() - started),
    ...extra,
  });

  if (opts.signal?.aborted) return Promise.resolve(result({ aborted: true, error: 'aborted before start' }));

  return new Promise<ExecResult>((resolve) => {
    const env =
      opts.inheritEnv === false
        ? mergeEnv({}, opts.env ?? {})
        : opts.env
          ? mergeEnv(process.env, opts.env)
          : process.env;
    let child;
    try {
      child = spawn(cmd, args, {
        cwd: opts.cwd,
        env,
        detached: true,
        stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        windowsHide: true,
      });
      if (opts.niceness && child.pid) {
        try {
          os.setPriority(child.pid, Math.min(19, Math.max(0, opts.niceness)));
        } catch {
          // Not permitted or already gone: the run simply keeps the default priority.
        }
      }
    } catch (err) {
      // Synchronous spawn errors: invalid arguments (e.g. a NUL byte).
      resolve(result({ error: (err as Error).message, errorCode: (err as NodeJS.ErrnoException).code }));
      return;
    }

    let settled = false;
    let timedOut = false;
    let aborted = false;
    let killTimer: NodeJS.Timeout | undefined;
    let exitInfo: { code: number | null; signal: string | null } | undefined;

    const kill = (): void => {
      const pid = child.pid;
      if (pid === undefined || killTimer) return;
      killGroup(pid, 'SIGTERM');
      killTimer = setTimeout(() => killGroup(pid, 'SIGKILL'), grace);
    };

    const timer = setTimeout(
      () => {
        timedOut = true;
        kill();
      },
      Math.max(0, opts.timeoutMs),
    );
    const onAbort = (): void => {
      aborted = true;
      kill();
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    const finish = (extra: Partial<ExecResult>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      // Keep the SIGKILL pending only while some member of the group still lives.
      if (killTimer && (child.pid === undefined || !groupAlive(child.pid))) clearTimeout(killTimer);
      resolve(result({ timedOut, aborted, ...exitInfo, ...extra }));
    };

    child.stdout?.on('data', (c: Buffer) => {
      stdout.push(c);
      output.push(c);
      opts.onOutput?.(c);
    });
    child.stderr?.on('data', (c: Buffer) => {
      stderr.push(c);
      output.push(c);
      opts.onOutput?.(c);
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      // Start failure (ENOENT, EACCES…): no process, no 'close' guarantee.
      if (child.pid === undefined) {
        const hint = err.code === 'ENOENT' ? ': command not found' : '';
        finish({ code: null, error: `${err.message}${hint}`, errorCode: err.code });
      }
    });
    child.on('exit', (code, signal) => {
      exitInfo = { code, signal };
      // A grandchild that escaped the group could hold the pipes open forever: stop waiting for 'close' after a while.
      setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish({});
      }, 2_000).unref();
    });
    child.on('close', (code, signal) => {
      exitInfo = { code, signal };
      finish({});
    });

    if (opts.input !== undefined && child.stdin) {
      // The child may exit without reading stdin: ignore EPIPE.
      child.stdin.on('error', () => {});
      child.stdin.end(opts.input);
    }
  });
}

function mergeEnv(base: NodeJS.ProcessEnv, over: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}
