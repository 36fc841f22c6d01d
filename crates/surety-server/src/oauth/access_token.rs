//! Is this access token active? Tokens are not stored: a token is active while its
//! signature, issuer and expiry hold (RFC 9068 §4) *and* everything it was derived from is
//! still in force — checked against the database on every call:
//!
//! 1. its `jti`, and the `jti` of every token it derives from, is not revoked (RFC 7009);
//! 2. its grant exists, is active and unexpired, and names the same principal and root agent;
//! 3. the principal is active and was not deactivated since the token was issued;
//! 4. every agent of the `act` chain is active and was not suspended since;
//! 5. every key of the chain (`cnf.jkt` and the parents') is still an active key of its agent.
//!
//! "Since" uses each principal's and agent's revocation watermark: a token issued before
//! the instant they last left `active` stays inactive even once they are back. The issue
//! time is read from the token's `jti` (a time-ordered id, to the millisecond) rather than
//! from `iat` (whole seconds), so a token minted just after a reinstatement works at once; a
//! token minted in the same millisecond as a suspension counts as minted before it.

use surety_core::agent::AgentStatus;
use surety_core::grant::GrantStatus;
use surety_core::human::HumanStatus;
use surety_core::id::{AgentId, GrantId, HumanId, PrincipalId, TokenId};
use surety_core::key::KeyStatus;
use surety_jose::rfc9068::{self, AccessTokenClaims, TokenPolicy};
use surety_store::StandingQuery;
use time::OffsetDateTime;

use crate::app::AppState;
use crate::auth::to_time;
use crate::error::ApiError;

/// A token whose signature, issuer and expiry hold, not yet checked for standing.
#[derive(Debug, Clone)]
pub(crate) struct SignedToken {
    /// Its claims.
    pub claims: AccessTokenClaims,
    /// `sub`.
    pub principal: HumanId,
    /// `grant_id`.
    pub grant: GrantId,
    /// The `act` chain, current actor first.
    pub chain: Vec<AgentId>,
    /// When it was issued, to the millisecond (from its `jti`).
    issued: OffsetDateTime,
}

/// A token that is active now.
#[derive(Debug, Clone)]
pub(crate) struct ActiveToken {
    /// Its claims.
    pub claims: AccessTokenClaims,
    /// `sub`.
    pub principal: HumanId,
    /// `grant_id`.
    pub grant: GrantId,
    /// The `act` chain, current actor first.
    pub chain: Vec<AgentId>,
}

/// Why a token is not active, or the check could not be made.
#[derive(Debug)]
pub(crate) enum Inactive {
    /// Not active, for this reason (safe to log; introspection never says why).
    Because(String),
    /// Signed by us, but the token itself, or the key it is bound to, was revoked: its
    /// holder is presenting a withdrawn credential.
    Withdrawn(Withdrawn),
    /// The database failed.
    Error(ApiError),
}

/// A withdrawn credential presented anyway.
#[derive(Debug)]
pub(crate) struct Withdrawn {
    /// The token's holder (`act.sub`).
    pub agent: AgentId,
    /// The token's audience.
    pub audience: String,
    /// When the token or key was revoked.
    pub revoked_at: OffsetDateTime,
    /// The holder's last status change (its revocation watermark), if any.
    pub agent_changed_at: Option<OffsetDateTime>,
    /// What was revoked.
    pub why: String,
}

impl From<surety_store::StoreError> for Inactive {
    fn from(e: surety_store::StoreError) -> Self {
        Self::Error(e.into())
    }
}

fn not(reason: impl Into<String>) -> Inactive {
    Inactive::Because(reason.into())
}

/// Whether a token issued at `issued` (millisecond precision) postdates `watermark`.
fn after_watermark(issued: OffsetDateTime, watermark: Option<OffsetDateTime>) -> bool {
    watermark.is_none_or(|w| {
        issued
            > w.replace_nanosecond(w.millisecond() as u32 * 1_000_000)
                .unwrap_or(w)
    })
}

fn withdrawn(
    standing: &surety_store::TokenStanding,
    claims: &AccessTokenClaims,
    agent: AgentId,
    revoked_at: OffsetDateTime,
    why: &str,
) -> Inactive {
    let agent_changed_at = standing
        .agents
        .iter()
        .find(|(id, _, _)| *id == agent)
        .and_then(|(_, _, w)| *w);
    Inactive::Withdrawn(Withdrawn {
        agent,
        audience: claims.aud.clone(),
        revoked_at,
        agent_changed_at,
        why: why.to_owned(),
    })
}

/// Verifies `token` and checks that it is active now.
pub(crate) async fn verify_active(state: &AppState, token: &str) -> Result<ActiveToken, Inactive> {
    let signed = verify_signed(state, token).await?;
    check_standing(state, signed).await
}

/// Checks what a token says about itself: structure, `typ`, signature by a published org
/// key, `iss`, `exp`, `iat`, and well-formed identities. Says nothing of revocation.
pub(crate) async fn verify_signed(state: &AppState, token: &str) -> Result<SignedToken, Inactive> {
    let decoded = rfc9068::decode(token).map_err(|e| not(e.to_string()))?;
    verify_decoded(state, &decoded).await
}

/// As [`verify_signed`], for an authorization grant this organisation issued for a
/// federation peer (`typ` `authz-grant+jwt`): the same claims and the same standing.
pub(crate) async fn verify_signed_grant(
    state: &AppState,
    token: &str,
) -> Result<SignedToken, Inactive> {
    let decoded = rfc9068::decode_authorization_grant(token).map_err(|e| not(e.to_string()))?;
    verify_decoded(state, &decoded).await
}

/// What any token this organisation signed says about itself: signed by one of its keys
/// (by `kid`), `iss`, `exp`, `iat` (RFC 9068 §4).
pub(crate) async fn verify_own(
    state: &AppState,
    decoded: &rfc9068::AccessToken<'_>,
) -> Result<AccessTokenClaims, Inactive> {
    let now = state.clock.now();
    let key = state
        .keys
        .verification_key(state.store.as_ref(), decoded.kid(), now)
        .await
        .map_err(|e| Inactive::Error(ApiError::internal(e)))?
        .ok_or_else(|| not("unknown signing key"))?;
    let policy = TokenPolicy {
        issuer: &state.issuer,
        max_skew: to_time(state.config.clock_skew),
    };
    decoded
        .verify(&key, &policy, now)
        .map_err(|e| not(e.to_string()))
}

async fn verify_decoded(
    state: &AppState,
    decoded: &rfc9068::AccessToken<'_>,
) -> Result<SignedToken, Inactive> {
    let claims = verify_own(state, decoded).await?;
    // A token minted here for a peer's agent is checked by `federation::token`.
    if claims.sub_id.is_some() || claims.act.issuers().iter().any(Option::is_some) {
        return Err(not("a federation peer's agent's token"));
    }
    let principal: HumanId = claims
        .sub
        .parse()
        .map_err(|_| not("`sub` is not a human"))?;
    let grant: GrantId = claims.grant_id.parse().map_err(|_| not("bad `grant_id`"))?;
    let chain: Vec<AgentId> = claims
        .act
        .chain()
        .into_iter()
        .map(|a| a.parse().map_err(|_| not("bad `act` chain")))
        .collect::<Result<_, _>>()?;
    let issued = claims
        .jti
        .parse::<TokenId>()
        .ok()
        .and_then(|id| id.time())
        .ok_or_else(|| not("`jti` is not a token id of this server"))?;
    if claims.derived_from.len() + 1 != chain.len() {
        return Err(not("the derivation does not match the `act` chain"));
    }
    Ok(SignedToken {
        claims,
        principal,
        grant,
        chain,
        issued,
    })
}

/// Checks that everything a signed token derives from is still in force (steps 1–5 above).
pub(crate) async fn check_standing(
    state: &AppState,
    t: SignedToken,
) -> Result<ActiveToken, Inactive> {
    let now = state.clock.now();
    let SignedToken {
        claims,
        principal,
        grant,
        chain,
        issued,
    } = t;
    let mut keys = vec![claims.cnf.jkt.as_str()];
    keys.extend(claims.derived_from.iter().map(|d| d.jkt.as_str()));
    let mut jtis = vec![claims.jti.as_str()];
    jtis.extend(claims.derived_from.iter().map(|d| d.jti.as_str()));
    let standing = state
        .store
        .token_standing(&StandingQuery {
            grant,
            principal,
            agents: &chain,
            keys: &keys,
            jtis: &jtis,
        })
        .await?;
    // 1.
    if !standing.revoked.is_empty() {
        let own = standing.revoked.iter().find(|(j, _)| j == &claims.jti);
        return Err(match own {
            Some((_, at)) => withdrawn(&standing, &claims, chain[0], *at, "the token was revoked"),
            None => not("a token it derives from was revoked"),
        });
    }
    // 2.
    let g = standing.grant.ok_or_else(|| not("unknown grant"))?;
    let grant_status = g.status.at(g.expires_at, now);
    if grant_status != GrantStatus::Active {
        return Err(not(format!("grant is {grant_status}")));
    }
    if g.principal != principal || chain.last() != Some(&g.agent) {
        return Err(not("the grant does not match the token"));
    }
    // 3.
    match standing.principal {
        Some((HumanStatus::Active, w)) if after_watermark(issued, w) => {}
        _ => return Err(not("the principal is not active, or was deactivated since")),
    }
    // 4.
    for agent in &chain {
        let found = standing.agents.iter().find(|(id, _, _)| id == agent);
        match found {
            Some((_, AgentStatus::Active, w)) if after_watermark(issued, *w) => {}
            _ => {
                return Err(not(format!(
                    "agent `{agent}` is not active, or was suspended since"
                )));
            }
        }
    }
    // 5.
    for (i, (kid, holder)) in keys.iter().zip(&chain).enumerate() {
        let found = standing
            .keys
            .iter()
            .find(|(k, _, h, _)| k == kid && *h == PrincipalId::Agent(*holder));
        match found {
            Some((_, KeyStatus::Active, _, _)) => {}
            // The holder's own key, revoked (not merely retired by rotation).
            Some((_, KeyStatus::Revoked, _, Some(at))) if i == 0 => {
                return Err(withdrawn(
                    &standing,
                    &claims,
                    chain[0],
                    *at,
                    "its key was revoked",
                ));
            }
            _ => {
                return Err(not(format!(
                    "key `{kid}` of `{holder}` is no longer active"
                )));
            }
        }
    }
    Ok(ActiveToken {
        claims,
        principal,
        grant,
        chain,
    })
}
