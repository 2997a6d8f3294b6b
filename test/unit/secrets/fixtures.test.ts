import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { ageDecrypt, parseAgeIdentity } from '../../../src/secrets/age.ts';
import { loadAgeIdentities } from '../../../src/secrets/keys.ts';
import {
  decryptSopsDocument,
  decryptSopsDocumentWithDataKey,
  decryptSopsFile,
  inferFormat,
} from '../../../src/secrets/sops.ts';
import type { SopsFormat } from '../../../src/secrets/sops.ts';

/** The vendored upstream fixtures (see test/fixtures/sops/PROVENANCE.md). */
const FIXTURES = fileURLToPath(new URL('../../fixtures/sops/', import.meta.url));
interface Expected {
  format: SopsFormat;
  key: string;
  mac_ok: boolean;
  plaintext: unknown;
  data_key_hex: string;
}
const expected = JSON.parse(readFileSync(join(FIXTURES, 'EXPECTED.json'), 'utf8')) as Record<string, Expected> & {
  _pgp_only_data_keys: Record<string, string>;
};
const ageFixtures = Object.entries(expected).filter(([k]) => !k.startsWith('_')) as [string, Expected][];

/** Parses decrypted output back into a plain value to compare with EXPECTED.json. */
function toPlain(out: Buffer, format: SopsFormat): unknown {
  if (format === 'yaml') return parseYaml(out.toString('utf8'));
  if (format === 'json') return JSON.parse(out.toString('utf8'));
  if (format === 'binary') return out.toString('utf8');
  const obj: Record<string, string> = {};
  for (const line of out.toString('utf8').split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    obj[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return obj;
}

test('there are 17 age fixtures and all were MAC-verified upstream', () => {
  assert.equal(ageFixtures.length, 17);
  assert.ok(ageFixtures.every(([, e]) => e.mac_ok));
});

for (const [file, e] of ageFixtures) {
  test(`age fixture ${file} decrypts to EXPECTED plaintext with its key file (MAC verified)`, async () => {
    const keyring = await loadAgeIdentities({ keyFile: join(FIXTURES, e.key) });
    const out = await decryptSopsFile(join(FIXTURES, file), { format: e.format, identities: keyring });
    assert.deepEqual(toPlain(out, e.format), e.plaintext);
    assert.doesNotMatch(out.toString('utf8'), /ENC\[|sops/);
  });

  test(`age fixture ${file}: the AES/MAC layer alone works with the listed data key`, () => {
    const out = decryptSopsDocumentWithDataKey(
      readFileSync(join(FIXTURES, file)),
      e.format,
      Buffer.from(e.data_key_hex, 'hex'),
    );
    assert.deepEqual(toPlain(out, e.format), e.plaintext);
  });
}

test('format inference matches the format of every fixture except the explicit .txt binary', () => {
  for (const [file, e] of ageFixtures) assert.equal(inferFormat(file), e.format, file);
});

test('PGP-only fixtures decrypt given their data keys', () => {
  const keys = expected._pgp_only_data_keys;
  const dk = (f: string): Buffer => Buffer.from(keys[f] ?? '', 'hex');
  const read = (f: string): Buffer => readFileSync(join(FIXTURES, f));

  // dotenv keys and values are not trimmed: `foo =ENC[…]` has AAD "foo :" and value " bar".
  assert.equal(
    decryptSopsDocumentWithDataKey(
      read('getsops-sops/format.enc.env'),
      'dotenv',
      dk('getsops-sops/format.enc.env'),
    ).toString(),
    'foo = bar\n',
  );
  assert.deepEqual(
    JSON.parse(
      decryptSopsDocumentWithDataKey(
        read('getsops-sops/format.enc.json'),
        'json',
        dk('getsops-sops/format.enc.json'),
      ).toString(),
    ),
    { foo: 'bar' },
  );
  assert.equal(
    decryptSopsDocumentWithDataKey(
      read('getsops-sops/format.enc.yaml'),
      'yaml',
      dk('getsops-sops/format.enc.yaml'),
    ).toString(),
    'foo: bar\n',
  );
  assert.deepEqual(
    JSON.parse(
      decryptSopsDocumentWithDataKey(
        read('Mic92-sops-nix/pgp-only/secrets.json'),
        'json',
        dk('Mic92-sops-nix/pgp-only/secrets.json'),
      ).toString(),
    ),
    { test_key: 'test_value' },
  );
  const bin = decryptSopsDocumentWithDataKey(
    read('Mic92-sops-nix/pgp-only/secrets.bin'),
    'binary',
    dk('Mic92-sops-nix/pgp-only/secrets.bin'),
  );
  assert.deepEqual(bin, Buffer.from('binary_value\n'));
  // sops 3.7 dotenv: metadata in random order, an encrypted top-level comment (AAD ":"), escaped newlines re-escaped.
  const env = decryptSopsDocumentWithDataKey(
    read('Mic92-sops-nix/pgp-only/secrets.env'),
    'dotenv',
    dk('Mic92-sops-nix/pgp-only/secrets.env'),
  ).toString();
  assert.equal(
    env,
    '# This is an example file.\n' +
      'hello=Welcome to SOPS! Edit this file as you please!\n' +
      'example_key=example_value\n' +
      'example_multiline=foo\\nbar\\nbaz\n' +
      'never_gonna=give you up\n',
  );
});

test('a PGP-only file with age identities reports that it has no age recipients', async () => {
  const keyring = await loadAgeIdentities({ keyFile: join(FIXTURES, 'gibbz00-rops/key.txt') });
  assert.throws(
    () => decryptSopsDocument(readFileSync(join(FIXTURES, 'getsops-sops/format.enc.yaml')), 'yaml', keyring),
    (err: Error & { code?: string }) =>
      err.code === 'SOPS_NO_MATCHING_KEY' && /no age recipients \(master keys: pgp\)/.test(err.message),
  );
});

test('the bare age blob from getsops decrypts to "data"', () => {
  const identity = parseAgeIdentity(
    readFileSync(join(FIXTURES, 'getsops-sops/age-mockIdentity.txt'), 'utf8').trim(),
    'mock',
  );
  assert.equal(identity.recipient, 'age1lzd99uklcjnc0e7d860axevet2cz99ce9pq6tzuzd05l5nr28ams36nvun');
  const out = ageDecrypt(readFileSync(join(FIXTURES, 'getsops-sops/age-mockEncryptedKey.age')), [identity]);
  assert.ok(Buffer.isBuffer(out));
  assert.equal(out.toString(), 'data');
});

test('a file with age and pgp recipients decrypts with the age identity', async () => {
  // Mic92 secrets.yaml has 2 age + 2 pgp entries; the pgp ones must simply be ignored.
  const keyring = await loadAgeIdentities({ keyFile: join(FIXTURES, 'Mic92-sops-nix/age-keys.txt') });
  const out = await decryptSopsFile(join(FIXTURES, 'Mic92-sops-nix/secrets.yaml'), { identities: keyring });
  assert.match(out.toString(), /test_key: test_value/);
});

test('YAML output keeps key order and the non-sops layout', async () => {
  const keyring = await loadAgeIdentities({
    keyFile: join(FIXTURES, 'fluxcd-kustomize-controller/keys/age-global.txt'),
  });
  const out = await decryptSopsFile(join(FIXTURES, 'fluxcd-kustomize-controller/global/secret.yaml'), {
    identities: keyring,
  });
  assert.deepEqual(Object.keys(parseYaml(out.toString()) as object), [
    'apiVersion',
    'kind',
    'metadata',
    'type',
    'stringData',
  ]);
});
