// A step-up approval driven by an independent, unmodified OpenID client: openid-client
// (https://github.com/panva/openid-client, version pinned in package.json).
//
//   OpenID Connect Discovery 1.0   the server's metadata
//   OpenID CIBA Core 1.0           backchannel authentication request (poll mode), then
//                                  polling the token endpoint until the human decides
//   RFC 9396  authorization_details naming the one action to approve
//   RFC 7523  private_key_jwt client authentication with the agent's key
//   RFC 9449  DPoP proofs signed by the agent's registered key, with the server-issued
//             nonce retry (§8) done by the library itself
//
// Run by crates/surety-cli/tests/it/, which starts the server and passes:
//   SURETY_ISSUER                 issuer URL (http://127.0.0.1:PORT)
//   SURETY_AGENT_ID               agt_… (the client_id)
//   SURETY_AGENT_JWK              path of the agent's private JWK (JSON)
//   SURETY_LOGIN_HINT             the human to ask
//   SURETY_BINDING_MESSAGE        shown to the human on the approval page
//   SURETY_AUTHORIZATION_DETAILS  JSON array (RFC 9396)
//   SURETY_REQUESTED_EXPIRY       optional, seconds
//
// Prints `{"event":"initiated",…}` as soon as the server accepts the request (so the test
// can approve or deny it while this script polls), then one JSON line with the outcome:
// `{"ok":true,…}` with the token, or `{"ok":false,"error":…}` when the server ends the poll
// with an OAuth error (access_denied, expired_token, …). Exits non-zero on anything else.

import * as client from 'openid-client';
import { Failure, describe, emit, env, keyPair } from './common.mjs';
// jose comes with openid-client (locked in package-lock.json). Its RFC 7638 code is not the
// code that signs the proofs, so the reported thumbprint is an independent computation.
import { calculateJwkThumbprint } from 'jose';

function decodeJwtPart(jwt, index) {
  const part = jwt.split('.')[index];
  if (part === undefined) throw new Failure('the access token is not a JWT');
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
}

async function main() {
  const issuer = new URL(env('SURETY_ISSUER'));
  const agentId = env('SURETY_AGENT_ID');
  const agentKeys = await keyPair(env('SURETY_AGENT_JWK'));
  const loginHint = env('SURETY_LOGIN_HINT');
  const bindingMessage = env('SURETY_BINDING_MESSAGE');
  const authorizationDetails = env('SURETY_AUTHORIZATION_DETAILS');
  const requestedExpiry = process.env.SURETY_REQUESTED_EXPIRY;

  // Every token endpoint answer, in order, as the wire saw it: the test checks that the first
  // poll was refused with use_dpop_nonce and that the library retried on its own.
  const tokenResponses = [];
  let tokenEndpoint;
  const recordingFetch = async (url, options) => {
    const response = await fetch(url, options);
    if (tokenEndpoint !== undefined && String(url) === tokenEndpoint) {
      const body = await response
        .clone()
        .json()
        .catch(() => ({}));
      tokenResponses.push(response.ok ? { status: response.status } : { status: response.status, error: body.error });
    }
    return response;
  };

  // The server accepts an assertion without `kid` (it tries the agent's registered keys), so
  // the key goes bare when the file names none.
  const auth = client.PrivateKeyJwt(
    agentKeys.kid ? { key: agentKeys.privateKey, kid: agentKeys.kid } : agentKeys.privateKey,
  );
  const config = await client.discovery(issuer, agentId, {}, auth, {
    // Plain http on loopback: the test server has no TLS.
    execute: [client.allowInsecureRequests],
    [client.customFetch]: recordingFetch,
  });
  tokenEndpoint = config.serverMetadata().token_endpoint;

  const parameters = {
    login_hint: loginHint,
    binding_message: bindingMessage,
    authorization_details: authorizationDetails,
  };
  if (requestedExpiry) parameters.requested_expiry = requestedExpiry;
  const initiated = await client.initiateBackchannelAuthentication(config, parameters);
  await emit({
    event: 'initiated',
    auth_req_id: initiated.auth_req_id,
    expires_in: initiated.expires_in,
    interval: initiated.interval,
  });

  // The server binds the token to a key registered to the agent, so the DPoP key is the
  // agent's own, not a fresh one.
  const dpop = client.getDPoPHandle(config, {
    privateKey: agentKeys.privateKey,
    publicKey: agentKeys.publicKey,
  });
  // openid-client gives up locally after exactly expires_in; a few intervals more lets the
  // server be the one to end an expired request (expired_token), which is what the test checks.
  const interval = initiated.interval ?? 5;
  const signal = AbortSignal.timeout((initiated.expires_in + 3 * interval) * 1000);
  let tokens;
  try {
    tokens = await client.pollBackchannelAuthenticationGrant(config, initiated, undefined, {
      DPoP: dpop,
      signal,
    });
  } catch (err) {
    if (err instanceof client.ResponseBodyError) {
      await emit({
        ok: false,
        error: err.error,
        error_description: err.error_description,
        token_responses: tokenResponses,
      });
      return;
    }
    throw err;
  }

  await emit({
    ok: true,
    library: 'openid-client',
    token_type: tokens.token_type,
    expires_in: tokens.expires_in,
    authorization_details: tokens.authorization_details,
    access_token_claims: decodeJwtPart(tokens.access_token, 1),
    access_token_header: decodeJwtPart(tokens.access_token, 0),
    dpop_jkt: await calculateJwkThumbprint(agentKeys.pub, 'sha256'),
    token_responses: tokenResponses,
  });
}

main().catch((err) => {
  console.error(`openid-client CIBA e2e failed: ${describe(err)}`);
  if (!(err instanceof Failure) && err?.stack) console.error(err.stack);
  process.exit(1);
});
