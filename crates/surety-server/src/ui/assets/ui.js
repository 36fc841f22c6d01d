// Browser side of the approver and inventory pages. The pages are rendered by the server; this script only
// runs the WebAuthn ceremonies and posts their results. No framework and no build step: what
// the server serves is what runs, so a reviewer can audit it as it is.
//
// The WebAuthn JSON is webauthn-rs's: every binary member travels as unpadded base64url, in
// the options the server sends and in the credential it expects back.

'use strict';

(() => {
  const $ = (selector) => document.querySelector(selector);

  // --- encoding ---------------------------------------------------------------------------

  function fromB64url(text) {
    const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
    const binary = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    return Uint8Array.from(binary, (c) => c.charCodeAt(0)).buffer;
  }

  function toB64url(buffer) {
    let binary = '';
    for (const byte of new Uint8Array(buffer)) binary += String.fromCharCode(byte);
    return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  const descriptors = (list) => list && list.map((d) => ({ ...d, id: fromB64url(d.id) }));

  // webauthn-rs wraps the options as {publicKey, mediation?}. Only publicKey is passed on:
  // these pages run modal ceremonies, never conditional (autofill) mediation.
  function creationOptions(options) {
    const publicKey = { ...options.publicKey };
    publicKey.challenge = fromB64url(publicKey.challenge);
    publicKey.user = { ...publicKey.user, id: fromB64url(publicKey.user.id) };
    if (publicKey.excludeCredentials) publicKey.excludeCredentials = descriptors(publicKey.excludeCredentials);
    return { publicKey };
  }

  function requestOptions(options) {
    const publicKey = { ...options.publicKey };
    publicKey.challenge = fromB64url(publicKey.challenge);
    if (publicKey.allowCredentials) publicKey.allowCredentials = descriptors(publicKey.allowCredentials);
    return { publicKey };
  }

  function registrationJson(cred) {
    const r = cred.response;
    return {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: {
        attestationObject: toB64url(r.attestationObject),
        clientDataJSON: toB64url(r.clientDataJSON),
        transports: typeof r.getTransports === 'function' ? r.getTransports() : null,
      },
      extensions: cred.getClientExtensionResults(),
    };
  }

  function assertionJson(cred) {
    const r = cred.response;
    return {
      id: cred.id,
      rawId: toB64url(cred.rawId),
      type: cred.type,
      response: {
        authenticatorData: toB64url(r.authenticatorData),
        clientDataJSON: toB64url(r.clientDataJSON),
        signature: toB64url(r.signature),
        userHandle: r.userHandle ? toB64url(r.userHandle) : null,
      },
      extensions: cred.getClientExtensionResults(),
    };
  }

  // --- talking to the server and to the user ------------------------------------------------

  class Problem extends Error {}

  async function post(url, body) {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      credentials: 'same-origin',
    });
    const json = await response.json().catch(() => null);
    if (!response.ok) {
      throw new Problem((json && json.error_description) || `The server refused the request (HTTP ${response.status}).`);
    }
    return json;
  }

  function show(text, kind) {
    const status = $('#status');
    if (!status) return;
    status.textContent = text;
    status.className = kind;
  }

  // What the user can act on, rather than the DOMException's developer-facing message.
  function explain(err) {
    if (err instanceof Problem) return err.message;
    switch (err && err.name) {
      case 'NotAllowedError':
        return 'The passkey request was cancelled or timed out. Try again.';
      case 'InvalidStateError':
        return 'This authenticator already holds a passkey for this account.';
      case 'SecurityError':
        return 'The browser refused to use a passkey on this address.';
      default:
        return `Something went wrong: ${(err && err.message) || err}`;
    }
  }

  // Runs `action` on click with the buttons disabled, so one click is one ceremony. The
  // default is prevented because a button inside a form would otherwise submit it.
  function onClick(button, buttons, action) {
    button.addEventListener('click', async (event) => {
      event.preventDefault();
      buttons.forEach((b) => (b.disabled = true));
      show('', '');
      let keepDisabled = false;
      try {
        keepDisabled = await action();
      } catch (err) {
        show(explain(err), 'error');
      } finally {
        if (!keepDisabled) buttons.forEach((b) => (b.disabled = false));
      }
    });
  }

  function supported(buttons) {
    if (window.PublicKeyCredential && navigator.credentials) return true;
    show('This browser does not support passkeys.', 'error');
    buttons.forEach((b) => (b.disabled = true));
    return false;
  }

  // --- pages --------------------------------------------------------------------------------

  function enroll() {
    const button = $('#register');
    if (!button || !supported([button])) return;
    // The one-time code rides in the fragment, which browsers never send to the server or
    // put in Referer headers.
    const code = location.hash.slice(1);
    if (!code) {
      show('This enrolment link is incomplete: open the full link you were given.', 'error');
      button.disabled = true;
      return;
    }
    onClick(button, [button], async () => {
      const start = await post('/ui/api/passkeys/register/start', { code });
      const cred = await navigator.credentials.create(creationOptions(start.options));
      await post('/ui/api/passkeys/register/finish', { ceremony: start.ceremony, credential: registrationJson(cred) });
      show('Passkey registered', 'ok');
      const next = $('#to-login');
      if (next) next.hidden = false;
      // The code is spent: keep it out of the history and the button out of reach.
      history.replaceState(null, '', location.pathname + location.search);
      return true;
    });
  }

  function login() {
    const button = $('#sign-in');
    const email = $('#email');
    if (!button || !email || !supported([button])) return;
    onClick(button, [button], async () => {
      const address = email.value.trim();
      if (!address) throw new Problem('Enter your email address.');
      const start = await post('/ui/api/login/start', { email: address });
      const cred = await navigator.credentials.get(requestOptions(start.options));
      await post('/ui/api/login/finish', { ceremony: start.ceremony, credential: assertionJson(cred) });
      location.assign('/ui/approvals');
      return true;
    });
  }

  function approval() {
    const id = document.body.dataset.approval;
    const buttons = [$('#approve'), $('#deny')].filter(Boolean);
    if (!id || buttons.length === 0 || !supported(buttons)) return;
    const base = `/ui/api/approvals/${encodeURIComponent(id)}`;
    for (const button of buttons) {
      const decision = button.id === 'approve' ? 'approve' : 'deny';
      // The passkey signs a challenge the server bound to this approval and this decision,
      // so the click the human made is the one the server records.
      onClick(button, buttons, async () => {
        // The reason is signed with the verdict, so it goes with the challenge request.
        const reason = ($('#reason') && $('#reason').value.trim()) || null;
        const start = await post(`${base}/challenge`, { decision, reason });
        const cred = await navigator.credentials.get(requestOptions(start.options));
        const outcome = await post(`${base}/decide`, { ceremony: start.ceremony, credential: assertionJson(cred) });
        const result = $('#result');
        if (result) {
          result.textContent = outcome.status;
          result.dataset.status = outcome.status;
        }
        show(outcome.message || '', 'ok');
        return true;
      });
    }
  }

  // New requests appear without a manual refresh; the page itself stays server-rendered.
  function inbox() {
    if (typeof EventSource !== 'function') return;
    const stream = new EventSource('/ui/api/approvals/stream');
    stream.addEventListener('approval', () => {
      stream.close();
      location.reload();
    });
  }

  // Suspend, reinstate or revoke an agent: the same rules and audit event as the admin
  // API. Revoking is final, so it asks once more.
  function agent() {
    const id = document.body.dataset.agent;
    const buttons = [...document.querySelectorAll('button[data-action]')];
    if (!id || buttons.length === 0) return;
    for (const button of buttons) {
      const action = button.dataset.action;
      onClick(button, buttons, async () => {
        const reason = ($('#reason') && $('#reason').value.trim()) || null;
        if (action !== 'reinstate' && !reason) throw new Problem(`Give a reason to ${action} this agent.`);
        if (action === 'revoke' && !window.confirm('Revoke this agent for good? Its keys and tokens stop working and it cannot be reinstated.')) return false;
        const outcome = await post(`/ui/api/agents/${encodeURIComponent(id)}/${action}`, { reason });
        show(`The agent is now ${outcome.status}.`, 'ok');
        location.reload();
        return true;
      });
    }
  }

  const pages = { enroll, login, approval, inbox, agent };

  function start() {
    const page = pages[document.body.dataset.page];
    if (page) page();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
