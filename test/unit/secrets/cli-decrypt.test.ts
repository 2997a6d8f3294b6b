import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { decryptCommand } from '../../../src/cli/decrypt.ts';
import { generateIdentity, sopsEncryptDotenv, sopsEncryptTree } from './helpers/sops-encrypt.ts';

const me = generateIdentity();
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'shiparr-cli-decrypt-'));
  await writeFile(
    join(dir, '.env.enc'),
    sopsEncryptDotenv([{ key: 'A', value: 's3cret' }], { recipients: [me.recipient] }).text,
  );
  await writeFile(join(dir, 'data'), sopsEncryptTree({ k: 'v' }, 'yaml', { recipients: [me.recipient] }).text);
  await writeFile(join(dir, 'keys.txt'), `# test\n${me.identity}\n`);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; out: string; err: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks = { out: [] as Buffer[], err: [] as Buffer[] };
  out.on('data', (c: Buffer) => chunks.out.push(c));
  err.on('data', (c: Buffer) => chunks.err.push(c));
  const code = await decryptCommand(args, env, out, err);
  return { code, out: Buffer.concat(chunks.out).toString(), err: Buffer.concat(chunks.err).toString() };
}

test('prints the plaintext with SOPS_AGE_KEY_FILE, exit 0', async () => {
  const r = await run([join(dir, '.env.enc')], { SOPS_AGE_KEY_FILE: join(dir, 'keys.txt') });
  assert.deepEqual(r, { code: 0, out: 'A=s3cret\n', err: '' });
});

test('--format overrides inference (a YAML file named without extension)', async () => {
  const r = await run([join(dir, 'data'), '--format', 'yaml'], { SOPS_AGE_KEY: me.identity });
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, 'k: v\n');
  const eq = await run([`--format=yaml`, join(dir, 'data')], { SOPS_AGE_KEY: me.identity });
  assert.equal(eq.out, 'k: v\n');
});

test('falls back to $XDG_CONFIG_HOME/sops/age/keys.txt', async () => {
  const xdg = join(dir, 'xdg');
  await mkdir(join(xdg, 'sops', 'age'), { recursive: true });
  await writeFile(join(xdg, 'sops', 'age', 'keys.txt'), me.identity);
  const r = await run([join(dir, '.env.enc')], { XDG_CONFIG_HOME: xdg });
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, 'A=s3cret\n');
});

test('decryption failures exit 1 with a code on stderr and nothing on stdout', async () => {
  const r = await run([join(dir, '.env.enc')], { SOPS_AGE_KEY: generateIdentity().identity, HOME: dir });
  assert.equal(r.code, 1);
  assert.equal(r.out, '');
  assert.match(r.err, /SOPS_NO_MATCHING_KEY/);
  assert.ok(!r.err.includes('s3cret') && !r.err.includes('AGE-SECRET-KEY'));
  const none = await run([join(dir, '.env.enc')], { HOME: join(dir, 'nohome') });
  assert.equal(none.code, 1);
  assert.match(none.err, /SOPS_NO_KEY/);
});

test('usage errors exit 2; --help exits 0', async () => {
  assert.equal((await run([], {})).code, 2);
  assert.equal((await run(['a', 'b'], {})).code, 2);
  assert.equal((await run(['a', '--format', 'toml'], {})).code, 2);
  assert.equal((await run(['a', '--bogus'], {})).code, 2);
  const help = await run(['--help'], {});
  assert.equal(help.code, 0);
  assert.match(help.out, /usage: shiparr decrypt/);
});
