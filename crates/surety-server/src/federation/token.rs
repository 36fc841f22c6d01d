//! Local tokens of peers' agents, checked here: signed by this organisation, naming the
//! principal at its peer (`sub_id`) and the foreign chain (`act`, each with the peer's
//! `iss`), and active while the token is not revoked (here, or by the poll of its home
//! organisation), its federation grant is active and covers it, and the peer is trusted.
//!
//! Also a peer's one-time approval token, presented as evidence for a step-up here: signed
//! by the peer, for this resource server, for the same principal, chain and key.

use surety_core::federation::{FederationGrant, FederationGrantStatus};
use surety_core::id::FederationGrantId;
use surety_jose::rfc9068::{self, AccessTokenClaims, TokenPolicy};

use crate::app::AppState;
use crate::auth::to_time;
use crate::oauth::access_token::Inactive;

/// An active token of a peer's agent.
#[derive(Debug, Clone)]
pub(crate) struct FederatedToken {
    /// Its claims.
    pub claims: AccessTokenClaims,
    /// The peer's issuer.
    pub peer: String,
    /// The foreign chain, current actor first.
    pub chain: Vec<String>,
    /// The federation grant it was minted under.
    pub grant: FederationGrant,
}

fn not(reason: impl Into<String>) -> Inactive {
    Inactive::Because(reason.into())
}

/// Whether `token` says it is a peer's agent's (unverified: it only routes the token to
/// [`verify`], which checks everything).
pub(crate) fn is_federated(token: &str) -> bool {
    rfc9068::decode(token)
        .and_then(|t| t.unverified_claims())
        .is_ok_and(|c| c.sub_id.is_some())
}

/// Verifies a local token of a peer's agent and checks that it is active now.
pub(crate) async fn verify(state: &AppState, token: &str) -> Result<FederatedToken, Inactive> {
    let now = state.clock.now();
    let decoded = rfc9068::decode(token).map_err(|e| not(e.to_string()))?;
    let claims = crate::oauth::access_token::verify_own(state, &decoded).await?;
    let sub_id = claims
        .sub_id
        .clone()
        .ok_or_else(|| not("not a federated token"))?;
    if sub_id.format != "iss_sub" || sub_id.sub != claims.sub {
        return Err(not("`sub_id` does not name `sub` at its issuer"));
    }
    let peer = sub_id.iss;
    if claims
        .act
        .issuers()
        .iter()
        .any(|i| *i != Some(peer.as_str()))
    {
        return Err(not("the `act` chain is not the peer's"));
    }
    if state.store.token_revoked_at(&claims.jti).await?.is_some() {
        return Err(not("the token was revoked"));
    }
    let id: FederationGrantId = claims
        .grant_id
        .parse()
        .map_err(|_| not("`grant_id` is not a federation grant"))?;
    let grant = state
        .store
        .get_federation_grant(id)
        .await?
        .ok_or_else(|| not("unknown federation grant"))?;
    let status = grant.status_at(now);
    if status != FederationGrantStatus::Active {
        return Err(not(format!("the federation grant is {status}")));
    }
    if !grant.covers(&peer, &claims.client_id, &claims.sub) {
        return Err(not("the federation grant does not cover the token"));
    }
    if state.store.get_peer(&peer).await?.is_none() {
        return Err(not("the peer is no longer trusted"));
    }
    let chain = claims.act.chain().into_iter().map(str::to_owned).collect();
    Ok(FederatedToken {
        claims,
        peer,
        chain,
        grant,
    })
}

/// RFC 7662's answer about a peer's agent's token for the resource server of `audience`:
/// `None` when it is not active or not meant for it.
pub(crate) async fn introspect(
    state: &AppState,
    token: &str,
    audience: &str,
) -> Result<Option<serde_json::Value>, crate::error::ApiError> {
    let t = match verify(state, token).await {
        Ok(t) => t,
        Err(Inactive::Error(e)) => return Err(e),
        Err(_) => return Ok(None),
    };
    if t.claims.aud != audience {
        return Ok(None);
    }
    let c = t.claims;
    Ok(Some(serde_json::json!({
        "active": true,
        "scope": c.scope,
        "client_id": c.client_id,
        "sub": c.sub,
        "sub_id": c.sub_id,
        "aud": c.aud,
        "iss": c.iss,
        "exp": c.exp,
        "iat": c.iat,
        "jti": c.jti,
        "token_type": surety_api::oauth::TOKEN_TYPE_DPOP,
        "act": c.act,
        "cnf": c.cnf,
        "grant_id": c.grant_id,
    })))
}

/// A peer's one-time approval token presented with `t` at the resource server whose
/// audience is `audience`: its claims, or why it is not valid evidence.
pub(crate) async fn verify_peer_approval(
    state: &AppState,
    token: &str,
    t: &FederatedToken,
    audience: &str,
) -> Result<AccessTokenClaims, String> {
    let now = state.clock.now();
    let decoded = rfc9068::decode(token).map_err(|e| e.to_string())?;
    let unverified = decoded.unverified_claims().map_err(|e| e.to_string())?;
    if unverified.iss != t.peer {
        return Err("it was not issued by the agent's home organisation".into());
    }
    let keys = crate::federation::peer_keys(state, &t.peer, Some(decoded.kid()))
        .await
        .map_err(|e| e.description().to_owned())?
        .map(|(_, keys)| keys)
        .unwrap_or_default();
    let policy = TokenPolicy {
        issuer: &t.peer,
        max_skew: to_time(state.config.clock_skew),
    };
    let claims = keys
        .iter()
        .find_map(|k| decoded.verify(k, &policy, now).ok())
        .ok_or("its signature does not verify with the peer's keys, or it expired")?;
    if claims.approval_id.is_none() || claims.authorization_details.is_none() {
        return Err("it is not an approval token".into());
    }
    if claims.aud != audience {
        return Err("it was issued for another resource server".into());
    }
    let chain: Vec<&str> = claims.act.chain();
    if claims.sub != t.claims.sub || chain != t.chain.iter().map(String::as_str).collect::<Vec<_>>()
    {
        return Err("it was issued to another agent or principal".into());
    }
    if claims.cnf.jkt != t.claims.cnf.jkt {
        return Err("it is bound to another key than the access token".into());
    }
    Ok(claims)
}
