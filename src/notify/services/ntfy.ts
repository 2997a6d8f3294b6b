/** @module ntfy (Shoutrrr `ntfy://[USER:PASS@]HOST/TOPIC?…`): the message is the raw body, everything else is headers. */
import { NotificationUrlError, UrlOptions, decodePart } from '../options.ts';
import { expect2xx, type NotificationMessage, type SendContext } from '../transport.ts';
import { MASKED, aliases, basicAuth, headerValue, maskUserinfo, pickTitle } from './common.ts';

type NtfyPriority = 'Min' | 'Low' | 'Default' | 'High' | 'Max';

export interface NtfyConfig {
  service: 'ntfy';
  scheme: 'https' | 'http';
  host: string;
  topic: string;
  user: string;
  password: string;
  title?: string;
  priority: NtfyPriority;
  tags: string[];
  actions: string[];
  click: string;
  attach: string;
  filename: string;
  delay: string;
  email: string;
  icon: string;
  cache: boolean;
  firebase: boolean;
  secrets: string[];
}

const OPTIONS = aliases({
  title: [],
  priority: [],
  tags: [],
  actions: [],
  click: [],
  attach: [],
  filename: [],
  delay: ['at', 'in'],
  email: [],
  icon: [],
  cache: [],
  firebase: [],
  scheme: [],
});
const PRIORITIES: Record<string, NtfyPriority> = {
  min: 'Min',
  '1': 'Min',
  low: 'Low',
  '2': 'Low',
  default: 'Default',
  '3': 'Default',
  high: 'High',
  '4': 'High',
  max: 'Max',
  '5': 'Max',
  urgent: 'Max',
};

export function parseNtfy(u: URL): NtfyConfig {
  if (!u.host) throw new NotificationUrlError('ntfy: missing host (ntfy://HOST/TOPIC, e.g. ntfy://ntfy.sh/my-topic)');
  const topic = decodePart('ntfy', u.pathname.replace(/^\/+|\/+$/g, ''), 'topic');
  if (!topic) throw new NotificationUrlError('ntfy: missing topic (ntfy://HOST/TOPIC)');
  const o = new UrlOptions('ntfy', u.searchParams, OPTIONS);
  const rawPriority = o.str('priority', 'default').toLowerCase();
  const priority = PRIORITIES[rawPriority];
  if (!priority)
    throw new NotificationUrlError('ntfy: option "priority" must be min, low, default, high, max/urgent or 1-5');
  const password = decodePart('ntfy', u.password, 'password');
  return {
    service: 'ntfy',
    scheme: o.choice('scheme', ['https', 'http'] as const, 'https'),
    host: u.host,
    topic,
    user: decodePart('ntfy', u.username, 'user'),
    password,
    ...(o.has('title') ? { title: o.str('title') } : {}),
    priority,
    tags: o.list('tags'),
    actions: o.list('actions', ';'),
    click: o.str('click'),
    attach: o.str('attach'),
    filename: o.str('filename'),
    delay: o.str('delay'),
    email: o.str('email'),
    icon: o.str('icon'),
    cache: o.bool('cache', true),
    firebase: o.bool('firebase', true),
    // The topic is a shared secret on public servers: delivery errors echoing the URL must not show it.
    secrets: [password, topic].filter((s) => s.length >= 4),
  };
}

/** Masks the password and the topic: on a public server such as ntfy.sh, knowing the topic is enough to read along. */
export function maskNtfy(u: URL): void {
  maskUserinfo(u, { pass: true });
  if (u.pathname !== '' && u.pathname !== '/') u.pathname = `/${MASKED}`;
}

/** The request headers Shoutrrr sends (each only when set). */
function ntfyHeaders(cfg: NtfyConfig, msg: NotificationMessage): Record<string, string> {
  const h: Record<string, string> = {};
  // Credentials only with a password: ntfy access tokens go as the password with an empty user.
  if (cfg.password) h.Authorization = basicAuth(cfg.user, cfg.password);
  const title = pickTitle(cfg.title, msg.title);
  if (title) h.Title = headerValue(title);
  h.Priority = cfg.priority;
  if (cfg.tags.length) h.Tags = headerValue(cfg.tags.join(','));
  if (cfg.delay) h.Delay = headerValue(cfg.delay);
  if (cfg.actions.length) h.Actions = headerValue(cfg.actions.join(';'));
  if (cfg.click) h.Click = headerValue(cfg.click);
  if (cfg.attach) h.Attach = headerValue(cfg.attach);
  if (cfg.filename) h.Filename = headerValue(cfg.filename);
  if (cfg.email) h.Email = headerValue(cfg.email);
  if (cfg.icon) h['X-Icon'] = headerValue(cfg.icon);
  if (!cfg.cache) h.Cache = 'no';
  if (!cfg.firebase) h.Firebase = 'no';
  return h;
}

export async function sendNtfy(cfg: NtfyConfig, msg: NotificationMessage, ctx: SendContext): Promise<void> {
  const url = `${cfg.scheme}://${cfg.host}/${cfg.topic.split('/').map(encodeURIComponent).join('/')}`;
  // A Buffer body keeps fetch from adding a text/plain Content-Type (Shoutrrr sends none).
  await ctx.fetch(
    { method: 'POST', url, headers: ntfyHeaders(cfg, msg), body: Buffer.from(msg.body, 'utf8') },
    expect2xx,
  );
}
