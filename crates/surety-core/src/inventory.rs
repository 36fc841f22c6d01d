//! Inventory findings: what an IAM lead must look at among the organisation's agents.
//!
//! [`findings`] is a pure function of what the store knows about one agent ([`AgentFacts`]),
//! the thresholds in force ([`Thresholds`]) and the time: the same facts always give the same
//! findings, so the report, the API, the CLI and the web UI agree.

use std::time::Duration;

use serde::Serialize;
use time::OffsetDateTime;

use crate::agent::{Agent, AgentStatus};
use crate::grant::{Grant, GrantStatus};
use crate::human::{Human, HumanStatus};
use crate::id::GrantId;
use crate::key::{KeyRecord, KeyStatus};

/// How one scope of one grant has been exercised: decisions that allowed the action it
/// names, under a token minted from the grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScopeUse {
    /// The grant.
    pub grant: GrantId,
    /// The scope (an action).
    pub scope: String,
    /// Allowed decisions, ever.
    pub uses: u64,
    /// The latest.
    #[serde(with = "time::serde::rfc3339")]
    pub last_used_at: OffsetDateTime,
}

/// An agent's recent decisions and tokens (over the report's `recent` window).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RecentActivity {
    /// Access tokens issued.
    pub tokens: u64,
    /// Decisions that allowed.
    pub allowed: u64,
    /// Decisions that denied.
    pub denied: u64,
    /// Decisions that asked for a human's approval.
    pub step_up: u64,
    /// Times the agent was suspended.
    pub suspensions: u64,
}

/// Everything the inventory knows about one agent.
#[derive(Debug, Clone)]
pub struct AgentFacts {
    /// The agent.
    pub agent: Agent,
    /// Its owner.
    pub owner: Human,
    /// Every key it ever had.
    pub keys: Vec<KeyRecord>,
    /// Every grant made to it.
    pub grants: Vec<Grant>,
    /// How its grants' scopes were exercised.
    pub usage: Vec<ScopeUse>,
    /// What it did lately.
    pub recent: RecentActivity,
}

/// Report thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// An active agent with no activity for this long is stale.
    pub stale_after: Duration,
    /// An active key older than this is due for rotation.
    pub key_max_age: Duration,
    /// A scope not exercised for this long (in a grant at least this old) is unused.
    pub unused_after: Duration,
    /// A grant ending within this is expiring.
    pub expiring_within: Duration,
    /// Denials and suspensions within this are recent.
    pub recent: Duration,
}

/// What a finding is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// The owner was deactivated: nobody answers for the agent.
    Orphaned,
    /// An active agent with no active grant.
    NoGrant,
    /// An active agent that did nothing for `stale_after`.
    StaleAgent,
    /// An active key older than the rotation policy.
    StaleKey,
    /// A granted scope not exercised for `unused_after`: remove it (least privilege).
    UnusedPermission,
    /// An active grant ending within `expiring_within`.
    ExpiringGrant,
    /// Denied decisions within `recent`.
    RecentDenials,
    /// Suspended within `recent`, or suspended now.
    Suspended,
}

impl FindingKind {
    /// Every kind, in report order.
    pub const ALL: [Self; 8] = [
        Self::Orphaned,
        Self::NoGrant,
        Self::StaleAgent,
        Self::StaleKey,
        Self::UnusedPermission,
        Self::ExpiringGrant,
        Self::RecentDenials,
        Self::Suspended,
    ];

    /// The wire name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Orphaned => "orphaned",
            Self::NoGrant => "no_grant",
            Self::StaleAgent => "stale_agent",
            Self::StaleKey => "stale_key",
            Self::UnusedPermission => "unused_permission",
            Self::ExpiringGrant => "expiring_grant",
            Self::RecentDenials => "recent_denials",
            Self::Suspended => "suspended",
        }
    }
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for FindingKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                let names: Vec<_> = Self::ALL.iter().map(|k| k.as_str()).collect();
                format!(
                    "unknown finding `{s}` (expected one of {})",
                    names.join(", ")
                )
            })
    }
}

/// One thing to look at, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// What kind.
    pub kind: FindingKind,
    /// The grant, key or `grant scope` it is about, when narrower than the agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Since when the condition holds, when known.
    #[serde(with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    /// What it means and what to do, in one sentence.
    pub detail: String,
}

fn days(d: Duration) -> u64 {
    d.as_secs() / 86_400
}

fn older_than(t: OffsetDateTime, age: Duration, now: OffsetDateTime) -> bool {
    now - t >= age
}

/// The findings about one agent at `now`, in [`FindingKind::ALL`] order.
#[must_use]
pub fn findings(facts: &AgentFacts, limits: &Thresholds, now: OffsetDateTime) -> Vec<Finding> {
    let agent = &facts.agent;
    if agent.status.is_terminal() {
        // A revoked or retired agent can do nothing: there is nothing left to act on.
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut push = |kind, subject: Option<String>, since, detail: String| {
        out.push(Finding {
            kind,
            subject,
            since,
            detail,
        });
    };
    if facts.owner.status == HumanStatus::Deactivated {
        push(
            FindingKind::Orphaned,
            None,
            Some(facts.owner.updated_at),
            format!(
                "its owner {} was deactivated and nobody answers for it; revoke it, or reactivate the owner if it is still needed",
                facts.owner.email
            ),
        );
    }
    let live: Vec<&Grant> = facts
        .grants
        .iter()
        .filter(|g| g.status_at(now) == GrantStatus::Active)
        .collect();
    let active = agent.status == AgentStatus::Active;
    if active && live.is_empty() {
        push(
            FindingKind::NoGrant,
            None,
            None,
            "it holds no active grant, so it may do nothing; retire it if it is no longer needed"
                .into(),
        );
    }
    let last = agent.last_seen_at.unwrap_or(agent.created_at);
    if active && older_than(last, limits.stale_after, now) {
        let what = match agent.last_seen_at {
            Some(_) => "no token or decision",
            None => "never used, registered",
        };
        push(
            FindingKind::StaleAgent,
            None,
            Some(last),
            format!(
                "{what} for {} days; retire it if it is no longer needed",
                days((now - last).unsigned_abs())
            ),
        );
    }
    for key in facts.keys.iter().filter(|k| {
        k.status == KeyStatus::Active && older_than(k.created_at, limits.key_max_age, now)
    }) {
        push(
            FindingKind::StaleKey,
            Some(key.kid.clone()),
            Some(key.created_at),
            format!(
                "key {} is {} days old, beyond the {}-day rotation policy; rotate it",
                key.kid,
                days((now - key.created_at).unsigned_abs()),
                days(limits.key_max_age)
            ),
        );
    }
    for grant in live
        .iter()
        .filter(|g| older_than(g.created_at, limits.unused_after, now))
    {
        for scope in grant.scopes.iter() {
            let used = facts
                .usage
                .iter()
                .find(|u| u.grant == grant.id && u.scope == scope);
            if used.is_some_and(|u| !older_than(u.last_used_at, limits.unused_after, now)) {
                continue;
            }
            let (since, when) = match used {
                Some(u) => (
                    u.last_used_at,
                    format!(
                        "was last used {} days ago",
                        days((now - u.last_used_at).unsigned_abs())
                    ),
                ),
                None => (grant.created_at, "has never been used".to_owned()),
            };
            push(
                FindingKind::UnusedPermission,
                Some(format!("{} {scope}", grant.id)),
                Some(since),
                format!(
                    "{scope} in grant {} {when}; remove it from the grant (least privilege)",
                    grant.id
                ),
            );
        }
    }
    for grant in &live {
        let left = grant.expires_at - now;
        if left <= limits.expiring_within {
            push(
                FindingKind::ExpiringGrant,
                Some(grant.id.to_string()),
                Some(grant.expires_at),
                format!(
                    "grant {} ends in {} h; renew it with its principal if the agent still needs it",
                    grant.id,
                    left.whole_hours()
                ),
            );
        }
    }
    let recent_days = days(limits.recent);
    if facts.recent.denied > 0 {
        push(
            FindingKind::RecentDenials,
            None,
            None,
            format!(
                "{} denied decisions in the last {recent_days} days; check what it tries to do",
                facts.recent.denied
            ),
        );
    }
    if agent.status == AgentStatus::Suspended || facts.recent.suspensions > 0 {
        let detail = match (agent.status, &agent.status_reason) {
            (AgentStatus::Suspended, Some(why)) => format!("suspended: {why}"),
            (AgentStatus::Suspended, None) => "suspended".to_owned(),
            _ => format!(
                "suspended {} in the last {recent_days} days, reinstated since",
                match facts.recent.suspensions {
                    1 => "once".to_owned(),
                    n => format!("{n} times"),
                }
            ),
        };
        let since = (agent.status == AgentStatus::Suspended).then_some(agent.updated_at);
        push(FindingKind::Suspended, None, since, detail);
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use time::macros::datetime;

    use super::*;
    use crate::agent::NewAgent;
    use crate::human::Role;
    use crate::id::{AgentId, HumanId, PrincipalId};
    use crate::scope::ScopeSet;

    const DAY: Duration = Duration::from_secs(86_400);
    const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);

    fn limits() -> Thresholds {
        Thresholds {
            stale_after: DAY * 30,
            key_max_age: DAY * 90,
            unused_after: DAY * 30,
            expiring_within: DAY * 7,
            recent: DAY * 7,
        }
    }

    fn ago(d: u64) -> OffsetDateTime {
        NOW - DAY * u32::try_from(d).unwrap_or(0)
    }

    fn facts() -> AgentFacts {
        let owner = Human {
            id: HumanId::new(ago(400)),
            display_name: "Ada".into(),
            email: "ada@example.com".into(),
            role: Role::Member,
            status: HumanStatus::Active,
            created_at: ago(400),
            updated_at: ago(400),
        };
        let new = NewAgent::parse("crm-bot", owner.id, None, None, &Default::default()).unwrap();
        let mut agent = new.into_agent(AgentId::new(ago(100)), ago(100));
        agent.last_seen_at = Some(ago(1));
        let key = KeyRecord {
            kid: "k1".into(),
            holder: PrincipalId::Agent(agent.id),
            alg: "EdDSA".into(),
            jwk: json!({}),
            status: KeyStatus::Active,
            created_at: ago(10),
            status_changed_at: None,
        };
        let grant = Grant {
            id: GrantId::new(ago(60)),
            agent: agent.id,
            principal: owner.id,
            created_by: owner.id,
            scopes: ScopeSet::parse("scope", "crm.read crm.write").unwrap(),
            resources: vec![],
            constraints: json!({}),
            max_delegation_depth: 0,
            status: GrantStatus::Active,
            status_reason: None,
            created_at: ago(60),
            updated_at: ago(60),
            expires_at: NOW + DAY * 30,
        };
        let usage = ["crm.read", "crm.write"]
            .map(|s| ScopeUse {
                grant: grant.id,
                scope: s.into(),
                uses: 3,
                last_used_at: ago(2),
            })
            .to_vec();
        AgentFacts {
            agent,
            owner,
            keys: vec![key],
            grants: vec![grant],
            usage,
            recent: RecentActivity::default(),
        }
    }

    fn kinds(f: &AgentFacts) -> Vec<FindingKind> {
        findings(f, &limits(), NOW).iter().map(|f| f.kind).collect()
    }

    #[test]
    fn a_healthy_agent_has_no_findings() {
        assert_eq!(kinds(&facts()), vec![]);
    }

    #[test]
    fn an_agent_whose_owner_left_is_orphaned() {
        let mut f = facts();
        f.owner.status = HumanStatus::Deactivated;
        f.owner.updated_at = ago(3);
        let found = findings(&f, &limits(), NOW);
        assert_eq!(found[0].kind, FindingKind::Orphaned);
        assert_eq!(found[0].since, Some(ago(3)));
        assert!(found[0].detail.contains("ada@example.com"));
    }

    #[test]
    fn revoked_and_retired_agents_have_nothing_to_act_on() {
        for status in [AgentStatus::Revoked, AgentStatus::Retired] {
            let mut f = facts();
            f.owner.status = HumanStatus::Deactivated;
            f.agent.status = status;
            assert_eq!(kinds(&f), vec![]);
        }
    }

    #[test]
    fn no_live_grant_is_a_finding_for_active_agents() {
        let mut f = facts();
        f.grants[0].status = GrantStatus::Revoked;
        assert_eq!(kinds(&f), vec![FindingKind::NoGrant]);
        let mut f = facts();
        f.grants[0].expires_at = ago(1);
        assert_eq!(kinds(&f), vec![FindingKind::NoGrant]);
        f.grants.clear();
        assert_eq!(kinds(&f), vec![FindingKind::NoGrant]);
    }

    #[test]
    fn staleness_counts_from_last_activity_or_registration() {
        let mut f = facts();
        f.agent.last_seen_at = Some(ago(31));
        assert_eq!(kinds(&f), vec![FindingKind::StaleAgent]);
        f.agent.last_seen_at = Some(ago(29));
        assert_eq!(kinds(&f), vec![]);
        f.agent.last_seen_at = None;
        let found = findings(&f, &limits(), NOW);
        assert_eq!(found[0].kind, FindingKind::StaleAgent);
        assert_eq!(found[0].since, Some(f.agent.created_at));
        assert!(found[0].detail.starts_with("never used"));
    }

    #[test]
    fn only_active_keys_past_the_rotation_policy_are_stale() {
        let mut f = facts();
        f.keys[0].created_at = ago(91);
        let found = findings(&f, &limits(), NOW);
        assert_eq!(found[0].kind, FindingKind::StaleKey);
        assert_eq!(found[0].subject.as_deref(), Some("k1"));
        f.keys[0].status = KeyStatus::Retired;
        assert_eq!(kinds(&f), vec![]);
    }

    #[test]
    fn scopes_unused_for_the_window_are_named_with_their_grant() {
        let mut f = facts();
        f.usage[1].last_used_at = ago(45);
        let found = findings(&f, &limits(), NOW);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].kind, FindingKind::UnusedPermission);
        let grant = f.grants[0].id;
        assert_eq!(found[0].subject, Some(format!("{grant} crm.write")));
        assert!(found[0].detail.contains("was last used 45 days ago"));
        // Never used at all: since the grant was made.
        f.usage.clear();
        let found = findings(&f, &limits(), NOW);
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].since, Some(f.grants[0].created_at));
        // A grant younger than the window has not had the chance yet.
        f.grants[0].created_at = ago(5);
        assert_eq!(kinds(&f), vec![]);
    }

    #[test]
    fn use_under_another_grant_does_not_count() {
        let mut f = facts();
        f.usage[0].grant = GrantId::new(ago(1));
        let found = findings(&f, &limits(), NOW);
        assert_eq!(found.len(), 1);
        assert!(found[0].detail.starts_with("crm.read in grant"));
    }

    #[test]
    fn grants_ending_soon_are_expiring() {
        let mut f = facts();
        f.grants[0].expires_at = NOW + DAY * 2;
        let found = findings(&f, &limits(), NOW);
        assert_eq!(found[0].kind, FindingKind::ExpiringGrant);
        assert!(found[0].detail.contains("ends in 48 h"));
    }

    #[test]
    fn denials_and_suspensions_are_reported() {
        let mut f = facts();
        f.recent.denied = 4;
        assert_eq!(kinds(&f), vec![FindingKind::RecentDenials]);
        f.recent.suspensions = 1;
        let found = findings(&f, &limits(), NOW);
        assert_eq!(found[1].kind, FindingKind::Suspended);
        assert!(found[1].detail.contains("reinstated since"));
        f.agent.status = AgentStatus::Suspended;
        f.agent.status_reason = Some("5 attempts outside its scope".into());
        let found = findings(&f, &limits(), NOW);
        // A suspended agent is not also reported as lacking a grant or being stale.
        assert_eq!(
            found.iter().map(|f| f.kind).collect::<Vec<_>>(),
            vec![FindingKind::RecentDenials, FindingKind::Suspended]
        );
        assert_eq!(found[1].detail, "suspended: 5 attempts outside its scope");
    }

    #[test]
    fn finding_names_round_trip() {
        for k in FindingKind::ALL {
            assert_eq!(k.as_str().parse::<FindingKind>(), Ok(k));
            assert_eq!(serde_json::to_value(k).unwrap(), json!(k.as_str()));
        }
        assert!(
            "nope"
                .parse::<FindingKind>()
                .unwrap_err()
                .contains("orphaned")
        );
    }
}
