/** @module Tests for the project-file loader: parsing, interpolation, validation messages, resolution, cross-file checks. */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { checkProjectConflicts, isProjectFileName, loadProjectFile, loadProjects } from '../../../src/config/load.ts';
import type { LoadContext } from '../../../src/config/load.ts';
import type { ConfigIssue } from '../../../src/domain/types.ts';

let root: string;
before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'shiparr-load-'));
});
after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

let seq = 0;
/** A fresh config dir with the given files, and a context whose data dir is a sibling. */
async function setup(files: Record<string, string>, env: NodeJS.ProcessEnv = {}, githubToken?: string) {
  const base = path.join(root, `case-${++seq}`);
  const dir = path.join(base, 'projects');
  await fs.mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) await fs.writeFile(path.join(dir, name), text);
  const ctx: LoadContext = { env, dataPath: path.join(base, 'data'), githubToken };
  return { dir, ctx, dataPath: ctx.dataPath };
}

/** Loads one file's text and returns its errors (as `path: message`) and project. */
async function loadOne(text: string, env: NodeJS.ProcessEnv = {}, githubToken?: string) {
  const { dir, ctx, dataPath } = await setup({ 'p.yaml': text }, env, githubToken);
  const r = await loadProjects(dir, ctx);
  return { ...r, dataPath, dir, msgs: r.errors.map((e) => `${e.path}: ${e.message}`) };
}

const minimal = (repo = '    url: github.com/user/stack.git\n', head = 'project: homelab\n') =>
  `${head}repositories:\n  stack:\n${repo}`;

function only(errors: ConfigIssue[]): ConfigIssue {
  assert.equal(errors.length, 1, `expected exactly one error, got ${JSON.stringify(errors)}`);
  return errors[0] as ConfigIssue;
}

test('a minimal file gets every default', async () => {
  const r = await loadOne(minimal());
  assert.deepEqual(r.errors, []);
  const repo = r.projects[0]?.repositories[0];
  assert.ok(repo);
  assert.equal(repo.key, 'homelab/stack');
  assert.equal(repo.url, 'https://github.com/user/stack.git');
  assert.equal(repo.branch, 'main');
  assert.equal(repo.path, '.');
  assert.equal(repo.localPath, path.join(r.dataPath, 'deployments', 'homelab', 'stack'));
  assert.equal(repo.checkInterval, 300);
  assert.equal(repo.composeProject, 'homelab-stack');
  assert.deepEqual(repo.composeFiles, []);
  assert.equal(repo.pull, 'missing');
  assert.equal(repo.build, false);
  assert.equal(repo.removeOrphans, true);
  assert.deepEqual(repo.healthcheck, { timeout: 120, retries: 5, interval: 5 });
  assert.equal(repo.rollback, true);
  assert.deepEqual(repo.decrypt, []);
  assert.equal(repo.keepDecrypted, false);
  assert.equal(repo.token, undefined);
  assert.equal('token' in repo, false, 'absent optional members are not even present (stable deep-equal)');
  assert.equal(repo.enabled, true);
  assert.equal(repo.suspended, false);
  assert.equal(repo.shallow, true);
  assert.deepEqual(repo.timeouts, { git: 120, apply: 600, decrypt: 60, notify: 10 });
  assert.deepEqual(repo.notifications, { success: [], failure: [] });
  assert.deepEqual(repo.globalNotifications, { success: [], failure: [] });
  assert.equal(repo.notifyRepeatInterval, 3600);
  assert.match(repo.configHash, /^[0-9a-f]{16}$/);
  assert.deepEqual(r.files, [{ file: path.join(r.dir, 'p.yaml'), project: 'homelab', ok: true }]);
  assert.deepEqual(structuredClone(repo), repo, 'RepoConfig is clone-safe');
});

test("the original Shiparr script's project-file format loads with tokens, env_file, notifications and global notifications", async () => {
  const r = await loadOne(
    [
      'project: homelab',
      'description: "Services homelab"',
      'tokens:',
      '  github: ${GITHUB_TOKEN}',
      'repositories:',
      '  media-stack:',
      '    url: github.com/user/media-stack.git',
      '    branch: main',
      '    path: docker/',
      '    local_path: media-stack',
      '    check_interval: 300',
      '    env_file: .env.enc',
      '    decrypt:',
      '      - file: secrets/app.enc.yaml',
      '        format: yaml',
      '        output: secrets/app.yaml',
      '    notifications:',
      '      success: [discord://token@id]',
      '      failure: [discord://token@id, "telegram://token@telegram?chats=chat_id"]',
      'global_notifications:',
      '  failure: [generic+https://example.com/hook]',
      '',
    ].join('\n'),
    { GITHUB_TOKEN: 'ghp_fromenv' },
  );
  assert.deepEqual(r.errors, []);
  const p = r.projects[0];
  assert.equal(p?.description, 'Services homelab');
  const repo = p?.repositories[0];
  assert.equal(repo?.token, 'ghp_fromenv');
  assert.equal(repo?.path, 'docker');
  assert.equal(repo?.localPath, path.join(r.dataPath, 'media-stack'));
  assert.deepEqual(repo?.decrypt, [
    { file: '.env.enc' },
    { file: 'secrets/app.enc.yaml', format: 'yaml', output: 'secrets/app.yaml' },
  ]);
  assert.deepEqual(repo?.notifications.failure, ['discord://token@id', 'telegram://token@telegram?chats=chat_id']);
  assert.deepEqual(repo?.globalNotifications, { success: [], failure: ['generic+https://example.com/hook'] });
});

test('${VAR} resolution: default, escape, numbers from variables', async () => {
  const r = await loadOne(
    minimal(
      '    url: ${REPO_URL}\n    branch: ${BRANCH:-release}\n    check_interval: ${INTERVAL}\n    build: ${BUILD}\n    webhook_secret: "$${NOT_A_VAR}"\n',
    ),
    { REPO_URL: 'gitlab.com/team/app.git', INTERVAL: '60', BUILD: 'true' },
  );
  assert.deepEqual(r.errors, []);
  const repo = r.projects[0]?.repositories[0];
  assert.equal(repo?.url, 'https://gitlab.com/team/app.git');
  assert.equal(repo?.branch, 'release');
  assert.equal(repo?.checkInterval, 60);
  assert.equal(repo?.build, true);
  assert.equal(repo?.webhookSecret, '${NOT_A_VAR}');
});

test('an unresolved ${VAR} is an error with the key path, and no follow-up error for the same value', async () => {
  const r = await loadOne(minimal('    url: ${REPO_URL}\n    token: ${SECRET_TOKEN}\n'), {});
  assert.deepEqual(r.msgs.sort(), [
    'repositories.stack.token: environment variable SECRET_TOKEN is not set (use ${SECRET_TOKEN:-default} for a default)',
    'repositories.stack.url: environment variable REPO_URL is not set (use ${REPO_URL:-default} for a default)',
  ]);
  assert.deepEqual(r.projects, []);
  assert.equal(r.files[0]?.ok, false);
  assert.equal(r.files[0]?.project, 'homelab');
});

test('a number-typed key from a non-numeric variable is still a type error', async () => {
  const r = await loadOne(minimal('    url: github.com/u/r\n    check_interval: ${INTERVAL}\n'), { INTERVAL: 'soon' });
  assert.deepEqual(r.msgs, ['repositories.stack.check_interval: must be a number, not text']);
});

test('unknown keys are named, with a suggestion for near misses', async () => {
  const r = await loadOne(
    minimal(
      '    url: github.com/u/r\n    brnch: dev\n    checkInterval: 5\n    frobnicate: 1\n',
      'project: homelab\nfoo: 1\n',
    ),
  );
  assert.deepEqual(r.msgs.sort(), [
    ': unknown key "foo"',
    'repositories.stack: unknown key "brnch" (did you mean "branch"?)',
    'repositories.stack: unknown key "checkInterval" (did you mean "check_interval"?)',
    'repositories.stack: unknown key "frobnicate"',
  ]);
});

test('missing required fields', async () => {
  const noProject = await loadOne('repositories:\n  stack:\n    url: github.com/u/r\n');
  assert.deepEqual(noProject.msgs, ['project: is required']);
  const noUrl = await loadOne(minimal('    branch: main\n'));
  assert.deepEqual(noUrl.msgs, ['repositories.stack.url: is required']);
  const noRepos = await loadOne('project: x\n');
  assert.deepEqual(noRepos.msgs, ['repositories: is required']);
  const emptyRepos = await loadOne('project: x\nrepositories: {}\n');
  assert.deepEqual(emptyRepos.msgs, ['repositories: must list at least one repository']);
});

test('wrong types, enum values, bad names and bad nested values get human messages', async () => {
  const r = await loadOne(
    minimal(
      '    url: github.com/u/r\n    build: "yes"\n    pull: sometimes\n    compose_files: compose.yaml\n    check_interval: -5\n    healthcheck:\n      url: ftp://x\n      retries: 1.5\n',
      'project: 42\ntokens: [a]\n',
    ),
  );
  assert.deepEqual(r.msgs.sort(), [
    'project: must be text, not a number',
    'repositories.stack.build: must be true or false, not text',
    'repositories.stack.check_interval: must be a positive number of seconds',
    'repositories.stack.compose_files: must be a list, not text',
    'repositories.stack.healthcheck.retries: must be a whole number, not a number',
    'repositories.stack.healthcheck.url: must be an http(s) URL',
    'repositories.stack.pull: must be one of "always", "missing", "never"',
    'tokens: must be a mapping (key: value), not a list',
  ]);
  assert.equal(r.files[0]?.project, undefined, 'a non-text project name is not reported as the project');
  const badName = await loadOne('project: "bad name"\nrepositories:\n  "my repo":\n    url: github.com/u/r\n');
  assert.deepEqual(badName.msgs.sort(), [
    'project: must start with a letter or digit and contain only letters, digits, "_", "." or "-" (max 63)',
    'repositories: invalid name "my repo": repository name must start with a letter or digit and contain only letters, digits, "_", "." or "-" (max 63)',
  ]);
  const list = await loadOne('- a\n- b\n');
  assert.deepEqual(list.msgs, [': the file must contain a mapping (key: value), not a list']);
  const nested = await loadOne(
    minimal('    url: github.com/u/r\n    decrypt:\n      - file: ""\n        format: toml\n'),
  );
  assert.deepEqual(nested.msgs.sort(), [
    'repositories.stack.decrypt[0].file: must not be empty',
    'repositories.stack.decrypt[0].format: must be one of "dotenv", "yaml", "json", "binary"',
  ]);
});

test('URL normalisation and rejection of bad URLs', async () => {
  const cases: [string, string][] = [
    ['github.com/user/repo.git', 'https://github.com/user/repo.git'],
    ['https://GitHub.com/user/repo', 'https://github.com/user/repo'],
    ['http://10.0.0.5:3000/org/repo.git', 'http://10.0.0.5:3000/org/repo.git'],
  ];
  for (const [input, want] of cases) {
    const r = await loadOne(minimal(`    url: "${input}"\n`));
    assert.deepEqual(r.errors, [], input);
    assert.equal(r.projects[0]?.repositories[0]?.url, want);
  }
  const bad: [string, RegExp][] = [
    ['git@github.com:user/repo.git', /SSH and git:\/\/ URLs are not supported/],
    ['ssh://git@github.com/user/repo.git', /SSH/],
    ['ftp://example.com/repo.git', /unsupported URL scheme "ftp"/],
    ['https://', /not a valid URL/],
    ['github.com', /no repository path/],
    ['https://exa mple.com/x', /not a valid URL/],
    ['https://example.com/x?ref=1', /query string/],
  ];
  for (const [input, want] of bad) {
    const r = await loadOne(minimal(`    url: "${input}"\n`));
    assert.equal(only(r.errors).path, 'repositories.stack.url', input);
    assert.match(only(r.errors).message, want, input);
  }
});

test('credentials in the URL are moved out: stripped from url, password used as token, never in messages', async () => {
  const r = await loadOne(minimal('    url: https://bob:s3cr%40t@git.example.com/team/app.git\n'));
  assert.deepEqual(r.errors, []);
  const repo = r.projects[0]?.repositories[0];
  assert.equal(repo?.url, 'https://git.example.com/team/app.git');
  assert.equal(repo?.token, 's3cr@t');
  assert.deepEqual(r.warnings, [], 'https: no warning');
  const plain = await loadOne(minimal('    url: http://10.0.0.2/team/app.git\n    token: t\n'));
  assert.match(plain.warnings[0]?.message ?? '', /plain http/);
  const explicit = await loadOne(minimal('    url: https://bob:fromurl@git.example.com/a.git\n    token: explicit\n'));
  assert.equal(explicit.projects[0]?.repositories[0]?.token, 'explicit');
  const bad = await loadOne(minimal('    url: ftp://bob:hunter2@x.org/a.git\n'));
  assert.equal(bad.errors.length, 1);
  assert.doesNotMatch(JSON.stringify(bad.errors), /hunter2/);
});

test('token resolution: repo token, then project tokens by host, then GITHUB_TOKEN for github.com', async () => {
  const file = (url: string, tokens: string, repoToken = '') =>
    `project: p\ntokens:\n${tokens}repositories:\n  r:\n    url: ${url}\n${repoToken}`;
  const tok = async (text: string, githubToken?: string) =>
    (await loadOne(text, {}, githubToken)).projects[0]?.repositories[0]?.token;
  const all = '  github: GH\n  gitlab: GL\n  gitea: GT\n  git.example.com: EXACT\n  git.example.com:8443: WITHPORT\n';
  assert.equal(await tok(file('github.com/u/r', all, '    token: REPO\n'), 'ENV'), 'REPO');
  assert.equal(await tok(file('github.com/u/r', all), 'ENV'), 'GH');
  assert.equal(await tok(file('gitlab.com/u/r', all)), 'GL');
  assert.equal(await tok(file('codeberg.org/u/r', all)), 'GT');
  assert.equal(await tok(file('codeberg.org/u/r', '  codeberg: CB\n')), 'CB');
  assert.equal(await tok(file('git.example.com/u/r', all)), 'EXACT');
  assert.equal(await tok(file('git.example.com:8443/u/r', all)), 'WITHPORT');
  assert.equal(await tok(file('github.com/u/r', '  gitlab: GL\n'), 'ENV'), 'ENV');
  assert.equal(
    await tok(file('gitlab.com/u/r', '  github: GH\n'), 'ENV'),
    undefined,
    'GITHUB_TOKEN is for github.com only',
  );
  assert.equal(await tok(file('other.org/u/r', all), 'ENV'), undefined);
  assert.equal(
    await tok(file('github.com/u/r', '  github: ""\n', '    token: ""\n'), 'ENV'),
    'ENV',
    'empty tokens count as unset',
  );
});

test('paths: path/env_file/decrypt/compose_files stay inside the checkout', async () => {
  const cases: [string, string, RegExp][] = [
    ['    path: ../outside\n', 'repositories.stack.path', /escapes the checkout/],
    ['    path: /etc\n', 'repositories.stack.path', /must be a relative path/],
    ['    path: docker\n    env_file: ../../.env.enc\n', 'repositories.stack.env_file', /escapes the checkout/],
    ['    env_file: /root/.env.enc\n', 'repositories.stack.env_file', /absolute/],
    [
      '    decrypt:\n      - file: a.enc.json\n        output: ../../x.json\n',
      'repositories.stack.decrypt[0].output',
      /escapes/,
    ],
    ['    decrypt:\n      - file: ../a.enc.json\n', 'repositories.stack.decrypt[0].file', /escapes/],
    ['    compose_files: [compose.yaml, ../../c.yaml]\n', 'repositories.stack.compose_files[1]', /escapes/],
  ];
  for (const [extra, key, want] of cases) {
    const r = await loadOne(minimal(`    url: github.com/u/r\n${extra}`));
    assert.equal(only(r.errors).path, key, extra);
    assert.match(only(r.errors).message, want, extra);
  }
  const ok = await loadOne(
    minimal(
      '    url: github.com/u/r\n    path: ./stacks/media/\n    env_file: ../common/.env.enc\n    compose_files: [./compose.yaml]\n',
    ),
  );
  assert.deepEqual(ok.errors, []);
  const repo = ok.projects[0]?.repositories[0];
  assert.equal(repo?.path, 'stacks/media');
  assert.deepEqual(repo?.decrypt, [{ file: '../common/.env.enc' }], 'may leave path but not the checkout');
  assert.deepEqual(repo?.composeFiles, ['compose.yaml']);
});

test('local_path: relative under the data dir, absolute allowed, dangerous places rejected', async () => {
  const abs = path.join(root, 'elsewhere', 'stack');
  const good = await loadOne(minimal(`    url: github.com/u/r\n    local_path: ${abs}\n`));
  assert.equal(good.projects[0]?.repositories[0]?.localPath, abs);
  const rel = await loadOne(minimal('    url: github.com/u/r\n    local_path: ./checkouts/stack/\n'));
  assert.equal(rel.projects[0]?.repositories[0]?.localPath, path.join(rel.dataPath, 'checkouts', 'stack'));

  const bad: [string, RegExp][] = [
    ['../escape', /escapes SHIPARR_DATA_PATH/],
    ['.', /must not be SHIPARR_DATA_PATH itself/],
    ['/', /filesystem root/],
    [root, /must not be SHIPARR_DATA_PATH itself or one of its parents/],
  ];
  for (const [lp, want] of bad) {
    const r = await loadOne(minimal(`    url: github.com/u/r\n    local_path: "${lp}"\n`));
    assert.equal(only(r.errors).path, 'repositories.stack.local_path', lp);
    assert.match(only(r.errors).message, want, lp);
  }
  const { dir, ctx } = await setup({});
  await fs.writeFile(
    path.join(dir, 'p.yaml'),
    minimal(`    url: github.com/u/r\n    local_path: ${path.join(dir, 'inside')}\n`),
  );
  const inConfig = await loadProjects(dir, ctx);
  assert.match(only(inConfig.errors).message, /config directory/);
});

test('compose_project default is lowercased with invalid characters replaced; explicit one is validated', async () => {
  const r = await loadOne('project: HomeLab.v2\nrepositories:\n  Media.Stack:\n    url: github.com/u/r\n');
  assert.deepEqual(r.errors, []);
  assert.equal(r.projects[0]?.repositories[0]?.composeProject, 'homelab-v2-media-stack');
  const bad = await loadOne(minimal('    url: github.com/u/r\n    compose_project: My_Stack\n'));
  assert.deepEqual(bad.msgs, ['repositories.stack.compose_project: must be lowercase letters, digits, "_" or "-"']);
});

test('two repositories of one project may not share a compose project or a checkout', async () => {
  const r = await loadOne(
    'project: p\nrepositories:\n  a:\n    url: github.com/u/a\n    compose_project: same\n  b:\n    url: github.com/u/b\n    compose_project: same\n    local_path: deployments/p/a/sub\n',
  );
  assert.deepEqual(r.msgs.sort(), [
    'repositories.b.compose_project: compose project "same" is already used by p/a',
    'repositories.b.local_path: checkout directory overlaps the one of p/a',
  ]);
});

test('configHash is stable, changes with branch, not with check_interval, notifications or token', async () => {
  const hash = async (extra: string) => {
    const r = await loadOne(minimal(`    url: github.com/u/r\n${extra}`));
    assert.deepEqual(r.errors, []);
    return r.projects[0]?.repositories[0]?.configHash;
  };
  const base = await hash('');
  assert.equal(await hash(''), base);
  assert.equal(await hash('    branch: main\n'), base, 'an explicit default is the same config');
  assert.notEqual(await hash('    branch: dev\n'), base);
  assert.notEqual(await hash('    pull: always\n'), base);
  assert.notEqual(await hash('    env_file: .env.enc\n'), base);
  assert.equal(await hash('    check_interval: 30\n'), base);
  assert.equal(await hash('    token: abc\n'), base);
  assert.equal(await hash('    notifications:\n      failure: ["generic+https://x.org/h"]\n'), base);
});

test('YAML syntax errors are reported with line and column', async () => {
  const r = await loadOne('project: p\nrepositories:\n  a:\n    url: github.com/u/a\n   branch: [oops\n');
  assert.deepEqual(r.projects, []);
  const e = r.errors[0] as ConfigIssue;
  assert.equal(e.path, '');
  assert.match(e.message, /^YAML syntax error at line 5, column \d+: /);
  assert.doesNotMatch(e.message, /\n/);
  const dup = await loadOne('project: a\nproject: b\nrepositories: {}\n');
  assert.match(only(dup.errors).message, /line 2, column 1: Map keys must be unique/);
});

test('empty files and unresolvable aliases are errors, merge keys work', async () => {
  assert.match(only((await loadOne('')).errors).message, /file is empty/);
  assert.match(only((await loadOne('# only a comment\n')).errors).message, /file is empty/);
  assert.match(only((await loadOne('project: *nope\n')).errors).message, /YAML/);
  const merged = await loadOne(
    'x-defaults: &d\n  branch: prod\nproject: p\nrepositories:\n  a:\n    <<: *d\n    url: github.com/u/a\n',
  );
  assert.deepEqual(merged.msgs, [': unknown key "x-defaults"']);
  const merged2 = await loadOne(
    'project: p\nrepositories:\n  a: &a\n    url: github.com/u/a\n    branch: prod\n  b:\n    <<: *a\n    url: github.com/u/b\n',
  );
  assert.deepEqual(merged2.errors, []);
  assert.equal(merged2.projects[0]?.repositories[1]?.branch, 'prod');
});

test('one bad file does not prevent loading the good ones; dotfiles and editor files are ignored', async () => {
  const { dir, ctx } = await setup({
    'a-bad.yaml': 'project: bad\nrepositories:\n  x:\n    urll: github.com/u/x\n',
    'b-good.yml': minimal('    url: github.com/u/r\n', 'project: good\n'),
    '.hidden.yaml': 'garbage: [',
    '.#b-good.yml': 'garbage: [',
    'b-good.yml~': 'garbage: [',
    'b-good.yml.swp': 'garbage: [',
    'README.md': '# not yaml',
  });
  await fs.mkdir(path.join(dir, 'sub.yaml'));
  const r = await loadProjects(dir, ctx);
  assert.deepEqual(
    r.projects.map((p) => p.name),
    ['good'],
  );
  assert.deepEqual(
    r.files.map((f) => [path.basename(f.file), f.project, f.ok]),
    [
      ['a-bad.yaml', 'bad', false],
      ['b-good.yml', 'good', true],
    ],
  );
  assert.ok(r.errors.every((e) => e.file === path.join(dir, 'a-bad.yaml')));
  assert.deepEqual(r.errors.map((e) => `${e.path}: ${e.message}`).sort(), [
    'repositories.x.url: is required',
    'repositories.x: unknown key "urll" (did you mean "url"?)',
  ]);
});

test('file name filter', () => {
  for (const n of ['a.yaml', 'a.yml', 'A.YAML']) assert.equal(isProjectFileName(n), true, n);
  for (const n of ['.a.yaml', '.#a.yaml', 'a.yaml~', 'a.yaml.swp', 'a.json', '..data', 'yaml'])
    assert.equal(isProjectFileName(n), false, n);
});

test('duplicate project name across files: the second file is reported, naming the first', async () => {
  const { dir, ctx } = await setup({
    '10-first.yaml': minimal('    url: github.com/u/a\n', 'project: homelab\n'),
    '20-second.yaml': 'project: HomeLab\nrepositories:\n  other:\n    url: github.com/u/b\n',
    '30-second-broken.yaml': 'project: homelab\nrepositories:\n  other:\n    url: 5\n',
  });
  const r = await loadProjects(dir, ctx);
  assert.deepEqual(
    r.projects.map((p) => p.file),
    [path.join(dir, '10-first.yaml')],
  );
  const second = r.errors.filter((e) => e.file.endsWith('20-second.yaml'));
  assert.deepEqual(second, [
    {
      file: path.join(dir, '20-second.yaml'),
      path: 'project',
      message: `project "HomeLab" is already defined in ${path.join(dir, '10-first.yaml')}`,
    },
  ]);
  const third = r.errors.filter((e) => e.file.endsWith('30-second-broken.yaml')).map((e) => e.message);
  assert.match(third[0] ?? '', /already defined in .*10-first\.yaml/);
  assert.equal(third.length, 2);
});

test('duplicate compose_project and overlapping checkouts across projects', async () => {
  const { dir, ctx } = await setup({
    'a.yaml':
      'project: a\nrepositories:\n  web:\n    url: github.com/u/a\n    compose_project: shared\n    local_path: co/web\n',
    'b.yaml': 'project: b\nrepositories:\n  web:\n    url: github.com/u/b\n    compose_project: shared\n',
    'c.yaml': 'project: c\nrepositories:\n  web:\n    url: github.com/u/c\n    local_path: co\n',
  });
  const r = await loadProjects(dir, ctx);
  assert.deepEqual(
    r.projects.map((p) => p.name),
    ['a'],
  );
  assert.deepEqual(
    r.errors.map((e) => `${path.basename(e.file)}: ${e.path}: ${e.message}`),
    [
      'b.yaml: repositories.web.compose_project: compose project "shared" is already used by a/web',
      'c.yaml: repositories.web.local_path: checkout directory overlaps the one of a/web',
    ],
  );
});

test('loadProjectFile loads one file; checkProjectConflicts ignores the file being reloaded', async () => {
  const { dir, ctx } = await setup({ 'p.yaml': minimal('    url: github.com/u/r\n') });
  const file = path.join(dir, 'p.yaml');
  const one = await loadProjectFile(file, ctx);
  assert.deepEqual(one.errors, []);
  assert.equal(one.projectName, 'homelab');
  assert.ok(one.project);
  assert.deepEqual(checkProjectConflicts(one.project, [one.project]), [], 'a reload of the same file is no duplicate');
  const other = { ...one.project, file: path.join(dir, 'other.yaml') };
  assert.match(checkProjectConflicts(one.project, [other])[0]?.message ?? '', /already defined in .*other\.yaml/);
  const missing = await loadProjectFile(path.join(dir, 'nope.yaml'), ctx);
  assert.deepEqual(missing.errors, [
    { file: path.join(dir, 'nope.yaml'), path: '', message: 'cannot read file: no such file or directory' },
  ]);
});

test('a missing config directory is an error, not an exception; an empty one is fine', async () => {
  const r = await loadProjects(path.join(root, 'does-not-exist'), { env: {}, dataPath: root });
  assert.match(only(r.errors).message, /cannot read the config directory: no such file or directory/);
  const { dir, ctx } = await setup({});
  assert.deepEqual(await loadProjects(dir, ctx), { projects: [], errors: [], warnings: [], files: [] });
});

test('an oversized file is refused', async () => {
  const r = await loadOne(`project: p\n# ${'x'.repeat(1024 * 1024)}\n`);
  assert.match(only(r.errors).message, /too large/);
});

test('check_interval below 10 seconds is a warning, not an error', async () => {
  const r = await loadOne(minimal('    url: github.com/u/r\n    check_interval: 5\n'));
  assert.deepEqual(r.errors, []);
  assert.equal(r.projects.length, 1);
  assert.equal(r.warnings[0]?.path, 'repositories.stack.check_interval');
});

test('token values never appear in error messages', async () => {
  const secret = 'ghp_abcdefghijklmnopqrstuvwxyz0123456789';
  const r = await loadOne(
    `project: p\ntokens:\n  github: 12\nrepositories:\n  r:\n    url: "https://x:${secret}@github.com"\n    token: ["${secret}"]\n    webhook_secret: ${secret}\n    branch: 7\n`,
  );
  assert.ok(r.errors.length >= 3);
  assert.doesNotMatch(JSON.stringify(r), new RegExp(secret));
});

test('notification URLs are checked by the validator passed in, the basic scheme check otherwise', async () => {
  const text = minimal(
    '    url: github.com/user/stack.git\n    notifications:\n      failure: ["foo://token@x", "not a url"]\n',
  );
  const basic = await loadOne(text);
  assert.deepEqual(basic.msgs, [
    'repositories.stack.notifications.failure[1]: notification URL is not a URL (expected service://…)',
  ]);
  const { dir, ctx } = await setup({ 'p.yaml': text });
  const strict = await loadProjects(dir, {
    ...ctx,
    checkNotificationUrl: (url) => (url.startsWith('foo:') ? 'is foo' : null),
  });
  assert.deepEqual(
    strict.errors.map((e) => `${e.path}: ${e.message}`),
    ['repositories.stack.notifications.failure[0]: notification URL is foo'],
  );
});
