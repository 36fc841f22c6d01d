//! `POST /oauth2/introspect` (RFC 7662). Only registered resource servers may ask, with
//! `private_key_jwt`; each learns only about tokens whose `aud` is its own audience. An
//! inactive, unknown, foreign or malformed token is exactly `{"active": false}` (§2.2).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use surety_api::oauth::TOKEN_TYPE_DPOP;

use super::access_token::{Inactive, verify_active};
use super::client_auth::{Client, authenticate};
use crate::app::{AppState, INTROSPECT_PATH};
use crate::error::ApiError;
use crate::extract::Form;

/// Token introspection.
#[utoipa::path(
    post,
    path = "/oauth2/introspect",
    tag = "oauth",
    request_body(
        content_type = "application/x-www-form-urlencoded",
        description = "`token=<access token>[&token_type_hint=access_token]`, with `private_key_jwt` client authentication by a registered resource server"
    ),
    responses(
        (status = 200, description = "`{\"active\": false}`, or the active token's claims with `active: true`"),
        (status = 400, description = "`invalid_request` or `unauthorized_client`", body = surety_api::ErrorBody),
        (status = 401, description = "`invalid_client`", body = surety_api::ErrorBody),
    )
)]
pub async fn introspect(State(state): State<AppState>, form: Form) -> Response {
    match answer(&state, &form).await {
        Ok(body) => axum::Json(body).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn answer(state: &AppState, form: &Form) -> Result<Value, ApiError> {
    // A federation peer asking about an authorization grant issued for it.
    if crate::federation::revocation::from_peer(form) {
        return crate::federation::revocation::introspect_for_peer(state, form).await;
    }
    let rs = match authenticate(state, form, INTROSPECT_PATH).await? {
        Client::ResourceServer(rs) => rs,
        Client::Agent(..) => {
            return Err(ApiError::unauthorized_client(
                "only registered resource servers may introspect tokens",
            ));
        }
    };
    let token = form
        .get("token")
        .ok_or_else(|| ApiError::invalid_request("`token` is required"))?;
    let inactive = json!({ "active": false });
    if crate::federation::token::is_federated(token) {
        let answer = crate::federation::token::introspect(state, token, &rs.audience).await?;
        let active = if answer.is_some() { "true" } else { "false" };
        metrics::counter!("surety_introspections_total", "active" => active).increment(1);
        return Ok(answer.unwrap_or(inactive));
    }
    let active = match verify_active(state, token).await {
        Ok(t) => t,
        Err(
            Inactive::Because(why)
            | Inactive::Withdrawn(super::access_token::Withdrawn { why, .. }),
        ) => {
            tracing::debug!(client = %rs.id, reason = %why, "introspection: inactive token");
            metrics::counter!("surety_introspections_total", "active" => "false").increment(1);
            return Ok(inactive);
        }
        Err(Inactive::Error(e)) => return Err(e),
    };
    // A resource server learns nothing about tokens meant for others.
    if active.claims.aud != rs.audience {
        metrics::counter!("surety_introspections_total", "active" => "false").increment(1);
        return Ok(inactive);
    }
    // A one-time approval token is active until it is used.
    if let Some(id) = &active.claims.approval_id {
        let approval = match id.parse() {
            Ok(id) => state.store.get_approval(id).await?,
            Err(_) => None,
        };
        let unused = approval.is_some_and(|a| {
            a.status_at(state.clock.now()) == surety_core::approval::ApprovalStatus::Redeemed
                && a.token_jti.as_deref() == Some(active.claims.jti.as_str())
        });
        if !unused {
            metrics::counter!("surety_introspections_total", "active" => "false").increment(1);
            return Ok(inactive);
        }
    }
    metrics::counter!("surety_introspections_total", "active" => "true").increment(1);
    let c = active.claims;
    let mut body = json!({
        "active": true,
        "scope": c.scope,
        "client_id": c.client_id,
        "sub": c.sub,
        "aud": c.aud,
        "iss": c.iss,
        "exp": c.exp,
        "iat": c.iat,
        "jti": c.jti,
        "token_type": TOKEN_TYPE_DPOP,
        "act": c.act,
        "cnf": c.cnf,
        "grant_id": c.grant_id,
    });
    // RFC 9396 §9.2: the authorization details the token carries.
    if let Some(details) = c.authorization_details {
        body["authorization_details"] = details;
        body["approval_id"] = json!(c.approval_id);
    }
    Ok(body)
}
