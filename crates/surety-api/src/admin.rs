//! Admin API (`/v1/…`) request and response bodies.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use surety_core::agent::{Agent, AgentStatus};
use surety_core::audit::{Actor, AuditEvent, EventKind};
use surety_core::human::{Human, HumanStatus, Role};
use surety_core::id::{AgentId, EventId, HumanId};
use surety_core::key::{KeyRecord, KeyStatus};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::schema;

/// A page of results with the cursor of the next page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ListResponse<T> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T, U: for<'a> From<&'a T>> From<&surety_core::page::Page<T>> for ListResponse<U> {
    fn from(page: &surety_core::page::Page<T>) -> Self {
        Self {
            items: page.items.iter().map(U::from).collect(),
            next_cursor: page.next_cursor.clone(),
        }
    }
}

/// A human.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HumanView {
    /// `hum_…`
    #[schema(schema_with = schema::human_id)]
    pub id: HumanId,
    /// Display name.
    pub display_name: String,
    /// E-mail (lower case, unique).
    pub email: String,
    /// `admin` or `member`.
    #[schema(schema_with = schema::role)]
    pub role: Role,
    /// `active` or `deactivated`.
    #[schema(schema_with = schema::human_status)]
    pub status: HumanStatus,
    /// Registration time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Enrolled device keys (on single-human responses only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<KeyView>>,
}

impl HumanView {
    /// The view with its device keys.
    #[must_use]
    pub fn with_keys(mut self, keys: &[KeyRecord]) -> Self {
        self.keys = Some(keys.iter().map(KeyView::from).collect());
        self
    }
}

impl From<&Human> for HumanView {
    fn from(h: &Human) -> Self {
        Self {
            id: h.id,
            display_name: h.display_name.clone(),
            email: h.email.clone(),
            role: h.role,
            status: h.status,
            created_at: h.created_at,
            updated_at: h.updated_at,
            keys: None,
        }
    }
}

/// `POST /v1/humans`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateHuman {
    /// Display name (1–200 characters).
    pub display_name: String,
    /// E-mail, unique ignoring case.
    pub email: String,
    /// Defaults to `member`.
    #[serde(default)]
    #[schema(schema_with = schema::role)]
    pub role: Option<Role>,
}

/// A one-time enrollment code, shown once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnrollmentCode {
    /// Give this to the human, out of band; it is stored only as a hash.
    pub code: String,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// `POST /v1/humans` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CreatedHuman {
    /// The new human.
    pub human: HumanView,
    /// Their first enrollment code.
    pub enrollment: EnrollmentCode,
}

/// `POST /v1/enroll`: redeems a code. The device key to enroll is the key of the request's
/// DPoP proof, which proves possession of its private half.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollRequest {
    /// The one-time code.
    pub code: String,
}

/// `POST /v1/enroll` response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct EnrollResponse {
    /// The human the key now belongs to.
    #[schema(schema_with = schema::human_id)]
    pub human_id: HumanId,
    /// Thumbprint of the enrolled key.
    pub kid: String,
}

/// A public key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KeyView {
    /// RFC 7638 thumbprint.
    pub kid: String,
    /// `EdDSA` or `ES256`.
    pub alg: String,
    /// `active`, `retired` or `revoked`.
    #[schema(schema_with = schema::key_status)]
    pub status: KeyStatus,
    /// The public JWK.
    pub jwk: Value,
    /// Registration time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When it was retired or revoked.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub status_changed_at: Option<OffsetDateTime>,
}

impl From<&KeyRecord> for KeyView {
    fn from(k: &KeyRecord) -> Self {
        Self {
            kid: k.kid.clone(),
            alg: k.alg.clone(),
            status: k.status,
            jwk: k.jwk.clone(),
            created_at: k.created_at,
            status_changed_at: k.status_changed_at,
        }
    }
}

/// An agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AgentView {
    /// `agt_…`
    #[schema(schema_with = schema::agent_id)]
    pub id: AgentId,
    /// Unique per owner.
    pub name: String,
    /// The accountable human.
    #[schema(schema_with = schema::human_id)]
    pub owner: HumanId,
    /// What it is for.
    pub purpose: String,
    /// Environment label.
    pub environment: String,
    /// Free labels.
    pub labels: BTreeMap<String, String>,
    /// Lifecycle state.
    #[schema(schema_with = schema::agent_status)]
    pub status: AgentStatus,
    /// Reason for the last status change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Registration time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Last successful authentication.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_seen_at: Option<OffsetDateTime>,
    /// The agent's keys (on single-agent responses only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<KeyView>>,
}

impl From<&Agent> for AgentView {
    fn from(a: &Agent) -> Self {
        Self {
            id: a.id,
            name: a.name.clone(),
            owner: a.owner,
            purpose: a.purpose.clone(),
            environment: a.environment.clone(),
            labels: a.labels.clone(),
            status: a.status,
            status_reason: a.status_reason.clone(),
            created_at: a.created_at,
            updated_at: a.updated_at,
            last_seen_at: a.last_seen_at,
            keys: None,
        }
    }
}

impl AgentView {
    /// The view with its keys.
    #[must_use]
    pub fn with_keys(mut self, keys: &[KeyRecord]) -> Self {
        self.keys = Some(keys.iter().map(KeyView::from).collect());
        self
    }
}

/// `POST /v1/agents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterAgent {
    /// 1–64 of `A-Z a-z 0-9 . _ -`, unique per owner ignoring case.
    pub name: String,
    /// Owner; defaults to the caller. Members may only name themselves.
    #[serde(default)]
    #[schema(schema_with = schema::human_id)]
    pub owner: Option<HumanId>,
    /// The agent's public key: an Ed25519 (`OKP`) or P-256 (`EC`) JWK, public members only.
    pub public_key: Value,
    /// What the agent is for.
    #[serde(default)]
    pub purpose: Option<String>,
    /// Environment label (`a-z 0-9 -`); defaults to `default`.
    #[serde(default)]
    pub environment: Option<String>,
    /// Free labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Body of lifecycle actions that take a reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Why; recorded on the agent and in the audit log.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `POST /v1/agents/{id}/keys`: adds a key (rotation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddKey {
    /// The new public JWK.
    pub public_key: Value,
    /// Retire every currently active key in the same step (default `true`).
    #[serde(default)]
    pub retire_previous: Option<bool>,
}

/// `GET /v1/humans` query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HumanQuery {
    /// `active` or `deactivated`.
    pub status: Option<String>,
    /// `admin` or `member`.
    pub role: Option<String>,
    /// Page size, 1–1000 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `GET /v1/agents` query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AgentQuery {
    /// Owner's `hum_…` id.
    pub owner: Option<String>,
    /// Lifecycle state.
    pub status: Option<String>,
    /// Environment label.
    pub environment: Option<String>,
    /// Page size, 1–1000 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// `GET /v1/audit` query.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Events concerning this agent.
    pub agent: Option<String>,
    /// Events concerning this human.
    pub human: Option<String>,
    /// Events whose target is this id.
    pub target: Option<String>,
    /// Event type, e.g. `agent.suspended`.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub kind: Option<String>,
    /// At or after this RFC 3339 time.
    pub since: Option<String>,
    /// Before this RFC 3339 time.
    pub until: Option<String>,
    /// Page size, 1–1000 (default 50).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// An audit event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEventView {
    /// Position in the log.
    pub seq: i64,
    /// Its leaf in the log's Merkle tree: pass it to `GET /v1/audit/proofs/inclusion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_index: Option<u64>,
    /// `evt_…`
    #[schema(schema_with = schema::event_id)]
    pub id: EventId,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// What happened.
    #[serde(rename = "type")]
    #[schema(schema_with = schema::event_kind)]
    pub kind: EventKind,
    /// Who: `hum_…`, `agt_…` or `system`.
    #[schema(value_type = String, example = "system")]
    pub actor: Actor,
    /// The id of the thing changed.
    pub target: String,
    /// Agent concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = schema::agent_id)]
    pub agent: Option<AgentId>,
    /// Human concerned (subject, or owner of the agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = schema::human_id)]
    pub human: Option<HumanId>,
    /// Event-specific details.
    pub details: Value,
}

impl From<&AuditEvent> for AuditEventView {
    fn from(e: &AuditEvent) -> Self {
        let ev = &e.event;
        Self {
            seq: e.seq,
            leaf_index: e.leaf_index,
            id: ev.id,
            time: ev.time,
            kind: ev.kind,
            actor: ev.actor,
            target: ev.target.clone(),
            agent: ev.agent,
            human: ev.human,
            details: ev.details.clone(),
        }
    }
}

/// `GET /healthz`, `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`, or what is wrong.
    pub status: String,
}

/// `GET /v1/audit/proofs/inclusion`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InclusionQuery {
    /// The leaf (0-based, in commit order).
    pub index: u64,
    /// The tree size the proof is for (a checkpoint's size).
    pub tree_size: u64,
}

/// An RFC 9162 §2.1.3 inclusion proof. Hashes are base64 (standard alphabet, as in
/// checkpoints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InclusionProofView {
    /// The leaf.
    pub leaf_index: u64,
    /// The tree size.
    pub tree_size: u64,
    /// `SHA-256(0x00 ‖ entry)` of the leaf.
    pub leaf_hash: String,
    /// The audit path, bottom-up.
    pub inclusion_path: Vec<String>,
    /// The root of the tree of `tree_size` leaves.
    pub root_hash: String,
}

/// `GET /v1/audit/proofs/consistency`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The older tree size.
    pub from: u64,
    /// The newer tree size.
    pub to: u64,
}

/// An RFC 9162 §2.1.4 consistency proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsistencyProofView {
    /// The older size.
    pub from: u64,
    /// The newer size.
    pub to: u64,
    /// The proof, bottom-up.
    pub consistency_path: Vec<String>,
    /// The older root.
    pub from_root: String,
    /// The newer root.
    pub to_root: String,
}

/// `GET /v1/audit/leaves`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LeavesQuery {
    /// First leaf.
    pub start: u64,
    /// One past the last leaf (at most 1000 more than `start`).
    pub end: u64,
}

/// One leaf of the audit log: its index and the entry it hashes (`SHA-256(0x00 ‖ the
/// entry's canonical JSON text)`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LeafView {
    /// The leaf index (commit order, from 0).
    pub leaf_index: u64,
    /// The event as the tree hashes it (versioned; see `NewEvent::leaf_entry`).
    pub entry: Value,
}

/// Leaves of the audit log, in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LeavesView {
    /// The leaves.
    pub leaves: Vec<LeafView>,
}

/// `GET /v1/audit/proofs/range`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RangeQuery {
    /// First leaf of the range.
    pub start: u64,
    /// One past its last leaf.
    pub end: u64,
    /// The tree size the proof is for (a checkpoint's size, at least `end`).
    pub tree_size: u64,
}

/// One perfect subtree of the log's tree: the hash of leaves
/// `[index·2^level, (index+1)·2^level)`, base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TreeNodeView {
    /// Level (0: a leaf hash).
    pub level: u8,
    /// Index within the level.
    pub index: u64,
    /// The hash.
    pub hash: String,
}

/// What proves a contiguous range of leaves against the root of a larger tree: the perfect
/// subtrees wholly outside the range. A verifier computes every node that covers a leaf of
/// the range from the leaves themselves and takes only these from the proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RangeProofView {
    /// First leaf.
    pub start: u64,
    /// One past the last leaf.
    pub end: u64,
    /// The tree size.
    pub tree_size: u64,
    /// The subtrees outside the range, by level then index.
    pub nodes: Vec<TreeNodeView>,
    /// The root of the tree of `tree_size` leaves.
    pub root_hash: String,
}

/// `GET /v1/audit/checkpoints`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckpointsQuery {
    /// Only sizes above this.
    pub after: Option<u64>,
    /// Only sizes up to this.
    pub up_to: Option<u64>,
}

/// A stored checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointView {
    /// Its tree size.
    pub size: u64,
    /// The C2SP signed note.
    pub note: String,
}

/// Stored checkpoints, smallest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointsView {
    /// The checkpoints.
    pub checkpoints: Vec<CheckpointView>,
}
