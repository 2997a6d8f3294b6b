/**
 * @module The repository stands alone: no file in it points at the machine it was built on, at paths outside the
 * checkout, or at documents that are not shipped; and every `docs/*.md` a file mentions exists.
 * Files are those git lists (tracked, plus new files not ignored), so a leak is caught before it is committed.
 * The patterns are assembled from pieces at run time so that this file does not match them itself.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const S = '/';

/** What must not appear anywhere. A path only counts at its start: not inside a longer path or a URL's path. */
const LEAKS: { what: string; re: RegExp }[] = [
  { what: 'absolute path of the build machine', re: new RegExp(`(?<![\\w.-])${S}work${S}`) },
  { what: 'a home directory of the build machine', re: new RegExp(`(?<![\\w./-])${S}home${S}[a-z_][a-z0-9_-]*${S}`) },
  { what: 'a path outside the repository', re: new RegExp(`\\.\\.${S}shared\\b`) },
  { what: 'a document that is not shipped', re: new RegExp(`\\b(?:${['STYLE', 'DESIGN'].join('|')})\\.md\\b`) },
  {
    what: 'a document that is not shipped',
    re: new RegExp(`\\b(?:specs${S})?(?:${['SOPS', 'SHOUTRRR', 'DASHY'].join('|')})\\.md\\b`),
  },
];

/** A mention of a repository document: `docs/<name>.md`, not as the tail of a longer path. */
const DOC_LINK = new RegExp(`(?<![\\w./-])docs${S}[\\w.${S}-]+?\\.md\\b`, 'g');

/** The upstream SOPS fixtures are opaque data (base64 could contain anything); only their notes are text we wrote. */
const isOpaqueFixture = (file: string): boolean => file.startsWith('test/fixtures/sops/') && !file.endsWith('.md');

/** Files git tracks plus untracked files that are not ignored; undefined when this is not a git checkout. */
function repoFiles(): string[] | undefined {
  let out: string;
  try {
    out = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
      cwd: ROOT,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
  } catch {
    return undefined;
  }
  return [...new Set(out.split('\0'))]
    .filter((f) => f !== '' && !f.split('/').includes('node_modules') && !isOpaqueFixture(f))
    .filter((f) => {
      const abs = join(ROOT, f);
      return existsSync(abs) && statSync(abs).isFile();
    })
    .sort();
}

/** The text of a file, or undefined for binary content (a NUL byte near the start). */
function textOf(file: string): string | undefined {
  const buf = readFileSync(join(ROOT, file));
  if (buf.subarray(0, 8000).includes(0)) return undefined;
  return buf.toString('utf8');
}

/** `file:line: what: text` for every leak in `text`. */
function findLeaks(file: string, text: string): string[] {
  const found: string[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    for (const { what, re } of LEAKS) {
      if (re.test(line)) found.push(`${file}:${i + 1}: ${what}: ${line.trim().slice(0, 160)}`);
    }
  }
  return found;
}

/** `file:line: target` for every `docs/….md` mention whose file does not exist. */
function findDeadDocLinks(file: string, text: string): string[] {
  const found: string[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    for (const m of line.matchAll(DOC_LINK)) {
      if (!existsSync(join(ROOT, m[0]))) found.push(`${file}:${i + 1}: ${m[0]} does not exist`);
    }
  }
  return found;
}

const files = repoFiles();
const skip = files === undefined ? 'not a git checkout (git ls-files failed)' : false;

test('the leak patterns catch what they are meant to catch', () => {
  const leaks = [
    `see ${S}work${S}main${S}x`,
    `'..${S}shared${S}fixtures'`,
    `${S}home${S}someone${S}.config`,
    `(${'STYLE'}.md convention 1)`,
    `(specs${S}${'DASHY'}.md)`,
  ];
  for (const l of leaks) assert.equal(findLeaks('x', l).length, 1, l);
  const fine = [
    `https:${S}${S}example.com${S}work${S}x`,
    `${S}data${S}deployments${S}home${S}media`,
    `docs${S}sops.md`,
    `${S}home${S}node;`,
  ];
  for (const l of fine) assert.deepEqual(findLeaks('x', l), [], l);
});

test('no file points at the build machine, outside the repository, or at unshipped documents', { skip }, () => {
  assert.ok(files && files.length > 0);
  const problems: string[] = [];
  let scanned = 0;
  for (const f of files) {
    const text = textOf(f);
    if (text === undefined) continue;
    scanned++;
    problems.push(...findLeaks(f, text));
  }
  assert.ok(scanned > 50, `only ${scanned} text files found`);
  assert.deepEqual(problems, [], `leaks found:\n${problems.join('\n')}`);
});

test('every docs/*.md that a file mentions exists', { skip }, () => {
  assert.ok(files);
  const problems: string[] = [];
  let mentions = 0;
  for (const f of files) {
    const text = textOf(f);
    if (text === undefined) continue;
    mentions += [...text.matchAll(DOC_LINK)].length;
    problems.push(...findDeadDocLinks(f, text));
  }
  assert.ok(mentions >= 3, 'README.md links the documentation');
  assert.deepEqual(problems, [], `dead links:\n${problems.join('\n')}`);
});

test('the SOPS fixtures the tests read are vendored, with their provenance', () => {
  for (const f of [
    'EXPECTED.json',
    'PROVENANCE.md',
    'gibbz00-rops/key.txt',
    'fluxcd-kustomize-controller/files/file.txt',
  ]) {
    assert.ok(existsSync(join(ROOT, 'test/fixtures/sops', f)), f);
  }
});
