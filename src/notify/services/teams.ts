/**
 * @module Microsoft Teams via Power Automate "Workflows" webhooks (the maintained Shoutrrr fork's
 * `teams://?host=<workflow URL>`): an Adaptive Card message. Office 365 connector URLs are retired by Microsoft.
 */
import { NotificationUrlError, UrlOptions } from '../options.ts';
import { httpProblem, type HttpResponse, type NotificationMessage, type SendContext } from '../transport.ts';
import { MASKED, aliases, pickTitle } from './common.ts';

export interface TeamsConfig {
  service: 'teams';
  webhookUrl: string;
  title?: string;
  color: string;
  secrets: string[];
}

const OPTIONS = aliases({ host: [], title: [], color: [] });
const LOGIC_APPS = /^[a-z0-9.-]+\.logic\.azure(\.[a-z]{2,3})?$/i;
const POWER_PLATFORM = /^[a-z0-9.-]+\.environment\.api\.powerplatform\.com$/i;

export function parseTeams(u: URL): TeamsConfig {
  if (u.host || u.username) {
    throw new NotificationUrlError(
      'teams: Office 365 connector URLs are retired; use teams://?host=<percent-encoded Workflows webhook URL>',
    );
  }
  const o = new UrlOptions('teams', u.searchParams, OPTIONS);
  const host = o.str('host');
  if (!host)
    throw new NotificationUrlError('teams: missing webhook (teams://?host=<percent-encoded Workflows webhook URL>)');
  let target: URL;
  try {
    target = new URL(host);
  } catch {
    throw new NotificationUrlError('teams: host must be the full Workflows webhook URL (https://…/workflows/…)');
  }
  const hostOk = LOGIC_APPS.test(target.hostname) || POWER_PLATFORM.test(target.hostname);
  if (target.protocol !== 'https:' || !hostOk || !target.pathname.includes('/workflows/')) {
    throw new NotificationUrlError(
      'teams: host must be a Power Automate Workflows URL (https://….logic.azure.com/…/workflows/…)',
    );
  }
  return {
    service: 'teams',
    webhookUrl: target.href,
    ...(o.has('title') ? { title: o.str('title') } : {}),
    color: teamsColor(o.str('color')),
    secrets: [...target.searchParams.values()].filter((v) => v.length >= 8),
  };
}

export function maskTeams(u: URL): void {
  const host = u.searchParams.get('host');
  if (!host) return;
  let shown = MASKED;
  try {
    shown = `${new URL(host).origin}/${MASKED}`;
  } catch {
    // Not a URL: mask it whole.
  }
  const next = new URLSearchParams();
  for (const [k, v] of u.searchParams) next.append(k, k.toLowerCase() === 'host' ? shown : v);
  u.search = next.toString();
}

/** Maps the fork's colour names onto Adaptive Card text colours. */
function teamsColor(color: string): string {
  const c = color.toLowerCase();
  if (['red', 'danger', 'error', 'attention'].includes(c)) return 'attention';
  if (['orange', 'yellow', 'warn', 'warning'].includes(c)) return 'warning';
  if (['green', 'success', 'good'].includes(c)) return 'good';
  if (['blue', 'accent', 'info'].includes(c)) return 'accent';
  if (c === 'dark' || c === 'light') return c;
  return 'default';
}

function teamsPayload(cfg: TeamsConfig, msg: NotificationMessage): Record<string, unknown> {
  const title = pickTitle(cfg.title, msg.title);
  const body: Record<string, unknown>[] = [];
  if (title) body.push({ type: 'TextBlock', text: title, weight: 'Bolder', size: 'Medium', color: cfg.color });
  for (const line of msg.body.split('\n')) {
    if (line.trim() !== '') body.push({ type: 'TextBlock', text: line, wrap: true });
  }
  return {
    type: 'message',
    attachments: [
      {
        contentType: 'application/vnd.microsoft.card.adaptive',
        contentUrl: null,
        content: {
          $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
          type: 'AdaptiveCard',
          version: '1.2',
          body,
        },
      },
    ],
  };
}

export async function sendTeams(cfg: TeamsConfig, msg: NotificationMessage, ctx: SendContext): Promise<void> {
  await ctx.fetch(
    {
      method: 'POST',
      url: cfg.webhookUrl,
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(teamsPayload(cfg, msg)),
    },
    (res: HttpResponse) => (res.status === 200 || res.status === 202 ? null : httpProblem(res)),
  );
}
