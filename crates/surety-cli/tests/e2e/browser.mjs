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

import { Failure, env } from './common.mjs';
import { enrolAndSignIn, inBrowser, passkeyAuthenticator, screenshot, settle, textOf } from './ui.mjs';

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

  const { cdp, authenticatorId } = await passkeyAuthenticator(page);
  await enrolAndSignIn(page, log, { base, inviteUrl, email });

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

inBrowser('browser e2e', run).catch((err) => {
  console.error(`browser e2e failed: ${err?.stack ?? err}`);
  process.exit(1);
});
