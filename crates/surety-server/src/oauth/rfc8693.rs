//! RFC 8693 token exchange: an agent trades a grant for a DPoP-bound RFC 9068 access token
//! (`sub` = the principal, `act.sub` = the agent), or a parent agent trades its own token
//! for a sub-agent's (`requested_actor`), attenuated and nested.
//!
//! Steps, in order:
//! 1. the DPoP proof (RFC 9449 §4.3, with a server nonce when configured);
//! 2. `private_key_jwt` client authentication by an active agent (RFC 7523 §2.2);
//! 3. the request parameters (§2.1): `subject_token`, `subject_token_type`, no
//!    `actor_token`, `requested_token_type` an access token, `scope`, `resource`/`audience`;
//! 4. the subject: a grant of this agent, or an active access token held by this agent and
//!    proved with the key it is bound to;
//! 5. the pure minting rules of `surety_core::delegation` (grant in force, principal and
//!    actor active, scope ⊆, audience ∈, depth, expiry);
//! 6. signing, auditing, answering (§2.2.1).

use axum::http::HeaderMap;
use serde_json::json;
use surety_api::oauth::{
    GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_GRANT, TOKEN_TYPE_JWT,
    TokenResponse,
};
use surety_core::agent::Agent;
use surety_core::audit::{Actor, EventKind, NewEvent};
use surety_core::delegation::{self, Hop, MintError, Minted, Parent, Requested, Standing};
use surety_core::human::HumanStatus;
use surety_core::id::{AgentId, GrantId, PrincipalId, TokenId};
use surety_core::key::KeyStatus;
use surety_core::scope::ScopeSet;
use surety_jose::rfc9068::{AccessTokenClaims, Act, Cnf, Derivation};
use surety_store::{ActivityKind, AgentActivity};

use super::access_token::{Inactive, check_standing, verify_signed};
use super::client_auth::{Client, authenticate};
use crate::app::{AppState, TOKEN_PATH};
use crate::auth::to_time;
use crate::error::ApiError;
use crate::extract::Form;

impl From<MintError> for ApiError {
    fn from(e: MintError) -> Self {
        match e {
            MintError::InvalidGrant(m) => Self::invalid_grant(m),
            MintError::InvalidScope(m) => Self::invalid_scope(m),
            MintError::InvalidTarget(m) => Self::invalid_target(m),
        }
    }
}

async fn principal_status(
    state: &AppState,
    principal: surety_core::id::HumanId,
) -> Result<HumanStatus, ApiError> {
    Ok(state
        .store
        .get_human(principal)
        .await?
        .map_or(HumanStatus::Deactivated, |h| h.status))
}

/// The newest active key of `agent`: what a token for it is bound to.
async fn current_key(state: &AppState, agent: AgentId) -> Result<Option<String>, ApiError> {
    let keys = state.store.list_keys(PrincipalId::Agent(agent)).await?;
    Ok(keys
        .into_iter()
        .rev()
        .find(|k| k.status == KeyStatus::Active)
        .map(|k| k.kid))
}

pub(super) async fn exchange(
    state: &AppState,
    headers: &HeaderMap,
    form: &Form,
) -> Result<TokenResponse, ApiError> {
    let now = state.clock.now();
    // 1.
    let proof = super::token_proof(state, headers).await?;
    // 2.
    let (client, client_keys) = match authenticate(state, form, TOKEN_PATH).await? {
        Client::Agent(agent, keys) => (agent, keys),
        Client::ResourceServer(_) => {
            return Err(ApiError::unauthorized_client(
                "resource servers may not exchange tokens",
            ));
        }
    };
    // The token is bound to the agent's own key: the proof must be made with one.
    if !client_keys.contains(&proof.jkt) {
        return Err(ApiError::invalid_dpop_proof(
            "the DPoP proof must be signed by an active key registered to the agent",
        ));
    }
    // A JWT authorization grant for a federation peer (identity chaining across domains).
    if form.get("requested_token_type") == Some(TOKEN_TYPE_JWT) {
        return crate::federation::chaining::authorization_grant(state, form, &client, &proof.jkt)
            .await;
    }
    // 3.
    let subject_token = form
        .get("subject_token")
        .ok_or_else(|| ApiError::invalid_request("`subject_token` is required"))?;
    let subject_type = form
        .get("subject_token_type")
        .ok_or_else(|| ApiError::invalid_request("`subject_token_type` is required"))?;
    if form.get("actor_token").is_some() || form.get("actor_token_type").is_some() {
        return Err(ApiError::invalid_request(
            "`actor_token` is not supported: the authenticated client is the actor; delegate to a sub-agent with `requested_actor`",
        ));
    }
    if let Some(t) = form.get("requested_token_type")
        && t != TOKEN_TYPE_ACCESS_TOKEN
    {
        return Err(ApiError::invalid_request(format!(
            "`requested_token_type` must be `{TOKEN_TYPE_ACCESS_TOKEN}` (or `{TOKEN_TYPE_JWT}` for a federation peer)"
        )));
    }
    let scope = form
        .get("scope")
        .map(|s| ScopeSet::parse("scope", s))
        .transpose()
        .map_err(|e| ApiError::invalid_scope(e.to_string()))?;
    let mut audiences = form.get_all("resource").to_vec();
    audiences.extend_from_slice(form.get_all("audience"));
    let requested = Requested {
        scope: scope.as_ref(),
        audiences: &audiences,
    };
    let ttl = to_time(state.config.token_ttl);
    // 4–5.
    let (minted, bound_to, derived_from) = match subject_type {
        TOKEN_TYPE_GRANT => {
            if form.get("requested_actor").is_some() {
                return Err(ApiError::invalid_request(
                    "`requested_actor` delegates an access token to a sub-agent; it does not apply to a grant",
                ));
            }
            let id: GrantId = subject_token
                .parse()
                .map_err(|_| ApiError::invalid_grant("`subject_token` is not a grant id"))?;
            let grant = state
                .store
                .get_grant(id)
                .await?
                .ok_or_else(|| ApiError::invalid_grant(format!("unknown grant `{id}`")))?;
            let standing = Standing {
                principal: principal_status(state, grant.principal).await?,
                actor: client.status,
            };
            let minted = delegation::from_grant(&grant, client.id, standing, &requested, now, ttl)?;
            (minted, proof.jkt.clone(), Vec::new())
        }
        TOKEN_TYPE_ACCESS_TOKEN => {
            sub_agent(state, &client, subject_token, &proof.jkt, form, &requested).await?
        }
        other => {
            return Err(ApiError::invalid_request(format!(
                "`subject_token_type` `{}` is not supported: use `{TOKEN_TYPE_GRANT}` or `{TOKEN_TYPE_ACCESS_TOKEN}`",
                other.chars().take(100).collect::<String>()
            )));
        }
    };
    // 6.
    let mut claims = minted_claims(state, &minted, bound_to, now)?;
    claims.derived_from = derived_from;
    let access_token = super::sign_token(state, &claims, false).await?;
    let event = token_event(&client, &minted, &claims, now);
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
    metrics::counter!("surety_tokens_issued_total", "kind" => if minted.depth() == 0 { "grant" } else { "sub_agent" }).increment(1);
    Ok(super::access_token_response(access_token, claims))
}

/// The claims of a token minted as `minted` decided, bound to `jkt` (the authorization
/// grant for a federation peer starts from them too).
pub(crate) fn minted_claims(
    state: &AppState,
    minted: &Minted,
    jkt: String,
    now: time::OffsetDateTime,
) -> Result<AccessTokenClaims, ApiError> {
    let chain: Vec<String> = minted.chain.iter().map(ToString::to_string).collect();
    let act = Act::from_chain(&chain).ok_or_else(|| ApiError::internal("empty act chain"))?;
    Ok(AccessTokenClaims {
        iss: state.issuer.to_string(),
        sub: minted.principal.to_string(),
        sub_id: None,
        aud: minted.audience.clone(),
        client_id: chain[0].clone(),
        iat: now.unix_timestamp(),
        exp: minted.expires_at.unix_timestamp(),
        jti: TokenId::new(now).to_string(),
        scope: minted.scope.to_string(),
        act,
        cnf: Cnf { jkt },
        grant_id: minted.grant.to_string(),
        derived_from: Vec::new(),
        authorization_details: None,
        approval_id: None,
        resource: None,
        constraints: None,
    })
}

/// A sub-agent's token from the client's own: the subject token must be active, held by
/// the client (`act.sub`) and proved with its key (`cnf.jkt`), and `requested_actor` must
/// be a registered, active agent with an active key.
async fn sub_agent(
    state: &AppState,
    client: &Agent,
    subject_token: &str,
    proof_jkt: &str,
    form: &Form,
    requested: &Requested<'_>,
) -> Result<(Minted, String, Vec<Derivation>), ApiError> {
    let now = state.clock.now();
    let actor: AgentId = form
        .get("requested_actor")
        .ok_or_else(|| {
            ApiError::invalid_request(
                "`requested_actor` (the sub-agent) is required with an access token subject",
            )
        })?
        .parse()
        .map_err(|e: surety_core::id::InvalidId| {
            ApiError::invalid_request(format!("`requested_actor`: {e}"))
        })?;
    // RFC 8693 §2.2.2: a subject token that is invalid for any reason is `invalid_request`.
    // Whose token it is is checked first, on what the token says about itself, so that an
    // agent learns nothing about tokens that are not its own; only then its standing.
    let unusable = || {
        ApiError::invalid_request(
            "the subject token is not an active access token held by the client and bound to the proof's key",
        )
    };
    let signed = match verify_signed(state, subject_token).await {
        Ok(t) => t,
        Err(Inactive::Because(_) | Inactive::Withdrawn(_)) => return Err(unusable()),
        Err(Inactive::Error(e)) => return Err(e),
    };
    // A one-time approval token is evidence for one action, never authority to delegate.
    if signed.claims.cnf.jkt != proof_jkt
        || signed.chain.first() != Some(&client.id)
        || signed.claims.approval_id.is_some()
    {
        return Err(unusable());
    }
    let parent = match check_standing(state, signed).await {
        Ok(t) => t,
        Err(
            Inactive::Because(why)
            | Inactive::Withdrawn(super::access_token::Withdrawn { why, .. }),
        ) => {
            return Err(ApiError::invalid_request(format!(
                "the subject token is not active: {why}"
            )));
        }
        Err(Inactive::Error(e)) => return Err(e),
    };
    let grant = state
        .store
        .get_grant(parent.grant)
        .await?
        .ok_or_else(|| ApiError::invalid_grant("the subject token's grant is unknown"))?;
    let sub_agent =
        state.store.get_agent(actor).await?.ok_or_else(|| {
            ApiError::invalid_grant(format!("`{actor}` is not a registered agent"))
        })?;
    let bound_to = current_key(state, actor).await?.ok_or_else(|| {
        ApiError::invalid_grant(format!("`{actor}` has no active key to bind a token to"))
    })?;
    let standing = Standing {
        principal: principal_status(state, grant.principal).await?,
        actor: sub_agent.status,
    };
    let scope = ScopeSet::parse("scope", &parent.claims.scope)
        .map_err(|_| ApiError::invalid_grant("the subject token's scope is malformed"))?;
    let p = Parent {
        principal: parent.principal,
        grant: parent.grant,
        scope,
        audience: parent.claims.aud.clone(),
        chain: parent.chain.clone(),
        expires_at: time::OffsetDateTime::from_unix_timestamp(parent.claims.exp)
            .map_err(|_| ApiError::invalid_grant("the subject token's `exp` is out of range"))?,
    };
    let ttl = to_time(state.config.token_ttl);
    let minted = delegation::for_sub_agent(
        &p,
        &grant,
        Hop {
            client: client.id,
            actor,
        },
        standing,
        requested,
        now,
        ttl,
    )?;
    let mut derived_from = vec![Derivation {
        jti: parent.claims.jti.clone(),
        jkt: parent.claims.cnf.jkt.clone(),
    }];
    derived_from.extend(parent.claims.derived_from.iter().cloned());
    Ok((minted, bound_to, derived_from))
}

fn token_event(
    client: &Agent,
    minted: &Minted,
    claims: &AccessTokenClaims,
    now: time::OffsetDateTime,
) -> NewEvent {
    NewEvent::new(
        EventKind::TokenIssued,
        Actor::Agent(client.id),
        &claims.jti,
        now,
    )
    .agent(minted.chain[0])
    .human(minted.principal)
    .details(json!({
        "grant_type": GRANT_TYPE_TOKEN_EXCHANGE,
        "grant_id": claims.grant_id,
        "scope": claims.scope,
        "aud": claims.aud,
        "act": claims.act,
        "cnf_jkt": claims.cnf.jkt,
        "exp": claims.exp,
        "depth": minted.depth(),
        "derived_from": claims.derived_from.first().map(|d| &d.jti),
    }))
}
