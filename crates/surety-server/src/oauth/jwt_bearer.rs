//! The RFC 7523 §2.1 JWT bearer grant for humans: a human's CLI trades an assertion signed
//! by an enrolled device key for a short-lived, DPoP-bound admin access token. With client
//! authentication, the same grant type redeems a federation peer's authorization grant
//! ([`crate::federation::chaining::redeem`]).

use axum::http::HeaderMap;
use serde_json::json;
use surety_api::oauth::{GRANT_TYPE_JWT_BEARER, SCOPE_ADMIN, TOKEN_TYPE_DPOP, TokenResponse};
use surety_core::audit::{Actor, EventKind, NewEvent};
use surety_core::human::HumanStatus;
use surety_core::id::{HumanId, PrincipalId};
use surety_core::key::KeyStatus;
use surety_jose::rfc7523;
use surety_jose::{random_b64, sha256_b64};
use surety_store::AccessTokenRecord;

use crate::app::{AppState, TOKEN_PATH};
use crate::auth::to_time;
use crate::error::ApiError;
use crate::extract::Form;

pub(super) async fn issue(
    state: &AppState,
    headers: &HeaderMap,
    form: &Form,
) -> Result<TokenResponse, ApiError> {
    let now = state.clock.now();
    // With client authentication, the assertion is a federation peer's authorization grant
    // for one of its agents (identity chaining); without, a human's own.
    if form.get("client_assertion").is_some() || form.get("client_assertion_type").is_some() {
        return crate::federation::chaining::redeem(state, headers, form).await;
    }
    if form.get("client_id").is_some() {
        return Err(ApiError::invalid_request(
            "the jwt-bearer grant for humans takes no client authentication",
        ));
    }
    let assertion = form
        .get("assertion")
        .ok_or_else(|| ApiError::invalid_request("`assertion` is required"))?;
    if let Some(scope) = form.get("scope")
        && scope.split(' ').any(|s| s != SCOPE_ADMIN)
    {
        return Err(ApiError::invalid_scope(format!(
            "only the `{SCOPE_ADMIN}` scope can be granted to humans"
        )));
    }

    let proof = super::token_proof(state, headers).await?;

    // RFC 7523 §3: the assertion names the human (`sub`) and is signed by one of their
    // enrolled device keys (`kid`).
    let invalid = |what: String| ApiError::invalid_grant(format!("invalid assertion: {what}"));
    let decoded = rfc7523::decode(assertion).map_err(|e| invalid(e.to_string()))?;
    let subject: HumanId = decoded
        .subject()
        .map_err(|e| invalid(e.to_string()))?
        .parse()
        .map_err(|_| invalid("`sub` must be the id of an enrolled human (`hum_…`)".into()))?;
    let kid = decoded
        .kid()
        .ok_or_else(|| invalid("the header must name the signing device key in `kid`".into()))?;
    let key = state.store.get_key(kid).await?;
    let key = key
        .filter(|k| k.holder == PrincipalId::Human(subject) && k.status == KeyStatus::Active)
        .ok_or_else(|| {
            invalid(format!(
                "`{kid}` is not an active device key of `{subject}`"
            ))
        })?;
    let public = surety_jose::PublicJwk::from_json(&key.jwk).map_err(ApiError::internal)?;
    let audiences = super::assertion_audiences(state, TOKEN_PATH);
    let audiences: Vec<&str> = audiences.iter().map(String::as_str).collect();
    let policy = super::assertion_policy(state, &audiences);
    let verified = decoded
        .verify(&public, &policy, now)
        .map_err(|e| invalid(e.to_string()))?;
    if verified.issuer != verified.subject {
        return Err(invalid(
            "`iss` must equal `sub` (the human signs for themselves)".into(),
        ));
    }
    // The token is bound to the device key itself: the proof must be signed by it too.
    if proof.jkt != key.kid {
        return Err(ApiError::invalid_dpop_proof(
            "the DPoP proof must be signed by the device key that signed the assertion",
        ));
    }
    if !state
        .remember(verified.replay_key.clone(), verified.replay_until)
        .await?
    {
        return Err(invalid(
            "this assertion was already used (`jti` replay)".into(),
        ));
    }
    let human = state.store.get_human(subject).await?;
    if human.as_ref().map(|h| h.status) != Some(HumanStatus::Active) {
        return Err(invalid(format!("`{subject}` is not an active human")));
    }

    let access_token = random_b64(32).map_err(ApiError::internal)?;
    let ttl = to_time(state.config.access_token_ttl);
    let record = AccessTokenRecord {
        token_hash: sha256_b64(access_token.as_bytes()),
        human: subject,
        jkt: proof.jkt.clone(),
        scope: SCOPE_ADMIN.into(),
        issued_at: now,
        expires_at: now + ttl,
    };
    let event = NewEvent::new(EventKind::TokenIssued, Actor::Human(subject), subject, now)
        .human(subject)
        .details(json!({
            "grant_type": GRANT_TYPE_JWT_BEARER,
            "scope": SCOPE_ADMIN,
            "cnf_jkt": proof.jkt,
            "device_key": key.kid,
            "expires_at": record.expires_at.unix_timestamp(),
        }));
    state.store.insert_access_token(&record, &[event]).await?;
    Ok(TokenResponse {
        access_token,
        token_type: TOKEN_TYPE_DPOP.into(),
        expires_in: u64::try_from(ttl.whole_seconds()).unwrap_or(0),
        scope: SCOPE_ADMIN.into(),
        issued_token_type: None,
        authorization_details: None,
    })
}
