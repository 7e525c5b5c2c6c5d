// A developer's day in the console: sign in at the real oidc-provider,
// request an environment from the demo template through the generated form
// (a bad name first), watch its steps go green without reloading, extend it,
// delete it; another developer's environment is the console's 404 page.
// Inputs: HUBWRIGHT_BASE_URL, HUBWRIGHT_OTHER_ENVIRONMENT (an id of erin's).

import { checkPage, env, expectText, run } from './lib.mjs';
import { base, signIn, signOut } from './console.mjs';

await run(async ({ page, step }) => {
  await signIn(page, step, 'dana');

  await step('open the template catalogue', async () => {
    await page.getByRole('navigation').getByRole('link', { name: 'New environment' }).click();
    await expectText(page.getByRole('heading', { level: 1 }), 'New environment');
    await checkPage(page, 'the catalogue');
  });
  await step('choose the demo template', async () => {
    await page.getByRole('link', { name: 'Choose demo' }).click();
    await expectText(page.getByRole('heading', { level: 1 }), 'New demo environment');
    await checkPage(page, 'the demo form');
  });
  await step("a time to live over the template's maximum is refused next to its field", async () => {
    await page.getByLabel('Name', { exact: true }).fill('notebook');
    await page.getByLabel('Time to live').fill('100h');
    await page.getByRole('button', { name: 'Request environment' }).click();
    await expectText(page.locator('#ttl-error'), 'beyond the maximum');
    const invalid = await page.getByLabel('Time to live').getAttribute('aria-invalid');
    if (invalid !== 'true') throw new Error(`the TTL field is not marked invalid (${invalid})`);
    const kept = await page.getByLabel('Name', { exact: true }).inputValue();
    if (kept !== 'notebook') throw new Error(`the name was not kept: ${kept}`);
    await checkPage(page, 'the form with an error');
  });
  await step('request it within the bounds', async () => {
    await page.getByLabel('Time to live').fill('8h');
    await page.getByRole('button', { name: 'Request environment' }).click();
    await expectText(page.getByRole('heading', { level: 1 }), 'notebook');
  });
  await step('the steps go green without a reload', async () => {
    // A reload would lose this mark.
    await page.evaluate(() => { window.hubwrightMark = 'same page'; });
    const phase = page.locator('#progress .status-line .badge');
    const first = (await phase.innerText()).trim();
    if (first === 'ready') throw new Error('already ready when first drawn: nothing to watch');
    await expectText(phase, /^ready$/, 30_000);
    const mark = await page.evaluate(() => window.hubwrightMark);
    if (mark !== 'same page') throw new Error('the page was reloaded to show the steps');
    const succeeded = await page.locator('#progress tbody tr', { hasText: /succeeded/i }).count();
    if (succeeded !== 5) throw new Error(`${succeeded} of 5 steps show Succeeded`);
    await checkPage(page, 'the ready environment');
  });
  await step('extend it', async () => {
    await page.getByLabel('New time to live').fill('2h');
    await page.getByRole('button', { name: 'Extend', exact: true }).click();
    await expectText(page.locator('dl'), /1 h 5\d min left/);
  });
  await step('delete it after confirming', async () => {
    await page.getByRole('link', { name: 'Delete notebook' }).click();
    await expectText(page.getByRole('heading', { level: 1 }), 'Delete notebook?');
    await checkPage(page, 'the delete confirmation');
    await page.getByRole('button', { name: 'Delete notebook' }).click();
    await page.waitForURL(`${base()}/environments`);
  });
  await step("another developer's environment is not found", async () => {
    await page.goto(`${base()}/environments/${env('HUBWRIGHT_OTHER_ENVIRONMENT')}`);
    await expectText(page.getByRole('heading', { level: 1 }), 'Not found');
    await checkPage(page, "another's environment");
  });
  await step('back to the list', () => page.goto(`${base()}/environments`));
  await signOut(page, step);
});
