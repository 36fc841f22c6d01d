//! Who is calling. Admin API calls carry a DPoP-bound access token (`Authorization: DPoP
//! <token>` plus a `DPoP` proof with `ath`); every check of RFC 9449 §4.3 and §7 is made,
//! the proof's `jti` is recorded, and the token's human must still be active.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use surety_core::access::Caller;
use surety_core::human::HumanStatus;
use surety_core::id::PrincipalId;
use surety_core::key::KeyStatus;
use surety_jose::rfc9449::{self, NonceCheck, ProofContext, ProofPolicy, VerifiedProof};
use surety_jose::{JoseError, sha256_b64};

use crate::app::AppState;
use crate::error::ApiError;

/// All values of the `DPoP` header; a non-text value is an error.
pub fn dpop_headers(headers: &HeaderMap) -> Result<Vec<&str>, JoseError> {
    headers
        .get_all("dpop")
        .iter()
        .map(|v| {
            v.to_str()
                .map_err(|_| JoseError::Malformed("the DPoP header is not text"))
        })
        .collect()
}

fn count_failure(reason: &'static str) {
    metrics::counter!("surety_auth_failures_total", "reason" => reason).increment(1);
}

impl AppState {
    pub(crate) fn proof_policy(&self) -> ProofPolicy {
        ProofPolicy {
            max_age: to_time(self.config.dpop_max_age),
            max_skew: to_time(self.config.clock_skew),
        }
    }

    /// Checks the DPoP proof of a request and records its `jti`.
    pub(crate) async fn verify_proof(
        &self,
        headers: &HeaderMap,
        method: &Method,
        path: &str,
        access_token: Option<&str>,
        bound_jkt: Option<&str>,
        nonce: NonceCheck<'_>,
    ) -> Result<VerifiedProof, ProofFailure> {
        let now = self.clock.now();
        let uri = self.url(path);
        let ctx = ProofContext {
            method: method.as_str(),
            uri: &uri,
            access_token,
            bound_jkt,
        };
        let values = dpop_headers(headers).map_err(ProofFailure::Invalid)?;
        let proof = rfc9449::validate(&values, &ctx, &self.proof_policy(), nonce, now).map_err(
            |e| match e {
                JoseError::UseNonce => ProofFailure::UseNonce,
                other => ProofFailure::Invalid(other),
            },
        )?;
        // RFC 9449 §11.1: a proof is accepted once.
        match self
            .remember(proof.replay_key.clone(), proof.replay_until)
            .await
        {
            Ok(true) => Ok(proof),
            Ok(false) => Err(ProofFailure::Replayed),
            Err(e) => Err(ProofFailure::Store(e)),
        }
    }
}

/// Why a DPoP proof was refused.
#[derive(Debug)]
pub(crate) enum ProofFailure {
    /// A check of RFC 9449 §4.3 failed.
    Invalid(JoseError),
    /// A nonce is required (or the one sent is stale).
    UseNonce,
    /// The proof's `jti` was seen before.
    Replayed,
    /// The replay cache could not be consulted.
    Store(ApiError),
}

impl ProofFailure {
    pub(crate) fn description(&self) -> String {
        match self {
            Self::Invalid(e) => format!("invalid DPoP proof: {e}"),
            Self::UseNonce => "a DPoP nonce is required".into(),
            Self::Replayed => "the DPoP proof was already used (jti replay)".into(),
            Self::Store(_) => "internal error".into(),
        }
    }
}

pub(crate) fn to_time(d: std::time::Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

/// The authenticated human behind an admin API call.
#[derive(Debug, Clone, Copy)]
pub struct AdminCaller(pub Caller);

fn bearer_parts(headers: &HeaderMap) -> Result<(String, String), ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        count_failure("missing_token");
        return Err(ApiError::unauthenticated("an access token is required"));
    };
    // RFC 6750 §3.1: a malformed request is `invalid_request` (400).
    if values.next().is_some() {
        count_failure("malformed_token");
        return Err(ApiError::invalid_request(
            "exactly one Authorization header is allowed",
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| ApiError::invalid_request("the Authorization header is not text"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    Ok((scheme.to_owned(), token.trim().to_owned()))
}

/// The DPoP-bound access token of a request (`Authorization: DPoP <token>`), with the
/// RFC 6750 §3.1 answers to everything else.
fn presented_dpop_token(parts: &Parts) -> Result<String, ApiError> {
    let (scheme, token) = bearer_parts(&parts.headers)?;
    if scheme.eq_ignore_ascii_case("bearer") {
        count_failure("bearer_scheme");
        return Err(ApiError::invalid_token(
            "this API accepts only DPoP-bound tokens: use `Authorization: DPoP <token>` with a DPoP proof",
        ));
    }
    if !scheme.eq_ignore_ascii_case("dpop") {
        // An unsupported scheme counts as no credentials at all (RFC 6750 §3.1).
        count_failure("missing_token");
        return Err(ApiError::unauthenticated(
            "an access token is required (DPoP scheme)",
        ));
    }
    if token.is_empty() || token.contains(' ') {
        count_failure("malformed_token");
        return Err(ApiError::invalid_request(
            "the DPoP authorization value must be one token",
        ));
    }
    Ok(token)
}

/// Checks the request's DPoP proof for `token`, bound to `jkt` (RFC 9449 §7).
async fn proven(state: &AppState, parts: &Parts, token: &str, jkt: &str) -> Result<(), ApiError> {
    let proof = state
        .verify_proof(
            &parts.headers,
            &parts.method,
            parts.uri.path(),
            Some(token),
            Some(jkt),
            NonceCheck::NotRequired,
        )
        .await;
    if let Err(failure) = proof {
        count_failure("invalid_dpop_proof");
        return Err(match failure {
            ProofFailure::Store(e) => e,
            other => ApiError::resource_invalid_dpop_proof(other.description()),
        });
    }
    Ok(())
}

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = presented_dpop_token(parts)?;
        let now = state.clock.now();
        let record = state
            .store
            .get_access_token(&sha256_b64(token.as_bytes()))
            .await?;
        let Some(record) = record.filter(|r| r.expires_at > now) else {
            count_failure("unknown_or_expired_token");
            return Err(ApiError::invalid_token(
                "the access token is unknown or expired",
            ));
        };
        proven(state, parts, &token, &record.jkt).await?;
        // The token is bound to a device key; revoking that key ends the token at once.
        let key = state.store.get_key(&record.jkt).await?;
        let key_active = key.is_some_and(|k| {
            k.status == KeyStatus::Active && k.holder == PrincipalId::Human(record.human)
        });
        if !key_active {
            count_failure("revoked_device_key");
            return Err(ApiError::invalid_token(
                "the device key this token is bound to was revoked",
            ));
        }
        let human = state.store.get_human(record.human).await?;
        let Some(human) = human.filter(|h| h.status == HumanStatus::Active) else {
            count_failure("inactive_human");
            return Err(ApiError::invalid_token("the token's human is not active"));
        };
        Ok(Self(Caller {
            id: human.id,
            role: human.role,
        }))
    }
}

/// A registered resource server calling with its DPoP-bound `decisions` token (from the
/// client credentials grant).
#[derive(Debug, Clone)]
pub struct ResourceServerCaller(pub surety_store::ResourceServer);

impl FromRequestParts<AppState> for ResourceServerCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = presented_dpop_token(parts)?;
        let now = state.clock.now();
        let record = state
            .store
            .get_client_token(&sha256_b64(token.as_bytes()))
            .await?;
        let Some(record) = record.filter(|r| r.expires_at > now) else {
            count_failure("unknown_or_expired_token");
            return Err(ApiError::invalid_token(
                "the access token is unknown or expired",
            ));
        };
        proven(state, parts, &token, &record.jkt).await?;
        let rs = state.store.get_resource_server(record.client).await?;
        let Some(rs) = rs.filter(|rs| rs.status == "active" && rs.kid == record.jkt) else {
            count_failure("inactive_client");
            return Err(ApiError::invalid_token("the resource server is not active"));
        };
        Ok(Self(rs))
    }
}
