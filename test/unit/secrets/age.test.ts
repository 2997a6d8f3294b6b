import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ageDecrypt, parseAgeIdentity } from '../../../src/secrets/age.ts';
import { bech32Decode, bech32Encode } from '../../../src/secrets/bech32.ts';
import { loadAgeIdentities, parseAgeIdentities } from '../../../src/secrets/keys.ts';
import { ageEncrypt, generateIdentity } from './helpers/sops-encrypt.ts';

const GIBBZ_KEY = 'AGE-SECRET-KEY-1EQUCGFZH8UZKSZ0Z5N5T234YRNDT4U9H7QNYXWRRNJYDDVXE6FWSCPGNJ7';
const GIBBZ_RECIPIENT = 'age1se5ghfycr4n8kcwc3qwf234ymvmr2lex2a99wh8gpfx97glwt9hqch4569';

test('an identity parses and derives the recipient age-keygen -y gives', () => {
  const id = parseAgeIdentity(GIBBZ_KEY, 'test');
  assert.equal(id.recipient, GIBBZ_RECIPIENT);
  // Lowercase form is the same key (bech32 is case-insensitive as a whole).
  assert.equal(parseAgeIdentity(GIBBZ_KEY.toLowerCase(), 'test').recipient, GIBBZ_RECIPIENT);
});

test('identities print and serialise as their recipient only', () => {
  const id = parseAgeIdentity(GIBBZ_KEY, 'test');
  const shown = `${JSON.stringify(id)} ${String(id)} ${JSON.stringify({ id })}`;
  assert.ok(!shown.includes('AGE-SECRET-KEY'));
  assert.ok(shown.includes(GIBBZ_RECIPIENT));
});

test('a bad checksum, mixed case or wrong HRP is rejected without echoing the key', () => {
  const badChecksum = `${GIBBZ_KEY.slice(0, -1)}8`;
  const mixed = `${GIBBZ_KEY.slice(0, 20)}${GIBBZ_KEY.slice(20).toLowerCase()}`;
  for (const bad of [badChecksum, mixed, GIBBZ_RECIPIENT]) {
    assert.throws(
      () => parseAgeIdentity(bad, 'k.txt'),
      (err: Error & { code?: string }) =>
        err.code === 'SOPS_MALFORMED' && !err.message.includes(bad) && err.message.includes('k.txt'),
    );
  }
});

test('bech32 round-trips arbitrary data', () => {
  const data = crypto.randomBytes(32);
  const decoded = bech32Decode(bech32Encode('age', data));
  assert.equal(decoded?.hrp, 'age');
  assert.deepEqual(decoded?.data, data);
});

test('a key file with comments, blank lines and several identities loads all of them; SOPS_AGE_KEY adds more', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'shiparr-age-'));
  try {
    const a = generateIdentity();
    const b = generateIdentity();
    const c = generateIdentity();
    const file = join(dir, 'keys.txt');
    await writeFile(
      file,
      `# created: 2024-01-01\n# public key: ${a.recipient}\n${a.identity}\n\n# second\r\n${b.identity}\r\n`,
    );
    const ring = await loadAgeIdentities({ keyFile: file, key: `# inline\n${c.identity}` });
    assert.deepEqual(
      ring.identities.map((i) => i.recipient),
      [a.recipient, b.recipient, c.recipient],
    );
    assert.deepEqual(ring.sources, [file, 'SOPS_AGE_KEY']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('post-quantum and plugin identities are counted as unsupported, not fatal', () => {
  const ring = parseAgeIdentities(`AGE-SECRET-KEY-PQ-1QQQQ\nAGE-PLUGIN-YUBIKEY-1QQQ\n${GIBBZ_KEY}`, 'x');
  assert.equal(ring.unsupported, 2);
  assert.equal(ring.identities.length, 1);
});

test('no key configured, unreadable key file, or a garbage line give typed errors', async () => {
  await assert.rejects(loadAgeIdentities({}), { code: 'SOPS_NO_KEY' });
  await assert.rejects(loadAgeIdentities({ keyFile: '/nonexistent/keys.txt' }), (err: Error & { code?: string }) => {
    return err.code === 'SOPS_NO_KEY' && err.message.includes('/nonexistent/keys.txt');
  });
  await assert.rejects(loadAgeIdentities({ key: '# only a comment\n' }), { code: 'SOPS_NO_KEY' });
  assert.throws(
    () => parseAgeIdentities('hunter2-not-a-key', 'SOPS_AGE_KEY'),
    (err: Error & { code?: string }) => {
      return err.code === 'SOPS_MALFORMED' && !err.message.includes('hunter2');
    },
  );
});

test('armored and binary age files decrypt; a multi-chunk payload (3 chunks) too', () => {
  const id = generateIdentity();
  const ring = parseAgeIdentities(id.identity, 't');
  const small = crypto.randomBytes(32);
  assert.deepEqual(ageDecrypt(ageEncrypt(small, [id.recipient]), ring.identities), small);
  assert.deepEqual(ageDecrypt(ageEncrypt(small, [id.recipient], { armor: false }), ring.identities), small);
  const big = crypto.randomBytes(2 * 64 * 1024 + 100);
  assert.deepEqual(ageDecrypt(ageEncrypt(big, [id.recipient], { armor: false }), ring.identities), big);
  const exact = crypto.randomBytes(64 * 1024);
  assert.deepEqual(ageDecrypt(ageEncrypt(exact, [id.recipient]), ring.identities), exact);
});

test('unknown stanzas are skipped when an X25519 stanza matches', () => {
  const id = generateIdentity();
  const other = generateIdentity();
  const file = ageEncrypt(Buffer.from('k'), [other.recipient, id.recipient], {
    stanzas: [{ type: 'mlkem768x25519', args: ['AAAA'], body: crypto.randomBytes(40) }],
  });
  assert.deepEqual(ageDecrypt(file, parseAgeIdentities(id.identity, 't').identities), Buffer.from('k'));
});

test('a miss reports the stanza types and whether any was supported', () => {
  const id = generateIdentity();
  const other = generateIdentity();
  const miss = ageDecrypt(
    ageEncrypt(Buffer.from('k'), [other.recipient]),
    parseAgeIdentities(id.identity, 't').identities,
  );
  assert.deepEqual(miss, { stanzaTypes: ['X25519'], supported: true });
});

test('tampered header, tampered payload and truncation are refused', () => {
  const id = generateIdentity();
  const ids = parseAgeIdentities(id.identity, 't').identities;
  const file = ageEncrypt(crypto.randomBytes(32), [id.recipient], { armor: false });
  const headerEnd = file.indexOf('\n---') + 1;
  // Flip a byte of the stanza argument line that does not break base64 (the "X25519" type name → unknown type).
  const typeFlip = Buffer.from(file);
  typeFlip[file.indexOf('X25519')] = 'Y'.charCodeAt(0);
  assert.deepEqual(ageDecrypt(typeFlip, ids), { stanzaTypes: ['Y25519'], supported: false });
  const macFlip = Buffer.from(file);
  const macPos = headerEnd + 5;
  macFlip[macPos] = macFlip[macPos] === 0x41 ? 0x42 : 0x41;
  assert.throws(() => ageDecrypt(macFlip, ids), { code: 'SOPS_DECRYPT_FAILED' });
  const payloadFlip = Buffer.from(file);
  payloadFlip[payloadFlip.length - 1] = (payloadFlip.at(-1) ?? 0) ^ 1;
  assert.throws(() => ageDecrypt(payloadFlip, ids), { code: 'SOPS_DECRYPT_FAILED' });
  assert.throws(() => ageDecrypt(file.subarray(0, file.length - 20), ids), { code: 'SOPS_DECRYPT_FAILED' });
  assert.throws(() => ageDecrypt(file.subarray(0, headerEnd - 10), ids), { code: 'SOPS_MALFORMED' });
  assert.throws(() => ageDecrypt(Buffer.from('-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n'), ids), {
    code: 'SOPS_MALFORMED',
  });
});

test('a missing key file is ignored when an inline SOPS_AGE_KEY is given, and is an error otherwise', async () => {
  const id = generateIdentity();
  const ring = await loadAgeIdentities({ keyFile: '/nonexistent/age.key', key: id.identity });
  assert.equal(ring.identities.length, 1);
  await assert.rejects(
    loadAgeIdentities({ keyFile: '/nonexistent/age.key' }),
    /cannot read age key file \/nonexistent\/age\.key \(ENOENT\)/,
  );
});
