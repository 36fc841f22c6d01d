// The IAM lead's side, in a real browser: the inventory, one agent in full, acting on it,
// and the audit log with its checkpoint status. Chromium driven by playwright-core, signed in
// with a passkey on a WebAuthn virtual authenticator.
//
//   1. enrolment and sign-in (see ui.mjs)
//   2. the inventory: every agent, finding counts; narrowed to one finding; the CSV export
//   3. the agent page: keys, grants with the use of each scope, recent decisions, trail
//   4. suspend with a reason, then revoke (confirmed in the browser's dialog)
//   5. the audit page: the signed checkpoint verified, searched by event type
//
// Run by crates/surety-cli/tests/it/, which starts the server and passes:
//   SURETY_BASE          http://localhost:PORT
//   SURETY_INVITE_URL    the enrolment page, with the one-time code in the fragment
//   SURETY_EMAIL         the human's email address
//   SURETY_AGENT_ID      the agent to open, suspend and revoke
//   SURETY_SCREENSHOTS   optional directory for inventory.png, agent.png, audit.png
//
// Prints one JSON line with what the pages showed.

import { env } from './common.mjs';
import { enrolAndSignIn, inBrowser, passkeyAuthenticator, screenshot, settle, textOf } from './ui.mjs';

async function texts(page, selector) {
  return (await page.locator(selector).allTextContents()).map((t) => t.trim());
}

async function run(page, log) {
  const base = env('SURETY_BASE').replace(/\/+$/, '');
  const agentId = env('SURETY_AGENT_ID');
  await passkeyAuthenticator(page);
  await enrolAndSignIn(page, log, {
    base,
    inviteUrl: env('SURETY_INVITE_URL'),
    email: env('SURETY_EMAIL'),
  });

  log.push('inventory');
  await page.click('nav a[href="/ui/inventory"]');
  await page.locator('#agents').waitFor();
  await screenshot(page, 'inventory.png');
  const agents = await page.locator('#agents tr.agent').count();
  const counts = {};
  for (const chip of await page.locator('#counts a').all()) {
    counts[await chip.getAttribute('data-kind')] = Number(await chip.locator('strong').textContent());
  }
  const orphanRow = (await texts(page, '#agents tr.agent')).find((t) => t.includes('orphaned')) ?? null;

  log.push('filter: no_grant');
  await page.selectOption('#finding', 'no_grant');
  await page.click('.filters button[type=submit]');
  await page.waitForURL(/finding=no_grant/);
  const noGrant = await texts(page, '#agents tr.agent td:first-child');

  log.push('csv export');
  const csvHref = await page.locator('#csv').getAttribute('href');
  const csv = await page.evaluate(async (href) => {
    const r = await fetch(href, { credentials: 'same-origin' });
    return { status: r.status, type: r.headers.get('content-type'), body: await r.text() };
  }, csvHref);

  log.push('agent page');
  await page.goto(`${base}/ui/inventory`);
  await page.click(`#agents tr[data-agent="${agentId}"] a`);
  await page.locator('#trail').waitFor();
  await screenshot(page, 'agent.png');
  const scopes = await texts(page, 'table.grant tr.scope');
  const unused = await texts(page, 'table.grant tr.scope.unused td:first-child code');
  const decisions = await texts(page, '#decisions tbody tr');

  log.push('suspend');
  await page.click('#suspend');
  const refused = await textOf(page, '#status');
  await page.fill('#reason', 'under review');
  await page.click('#suspend');
  await page.waitForFunction(() => document.querySelector('#agent-status')?.textContent.trim() === 'suspended');
  const afterSuspend = await textOf(page, '#agent-status');

  log.push('revoke');
  page.once('dialog', (dialog) => dialog.accept());
  await page.fill('#reason', 'no longer needed');
  await page.click('#revoke');
  await page.waitForFunction(() => document.querySelector('#agent-status')?.textContent.trim() === 'revoked');
  const actionsLeft = await page.locator('button[data-action]').count();

  log.push('audit');
  await page.click('nav a[href="/ui/audit"]');
  await page.locator('#checkpoint').waitFor();
  const checkpoint = await textOf(page, '#checkpoint-state');
  await screenshot(page, 'audit.png');
  await page.selectOption('select[name=type]', 'agent.revoked');
  await page.click('.filters button[type=submit]');
  await settle(page, 'audit search', { selector: '#events' });
  const revokedEvents = await texts(page, '#events tr.event');

  return {
    ok: true,
    agents,
    counts,
    orphan_row: orphanRow,
    no_grant: noGrant,
    csv: { status: csv.status, type: csv.type, header: csv.body.split('\r\n')[0], lines: csv.body.split('\r\n').filter(Boolean).length },
    scopes,
    unused,
    decisions: decisions.length,
    refused_without_reason: refused,
    after_suspend: afterSuspend,
    actions_left: actionsLeft,
    checkpoint,
    revoked_events: revokedEvents,
  };
}

inBrowser('inventory e2e', run).catch((err) => {
  console.error(`inventory e2e failed: ${err?.stack ?? err}`);
  process.exit(1);
});
