// An admin's tasks in the console: create a token (its secret shown once),
// revoke it after confirming, and read the policy and the audit log.

import { checkPage, expectText, run } from './lib.mjs';
import { base, signIn, signOut } from './console.mjs';

await run(async ({ page, step }) => {
  await signIn(page, step, 'ada');
  await step('open the tokens page', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'Tokens' }).click();
    await expectText(page.getByRole('heading', { level: 1 }), 'Tokens');
    await checkPage(page, 'the tokens');
  });
  let secret;
  await step('create a token for ci-bot', async () => {
    await page.getByLabel('Subject').fill('ci-bot');
    await page.getByLabel('Role').selectOption('developer');
    await page.getByRole('button', { name: 'Create token' }).click();
    secret = await page.getByLabel('Secret for ci-bot (developer)').inputValue();
    if (!/^hw_[0-9a-f]{64}$/.test(secret)) throw new Error(`not a token secret: ${secret}`);
    await checkPage(page, 'the new secret');
  });
  await step('the secret is not shown again', async () => {
    await page.goto(`${base()}/tokens`);
    const html = await page.content();
    if (html.includes(secret)) throw new Error('the secret is on the tokens page again');
  });
  await step('revoke it after confirming', async () => {
    await page.getByRole('link', { name: 'Revoke token for ci-bot' }).click();
    await expectText(page.getByRole('heading', { level: 1 }), 'Revoke token for ci-bot?');
    await checkPage(page, 'the revoke confirmation');
    await page.getByRole('button', { name: 'Revoke token for ci-bot' }).click();
    await expectText(page.locator('main'), /revoked/i);
  });
  await step('the policy', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'Policy' }).click();
    await expectText(page.getByRole('heading', { level: 2 }), 'Your limits');
    await checkPage(page, 'the policy');
  });
  await step('the audit log', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'Audit' }).click();
    await expectText(page.getByRole('heading', { level: 1 }), 'Audit log');
    await expectText(page.locator('main table'), 'token.revoke');
    await checkPage(page, 'the audit log');
  });
  await signOut(page, step);
});
