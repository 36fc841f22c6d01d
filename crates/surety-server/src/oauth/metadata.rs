//! Authorization server metadata (RFC 8414 §2, also served at the OpenID Connect Discovery
//! path) and the JWK Set of the organisation's signing keys (RFC 7517 §5).

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use surety_api::oauth::{
    GRANT_TYPE_CIBA, GRANT_TYPE_CLIENT_CREDENTIALS, GRANT_TYPE_JWT_BEARER,
    GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_GRANT, TOKEN_TYPE_JWT,
};

use crate::app::{
    AppState, BC_AUTHORIZE_PATH, INTROSPECT_PATH, JWKS_PATH, OPENAPI_PATH, REVOKE_PATH, TOKEN_PATH,
};
use crate::error::{ApiError, DPOP_ALGS};

/// Algorithms accepted on client assertions and DPoP proofs.
fn algs() -> Vec<&'static str> {
    DPOP_ALGS.split(' ').collect()
}

/// The metadata document.
#[must_use]
pub fn document(state: &AppState) -> Value {
    let auth_methods = ["private_key_jwt"];
    json!({
        "issuer": state.issuer.as_ref(),
        "token_endpoint": state.url(TOKEN_PATH),
        "jwks_uri": state.url(JWKS_PATH),
        "introspection_endpoint": state.url(INTROSPECT_PATH),
        "revocation_endpoint": state.url(REVOKE_PATH),
        "response_types_supported": [],
        "grant_types_supported": [GRANT_TYPE_TOKEN_EXCHANGE, GRANT_TYPE_JWT_BEARER, GRANT_TYPE_CLIENT_CREDENTIALS, GRANT_TYPE_CIBA],
        "backchannel_authentication_endpoint": state.url(BC_AUTHORIZE_PATH),
        "backchannel_token_delivery_modes_supported": ["poll", "ping"],
        "backchannel_user_code_parameter_supported": false,
        "authorization_details_types_supported": [surety_core::approval::ACTION_TYPE],
        "token_endpoint_auth_methods_supported": auth_methods,
        "token_endpoint_auth_signing_alg_values_supported": algs(),
        "introspection_endpoint_auth_methods_supported": auth_methods,
        "introspection_endpoint_auth_signing_alg_values_supported": algs(),
        "revocation_endpoint_auth_methods_supported": auth_methods,
        "revocation_endpoint_auth_signing_alg_values_supported": algs(),
        "dpop_signing_alg_values_supported": algs(),
        "token_types_supported": [TOKEN_TYPE_GRANT, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_JWT],
        // OAuth identity and authorization chaining across domains §3.
        "identity_chaining_requested_token_types_supported": [TOKEN_TYPE_JWT],
        "service_documentation": state.url(OPENAPI_PATH),
    })
}

fn cacheable(body: Value) -> Response {
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

/// Authorization server metadata (RFC 8414).
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "oauth",
    responses((status = 200, description = "RFC 8414 metadata"))
)]
pub async fn authorization_server(State(state): State<AppState>) -> Response {
    cacheable(document(&state))
}

/// The same metadata at the OpenID Connect Discovery path.
#[utoipa::path(
    get,
    path = "/.well-known/openid-configuration",
    tag = "oauth",
    responses((status = 200, description = "The RFC 8414 metadata"))
)]
pub async fn openid_configuration(State(state): State<AppState>) -> Response {
    cacheable(document(&state))
}

/// The organisation's public signing keys. A retired key stays listed until every token it
/// signed has expired.
#[utoipa::path(
    get,
    path = "/jwks",
    tag = "oauth",
    responses((status = 200, description = "An RFC 7517 JWK Set"))
)]
pub async fn jwks(State(state): State<AppState>) -> Response {
    match state
        .keys
        .jwks(state.store.as_ref(), state.clock.now())
        .await
    {
        Ok(set) => {
            let mut response = axum::Json(set).into_response();
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            );
            response
        }
        Err(e) => ApiError::internal(e).into_response(),
    }
}

/// OpenID AuthZEN discovery: where the decision point answers.
#[utoipa::path(
    get,
    path = "/.well-known/authzen-configuration",
    tag = "decisions",
    responses((status = 200, description = "AuthZEN policy decision point metadata"))
)]
pub async fn authzen(State(state): State<AppState>) -> Response {
    cacheable(json!({
        "policy_decision_point": state.issuer.as_ref(),
        "access_evaluation_endpoint": state.url("/access/v1/evaluation"),
        "access_evaluations_endpoint": state.url("/access/v1/evaluations"),
    }))
}
