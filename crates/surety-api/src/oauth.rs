//! OAuth 2.0 token endpoint types.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// RFC 7523 §2.1 JWT bearer authorization grant.
pub const GRANT_TYPE_JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// RFC 7523 §2.2 client assertion type.
pub const CLIENT_ASSERTION_TYPE_JWT_BEARER: &str =
    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// RFC 8693 §2.1 token exchange grant.
pub const GRANT_TYPE_TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 §3 token type of access tokens.
pub const TOKEN_TYPE_ACCESS_TOKEN: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 8693 §3 token type of a JWT: the identity-chaining authorization grant an agent
/// requests for a federation peer (`requested_token_type`, `issued_token_type`).
pub const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
/// RFC 8693 §2.2.1: the `token_type` of an issued token that is not an access token.
pub const TOKEN_TYPE_NOT_APPLICABLE: &str = "N_A";
/// Surety's token type for a grant id used as `subject_token`.
pub const TOKEN_TYPE_GRANT: &str = "urn:surety:params:oauth:token-type:grant";
/// RFC 6749 §4.4 client credentials grant (resource servers).
pub const GRANT_TYPE_CLIENT_CREDENTIALS: &str = "client_credentials";
/// OpenID CIBA Core 1.0 §10.1: redeem an approved backchannel request.
pub const GRANT_TYPE_CIBA: &str = "urn:openid:params:grant-type:ciba";

/// OpenID CIBA Core 1.0 §7.3: the answer to a backchannel authentication request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BackchannelResponse {
    /// Opaque, high-entropy id of the request; redeem it at the token endpoint.
    pub auth_req_id: String,
    /// Seconds until the request expires.
    pub expires_in: u64,
    /// Seconds to wait between polls.
    pub interval: u64,
}
/// The only scope of resource servers' tokens: asking for decisions.
pub const SCOPE_DECISIONS: &str = "decisions";
/// The only scope of admin access tokens.
pub const SCOPE_ADMIN: &str = "admin";
/// RFC 9449 token type of DPoP-bound tokens.
pub const TOKEN_TYPE_DPOP: &str = "DPoP";

/// A successful token response (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    /// The access token; opaque to clients.
    pub access_token: String,
    /// Always `DPoP`: the token is bound to the key of the proof (RFC 9449 §5).
    #[schema(example = "DPoP")]
    pub token_type: String,
    /// Lifetime in seconds.
    #[schema(example = 300)]
    pub expires_in: u64,
    /// Granted scope (absent for a one-time approval token, which carries none).
    #[schema(example = "admin")]
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// RFC 8693 §2.2.1: the type of the issued token (token exchange only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_token_type: Option<String>,
    /// RFC 9396 §7: the action a one-time approval token (CIBA grant) is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<serde_json::Value>,
}
