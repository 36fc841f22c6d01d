//! Agents: first-class non-human identities with an owner, keys and a lifecycle.
//!
//! ```text
//! active ⇄ suspended ──► revoked | retired   (terminal)
//!    └───────────────────► revoked | retired
//! ```

use std::collections::BTreeMap;

use time::OffsetDateTime;

use crate::error::{RuleError, TransitionError};
use crate::id::{AgentId, HumanId};
use crate::names::named_enum;
use crate::validate;

named_enum! {
    /// Lifecycle state of an agent.
    pub enum AgentStatus: "status" {
        /// Can authenticate; acts only within its grants.
        Active = "active",
        /// Blocked from every token and decision until its owner reinstates it.
        Suspended = "suspended",
        /// Final: compromised or misbehaving. Its keys are revoked with it.
        Revoked = "revoked",
        /// Final: decommissioned. Its keys are retired with it.
        Retired = "retired",
    }
}

named_enum! {
    /// A change of an agent's lifecycle state.
    pub enum AgentAction: "action" {
        /// `active` → `suspended`.
        Suspend = "suspend",
        /// `suspended` → `active`; only the owner may.
        Reinstate = "reinstate",
        /// `active | suspended` → `revoked`.
        Revoke = "revoke",
        /// `active | suspended` → `retired`.
        Retire = "retire",
    }
}

impl AgentStatus {
    /// The state after `action`, or why it is not allowed.
    pub fn apply(self, id: AgentId, action: AgentAction) -> Result<Self, TransitionError> {
        use AgentAction as A;
        use AgentStatus as S;
        match (self, action) {
            (S::Active, A::Suspend) => Ok(S::Suspended),
            (S::Suspended, A::Reinstate) => Ok(S::Active),
            (S::Active | S::Suspended, A::Revoke) => Ok(S::Revoked),
            (S::Active | S::Suspended, A::Retire) => Ok(S::Retired),
            (current, action) => Err(TransitionError::new("agent", id, action.as_str(), current)),
        }
    }

    /// Whether no transition leaves this state.
    #[must_use]
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Revoked | Self::Retired)
    }
}

/// Why an agent was suspended when its owner was off-boarded; recorded on the agent and in
/// each audit event.
pub const OWNER_DEACTIVATED: &str = "owner deactivated";

/// A registered agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    /// `agt_…`
    pub id: AgentId,
    /// Unique per owner (ignoring case).
    pub name: String,
    /// The accountable human.
    pub owner: HumanId,
    /// What it is for.
    pub purpose: String,
    /// Deployment environment label (`production`, `staging`…).
    pub environment: String,
    /// Free key/value labels.
    pub labels: BTreeMap<String, String>,
    /// Lifecycle state.
    pub status: AgentStatus,
    /// Reason given for the last status change, if any.
    pub status_reason: Option<String>,
    /// When registered.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// Last successful authentication, if any.
    pub last_seen_at: Option<OffsetDateTime>,
}

/// The validated input to register an agent (its first key travels separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAgent {
    /// Name.
    pub name: String,
    /// Owner.
    pub owner: HumanId,
    /// Purpose.
    pub purpose: String,
    /// Environment.
    pub environment: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
}

/// Environment used when none is given.
pub const DEFAULT_ENVIRONMENT: &str = "default";

impl NewAgent {
    /// Validates raw input.
    pub fn parse(
        name: &str,
        owner: HumanId,
        purpose: Option<&str>,
        environment: Option<&str>,
        labels: &BTreeMap<String, String>,
    ) -> Result<Self, RuleError> {
        Ok(Self {
            name: validate::agent_name("name", name)?,
            owner,
            purpose: validate::free_text("purpose", purpose.unwrap_or(""), validate::MAX_PURPOSE)?,
            environment: validate::environment(
                "environment",
                environment.unwrap_or(DEFAULT_ENVIRONMENT),
            )?,
            labels: validate::labels("labels", labels)?,
        })
    }

    /// The agent as first stored: active, with no grants, created `now`.
    #[must_use]
    pub fn into_agent(self, id: AgentId, now: OffsetDateTime) -> Agent {
        Agent {
            id,
            name: self.name,
            owner: self.owner,
            purpose: self.purpose,
            environment: self.environment,
            labels: self.labels,
            status: AgentStatus::Active,
            status_reason: None,
            created_at: now,
            updated_at: now,
            last_seen_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn id() -> AgentId {
        AgentId::new(datetime!(2026-01-01 00:00 UTC))
    }

    #[test]
    fn every_transition_matches_the_design_table() {
        use AgentAction as A;
        use AgentStatus as S;
        let expected = [
            (S::Active, A::Suspend, Some(S::Suspended)),
            (S::Active, A::Reinstate, None),
            (S::Active, A::Revoke, Some(S::Revoked)),
            (S::Active, A::Retire, Some(S::Retired)),
            (S::Suspended, A::Suspend, None),
            (S::Suspended, A::Reinstate, Some(S::Active)),
            (S::Suspended, A::Revoke, Some(S::Revoked)),
            (S::Suspended, A::Retire, Some(S::Retired)),
        ];
        for (from, action, to) in expected {
            assert_eq!(from.apply(id(), action).ok(), to, "{from} --{action}-->");
        }
        for terminal in [S::Revoked, S::Retired] {
            assert!(terminal.is_terminal());
            for action in A::ALL {
                let err = terminal.apply(id(), *action).unwrap_err();
                assert_eq!(err.current, terminal.as_str());
            }
        }
    }

    #[test]
    fn new_agents_start_active_with_defaults() {
        let owner = HumanId::new(datetime!(2026-01-01 00:00 UTC));
        let new = NewAgent::parse("bot", owner, None, None, &BTreeMap::new()).unwrap();
        let agent = new.into_agent(id(), datetime!(2026-01-01 00:00 UTC));
        assert_eq!(agent.status, AgentStatus::Active);
        assert_eq!(agent.environment, DEFAULT_ENVIRONMENT);
        assert!(agent.last_seen_at.is_none());
    }

    #[test]
    fn bad_fields_are_named() {
        let owner = HumanId::new(datetime!(2026-01-01 00:00 UTC));
        let err = NewAgent::parse("bot", owner, None, Some("Prod"), &BTreeMap::new()).unwrap_err();
        assert!(matches!(err, RuleError::Invalid(f) if f.field == "environment"));
    }
}
