// The approver's side of a step-up approval, in a real browser: Chromium driven by
// playwright-core (version pinned in package.json), with a WebAuthn virtual authenticator
// (Chrome DevTools Protocol, WebAuthn domain) standing in for the human's passkey.
//
//   1. enrolment: the invite link, a passkey created on the virtual authenticator
//   2. sign-in: email, then an assertion by that passkey; the server sets the session cookie
//   3. the inbox lists the pending approval; its page shows what the agent asks for
//   4. the decision (approve or deny), signed by the passkey, and the server's answer
//
// Run by crates/surety-cli/tests/it/, which starts the server and passes:
//   SURETY_BASE          http://localhost:PORT (a domain, not an IP: WebAuthn RP IDs are domains)
//   SURETY_INVITE_URL    the enrolment page, with the one-time code in the fragment
//   SURETY_EMAIL         the human's email address
//   SURETY_APPROVAL_ID   the pending approval to decide
//   SURETY_DECISION      approve | deny
//   SURETY_REASON        optional, typed into the reason field
//   SURETY_SCREENSHOTS   optional directory for inbox.png, approval.png (failure.png on failure)
//   CHROMIUM             optional, the browser executable (default /usr/bin/chromium)
//
// Prints one JSON line with what the pages showed; exits non-zero with the page's HTML on
// stderr on any failure.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { Failure, env } from './common.mjs';

const screenshots = process.env.SURETY_SCREENSHOTS;

async function screenshot(page, name) {
  if (!screenshots) return;
  await mkdir(screenshots, { recursive: true });
  await page.screenshot({ path: join(screenshots, name), fullPage: true });
}

/**
 * Waits until the page reaches `want` ({text} in #status, a {path}, or a {selector} present),
 * or reports an error in #status: a refusal by the server fails the step at once, in the
 * server's words, rather than after a timeout. Re-evaluated across navigations.
 */
async function settle(page, what, want) {
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

async function textOf(page, selector) {
  const element = page.locator(selector);
  if ((await element.count()) === 0) return null;
  return (await element.first().textContent()).trim();
}

async function run(page, log) {
  const base = env('SURETY_BASE').replace(/\/+$/, '');
  const inviteUrl = env('SURETY_INVITE_URL');
  const email = env('SURETY_EMAIL');
  const approvalId = env('SURETY_APPROVAL_ID');
  const decision = env('SURETY_DECISION');
  if (decision !== 'approve' && decision !== 'deny') {
    throw new Failure(`SURETY_DECISION must be approve or deny, not ${JSON.stringify(decision)}`);
  }
  const reason = process.env.SURETY_REASON;

  // A platform authenticator that verifies the user and answers without a touch, as a
  // passkey on a laptop with a fingerprint reader would once the finger is on it.
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

  log.push(`enrol: ${new URL(inviteUrl).pathname}`);
  await page.goto(inviteUrl);
  await page.click('#register');
  await settle(page, 'passkey registration', { text: 'Passkey registered' });

  log.push('sign in');
  await page.goto(`${base}/ui/login`);
  await page.fill('#email', email);
  await page.click('#sign-in');
  await settle(page, 'sign-in', { path: '/ui/approvals' });

  log.push('inbox');
  const href = `/ui/approvals/${approvalId}`;
  const link = page.locator(`a[href="${href}"]`);
  if ((await link.count()) === 0) throw new Failure(`the inbox has no link to ${href}`);
  await screenshot(page, 'inbox.png');
  await link.first().click();
  await page.locator('#approve').waitFor();
  await screenshot(page, 'approval.png');

  log.push(`decide: ${decision}`);
  if (reason) await page.fill('#reason', reason);
  await page.click(decision === 'approve' ? '#approve' : '#deny');
  await settle(page, 'decision', { selector: '#result[data-status]' });

  const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
  return {
    ok: true,
    result: await page.locator('#result').getAttribute('data-status'),
    binding_message: await textOf(page, '#binding-message'),
    action: await textOf(page, '#action'),
    arguments: await textOf(page, '#arguments'),
    credentials: credentials.length,
    sign_count: credentials[0]?.signCount ?? null,
  };
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox'],
  });
  let page;
  // What the page itself said (console, uncaught errors) and how far the run got: printed
  // only on failure, where it is usually the quickest explanation.
  const log = [];
  try {
    page = await (await browser.newContext()).newPage();
    page.setDefaultTimeout(20_000);
    page.on('console', (message) => log.push(`console.${message.type()}: ${message.text()}`));
    page.on('pageerror', (err) => log.push(`page error: ${err.message}`));
    const seen = await run(page, log);
    console.log(JSON.stringify(seen));
  } catch (err) {
    process.exitCode = 1;
    console.error(`browser e2e failed: ${err instanceof Failure ? err.message : err?.stack ?? err}`);
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

main().catch((err) => {
  console.error(`browser e2e failed: ${err?.stack ?? err}`);
  process.exit(1);
});
