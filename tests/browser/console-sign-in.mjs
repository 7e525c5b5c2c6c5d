// A developer signs in at the real oidc-provider, sees their empty list,
// and signs out; axe-core on the sign-in page and the list.

import { checkPage, expectText, run } from './lib.mjs';
import { base, signIn, signOut } from './console.mjs';

await run(async ({ page, step }) => {
  await step('open the sign-in page', () => page.goto(`${base()}/sign-in`));
  await step('check the sign-in page', () => checkPage(page, 'sign-in'));
  await signIn(page, step, 'dana');
  await step('see the empty list', () =>
    expectText(page.locator('.empty'), 'You have no environments yet.'));
  await step('check the empty list', () => checkPage(page, 'my environments, empty'));
  await step('a page that does not exist', async () => {
    await page.goto(`${base()}/no/such/page`);
    await expectText(page.getByRole('heading', { level: 1 }), 'Not found');
    await checkPage(page, 'the 404 page');
  });
  await step('back to the list', () => page.goto(`${base()}/environments`));
  await signOut(page, step);
});
