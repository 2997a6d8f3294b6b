/**
 * @module Container logs for the HTTP API, restricted to containers of managed compose projects: anything else
 * (unknown id, a container without the compose project label, another project) reads as "not found". The engine's
 * answer is streamed and demultiplexed on the fly, keeping only the last LOG_READ_MAX_BYTES (1 MiB): a container
 * that prints huge lines cannot make one request hold its whole log in memory. Dropped output is marked at the top.
 */
import type { IncomingMessage } from 'node:http';
import { PassThrough, type Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { PROJECT_LABEL } from './verify.ts';

const MIN_TAIL = 1;
const MAX_TAIL = 5_000;
/** Most bytes of log text one request returns (the newest are kept). */
export const LOG_READ_MAX_BYTES = 1024 * 1024;

interface LogQuery {
  /** Number of last lines (clamped to 1..5000). */
  tail: number;
  /** Only lines since this UNIX time (seconds). */
  since?: number;
}

export interface ContainerLogReader {
  /** Demultiplexed text (stdout and stderr interleaved), or `null` when the container is unknown or unmanaged. */
  logs(containerId: string, q: LogQuery): Promise<string | null>;
  /**
   * The log as it is produced (the last `tail` lines first), demultiplexed, until `signal` aborts or the container
   * stops (the engine ends the stream); `null` when the container is unknown or unmanaged.
   */
  follow(containerId: string, q: LogQuery, signal: AbortSignal): Promise<Readable | null>;
}

/**
 * Builds the reader. `isManagedProject(name)` says whether a compose project name belongs to a configured repository;
 * it is asked on every call, so config changes apply at once. `docker` is one engine, or a function listing every
 * engine the repositories use (asked per call; the first engine that knows the container, as part of a managed
 * project, answers). Engine errors other than 404 reject when no engine has the container (one that has it outside a
 * managed project makes it "not found").
 */
export function createContainerLogReader(
  docker: Dockerode | (() => readonly Dockerode[]),
  isManagedProject: (project: string) => boolean,
): ContainerLogReader {
  /** The engine and inspect answer of a managed container, or null. */
  const find = async (
    containerId: string,
  ): Promise<{ docker: Dockerode; info: Dockerode.ContainerInspectInfo } | null> => {
    const engines = typeof docker === 'function' ? docker() : [docker];
    let failure: unknown = null;
    let unmanaged = false;
    for (const engine of engines) {
      let info: Dockerode.ContainerInspectInfo;
      try {
        info = await engine.getContainer(containerId).inspect();
      } catch (err) {
        // A down engine must not hide the containers of the others.
        if (!isNotFound(err)) failure ??= err;
        continue;
      }
      const project = info.Config.Labels?.[PROJECT_LABEL];
      if (project && isManagedProject(project)) return { docker: engine, info };
      unmanaged = true;
    }
    // An engine that has the container outside a managed project answers for it: not found, whatever a down
    // engine said.
    if (failure && !unmanaged) throw failure;
    return null;
  };
  return {
    async follow(containerId, q, signal) {
      const found = await find(containerId);
      if (!found) return null;
      const { docker, info } = found;
      return followLogs(docker, `/containers/${encodeURIComponent(info.Id)}/logs?`, info.Config.Tty, q, signal);
    },
    async logs(containerId, q) {
      const found = await find(containerId);
      if (!found) return null;
      const { docker, info } = found;
      // Pinned to the inspected id: a name could be re-bound to another container in between.
      return readLogs(docker, `/containers/${encodeURIComponent(info.Id)}/logs?`, info.Config.Tty, q);
    },
  };
}

/** Opens an engine log stream (`/containers/<id>/logs?` or `/services/<id>/logs?`); null on 404. */
async function dialLogs(
  docker: Dockerode,
  logPath: string,
  q: LogQuery,
  follow: boolean,
  signal?: AbortSignal,
): Promise<IncomingMessage | null> {
  const tail = Math.min(MAX_TAIL, Math.max(MIN_TAIL, Math.floor(Number.isFinite(q.tail) ? q.tail : 100)));
  try {
    return await new Promise<IncomingMessage>((resolve, reject) => {
      docker.modem.dial(
        {
          path: logPath,
          method: 'GET',
          isStream: true,
          ...(signal ? { abortSignal: signal } : {}),
          statusCodes: {
            200: true,
            404: 'no such container or service',
            500: 'server error',
            503: 'node is not a swarm manager',
          },
          options: {
            stdout: true,
            stderr: true,
            follow,
            tail,
            ...(q.since !== undefined ? { since: Math.max(0, Math.floor(q.since)) } : {}),
          },
        },
        (err, data) => (err ? reject(err) : resolve(data as IncomingMessage)),
      );
    });
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

/**
 * The last `q.tail` lines of a container's or a service's log (`logPath`, see {@link dialLogs}), demultiplexed
 * unless `tty`, keeping the last LOG_READ_MAX_BYTES; null when the engine answers 404. Dialled as a stream (dockerode
 * buffers the whole answer otherwise); the engine ends it since follow is false.
 */
export async function readLogs(docker: Dockerode, logPath: string, tty: boolean, q: LogQuery): Promise<string | null> {
  const stream = await dialLogs(docker, logPath, q, false);
  if (!stream) return null;
  // With a TTY the engine sends the raw terminal stream; without one, 8-byte-framed stdout/stderr chunks.
  const keep = new TailKeeper(LOG_READ_MAX_BYTES);
  const demux = tty ? null : new StreamDemuxer((payload) => keep.push(payload));
  for await (const chunk of stream as AsyncIterable<Buffer | string>) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk, 'utf8');
    if (demux) demux.push(buf);
    else keep.push(buf);
  }
  demux?.end();
  return keep.text();
}

/**
 * A container's or a service's log as it is produced (the last `q.tail` lines first), demultiplexed unless `tty`,
 * until `signal` aborts or the engine ends the stream; null when the engine answers 404.
 */
export async function followLogs(
  docker: Dockerode,
  logPath: string,
  tty: boolean,
  q: LogQuery,
  signal: AbortSignal,
): Promise<Readable | null> {
  const stream = await dialLogs(docker, logPath, q, true, signal);
  if (!stream) return null;
  // The client's request timeout is an idle timeout: a quiet container must not end the follow.
  stream.socket?.setTimeout(0);
  const out = new PassThrough();
  const demux = tty ? null : new StreamDemuxer((payload) => out.write(payload));
  stream.on('data', (chunk: Buffer) => (demux ? demux.push(chunk) : out.write(chunk)));
  stream.on('end', () => out.end());
  stream.on('error', () => out.end());
  stream.on('close', () => out.end());
  // Backpressure: a slow reader pauses the engine stream rather than buffering without bound.
  out.on('drain', () => stream.resume());
  stream.on('data', () => {
    if (out.writableNeedDrain) stream.pause();
  });
  out.on('close', () => stream.destroy());
  signal.addEventListener('abort', () => stream.destroy(), { once: true });
  return out;
}

/** Keeps the last `max` bytes pushed through it, counting what it dropped. */
class TailKeeper {
  #chunks: Buffer[] = [];
  #size = 0;
  #dropped = 0;
  readonly #max: number;
  constructor(max: number) {
    this.#max = max;
  }

  push(b: Buffer): void {
    if (b.length === 0) return;
    this.#chunks.push(b);
    this.#size += b.length;
    while (this.#size > this.#max) {
      const first = this.#chunks[0] as Buffer;
      const over = this.#size - this.#max;
      if (first.length <= over) {
        this.#chunks.shift();
        this.#size -= first.length;
        this.#dropped += first.length;
      } else {
        this.#chunks[0] = first.subarray(over);
        this.#size -= over;
        this.#dropped += over;
      }
    }
  }

  /** The kept text; after a cut it starts at the next whole line, below a marker saying how much was left out. */
  text(): string {
    let buf = Buffer.concat(this.#chunks);
    let dropped = this.#dropped;
    if (dropped === 0) return buf.toString('utf8');
    const nl = buf.indexOf(0x0a);
    if (nl >= 0 && nl < buf.length - 1) {
      dropped += nl + 1;
      buf = buf.subarray(nl + 1);
    }
    return `…[${dropped} bytes of older output truncated; the last ${buf.length} bytes follow]\n${buf.toString('utf8')}`;
  }
}

/**
 * Incremental {@link demuxLogs}: frames may be split across chunks. Output that stops looking framed is passed
 * through raw from there on, like the buffered version.
 */
class StreamDemuxer {
  #pending: Buffer = Buffer.alloc(0);
  #need = 0;
  #raw = false;
  readonly #emit: (payload: Buffer) => void;
  constructor(emit: (payload: Buffer) => void) {
    this.#emit = emit;
  }

  push(chunk: Buffer): void {
    if (this.#raw) return this.#emit(chunk);
    let buf = this.#pending.length ? Buffer.concat([this.#pending, chunk]) : chunk;
    for (;;) {
      if (this.#need > 0) {
        const take = Math.min(this.#need, buf.length);
        this.#emit(buf.subarray(0, take));
        this.#need -= take;
        buf = buf.subarray(take);
        if (this.#need > 0) break;
      }
      if (buf.length < 8) break;
      const type = buf[0] as number;
      if (type > 2 || buf[1] !== 0 || buf[2] !== 0 || buf[3] !== 0) {
        this.#raw = true;
        this.#emit(buf);
        buf = Buffer.alloc(0);
        break;
      }
      this.#need = buf.readUInt32BE(4);
      buf = buf.subarray(8);
    }
    // Only a partial header (< 8 bytes) is ever held back.
    this.#pending = Buffer.from(buf);
  }

  /** A cut-off header at the very end is dropped, as in {@link demuxLogs}. */
  end(): void {
    this.#pending = Buffer.alloc(0);
  }
}

function isNotFound(err: unknown): boolean {
  return (err as { statusCode?: number }).statusCode === 404;
}

/**
 * Strips Docker's stream multiplexing headers (`[type, 0, 0, 0, len u32 BE]` + payload, type 0/1/2), keeping the
 * payloads in order. A buffer that does not look framed is returned unchanged.
 */
export function demuxLogs(buf: Buffer): Buffer {
  const parts: Buffer[] = [];
  let i = 0;
  while (i + 8 <= buf.length) {
    const type = buf[i] as number;
    if (type > 2 || buf[i + 1] !== 0 || buf[i + 2] !== 0 || buf[i + 3] !== 0) {
      // Not a frame header: either not multiplexed at all, or misaligned. Keep the rest raw.
      return i === 0 ? buf : Buffer.concat([...parts, buf.subarray(i)]);
    }
    const len = buf.readUInt32BE(i + 4);
    const end = Math.min(buf.length, i + 8 + len);
    parts.push(buf.subarray(i + 8, end));
    i = end;
  }
  // Fewer than 8 bytes left: raw text when nothing was framed, else a cut-off header (dropped).
  if (i === 0) return buf;
  return Buffer.concat(parts);
}
