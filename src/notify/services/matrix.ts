/**
 * @module Matrix (Shoutrrr `matrix://[USER]:PASSWORD_OR_TOKEN@HOST[:PORT]/?rooms=…`), implemented like the maintained
 * fork: client API v3, `Authorization: Bearer`, idempotent PUT with a transaction id, title prepended.
 */
import { randomUUID } from 'node:crypto';
import { NotificationUrlError, UrlOptions, decodePart } from '../options.ts';
import {
  DeliveryError,
  expect2xx,
  httpProblem,
  jsonBody,
  type HttpResponse,
  type NotificationMessage,
  type SendContext,
} from '../transport.ts';
import { aliases, maskUserinfo, pickTitle } from './common.ts';

export interface MatrixConfig {
  service: 'matrix';
  host: string;
  user: string;
  /** The password when `user` is set, else the access token. */
  password: string;
  rooms: string[];
  disableTls: boolean;
  title?: string;
  secrets: string[];
}

const OPTIONS = aliases({ rooms: ['room'], disabletls: [], title: [] });

export function parseMatrix(u: URL): MatrixConfig {
  if (!u.host) throw new NotificationUrlError('matrix: missing homeserver host (matrix://:TOKEN@HOST/)');
  const password = decodePart('matrix', u.password, 'password');
  if (!password)
    throw new NotificationUrlError('matrix: missing access token or password (matrix://[USER]:TOKEN@HOST/)');
  const o = new UrlOptions('matrix', u.searchParams, OPTIONS);
  return {
    service: 'matrix',
    host: u.host,
    user: decodePart('matrix', u.username, 'user'),
    password,
    // Rooms without a sigil are aliases (Shoutrrr prepends '#').
    rooms: o.list('rooms').map((r) => (r.startsWith('#') || r.startsWith('!') ? r : `#${r}`)),
    disableTls: o.bool('disabletls', false),
    ...(o.has('title') ? { title: o.str('title') } : {}),
    secrets: [password],
  };
}

export function maskMatrix(u: URL): void {
  maskUserinfo(u, { pass: true });
}

export async function sendMatrix(cfg: MatrixConfig, msg: NotificationMessage, ctx: SendContext): Promise<void> {
  const api = `${cfg.disableTls ? 'http' : 'https'}://${cfg.host}/_matrix/client/v3`;
  const json = { 'Content-Type': 'application/json' };
  let token = cfg.password;
  if (cfg.user) {
    const res = await ctx.fetch(
      {
        method: 'POST',
        url: `${api}/login`,
        headers: json,
        body: JSON.stringify({
          type: 'm.login.password',
          identifier: { type: 'm.id.user', user: cfg.user },
          password: cfg.password,
        }),
      },
      checkMatrix,
    );
    const accessToken = (jsonBody(res) as { access_token?: unknown } | undefined)?.access_token;
    if (typeof accessToken !== 'string' || !accessToken) {
      throw new DeliveryError('matrix: login response has no access_token', { retryable: false });
    }
    token = accessToken;
  }
  const auth = { ...json, Authorization: `Bearer ${token}` };
  let roomIds: string[];
  if (cfg.rooms.length > 0) {
    roomIds = [];
    for (const room of cfg.rooms) {
      // Joining is idempotent and resolves aliases to room ids.
      const res = await ctx.fetch(
        { method: 'POST', url: `${api}/join/${encodeURIComponent(room)}`, headers: auth, body: '{}' },
        checkMatrix,
      );
      const roomId = (jsonBody(res) as { room_id?: unknown } | undefined)?.room_id;
      if (typeof roomId !== 'string')
        throw new DeliveryError('matrix: join response has no room_id', { retryable: false });
      roomIds.push(roomId);
    }
  } else {
    const res = await ctx.fetch(
      { method: 'GET', url: `${api}/joined_rooms`, headers: { Authorization: `Bearer ${token}` } },
      checkMatrix,
    );
    const joined = (jsonBody(res) as { joined_rooms?: unknown } | undefined)?.joined_rooms;
    roomIds = Array.isArray(joined) ? joined.filter((r): r is string => typeof r === 'string') : [];
    if (roomIds.length === 0)
      throw new DeliveryError('matrix: the account has joined no rooms and no rooms= were given', { retryable: false });
  }
  const title = pickTitle(cfg.title, msg.title);
  const body = JSON.stringify({ msgtype: 'm.text', body: title ? `${title}\n\n${msg.body}` : msg.body });
  for (const roomId of roomIds) {
    // A stable transaction id per room makes the retry idempotent on the server.
    const txn = randomUUID();
    await ctx.fetch(
      {
        method: 'PUT',
        url: `${api}/rooms/${encodeURIComponent(roomId)}/send/m.room.message/${txn}`,
        headers: auth,
        body,
      },
      checkMatrix,
    );
  }
}

function checkMatrix(res: HttpResponse): string | null {
  if (expect2xx(res) === null) return null;
  const body = jsonBody(res) as { errcode?: unknown; error?: unknown } | undefined;
  if (typeof body?.errcode === 'string')
    return httpProblem(res, `matrix: ${body.errcode}: ${String(body.error ?? '')}`);
  return httpProblem(res);
}
