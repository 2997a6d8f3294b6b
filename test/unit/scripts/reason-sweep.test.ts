/**
 * @module The reason sweep script fails when a saved deployment row has no reason (or an empty summary), naming the
 * saved database file and the row, and passes when every row has one. The databases are real Shiparr databases
 * saved by the same helper the test daemons use.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Store } from '../../../src/store/index.ts';
import { saveDatabase, withSweepDir } from '../../helpers/secret-sweep.ts';
import { project, tempDb } from '../store/helpers.ts';

/** A real database with the given deployments (reason per row), saved into the sweep folder as `name`. */
function savedDb(name: string, reasons: ({ kind: 'boot'; summary: string } | null)[]): void {
  const tmp = tempDb();
  const store = Store.open(tmp.file);
  try {
    store.syncConfig([project('home', ['media'])]);
    for (const reason of reasons)
      store.createDeployment({ repoKey: 'home/media', trigger: 'poll', status: 'pending', reason });
  } finally {
    store.close();
  }
  saveDatabase(name, tmp.file);
  tmp.cleanup();
}

function sweep(dir: string): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'scripts/reason-sweep.ts', dir], { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

test('a saved deployment row without a reason, or with an empty summary, fails the sweep naming file and row', async () => {
  await withSweepDir((dir) => {
    savedDb('good-daemon', [{ kind: 'boot', summary: 'check at start' }]);
    savedDb('bad-daemon', [{ kind: 'boot', summary: 'fine' }, null, { kind: 'boot', summary: '  ' }]);
    const r = sweep(dir);
    assert.equal(r.status, 1, r.out);
    assert.match(r.out, /4 deployment rows checked in 2 saved databases/);
    assert.match(r.out, /2 deployment row\(s\) without a reason/);
    assert.match(
      r.out,
      /bad-daemon\.db\.jsonl-[0-9a-f]{8}: deployment 2 \(repository \d+, trigger poll, pending\): no reason/,
    );
    assert.match(r.out, /bad-daemon\.db\.jsonl-[0-9a-f]{8}: deployment 3 .*: reason has an empty summary/);
    assert.doesNotMatch(r.out, /good-daemon/);
  });
});

test('the sweep passes when every saved deployment row has a reason', async () => {
  await withSweepDir((dir) => {
    savedDb('daemon', [
      { kind: 'boot', summary: 'check at start' },
      { kind: 'boot', summary: 'again' },
    ]);
    const r = sweep(dir);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, /2 deployment rows checked in 1 saved databases/);
    assert.match(r.out, /every deployment row has a reason/);
  });
});
