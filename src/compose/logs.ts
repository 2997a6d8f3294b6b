/**
 * @module Container logs for the HTTP API, restricted to containers of managed compose projects: anything else
 * (unknown id, a container without the compose project label, another project) reads as "not found".
 */
import type Dockerode from 'dockerode';
import { PROJECT_LABEL } from './verify.ts';

const MIN_TAIL = 1;
const MAX_TAIL = 5_000;

interface LogQuery {
  /** Number of last lines (clamped to 1..5000). */
  tail: number;
  /** Only lines since this UNIX time (seconds). */
  since?: number;
}

export interface ContainerLogReader {
  /** Demultiplexed text (stdout and stderr interleaved), or `null` when the container is unknown or unmanaged. */
  logs(containerId: string, q: LogQuery): Promise<string | null>;
}

/**
 * Builds the reader. `isManagedProject(name)` says whether a compose project name belongs to a configured repository;
 * it is asked on every call, so config changes apply at once. Engine errors other than 404 reject.
 */
export function createContainerLogReader(
  docker: Dockerode,
  isManagedProject: (project: string) => boolean,
): ContainerLogReader {
  return {
    async logs(containerId, q) {
      const container = docker.getContainer(containerId);
      let info: Dockerode.ContainerInspectInfo;
      try {
        info = await container.inspect();
      } catch (err) {
        if (isNotFound(err)) return null;
        throw err;
      }
      const project = info.Config.Labels?.[PROJECT_LABEL];
      if (!project || !isManagedProject(project)) return null;

      const tail = Math.min(MAX_TAIL, Math.max(MIN_TAIL, Math.floor(Number.isFinite(q.tail) ? q.tail : 100)));
      let raw: Buffer;
      try {
        // Pinned to the inspected id: a name could be re-bound to another container in between.
        const data: unknown = await docker.getContainer(info.Id).logs({
          stdout: true,
          stderr: true,
          follow: false,
          tail,
          ...(q.since !== undefined ? { since: Math.max(0, Math.floor(q.since)) } : {}),
        });
        raw = Buffer.isBuffer(data) ? data : Buffer.from(String(data ?? ''), 'utf8');
      } catch (err) {
        if (isNotFound(err)) return null;
        throw err;
      }
      // With a TTY the engine sends the raw terminal stream; without one, 8-byte-framed stdout/stderr chunks.
      return info.Config.Tty ? raw.toString('utf8') : demuxLogs(raw).toString('utf8');
    },
  };
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
