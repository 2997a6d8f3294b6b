import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import sopsDecrypt, { unsettledDecryptions } from '../../../src/workers/tasks/sops-decrypt.ts';
import { createPool, createTaskRunner } from '../../../src/workers/pool.ts';
import { writeFileAtomic0600 } from '../../../src/secrets/fs.ts';
import type { DecryptInput } from '../../../src/workers/types.ts';
import { fingerprint } from '../../../src/workers/plaintext.ts';
import { generateIdentity, sopsEncryptDotenv, sopsEncryptTree } from './helpers/sops-encrypt.ts';
import { until } from '../../helpers/wait.ts';

const me = generateIdentity();
let root: string;
let base: string;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'shiparr-sops-task-'));
  base = join(root, 'repo');
  await mkdir(join(base, 'config'), { recursive: true });
  await writeFile(
    join(base, '.env.enc'),
    sopsEncryptDotenv([{ key: 'DB_PASSWORD', value: 'pw1' }], { recipients: [me.recipient] }).text,
  );
  await writeFile(
    join(base, 'config', 'secrets.enc.yaml'),
    sopsEncryptTree({ token: 't0k' }, 'yaml', { recipients: [me.recipient] }).text,
  );
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

const input = (over: Partial<DecryptInput> = {}): DecryptInput => ({
  baseDir: base,
  files: [{ file: '.env.enc' }, { file: 'config/secrets.enc.yaml' }],
  ageKey: me.identity,
  timeoutMs: 10_000,
  ...over,
});

test('writes .env beside the compose file and secrets.yaml without .enc, mode 0600, no temp files left', async () => {
  const r = await sopsDecrypt(input());
  assert.ok(r.ok, JSON.stringify(r));
  assert.deepEqual(r.written, [join(base, '.env'), join(base, 'config', 'secrets.yaml')]);
  assert.equal(await readFile(join(base, '.env'), 'utf8'), 'DB_PASSWORD=pw1\n');
  assert.equal(await readFile(join(base, 'config', 'secrets.yaml'), 'utf8'), 'token: t0k\n');
  for (const f of r.written) assert.equal((await stat(f)).mode & 0o777, 0o600);
  assert.deepEqual(
    (await readdir(base)).filter((f) => f.endsWith('.tmp')),
    [],
  );
});

test('explicit output and format are honoured; a file Shiparr wrote before is replaced by a 0600 one', async () => {
  const out = join(base, 'custom.env');
  await writeFile(out, 'old', { mode: 0o644 });
  const mine = await fingerprint(out);
  assert.ok(mine);
  const r = await sopsDecrypt(
    input({ files: [{ file: '.env.enc', output: 'custom.env', format: 'dotenv' }], owned: [mine] }),
  );
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(await readFile(out, 'utf8'), 'DB_PASSWORD=pw1\n');
  assert.equal((await stat(out)).mode & 0o777, 0o600);
  assert.deepEqual(r.files, [await fingerprint(out)], 'the new file is reported for the record');
});

test('an existing output Shiparr did not write (or that changed since) is refused, untouched, nothing written', async () => {
  const dir = await mkdtemp(join(root, 'theirs-'));
  await writeFile(join(dir, '.env.enc'), await readFile(join(base, '.env.enc')));
  await writeFile(join(dir, 'b.enc.yaml'), await readFile(join(base, 'config', 'secrets.enc.yaml')));
  await writeFile(join(dir, '.env'), 'MY_OWN=1\n', { mode: 0o644 });
  const files = [{ file: 'b.enc.yaml' }, { file: '.env.enc' }];
  const r = await sopsDecrypt(input({ baseDir: dir, files }));
  assert.ok(!r.ok && r.code === 'SOPS_OUTPUT_EXISTS', JSON.stringify(r));
  assert.match(r.message, new RegExp(`${join(dir, '.env')} of \\.env\\.enc already exists`));
  assert.match(r.message, /set "output:" for \.env\.enc/);
  assert.equal(await readFile(join(dir, '.env'), 'utf8'), 'MY_OWN=1\n');
  assert.deepEqual((await readdir(dir)).sort(), ['.env', '.env.enc', 'b.enc.yaml'], 'b.yaml was not written either');

  // A recorded identity no longer matching (the file was rewritten since) is not ours any more.
  const stale = { ...(await fingerprint(join(dir, '.env')))!, mtimeNs: '1' };
  const again = await sopsDecrypt(input({ baseDir: dir, files, owned: [stale] }));
  assert.ok(!again.ok && again.code === 'SOPS_OUTPUT_EXISTS', JSON.stringify(again));

  // A symlink at the output is never replaced.
  await rm(join(dir, '.env'));
  await symlink(join(root, 'elsewhere'), join(dir, '.env'));
  const link = await sopsDecrypt(input({ baseDir: dir, files }));
  assert.ok(!link.ok && link.code === 'SOPS_BAD_PATH' && /is an existing symlink/.test(link.message));
  assert.ok((await lstat(join(dir, '.env'))).isSymbolicLink());
});

test('envFileDir: the dotenv file goes to the private directory (0700), other outputs stay in place', async () => {
  const dir = await mkdtemp(join(root, 'private-'));
  await writeFile(join(dir, '.env.enc'), await readFile(join(base, '.env.enc')));
  await writeFile(join(dir, 'b.enc.yaml'), await readFile(join(base, 'config', 'secrets.enc.yaml')));
  const priv = join(root, 'data', 'plaintext', 'x');
  const r = await sopsDecrypt(
    input({ baseDir: dir, files: [{ file: '.env.enc' }, { file: 'b.enc.yaml' }], envFileDir: priv }),
  );
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(r.envFile, join(priv, '.env'));
  assert.deepEqual(r.written, [join(priv, '.env'), join(dir, 'b.yaml')]);
  assert.equal(await readFile(join(priv, '.env'), 'utf8'), 'DB_PASSWORD=pw1\n');
  assert.equal((await stat(priv)).mode & 0o777, 0o700);
  assert.deepEqual((await readdir(dir)).sort(), ['.env.enc', 'b.enc.yaml', 'b.yaml'], 'no .env in the checkout');
});

test('paths escaping baseDir are rejected (.., absolute, symlinked directory), nothing is written', async () => {
  for (const files of [
    [{ file: '../outside.env.enc' }],
    [{ file: '/etc/passwd' }],
    [{ file: '.env.enc', output: '../stolen.env' }],
    [{ file: '.env.enc', output: '/tmp/x.env' }],
  ]) {
    const r = await sopsDecrypt(input({ files }));
    assert.equal(r.ok, false);
    assert.ok(!r.ok && r.code === 'SOPS_BAD_PATH', JSON.stringify(r));
  }
  const outside = join(root, 'outside');
  await mkdir(outside);
  await symlink(outside, join(base, 'link'));
  const r = await sopsDecrypt(input({ files: [{ file: '.env.enc', output: 'link/.env' }] }));
  assert.ok(!r.ok && r.code === 'SOPS_BAD_PATH' && /symlink/.test(r.message), JSON.stringify(r));
  assert.deepEqual(await readdir(outside), []);
});

test('wrong key: ok:false with SOPS_NO_MATCHING_KEY, not transient, nothing written', async () => {
  const dir = await mkdtemp(join(root, 'wrong-'));
  await writeFile(
    join(dir, '.env.enc'),
    sopsEncryptDotenv([{ key: 'A', value: 'secret-value' }], { recipients: [me.recipient] }).text,
  );
  const r = await sopsDecrypt({
    baseDir: dir,
    files: [{ file: '.env.enc' }],
    ageKey: generateIdentity().identity,
    timeoutMs: 10_000,
  });
  assert.equal(r.ok, false);
  assert.ok(!r.ok);
  assert.equal(r.code, 'SOPS_NO_MATCHING_KEY');
  assert.equal(r.transient, false);
  assert.match(r.message, new RegExp(me.recipient));
  assert.ok(!r.message.includes('secret-value') && !r.message.includes('AGE-SECRET-KEY'));
  assert.deepEqual(await readdir(dir), ['.env.enc']);
});

test('one bad file fails the task before any plaintext is written', async () => {
  const dir = await mkdtemp(join(root, 'partial-'));
  await writeFile(join(dir, 'a.enc.yaml'), sopsEncryptTree({ a: 1 }, 'yaml', { recipients: [me.recipient] }).text);
  await writeFile(
    join(dir, 'b.enc.yaml'),
    sopsEncryptTree({ b: 1 }, 'yaml', { recipients: [generateIdentity().recipient] }).text,
  );
  const r = await sopsDecrypt({
    baseDir: dir,
    files: [{ file: 'a.enc.yaml' }, { file: 'b.enc.yaml' }],
    ageKey: me.identity,
    timeoutMs: 10_000,
  });
  assert.ok(!r.ok && r.code === 'SOPS_NO_MATCHING_KEY');
  assert.deepEqual((await readdir(dir)).sort(), ['a.enc.yaml', 'b.enc.yaml']);
});

test('missing file, missing key, and an output that would overwrite the source are expected failures', async () => {
  const missing = await sopsDecrypt(input({ files: [{ file: 'nope.env.enc', output: 'x.env' }] }));
  assert.ok(!missing.ok && missing.code === 'SOPS_READ_FAILED');
  const noKey = await sopsDecrypt({ baseDir: base, files: [{ file: '.env.enc' }], timeoutMs: 10_000 });
  assert.ok(!noKey.ok && noKey.code === 'SOPS_NO_KEY');
  const same = await sopsDecrypt(
    input({ files: [{ file: 'config/secrets.enc.yaml', output: 'config/secrets.enc.yaml' }] }),
  );
  assert.ok(!same.ok && same.code === 'SOPS_BAD_PATH');
  const noEnc = await sopsDecrypt(input({ files: [{ file: 'cert.pem' }] }));
  assert.ok(!noEnc.ok && noEnc.code === 'SOPS_BAD_PATH' && /set "output"/.test(noEnc.message), JSON.stringify(noEnc));
});

test('a zero timeout returns SOPS_TIMEOUT and writes nothing', async () => {
  const dir = await mkdtemp(join(root, 'timeout-'));
  await writeFile(
    join(dir, '.env.enc'),
    sopsEncryptDotenv([{ key: 'A', value: 'v' }], { recipients: [me.recipient] }).text,
  );
  const r = await sopsDecrypt({ baseDir: dir, files: [{ file: '.env.enc' }], ageKey: me.identity, timeoutMs: 0 });
  assert.ok(!r.ok && r.code === 'SOPS_TIMEOUT', JSON.stringify(r));
  // The timed-out work goes on in the background until its next deadline check: wait until it is over.
  await until(() => unsettledDecryptions() === 0, 'the timed-out decryption to stop', 10_000, 5);
  assert.deepEqual(await readdir(dir), ['.env.enc']);
});

test('writeFileAtomic0600 refuses a symlink at the target: neither written through nor replaced', async () => {
  const target = join(root, 'victim.txt');
  await writeFile(target, 'untouched');
  const link = join(base, 'link.env');
  await symlink(target, link);
  await assert.rejects(writeFileAtomic0600(link, 'new'), /link\.env is a symlink; it is not followed or replaced/);
  assert.equal(await readFile(target, 'utf8'), 'untouched');
  assert.ok((await lstat(link)).isSymbolicLink());
  assert.deepEqual(
    (await readdir(base)).filter((f) => f.endsWith('.tmp')),
    [],
  );
  await rm(link);
});

test('a symlinked SOPS input is refused naming the file, even when it points inside the checkout; nothing written', async () => {
  const dir = await mkdtemp(join(root, 'link-in-'));
  await writeFile(
    join(dir, 'real.env.enc'),
    sopsEncryptDotenv([{ key: 'A', value: 'secret-value' }], { recipients: [me.recipient] }).text,
  );
  await symlink('real.env.enc', join(dir, '.env.enc'));
  const r = await sopsDecrypt({ baseDir: dir, files: [{ file: '.env.enc' }], ageKey: me.identity, timeoutMs: 10_000 });
  assert.ok(!r.ok && r.code === 'SOPS_BAD_PATH', JSON.stringify(r));
  assert.match(r.message, /file \.env\.enc is a symlink/);
  assert.deepEqual((await readdir(dir)).sort(), ['.env.enc', 'real.env.enc']);
});

test('an existing symlink at an output path is refused before anything is decrypted or written', async () => {
  const dir = await mkdtemp(join(root, 'link-out-'));
  await writeFile(
    join(dir, '.env.enc'),
    sopsEncryptDotenv([{ key: 'A', value: 'secret-value' }], { recipients: [me.recipient] }).text,
  );
  const victim = join(root, 'victim-out.txt');
  await writeFile(victim, 'untouched');
  await symlink(victim, join(dir, '.env'));
  const r = await sopsDecrypt({ baseDir: dir, files: [{ file: '.env.enc' }], ageKey: me.identity, timeoutMs: 10_000 });
  assert.ok(!r.ok && r.code === 'SOPS_BAD_PATH', JSON.stringify(r));
  assert.match(r.message, /output \.env is an existing symlink/);
  assert.equal(await readFile(victim, 'utf8'), 'untouched');
  assert.ok((await lstat(join(dir, '.env'))).isSymbolicLink());
});

test('inside-the-checkout compares real paths: a checkout reached through a symlinked dir works, ../ within rootDir too', async () => {
  const checkout = await mkdtemp(join(root, 'checkout-'));
  await mkdir(join(checkout, 'deploy'));
  await mkdir(join(checkout, 'secrets'));
  await writeFile(
    join(checkout, 'secrets', 'app.env.enc'),
    sopsEncryptDotenv([{ key: 'A', value: 'secret-value' }], { recipients: [me.recipient] }).text,
  );
  const alias = join(root, `alias-${Date.now()}`);
  await symlink(checkout, alias);
  const files = [{ file: '../secrets/app.env.enc', output: '.env' }];
  const r = await sopsDecrypt({
    baseDir: join(alias, 'deploy'),
    rootDir: alias,
    files,
    ageKey: me.identity,
    timeoutMs: 10_000,
  });
  assert.ok(r.ok, JSON.stringify(r));
  assert.equal(await readFile(join(checkout, 'deploy', '.env'), 'utf8'), 'A=secret-value\n');
  // Without rootDir the compose directory is the limit, as before.
  const narrow = await sopsDecrypt({ baseDir: join(alias, 'deploy'), files, ageKey: me.identity, timeoutMs: 10_000 });
  assert.ok(!narrow.ok && narrow.code === 'SOPS_BAD_PATH' && /escapes the checkout/.test(narrow.message));
});

test('the task runs inside the real Piscina pool', async () => {
  const pool = createPool({ maxThreads: 1, log: pino({ level: 'silent' }) });
  try {
    const run = createTaskRunner(pool);
    const r = await run('sops-decrypt', input({ files: [{ file: '.env.enc', output: 'pool.env' }] }));
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(await readFile(join(base, 'pool.env'), 'utf8'), 'DB_PASSWORD=pw1\n');
  } finally {
    await pool.destroy();
  }
});
