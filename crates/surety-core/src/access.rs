//! Who may administer what. Admins manage everything; members manage only agents they own.
//! Reinstating a suspended agent is reserved to its owner, whatever the caller's role.

use crate::agent::{Agent, AgentAction};
use crate::audit::AuditScope;
use crate::error::RuleError;
use crate::human::Role;
use crate::id::HumanId;

/// An authenticated human calling the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// Who.
    pub id: HumanId,
    /// Their role at the time of the call.
    pub role: Role,
}

fn forbidden(msg: impl Into<String>) -> RuleError {
    RuleError::Forbidden(msg.into())
}

impl Caller {
    /// Whether the caller is an admin.
    #[must_use]
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Only admins may `what`.
    pub fn require_admin(&self, what: &str) -> Result<(), RuleError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(forbidden(format!("only admins may {what}")))
        }
    }

    /// Admins see every human; members see themselves.
    pub fn may_view_human(&self, human: HumanId) -> Result<(), RuleError> {
        if self.is_admin() || self.id == human {
            Ok(())
        } else {
            Err(forbidden("members may only view themselves"))
        }
    }

    /// Admins may revoke any device key; members only their own.
    pub fn may_revoke_device_key(&self, holder: HumanId) -> Result<(), RuleError> {
        if self.is_admin() || self.id == holder {
            Ok(())
        } else {
            Err(forbidden("members may only revoke their own device keys"))
        }
    }

    /// Admins register agents for anyone; members only for themselves.
    pub fn may_register_agent_for(&self, owner: HumanId) -> Result<(), RuleError> {
        if self.is_admin() || self.id == owner {
            Ok(())
        } else {
            Err(forbidden(format!(
                "members may only register agents they own (owner `{owner}` is not you)"
            )))
        }
    }

    /// Admins see every agent; members see the agents they own.
    pub fn may_view_agent(&self, agent: &Agent) -> Result<(), RuleError> {
        if self.is_admin() || self.id == agent.owner {
            Ok(())
        } else {
            Err(forbidden(format!(
                "agent `{}` is owned by someone else",
                agent.id
            )))
        }
    }

    /// Key changes follow the same rule as viewing: admins, or the owner.
    pub fn may_change_agent_keys(&self, agent: &Agent) -> Result<(), RuleError> {
        self.may_view_agent(agent)
    }

    /// Lifecycle changes: admins or the owner; reinstating only the owner.
    pub fn may_apply(&self, agent: &Agent, action: AgentAction) -> Result<(), RuleError> {
        match action {
            AgentAction::Reinstate if self.id != agent.owner => Err(forbidden(format!(
                "only the owner of agent `{}` may reinstate it",
                agent.id
            ))),
            AgentAction::Reinstate => Ok(()),
            AgentAction::Suspend | AgentAction::Revoke | AgentAction::Retire => {
                self.may_view_agent(agent)
            }
        }
    }

    /// Which owner an agent listing is restricted to: members are restricted to themselves
    /// and may not ask for another owner.
    pub fn agent_list_owner(
        &self,
        requested: Option<HumanId>,
    ) -> Result<Option<HumanId>, RuleError> {
        match (self.is_admin(), requested) {
            (true, requested) => Ok(requested),
            (false, None) => Ok(Some(self.id)),
            (false, Some(owner)) if owner == self.id => Ok(Some(owner)),
            (false, Some(_)) => Err(forbidden("members may only list the agents they own")),
        }
    }

    /// Which audit events the caller may read.
    #[must_use]
    pub fn audit_scope(&self) -> AuditScope {
        if self.is_admin() {
            AuditScope::All
        } else {
            AuditScope::Involving(self.id)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::agent::NewAgent;
    use crate::id::AgentId;
    use time::macros::datetime;

    fn at() -> time::OffsetDateTime {
        datetime!(2026-01-01 00:00 UTC)
    }

    fn agent_of(owner: HumanId) -> Agent {
        NewAgent::parse("bot", owner, None, None, &BTreeMap::new())
            .unwrap()
            .into_agent(AgentId::new(at()), at())
    }

    #[test]
    fn members_act_only_on_their_own_agents() {
        let alice = Caller {
            id: HumanId::new(at()),
            role: Role::Member,
        };
        let bob = HumanId::new(at());
        let theirs = agent_of(bob);
        let mine = agent_of(alice.id);
        assert!(alice.may_view_agent(&theirs).is_err());
        assert!(alice.may_apply(&theirs, AgentAction::Suspend).is_err());
        assert!(alice.may_register_agent_for(bob).is_err());
        assert!(alice.may_apply(&mine, AgentAction::Revoke).is_ok());
        assert_eq!(alice.agent_list_owner(None), Ok(Some(alice.id)));
        assert!(alice.agent_list_owner(Some(bob)).is_err());
        assert_eq!(alice.audit_scope(), AuditScope::Involving(alice.id));
    }

    #[test]
    fn only_the_owner_reinstates_even_against_an_admin() {
        let admin = Caller {
            id: HumanId::new(at()),
            role: Role::Admin,
        };
        let owner = Caller {
            id: HumanId::new(at()),
            role: Role::Member,
        };
        let agent = agent_of(owner.id);
        assert!(admin.may_apply(&agent, AgentAction::Suspend).is_ok());
        assert!(matches!(
            admin.may_apply(&agent, AgentAction::Reinstate),
            Err(RuleError::Forbidden(_))
        ));
        assert!(owner.may_apply(&agent, AgentAction::Reinstate).is_ok());
    }

    #[test]
    fn admins_manage_everything_else() {
        let admin = Caller {
            id: HumanId::new(at()),
            role: Role::Admin,
        };
        let other = HumanId::new(at());
        assert!(admin.require_admin("add humans").is_ok());
        assert!(admin.may_view_human(other).is_ok());
        assert!(admin.may_register_agent_for(other).is_ok());
        assert_eq!(admin.agent_list_owner(None), Ok(None));
        let member = Caller {
            id: other,
            role: Role::Member,
        };
        assert!(member.require_admin("add humans").is_err());
        assert!(member.may_view_human(admin.id).is_err());
        assert!(member.may_view_human(other).is_ok());
    }
}
