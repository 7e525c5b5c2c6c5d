// An operator fixes a failed run from the console: finds it among the
// failed runs, reads why it failed, retries it from the failed step and
// watches it succeed without reloading; the queue and approvals pages are
// checked on the way. Inputs: HUBWRIGHT_BASE_URL, HUBWRIGHT_RUN_ID (a run of
// the `repair` template that failed at its `configure` step, whose cause the
// test has since fixed).

import { checkPage, env, expectText, run } from './lib.mjs';
import { base, signIn, signOut } from './console.mjs';

const runId = env('HUBWRIGHT_RUN_ID');

await run(async ({ browser, context, page, step }) => {
  await signIn(page, step, 'olga');
  await step('see every environment, with the filters', async () => {
    await expectText(page.getByRole('heading', { level: 1 }), 'Environments');
    await checkPage(page, 'all environments');
  });
  await step('list the failed runs', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'Runs' }).click();
    await page.getByLabel('State').selectOption('failed');
    await page.getByRole('button', { name: 'Filter' }).click();
    await checkPage(page, 'the failed runs');
  });
  await step('open the failed run', async () => {
    await page.locator(`main a[href="/runs/${runId}"] code`).first().click();
    await expectText(page.locator('#run-live'), 'the quota service refused the request');
    await checkPage(page, 'the failed run');
  });
  await step('retry it from the failed step', async () => {
    await page.getByLabel('Retry from step').selectOption({ label: '2. configure (failed)' });
    await page.getByRole('button', { name: 'Retry run' }).click();
    await expectText(page.getByRole('status'), /retr/i);
  });
  await step('watch it succeed without a reload', async () => {
    await page.evaluate(() => { window.hubwrightMark = 'same page'; });
    await expectText(page.locator('#run-live dl.facts dd').first(), 'succeeded', 30_000);
    const mark = await page.evaluate(() => window.hubwrightMark);
    if (mark !== 'same page') throw new Error('the page was reloaded to show the run');
    await checkPage(page, 'the retried run');
  });
  await step('the queue', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'Queue' }).click();
    await expectText(page.getByRole('heading', { level: 1 }), 'Queue');
    await checkPage(page, 'the queue');
  });
  await step('the pools', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'Pools' }).click();
    await expectText(page.getByRole('heading', { level: 1 }), 'Pools');
    await expectText(page.locator('table tbody th').first(), 'warm');
    await checkPage(page, 'the pools');
  });
  await step('the approvals', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'Approvals' }).click();
    await checkPage(page, 'the approvals');
  });
  await step('the run page reads without script', async () => {
    const noScript = await browser.newContext({ javaScriptEnabled: false });
    await noScript.addCookies(await context.cookies());
    const plain = await noScript.newPage();
    await plain.goto(`${base()}/runs/${runId}`);
    await expectText(plain.locator('#run-live dl.facts dd').first(), 'succeeded');
    // Without the script, times read in UTC.
    await expectText(plain.locator('#run-live time').first(), 'UTC');
    await noScript.close();
  });
  await step('back to the list', () => page.goto(`${base()}/environments`));
  await signOut(page, step);
});
