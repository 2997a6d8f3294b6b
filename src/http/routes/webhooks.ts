/**
 * @module POST /api/webhooks/:provider: push events from GitHub, GitLab, Gitea/Forgejo or anything (generic).
 * Not behind Basic Auth: each matched repository requires a valid signature with its own `webhook_secret` or the
 * global SHIPARR_WEBHOOK_SECRET. A repository with neither never accepts webhooks (unsigned requests must not deploy).
 * A valid delivery only triggers a check (`repo.check`), never a deploy of a commit named by the payload.
 * A delivery no known secret verifies gets the same 401 whether its repository is deployed here or not, and at most
 * SHIPARR_MAX_WEBHOOKS_IN_FLIGHT deliveries are handled at once (503 + Retry-After beyond).
 */
import { Router } from '@koa/router';
import type { Context } from 'koa';
import { NotFoundError } from '../../errors.ts';
import { normaliseRepoUrl } from '../../lib/git-url.ts';
import { BODY_LIMIT, parseJson, readRawBody } from '../body.ts';
import { BadRequestError, UnauthorizedError } from '../errors.ts';
import { inFlightLimit } from '../limits.ts';
import type { HttpDeps } from '../ports.ts';
import {
  classifyEvent,
  decodeBody,
  deliveryIdOf,
  extractPush,
  isProvider,
  type Provider,
  signedBytes,
  verifySignature,
} from '../webhooks.ts';

/** The one refusal message: unknown repository, undeployed branch and bad signature all read the same. */
const WEBHOOK_REFUSED = 'missing or invalid webhook signature';

/** Webhook deliveries handled at once by default (SHIPARR_MAX_WEBHOOKS_IN_FLIGHT). */
const DEFAULT_MAX_IN_FLIGHT = 8;
/** Seconds a refused delivery is told to wait (forges retry failed deliveries on their own schedule anyway). */
const BUSY_RETRY_AFTER_S = 5;

export function webhookRoutes(deps: Pick<HttpDeps, 'supervisor' | 'webhookSecret' | 'log' | 'limits'>): Router {
  const router = new Router();
  const log = deps.log.child({ component: 'webhooks' });
  const inFlight = inFlightLimit(
    deps.limits?.maxWebhooksInFlight ?? DEFAULT_MAX_IN_FLIGHT,
    'webhook deliveries',
    BUSY_RETRY_AFTER_S,
  );

  router.post('/api/webhooks/:provider', async (ctx) => {
    const provider = ctx.params['provider'] ?? '';
    if (!isProvider(provider)) throw new NotFoundError(`unknown webhook provider "${provider.slice(0, 40)}"`);
    const release = inFlight.enter();
    try {
      await handle(ctx, provider);
    } finally {
      release();
    }
  });

  async function handle(ctx: Context, provider: Provider): Promise<void> {
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
    const signed = signedBytes(provider, body);
    const signedWith = (secret: string | undefined): boolean =>
      secret !== undefined && secret !== '' && verifySignature(provider, ctx.headers, signed, secret);

    // Every repository with this URL, whatever the branch: a signature valid for any of them proves the sender
    // knows that repository's secret, and only such a sender may learn that nothing matched.
    const sameUrl = deps.supervisor.webhookTargets().filter((t) => urls.has(normaliseRepoUrl(t.url) ?? ''));
    const candidates = push.branch === null ? [] : sameUrl.filter((t) => t.branch === push.branch);
    const matched = candidates.filter((t) => signedWith(t.webhookSecret || deps.webhookSecret)).map((t) => t.key);
    const refused = candidates.length - matched.length;
    const authenticated =
      matched.length > 0 ||
      signedWith(deps.webhookSecret) ||
      sameUrl.some((t) => t.webhookSecret !== undefined && signedWith(t.webhookSecret));
    if (!authenticated) {
      // The same answer for an unknown repository, a branch that is not deployed and a bad signature: a stranger
      // learns nothing about what is deployed here. Only the log says which case it was.
      log.warn(
        { provider, repositories: candidates.map((c) => c.key), known: sameUrl.length > 0, ip: ctx.ip },
        'webhook refused: missing or invalid signature',
      );
      throw new UnauthorizedError(WEBHOOK_REFUSED);
    }
    // The delivery id goes on the deployment's reason: which delivery of the forge's log started it.
    const deliveryId = deliveryIdOf(provider, ctx.headers);
    const triggered = matched.filter((key) =>
      deps.supervisor.check(key, 'webhook', { triggeredBy: `webhook:${provider}`, webhook: { provider, deliveryId } }),
    );
    log.info(
      { provider, deliveryId, branch: push.branch, matched, triggered: triggered.length, refused },
      'webhook received',
    );
    ctx.status = 202;
    ctx.body = { matched };
  }

  return router;
}
