//! Federation: trusted peer organisations (`/v1/federation/peers`), what their agents may do
//! here (`/v1/federation/grants`), and agents' signed cards (`/v1/agents/{id}/card`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use surety_core::id::{FederationGrantId, HumanId};
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::schema;

/// `POST /v1/federation/peers`: trust another organisation. Its keys are pinned (`jwks`)
/// or fetched from its RFC 8414 metadata (`metadata_url`): exactly one of the two.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddPeer {
    /// The peer's issuer URL: the `iss` of everything it signs.
    pub issuer: String,
    /// A short name (default: the issuer's host).
    #[serde(default)]
    pub name: Option<String>,
    /// Its authorization server metadata URL; its `issuer` must equal `issuer`.
    #[serde(default)]
    pub metadata_url: Option<String>,
    /// Its JWK Set (`{"keys": […]}`), pinned: never fetched.
    #[serde(default)]
    pub jwks: Option<Value>,
    /// Where its introspection endpoint is, when the keys are pinned (from the metadata
    /// otherwise): without one, its withdrawals reach here only as tokens expire.
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
}

/// A trusted peer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PeerView {
    /// Its issuer URL.
    pub issuer: String,
    /// Its short name.
    pub name: String,
    /// `pinned` or `metadata`.
    pub source: String,
    /// Its metadata URL, when its keys are fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata_url: Option<String>,
    /// Where its grants are introspected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// The RFC 7638 thumbprints of its keys.
    pub keys: Vec<String>,
    /// When its keys were last fetched.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub fetched_at: Option<OffsetDateTime>,
    /// Who trusted it.
    #[schema(schema_with = schema::human_id)]
    pub created_by: HumanId,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `POST /v1/federation/grants`: what a peer's agents may do here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateFederationGrant {
    /// The peer, by issuer or name.
    pub peer: String,
    /// Which of its agents: `*` (default), an exact `agt_…`, or a prefix ending in `*`.
    #[serde(default)]
    pub agents: Option<String>,
    /// For which of its humans: `*` (default), an exact id, or a prefix ending in `*`.
    #[serde(default)]
    pub principals: Option<String>,
    /// The most a token may carry (action names).
    pub scopes: Vec<String>,
    /// The resource servers here a token may be for.
    pub resources: Vec<String>,
    /// Limits, as on a grant (`max_amount`, `currency`, `allowed_domains`, `data_classes`).
    #[serde(default)]
    pub constraints: Option<Value>,
    /// End of validity (RFC 3339). Give this or `expires_in`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Lifetime in seconds from now. Give this or `expires_at`.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// A federation grant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FederationGrantView {
    /// `fgr_…`
    #[schema(schema_with = schema::federation_grant_id)]
    pub id: FederationGrantId,
    /// The peer's issuer.
    pub peer: String,
    /// Agent pattern.
    pub agents: String,
    /// Principal pattern.
    pub principals: String,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Resources.
    pub resources: Vec<String>,
    /// Constraints.
    pub constraints: Value,
    /// `active`, `expired` or `revoked`, now.
    pub status: String,
    /// End.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Who created it.
    #[schema(schema_with = schema::human_id)]
    pub created_by: HumanId,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// One skill on an agent card (A2A `AgentSkill`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CardSkill {
    /// Identifier.
    pub id: String,
    /// Name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// Keywords.
    #[serde(default)]
    pub tags: Vec<String>,
}

/// `PUT /v1/agents/{id}/card`: publish the agent's card.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishCard {
    /// What the agent does.
    pub description: String,
    /// Where it is reached (its A2A endpoint).
    pub url: String,
    /// Its skills.
    #[serde(default)]
    pub skills: Vec<CardSkill>,
}
