/** @module Public API of the notify module: Shoutrrr URLs sent natively (formats and options: docs/notifications.md). */
export { parseShoutrrrUrl, validateNotificationUrl, maskNotificationUrl, NotificationUrlError } from './url.ts';
export { formatMessage, formatDuration, summarizeError, type DeployEvent } from './message.ts';
export { sendNotification, type NotifyResult } from './send.ts';
export { createNotifier, isNotifyState, type NotifyTarget, type NotifyState } from './notifier.ts';
export { deployEventOf, notifyNotice, notifyTargetOf, type DeployNotice } from './deploy-notice.ts';
export { notifyImageNotice, type ImageNotice } from './image-notice.ts';
