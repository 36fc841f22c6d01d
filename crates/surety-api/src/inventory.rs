//! `/v1/inventory/…`: every agent with its owner, keys, grants and activity, and the report
//! of what needs attention.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use surety_core::agent::AgentStatus;
use surety_core::human::HumanStatus;
use surety_core::id::{AgentId, HumanId};
use surety_core::inventory::{AgentFacts, Finding, FindingKind, RecentActivity};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use crate::admin::KeyView;
use crate::credentials::GrantView;
use crate::schema;

/// Query of both inventory endpoints. Durations are written like `30d`, `12h`, `90d`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InventoryQuery {
    /// Only agents of this owner (`hum_…`); members always see only their own.
    pub owner: Option<String>,
    /// Only agents in this state.
    pub status: Option<String>,
    /// Only agents in this environment.
    pub environment: Option<String>,
    /// Only agents (or, in the report, findings) of this kind: `orphaned`, `no_grant`,
    /// `stale_agent`, `stale_key`, `unused_permission`, `expiring_grant`, `recent_denials`,
    /// `suspended`.
    pub finding: Option<String>,
    /// `json` (default) or `csv` (also chosen by `Accept: text/csv`).
    pub format: Option<String>,
    /// Overrides `inventory_stale_after`.
    pub stale_after: Option<String>,
    /// Overrides `agent_key_max_age`.
    pub key_max_age: Option<String>,
    /// Overrides `inventory_unused_after`.
    pub unused_after: Option<String>,
    /// Overrides `inventory_expiring_within`.
    pub expiring_within: Option<String>,
    /// Overrides `inventory_recent`.
    pub recent: Option<String>,
}

/// The thresholds a report was made with, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ThresholdsView {
    /// An active agent with no activity for this long is stale.
    pub stale_after: u64,
    /// An active key older than this is due for rotation.
    pub key_max_age: u64,
    /// A granted scope not exercised for this long is unused.
    pub unused_after: u64,
    /// A grant ending within this is expiring.
    pub expiring_within: u64,
    /// Denials and suspensions within this are recent.
    pub recent: u64,
}

impl From<&surety_core::inventory::Thresholds> for ThresholdsView {
    fn from(t: &surety_core::inventory::Thresholds) -> Self {
        Self {
            stale_after: t.stale_after.as_secs(),
            key_max_age: t.key_max_age.as_secs(),
            unused_after: t.unused_after.as_secs(),
            expiring_within: t.expiring_within.as_secs(),
            recent: t.recent.as_secs(),
        }
    }
}

/// Who answers for an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OwnerView {
    /// `hum_…`
    #[schema(schema_with = schema::human_id)]
    pub id: HumanId,
    /// Name shown to people.
    pub display_name: String,
    /// E-mail address.
    pub email: String,
    /// `active` or `deactivated`.
    #[schema(schema_with = schema::human_status)]
    pub status: HumanStatus,
}

/// How one scope of a grant was exercised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScopeUseView {
    /// The scope.
    pub scope: String,
    /// Decisions that allowed it, ever.
    pub uses: u64,
    /// The latest, if any.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_used_at: Option<OffsetDateTime>,
}

/// A grant with the use of each of its scopes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InventoryGrant {
    /// The grant as it stands.
    #[serde(flatten)]
    pub grant: GrantView,
    /// One entry per scope, in the grant's order.
    pub usage: Vec<ScopeUseView>,
}

/// What the agent did within the report's `recent` window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RecentView {
    /// Access tokens issued.
    pub tokens: u64,
    /// Decisions that allowed.
    pub allowed: u64,
    /// Decisions that denied.
    pub denied: u64,
    /// Decisions that asked for a human's approval.
    pub step_up: u64,
    /// Times suspended.
    pub suspensions: u64,
}

impl From<RecentActivity> for RecentView {
    fn from(r: RecentActivity) -> Self {
        Self {
            tokens: r.tokens,
            allowed: r.allowed,
            denied: r.denied,
            step_up: r.step_up,
            suspensions: r.suspensions,
        }
    }
}

/// Something to look at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FindingView {
    /// `orphaned`, `no_grant`, `stale_agent`, `stale_key`, `unused_permission`,
    /// `expiring_grant`, `recent_denials` or `suspended`.
    pub kind: String,
    /// The key id, grant id, or `grant scope` it is about, when narrower than the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Since when, when known.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub since: Option<OffsetDateTime>,
    /// What it means and what to do.
    pub detail: String,
}

impl From<&Finding> for FindingView {
    fn from(f: &Finding) -> Self {
        Self {
            kind: f.kind.as_str().to_owned(),
            subject: f.subject.clone(),
            since: f.since,
            detail: f.detail.clone(),
        }
    }
}

/// One agent in the inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InventoryAgent {
    /// `agt_…`
    #[schema(schema_with = schema::agent_id)]
    pub id: AgentId,
    /// Unique per owner.
    pub name: String,
    /// Environment label.
    pub environment: String,
    /// What it is for.
    pub purpose: String,
    /// Lifecycle state.
    #[schema(schema_with = schema::agent_status)]
    pub status: AgentStatus,
    /// Reason for the last status change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<String>,
    /// Registration time.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Last token or decision.
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub last_seen_at: Option<OffsetDateTime>,
    /// Its owner.
    pub owner: OwnerView,
    /// Every key it had, oldest first.
    pub keys: Vec<KeyView>,
    /// Every grant made to it, oldest first.
    pub grants: Vec<InventoryGrant>,
    /// Activity within the `recent` window.
    pub recent: RecentView,
    /// What needs attention.
    pub findings: Vec<FindingView>,
}

impl InventoryAgent {
    /// The inventory entry for `facts` at `now`, with its findings.
    #[must_use]
    pub fn new(facts: &AgentFacts, findings: &[Finding], now: OffsetDateTime) -> Self {
        let a = &facts.agent;
        let grants = facts
            .grants
            .iter()
            .map(|g| InventoryGrant {
                grant: GrantView::at(g, now),
                usage: g
                    .scopes
                    .iter()
                    .map(|scope| {
                        let used = facts
                            .usage
                            .iter()
                            .find(|u| u.grant == g.id && u.scope == scope);
                        ScopeUseView {
                            scope: scope.to_owned(),
                            uses: used.map_or(0, |u| u.uses),
                            last_used_at: used.map(|u| u.last_used_at),
                        }
                    })
                    .collect(),
            })
            .collect();
        Self {
            id: a.id,
            name: a.name.clone(),
            environment: a.environment.clone(),
            purpose: a.purpose.clone(),
            status: a.status,
            status_reason: a.status_reason.clone(),
            created_at: a.created_at,
            last_seen_at: a.last_seen_at,
            owner: OwnerView {
                id: facts.owner.id,
                display_name: facts.owner.display_name.clone(),
                email: facts.owner.email.clone(),
                status: facts.owner.status,
            },
            keys: facts.keys.iter().map(KeyView::from).collect(),
            grants,
            recent: facts.recent.into(),
            findings: findings.iter().map(FindingView::from).collect(),
        }
    }
}

/// `GET /v1/inventory/agents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct InventoryResponse {
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// The thresholds of its findings.
    pub thresholds: ThresholdsView,
    /// Every matching agent, in registration order.
    pub items: Vec<InventoryAgent>,
}

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReportLine {
    /// The agent.
    #[schema(schema_with = schema::agent_id)]
    pub agent: AgentId,
    /// Its name.
    pub agent_name: String,
    /// Its owner's e-mail address.
    pub owner_email: String,
    /// The finding.
    #[serde(flatten)]
    pub finding: FindingView,
}

/// `GET /v1/inventory/report`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReportResponse {
    /// When it was made.
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// The thresholds it was made with.
    pub thresholds: ThresholdsView,
    /// Agents looked at.
    pub agents: u64,
    /// How many findings of each kind (every kind named, zero included).
    pub summary: BTreeMap<String, u64>,
    /// Every finding, by kind then agent.
    pub items: Vec<ReportLine>,
}

impl ReportResponse {
    /// An empty report, every kind counted at zero.
    #[must_use]
    pub fn empty(generated_at: OffsetDateTime, thresholds: ThresholdsView) -> Self {
        Self {
            generated_at,
            thresholds,
            agents: 0,
            summary: FindingKind::ALL
                .iter()
                .map(|k| (k.as_str().to_owned(), 0))
                .collect(),
            items: Vec::new(),
        }
    }
}
