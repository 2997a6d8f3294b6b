/**
 * @module The plan in the web UI, in real chromium over the real Koa app: the repository page asks
 * `GET api/repositories/:id/plan` (the plan port answers what the test gives; the plan itself is computed and tested
 * against the real engine in test/integration/compose/plan.test.ts and test/e2e/plan.test.ts) and shows one row per
 * service; a plan error is shown; a deployment page shows the plan its deployment applied. axe on both pages.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { buildUi } from '../../scripts/build-ui.ts';
import type { PlanOutcome, PlanPort } from '../../src/http/ports.ts';
import { axeViolations, launchChromium, requireChromium, watchPage } from '../helpers/browser.ts';
import { FakeHistory, FakeSupervisor, deployment, repoStatus, serve, type Served } from '../unit/http/fakes.ts';

const HEAD = 'c0ffee0000000000000000000000000000000001';
const OTHER = 'beef000000000000000000000000000000000002';

describe('the plan in the web UI', { concurrency: false }, () => {
  let served: Served | undefined;
  let browser: Browser | undefined;
  const asked: { key: string; commit?: string }[] = [];

  before(async () => {
    await buildUi();
    const supervisor = new FakeSupervisor([repoStatus({ id: 1, project: 'home', name: 'app' })], []);
    const history = new FakeHistory();
    history.deployments.push(
      deployment({
        id: 41,
        repositoryId: 1,
        repoKey: 'home/app',
        status: 'skipped',
        plan: [
          { service: 'web', action: 'keep', reasons: [] },
          { service: 'db', action: 'keep', reasons: [] },
        ],
      }),
    );
    const plans: PlanPort = {
      async plan(key, opts): Promise<PlanOutcome> {
        asked.push({ key, ...opts });
        if (opts.commit === OTHER)
          return { ok: false, status: 409, code: 'GIT_COMMIT_NOT_FOUND', message: `commit ${OTHER} not found` };
        return {
          ok: true,
          plan: {
            commit: HEAD,
            noop: false,
            services: [
              { service: 'api', action: 'recreate', reasons: ['env changed (API_TOKEN)'] },
              { service: 'db', action: 'keep', reasons: [] },
              { service: 'worker', action: 'create', reasons: ['new service'] },
              { service: 'old', action: 'remove', reasons: ['no longer in the compose files'] },
            ],
          },
        };
      },
    };
    served = await serve({ supervisor, history, plans });
  });

  after(async () => {
    await browser?.close().catch(() => undefined);
    await served?.close();
  });

  async function open(t: Parameters<typeof requireChromium>[0]): Promise<Page | null> {
    const exe = await requireChromium(t);
    if (!exe) return null;
    browser ??= await launchChromium(exe);
    return browser.newPage();
  }

  test('Plan shows one row per service with its action and reasons; a commit that cannot be planned says why', async (t) => {
    const page = await open(t);
    if (!page) return;
    const problems = watchPage(page);
    await page.goto(`${served!.url}/#/repo/1`);
    await page.getByRole('button', { name: 'Plan', exact: true }).click();
    const table = page.locator('table.plan');
    await table.waitFor();
    assert.deepEqual(asked.at(-1), { key: 'home/app' });
    const rows = await table
      .locator('tbody tr')
      .evaluateAll((trs) =>
        trs.map((tr) => [tr.getAttribute('data-service'), tr.getAttribute('data-action'), tr.textContent]),
      );
    assert.deepEqual(
      rows.map((r) => r.slice(0, 2)),
      [
        ['api', 'recreate'],
        ['db', 'keep'],
        ['worker', 'create'],
        ['old', 'remove'],
      ],
    );
    assert.match(String(rows[0]?.[2]), /env changed \(API_TOKEN\)/);
    assert.match(await page.locator('section[aria-labelledby="plan-title"]').innerText(), /c0ffee0/);
    assert.deepEqual(
      (await axeViolations(page)).filter((v) => v.impact === 'serious' || v.impact === 'critical'),
      [],
    );

    await page.getByLabel('Commit (empty: branch head)').fill(OTHER);
    await page.getByRole('button', { name: 'Plan', exact: true }).click();
    await page.getByText(`No plan: commit ${OTHER} not found`).waitFor();
    assert.deepEqual(asked.at(-1), { key: 'home/app', commit: OTHER });
    assert.deepEqual(problems.errors, []);
    assert.deepEqual(problems.csp, []);
  });

  test('a deployment page shows the plan its deployment applied', async (t) => {
    const page = await open(t);
    if (!page) return;
    await page.goto(`${served!.url}/#/deployment/41`);
    const applied = page.locator('section[aria-labelledby="applied-plan-title"]');
    await applied.waitFor();
    assert.equal(await applied.locator('tbody tr[data-action="keep"]').count(), 2);
    assert.match(await applied.innerText(), /nothing to change/);
    assert.deepEqual(
      (await axeViolations(page)).filter((v) => v.impact === 'serious' || v.impact === 'critical'),
      [],
    );
  });
});
