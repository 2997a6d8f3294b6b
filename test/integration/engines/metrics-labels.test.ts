/**
 * @module Engine labels in the metrics: engines on the same endpoint with different TLS (or ssh) settings get
 * distinct `engine` labels (the masked endpoint plus a short hash of the settings), an endpoint used once keeps its
 * plain label, and no label carries a credential or a file's content.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { engineId } from '../../../src/compose/engine.ts';
import { createMetrics } from '../../../src/http/metrics.ts';
import type { EngineStatus } from '../../../src/http/ports.ts';

const TLS_A = { ca: '/certs/a/ca.pem', cert: '/certs/a/cert.pem', key: '/certs/a/key.pem', verify: true };
const TLS_B = { ca: '/certs/b/ca.pem', cert: '/certs/a/cert.pem', key: '/certs/a/key.pem', verify: true };

test('engineId: stable, distinct per settings, free of credentials', () => {
  const a = engineId({ host: 'tcp://10.0.0.5:2376', tls: TLS_A });
  assert.match(a, /^[0-9a-f]{8}$/);
  assert.equal(engineId({ host: 'tcp://10.0.0.5:2376', tls: { ...TLS_A } }), a, 'the same settings, the same id');
  assert.notEqual(engineId({ host: 'tcp://10.0.0.5:2376', tls: TLS_B }), a);
  assert.notEqual(engineId({ host: 'tcp://10.0.0.5:2376', tls: { ...TLS_A, verify: false } }), a);
  assert.notEqual(engineId({ host: 'tcp://10.0.0.5:2376' }), a);
  assert.equal(engineId(undefined), 'default');
  // A password in the URL does not reach the hash: the id is the one of the masked endpoint.
  assert.equal(engineId({ host: 'tcp://me:hunter2-s3cr3t@10.0.0.5:2376', tls: TLS_A }), a);
});

test('/metrics: one endpoint with two TLS settings gives two engine labels; a unique endpoint keeps its own', async () => {
  const host = 'tcp://10.0.0.5:2376';
  const list: EngineStatus[] = [
    { host: 'default', ok: true, version: '20.10.24', repositories: 1, id: engineId(undefined) },
    { host, ok: true, version: '24.0.7', repositories: 2, id: engineId({ host, tls: TLS_A }) },
    {
      host,
      ok: false,
      version: null,
      error: 'x509: unknown authority',
      repositories: 1,
      id: engineId({ host, tls: TLS_B }),
    },
    { host: 'ssh://deploy.example:22', ok: true, version: '25.0.1', repositories: 1, id: 'ffffffff' },
    // The same endpoint and settings twice (a context naming it, and docker_host): one plain label.
    { host: 'unix:///run/other.sock', ok: true, version: '24.0.7', repositories: 1, id: 'aaaaaaaa' },
    { host: 'unix:///run/other.sock', ok: true, version: '24.0.7', repositories: 1, id: 'aaaaaaaa' },
  ];
  const metrics = createMetrics({ defaultMetrics: false, engines: async () => list });
  const text = await metrics.registry.metrics();
  const up = [...text.matchAll(/^shiparr_engine_up\{engine="([^"]+)"\} (\d)$/gm)].map((m) => `${m[1]} ${m[2]}`);
  assert.deepEqual(
    up.sort(),
    [
      `${host}#${engineId({ host, tls: TLS_A })} 1`,
      `${host}#${engineId({ host, tls: TLS_B })} 0`,
      'default 1',
      'ssh://deploy.example:22 1',
      'unix:///run/other.sock 1',
    ].sort(),
  );
  assert.match(text, new RegExp(`^shiparr_engine_info\\{engine="${host}#${list[1]?.id}",version="24.0.7"\\} 1$`, 'm'));
  assert.match(text, /^shiparr_engine_info\{engine="ssh:\/\/deploy.example:22",version="25.0.1"\} 1$/m);
  assert.doesNotMatch(text, /certs|\.pem/, 'no file path in a label');
});
