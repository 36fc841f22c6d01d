//! `POST /v1/enroll`: a human redeems a one-time code from their own machine. The device
//! key is the key of the request's DPoP proof — the proof's signature shows the caller holds
//! its private half, which never leaves that machine.

use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::json;
use surety_api::admin::{EnrollRequest, EnrollResponse};
use surety_core::audit::{Actor, EventKind, NewEvent};
use surety_core::id::PrincipalId;
use surety_jose::rfc9449::NonceCheck;
use surety_jose::sha256_b64;
use surety_store::StoreError;

use super::key_record;
use crate::app::{AppState, ENROLL_PATH};
use crate::auth::ProofFailure;
use crate::error::ApiError;
use crate::extract::Json;

/// Enrolls the DPoP proof's key as a device key of the code's human.
#[utoipa::path(post, path = "/v1/enroll", tag = "humans", request_body = EnrollRequest,
    params(("DPoP" = String, Header, description = "A DPoP proof (RFC 9449) signed by the device key to enroll")),
    responses(
        (status = 201, body = EnrollResponse),
        (status = 400, description = "unknown, used or expired code; invalid proof", body = surety_api::ErrorBody),
        (status = 409, description = "key already registered, or human not active", body = surety_api::ErrorBody),
    ))]
pub async fn enroll(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<EnrollRequest>,
) -> Result<(StatusCode, axum::Json<EnrollResponse>), ApiError> {
    let proof = state
        .verify_proof(
            &headers,
            &Method::POST,
            ENROLL_PATH,
            None,
            None,
            NonceCheck::NotRequired,
        )
        .await
        .map_err(|f| match f {
            ProofFailure::Store(e) => e,
            other => ApiError::invalid_dpop_proof(other.description()),
        })?;
    let now = state.clock.now();
    let code_hash = sha256_b64(body.code.trim().as_bytes());
    let enroll = |human| {
        let key = key_record(&proof.key, PrincipalId::Human(human), now);
        let event = NewEvent::new(
            EventKind::HumanKeyEnrolled,
            Actor::Human(human),
            &key.kid,
            now,
        )
        .human(human)
        .details(json!({"alg": key.alg}));
        (key, vec![event])
    };
    let human = state
        .store
        .redeem_enrollment(&code_hash, now, &enroll)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(m) => ApiError::invalid_request(m),
            other => other.into(),
        })?;
    Ok((
        StatusCode::CREATED,
        axum::Json(EnrollResponse {
            human_id: human,
            kid: proof.jkt,
        }),
    ))
}
