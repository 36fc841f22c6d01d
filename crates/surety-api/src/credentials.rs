//! Grants, resource servers and signing keys (`/v1/grants`, `/v1/resource-servers`,
//! `/v1/signing-keys`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use surety_core::grant::{Grant, GrantStatus};
use surety_core::id::{AgentId, GrantId, HumanId, ResourceServerId};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::schema;

/// A grant: a human's delegation of bounded authority to an agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GrantView {
    /// `grt_…`
    #[schema(schema_with = schema::grant_id)]
    pub id: GrantId,
    /// The agent that may act.
    #[schema(schema_with = schema::agent_id)]
    pub agent: AgentId,
    /// The human on whose behalf it acts.
    #[schema(schema_with = schema::human_id)]
    pub principal: HumanId,
    /// Who created it (the principal, or the admin / agent owner who proposed it).
    #[schema(schema_with = schema::human_id)]
    pub created_by: HumanId,
    /// Delegated actions.
    pub scopes: Vec<String>,
    /// Audiences (resource URLs) its tokens may name.
    pub resources: Vec<String>,
    /// Limits for the policy decision point.
    pub constraints: Value,
    /// How deep a chain of sub-agents may go (0: none).
    pub max_delegation_depth: u32,
    /// State now: `proposed`, `active`, `expired`, `revoked` or `declined`.
    #[schema(schema_with = schema::grant_status)]
    pub status: GrantStatus,
    /// Reason given for revoking or declining.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// End of validity.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl GrantView {
    /// The view of `g` as it stands at `now` (expiry applied).
    #[must_use]
    pub fn at(g: &Grant, now: OffsetDateTime) -> Self {
        Self {
            id: g.id,
            agent: g.agent,
            principal: g.principal,
            created_by: g.created_by,
            scopes: g.scopes.to_vec(),
            resources: g.resources.clone(),
            constraints: g.constraints.clone(),
            max_delegation_depth: g.max_delegation_depth,
            status: g.status_at(now),
            status_reason: g.status_reason.clone(),
            created_at: g.created_at,
            updated_at: g.updated_at,
            expires_at: g.expires_at,
        }
    }
}

/// `POST /v1/grants`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGrant {
    /// The agent.
    #[schema(schema_with = schema::agent_id)]
    pub agent: AgentId,
    /// The principal; defaults to the caller. Naming someone else makes a proposal that
    /// only they can accept (admins and the agent's owner may propose).
    #[serde(default)]
    #[schema(schema_with = schema::human_id)]
    pub principal: Option<HumanId>,
    /// Action names (`crm.read`, `payments.transfer`…).
    pub scopes: Vec<String>,
    /// Resource URLs (token audiences).
    pub resources: Vec<String>,
    /// Limits (`max_amount`, `currency`, `allowed_domains`, `data_classes`…): a JSON object.
    #[serde(default)]
    pub constraints: Option<Value>,
    /// Sub-agent depth, 0–5 (default 0).
    #[serde(default)]
    pub max_delegation_depth: Option<u32>,
    /// End of validity (RFC 3339). Give this or `expires_in`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Lifetime in seconds from now. Give this or `expires_at`.
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// `GET /v1/grants` query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GrantQuery {
    /// Only grants to this agent.
    pub agent: Option<String>,
    /// Only grants of this principal.
    pub principal: Option<String>,
    /// Only grants in this state now: `proposed`, `active`, `expired`, `revoked`, `declined`.
    pub status: Option<String>,
    /// Page size, 1–1000 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A resource server registered as an OAuth client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResourceServerView {
    /// `rsv_…`: its `client_id` at the introspection endpoint.
    #[schema(schema_with = schema::resource_server_id)]
    pub id: ResourceServerId,
    /// Display name.
    pub name: String,
    /// The audience tokens name for it.
    pub audience: String,
    /// Thumbprint of its public key.
    pub kid: String,
    /// Its public JWK.
    pub public_key: Value,
    /// `active`.
    pub status: String,
    /// Registration time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// `POST /v1/resource-servers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateResourceServer {
    /// The resource URL its tokens carry as `aud`.
    pub audience: String,
    /// Its public JWK (Ed25519 or P-256), for `private_key_jwt`.
    pub public_key: Value,
    /// Display name (defaults to the audience's host).
    #[serde(default)]
    pub name: Option<String>,
}

/// An organisation signing key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SigningKeyView {
    /// RFC 7638 thumbprint; the `kid` of tokens it signs.
    pub kid: String,
    /// `EdDSA` or `ES256`.
    pub alg: String,
    /// `active` (signs new tokens) or `retired`.
    pub status: String,
    /// Whether `/jwks` lists it now.
    pub published: bool,
    /// Creation time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When rotation retired it.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub retired_at: Option<OffsetDateTime>,
    /// Until when it stays published after retirement.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub publish_until: Option<OffsetDateTime>,
}

/// `POST /v1/signing-keys/rotate`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSigningKey {
    /// `EdDSA` or `ES256`; defaults to the configured `signing_alg`.
    #[serde(default)]
    pub alg: Option<String>,
}

/// The answer to a rotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RotatedSigningKey {
    /// The new signer.
    pub kid: String,
    /// Keys retired (still published until their tokens have expired).
    pub retired: Vec<String>,
}

/// A policy set: the action catalog (a Cedar schema fragment) and the Cedar policies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicySetView {
    /// Its number; 0 is the shipped default, in force until a set is applied.
    pub version: u64,
    /// The action catalog (Cedar schema fragment extending the base schema).
    pub catalog: String,
    /// The policies (Cedar).
    pub policies: String,
    /// How many policies it holds.
    pub policy_count: usize,
    /// Why it was applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Who applied it (absent for the shipped default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = schema::human_id)]
    pub created_by: Option<HumanId>,
    /// When (absent for the shipped default).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub created_at: Option<OffsetDateTime>,
    /// Whether it is the set in force.
    pub current: bool,
}

/// `POST /v1/policies` and `POST /v1/policies/validate`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApplyPolicySet {
    /// The policies (Cedar); each needs a unique `@id`.
    pub policies: String,
    /// The action catalog; defaults to the catalog in force.
    #[serde(default)]
    pub catalog: Option<String>,
    /// Why (kept in the history and the audit log).
    #[serde(default)]
    pub note: Option<String>,
}

/// The answer to a successful validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PolicyValidation {
    /// Always `true` (an invalid set is a 400 with Cedar's message).
    pub valid: bool,
    /// How many policies the set holds.
    pub policy_count: usize,
}

/// `POST /v1/policies/rollback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackPolicySet {
    /// The version to apply again (as a new version); 0 is the shipped default.
    pub version: u64,
}

/// `GET /v1/policies/history` query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PolicyHistoryQuery {
    /// Page size, 1–1000 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}
