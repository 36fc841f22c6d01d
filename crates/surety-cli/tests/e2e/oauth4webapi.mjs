// Surety's happy path driven by an independent, unmodified OAuth client: oauth4webapi
// (https://github.com/panva/oauth4webapi, version pinned in package.json).
//
//   RFC 8414  discovery of the authorization server metadata
//   RFC 8693  token exchange of a Surety grant (subject_token_type
//             urn:surety:params:oauth:token-type:grant) for an access token
//   RFC 7523  private_key_jwt client authentication (agent and resource server)
//   RFC 9449  DPoP-bound token, with the server-issued nonce retry (§8)
//   RFC 9068  the access token validated as a resource server would (JWKS, typ at+jwt,
//             iss, aud, cnf.jkt against a DPoP proof)
//   RFC 7662  introspection by the resource server, before and after revocation
//   RFC 7009  revocation by the agent
//
// Run by crates/surety-cli/tests/it/e2e.rs, which starts the server and passes:
//   SURETY_ISSUER         issuer URL (http://127.0.0.1:PORT)
//   SURETY_AGENT_ID       agt_…
//   SURETY_AGENT_JWK      path of the agent's private JWK (JSON)
//   SURETY_GRANT_ID       grt_…
//   SURETY_SUBJECT        hum_… (the grant's principal: the expected `sub`)
//   SURETY_SCOPE          scope to request (space separated)
//   SURETY_RESOURCE       resource (RFC 8707) to request: the expected `aud`
//   SURETY_RS_ID          rsv_… (the resource server's client_id)
//   SURETY_RS_JWK         path of the resource server's private JWK (JSON)
//
// Prints one JSON line with what it observed; exits non-zero with a message on any failure.

import * as oauth from 'oauth4webapi';
import { Failure, describe, env, keyPair } from './common.mjs';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const GRANT_TOKEN_TYPE = 'urn:surety:params:oauth:token-type:grant';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

// Plain http on loopback: the test server has no TLS.
const insecure = { [oauth.allowInsecureRequests]: true };

function check(condition, message, observed) {
  if (!condition) {
    throw new Failure(
      observed === undefined ? message : `${message}; observed: ${JSON.stringify(observed)}`,
    );
  }
}

async function tokenExchange(as, client, auth, dpop, parameters) {
  const attempt = async () => {
    const response = await oauth.genericTokenEndpointRequest(
      as,
      client,
      auth,
      TOKEN_EXCHANGE,
      parameters,
      { DPoP: dpop, ...insecure },
    );
    return oauth.processGenericTokenEndpointResponse(as, client, response);
  };
  try {
    return { result: await attempt(), nonceRetry: false };
  } catch (err) {
    if (!oauth.isDPoPNonceError(err)) throw err;
    return { result: await attempt(), nonceRetry: true };
  }
}

async function introspect(as, rsClient, rsAuth, token) {
  const response = await oauth.introspectionRequest(as, rsClient, rsAuth, token, {
    additionalParameters: { token_type_hint: 'access_token' },
    ...insecure,
  });
  return oauth.processIntrospectionResponse(as, rsClient, response);
}

async function main() {
  const issuer = new URL(env('SURETY_ISSUER'));
  const agentId = env('SURETY_AGENT_ID');
  const grantId = env('SURETY_GRANT_ID');
  const subject = env('SURETY_SUBJECT');
  const scope = env('SURETY_SCOPE');
  const resource = env('SURETY_RESOURCE');
  const rsId = env('SURETY_RS_ID');
  const agentKeys = await keyPair(env('SURETY_AGENT_JWK'));
  const rsKeys = await keyPair(env('SURETY_RS_JWK'));

  // RFC 8414: discovery. processDiscoveryResponse checks `issuer` equals the URL used.
  const as = await oauth
    .discoveryRequest(issuer, { algorithm: 'oauth2', ...insecure })
    .then((response) => oauth.processDiscoveryResponse(issuer, response));
  for (const endpoint of ['token_endpoint', 'introspection_endpoint', 'revocation_endpoint', 'jwks_uri']) {
    check(typeof as[endpoint] === 'string', `metadata has no ${endpoint}`, as);
  }
  check(
    as.token_endpoint_auth_methods_supported?.includes('private_key_jwt'),
    'metadata does not list private_key_jwt',
    as.token_endpoint_auth_methods_supported,
  );
  check(
    Array.isArray(as.dpop_signing_alg_values_supported),
    'metadata has no dpop_signing_alg_values_supported',
    as,
  );

  // The agent: a private_key_jwt client whose DPoP key is its registered key.
  const agent = { client_id: agentId, token_endpoint_auth_method: 'private_key_jwt' };
  const agentAuth = oauth.PrivateKeyJwt({ key: agentKeys.privateKey, kid: agentKeys.kid });
  const dpop = oauth.DPoP(agent, { privateKey: agentKeys.privateKey, publicKey: agentKeys.publicKey });

  // RFC 8693: exchange the grant for a DPoP-bound access token.
  const { result: tokens, nonceRetry } = await tokenExchange(as, agent, agentAuth, dpop, {
    subject_token: grantId,
    subject_token_type: GRANT_TOKEN_TYPE,
    scope,
    resource,
  });
  check(nonceRetry, 'the token endpoint did not ask for a DPoP nonce first (use_dpop_nonce)');
  check(tokens.token_type === 'dpop', 'token_type is not DPoP', tokens.token_type);
  check(tokens.issued_token_type === ACCESS_TOKEN_TYPE, 'unexpected issued_token_type', tokens.issued_token_type);
  check(typeof tokens.expires_in === 'number' && tokens.expires_in > 0, 'expires_in is not positive', tokens.expires_in);
  check(tokens.scope === undefined || tokens.scope === scope, 'unexpected scope', tokens.scope);
  const accessToken = tokens.access_token;
  const jkt = await dpop.calculateThumbprint();

  // RFC 9068 / RFC 9449 §7: the token as a resource server sees it. The client sends it to
  // the resource with a DPoP proof (protectedResourceRequest); the "resource server" here is
  // oauth4webapi's validateJwtAccessToken, which fetches the issuer's JWKS, checks typ at+jwt,
  // iss, aud, exp, the signature, and the proof (htm, htu, ath, cnf.jkt).
  let jwtClaims;
  const resourceUrl = new URL('/e2e/whoami', resource);
  const rsResponse = await oauth.protectedResourceRequest(accessToken, 'GET', resourceUrl, new Headers(), null, {
    DPoP: dpop,
    [oauth.customFetch]: async (url, init) => {
      const request = new Request(url, init);
      jwtClaims = await oauth.validateJwtAccessToken(as, request, resource, { requireDPoP: true, ...insecure });
      return Response.json({ ok: true });
    },
  });
  check(rsResponse.status === 200, 'the resource request was rejected', rsResponse.status);
  check(jwtClaims.sub === subject, 'access token `sub` is not the human', jwtClaims);
  check(jwtClaims.client_id === agentId, 'access token `client_id` is not the agent', jwtClaims);
  check(jwtClaims.act?.sub === agentId, 'access token `act.sub` is not the agent', jwtClaims);
  check(jwtClaims.cnf?.jkt === jkt, 'access token `cnf.jkt` is not the DPoP key thumbprint', jwtClaims);

  // RFC 7662: the resource server introspects the token.
  const rs = { client_id: rsId, token_endpoint_auth_method: 'private_key_jwt' };
  const rsAuth = oauth.PrivateKeyJwt({ key: rsKeys.privateKey, kid: rsKeys.kid });
  const before = await introspect(as, rs, rsAuth, accessToken);
  check(before.active === true, 'introspection: token not active', before);
  check(before.sub === subject, 'introspection: `sub` is not the human', before);
  check(before.act?.sub === agentId, 'introspection: `act.sub` is not the agent', before);
  check(before.client_id === agentId, 'introspection: `client_id` is not the agent', before);
  check(before.iss === as.issuer, 'introspection: `iss` is not the issuer', before);
  const aud = Array.isArray(before.aud) ? before.aud : [before.aud];
  check(aud.includes(resource), 'introspection: `aud` does not name the resource', before);
  check(before.scope === scope, 'introspection: unexpected scope', before);
  check(before.token_type === 'DPoP', 'introspection: token_type is not DPoP', before);
  check(before.cnf?.jkt === jkt, 'introspection: `cnf.jkt` is not the DPoP key thumbprint', before);
  check(before.jti === jwtClaims.jti, 'introspection: `jti` differs from the token', before);
  check(before.exp === jwtClaims.exp && before.iat === jwtClaims.iat, 'introspection: exp/iat differ from the token', before);
  check(before.grant_id === grantId, 'introspection: `grant_id` is not the grant', before);

  // RFC 7009: the agent revokes its token.
  await oauth
    .revocationRequest(as, agent, agentAuth, accessToken, {
      additionalParameters: { token_type_hint: 'access_token' },
      ...insecure,
    })
    .then(oauth.processRevocationResponse);

  // RFC 7662 §2.2: a revoked token is exactly {"active": false}.
  const after = await introspect(as, rs, rsAuth, accessToken);
  check(
    JSON.stringify(after) === JSON.stringify({ active: false }),
    'introspection after revocation is not exactly {"active":false}',
    after,
  );

  console.log(
    JSON.stringify({
      ok: true,
      library: 'oauth4webapi',
      issuer: as.issuer,
      dpop_nonce_retry: nonceRetry,
      token: {
        token_type: tokens.token_type,
        issued_token_type: tokens.issued_token_type,
        expires_in: tokens.expires_in,
        scope: tokens.scope,
      },
      dpop_jkt: jkt,
      access_token_claims: jwtClaims,
      introspection_before: before,
      introspection_after: after,
    }),
  );
}

main().catch((err) => {
  console.error(`oauth4webapi e2e failed: ${describe(err)}`);
  if (!(err instanceof Failure) && err?.stack) console.error(err.stack);
  process.exit(1);
});
