/**
 * @module Shared pieces of the end-to-end suites that run the real daemon on a real Docker engine: the project-file
 * block of a repository deployed with small timeouts, a wrapper around `docker compose` that records every call (and
 * may run a shell snippet first), and the teardown that removes what a suite created.
 */
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { composeDown, removeProjectContainers } from './docker.ts';

export interface E2eRepoOptions {
  url: string;
  composeProject: string;
  /** Seconds (default 1: a pushed commit is deployed at once). */
  checkInterval?: number;
  /** healthcheck.timeout in seconds (default 20). */
  healthTimeout?: number;
  /** timeouts.apply in seconds (default 90); null leaves the key out. */
  applyTimeout?: number | null;
}

/** The YAML block of one repository under `repositories:` (two-space indented), with `pull: never`. */
export function e2eRepoYaml(name: string, o: E2eRepoOptions): string {
  const lines = [
    `  ${name}:`,
    `    url: ${o.url}`,
    '    branch: main',
    `    check_interval: ${o.checkInterval ?? 1}`,
    `    compose_project: ${o.composeProject}`,
    '    pull: never',
    '    healthcheck:',
    `      timeout: ${o.healthTimeout ?? 20}`,
  ];
  const apply = o.applyTimeout === undefined ? 90 : o.applyTimeout;
  if (apply !== null) lines.push('    timeouts:', `      apply: ${apply}`);
  return `${lines.join('\n')}\n`;
}

export interface ComposeWrapper {
  /** The file every call's arguments are appended to, one line per call. */
  log: string;
  /** How many `compose … up …` calls were made so far. */
  ups(): Promise<number>;
  /** Puts SHIPARR_COMPOSE_COMMAND back as it was. */
  restore(): void;
}

/**
 * Points SHIPARR_COMPOSE_COMMAND at a wrapper in `dir` that logs its arguments, runs `before` (shell, may be empty)
 * and then execs `docker compose`.
 */
export async function useComposeWrapper(dir: string, before = ''): Promise<ComposeWrapper> {
  const log = path.join(dir, 'compose-argv.log');
  const wrapper = path.join(dir, 'compose-wrapper');
  await writeFile(
    wrapper,
    `#!/bin/sh\necho "$*" >> '${log}'\n${before ? `${before}\n` : ''}exec docker compose "$@"\n`,
  );
  await chmod(wrapper, 0o755);
  const saved = process.env.SHIPARR_COMPOSE_COMMAND;
  process.env.SHIPARR_COMPOSE_COMMAND = wrapper;
  return {
    log,
    ups: async () =>
      (await readFile(log, 'utf8').catch(() => '')).split('\n').filter((l) => / up /.test(` ${l} `)).length,
    restore() {
      if (saved === undefined) delete process.env.SHIPARR_COMPOSE_COMMAND;
      else process.env.SHIPARR_COMPOSE_COMMAND = saved;
    },
  };
}

/** Stops the daemon, restores the compose command, removes the compose projects, closes git, deletes `tmp`. */
export async function disposeE2e(parts: {
  daemon?: { dispose(): Promise<void> };
  wrapper?: ComposeWrapper;
  projects?: readonly string[];
  git?: { close(): Promise<void> };
  tmp?: string;
}): Promise<void> {
  await parts.daemon?.dispose().catch(() => undefined);
  parts.wrapper?.restore();
  for (const p of (parts.projects ?? []).filter(Boolean)) {
    await composeDown(p);
    await removeProjectContainers(p);
  }
  await parts.git?.close();
  if (parts.tmp) await rm(parts.tmp, { recursive: true, force: true });
}

/** One server-sent event as the daemon's `/api/events` frames it. */
export interface SseFrame {
  type: string;
  data: Record<string, unknown>;
  receivedAt: number;
}

/**
 * Reads an SSE response body until it ends or is aborted: each `event:`/`data:` frame goes to `onFrame`, the
 * stream's opening `: connected` comment to `onConnected`. Resolves when the stream is over.
 */
export async function readSse(
  body: ReadableStream<Uint8Array> | null,
  onFrame: (f: SseFrame) => void,
  onConnected: () => void = () => undefined,
): Promise<void> {
  if (!body) return;
  const decoder = new TextDecoder();
  let buf = '';
  try {
    for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        if (/^: connected$/m.test(block)) onConnected();
        const type = /^event: (.+)$/m.exec(block)?.[1];
        const data = /^data: (.+)$/m.exec(block)?.[1];
        if (type && data) onFrame({ type, data: JSON.parse(data) as Record<string, unknown>, receivedAt: Date.now() });
      }
    }
  } catch {
    // aborted
  }
}
