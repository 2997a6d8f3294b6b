/** @module Tests for `${VAR}` interpolation. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { interpolateString, interpolateTree } from '../../../src/config/env.ts';

const env = { TOKEN: 'ghp_secretvalue', EMPTY: '', PORT: '8080' };

test('${VAR} is replaced from the environment, also inside longer strings', () => {
  assert.equal(interpolateString('${TOKEN}', env).value, 'ghp_secretvalue');
  assert.equal(interpolateString('http://h:${PORT}/x', env).value, 'http://h:8080/x');
  assert.equal(interpolateString('${PORT}${PORT}', env).value, '80808080');
});

test('${VAR:-default} uses the default when unset or empty; ${VAR-default} only when unset', () => {
  assert.equal(interpolateString('${MISSING:-fallback}', env).value, 'fallback');
  assert.equal(interpolateString('${EMPTY:-fallback}', env).value, 'fallback');
  assert.equal(interpolateString('${PORT:-1}', env).value, '8080');
  assert.equal(interpolateString('${MISSING:-}', env).value, '');
  assert.equal(interpolateString('${EMPTY-fallback}', env).value, '');
  assert.equal(interpolateString('${MISSING-fallback}', env).value, 'fallback');
  assert.equal(interpolateString('${MISSING:-a-b:c}', env).value, 'a-b:c');
});

test('$${VAR} is a literal ${VAR} and a bare $ is left alone', () => {
  const r = interpolateString('p$$w0rd $HOME $${TOKEN} and ${PORT}', env);
  assert.equal(r.value, 'p$$w0rd $HOME ${TOKEN} and 8080');
  assert.deepEqual(r.problems, []);
  assert.equal(interpolateString('no refs $ here', env).changed, false);
});

test('an unset variable is a problem naming the variable, never a value', () => {
  const r = interpolateString('${NOPE}', env);
  assert.equal(r.problems.length, 1);
  assert.match(r.problems[0] ?? '', /NOPE is not set/);
  assert.equal(r.value, '${NOPE}');
});

test('malformed references are reported', () => {
  assert.match(interpolateString('${1BAD}', env).problems[0] ?? '', /invalid variable reference/);
  assert.match(interpolateString('${}', env).problems[0] ?? '', /invalid variable reference/);
  assert.match(interpolateString('abc ${TOKEN', env).problems[0] ?? '', /unterminated/);
});

test('interpolateTree walks nested values (not keys), reports paths and leaves the input untouched', () => {
  const input = { a: { '${TOKEN}': '${PORT}', list: ['x', '${NOPE}', 3, true, null] } };
  const r = interpolateTree(input, env);
  assert.deepEqual(r.value, { a: { '${TOKEN}': '8080', list: ['x', '${NOPE}', 3, true, null] } });
  assert.deepEqual(
    r.issues.map((i) => i.path),
    [['a', 'list', 1]],
  );
  assert.deepEqual(r.interpolated, [
    ['a', '${TOKEN}'],
    ['a', 'list', 1],
  ]);
  assert.equal(input.a['${TOKEN}'], '${PORT}');
});

test('a "__proto__" key stays plain data', () => {
  const input = JSON.parse('{"__proto__": {"polluted": "yes"}, "a": "b"}') as unknown;
  const r = interpolateTree(input, env).value as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(r), Object.prototype);
  assert.equal((r as { polluted?: string }).polluted, undefined);
  assert.ok(Object.hasOwn(r, '__proto__'));
});
