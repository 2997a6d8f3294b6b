/**
 * @module The secret sweep script fails when a registered secret appears in a saved artifact (also JSON-escaped),
 * names the artifact and the secret's label but never prints the value, and passes on clean artifacts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { registerTestSecrets, saveArtifact, withSweepDir } from '../../helpers/secret-sweep.ts';

function sweep(dir: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/secret-sweep.ts', dir], { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test('a secret in a saved artifact fails the sweep without printing it', async () => {
  await withSweepDir((dir) => {
    registerTestSecrets('sweep test token', ['name:tok-3f9a1c7e55d2b8a0', 'short']);
    saveArtifact('clean.log', '{"msg":"deploy succeeded"}\n');
    saveArtifact('leaky.api', 'GET /api/deployments/1 200\n{"error":"auth tok-3f9a1c7e55d2b8a0 refused"}');
    const r = sweep(dir);
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /1 leak\(s\) found/);
    assert.match(r.out, /leaky\.api-[0-9a-f]{8}: a secret registered as "sweep test token"/);
    assert.doesNotMatch(r.out, /tok-3f9a1c7e55d2b8a0/);
  });
});

test('a JSON-escaped secret is found too', async () => {
  await withSweepDir((dir) => {
    registerTestSecrets('quoted', ['pa"ss\\word-9x']);
    saveArtifact('db.jsonl', JSON.stringify({ row: { error: 'pa"ss\\word-9x' } }));
    assert.equal(sweep(dir).status, 1);
  });
});

test('clean artifacts pass, and an empty sweep is an error rather than a silent pass', async () => {
  await withSweepDir((dir) => {
    registerTestSecrets('sweep test token', ['tok-3f9a1c7e55d2b8a0']);
    saveArtifact('clean.log', '{"msg":"deploy succeeded","token":"***"}\n');
    const r = sweep(dir);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /1 secret values searched in 1 artifacts/);
  });
  await withSweepDir((dir) => {
    assert.equal(sweep(dir).status, 1);
  });
});
