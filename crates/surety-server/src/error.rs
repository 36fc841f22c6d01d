//! The one error type of every handler, mapped to HTTP in exactly one place. Internal
//! detail is logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use surety_api::ErrorBody;
use surety_core::{RuleError, TransitionError};
use surety_store::StoreError;

/// Algorithms named in `WWW-Authenticate: DPoP algs="…"` (RFC 9449 §7.1).
pub const DPOP_ALGS: &str = "EdDSA Ed25519 ES256";

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    description: String,
    current_state: Option<String>,
    www_authenticate: Option<String>,
    dpop_nonce: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            current_state: None,
            www_authenticate: None,
            dpop_nonce: None,
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", d)
    }

    /// 404 `not_found`.
    pub fn not_found(d: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", d)
    }

    /// 409 `conflict`.
    pub fn conflict(d: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", d)
    }

    /// 403 `forbidden`.
    pub fn forbidden(d: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", d)
    }

    /// 413 `payload_too_large`.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body exceeds {limit} bytes"),
        )
    }

    /// 409 with the unchanged current state.
    pub fn transition(e: &TransitionError) -> Self {
        let mut err = Self::conflict(e.to_string());
        err.current_state = Some(e.current.clone());
        err
    }

    /// 500, with the detail logged only.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal error; see the server log",
        )
    }

    /// 503 for a feature this deployment's configuration cannot offer, saying why.
    pub fn not_available(d: impl Into<String>) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            d,
        )
    }

    /// 503 when the database cannot be reached.
    pub fn unavailable(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "database unavailable");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the database is unavailable",
        )
    }

    // --- OAuth token endpoint (RFC 6749 §5.2, RFC 9449 §5) ---

    /// 400 `invalid_grant`.
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", d)
    }

    /// 400 `unsupported_grant_type`.
    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unsupported_grant_type", d)
    }

    /// 400 `invalid_scope`.
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", d)
    }

    /// 401 `invalid_client` (RFC 6749 §5.2): client authentication failed.
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", d)
    }

    /// 400 `unauthorized_client` (RFC 6749 §5.2).
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", d)
    }

    /// 400 `invalid_target` (RFC 8707 §2, RFC 8693 §2.2.2).
    pub fn invalid_target(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_target", d)
    }

    /// 400 with a CIBA Core 1.0 (§11, §13) or RFC 9396 (§5) error `code`:
    /// `authorization_pending`, `slow_down`, `expired_token`, `access_denied`,
    /// `unknown_user_id`, `invalid_binding_message`, `invalid_authorization_details`.
    pub fn ciba(code: &'static str, d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, d)
    }

    /// 403 with a CIBA error `code`: `access_denied` at the backchannel endpoint (§13).
    pub fn ciba_forbidden(code: &'static str, d: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, code, d)
    }

    /// 400 `invalid_dpop_proof` at the token endpoint.
    pub fn invalid_dpop_proof(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_dpop_proof", d)
    }

    /// 400 `use_dpop_nonce` with a fresh nonce (RFC 9449 §8).
    pub fn use_dpop_nonce(nonce: String) -> Self {
        let mut err = Self::new(
            StatusCode::BAD_REQUEST,
            "use_dpop_nonce",
            "the authorization server requires a DPoP nonce in the proof; use the DPoP-Nonce header",
        );
        err.dpop_nonce = Some(nonce);
        err
    }

    // --- Protected resources (RFC 6750 §3, RFC 9449 §7.1) ---

    fn challenge(code: &'static str, d: String, with_error: bool) -> Self {
        let mut err = Self::new(StatusCode::UNAUTHORIZED, code, d);
        let mut value = format!("DPoP algs=\"{DPOP_ALGS}\"");
        if with_error {
            value.push_str(&format!(
                ", error=\"{code}\", error_description=\"{}\"",
                header_safe(&err.description)
            ));
        }
        err.www_authenticate = Some(value);
        err
    }

    /// 401 without an error code: no credentials were presented (RFC 6750 §3.1).
    pub fn unauthenticated(d: impl Into<String>) -> Self {
        Self::challenge("invalid_token", d.into(), false)
    }

    /// 401 `invalid_token`.
    pub fn invalid_token(d: impl Into<String>) -> Self {
        Self::challenge("invalid_token", d.into(), true)
    }

    /// 401 `invalid_dpop_proof` at a protected resource.
    pub fn resource_invalid_dpop_proof(d: impl Into<String>) -> Self {
        Self::challenge("invalid_dpop_proof", d.into(), true)
    }

    /// Adds a `DPoP-Nonce` header to the answer.
    #[must_use]
    pub fn with_nonce(mut self, nonce: Option<String>) -> Self {
        if self.dpop_nonce.is_none() {
            self.dpop_nonce = nonce;
        }
        self
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The error code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The readable description.
    #[must_use]
    pub fn description(&self) -> &str {
        &self.description
    }
}

/// A description fit for a quoted-string in a header: printable ASCII without `"` or `\`
/// (the description may echo request input, which must never cost the client the
/// challenge itself — RFC 6750 §3 requires it).
fn header_safe(description: &str) -> String {
    description
        .chars()
        .map(|c| {
            if (' '..='~').contains(&c) && c != '"' && c != '\\' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

impl ApiError {
    /// The HTTP status and body this error answers with (for callers in the same process).
    #[must_use]
    pub fn to_body(&self) -> (u16, ErrorBody) {
        (
            self.status.as_u16(),
            ErrorBody {
                error: self.code.to_owned(),
                error_description: Some(self.description.clone()),
                current_state: self.current_state.clone(),
            },
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_owned(),
            error_description: Some(self.description),
            current_state: self.current_state,
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(v) = self
            .www_authenticate
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
        if let Some(v) = self.dpop_nonce.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert("dpop-nonce", v);
        }
        response
    }
}

impl From<RuleError> for ApiError {
    fn from(e: RuleError) -> Self {
        match e {
            RuleError::Invalid(f) => Self::invalid_request(f.to_string()),
            RuleError::Transition(t) => Self::transition(&t),
            RuleError::Forbidden(m) => Self::forbidden(m),
            RuleError::Conflict(m) => Self::conflict(m),
        }
    }
}

impl From<TransitionError> for ApiError {
    fn from(e: TransitionError) -> Self {
        Self::transition(&e)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => Self::not_found(m),
            StoreError::Conflict(m) => Self::conflict(m),
            StoreError::Invalid(m) => Self::invalid_request(m),
            StoreError::Stale => Self::conflict("the record changed concurrently; read it again"),
            StoreError::AlreadyInitialized => {
                Self::conflict("this deployment is already initialized")
            }
            StoreError::Replay => Self::invalid_request("value already used"),
            other if other.is_unavailable() => Self::unavailable(other),
            other => Self::internal(other),
        }
    }
}
