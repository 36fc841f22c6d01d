//! RFC 6749 §4.4 client credentials, for registered resource servers: `private_key_jwt`
//! plus a DPoP proof by the resource server's registered key → a short-lived DPoP-bound
//! token with the `decisions` scope, for the decision endpoints.

use axum::http::HeaderMap;
use serde_json::json;
use surety_api::oauth::{
    GRANT_TYPE_CLIENT_CREDENTIALS, SCOPE_DECISIONS, TOKEN_TYPE_DPOP, TokenResponse,
};
use surety_core::audit::{Actor, EventKind, NewEvent};
use surety_jose::{random_b64, sha256_b64};
use surety_store::ClientTokenRecord;

use super::client_auth::{Client, authenticate};
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
    let proof = super::token_proof(state, headers).await?;
    let rs = match authenticate(state, form, TOKEN_PATH).await? {
        Client::ResourceServer(rs) => rs,
        Client::Agent(..) => {
            return Err(ApiError::unauthorized_client(
                "agents act for humans: use token exchange with a grant",
            ));
        }
    };
    if let Some(scope) = form.get("scope")
        && scope.split(' ').any(|s| s != SCOPE_DECISIONS)
    {
        return Err(ApiError::invalid_scope(format!(
            "resource servers may only be granted `{SCOPE_DECISIONS}`"
        )));
    }
    // The token is bound to the resource server's registered key.
    if proof.jkt != rs.kid {
        return Err(ApiError::invalid_dpop_proof(
            "the DPoP proof must be signed by the resource server's registered key",
        ));
    }
    let token = random_b64(32).map_err(ApiError::internal)?;
    let ttl = to_time(state.config.access_token_ttl);
    let record = ClientTokenRecord {
        token_hash: sha256_b64(token.as_bytes()),
        client: rs.id,
        jkt: proof.jkt.clone(),
        scope: SCOPE_DECISIONS.into(),
        issued_at: now,
        expires_at: now + ttl,
    };
    let event = NewEvent::new(EventKind::TokenIssued, Actor::System, rs.id, now).details(json!({
        "grant_type": GRANT_TYPE_CLIENT_CREDENTIALS,
        "client_id": rs.id,
        "scope": SCOPE_DECISIONS,
        "cnf_jkt": proof.jkt,
        "expires_at": record.expires_at.unix_timestamp(),
    }));
    state.store.insert_client_token(&record, &[event]).await?;
    Ok(TokenResponse {
        access_token: token,
        token_type: TOKEN_TYPE_DPOP.into(),
        expires_in: u64::try_from(ttl.whole_seconds()).unwrap_or(0),
        scope: SCOPE_DECISIONS.into(),
        issued_token_type: None,
        authorization_details: None,
    })
}
