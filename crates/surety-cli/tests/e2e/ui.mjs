// What the browser scripts share: launching headless Chromium, a WebAuthn virtual
// authenticator standing in for the human's passkey, enrolment and sign-in, waiting for a
// page to settle, screenshots, and reporting a failure with what the page showed.
//
// Environment: CHROMIUM (default /usr/bin/chromium); SURETY_SCREENSHOTS, an optional
// directory for the screenshots the scripts take (failure.png on failure).

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { Failure } from './common.mjs';

const screenshots = process.env.SURETY_SCREENSHOTS;

export async function screenshot(page, name) {
  if (!screenshots) return;
  await mkdir(screenshots, { recursive: true });
  await page.screenshot({ path: join(screenshots, name), fullPage: true });
}

/**
 * Waits until the page reaches `want` ({text} in #status, a {path}, or a {selector} present),
 * or reports an error in #status: a refusal by the server fails the step at once, in the
 * server's words, rather than after a timeout. Re-evaluated across navigations.
 */
export async function settle(page, what, want) {
  const handle = await page.waitForFunction((want) => {
    const status = document.querySelector('#status');
    const said = status ? status.textContent.trim() : '';
    if (status && status.classList.contains('error') && said) return { error: said };
    const done = want.path
      ? location.pathname === want.path
      : want.text
        ? said.includes(want.text)
        : document.querySelector(want.selector) !== null;
    return done && { ok: true };
  }, want);
  const outcome = await handle.jsonValue();
  if (outcome.error) throw new Failure(`${what}: the page reports "${outcome.error}"`);
}

export async function textOf(page, selector) {
  const element = page.locator(selector);
  if ((await element.count()) === 0) return null;
  return (await element.first().textContent()).trim();
}

/**
 * Adds a platform authenticator that verifies the user and answers without a touch, as a
 * passkey on a laptop with a fingerprint reader would once the finger is on it. Returns the
 * DevTools session and the authenticator's id.
 */
export async function passkeyAuthenticator(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, authenticatorId };
}

/** Registers a passkey from the invite link, then signs in with it. */
export async function enrolAndSignIn(page, log, { base, inviteUrl, email }) {
  log.push(`enrol: ${new URL(inviteUrl).pathname}`);
  await page.goto(inviteUrl);
  await page.click('#register');
  await settle(page, 'passkey registration', { text: 'Passkey registered' });

  log.push('sign in');
  await page.goto(`${base}/ui/login`);
  await page.fill('#email', email);
  await page.click('#sign-in');
  await settle(page, 'sign-in', { path: '/ui/approvals' });
}

/**
 * Runs `scenario(page, log)` in a fresh headless Chromium and prints what it returns as one
 * JSON line; on failure exits non-zero with the log (console, page errors, steps), a
 * screenshot and the page's HTML on stderr.
 */
export async function inBrowser(name, scenario) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox'],
  });
  let page;
  const log = [];
  try {
    page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(20_000);
    page.on('console', (message) => log.push(`console.${message.type()}: ${message.text()}`));
    page.on('pageerror', (err) => log.push(`page error: ${err.message}`));
    const seen = await scenario(page, log);
    console.log(JSON.stringify(seen));
  } catch (err) {
    process.exitCode = 1;
    console.error(`${name} failed: ${err instanceof Failure ? err.message : err?.stack ?? err}`);
    if (log.length > 0) console.error(`log:\n  ${log.join('\n  ')}`);
    if (page) {
      console.error(`at ${page.url()}`);
      await screenshot(page, 'failure.png').catch((e) => console.error(`no failure screenshot: ${e.message}`));
      const html = await page.content().catch((e) => `(no HTML: ${e.message})`);
      console.error(`page HTML:\n${html}`);
    }
  } finally {
    await browser.close();
  }
}
