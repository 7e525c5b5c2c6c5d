// Screenshots of the console's main pages for the documentation (`just
// screenshots`). Inputs: HUBWRIGHT_BASE_URL, HUBWRIGHT_SCREENSHOTS_DIR (where
// the PNGs go), HUBWRIGHT_READY_ENVIRONMENT and HUBWRIGHT_FAILED_RUN (ids).

import { env, expectText, run } from './lib.mjs';
import { base, signIn, signOut } from './console.mjs';

const dir = env('HUBWRIGHT_SCREENSHOTS_DIR');

async function shoot(page, name) {
  await page.screenshot({ path: `${dir}/${name}.png`, fullPage: true });
}

await run(async ({ page, step }) => {
  await page.setViewportSize({ width: 1200, height: 700 });
  await signIn(page, step, 'olga');
  await step('environments', async () => {
    await page.goto(`${base()}/environments`);
    await shoot(page, 'environments');
  });
  await step('the request form', async () => {
    await page.goto(`${base()}/environments/new/demo`);
    await shoot(page, 'new-environment');
  });
  await step('an environment', async () => {
    await page.goto(`${base()}/environments/${env('HUBWRIGHT_READY_ENVIRONMENT')}`);
    await expectText(page.locator('#progress .status-line .badge'), 'ready');
    await shoot(page, 'environment');
  });
  await step('a failed run', async () => {
    await page.goto(`${base()}/runs/${env('HUBWRIGHT_FAILED_RUN')}`);
    await shoot(page, 'run-failed');
  });
  await step('the queue', async () => {
    await page.goto(`${base()}/queue`);
    await shoot(page, 'queue');
  });
  await step('a phone', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base()}/environments/${env('HUBWRIGHT_READY_ENVIRONMENT')}`);
    await shoot(page, 'environment-phone');
  });
  await signOut(page, step);
});
