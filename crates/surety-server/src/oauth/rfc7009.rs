//! `POST /oauth2/revoke` (RFC 7009). An agent revokes a token issued to it, or to a
//! sub-agent it delegated to (it is in the token's `act` chain). The token, and every token
//! derived from it, is inactive from the next introspection on. Unknown, malformed and
//! already-invalid tokens are answered `200` (§2.2); a token of another client is refused.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use surety_core::audit::{Actor, EventKind, NewEvent};
use time::OffsetDateTime;

use super::access_token::{Inactive, check_standing, verify_signed};
use super::client_auth::{Client, authenticate};
use crate::app::{AppState, REVOKE_PATH};
use crate::auth::to_time;
use crate::error::ApiError;
use crate::extract::Form;

/// Token revocation.
#[utoipa::path(
    post,
    path = "/oauth2/revoke",
    tag = "oauth",
    request_body(
        content_type = "application/x-www-form-urlencoded",
        description = "`token=<access token>[&token_type_hint=access_token]`, with `private_key_jwt` client authentication by the agent"
    ),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke"),
        (status = 400, description = "`invalid_request` or `unauthorized_client`", body = surety_api::ErrorBody),
        (status = 401, description = "`invalid_client`", body = surety_api::ErrorBody),
    )
)]
pub async fn revoke(State(state): State<AppState>, form: Form) -> Response {
    match answer(&state, &form).await {
        Ok(()) => axum::http::StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn answer(state: &AppState, form: &Form) -> Result<(), ApiError> {
    let now = state.clock.now();
    let agent = match authenticate(state, form, REVOKE_PATH).await? {
        Client::Agent(agent, _) => agent,
        Client::ResourceServer(_) => {
            return Err(ApiError::unauthorized_client(
                "resource servers do not hold tokens to revoke",
            ));
        }
    };
    let token = form
        .get("token")
        .ok_or_else(|| ApiError::invalid_request("`token` is required"))?;
    // §2.1: `token_type_hint` is only a hint; every token Surety issues to agents is an
    // access token, so it is ignored.
    let signed = match verify_signed(state, token).await {
        Ok(t) => t,
        // §2.2: an invalid token needs no revoking.
        Err(Inactive::Because(_) | Inactive::Withdrawn(_)) => return Ok(()),
        Err(Inactive::Error(e)) => return Err(e),
    };
    // Whose token it is is checked before whether it is still active, so that the answer
    // tells another agent nothing about the token's standing.
    if !signed.chain.contains(&agent.id) {
        return Err(ApiError::unauthorized_client(
            "this token was not issued to you or to a sub-agent you delegated to",
        ));
    }
    let active = match check_standing(state, signed).await {
        Ok(t) => t,
        Err(Inactive::Because(_) | Inactive::Withdrawn(_)) => return Ok(()),
        Err(Inactive::Error(e)) => return Err(e),
    };
    // Kept past `exp` by the clock skew, so that no node whose clock is a little behind
    // accepts the token once the revocation is purged.
    let expires_at = OffsetDateTime::from_unix_timestamp(active.claims.exp)
        .map_err(ApiError::internal)?
        + to_time(state.config.clock_skew);
    let event = NewEvent::new(
        EventKind::TokenRevoked,
        Actor::Agent(agent.id),
        &active.claims.jti,
        now,
    )
    .agent(active.chain[0])
    .human(active.principal)
    .details(json!({
        "grant_id": active.claims.grant_id,
        "client_id": active.claims.client_id,
        "exp": active.claims.exp,
    }));
    state
        .store
        .revoke_token(&active.claims.jti, expires_at, now, &[event])
        .await?;
    Ok(())
}
