/**
 * @module What the image watch reports → notifications: "image update available" (a deployed tag now names another
 * digest) and "newer image tag" (a tag within the service's image_policy) to the success URLs, and "image check failed" (wrong credentials, unreachable registry) to the failure
 * URLs, the repository's and the project's global ones. The image watch decides when to send (once per new digest,
 * once per distinct error); nothing here de-duplicates.
 */
import type { RepoConfig } from '../config/schema.ts';
import { summarizeError } from './message.ts';
import type { Notifier } from './notifier.ts';
import type { NotifyResult } from './send.ts';
import type { NotificationMessage } from './transport.ts';

/** One image watch event for one repository. */
export type ImageNotice =
  | {
      kind: 'image_update';
      /** Services running `image` whose tag moved from → to (digests `sha256:…`; from null when unknown). */
      services: string[];
      image: string;
      from: string | null;
      to: string;
      /** `auto`: a deploy pulling the services was asked for; `notify`: nothing is deployed. */
      mode: 'notify' | 'auto';
    }
  | {
      kind: 'image_newer_tag';
      /** Services running `image` (`host/app:1.0`) for which the registry has a newer tag within their policy. */
      services: string[];
      image: string;
      /** The newer tag (`1.1`). */
      tag: string;
      /** `auto` with write-back: the compose file was changed to the new tag; else nothing is changed. */
      action: 'none' | 'write-back';
    }
  | {
      kind: 'image_check_failed';
      /** The registry host the error is about. */
      registry: string;
      services: string[];
      image: string;
      /** Already secret-free (registry errors never carry credentials); masked again when formatted. */
      error: string;
    };

/** `sha256:0123456789ab`: the first 12 hex digits. */
function shortDigest(d: string | null): string {
  if (!d) return 'unknown';
  const i = d.indexOf(':');
  return i >= 0 ? `${d.slice(0, i + 1)}${d.slice(i + 1, i + 13)}` : d.slice(0, 12);
}

/** The title and body of an image watch notice. */
export function formatImageNotice(repo: Pick<RepoConfig, 'project' | 'name'>, n: ImageNotice): NotificationMessage {
  const name = `${repo.project}/${repo.name}`;
  const services = n.services.join(', ');
  if (n.kind === 'image_update') {
    return {
      title: `🆕 ${name}: image update available (${services})`,
      body: [
        `Project: ${repo.project}`,
        `Repository: ${repo.name}`,
        `Service: ${services}`,
        `Image: ${summarizeError(n.image)}`,
        `Digest: ${shortDigest(n.from)} → ${shortDigest(n.to)}`,
        n.mode === 'auto'
          ? 'Action: redeploying the service with the new image'
          : 'Action: none (image_updates: notify)',
      ].join('\n'),
    };
  }
  if (n.kind === 'image_newer_tag') {
    return {
      title: `🆕 ${name}: newer image tag ${n.tag} (${services})`,
      body: [
        `Project: ${repo.project}`,
        `Repository: ${repo.name}`,
        `Service: ${services}`,
        `Image: ${summarizeError(n.image)}`,
        `Newer tag: ${summarizeError(n.tag)}`,
        n.action === 'write-back'
          ? 'Action: the compose file was changed to the new tag (write_back)'
          : 'Action: none (change the tag in the compose file to update)',
      ].join('\n'),
    };
  }
  return {
    title: `⚠️ ${name}: image check failed (registry ${n.registry})`,
    body: [
      `Project: ${repo.project}`,
      `Repository: ${repo.name}`,
      `Service: ${services}`,
      `Image: ${summarizeError(n.image)}`,
      `Error: ${summarizeError(n.error)}`,
    ].join('\n'),
  };
}

/** Sends an image watch notice to the repository's (and the project's) success or failure URLs. Never rejects. */
export async function notifyImageNotice(notifier: Notifier, repo: RepoConfig, n: ImageNotice): Promise<NotifyResult[]> {
  const which = n.kind === 'image_check_failed' ? 'failure' : 'success';
  const urls = [...new Set([...repo.notifications[which], ...repo.globalNotifications[which]])];
  const message = formatImageNotice(repo, n);
  return Promise.all(urls.map((u) => notifier.send(u, message, { timeoutMs: repo.timeouts.notify * 1000 })));
}
