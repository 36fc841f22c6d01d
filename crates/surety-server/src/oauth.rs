//! `POST /oauth2/token`. This version serves the RFC 7523 §2.1 JWT bearer grant, by which a
//! human's CLI trades an assertion signed by an enrolled device key for a short-lived,
//! DPoP-bound admin access token. Other grant types are refused with
//! `unsupported_grant_type`.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use surety_api::oauth::{GRANT_TYPE_JWT_BEARER, SCOPE_ADMIN, TOKEN_TYPE_DPOP, TokenResponse};
use surety_core::audit::{Actor, EventKind, NewEvent};
use surety_core::human::HumanStatus;
use surety_core::id::{HumanId, PrincipalId};
use surety_core::key::KeyStatus;
use surety_jose::rfc7523::{self, AssertionPolicy};
use surety_jose::rfc9449::NonceCheck;
use surety_jose::{random_b64, sha256_b64};
use surety_store::{AccessTokenRecord, StoreError};

use crate::app::{AppState, TOKEN_PATH};
use crate::auth::{ProofFailure, to_time};
use crate::error::ApiError;
use crate::extract::Form;

/// Token endpoint.
#[utoipa::path(
    post,
    path = "/oauth2/token",
    tag = "oauth",
    request_body(
        content_type = "application/x-www-form-urlencoded",
        description = "`grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>[&scope=admin]`, with a `DPoP` header"
    ),
    responses(
        (status = 200, description = "A DPoP-bound access token", body = TokenResponse),
        (status = 400, description = "`invalid_request`, `invalid_grant`, `invalid_scope`, `unsupported_grant_type`, `invalid_dpop_proof` or `use_dpop_nonce`", body = surety_api::ErrorBody),
    )
)]
pub async fn token(State(state): State<AppState>, headers: HeaderMap, form: Form) -> Response {
    let now = state.clock.now();
    let nonce = state.config.dpop_nonce.then(|| state.nonces.current(now));
    match issue(&state, &headers, &form).await {
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

async fn issue(
    state: &AppState,
    headers: &HeaderMap,
    form: &Form,
) -> Result<TokenResponse, ApiError> {
    let now = state.clock.now();
    match form.get("grant_type") {
        Some(GRANT_TYPE_JWT_BEARER) => {}
        Some(other) => {
            return Err(ApiError::unsupported_grant_type(format!(
                "grant type `{}` is not supported",
                other.chars().take(100).collect::<String>()
            )));
        }
        None => return Err(ApiError::invalid_request("`grant_type` is required")),
    }
    if form.get("client_assertion").is_some() || form.get("client_id").is_some() {
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

    // RFC 9449 §5: the proof is checked first, so that a nonce challenge comes before any
    // other work; its `jti` is recorded as soon as it is valid.
    let nonces = &state.nonces;
    let is_valid_nonce = |n: &str| nonces.is_valid(n, now);
    let nonce_check = if state.config.dpop_nonce {
        NonceCheck::Required(&is_valid_nonce)
    } else {
        NonceCheck::NotRequired
    };
    let proof = state
        .verify_proof(headers, &Method::POST, TOKEN_PATH, None, None, nonce_check)
        .await
        .map_err(|f| match f {
            ProofFailure::UseNonce => ApiError::use_dpop_nonce(state.nonces.current(now)),
            ProofFailure::Store(e) => e.into(),
            other => ApiError::invalid_dpop_proof(other.description()),
        })?;

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
    let token_endpoint = state.url(TOKEN_PATH);
    let issuer_slash = format!("{}/", state.issuer);
    let audiences = [
        token_endpoint.as_str(),
        state.issuer.as_ref(),
        issuer_slash.as_str(),
    ];
    let policy = AssertionPolicy {
        audiences: &audiences,
        max_lifetime: to_time(state.config.assertion_max_lifetime),
        max_skew: to_time(state.config.clock_skew),
    };
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
    match state
        .store
        .remember(&verified.replay_key, verified.replay_until, now)
        .await
    {
        Ok(()) => {}
        Err(StoreError::Replay) => {
            return Err(invalid(
                "this assertion was already used (`jti` replay)".into(),
            ));
        }
        Err(e) => return Err(e.into()),
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
    })
}
