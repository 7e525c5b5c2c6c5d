// What the console's scripts share: signing in at the real oidc-provider
// in the browser, as a person would.

import { env, expectText } from './lib.mjs';

/// The console's address (HUBWRIGHT_BASE_URL).
export const base = () => env('HUBWRIGHT_BASE_URL');

/// Signs `username` in: the console's sign-in page, its provider button,
/// the provider's development login and consent pages, back to the console.
export async function signIn(page, step, username) {
  await step(`sign in as ${username}`, async () => {
    await page.goto(`${base()}/environments`);
    await step('the console sends a stranger to its sign-in page', () =>
      expectText(page.getByRole('heading', { level: 1 }), 'Sign in to hubwright'));
    await page.getByRole('link', { name: "Sign in with your organisation's account" }).click();
    await step(`type ${username} at the provider's login page`, async () => {
      await page.locator('input[name="login"]').fill(username);
      await page.locator('input[name="password"]').fill('any');
      await page.locator('button[type="submit"]').click();
    });
    await step("accept the provider's consent page", async () => {
      await page.waitForURL((url) => url.href.startsWith(base()) || url.pathname.includes('/interaction/'));
      if (!page.url().startsWith(base())) {
        await page.locator('button[type="submit"]').click();
      }
      await page.waitForURL((url) => url.href.startsWith(base()));
    });
    await expectText(page.locator('.who'), username);
  });
}

/// Signs out with the header's button.
export async function signOut(page, step) {
  await step('sign out', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expectText(page.getByRole('heading', { level: 1 }), 'Sign in to hubwright');
  });
}
