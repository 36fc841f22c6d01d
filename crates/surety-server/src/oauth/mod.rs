//! The OAuth 2.0 authorization server: one module per protocol.
//!
//! - `POST /oauth2/token` dispatches on `grant_type`: RFC 7523 §2.1 `jwt-bearer` for humans'
//!   admin tokens ([`jwt_bearer`]), RFC 8693 token exchange for agents ([`rfc8693`]), the
//!   OpenID CIBA grant for approved step-ups ([`ciba`]), `client_credentials` for resource
//!   servers ([`client_credentials`]).
//! - `POST /oauth2/bc-authorize`: CIBA backchannel authentication ([`ciba`]).
//! - `POST /oauth2/introspect` (RFC 7662) and `POST /oauth2/revoke` (RFC 7009).
//! - Metadata (RFC 8414) and `GET /jwks` (RFC 7517) in [`metadata`].
//!
//! Agent access tokens are RFC 9068 JWTs; [`access_token`] decides whether one is active.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use surety_api::oauth::{
    GRANT_TYPE_CIBA, GRANT_TYPE_CLIENT_CREDENTIALS, GRANT_TYPE_JWT_BEARER,
    GRANT_TYPE_TOKEN_EXCHANGE, TokenResponse,
};
use surety_jose::rfc7523::AssertionPolicy;
use surety_jose::rfc9068::{self, AccessTokenClaims};
use surety_jose::rfc9449::{NonceCheck, VerifiedProof};

use crate::app::{AppState, TOKEN_PATH};
use crate::auth::{ProofFailure, to_time};
use crate::error::ApiError;
use crate::extract::Form;

pub(crate) mod access_token;
pub(crate) mod ciba;
pub(crate) mod client_auth;
mod client_credentials;
mod jwt_bearer;
pub(crate) mod metadata;
pub(crate) mod rfc7009;
pub(crate) mod rfc7662;
pub(crate) mod rfc8693;

/// Token endpoint.
#[utoipa::path(
    post,
    path = "/oauth2/token",
    tag = "oauth",
    request_body(
        content_type = "application/x-www-form-urlencoded",
        description = "Agents: RFC 8693 token exchange — `grant_type=urn:ietf:params:oauth:grant-type:token-exchange`, \
            `subject_token` (a grant id, or an access token for a sub-agent with `requested_actor`), `subject_token_type`, \
            optional `scope`, `resource`/`audience`, and `private_key_jwt` client authentication \
            (`client_assertion_type`, `client_assertion`). Agents redeeming an approved step-up: OpenID CIBA \
            `grant_type=urn:openid:params:grant-type:ciba&auth_req_id=…` with the same client authentication. \
            Resource servers: `client_credentials` with `scope=decisions`. \
            Humans: RFC 7523 `grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>`. \
            Always with a `DPoP` header."
    ),
    responses(
        (status = 200, description = "A DPoP-bound access token", body = TokenResponse),
        (status = 400, description = "`invalid_request`, `invalid_grant`, `invalid_scope`, `invalid_target`, `unsupported_grant_type`, `invalid_dpop_proof`, `use_dpop_nonce`; for the CIBA grant `authorization_pending`, `slow_down`, `expired_token`, `access_denied`", body = surety_api::ErrorBody),
        (status = 401, description = "`invalid_client`: client authentication failed", body = surety_api::ErrorBody),
    )
)]
pub async fn token(State(state): State<AppState>, headers: HeaderMap, form: Form) -> Response {
    let now = state.clock.now();
    let nonce = state.config.dpop_nonce.then(|| state.nonces.current(now));
    let result = match form.get("grant_type") {
        Some(GRANT_TYPE_JWT_BEARER) => jwt_bearer::issue(&state, &headers, &form).await,
        Some(GRANT_TYPE_TOKEN_EXCHANGE) => rfc8693::exchange(&state, &headers, &form).await,
        Some(GRANT_TYPE_CIBA) => ciba::redeem(&state, &headers, &form).await,
        Some(GRANT_TYPE_CLIENT_CREDENTIALS) => {
            client_credentials::issue(&state, &headers, &form).await
        }
        Some(other) => Err(ApiError::unsupported_grant_type(format!(
            "grant type `{}` is not supported",
            other.chars().take(100).collect::<String>()
        ))),
        None => Err(ApiError::invalid_request("`grant_type` is required")),
    };
    match result {
        Ok(body) => {
            let mut response = axum::Json(body).into_response();
            let h = response.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if let Some(v) = nonce.and_then(|n| HeaderValue::from_str(&n).ok()) {
                h.insert("dpop-nonce", v);
            }
            response
        }
        Err(err) => {
            metrics::counter!("surety_token_errors_total", "error" => err.code()).increment(1);
            err.with_nonce(nonce).into_response()
        }
    }
}

/// The DPoP proof of a token request (RFC 9449 §5), checked before anything else so that a
/// nonce challenge comes first; its `jti` is recorded as soon as it is valid.
pub(crate) async fn token_proof(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<VerifiedProof, ApiError> {
    let now = state.clock.now();
    let nonces = &state.nonces;
    let is_valid_nonce = |n: &str| nonces.is_valid(n, now);
    let nonce_check = if state.config.dpop_nonce {
        NonceCheck::Required(&is_valid_nonce)
    } else {
        NonceCheck::NotRequired
    };
    state
        .verify_proof(headers, &Method::POST, TOKEN_PATH, None, None, nonce_check)
        .await
        .map_err(|f| match f {
            ProofFailure::UseNonce => ApiError::use_dpop_nonce(state.nonces.current(now)),
            ProofFailure::Store(e) => e,
            other => ApiError::invalid_dpop_proof(other.description()),
        })
}

/// Signs `claims` with the organisation's current key: as an access token (`at+jwt`), or
/// as an identity-chaining authorization grant for a peer when `grant` is set.
pub(crate) async fn sign_token(
    state: &AppState,
    claims: &AccessTokenClaims,
    grant: bool,
) -> Result<String, ApiError> {
    let signer = state
        .keys
        .signer(state.store.as_ref(), state.clock.now())
        .await
        .map_err(ApiError::internal)?;
    let signed = if grant {
        rfc9068::sign_authorization_grant(claims, &signer.key, &signer.kid)
    } else {
        rfc9068::sign(claims, &signer.key, &signer.kid)
    };
    signed.map_err(ApiError::internal)
}

/// The token endpoint's answer for a DPoP-bound access token minted by token exchange
/// (RFC 8693 §2.2.1) or a peer's authorization grant.
pub(crate) fn access_token_response(
    access_token: String,
    claims: AccessTokenClaims,
) -> TokenResponse {
    TokenResponse {
        access_token,
        token_type: surety_api::oauth::TOKEN_TYPE_DPOP.into(),
        expires_in: u64::try_from(claims.exp - claims.iat).unwrap_or(0),
        scope: claims.scope,
        issued_token_type: Some(surety_api::oauth::TOKEN_TYPE_ACCESS_TOKEN.into()),
        authorization_details: None,
    }
}

/// The `aud` values an assertion sent to `endpoint` may carry: the endpoint, the token
/// endpoint, or the issuer (RFC 7523 §3 and its revision, which settles on the issuer).
pub(crate) fn assertion_audiences(state: &AppState, endpoint: &str) -> Vec<String> {
    let mut audiences = vec![
        state.url(endpoint),
        state.url(TOKEN_PATH),
        state.issuer.to_string(),
        format!("{}/", state.issuer),
    ];
    audiences.dedup();
    audiences
}

/// How assertions are checked.
pub(crate) fn assertion_policy<'a>(
    state: &AppState,
    audiences: &'a [&'a str],
) -> AssertionPolicy<'a> {
    AssertionPolicy {
        audiences,
        max_lifetime: to_time(state.config.assertion_max_lifetime),
        max_skew: to_time(state.config.clock_skew),
    }
}
