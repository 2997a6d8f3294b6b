/** @module Public API of the notify module: Shoutrrr URLs sent natively (formats and options: docs/notifications.md). */
export {
  parseShoutrrrUrl, validateNotificationUrl, maskNotificationUrl, serviceOf, SERVICES, NotificationUrlError,
  type ServiceName, type ServiceConfig,
} from './url.ts';
export { formatMessage, formatDuration, shortSha, summarizeError, type DeployEvent, type DeployEventKind } from './message.ts';
export { sendNotification, DEFAULT_TIMEOUT_MS, type NotifyResult, type SendOptions, type ServiceOverrides } from './send.ts';
export {
  createNotifier, createMemoryStateStore, isNotifyState, DEFAULT_REPEAT_INTERVAL_MS,
  type Notifier, type NotifierOptions, type NotifyTarget, type NotificationOutcome, type NotifyState, type NotifyStateStore,
} from './notifier.ts';
export type { NotificationMessage } from './transport.ts';
export { deployEventOf, notifyNotice, notifyTargetOf, type DeployNotice } from './deploy-notice.ts';

