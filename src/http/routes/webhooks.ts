/**
 * @module POST /api/webhooks/:provider: push events from GitHub, GitLab, Gitea/Forgejo or anything (generic).
 * Not behind Basic Auth: each matched repository requires a valid signature with its own `webhook_secret` or the
 * global SHIPARR_WEBHOOK_SECRET. A repository with neither never accepts webhooks (unsigned requests must not deploy).
 * A valid delivery only triggers a check (`repo.check`), never a deploy of a commit named by the payload.
 */
import { Router } from '@koa/router';
import { NotFoundError } from '../../errors.ts';
import { normaliseRepoUrl } from '../../lib/git-url.ts';
import { BODY_LIMIT, parseJson, readRawBody } from '../body.ts';
import { BadRequestError, UnauthorizedError } from '../errors.ts';
import type { HttpDeps } from '../ports.ts';
import { classifyEvent, decodeBody, extractPush, isProvider, signedBytes, verifySignature } from '../webhooks.ts';

export function webhookRoutes(deps: Pick<HttpDeps, 'supervisor' | 'webhookSecret' | 'log'>): Router {
  const router = new Router();
  const log = deps.log.child({ component: 'webhooks' });

  router.post('/api/webhooks/:provider', async (ctx) => {
    const provider = ctx.params['provider'] ?? '';
    if (!isProvider(provider)) throw new NotFoundError(`unknown webhook provider "${provider.slice(0, 40)}"`);
    const raw = await readRawBody(ctx, BODY_LIMIT);
    const { kind, event } = classifyEvent(provider, ctx.headers);
    if (kind === 'ping') {
      ctx.body = { pong: true };
      return;
    }
    if (kind === 'ignored') {
      ctx.body = { ignored: true, event };
      return;
    }
    // JSON body, or the `payload` field of a form body; the same bytes are parsed here and (for Gitea/Forgejo
    // form deliveries) verified below, so what is checked is exactly what was signed.
    const body = decodeBody(ctx.get('content-type'), raw);
    const push = extractPush(provider, parseJson(body.payload));
    if (push.urls.length === 0) throw new BadRequestError('payload names no repository URL', 'INVALID_PAYLOAD');
    const urls = new Set(push.urls);
    const candidates =
      push.branch === null
        ? []
        : deps.supervisor
            .webhookTargets()
            .filter((t) => t.branch === push.branch && urls.has(normaliseRepoUrl(t.url) ?? ''));

    const signed = signedBytes(provider, body);
    const matched: string[] = [];
    let refused = 0;
    for (const target of candidates) {
      const secret = target.webhookSecret || deps.webhookSecret;
      if (!secret || !verifySignature(provider, ctx.headers, signed, secret)) {
        refused += 1;
        continue;
      }
      matched.push(target.key);
    }
    if (candidates.length > 0 && matched.length === 0) {
      log.warn(
        { provider, repositories: candidates.map((c) => c.key), ip: ctx.ip },
        'webhook refused: missing or invalid signature',
      );
      throw new UnauthorizedError('missing or invalid webhook signature');
    }
    const triggered = matched.filter((key) => deps.supervisor.check(key, 'webhook'));
    log.info({ provider, branch: push.branch, matched, triggered: triggered.length, refused }, 'webhook received');
    ctx.status = 202;
    ctx.body = { matched };
  });

  return router;
}
