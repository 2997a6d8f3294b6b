/** @module Commit-status requests per provider (URL, headers, body, state names) and the config that resolves them. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { RepoCommitStatus } from '../../../src/config/schema.ts';
import { loadProjects } from '../../../src/config/load.ts';
import { DESCRIPTION_MAX, forgeMessage, statusRequest } from '../../../src/forge/requests.ts';

const SHA = '0123456789abcdef0123456789abcdef01234567';
const target = (o: Partial<RepoCommitStatus>): RepoCommitStatus => ({
  provider: 'github',
  apiUrl: 'https://api.github.com',
  repoPath: 'acme/web',
  token: 'tok-123456',
  context: 'shiparr/home/web',
  ...o,
});

test('GitHub: POST /repos/{owner}/{repo}/statuses/{sha}, Bearer token, vnd.github+json, {state, target_url, description, context}', () => {
  const r = statusRequest(target({}), SHA, {
    state: 'pending',
    description: 'deploying 0123456',
    targetUrl: 'https://shiparr.example/#/deployment/7',
  });
  assert.equal(r.url, `https://api.github.com/repos/acme/web/statuses/${SHA}`);
  assert.equal(r.headers.Authorization, 'Bearer tok-123456');
  assert.equal(r.headers.Accept, 'application/vnd.github+json');
  assert.equal(r.headers['X-GitHub-Api-Version'], '2022-11-28');
  assert.equal(r.headers['Content-Type'], 'application/json');
  assert.match(r.headers['User-Agent'] ?? '', /^Shiparr\//);
  assert.deepEqual(JSON.parse(r.body), {
    state: 'pending',
    target_url: 'https://shiparr.example/#/deployment/7',
    description: 'deploying 0123456',
    context: 'shiparr/home/web',
  });
  // Without a public URL there is no target_url at all; failure and error keep GitHub's names.
  const f = JSON.parse(statusRequest(target({}), SHA, { state: 'failure', description: 'x' }).body) as object;
  assert.deepEqual(f, { state: 'failure', description: 'x', context: 'shiparr/home/web' });
  const enterprise = statusRequest(target({ apiUrl: 'https://ghe.example/api/v3/' }), SHA, {
    state: 'error',
    description: 'interrupted',
  });
  assert.equal(enterprise.url, `https://ghe.example/api/v3/repos/acme/web/statuses/${SHA}`);
});

test('Gitea: POST /api/v1/repos/{owner}/{repo}/statuses/{sha} with "Authorization: token …"', () => {
  const r = statusRequest(target({ provider: 'gitea', apiUrl: 'https://git.example/api/v1' }), SHA, {
    state: 'failure',
    description: 'failed at verifying; rolled back to abc1234',
  });
  assert.equal(r.url, `https://git.example/api/v1/repos/acme/web/statuses/${SHA}`);
  assert.equal(r.headers.Authorization, 'token tok-123456');
  assert.equal(r.headers['PRIVATE-TOKEN'], undefined);
  assert.deepEqual(JSON.parse(r.body), {
    state: 'failure',
    description: 'failed at verifying; rolled back to abc1234',
    context: 'shiparr/home/web',
  });
});

test('GitLab: POST /api/v4/projects/{url-encoded path}/statuses/{sha}, PRIVATE-TOKEN, GitLab state names and `name`', () => {
  const t = target({ provider: 'gitlab', apiUrl: 'https://gl.example/api/v4', repoPath: 'group/sub group/web' });
  const r = statusRequest(t, SHA, {
    state: 'pending',
    description: 'deploying',
    targetUrl: 'https://s/#/deployment/1',
  });
  assert.equal(r.url, `https://gl.example/api/v4/projects/group%2Fsub%20group%2Fweb/statuses/${SHA}`);
  assert.equal(r.headers['PRIVATE-TOKEN'], 'tok-123456');
  assert.equal(r.headers.Authorization, undefined);
  assert.deepEqual(JSON.parse(r.body), {
    state: 'running',
    target_url: 'https://s/#/deployment/1',
    description: 'deploying',
    name: 'shiparr/home/web',
  });
  const states = (['pending', 'success', 'failure', 'error'] as const).map(
    (state) => (JSON.parse(statusRequest(t, SHA, { state, description: '' }).body) as { state: string }).state,
  );
  assert.deepEqual(states, ['running', 'success', 'failed', 'canceled']);
});

test('descriptions are cut to 140 characters; forge messages are read from JSON and masked', () => {
  const long = 'x'.repeat(300);
  const d = (
    JSON.parse(statusRequest(target({}), SHA, { state: 'success', description: long }).body) as {
      description: string;
    }
  ).description;
  assert.equal(d.length, DESCRIPTION_MAX);
  assert.ok(d.endsWith('…'));
  assert.equal(forgeMessage('{"message":"Bad credentials","documentation_url":"https://docs"}'), 'Bad credentials');
  assert.equal(forgeMessage('{"message":{"state":["is invalid"]}}'), '{"state":["is invalid"]}');
  assert.equal(forgeMessage('{"error":"insufficient_scope"}'), 'insufficient_scope');
  assert.equal(forgeMessage('<html>\n  oops  </html>'), '<html> oops </html>');
  assert.equal(forgeMessage('{"message":"Bearer abcdefghijklmnop rejected"}'), 'Bearer *** rejected');
});

async function load(repoYaml: string, env: Record<string, string> = {}) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'shiparr-forge-cfg-'));
  try {
    await writeFile(path.join(dir, 'home.yaml'), `project: home\nrepositories:\n  web:\n${repoYaml}`);
    return await loadProjects(dir, { env, dataPath: path.join(dir, 'data') });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('commit_status resolves API roots, repository paths, token fallback and the default context', async () => {
  const gh = await load(
    '    url: https://github.com/Acme/Web.git\n    token: repo-token-1\n    commit_status: { provider: github }\n',
  );
  assert.deepEqual(gh.errors, []);
  assert.deepEqual(gh.projects[0]?.repositories[0]?.commitStatus, {
    provider: 'github',
    apiUrl: 'https://api.github.com',
    repoPath: 'Acme/Web',
    token: 'repo-token-1',
    context: 'shiparr/home/web',
  });
  const gitea = await load(
    '    url: https://git.example:3000/acme/web\n    commit_status: { provider: gitea, token: "${ST}", context: deploy/prod }\n',
    { ST: 'status-token-2' },
  );
  assert.deepEqual(gitea.projects[0]?.repositories[0]?.commitStatus, {
    provider: 'gitea',
    apiUrl: 'https://git.example:3000/api/v1',
    repoPath: 'acme/web',
    token: 'status-token-2',
    context: 'deploy/prod',
  });
  const gitlab = await load(
    '    url: https://gitlab.com/group/sub/web.git\n    token: t0ken-gl\n    commit_status: { provider: gitlab }\n',
  );
  assert.equal(gitlab.projects[0]?.repositories[0]?.commitStatus?.apiUrl, 'https://gitlab.com/api/v4');
  assert.equal(gitlab.projects[0]?.repositories[0]?.commitStatus?.repoPath, 'group/sub/web');
  // A forge under a sub-path: api_url without its version path gets it; the prefix leaves the repository path.
  const sub = await load(
    '    url: https://host.example/gitlab/team/web.git\n    token: t0ken-gl\n    commit_status: { provider: gitlab, api_url: "https://host.example/gitlab/" }\n',
  );
  assert.equal(sub.projects[0]?.repositories[0]?.commitStatus?.apiUrl, 'https://host.example/gitlab/api/v4');
  assert.equal(sub.projects[0]?.repositories[0]?.commitStatus?.repoPath, 'team/web');
});

test('commit_status problems are config errors naming the file and key path, never the token', async () => {
  const cases: [string, string, RegExp][] = [
    [
      '    url: https://ghe.example/acme/web.git\n    token: secret-tok-9\n    commit_status: { provider: github }\n',
      'repositories.web.commit_status.api_url',
      /required for GitHub Enterprise \(ghe\.example\).*\/api\/v3/,
    ],
    [
      '    url: https://gl.example/g/web.git\n    token: secret-tok-9\n    commit_status: { provider: gitlab }\n',
      'repositories.web.commit_status.api_url',
      /self-hosted GitLab/,
    ],
    [
      '    url: https://github.com/acme/web.git\n    commit_status: { provider: github }\n',
      'repositories.web.commit_status.token',
      /no token/,
    ],
    [
      '    url: https://git.example/x/acme/web.git\n    token: secret-tok-9\n    commit_status: { provider: gitea }\n',
      'repositories.web.commit_status.provider',
      /<owner>\/<repo>.*api_url/,
    ],
    [
      '    url: https://github.com/acme/web.git\n    token: secret-tok-9\n    commit_status: { provider: bitbucket }\n',
      'repositories.web.commit_status.provider',
      /github, gitea .*gitlab/,
    ],
  ];
  for (const [yaml, key, message] of cases) {
    const r = await load(yaml);
    const issue = r.errors.find((e) => e.path === key);
    assert.ok(issue, `${key} in ${JSON.stringify(r.errors)}`);
    assert.match(issue.message, message);
    assert.match(issue.file, /home\.yaml$/);
    assert.ok(!JSON.stringify(r.errors).includes('secret-tok-9'));
    assert.equal(r.projects.length, 0);
  }
});
