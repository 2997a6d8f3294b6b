/**
 * @module Fake forges for commit-status tests: a node:http server per forge implementing exactly its documented status
 * endpoint, path and authentication, recording every status request and answering `201` with a status object like
 * the forge does. It also serves git: requests for `…/<name>.git/…` are relayed to a test git server's
 * `/<name>.git/…`, so a clone URL can live on the forge's origin (as on a real forge: Gitea's default API root is
 * derived from it).
 *
 * - GitHub: `POST /repos/{owner}/{repo}/statuses/{sha}`, `Authorization: Bearer <token>` (or `token <token>`),
 *   states pending|success|failure|error, `401 {"message":"Bad credentials"}`.
 * - Gitea: `POST /api/v1/repos/{owner}/{repo}/statuses/{sha}`, `Authorization: token <token>`, states
 *   pending|success|error|failure|warning.
 * - GitLab: `POST /api/v4/projects/{id}/statuses/{sha}` with `id` the URL-encoded `namespace/project` (`%2F`, a raw
 *   `/` is a 404 as on gitlab.com), `PRIVATE-TOKEN: <token>`, states pending|running|success|failed|canceled|skipped.
 *
 * `failFor(ms)` answers every status request `500` for that long (still recorded); `outage(ms)` starts such a
 * period at the first status request and holds it until `release()` too.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type ForgeKind = 'github' | 'gitea' | 'gitlab';

/** One status request as the forge received it. */
export interface ForgeRequest {
  /** The raw request path (not decoded). */
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown> | null;
  /** Date.now() when it arrived. */
  at: number;
  /** The HTTP status the fake answered. */
  answered: number;
}

export interface FakeForge {
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  readonly kind: ForgeKind;
  /** Status requests received, in order (git traffic is not recorded). */
  readonly requests: ForgeRequest[];
  /** Answers status requests `500` from now for `ms`; returns the Date.now() at which it recovers. */
  failFor(ms: number): number;
  /** Answers status requests `500` from the first one on for at least `ms`, and until `release()` is called. */
  outage(ms: number): { release(): void; readonly recoveredAt: number | null };
  close(): Promise<void>;
}

const ROUTES: Record<ForgeKind, RegExp> = {
  github: /^\/repos\/([^/]+)\/([^/]+)\/statuses\/([0-9a-f]{40})$/,
  gitea: /^\/api\/v1\/repos\/([^/]+)\/([^/]+)\/statuses\/([0-9a-f]{40})$/,
  gitlab: /^\/api\/v4\/projects\/([^/]+)\/statuses\/([0-9a-f]{40})$/,
};
const STATES: Record<ForgeKind, string[]> = {
  github: ['pending', 'success', 'failure', 'error'],
  gitea: ['pending', 'success', 'error', 'failure', 'warning'],
  gitlab: ['pending', 'running', 'success', 'failed', 'canceled', 'skipped'],
};

function authorised(kind: ForgeKind, headers: http.IncomingHttpHeaders, token: string): boolean {
  if (kind === 'gitlab') return headers['private-token'] === token;
  const auth = headers.authorization ?? '';
  return kind === 'github' ? auth === `Bearer ${token}` || auth === `token ${token}` : auth === `token ${token}`;
}

/**
 * Starts a fake forge on 127.0.0.1. `tokens`: the tokens it accepts. `git`: the base URL of a test git server
 * (`http://127.0.0.1:PORT`) that `…/<name>.git/…` requests are relayed to.
 */
export async function startFakeForge(kind: ForgeKind, opts: { tokens: string[]; git?: string }): Promise<FakeForge> {
  const requests: ForgeRequest[] = [];
  let failUntil = 0;
  let held: { ms: number; startedAt: number | null; released: boolean; recoveredAt: number | null } | null = null;
  const failing = () => {
    if (held) {
      held.startedAt ??= Date.now();
      if (!held.released || Date.now() < held.startedAt + held.ms) return true;
      held.recoveredAt ??= Date.now();
    }
    return Date.now() < failUntil;
  };
  let ids = 0;
  const server = http.createServer((req, res) => {
    const rawPath = (req.url ?? '/').split('?')[0] ?? '/';
    const gitPath = /\/([^/]+\.git)(\/.*)?$/.exec(rawPath);
    if (gitPath && opts.git) {
      const query = (req.url ?? '').includes('?') ? `?${(req.url ?? '').split('?')[1]}` : '';
      const upstream = http.request(
        `${opts.git}/${gitPath[1]}${gitPath[2] ?? ''}${query}`,
        { method: req.method, headers: { ...req.headers, host: new URL(opts.git).host } },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      upstream.on('error', () => {
        res.statusCode = 502;
        res.end();
      });
      req.pipe(upstream);
      return;
    }
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      let body: Record<string, unknown> | null = null;
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        body = null;
      }
      const route = req.method === 'POST' ? ROUTES[kind].exec(rawPath) : null;
      const answer = (status: number, json: unknown) => {
        if (route) requests.push({ path: rawPath, headers: req.headers, body, at: Date.now(), answered: status });
        res.writeHead(status, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify(json));
      };
      if (!route) return answer(404, { message: 'Not Found' });
      if (failing()) return answer(500, { message: 'Internal Server Error' });
      if (!opts.tokens.some((t) => authorised(kind, req.headers, t)))
        return answer(401, kind === 'gitlab' ? { message: '401 Unauthorized' } : { message: 'Bad credentials' });
      const state = typeof body?.state === 'string' ? body.state : '';
      if (!STATES[kind].includes(state))
        return answer(kind === 'gitlab' ? 400 : 422, { message: `state ${JSON.stringify(state)} is invalid` });
      const sha = kind === 'gitlab' ? route[2] : route[3];
      ids += 1;
      answer(201, {
        id: ids,
        state,
        sha,
        description: body?.description ?? null,
        target_url: body?.target_url ?? null,
        ...(kind === 'gitlab' ? { name: body?.name ?? 'default' } : { context: body?.context ?? 'default' }),
        created_at: new Date().toISOString(),
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    kind,
    requests,
    failFor(ms) {
      failUntil = Date.now() + ms;
      return failUntil;
    },
    outage(ms) {
      const h = { ms, startedAt: null, released: false, recoveredAt: null };
      held = h;
      return {
        release: () => void (h.released = true),
        get recoveredAt() {
          return h.recoveredAt;
        },
      };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
