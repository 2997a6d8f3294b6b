/** Every HTTP service against a real local server: method, path, headers and body exactly as each service's API expects (see docs/notifications.md). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sendNotification } from '../../../src/notify/index.ts';
import { startCaptureServer, type Reply } from './http-capture.ts';

const MSG = { title: 'Deploy ok', body: 'line 1\nline 2' };
const fast = { retryDelayMs: 10, timeoutMs: 5_000 };

async function withServer<T>(
  reply: Parameters<typeof startCaptureServer>[0],
  fn: (s: Awaited<ReturnType<typeof startCaptureServer>>) => Promise<T>,
): Promise<T> {
  const s = await startCaptureServer(reply);
  try {
    return await fn(s);
  } finally {
    await s.close();
  }
}

test('discord: POST /api/webhooks/{id}/{token}, one embed per line, title on the first, 204 = success', async () => {
  await withServer(
    () => ({ status: 204 }),
    async (s) => {
      const r = await sendNotification('discord://tok3n-ABC_def@123456789', MSG, {
        ...fast,
        overrides: { discord: s.base },
      });
      assert.equal(r.ok, true, r.error);
      assert.equal(r.attempts, 1);
      assert.equal(r.url, 'discord://***@123456789');
      assert.equal(s.requests.length, 1);
      const req = s.requests[0]!;
      assert.equal(req.method, 'POST');
      assert.equal(req.url, '/api/webhooks/123456789/tok3n-ABC_def');
      assert.equal(req.headers['content-type'], 'application/json');
      assert.deepEqual(JSON.parse(req.body), {
        embeds: [
          { title: 'Deploy ok', description: 'line 1', color: 0x50d9ff },
          { description: 'line 2', color: 0x50d9ff },
        ],
      });
    },
  );
});

test('discord: 200 is not success (Shoutrrr accepts only 204); username/avatar/color/URL title are sent', async () => {
  await withServer(
    () => ({ status: 200 }),
    async (s) => {
      const r = await sendNotification(
        'discord://tok@42?username=Shiparr&avatar=https://a.example/x.png&color=0xff0000&title=Mine',
        MSG,
        {
          ...fast,
          overrides: { discord: s.base },
        },
      );
      assert.equal(r.ok, false);
      assert.equal(r.status, 200);
      assert.equal(r.attempts, 1, '2xx other than 204 is a permanent failure: no retry');
      assert.deepEqual(JSON.parse(s.requests[0]!.body), {
        embeds: [
          { title: 'Mine', description: 'line 1', color: 0xff0000 },
          { description: 'line 2', color: 0xff0000 },
        ],
        username: 'Shiparr',
        avatar_url: 'https://a.example/x.png',
      });
    },
  );
});

test('discord /raw: the message is POSTed verbatim', async () => {
  await withServer(
    () => ({ status: 204 }),
    async (s) => {
      const r = await sendNotification(
        'discord://tok@42/raw',
        { title: 't', body: '{"content":"hi"}' },
        { ...fast, overrides: { discord: s.base } },
      );
      assert.equal(r.ok, true, r.error);
      assert.equal(s.requests[0]!.body, '{"content":"hi"}');
    },
  );
});

test('telegram: one sendMessage per chat, title as <b> with HTML escaping, thread id, ok:true = success', async () => {
  await withServer(
    () => ({ status: 200, body: '{"ok":true,"result":{}}' }),
    async (s) => {
      const url = 'telegram://123456:AAE-tok_en9@telegram?chats=-1001234,@chan:7&preview=no';
      const r = await sendNotification(
        url,
        { title: 'A & B', body: 'x < y\nline 2' },
        { ...fast, overrides: { telegram: s.base } },
      );
      assert.equal(r.ok, true, r.error);
      assert.equal(r.url, 'telegram://***@telegram?chats=-1001234,@chan:7&preview=no');
      assert.equal(s.requests.length, 2);
      for (const req of s.requests) {
        assert.equal(req.method, 'POST');
        assert.equal(req.url, '/bot123456:AAE-tok_en9/sendMessage');
        assert.equal(req.headers['content-type'], 'application/json');
      }
      assert.deepEqual(JSON.parse(s.requests[0]!.body), {
        text: '<b>A &amp; B</b>\nx &lt; y\nline 2',
        chat_id: '-1001234',
        parse_mode: 'HTML',
        disable_web_page_preview: true,
        disable_notification: false,
        reply_to_message_id: 0,
      });
      assert.deepEqual(JSON.parse(s.requests[1]!.body), {
        text: '<b>A &amp; B</b>\nx &lt; y\nline 2',
        chat_id: '@chan',
        message_thread_id: 7,
        parse_mode: 'HTML',
        disable_web_page_preview: true,
        disable_notification: false,
        reply_to_message_id: 0,
      });
    },
  );
});

test('telegram: ok:false reports the description, Markdown mode drops the title', async () => {
  await withServer(
    () => ({ status: 400, body: '{"ok":false,"description":"Bad Request: chat not found"}' }),
    async (s) => {
      const r = await sendNotification('telegram://1:abc@telegram?chats=5&parsemode=markdown', MSG, {
        ...fast,
        overrides: { telegram: s.base },
      });
      assert.equal(r.ok, false);
      assert.equal(r.attempts, 1);
      assert.match(r.error ?? '', /chat not found/);
      assert.deepEqual(JSON.parse(s.requests[0]!.body), {
        text: 'line 1\nline 2',
        chat_id: '5',
        parse_mode: 'Markdown',
        disable_web_page_preview: false,
        disable_notification: false,
        reply_to_message_id: 0,
      });
    },
  );
});

test('slack webhook: POST /services/T/B/X, title as text, one attachment per line, body "ok" = success', async () => {
  await withServer(
    () => ({ status: 200, body: 'ok' }),
    async (s) => {
      const url = 'slack://hook:T00000000-B00000000-XXXXXXXXXXXXXXXXXXXXXXXX@webhook?color=good&botname=shiparr';
      const r = await sendNotification(url, MSG, { ...fast, overrides: { slack: s.base } });
      assert.equal(r.ok, true, r.error);
      assert.equal(r.url, 'slack://***@webhook?color=good&botname=shiparr');
      const req = s.requests[0]!;
      assert.equal(req.method, 'POST');
      assert.equal(req.url, '/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX');
      assert.equal(req.headers['content-type'], 'application/json');
      assert.equal(req.headers.authorization, undefined);
      assert.deepEqual(JSON.parse(req.body), {
        text: 'Deploy ok',
        username: 'shiparr',
        attachments: [
          { text: 'line 1', color: 'good' },
          { text: 'line 2', color: 'good' },
        ],
      });
    },
  );
});

test('slack legacy form slack://T/B/X posts to the same webhook', async () => {
  await withServer(
    () => ({ status: 200, body: '' }),
    async (s) => {
      const r = await sendNotification('slack://T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX', MSG, {
        ...fast,
        overrides: { slack: s.base },
      });
      assert.equal(r.ok, true, r.error);
      assert.equal(r.url, 'slack://T00000000/***');
      assert.equal(s.requests[0]!.url, '/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX');
    },
  );
});

test('slack bot token: chat.postMessage with Bearer and channel; {"ok":false} is an error', async () => {
  const replies: Reply[] = [
    { status: 200, body: '{"ok":true}' },
    { status: 200, body: '{"ok":false,"error":"channel_not_found"}' },
  ];
  await withServer(
    (_req, i) => replies[i] ?? { status: 500 },
    async (s) => {
      const url =
        'slack://xoxb:123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N@C001CH4NN3L?icon=:rocket:&thread_ts=1.2';
      const r = await sendNotification(url, MSG, { ...fast, overrides: { slack: s.base } });
      assert.equal(r.ok, true, r.error);
      const req = s.requests[0]!;
      assert.equal(req.method, 'POST');
      assert.equal(req.url, '/api/chat.postMessage');
      assert.equal(req.headers.authorization, 'Bearer xoxb-123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N');
      assert.equal(req.headers['content-type'], 'application/json');
      assert.deepEqual(JSON.parse(req.body), {
        text: 'Deploy ok',
        attachments: [{ text: 'line 1' }, { text: 'line 2' }],
        thread_ts: '1.2',
        channel: 'C001CH4NN3L',
        icon_emoji: ':rocket:',
      });
      const r2 = await sendNotification(url, MSG, { ...fast, overrides: { slack: s.base } });
      assert.equal(r2.ok, false);
      assert.match(r2.error ?? '', /channel_not_found/);
      assert.doesNotMatch(r2.error ?? '', /4mt0t4l1YL3g1T5L4cK70k3N/);
    },
  );
});

test('gotify: POST {sub}/message?token=…, JSON {message,title,priority}; useheader sends X-Gotify-Key', async () => {
  await withServer(
    () => ({ status: 200, body: '{"id":1}' }),
    async (s) => {
      const token = 'AbcdefGhijk.-_1';
      const r = await sendNotification(
        `gotify://127.0.0.1:${s.port}/sub/${token}?disabletls=yes&priority=5`,
        MSG,
        fast,
      );
      assert.equal(r.ok, true, r.error);
      assert.equal(r.url, `gotify://127.0.0.1:${s.port}/sub/***?disabletls=yes&priority=5`);
      const req = s.requests[0]!;
      assert.equal(req.method, 'POST');
      assert.equal(req.url, `/sub/message?token=${token}`);
      assert.equal(req.headers['content-type'], 'application/json');
      assert.deepEqual(JSON.parse(req.body), { message: 'line 1\nline 2', title: 'Deploy ok', priority: 5 });

      const r2 = await sendNotification(
        `gotify://127.0.0.1:${s.port}/${token}/?disabletls=yes&useheader=yes`,
        MSG,
        fast,
      );
      assert.equal(r2.ok, true, r2.error);
      assert.equal(s.requests[1]!.url, '/message');
      assert.equal(s.requests[1]!.headers['x-gotify-key'], token);
    },
  );
});

test('ntfy: raw body without Content-Type, Basic auth from userinfo, options as headers', async () => {
  await withServer(
    () => ({ status: 200, body: '{}' }),
    async (s) => {
      const url = `ntfy://alice:pa55word@127.0.0.1:${s.port}/deploys?scheme=http&priority=high&tags=rocket,ok&click=https://x.example/&cache=no`;
      const r = await sendNotification(url, MSG, fast);
      assert.equal(r.ok, true, r.error);
      assert.equal(
        r.url,
        `ntfy://***@127.0.0.1:${s.port}/***?scheme=http&priority=high&tags=rocket,ok&click=https://x.example/&cache=no`,
      );
      const req = s.requests[0]!;
      assert.equal(req.method, 'POST');
      assert.equal(req.url, '/deploys');
      assert.equal(req.body, 'line 1\nline 2');
      assert.equal(req.headers['content-type'], undefined);
      assert.equal(req.headers.authorization, `Basic ${Buffer.from('alice:pa55word').toString('base64')}`);
      assert.equal(req.headers.title, 'Deploy ok');
      assert.equal(req.headers.priority, 'High');
      assert.equal(req.headers.tags, 'rocket,ok');
      assert.equal(req.headers.click, 'https://x.example/');
      assert.equal(req.headers.cache, 'no');
      assert.equal(req.headers.firebase, undefined);
    },
  );
});

test('ntfy: no password → no Authorization; a non-ASCII title goes RFC 2047 encoded', async () => {
  await withServer(
    () => ({ status: 200 }),
    async (s) => {
      const r = await sendNotification(
        `ntfy://127.0.0.1:${s.port}/t?scheme=http`,
        { title: '✅ déployé', body: 'x' },
        fast,
      );
      assert.equal(r.ok, true, r.error);
      const req = s.requests[0]!;
      assert.equal(req.headers.authorization, undefined);
      assert.equal(req.headers.title, `=?UTF-8?B?${Buffer.from('✅ déployé').toString('base64')}?=`);
      assert.equal(req.headers.priority, 'Default');
    },
  );
});

test('pushover: form POST to /1/messages.json with token, user, message, device, title, priority', async () => {
  await withServer(
    () => ({ status: 200, body: '{"status":1}' }),
    async (s) => {
      const r = await sendNotification(
        'pushover://shoutrrr:aT0ken123456@uK3y789/?devices=phone,tablet&priority=1',
        MSG,
        {
          ...fast,
          overrides: { pushover: s.base },
        },
      );
      assert.equal(r.ok, true, r.error);
      assert.equal(r.url, 'pushover://***@***/?devices=phone,tablet&priority=1');
      const req = s.requests[0]!;
      assert.equal(req.method, 'POST');
      assert.equal(req.url, '/1/messages.json');
      assert.equal(req.headers['content-type'], 'application/x-www-form-urlencoded');
      assert.deepEqual(Object.fromEntries(new URLSearchParams(req.body)), {
        token: 'aT0ken123456',
        user: 'uK3y789',
        message: 'line 1\nline 2',
        device: 'phone,tablet',
        title: 'Deploy ok',
        priority: '1',
      });
    },
  );
});

test('pushover: emergency priority 2 is not sent; a 400 reports the API errors', async () => {
  await withServer(
    () => ({ status: 400, body: '{"errors":["user identifier is invalid"],"status":0}' }),
    async (s) => {
      const r = await sendNotification('pushover://x:aT0ken123456@uQiRzpo4DXghDmr9QzzfQu27cmVRsG/?priority=2', MSG, {
        ...fast,
        overrides: { pushover: s.base },
      });
      assert.equal(r.ok, false);
      assert.equal(r.attempts, 1);
      assert.match(r.error ?? '', /user identifier is invalid/);
      assert.equal(new URLSearchParams(s.requests[0]!.body).has('priority'), false);
    },
  );
});

test('matrix (user + password): v3 login, join the alias, PUT m.room.message with Bearer; title prepended', async () => {
  const reply = (req: { method: string; url: string }): Reply => {
    if (req.url === '/_matrix/client/v3/login')
      return { status: 200, body: '{"access_token":"syt_tok","user_id":"@bot:x"}' };
    if (req.url.startsWith('/_matrix/client/v3/join/')) return { status: 200, body: '{"room_id":"!abc:example.org"}' };
    if (req.method === 'PUT') return { status: 200, body: '{"event_id":"$e"}' };
    return { status: 404, body: '{"errcode":"M_UNRECOGNIZED","error":"nope"}' };
  };
  await withServer(reply, async (s) => {
    const r = await sendNotification(
      `matrix://bot:s3cret@127.0.0.1:${s.port}/?rooms=%23ops:example.org&disabletls=yes`,
      MSG,
      fast,
    );
    assert.equal(r.ok, true, r.error);
    assert.equal(r.url, `matrix://***@127.0.0.1:${s.port}/?rooms=%23ops:example.org&disabletls=yes`);
    assert.equal(s.requests.length, 3);
    const [login, join, put] = s.requests;
    assert.equal(login!.method, 'POST');
    assert.deepEqual(JSON.parse(login!.body), {
      type: 'm.login.password',
      identifier: { type: 'm.id.user', user: 'bot' },
      password: 's3cret',
    });
    assert.equal(join!.method, 'POST');
    assert.equal(join!.url, '/_matrix/client/v3/join/%23ops%3Aexample.org');
    assert.equal(join!.headers.authorization, 'Bearer syt_tok');
    assert.equal(put!.method, 'PUT');
    assert.match(
      put!.url,
      /^\/_matrix\/client\/v3\/rooms\/!abc%3Aexample\.org\/send\/m\.room\.message\/[0-9a-f-]{36}$/,
    );
    assert.equal(put!.headers.authorization, 'Bearer syt_tok');
    assert.equal(put!.headers['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(put!.body), { msgtype: 'm.text', body: 'Deploy ok\n\nline 1\nline 2' });
  });
});

test('matrix (access token, no rooms): sends to every joined room; errcode reported', async () => {
  const reply = (req: { method: string; url: string }): Reply => {
    if (req.url === '/_matrix/client/v3/joined_rooms') return { status: 200, body: '{"joined_rooms":["!a:x","!b:x"]}' };
    if (req.url.includes('!b')) return { status: 403, body: '{"errcode":"M_FORBIDDEN","error":"not in room"}' };
    return { status: 200, body: '{"event_id":"$e"}' };
  };
  await withServer(reply, async (s) => {
    const r = await sendNotification(`matrix://:syt_access_tok@127.0.0.1:${s.port}/?disabletls=yes`, MSG, fast);
    assert.equal(r.ok, false);
    assert.match(r.error ?? '', /M_FORBIDDEN/);
    assert.equal(s.requests[0]!.method, 'GET');
    assert.equal(s.requests[0]!.headers.authorization, 'Bearer syt_access_tok');
    assert.deepEqual(
      s.requests.slice(1).map((q) => q.url.split('/send/')[0]),
      ['/_matrix/client/v3/rooms/!a%3Ax', '/_matrix/client/v3/rooms/!b%3Ax'],
    );
  });
});

test('teams (Workflows): POST the workflow URL with an Adaptive Card; 202 = success; sig masked', async () => {
  await withServer(
    () => ({ status: 202 }),
    async (s) => {
      const hook =
        'https://prod-00.westus.logic.azure.com:443/workflows/abc123/triggers/manual/paths/invoke?api-version=2016-06-01&sig=SIGsecret123';
      const r = await sendNotification(`teams://?host=${encodeURIComponent(hook)}&color=red`, MSG, {
        ...fast,
        overrides: { teams: s.base },
      });
      assert.equal(r.ok, true, r.error);
      assert.equal(
        r.url,
        `teams://?host=${encodeURIComponent('https://prod-00.westus.logic.azure.com/***')}&color=red`.replace(
          '%2A%2A%2A',
          '***',
        ),
      );
      const req = s.requests[0]!;
      assert.equal(req.method, 'POST');
      assert.equal(req.url, '/workflows/abc123/triggers/manual/paths/invoke?api-version=2016-06-01&sig=SIGsecret123');
      assert.equal(req.headers['content-type'], 'application/json');
      assert.deepEqual(JSON.parse(req.body), {
        type: 'message',
        attachments: [
          {
            contentType: 'application/vnd.microsoft.card.adaptive',
            contentUrl: null,
            content: {
              $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
              type: 'AdaptiveCard',
              version: '1.2',
              body: [
                { type: 'TextBlock', text: 'Deploy ok', weight: 'Bolder', size: 'Medium', color: 'attention' },
                { type: 'TextBlock', text: 'line 1', wrap: true },
                { type: 'TextBlock', text: 'line 2', wrap: true },
              ],
            },
          },
        ],
      });
    },
  );
});

test('generic: JSON template with sorted keys, $extras, @headers, forwarded and __-escaped query keys', async () => {
  await withServer(
    () => ({ status: 200 }),
    async (s) => {
      const url = `generic://127.0.0.1:${s.port}/hook/path?disabletls=yes&template=json&$source=shiparr&@Authorization=Bearer%20xyz123&@acceptLanguage=en&foo=bar&__title=fwd`;
      const r = await sendNotification(url, MSG, fast);
      assert.equal(r.ok, true, r.error);
      const req = s.requests[0]!;
      assert.equal(req.method, 'POST');
      assert.equal(req.url, '/hook/path?foo=bar&title=fwd');
      assert.equal(req.headers['content-type'], 'application/json');
      assert.equal(req.headers.accept, 'application/json');
      assert.equal(req.headers.authorization, 'Bearer xyz123');
      assert.equal(req.headers['accept-language'], 'en');
      assert.equal(req.body, '{"message":"line 1\\nline 2","source":"shiparr","title":"Deploy ok"}');
      assert.doesNotMatch(r.url, /xyz123/);
    },
  );
});

test('generic+http: every query key forwarded, userinfo → Basic auth, raw text body', async () => {
  await withServer(
    () => ({ status: 204 }),
    async (s) => {
      const r = await sendNotification(`generic+http://u:pw@127.0.0.1:${s.port}/in?x=1&template=json`, MSG, fast);
      assert.equal(r.ok, true, r.error);
      const req = s.requests[0]!;
      assert.equal(req.method, 'POST');
      assert.equal(req.url, '/in?x=1&template=json');
      assert.equal(req.headers.authorization, `Basic ${Buffer.from('u:pw').toString('base64')}`);
      assert.equal(req.headers['content-type'], 'text/plain');
      assert.equal(req.body, 'Deploy ok\nline 1\nline 2', 'raw text: the title is the first line');
    },
  );
});

test('generic: method and custom keys; a 3xx redirect is reported, not followed', async () => {
  await withServer(
    () => ({ status: 302, headers: { location: 'http://127.0.0.1:1/elsewhere' } }),
    async (s) => {
      const url = `generic://127.0.0.1:${s.port}/h?disabletls=yes&method=put&template=json&messagekey=text&titlekey=subject`;
      const r = await sendNotification(url, MSG, fast);
      assert.equal(r.ok, false);
      assert.equal(r.status, 302);
      assert.equal(s.requests.length, 1);
      assert.equal(s.requests[0]!.method, 'PUT');
      assert.equal(s.requests[0]!.body, '{"subject":"Deploy ok","text":"line 1\\nline 2"}');
    },
  );
});
