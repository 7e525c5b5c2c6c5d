// The harness's own proof (tests/suite/console/harness.rs): a page that greets
// whoever submits its form. Inputs: HUBWRIGHT_PAGE_URL, the page to open.

import { checkPage, env, expectText, run } from './lib.mjs';

const pageUrl = env('HUBWRIGHT_PAGE_URL');

await run(async ({ page, step }) => {
  await step('open the page', () => page.goto(pageUrl));
  await step('check the page before the greeting', () => checkPage(page, 'the form'));
  await step('fill in a name and click "Say hello"', async () => {
    await page.getByRole('textbox', { name: 'Your name' }).fill('Ada');
    await page.getByRole('button', { name: 'Say hello' }).click();
  });
  await step('see the greeting', () => expectText(page.getByRole('status'), 'Hello, Ada!'));
  await step('check the page with the greeting', () => checkPage(page, 'the greeting'));
});
