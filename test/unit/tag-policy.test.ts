/** @module "Newer tag" policies over realistic tag lists: suffix families, prereleases, v prefixes, date tags. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { checkTagPolicy, newerTag, parseTag, type TagPolicy } from '../../src/registry/tag-policy.ts';

const POSTGRES = [
  'latest',
  'alpine',
  '15',
  '15.8',
  '16',
  '16.1',
  '16.2',
  '16.2-alpine',
  '16.2.1',
  '16-alpine',
  '16.4-alpine',
  '16.4-alpine3.20',
  '16.4-bookworm',
  '17',
  '17-alpine',
  '17.0',
  '17rc1',
  '17-rc1',
  '17-rc1-alpine',
  '18-beta1',
  '18-beta1-alpine',
];
const NGINX = [
  'latest',
  'stable',
  'mainline-alpine',
  '1.25-alpine',
  '1.26',
  '1.26-alpine',
  '1.26.2-alpine',
  '1.27',
  '1.27-alpine',
  '1.27.1-alpine',
  '1.27.3-alpine',
  '1.27.3-alpine-slim',
  '1.27.3-alpine-perl',
  '1.27.3',
  '1.28-alpine',
];
const TRAEFIK = ['v2.11', 'v2.11.14', 'v3.0', 'v3.1', 'v3.1.7', 'v3.2.0-rc1', 'v3.2', '3.3', 'latest'];
const DATES = ['2024-01-15', '2024-02-01', '2024-11-30', '2025-01-03', '2024-13', 'nightly', '2023-12-31', 'latest'];

interface Case {
  name: string;
  current: string;
  tags: readonly string[];
  policy: TagPolicy;
  want: string | null;
}

const CASES: Case[] = [
  {
    name: 'postgres ^16 from 16: highest 16.x without a suffix',
    current: '16',
    tags: POSTGRES,
    policy: { semver: '^16' },
    want: '16.2.1',
  },
  { name: 'postgres ^16 from 16.1', current: '16.1', tags: POSTGRES, policy: { semver: '^16' }, want: '16.2.1' },
  {
    name: 'postgres >=16 from 16: 17 (17.0 is the same version, the precision of 16 wins)',
    current: '16',
    tags: POSTGRES,
    policy: { semver: '>=16' },
    want: '17',
  },
  {
    name: 'postgres >=16 from 16.1: 17.0 (same precision as 16.1)',
    current: '16.1',
    tags: POSTGRES,
    policy: { semver: '>=16' },
    want: '17.0',
  },
  {
    name: 'postgres 16-alpine stays alpine: never 17 without -alpine',
    current: '16-alpine',
    tags: POSTGRES,
    policy: { semver: '^16' },
    want: '16.4-alpine',
  },
  {
    name: 'postgres 16-alpine >=16: 17-alpine, not 17 nor the alpine prerelease',
    current: '16-alpine',
    tags: POSTGRES,
    policy: { semver: '>=16' },
    want: '17-alpine',
  },
  {
    name: 'postgres 16.2-alpine ^16: not alpine3.20 nor bookworm',
    current: '16.2-alpine',
    tags: POSTGRES,
    policy: { semver: '^16' },
    want: '16.4-alpine',
  },
  {
    name: 'postgres at the newest in range: null',
    current: '16.2.1',
    tags: POSTGRES,
    policy: { semver: '~16.2' },
    want: null,
  },
  {
    name: 'postgres latest is not a version: null',
    current: 'latest',
    tags: POSTGRES,
    policy: { semver: '>=16' },
    want: null,
  },
  {
    name: 'prereleases skipped for a release current tag',
    current: '17',
    tags: POSTGRES,
    policy: { semver: '>=17' },
    want: null,
  },
  {
    name: 'prereleases allowed when the current tag is one (rc10 > rc9: numbers compare as numbers)',
    current: '17-rc1',
    tags: ['17-rc1', '17-rc2', '17-rc10', '17-rc9', '18-beta1', '16'],
    policy: { semver: '~17.0.0-rc.1' },
    want: '17-rc10',
  },
  {
    name: 'prerelease current moves to the release',
    current: '17-rc1',
    tags: ['17-rc1', '17-rc2', '17', '18-beta1'],
    policy: { semver: '^17.0.0-0' },
    want: '17',
  },
  {
    name: 'prereleases allowed when the range names one',
    current: '17',
    tags: POSTGRES,
    policy: { semver: '>=18.0.0-beta.1' },
    want: '18-beta1',
  },
  {
    name: 'prerelease with a variant keeps the variant',
    current: '17-alpine',
    tags: POSTGRES,
    policy: { semver: '>=18.0.0-beta.0' },
    want: '18-beta1-alpine',
  },
  {
    name: 'nginx 1.27-alpine ~1.27: patch tags of the alpine family',
    current: '1.27-alpine',
    tags: NGINX,
    policy: { semver: '~1.27' },
    want: '1.27.3-alpine',
  },
  {
    name: 'nginx 1.27.1-alpine >=1.27: 1.28-alpine',
    current: '1.27.1-alpine',
    tags: NGINX,
    policy: { semver: '>=1.27' },
    want: '1.28-alpine',
  },
  {
    name: 'nginx alpine-slim is its own family',
    current: '1.27.1-alpine-slim',
    tags: NGINX,
    policy: { semver: '^1' },
    want: '1.27.3-alpine-slim',
  },
  {
    name: 'nginx plain 1.26 ^1: 1.27.3 (no suffix family)',
    current: '1.26',
    tags: NGINX,
    policy: { semver: '^1' },
    want: '1.27.3',
  },
  {
    name: 'v prefix kept: v3.0 ^3 → v3.2 (not 3.3, not the rc)',
    current: 'v3.0',
    tags: TRAEFIK,
    policy: { semver: '^3' },
    want: 'v3.2',
  },
  { name: 'v prefix with v2 range', current: 'v2.11', tags: TRAEFIK, policy: { semver: '^2' }, want: 'v2.11.14' },
  {
    name: 'tag_regex alone restricts and orders by version',
    current: 'v3.0',
    tags: TRAEFIK,
    policy: { tag_regex: 'v\\d+\\.\\d+' },
    want: 'v3.2',
  },
  { name: 'tag_regex is a full match', current: '1.26', tags: NGINX, policy: { tag_regex: '1\\.2' }, want: null },
  {
    name: 'regex AND range',
    current: '1.26',
    tags: NGINX,
    policy: { semver: '<1.28', tag_regex: '\\d+\\.\\d+' },
    want: '1.27',
  },
  {
    name: 'date tags with tag_regex',
    current: '2024-01-15',
    tags: DATES,
    policy: { tag_regex: '\\d{4}-\\d{2}-\\d{2}' },
    want: '2025-01-03',
  },
  {
    name: 'date tags: none newer',
    current: '2025-01-03',
    tags: DATES,
    policy: { tag_regex: '\\d{4}-\\d{2}-\\d{2}' },
    want: null,
  },
  {
    name: 'compact date tags order as numbers',
    current: '20240115',
    tags: ['20240115', '20240201', '20231231', '2024021'],
    policy: { tag_regex: '\\d{8}' },
    want: '20240201',
  },
  {
    name: 'regex alone with a non-version current tag: not comparable',
    current: 'stable',
    tags: NGINX,
    policy: { tag_regex: '.*' },
    want: null,
  },
  { name: 'no tags', current: '16', tags: [], policy: { semver: '*' }, want: null },
];

describe('newerTag', () => {
  for (const c of CASES) {
    it(c.name, () => {
      assert.equal(newerTag(c.current, c.tags, c.policy), c.want);
    });
  }

  it('ignores duplicates and order of the list', () => {
    const shuffled = [...POSTGRES].reverse();
    assert.equal(newerTag('16', [...shuffled, ...shuffled], { semver: '^16' }), '16.2.1');
  });

  it('answers null for an invalid policy instead of throwing', () => {
    assert.equal(newerTag('16', POSTGRES, { semver: 'sixteen' }), null);
    assert.equal(newerTag('16', POSTGRES, { tag_regex: '(' }), null);
  });
});

describe('parseTag', () => {
  it('splits prerelease and variant, and coerces missing parts to 0', () => {
    assert.deepEqual(parseTag('7.2-rc2-alpine'), {
      tag: '7.2-rc2-alpine',
      family: '|alpine',
      version: '7.2.0-rc.2',
      numbers: [7, 2],
      prerelease: true,
    });
    assert.equal(parseTag('v16.2')?.version, '16.2.0');
    assert.equal(parseTag('v16.2')?.family, 'v|');
    assert.equal(parseTag('2024.01.15')?.version, '2024.1.15');
    assert.equal(parseTag('2024-01-15')?.family, 'numeric:-:3');
    for (const t of ['latest', 'alpine', 'sha-1a2b3c', '1.2.3.4', '-1', 'v']) assert.equal(parseTag(t), null, t);
  });
});

describe('checkTagPolicy', () => {
  it('accepts ranges, patterns and both', () => {
    assert.equal(checkTagPolicy({ semver: '^16' }), null);
    assert.equal(checkTagPolicy({ tag_regex: '^\\d+\\.\\d+-alpine$' }), null);
    assert.equal(checkTagPolicy({ semver: '>=1.27 <2', tag_regex: '.*' }), null);
  });

  it('says what is wrong', () => {
    assert.equal(checkTagPolicy({}), 'a tag policy needs "semver" or "tag_regex"');
    assert.equal(checkTagPolicy({ semver: 'sixteen' }), 'semver range "sixteen" is not valid');
    assert.equal(checkTagPolicy({ semver: '' }), 'semver range must be a non-empty string');
    assert.equal(checkTagPolicy({ semver: 16 as unknown as string }), 'semver range must be a non-empty string');
    assert.match(
      checkTagPolicy({ tag_regex: '(' }) ?? '',
      /^tag_regex "\(" is not a valid RE2 regular expression \(.+\)$/,
    );
    // Lookarounds are refused by RE2 (matching stays linear in the tag length).
    assert.match(checkTagPolicy({ tag_regex: '(?!rc)\\d+' }) ?? '', /not a valid RE2/);
    assert.equal(checkTagPolicy({ tag_regex: '' }), 'tag_regex must be a non-empty string');
    assert.equal(
      checkTagPolicy(null as unknown as TagPolicy),
      'a tag policy must be a mapping with "semver" and/or "tag_regex"',
    );
  });
});

it('a caret or tilde range does not let prereleases in (semver writes its upper bound as <2.0.0-0)', () => {
  assert.equal(newerTag('1.0', ['1.2-rc1'], { semver: '^1' }), null);
  assert.equal(newerTag('1.0', ['1.2-rc1', '1.1'], { semver: '^1' }), '1.1');
  assert.equal(newerTag('1.0.0', ['1.0.5-beta.1', '1.0.4'], { semver: '~1.0' }), '1.0.4');
  assert.equal(newerTag('16.1', ['16.2', '17.0-beta1'], { semver: '>=16.0.0-0' }), '17.0-beta1', 'asked for');
});
