/** Parsing, validation reasons (never containing the token), masking, and the validator passed to the config schema. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { projectSchemas } from '../../../src/config/schema.ts';
import {
  maskNotificationUrl,
  parseShoutrrrUrl,
  validateNotificationUrl,
  NotificationUrlError,
} from '../../../src/notify/index.ts';

test('valid URLs of every service parse', () => {
  const valid: [string, string][] = [
    ['discord://token@123456789', 'discord'],
    ['telegram://123456:AAE-abc_def@telegram?chats=@chan,-1001', 'telegram'],
    ['slack://hook:T00000000-B00000000-XXXXXXXXXXXXXXXXXXXXXXXX@webhook', 'slack'],
    ['slack://xoxb:123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N@C001CH4NN3L', 'slack'],
    ['gotify://gotify.example.com/AbcdefGhijk.-_1', 'gotify'],
    ['ntfy://ntfy.sh/my-topic?priority=5', 'ntfy'],
    ['pushover://shoutrrr:apptoken@userkey/?devices=a', 'pushover'],
    ['matrix://:syt_token@matrix.example.org/?rooms=!room:example.org', 'matrix'],
    [
      `teams://?host=${encodeURIComponent('https://x.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=s')}`,
      'teams',
    ],
    ['smtp://user:pass@mail.example.com:587/?from=a@example.com&to=b@example.com', 'smtp'],
    ['generic://hooks.example.com/in?template=json', 'generic'],
    ['generic+https://example.com/hook', 'generic'],
  ];
  for (const [url, service] of valid) {
    assert.equal(validateNotificationUrl(url), null, url);
    assert.equal(parseShoutrrrUrl(url).service, service);
  }
});

test('reasons: unknown scheme, missing token or required part, bad options — and never the token itself', () => {
  const cases: [string, RegExp, string?][] = [
    ['foo://bar@baz', /unknown service "foo"/],
    ['not a url', /is not a URL/],
    ['discord://123456789', /discord: missing webhook token/],
    ['discord://t0ken-value@', /discord: the URL cannot be parsed \(missing host/, 't0ken-value'],
    ['discord://t0ken-value@/', /discord: the URL cannot be parsed/, 't0ken-value'],
    ['telegram://123456:AAEsecretvalue@telegram', /telegram: missing chats/, 'AAEsecretvalue'],
    [
      'telegram://notnumeric:AAEsecretvalue@telegram?chats=1',
      /telegram: the bot token must look like/,
      'AAEsecretvalue',
    ],
    ['telegram://123:AAEsecretvalue@telegram?chat=1', /telegram: unknown option "chat"/, 'AAEsecretvalue'],
    ['slack://hook:tooshort@webhook', /slack: the token is not a webhook token/, 'tooshort'],
    ['gotify://host.example', /gotify: missing application token/],
    ['gotify://host.example/Bsecretsecret12', /gotify: the application token must be 15 characters/, 'Bsecretsecret12'],
    ['ntfy://ntfy.sh/', /ntfy: missing topic/],
    ['ntfy://ntfy.sh/t?priority=extreme', /ntfy: option "priority"/],
    ['pushover://shoutrrr@userkey/', /pushover: missing API token/],
    ['matrix://user@matrix.example.org/', /matrix: missing access token or password/],
    ['teams://group@tenant/altid/owner?host=x.webhook.office.com', /teams: Office 365 connector URLs are retired/],
    [
      'teams://?host=https%3A%2F%2Fevil.example.com%2Fworkflows%2Fx',
      /teams: host must be a Power Automate Workflows URL/,
    ],
    ['smtp://mail.example.com/?to=b@example.com', /smtp: missing sender/],
    ['smtp://mail.example.com/?from=a@example.com', /smtp: missing recipients/],
    ['generic://example.com/x?template=custom', /generic: only template=json/],
    ['discord+https://x/y', /custom "\+" URL form is only supported for generic/],
    ['discord://tok@1?color=green', /discord: option "color" must be an integer/],
  ];
  for (const [url, reason, secret] of cases) {
    const got = validateNotificationUrl(url);
    assert.ok(got, `${url} should be rejected`);
    assert.match(got, reason, url);
    if (secret) assert.equal(got.includes(secret), false, `reason for ${url} leaks the token`);
    assert.throws(() => parseShoutrrrUrl(url), NotificationUrlError);
  }
});

test('option keys are case-insensitive and aliases work; bools accept yes/no/1/0', () => {
  const cfg = parseShoutrrrUrl('telegram://1:abc@telegram?CHANNELS=5&Preview=No&notification=0&ParseMode=html');
  assert.equal(cfg.service, 'telegram');
  if (cfg.service !== 'telegram') return;
  assert.deepEqual(cfg.chats, [{ chatId: '5' }]);
  assert.equal(cfg.preview, false);
  assert.equal(cfg.notification, false);
  assert.equal(cfg.parseMode, 'HTML');
});

test('masking replaces tokens and passwords with *** for every service', () => {
  const cases: [string, string, string][] = [
    ['discord://SECRETtoken@123', 'discord://***@123', 'SECRETtoken'],
    ['telegram://123:SECRETtoken@telegram?chats=1', 'telegram://***@telegram?chats=1', 'SECRETtoken'],
    ['slack://hook:T00000000-B00000000-SECRETXXXXXXXXXXXXXXXXXX@webhook', 'slack://***@webhook', 'SECRETXXXX'],
    ['slack://T00000000/B00000000/SECRETXXXXXXXXXXXXXXXXXX', 'slack://T00000000/***', 'SECRETXXXX'],
    ['gotify://g.example/sub/ASECRETtoken12?title=x', 'gotify://g.example/sub/***?title=x', 'ASECRETtoken12'],
    ['ntfy://u:SECRETpass@ntfy.sh/topic', 'ntfy://***@ntfy.sh/***', 'SECRETpass'],
    ['ntfy://ntfy.sh/SECRETtopic?priority=high', 'ntfy://ntfy.sh/***?priority=high', 'SECRETtopic'],
    ['pushover://shoutrrr:SECRETtoken@SECRETuser/', 'pushover://***@***/', 'SECRET'],
    ['matrix://bot:SECRETpass@m.example/?rooms=!a:b', 'matrix://***@m.example/?rooms=!a:b', 'SECRETpass'],
    [
      'smtp://u:SECRETpass@mail.example:587/?from=a@b.c&to=d@e.f',
      'smtp://***@mail.example:587/?from=a@b.c&to=d@e.f',
      'SECRETpass',
    ],
    [
      'generic://h.example/api/webhook/SECRET0webhook0id?@Authorization=Bearer%20SECRETbearer&token=SECRETq&x=1',
      'generic://h.example/***?***',
      'SECRET',
    ],
    ['generic+https://hooks.example/n8n/SECRETpath?key=SECRETq', 'generic+https://hooks.example/***?***', 'SECRET'],
    [
      'generic+https://hooks.example/plainpath/deploy?channel=ops',
      'generic+https://hooks.example/***?***',
      'plainpath',
    ],
    ['generic+https://u:SECRETpw@hooks.example/', 'generic+https://***@hooks.example/', 'SECRET'],
    ['unknown://SECRETtoken@host', 'unknown://***', 'SECRET'],
    ['discord://%ZZSECRET@1', 'discord://***@1', 'SECRET'],
  ];
  for (const [url, expected, secret] of cases) {
    const masked = maskNotificationUrl(url);
    assert.equal(masked, expected, url);
    assert.equal(masked.includes(secret), false, `${url} → ${masked}`);
  }
  const teams = maskNotificationUrl(
    `teams://?host=${encodeURIComponent('https://x.logic.azure.com/workflows/a?sig=SECRETsig')}`,
  );
  assert.equal(teams.includes('SECRETsig'), false);
  assert.match(teams, /x\.logic\.azure\.com/);
});

test('with validateNotificationUrl passed in, the project schema rejects bad notification URLs', () => {
  const { ProjectFileSchema } = projectSchemas(validateNotificationUrl);
  const project = (urls: string[]) => ({
    project: 'home',
    repositories: { web: { url: 'https://github.com/a/b.git', notifications: { failure: urls } } },
    global_notifications: { success: ['ntfy://ntfy.sh/ok'] },
  });
  assert.equal(ProjectFileSchema.safeParse(project(['discord://token@123'])).success, true);

  const unknown = ProjectFileSchema.safeParse(project(['foo://token@x']));
  assert.equal(unknown.success, false);
  assert.match(unknown.error?.issues[0]?.message ?? '', /notification URL has an unknown service "foo"/);
  assert.deepEqual(unknown.error?.issues[0]?.path, ['repositories', 'web', 'notifications', 'failure', 0]);

  const noChats = ProjectFileSchema.safeParse(project(['telegram://123:AAEsecret@telegram']));
  assert.equal(noChats.success, false);
  assert.match(noChats.error?.issues[0]?.message ?? '', /telegram: missing chats/);
  assert.equal(JSON.stringify(noChats.error?.issues).includes('AAEsecret'), false);
});
