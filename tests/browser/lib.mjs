// The browser tests' driver: one Debian chromium per script through
// playwright-core, named steps, axe-core, the laptop and phone widths, and on
// any failure a screenshot and the page's HTML per open page.
//
// A script is an ES module run by `hubwright_testkit::browser` (Rust) as
// `node tests/browser/<name>.mjs`, with its inputs in environment variables;
// it exits 0 when every step passed and 1 otherwise:
//
//   import { run, env, checkPage } from './lib.mjs';
//   await run(async ({ page, step }) => {
//     await step('open the console', () => page.goto(env('HUBWRIGHT_BASE_URL')));
//     await step('check the page', () => checkPage(page, 'home'));
//   });
//
// What the Rust side sets: HUBWRIGHT_CHROMIUM (the executable),
// HUBWRIGHT_BROWSER_ARTIFACTS (a directory for failure artifacts),
// HUBWRIGHT_BROWSER_TEST (the prefix of their names) and
// HUBWRIGHT_BROWSER_DEADLINE_MS (how long the whole script may take).

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

/// The widths every page must be usable at.
export const WIDTHS = [
  { name: 'laptop', width: 1280, height: 800 },
  { name: 'phone', width: 390, height: 844 },
];

/// axe-core impacts that fail a page; `moderate` and `minor` are printed only.
const FAILING_IMPACTS = new Set(['serious', 'critical']);

/// How long one playwright action (click, fill, wait for a locator) may take.
const ACTION_TIMEOUT_MS = 10_000;

/// The launch flags that work as root in a container without a GPU or a
/// network beyond loopback; playwright adds --headless and a fresh profile.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/// The environment variable `name`; throws naming it when it is unset.
export function env(name) {
  const value = process.env[name];
  if (value === undefined || value === '') {
    throw new Error(`environment variable ${name} is not set (the Rust test passes it with Script::env)`);
  }
  return value;
}

/// Prints one line of the script's log, which the Rust side streams into the test output.
export function log(line) {
  process.stdout.write(`${line}\n`);
}

/// Runs `body({ browser, context, page, step })` in a fresh chromium and exits
/// the process: 0 when it resolved, 1 when it threw or the deadline passed,
/// after writing the failure artifacts of every open page.
export async function run(body) {
  const started = Date.now();
  const deadlineMs = Number(process.env.HUBWRIGHT_BROWSER_DEADLINE_MS ?? 60_000);
  const steps = new Steps();
  let browser;
  let context;
  let deadlineTimer;
  try {
    browser = await steps.run('launch chromium', () =>
      chromium.launch({ executablePath: env('HUBWRIGHT_CHROMIUM'), args: CHROMIUM_ARGS }),
    );
    context = await browser.newContext({ viewport: WIDTHS[0], locale: 'en-GB' });
    context.setDefaultTimeout(ACTION_TIMEOUT_MS);
    const page = await context.newPage();
    watch(page);
    context.on('page', watch);
    const deadline = new Promise((_, reject) => {
      deadlineTimer = setTimeout(
        () => reject(new Error(`the script did not finish within ${deadlineMs} ms (HUBWRIGHT_BROWSER_DEADLINE_MS)`)),
        deadlineMs,
      );
    });
    await Promise.race([body({ browser, context, page, step: steps.run.bind(steps) }), deadline]);
    clearTimeout(deadlineTimer);
    log(`PASS in ${Date.now() - started} ms`);
    await browser.close();
    process.exit(0);
  } catch (error) {
    const where = steps.failed ?? steps.current() ?? 'before any step';
    log(`FAIL at step ${where}:`);
    log(indent(describeError(error)));
    if (context) await writeArtifacts(context, where);
    await browser?.close().catch(() => {});
    process.exit(1);
  }
}

/// Named steps, numbered in order; nested steps are named "outer / inner".
class Steps {
  constructor() {
    this.count = 0;
    this.stack = [];
    this.failed = undefined;
  }

  current() {
    return this.stack.at(-1);
  }

  async run(name, fn) {
    this.count += 1;
    const label = `${String(this.count).padStart(2, '0')} ${[...this.stack.map(stripNumber), name].join(' / ')}`;
    this.stack.push(label);
    log(`step ${label}`);
    const started = Date.now();
    try {
      const value = await fn();
      log(`  ok (${Date.now() - started} ms)`);
      return value;
    } catch (error) {
      // The innermost step that threw is the one to name; outer steps rethrow.
      this.failed ??= label;
      throw error;
    } finally {
      this.stack.pop();
    }
  }
}

function stripNumber(label) {
  return label.replace(/^\d+ /, '');
}

/// Logs what the page itself reports going wrong: uncaught errors, console
/// errors and failed requests are often the real cause of a failed step.
function watch(page) {
  page.on('pageerror', (error) => log(`  page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') log(`  console error: ${message.text()}`);
  });
  page.on('requestfailed', (request) =>
    log(`  request failed: ${request.method()} ${request.url()} (${request.failure()?.errorText})`),
  );
}

/// Writes `<test>-<step>.png` (full page) and `<test>-<step>.html` for each
/// open page and prints `artifact: <path>` for each file written.
async function writeArtifacts(context, step) {
  const dir = process.env.HUBWRIGHT_BROWSER_ARTIFACTS;
  if (!dir) {
    log('no failure artifacts: HUBWRIGHT_BROWSER_ARTIFACTS is not set');
    return;
  }
  mkdirSync(dir, { recursive: true });
  const test = process.env.HUBWRIGHT_BROWSER_TEST ?? 'browser';
  const pages = context.pages();
  for (const [index, page] of pages.entries()) {
    const suffix = pages.length > 1 ? `-page${index + 1}` : '';
    const base = join(dir, `${slug(test)}-${slug(step)}${suffix}`);
    try {
      await page.screenshot({ path: `${base}.png`, fullPage: true, timeout: 5_000 });
      log(`artifact: ${base}.png`);
    } catch (error) {
      log(`no screenshot of ${page.url()}: ${error.message}`);
    }
    try {
      writeFileSync(`${base}.html`, `<!-- ${page.url()} -->\n${await page.content()}`);
      log(`artifact: ${base}.html`);
    } catch (error) {
      log(`no HTML of ${page.url()}: ${error.message}`);
    }
  }
}

function slug(text) {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 80);
}

/// The error's message and the script's own frames of its stack: the line of
/// the failing call, without the driver's and playwright's frames around it.
function describeError(error) {
  if (!(error instanceof Error)) return String(error);
  const frames = (error.stack ?? '')
    .split('\n')
    .filter((line) => /^\s+at /.test(line))
    .filter((line) => !/lib\.mjs|node_modules|node:internal/.test(line));
  // Playwright colours its call logs; the test output is not a terminal.
  const message = error.message.replace(/\x1b\[[0-9;]*m/g, '');
  return [`${error.name}: ${message}`, ...frames.map((line) => line.trim())].join('\n');
}

function indent(text) {
  return text
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n');
}

/// Runs axe-core on the page (or `options.include`/`options.exclude`
/// selectors) and throws listing every serious or critical violation: rule,
/// impact, help text and the selectors of the elements. axe is read from
/// node_modules and evaluated over the DevTools protocol, so the page's
/// Content-Security-Policy does not block it and no network is used.
export async function checkA11y(page, label, options = {}) {
  const loaded = await page.evaluate(() => typeof window.axe === 'object');
  if (!loaded) await page.evaluate(axeSource);
  const context = options.include || options.exclude ? { include: options.include, exclude: options.exclude } : undefined;
  const violations = await page.evaluate(async (context) => {
    const results = await window.axe.run(context ?? document, { resultTypes: ['violations'] });
    return results.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      helpUrl: v.helpUrl,
      targets: v.nodes.map((node) => node.target.join(' ')),
    }));
  }, context);
  const describe = (v) =>
    `  [${v.impact}] ${v.id}: ${v.help} (${v.helpUrl})\n${v.targets.map((t) => `      ${t}`).join('\n')}`;
  const failing = violations.filter((v) => FAILING_IMPACTS.has(v.impact));
  for (const v of violations.filter((v) => !FAILING_IMPACTS.has(v.impact))) {
    log(`  axe (${label}), not failing:\n${describe(v)}`);
  }
  if (failing.length > 0) {
    throw new Error(
      `axe-core found ${failing.length} serious or critical violation(s) on ${label} (${page.url()}):\n${failing.map(describe).join('\n')}`,
    );
  }
}

/// Throws when the page is wider than the viewport: at a phone's width a
/// page that scrolls sideways is not readable.
export async function checkFits(page, label) {
  const { scrollWidth, clientWidth } = await page.evaluate(() => ({
    scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
  }));
  if (scrollWidth > clientWidth) {
    throw new Error(
      `${label} is ${scrollWidth}px wide in a ${clientWidth}px viewport: it scrolls sideways (${page.url()})`,
    );
  }
}

/// Calls `fn(width)` at each of WIDTHS in turn (laptop, then phone) and
/// leaves the page at the laptop width; an error names the width it failed at.
export async function atWidths(page, fn) {
  for (const width of WIDTHS) {
    await page.setViewportSize({ width: width.width, height: width.height });
    try {
      await fn(width);
    } catch (error) {
      // The page stays at the width it failed at, for the screenshot.
      error.message = `at the ${width.name} width (${width.width}x${width.height}): ${error.message}`;
      throw error;
    }
  }
  await page.setViewportSize({ width: WIDTHS[0].width, height: WIDTHS[0].height });
}

/// What every page must pass, at every width: axe-core finds nothing serious
/// or critical, and the page does not scroll sideways.
export async function checkPage(page, label) {
  await atWidths(page, async (width) => {
    await checkA11y(page, `${label} at ${width.name} width`);
    await checkFits(page, `${label} at ${width.name} width`);
  });
}

/// Waits until `locator`'s text contains `expected` (a string, matched
/// case-sensitively, or a RegExp), or throws saying what it found instead.
export async function expectText(locator, expected, timeout = ACTION_TIMEOUT_MS) {
  const pattern = expected instanceof RegExp ? expected : new RegExp(expected.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  try {
    await locator.filter({ hasText: pattern }).first().waitFor({ timeout });
  } catch {
    const found = await locator
      .allTextContents()
      .then((texts) => JSON.stringify(texts))
      .catch((error) => `nothing (${error.message})`);
    throw new Error(`expected ${locator} to contain ${pattern} within ${timeout} ms; found ${found}`);
  }
}
