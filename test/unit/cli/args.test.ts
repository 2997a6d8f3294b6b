/** @module The shared `<project>/<repo> [--commit=<sha>] [flags]` parsing of `shiparr deploy` and `shiparr plan`. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRepoArgs } from '../../../src/cli/args.ts';

test('a key, an optional commit of 7-40 hex digits and the allowed flags are accepted', () => {
  assert.deepEqual(parseRepoArgs(['home/app']), { key: 'home/app', flags: new Set() });
  assert.deepEqual(parseRepoArgs(['--commit=abcdef1', 'home/app', '--json'], ['--json']), {
    key: 'home/app',
    commit: 'abcdef1',
    flags: new Set(['--json']),
  });
});

test('anything else is refused (null): the command prints its usage and exits 2', () => {
  for (const args of [
    [],
    ['app'],
    ['home/app/extra'],
    ['home/app', 'other/app'],
    ['home/app', '--commit=xyz1234'],
    ['home/app', '--commit=abc'],
    ['home/app', '--commit=abcdef1', '--commit=abcdef2'],
    ['home/app', '--json'],
    ['home/app', '--force'],
  ])
    assert.equal(parseRepoArgs(args), null, JSON.stringify(args));
  assert.equal(parseRepoArgs(['home/app', '--json'], ['--json'])?.flags.has('--json'), true);
});
