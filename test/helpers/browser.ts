import { existsSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";

/** Debian's Chromium (`npx playwright install` cannot download browsers on these machines). */
export const CHROMIUM_PATH = "/usr/bin/chromium";

/** Headless, and nothing that would call out to Google's services from an offline machine. */
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Launches a headless Chromium for page tests; the caller closes it (`browser.close()`) in after().
 * Playwright gives the browser a fresh temporary profile and removes it on close.
 */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`page tests need Debian's Chromium at ${CHROMIUM_PATH}: install it with \`apt-get install -y chromium\``);
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}

/**
 * A new page in its own browser context, and the errors its scripts threw (uncaught exceptions and
 * console errors), so that a test can assert the page ran cleanly. Close it with `page.context().close()`.
 */
export async function openPage(browser: Browser): Promise<{ page: Page; pageErrors: string[] }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on("pageerror", (e) => pageErrors.push(`uncaught: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error") pageErrors.push(`console: ${m.text()}`);
  });
  return { page, pageErrors };
}
