//! OAuth identity and authorization chaining across domains (draft-ietf-oauth-identity-
//! chaining §2.3–2.4), both halves.
//!
//! **At home** ([`authorization_grant`]): an agent exchanges a grant of its own (RFC 8693,
//! `requested_token_type=urn:ietf:params:oauth:token-type:jwt`) naming a trusted peer's
//! issuer as `audience` (or `resource`), and optionally one resource at the peer. The grant
//! must name that resource (or the peer's issuer itself) among its resources: the human
//! delegated reaching the peer. The answer is a JWT authorization grant (`typ`
//! `authz-grant+jwt`, `aud` = the peer, `sub` = the human, `act` = the agent, `cnf.jkt` = the
//! agent's key, `resource`), living no longer than an access token.
//!
//! **At the peer** ([`redeem`]): `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`
//! with that grant as `assertion` (RFC 7523 §2.1), `private_key_jwt` client authentication
//! by the agent (`iss` = `sub` = its id) and a DPoP proof, both signed by the key the grant
//! names in `cnf.jkt`. Checked: the issuer is a trusted peer; signature with the peer's
//! configured keys; `typ`; `aud` = this issuer; `exp`, `iat`; single use of `jti`; a
//! federation grant covering the peer, agent and principal; scope and audience within it.
//! The answer is a local DPoP-bound access token (`sub_id` = the principal at its issuer,
//! RFC 9493; `act` = the foreign chain, each actor with its `iss`).

use axum::http::HeaderMap;
use serde_json::json;
use surety_api::oauth::{
    GRANT_TYPE_JWT_BEARER, GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_GRANT, TOKEN_TYPE_JWT,
    TOKEN_TYPE_NOT_APPLICABLE, TokenResponse,
};
use surety_core::agent::Agent;
use surety_core::audit::{Actor, EventKind, NewEvent};
use surety_core::delegation::{self, Requested, Standing};
use surety_core::federation::{Arriving, admit};
use surety_core::id::{GrantId, TokenId};
use surety_core::scope::ScopeSet;
use surety_jose::rfc9068::{self, AccessTokenClaims, Act, Cnf, SubjectId};
use surety_jose::sha256_b64;
use surety_store::{ActivityKind, AgentActivity, FederatedTokenRecord};
use time::Duration;

use crate::app::{AppState, TOKEN_PATH};
use crate::auth::to_time;
use crate::error::ApiError;
use crate::extract::Form;
use crate::oauth::client_auth::{client_assertion, verify_assertion};

type Result<T> = std::result::Result<T, ApiError>;

/// Longest lifetime of an authorization grant a peer accepts (`exp` − now).
const MAX_GRANT_LIFETIME: Duration = Duration::hours(1);

/// At home: a JWT authorization grant for a peer, from a grant of the authenticated agent
/// (`client`, whose key made the DPoP proof: `jkt`).
pub(crate) async fn authorization_grant(
    state: &AppState,
    form: &Form,
    client: &Agent,
    jkt: &str,
) -> Result<TokenResponse> {
    let now = state.clock.now();
    let subject_token = form
        .get("subject_token")
        .ok_or_else(|| ApiError::invalid_request("`subject_token` is required"))?;
    if form.get("subject_token_type") != Some(TOKEN_TYPE_GRANT) {
        return Err(ApiError::invalid_request(format!(
            "an authorization grant for a peer is exchanged from a grant: `subject_token_type` must be `{TOKEN_TYPE_GRANT}`"
        )));
    }
    if form.get("actor_token").is_some() || form.get("requested_actor").is_some() {
        return Err(ApiError::invalid_request(
            "an authorization grant for a peer names no other actor",
        ));
    }
    // `audience` and `resource` together name the peer (its issuer) and, optionally, one
    // resource server at the peer.
    let mut named: Vec<&str> = form
        .get_all("audience")
        .iter()
        .map(String::as_str)
        .collect();
    named.extend(form.get_all("resource").iter().map(String::as_str));
    if named.len() > 2 {
        return Err(ApiError::invalid_target(
            "name the peer (`audience`) and at most one resource there",
        ));
    }
    let mut peer = None;
    let mut at_peer = Vec::new();
    for n in named {
        match state.store.get_peer(n.trim_end_matches('/')).await? {
            Some(p)
                if peer
                    .as_ref()
                    .is_none_or(|q: &surety_store::PeerRecord| q.issuer == p.issuer) =>
            {
                peer = Some(p);
            }
            Some(_) => {
                return Err(ApiError::invalid_target(
                    "an authorization grant is for one peer at a time",
                ));
            }
            None => at_peer.push(n.to_owned()),
        }
    }
    let peer = peer.ok_or_else(|| {
        ApiError::invalid_target(
            "name a trusted federation peer's issuer in `audience`: an authorization grant is only issued for a peer",
        )
    })?;
    if at_peer.len() > 1 {
        return Err(ApiError::invalid_target(
            "name at most one resource at the peer",
        ));
    }
    let resource = at_peer.pop();
    let id: GrantId = subject_token
        .parse()
        .map_err(|_| ApiError::invalid_grant("`subject_token` is not a grant id"))?;
    let grant = state
        .store
        .get_grant(id)
        .await?
        .ok_or_else(|| ApiError::invalid_grant(format!("unknown grant `{id}`")))?;
    let principal = state
        .store
        .get_human(grant.principal)
        .await?
        .map_or(surety_core::human::HumanStatus::Deactivated, |h| h.status);
    let scope = form
        .get("scope")
        .map(|s| ScopeSet::parse("scope", s))
        .transpose()
        .map_err(|e| ApiError::invalid_scope(e.to_string()))?;
    // The human must have delegated reaching this resource at the peer (or the peer as a
    // whole): the grant names it among its resources.
    let target = vec![resource.clone().unwrap_or_else(|| peer.issuer.clone())];
    let minted = delegation::from_grant(
        &grant,
        client.id,
        Standing {
            principal,
            actor: client.status,
        },
        &Requested {
            scope: scope.as_ref(),
            audiences: &target,
        },
        now,
        to_time(state.config.token_ttl),
    )?;
    let mut claims = crate::oauth::rfc8693::minted_claims(state, &minted, jkt.to_owned(), now)?;
    // For the peer: `aud` is the peer, the resource there is named apart, and the home
    // grant's limits go along.
    claims.aud = peer.issuer.clone();
    claims.resource = resource.clone();
    claims.constraints = Some(grant.constraints.clone());
    let jwt = crate::oauth::sign_token(state, &claims, true).await?;
    let event = NewEvent::new(
        EventKind::TokenIssued,
        Actor::Agent(client.id),
        &claims.jti,
        now,
    )
    .agent(client.id)
    .human(minted.principal)
    .details(json!({
        "grant_type": GRANT_TYPE_TOKEN_EXCHANGE,
        "issued_token_type": TOKEN_TYPE_JWT,
        "grant_id": claims.grant_id,
        "peer": peer.issuer,
        "aud": claims.aud,
        "resource": resource,
        "scope": claims.scope,
        "act": claims.act,
        "cnf_jkt": claims.cnf.jkt,
        "exp": claims.exp,
    }));
    state
        .record_activity(AgentActivity {
            strike: false,
            agent: client.id,
            at: now,
            events: vec![event],
            kind: ActivityKind::Token,
            exercised: None,
        })
        .await?;
    metrics::counter!("surety_tokens_issued_total", "kind" => "authorization_grant").increment(1);
    Ok(TokenResponse {
        access_token: jwt,
        token_type: TOKEN_TYPE_NOT_APPLICABLE.into(),
        expires_in: u64::try_from(claims.exp - claims.iat).unwrap_or(0),
        scope: claims.scope,
        issued_token_type: Some(TOKEN_TYPE_JWT.into()),
        authorization_details: None,
    })
}

/// At the peer: a local access token for a peer's agent, from the authorization grant its
/// home organisation issued.
pub(crate) async fn redeem(
    state: &AppState,
    headers: &HeaderMap,
    form: &Form,
) -> Result<TokenResponse> {
    let now = state.clock.now();
    // 1. The DPoP proof (a nonce challenge comes first).
    let proof = crate::oauth::token_proof(state, headers).await?;
    let assertion = form
        .get("assertion")
        .ok_or_else(|| ApiError::invalid_request("`assertion` is required"))?;
    let invalid =
        |what: String| ApiError::invalid_grant(format!("invalid authorization grant: {what}"));
    // 2. The grant: typed, from a trusted peer, signed with one of its configured keys.
    let decoded =
        rfc9068::decode_authorization_grant(assertion).map_err(|e| invalid(e.to_string()))?;
    let issuer = decoded
        .unverified_claims()
        .map_err(|e| invalid(e.to_string()))?
        .iss;
    let Some((peer, keys)) =
        crate::federation::peer_keys(state, &issuer, Some(decoded.kid())).await?
    else {
        return Err(invalid(format!(
            "`{}` is not a trusted federation peer",
            issuer.chars().take(200).collect::<String>()
        )));
    };
    let policy = rfc9068::TokenPolicy {
        issuer: &peer.issuer,
        max_skew: to_time(state.config.clock_skew),
    };
    let mut last = None;
    let mut verified = None;
    for key in &keys {
        match decoded.verify(key, &policy, now) {
            Ok(c) => {
                verified = Some(c);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let claims = verified.ok_or_else(|| {
        invalid(last.map_or_else(
            || "no key of the peer matches its `kid`".to_owned(),
            |e| e.to_string(),
        ))
    })?;
    // 3. For this organisation (RFC 7523 §3 item 3), short-lived.
    if claims.aud != *state.issuer && claims.aud != state.url(TOKEN_PATH) {
        return Err(invalid(
            "its `aud` is another organisation, not this one".into(),
        ));
    }
    let expires_at = time::OffsetDateTime::from_unix_timestamp(claims.exp)
        .map_err(|_| invalid("`exp` is out of range".into()))?;
    if expires_at - now > MAX_GRANT_LIFETIME {
        return Err(invalid("it lives longer than an hour".into()));
    }
    if claims.act.issuers().iter().any(Option::is_some) || claims.sub_id.is_some() {
        return Err(invalid(
            "it carries identities of a third organisation; only the peer's own are accepted"
                .into(),
        ));
    }
    if claims.approval_id.is_some() || claims.authorization_details.is_some() {
        return Err(invalid("an approval is not an authorization grant".into()));
    }
    // 4. The agent holds the key the grant is bound to: the DPoP proof and the client
    //    assertion are both made with it.
    if proof.jkt != claims.cnf.jkt {
        return Err(ApiError::invalid_dpop_proof(
            "the DPoP proof must be signed by the key the authorization grant is bound to (`cnf.jkt`)",
        ));
    }
    authenticate_holder(state, form, &claims.client_id, &proof.key).await?;
    // 5. Identities of the peer's own: none may be one of this organisation's.
    if local_identity(state, &claims).await? {
        return Err(invalid(
            "it names a human or agent of this organisation as the peer's".into(),
        ));
    }
    // 6. What this organisation lets that peer's agent do: a federation grant.
    let scope = ScopeSet::parse("scope", &claims.scope)
        .map_err(|_| invalid("its `scope` is malformed".into()))?;
    let chain: Vec<String> = claims.act.chain().into_iter().map(str::to_owned).collect();
    let arriving = Arriving {
        peer: &peer.issuer,
        agent: &claims.client_id,
        principal: &claims.sub,
        scope: &scope,
        resource: claims.resource.as_deref(),
        expires_at,
    };
    let requested = form
        .get("scope")
        .map(|s| ScopeSet::parse("scope", s))
        .transpose()
        .map_err(|e| ApiError::invalid_scope(e.to_string()))?;
    let mut audiences = form.get_all("resource").to_vec();
    audiences.extend_from_slice(form.get_all("audience"));
    let candidates: Vec<_> = state
        .store
        .list_federation_grants(Some(&peer.issuer))
        .await?
        .into_iter()
        .filter(|g| g.covers(&peer.issuer, &claims.client_id, &claims.sub))
        .collect();
    if candidates.is_empty() {
        return Err(ApiError::invalid_grant(format!(
            "no federation grant lets `{}` of `{}` act here",
            claims.client_id, peer.issuer
        )));
    }
    let ttl = to_time(state.config.token_ttl);
    let mut first_error = None;
    let mut admitted = None;
    for g in &candidates {
        match admit(g, &arriving, requested.as_ref(), &audiences, now, ttl) {
            Ok(a) => {
                admitted = Some((a, g));
                break;
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    let Some((admitted, fgrant)) = admitted else {
        return Err(first_error
            .map(ApiError::from)
            .unwrap_or_else(|| ApiError::invalid_grant("no federation grant applies")));
    };
    // 7. Used once (recorded last, so that a request refused for its scope or resource
    //    does not use the grant up).
    let replay = sha256_b64(format!("{}\n{}", peer.issuer, claims.jti).as_bytes());
    if !state
        .remember(format!("fed-grant:{replay}"), expires_at)
        .await?
    {
        return Err(invalid("it was already used (`jti` replay)".into()));
    }
    // 8. The local token.
    let local = AccessTokenClaims {
        iss: state.issuer.to_string(),
        sub: claims.sub.clone(),
        sub_id: Some(SubjectId::iss_sub(&peer.issuer, &claims.sub)),
        aud: admitted.audience.clone(),
        client_id: claims.client_id.clone(),
        iat: now.unix_timestamp(),
        exp: admitted.expires_at.unix_timestamp(),
        jti: TokenId::new(now).to_string(),
        scope: admitted.scope.to_string(),
        act: Act::from_issued_chain(&chain, Some(&peer.issuer))
            .ok_or_else(|| invalid("its `act` chain is empty".into()))?,
        cnf: Cnf {
            jkt: proof.jkt.clone(),
        },
        grant_id: fgrant.id.to_string(),
        derived_from: Vec::new(),
        authorization_details: None,
        approval_id: None,
        resource: None,
        constraints: claims.constraints.clone(),
    };
    let access_token = crate::oauth::sign_token(state, &local, false).await?;
    let event = NewEvent::new(EventKind::TokenIssued, Actor::System, &local.jti, now).details(json!({
        "grant_type": GRANT_TYPE_JWT_BEARER,
        "peer": peer.issuer,
        "federation_grant": fgrant.id.to_string(),
        "sub_id": local.sub_id,
        "act": local.act,
        "scope": local.scope,
        "aud": local.aud,
        "cnf_jkt": local.cnf.jkt,
        "exp": local.exp,
        "authorization_grant": {"jti": claims.jti, "grant_id": claims.grant_id, "scope": claims.scope},
    }));
    state
        .store
        .record_federated_token(
            &FederatedTokenRecord {
                jti: local.jti.clone(),
                peer: peer.issuer.clone(),
                grant: fgrant.id,
                assertion_jti: claims.jti.clone(),
                assertion: assertion.to_owned(),
                expires_at: admitted.expires_at,
            },
            &[event],
        )
        .await?;
    metrics::counter!("surety_tokens_issued_total", "kind" => "federated").increment(1);
    Ok(crate::oauth::access_token_response(access_token, local))
}

/// Whether the grant's principal or any agent of its chain is an identity of this
/// organisation: a peer naming one would pass its agent off as ours.
async fn local_identity(state: &AppState, claims: &AccessTokenClaims) -> Result<bool> {
    if let Ok(h) = claims.sub.parse::<surety_core::id::HumanId>()
        && state.store.get_human(h).await?.is_some()
    {
        return Ok(true);
    }
    for a in claims.act.chain() {
        if let Ok(a) = a.parse::<surety_core::id::AgentId>()
            && state.store.get_agent(a).await?.is_some()
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `private_key_jwt` by a peer's agent that is not registered here: the assertion names the
/// agent the authorization grant is for (`iss` = `sub` = `client_id`) and is signed by the
/// key of the DPoP proof, which step 4 matched to the grant's `cnf.jkt`. Failures are
/// `invalid_client` (RFC 7523 §3.2).
async fn authenticate_holder(
    state: &AppState,
    form: &Form,
    agent: &str,
    key: &surety_jose::PublicJwk,
) -> Result<()> {
    let decoded = client_assertion(form)?;
    if decoded.issuer().ok() != Some(agent) {
        return Err(ApiError::invalid_client(
            "client authentication failed: the client must be the agent the authorization grant is for",
        ));
    }
    verify_assertion(state, &decoded, std::slice::from_ref(key), TOKEN_PATH).await?;
    Ok(())
}
