/** @module Public surface of the HTTP layer: the app factory, its ports, metrics and webhook helpers. */
export { createApp, closeEventStreams, openEventStreams } from './app.ts';
export { createMetrics, type Metrics, type MetricsOptions } from './metrics.ts';
export { normaliseRepoUrl, signatureHeaders, verifySignature, type Provider } from './webhooks.ts';
export type * from './ports.ts';
