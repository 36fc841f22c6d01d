//! The one error body of every Surety endpoint: RFC 6749 §5.2 shape, used for the admin
//! API too.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code: an RFC 6749 / RFC 9449 code on OAuth endpoints
    /// (`invalid_request`, `invalid_grant`, `invalid_dpop_proof`, …); on the admin API one of
    /// `invalid_request`, `invalid_token`, `insufficient_scope`, `forbidden`, `not_found`,
    /// `conflict`, `payload_too_large`, `server_error`.
    #[schema(example = "conflict")]
    pub error: String,
    /// What went wrong, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// On a refused lifecycle transition: the unchanged current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "revoked")]
    pub current_state: Option<String>,
}
