/**
 * Discord's size limits: long messages are split into embeds of at most 2,000 characters (at whitespace when it can),
 * at most 10 embeds and 6,000 characters per request, and each request goes out as its own POST.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sendNotification } from '../../../src/notify/index.ts';
import { discordBatches } from '../../../src/notify/services/discord.ts';
import { startCaptureServer } from './http-capture.ts';

const chars = (s: string): number => [...s].length;

test('without splitLines a long text becomes embeds of ≤ 2000 characters, broken at whitespace, nothing lost', () => {
  const words = Array.from({ length: 900 }, (_, i) => `word${i}`);
  const text = words.join(' ');
  const batches = discordBatches(text, 'Deploy failed', false);
  const embeds = batches.flat();
  assert.ok(embeds.length >= 3, `expected several embeds, got ${embeds.length}`);
  for (const e of embeds) {
    assert.ok(chars(e.description) <= 2000, `embed of ${chars(e.description)} characters`);
    assert.doesNotMatch(e.description, /^\s|\s$/, 'pieces are trimmed at the break');
  }
  // Breaking at spaces keeps every word whole and in order.
  assert.deepEqual(
    embeds
      .map((e) => e.description)
      .join(' ')
      .split(' '),
    words,
  );
  assert.equal(embeds[0]?.title, 'Deploy failed');
  assert.ok(
    embeds.slice(1).every((e) => e.title === undefined),
    'only the first embed carries the title',
  );
});

test('a run without whitespace is cut hard at 2000 characters; multi-byte characters count once', () => {
  const text = '🚀'.repeat(4500);
  const embeds = discordBatches(text, '', false).flat();
  assert.deepEqual(
    embeds.map((e) => chars(e.description)),
    [2000, 2000, 500],
  );
  assert.equal(embeds.map((e) => e.description).join(''), text);
  assert.equal(embeds[0]?.title, undefined, 'no empty title');
});

test('splitLines: one embed per non-empty line, over-long lines shortened with an ellipsis, 10 embeds per request', () => {
  const lines = Array.from({ length: 23 }, (_, i) => (i === 4 ? 'x'.repeat(2500) : `line ${i}`));
  const batches = discordBatches(`${lines.join('\n')}\n\n`, 'T', true);
  assert.deepEqual(
    batches.map((b) => b.length),
    [10, 10, 3],
  );
  const long = batches[0]?.[4]?.description ?? '';
  assert.equal(chars(long), 2000);
  assert.ok(long.endsWith('…'));
  assert.equal(batches[2]?.[2]?.description, 'line 22');
});

test('a request never carries more than 6000 characters: the next embed opens a new request', () => {
  const lines = ['a', 'b', 'c', 'd'].map((c) => c.repeat(1900));
  const batches = discordBatches(lines.join('\n'), 'Title', true);
  // 5 + 3 × 1900 = 5705 fits; a fourth line would make 7605.
  assert.deepEqual(
    batches.map((b) => b.length),
    [3, 1],
  );
  for (const b of batches) assert.ok(b.reduce((n, e) => n + chars(e.description) + chars(e.title ?? ''), 0) <= 6000);
});

test('each batch is POSTed to the webhook in order; an empty message is refused without a request', async () => {
  const s = await startCaptureServer(() => ({ status: 204 }));
  try {
    const body = Array.from({ length: 12 }, (_, i) => `step ${i}`).join('\n');
    const ok = await sendNotification(
      'discord://tok@42',
      { title: 'Run', body },
      { retryDelayMs: 10, timeoutMs: 5_000, overrides: { discord: s.base } },
    );
    assert.equal(ok.ok, true, ok.error);
    assert.equal(s.requests.length, 2);
    const sent = s.requests.map((r) =>
      (JSON.parse(r.body) as { embeds: { description: string }[] }).embeds.map((e) => e.description),
    );
    assert.deepEqual(sent, [body.split('\n').slice(0, 10), body.split('\n').slice(10)]);

    const empty = await sendNotification(
      'discord://tok@42',
      { title: '', body: ' \n ' },
      { retryDelayMs: 10, timeoutMs: 5_000, overrides: { discord: s.base } },
    );
    assert.equal(empty.ok, false);
    assert.match(empty.error ?? '', /message is empty/);
    assert.equal(s.requests.length, 2, 'no request for an empty message');
  } finally {
    await s.close();
  }
});
