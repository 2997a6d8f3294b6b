import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { SopsError } from '../../../src/secrets/errors.ts';
import { loadAgeIdentities, parseAgeIdentities } from '../../../src/secrets/keys.ts';
import { decryptSopsDocument, decryptSopsDocumentWithDataKey, inferFormat } from '../../../src/secrets/sops.ts';
import type { SopsFormat } from '../../../src/secrets/sops.ts';
import {
  encryptValue,
  generateIdentity,
  sopsEncryptBinary,
  sopsEncryptDotenv,
  sopsEncryptTree,
} from './helpers/sops-encrypt.ts';

/** The vendored upstream fixtures (see test/fixtures/sops/PROVENANCE.md). */
const FIXTURES = fileURLToPath(new URL('../../fixtures/sops/', import.meta.url));
const me = generateIdentity();
const ring = parseAgeIdentities(me.identity, 'test-keys.txt');
const SECRET = 'correct-horse-battery-staple';

const dec = (text: string | Buffer, format: SopsFormat): Buffer => decryptSopsDocument(Buffer.from(text), format, ring);

/** Asserts a SopsError with `code`, and that its message leaks neither the secret value nor any identity. */
function rejects(fn: () => unknown, code: string, message?: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof SopsError, `not a SopsError: ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (message) assert.match(err.message, message);
    assert.ok(!err.message.includes(SECRET), 'message contains the plaintext');
    assert.ok(!/AGE-SECRET-KEY/i.test(err.message), 'message contains an identity');
    return true;
  });
}

test('inferFormat: dotenv names (incl. .env.enc), yaml, json, else binary', () => {
  assert.equal(inferFormat('.env.enc'), 'dotenv');
  assert.equal(inferFormat('deploy/.env.enc'), 'dotenv');
  assert.equal(inferFormat('secrets.enc.env'), 'dotenv');
  assert.equal(inferFormat('.env'), 'dotenv');
  assert.equal(inferFormat('prod.env'), 'dotenv');
  assert.equal(inferFormat('secrets.enc.yaml'), 'yaml');
  assert.equal(inferFormat('a.yml'), 'yaml');
  assert.equal(inferFormat('a.json'), 'json');
  assert.equal(inferFormat('app.env.sops'), 'binary');
  assert.equal(inferFormat('cert.pem.enc'), 'binary');
});

test('dotenv round trip: comments, newlines re-escaped, empty values, unencrypted suffix, untrimmed keys', () => {
  const { text } = sopsEncryptDotenv(
    [
      { comment: ' db settings' },
      { key: 'DB_PASSWORD', value: SECRET },
      { key: 'MULTI', value: 'a\nb' },
      { key: 'EMPTY', value: '' },
      { key: 'HOST_unencrypted', value: 'db.local' },
      { key: 'QUOTED', value: '"a b"' },
      { key: 'spaced ', value: ' v' },
    ],
    { recipients: [me.recipient] },
  );
  assert.ok(!text.includes(SECRET));
  assert.equal(
    dec(text, 'dotenv').toString(),
    `# db settings\nDB_PASSWORD=${SECRET}\nMULTI=a\\nb\nEMPTY=\nHOST_unencrypted=db.local\nQUOTED="a b"\nspaced = v\n`,
  );
});

test('YAML round trip: all value types, nested lists of maps, nulls, numeric-looking map keys', () => {
  const tree = {
    s: SECRET,
    i: 42,
    f: 3.5,
    big: 1e21,
    b: false,
    n: null,
    list: [{ name: 'x' }, ['y']],
    ports: { '8080': 'web' },
    str7: '7',
  };
  const { text } = sopsEncryptTree(tree, 'yaml', { recipients: [me.recipient] });
  assert.deepEqual(parseYaml(dec(text, 'yaml').toString()), tree);
});

test('JSON round trip keeps key order and types; mac_only_encrypted and key_groups with one group', () => {
  const tree = { z: 1, a: { secret: SECRET, plain_unencrypted: 2 ** 60 }, arr: [true, 'x'] };
  const { text } = sopsEncryptTree(tree, 'json', {
    recipients: [me.recipient],
    macOnlyEncrypted: true,
    keyGroups: true,
  });
  const out = dec(text, 'json').toString();
  assert.deepEqual(Object.keys(JSON.parse(out) as object), ['z', 'a', 'arr']);
  assert.match(out, /^\{\n\t"z": 1,/);
  assert.equal((JSON.parse(out) as { a: { secret: string } }).a.secret, SECRET);
});

test('encrypted_regex and encrypted_suffix leave other values clear but under the MAC', () => {
  const tree = { kind: 'Secret', stringData: { key: SECRET } };
  const regex = sopsEncryptTree(tree, 'yaml', { recipients: [me.recipient], encryptedRegex: '^(data|stringData)$' });
  assert.match(regex.text, /kind: Secret/);
  assert.deepEqual(parseYaml(dec(regex.text, 'yaml').toString()), tree);
  rejects(() => dec(regex.text.replace('kind: Secret', 'kind: Other'), 'yaml'), 'SOPS_MAC_MISMATCH');
});

test('binary store returns the exact bytes, including non-UTF-8', () => {
  const data = Buffer.from([0xff, 0xfe, 0x00, 0x0a, 0x80]);
  const { text } = sopsEncryptBinary(data, { recipients: [me.recipient] });
  assert.deepEqual(dec(text, 'binary'), data);
});

test('several recipients: the identity of a later recipient is found', () => {
  const a = generateIdentity();
  const { text } = sopsEncryptTree({ k: SECRET }, 'yaml', {
    recipients: [a.recipient, generateIdentity().recipient, me.recipient],
  });
  assert.match(dec(text, 'yaml').toString(), /k: correct-horse/);
});

test('wrong key: SOPS_NO_MATCHING_KEY names the recipients and the key source, not the key', async () => {
  const other = generateIdentity();
  const { text } = sopsEncryptDotenv([{ key: 'A', value: SECRET }], { recipients: [other.recipient] });
  rejects(
    () => dec(text, 'dotenv'),
    'SOPS_NO_MATCHING_KEY',
    new RegExp(`no identity matches recipients: ${other.recipient}.*test-keys\\.txt`),
  );
  const fixtureRing = await loadAgeIdentities({ keyFile: join(FIXTURES, 'gibbz00-rops/key.txt') });
  assert.throws(
    () => decryptSopsDocument(readFileSync(join(FIXTURES, 'humphd-sops-age/secret.enc.yaml')), 'yaml', fixtureRing),
    (err: SopsError) =>
      err.code === 'SOPS_NO_MATCHING_KEY' &&
      err.message.includes('age1je6kjhzuhdjy3fqptpttxjh5k8q46vygzlgtpuq3030c947pc5tqz9dqvr'),
  );
});

test('post-quantum fixture: "no supported age stanza", with either an X25519 or the PQ key file', async () => {
  const pq = readFileSync(join(FIXTURES, 'fluxcd-kustomize-controller/algorithms/age-pq.yaml'));
  rejects(
    () => decryptSopsDocument(pq, 'yaml', ring),
    'SOPS_UNSUPPORTED_STANZA',
    /no supported age stanza \(file uses: mlkem768x25519\)/,
  );
  const pqRing = await loadAgeIdentities({ keyFile: join(FIXTURES, 'fluxcd-kustomize-controller/keys/age-pq.txt') });
  assert.equal(pqRing.unsupported, 1);
  rejects(() => decryptSopsDocument(pq, 'yaml', pqRing), 'SOPS_UNSUPPORTED_STANZA', /no supported age stanza/);
});

test('flipped byte in a value: SOPS_DECRYPT_FAILED naming the key path only', () => {
  const { text } = sopsEncryptTree({ db: { password: SECRET } }, 'yaml', { recipients: [me.recipient] });
  const m = /password: ENC\[AES256_GCM,data:(.)/.exec(text);
  assert.ok(m?.[1]);
  const flipped = text.replace(
    `password: ENC[AES256_GCM,data:${m[1]}`,
    `password: ENC[AES256_GCM,data:${m[1] === 'A' ? 'B' : 'A'}`,
  );
  rejects(() => dec(flipped, 'yaml'), 'SOPS_DECRYPT_FAILED', /db\.password/);
});

test('a value moved to another key fails (AAD binds the path)', () => {
  const { text } = sopsEncryptDotenv(
    [
      { key: 'A', value: SECRET },
      { key: 'B', value: 'other' },
    ],
    { recipients: [me.recipient] },
  );
  const lines = text.split('\n');
  const a = lines[0]?.slice(2) ?? '';
  const b = lines[1]?.slice(2) ?? '';
  const swapped = [`A=${b}`, `B=${a}`, ...lines.slice(2)].join('\n');
  rejects(() => dec(swapped, 'dotenv'), 'SOPS_DECRYPT_FAILED', /at A /);
});

test('flipped MAC, a MAC over other values, reordered values, or an empty MAC: SOPS_MAC_MISMATCH', () => {
  const { text, dataKey } = sopsEncryptDotenv(
    [
      { key: 'A', value: SECRET },
      { key: 'B', value: 'x' },
    ],
    { recipients: [me.recipient] },
  );
  const macLine = text.split('\n').find((l) => l.startsWith('sops_mac=')) ?? '';
  const macData = /data:(.)/.exec(macLine)?.[1] ?? 'A';
  rejects(
    () =>
      dec(text.replace(macLine, macLine.replace(`data:${macData}`, `data:${macData === 'A' ? 'B' : 'A'}`)), 'dotenv'),
    'SOPS_MAC_MISMATCH',
  );
  // A validly encrypted MAC of different content (attacker with the data key cannot be stopped, but a stale MAC is).
  const stale = encryptValue(Buffer.from('00'.repeat(64)), 'str', dataKey, '2025-01-02T03:04:05Z');
  rejects(() => dec(text.replace(macLine, `sops_mac=${stale}`), 'dotenv'), 'SOPS_MAC_MISMATCH');
  rejects(() => dec(text.replace(macLine, 'sops_mac='), 'dotenv'), 'SOPS_MAC_MISMATCH', /no MAC/);
  // Swapping two whole lines keeps every AAD valid, but changes the MAC order.
  const [l0 = '', l1 = '', ...rest] = text.split('\n');
  rejects(() => dec([l1, l0, ...rest].join('\n'), 'dotenv'), 'SOPS_MAC_MISMATCH');
});

test('a tampered unencrypted value in a real fixture is caught by the MAC', async () => {
  const r = await loadAgeIdentities({ keyFile: join(FIXTURES, 'gibbz00-rops/key.txt') });
  const text = readFileSync(join(FIXTURES, 'gibbz00-rops/age_unencrypted_suffix.yaml'), 'utf8');
  assert.ok(text.includes('- 456'));
  assert.throws(() => decryptSopsDocument(Buffer.from(text.replace('- 456', '- 457')), 'yaml', r), {
    code: 'SOPS_MAC_MISMATCH',
  });
});

test('the data-key entry point refuses a wrong data key', () => {
  const { text } = sopsEncryptDotenv([{ key: 'A', value: SECRET }], { recipients: [me.recipient] });
  rejects(
    () => decryptSopsDocumentWithDataKey(Buffer.from(text), 'dotenv', Buffer.alloc(32, 7)),
    'SOPS_DECRYPT_FAILED',
  );
});

test('malformed ENC values, unknown types, plaintext where ciphertext is expected', () => {
  const { text } = sopsEncryptDotenv([{ key: 'A', value: SECRET }], { recipients: [me.recipient] });
  const line = text.split('\n')[0] ?? '';
  rejects(() => dec(text.replace(line, 'A=ENC[AES256_GCM,data:abc'), 'dotenv'), 'SOPS_MALFORMED', /at A/);
  rejects(
    () => dec(text.replace(line, line.replace('type:str', 'type:weird')), 'dotenv'),
    'SOPS_MALFORMED',
    /unknown value type/,
  );
  rejects(() => dec(text.replace(line, line.replace(/iv:[^,]+/, 'iv:!!!')), 'dotenv'), 'SOPS_MALFORMED', /base64/);
  rejects(() => dec(text.replace(line, `A=${SECRET}`), 'dotenv'), 'SOPS_MALFORMED');
  const yaml = sopsEncryptTree({ n: 5 }, 'yaml', { recipients: [me.recipient], encryptedSuffix: 'x' });
  rejects(() => dec(yaml.text.replace('n: 5', 'nx: 5'), 'yaml'), 'SOPS_MALFORMED', /expected an encrypted string/);
});

test('truncated or broken documents give SOPS_MALFORMED, never a crash', () => {
  const { text } = sopsEncryptTree({ k: SECRET }, 'json', { recipients: [me.recipient] });
  rejects(() => dec(text.slice(0, Math.floor(text.length / 2)), 'json'), 'SOPS_MALFORMED', /invalid JSON/);
  rejects(() => dec('{"k": "v"}', 'json'), 'SOPS_MALFORMED', /metadata not found/);
  rejects(() => dec('KEY=value\n', 'dotenv'), 'SOPS_MALFORMED', /metadata not found/);
  rejects(() => dec('- a\n- b\n', 'yaml'), 'SOPS_MALFORMED', /mappings/);
  rejects(() => dec('a: 1\na: 2\nsops: {}\n', 'yaml'), 'SOPS_MALFORMED');
  rejects(() => dec('k: v\nsops:\n  mac: x\n', 'yaml'), 'SOPS_MALFORMED', /lastmodified/);
  rejects(() => dec('NO_EQUALS_SIGN\nsops_mac=x\n', 'dotenv'), 'SOPS_MALFORMED', /line 1/);
  // Truncated age entry inside an otherwise intact file.
  const y = sopsEncryptTree({ k: SECRET }, 'yaml', { recipients: [me.recipient] }).text;
  const cut = y.replace(
    /(-----BEGIN AGE ENCRYPTED FILE-----\n\s+\S+)[\s\S]*?(\n\s+-----END AGE ENCRYPTED FILE-----)/,
    '$1$2',
  );
  assert.notEqual(cut, y);
  rejects(() => dec(cut, 'yaml'), 'SOPS_MALFORMED', /malformed age file: truncated/);
});

test('several key groups (Shamir) are reported as unsupported', () => {
  const y = sopsEncryptTree({ k: 'v' }, 'yaml', { recipients: [me.recipient], keyGroups: true }).text;
  const doubled = y.replace('key_groups:\n', 'key_groups:\n        - age: []\n');
  assert.notEqual(doubled, y);
  rejects(() => dec(doubled, 'yaml'), 'SOPS_UNSUPPORTED', /key groups/);
});

test('no error message of any failure above contains plaintext or the secret key (sweep)', async () => {
  const messages: string[] = [];
  const { text } = sopsEncryptDotenv([{ key: 'A', value: SECRET }], { recipients: [me.recipient] });
  const attempts: (() => unknown)[] = [
    () => decryptSopsDocument(Buffer.from(text), 'dotenv', parseAgeIdentities(generateIdentity().identity, 'k')),
    () => dec(text.replace(/data:[^,]+/, 'data:AAAA'), 'dotenv'),
    () =>
      dec(
        text.replace(/sops_mac=.*/, 'sops_mac=ENC[AES256_GCM,data:AAAA,iv:AAAA,tag:AAAAAAAAAAAAAAAAAAAAAA==,type:str]'),
        'dotenv',
      ),
    () => dec(text.replace(/^A=.*/m, `A=${SECRET}`), 'dotenv'),
    () => dec(text, 'yaml'),
    () => dec(text, 'json'),
    () => parseAgeIdentities(`${me.identity}x`, 'k'),
  ];
  for (const attempt of attempts) {
    try {
      attempt();
      assert.fail('expected a failure');
    } catch (err) {
      assert.ok(err instanceof SopsError, String(err));
      messages.push(`${err.message} ${err.stack ?? ''}`);
    }
  }
  await loadAgeIdentities({ key: `${me.identity.slice(0, -2)}QQ` }).catch((err: Error) => messages.push(err.message));
  assert.equal(messages.length, attempts.length + 1);
  for (const m of messages) {
    assert.ok(!m.includes(SECRET), m);
    assert.ok(!m.includes(me.identity.slice(16, 40)), m);
  }
});

test('encrypted YAML comments decrypt with their container path; clear comments stay; timestamps hash either way', () => {
  const { text, dataKey } = sopsEncryptTree({ a: { b: SECRET }, when_unencrypted: '2024-01-01' }, 'yaml', {
    recipients: [me.recipient],
  });
  const top = encryptValue(Buffer.from(' top note'), 'comment', dataKey, ':');
  const inner = encryptValue(Buffer.from(' inner note'), 'comment', dataKey, 'a:');
  const withComments = `#${top}\n${text.replace(/^( {4})b:/m, `$1#${inner}\n$1# clear note\n$1b:`)}`;
  assert.match(withComments, /when_unencrypted: 2024-01-01\n/);
  const out = dec(withComments, 'yaml').toString();
  assert.match(out, /^# top note\n/);
  assert.match(out, /# inner note\n\s+# clear note\n\s+b: correct-horse/);
  assert.doesNotMatch(out, /ENC\[/);
});
