//! Grants: "human H lets agent A do actions S on resources R under constraints C until T".
//! Zero grants means zero authority.
//!
//! ```text
//! proposed ──accept──► active ──revoke──► revoked
//!    │                   └──(time)──► expired
//!    ├──decline──► declined
//!    └──(time)──► expired
//! ```
//!
//! Expiry is a fact of time, not a stored transition: a grant whose `expires_at` has passed
//! is `expired` whatever its stored state says ([`Grant::status_at`]).

use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::access::Caller;
use crate::error::{FieldError, RuleError, TransitionError};
use crate::id::{AgentId, GrantId, HumanId};
use crate::names::named_enum;
use crate::scope::ScopeSet;
use crate::validate;

named_enum! {
    /// Lifecycle state of a grant.
    pub enum GrantStatus: "status" {
        /// Created by someone other than the principal; waits for the principal.
        Proposed = "proposed",
        /// In force: tokens may be minted from it.
        Active = "active",
        /// Past its expiry (final).
        Expired = "expired",
        /// Withdrawn (final).
        Revoked = "revoked",
        /// Refused by the principal (final).
        Declined = "declined",
    }
}

named_enum! {
    /// A change of a grant's state.
    pub enum GrantAction: "action" {
        /// `proposed` → `active`, by the principal.
        Accept = "accept",
        /// `proposed` → `declined`, by the principal.
        Decline = "decline",
        /// `proposed | active` → `revoked`.
        Revoke = "revoke",
    }
}

impl GrantStatus {
    /// This stored state as it stands at `now` for a grant ending at `expires_at`: a
    /// proposed or active grant past its expiry is `expired`.
    #[must_use]
    pub fn at(self, expires_at: OffsetDateTime, now: OffsetDateTime) -> Self {
        match self {
            Self::Proposed | Self::Active if now >= expires_at => Self::Expired,
            s => s,
        }
    }

    /// The state after `action`, or why it is not allowed.
    pub fn apply(self, id: GrantId, action: GrantAction) -> Result<Self, TransitionError> {
        use GrantAction as A;
        use GrantStatus as S;
        match (self, action) {
            (S::Proposed, A::Accept) => Ok(S::Active),
            (S::Proposed, A::Decline) => Ok(S::Declined),
            (S::Proposed | S::Active, A::Revoke) => Ok(S::Revoked),
            (current, action) => Err(TransitionError::new("grant", id, action.as_str(), current)),
        }
    }
}

/// Deepest sub-agent chain any grant may allow.
pub const MAX_DELEGATION_DEPTH: u32 = 5;
/// Most resources in one grant.
pub const MAX_RESOURCES: usize = 16;
/// Largest constraints object, serialised, in bytes.
pub const MAX_CONSTRAINTS_BYTES: usize = 4096;
/// Longest resource URL, in bytes.
pub const MAX_RESOURCE_LEN: usize = 512;

/// A delegation of bounded authority.
#[derive(Debug, Clone, PartialEq)]
pub struct Grant {
    /// `grt_…`
    pub id: GrantId,
    /// Who acts.
    pub agent: AgentId,
    /// On whose behalf (whose authority is delegated).
    pub principal: HumanId,
    /// Who created it (the principal, or an admin / the agent's owner who proposed it).
    pub created_by: HumanId,
    /// Actions delegated.
    pub scopes: ScopeSet,
    /// Audiences (resource URLs) tokens may name.
    pub resources: Vec<String>,
    /// Limits for the policy decision point (`max_amount`, `allowed_domains`…).
    pub constraints: Value,
    /// How deep a chain of sub-agents may go (0: none).
    pub max_delegation_depth: u32,
    /// Stored state (see [`Grant::status_at`]).
    pub status: GrantStatus,
    /// Reason given for revoking or declining.
    pub status_reason: Option<String>,
    /// When created.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
    /// When it ends, whatever happens.
    pub expires_at: OffsetDateTime,
}

impl Grant {
    /// The state at `now`: a proposed or active grant past its expiry is `expired`.
    #[must_use]
    pub fn status_at(&self, now: OffsetDateTime) -> GrantStatus {
        self.status.at(self.expires_at, now)
    }

    /// The state after `action` at `now`, checking who may do it.
    pub fn decide(
        &self,
        caller: &Caller,
        agent_owner: HumanId,
        action: GrantAction,
        now: OffsetDateTime,
    ) -> Result<GrantStatus, RuleError> {
        match action {
            GrantAction::Accept | GrantAction::Decline if caller.id != self.principal => {
                return Err(RuleError::Forbidden(format!(
                    "only the principal `{}` may {action} this grant",
                    self.principal
                )));
            }
            GrantAction::Revoke => self.may_manage(caller, agent_owner)?,
            _ => {}
        }
        Ok(self.status_at(now).apply(self.id, action)?)
    }

    /// The principal, the agent's owner and admins may view and revoke a grant.
    pub fn may_manage(&self, caller: &Caller, agent_owner: HumanId) -> Result<(), RuleError> {
        if caller.is_admin() || caller.id == self.principal || caller.id == agent_owner {
            Ok(())
        } else {
            Err(RuleError::Forbidden(format!(
                "grant `{}` is neither yours nor for an agent you own",
                self.id
            )))
        }
    }
}

/// The validated terms of a new grant.
#[derive(Debug, Clone, PartialEq)]
pub struct NewGrant {
    /// Who acts.
    pub agent: AgentId,
    /// On whose behalf.
    pub principal: HumanId,
    /// Actions.
    pub scopes: ScopeSet,
    /// Audiences.
    pub resources: Vec<String>,
    /// Limits.
    pub constraints: Value,
    /// Sub-agent depth.
    pub max_delegation_depth: u32,
    /// End.
    pub expires_at: OffsetDateTime,
}

/// Raw terms, as they arrive.
#[derive(Debug, Clone)]
pub struct GrantTerms<'a> {
    /// Who acts.
    pub agent: AgentId,
    /// On whose behalf.
    pub principal: HumanId,
    /// Action names.
    pub scopes: &'a [String],
    /// Resource URLs.
    pub resources: &'a [String],
    /// Constraints (a JSON object), if any.
    pub constraints: Option<&'a Value>,
    /// Sub-agent depth, if given (default 0).
    pub max_delegation_depth: Option<u32>,
    /// End.
    pub expires_at: OffsetDateTime,
}

/// An absolute `https` (or `http`) URL without fragment or credentials: what a resource
/// server's audience looks like. Returned unchanged.
pub fn resource_url(field: &str, value: &str) -> Result<String, FieldError> {
    let bad = |reason: &str| FieldError::new(field, format!("`{value}` {reason}"));
    if value.is_empty() || value.len() > MAX_RESOURCE_LEN {
        return Err(FieldError::new(
            field,
            format!("a resource must be 1 to {MAX_RESOURCE_LEN} bytes"),
        ));
    }
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or_else(|| bad("is not an absolute http(s) URL"))?;
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') {
        return Err(bad("must name a host, without credentials"));
    }
    if value.contains('#') || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(
            "must not contain a fragment, spaces or control characters (RFC 8707 §2)",
        ));
    }
    Ok(value.to_owned())
}

impl NewGrant {
    /// Validates `terms` at `now`; expiry must fall within `max_lifetime`.
    pub fn parse(
        terms: &GrantTerms<'_>,
        now: OffsetDateTime,
        max_lifetime: Duration,
    ) -> Result<Self, RuleError> {
        let scopes = ScopeSet::from_tokens("scopes", terms.scopes)?;
        if scopes.is_empty() {
            return Err(
                FieldError::new("scopes", "a grant must delegate at least one action").into(),
            );
        }
        if terms.resources.is_empty() || terms.resources.len() > MAX_RESOURCES {
            return Err(FieldError::new(
                "resources",
                format!("a grant names 1 to {MAX_RESOURCES} resources"),
            )
            .into());
        }
        let mut resources = Vec::with_capacity(terms.resources.len());
        for r in terms.resources {
            let r = resource_url("resources", r)?;
            if !resources.contains(&r) {
                resources.push(r);
            }
        }
        let constraints = match terms.constraints {
            None | Some(Value::Null) => Value::Object(serde_json::Map::new()),
            Some(v @ Value::Object(_)) => {
                if v.to_string().len() > MAX_CONSTRAINTS_BYTES {
                    return Err(FieldError::new(
                        "constraints",
                        format!("must be at most {MAX_CONSTRAINTS_BYTES} bytes of JSON"),
                    )
                    .into());
                }
                v.clone()
            }
            Some(_) => return Err(FieldError::new("constraints", "must be a JSON object").into()),
        };
        // Who approves step-ups under this grant is checked now, not when the first one comes.
        crate::approval::quorum(terms.principal, &constraints)?;
        let depth = terms.max_delegation_depth.unwrap_or(0);
        if depth > MAX_DELEGATION_DEPTH {
            return Err(FieldError::new(
                "max_delegation_depth",
                format!("must be 0 to {MAX_DELEGATION_DEPTH}"),
            )
            .into());
        }
        if terms.expires_at <= now {
            return Err(FieldError::new("expires_at", "must be in the future").into());
        }
        if terms.expires_at > now + max_lifetime {
            return Err(FieldError::new(
                "expires_at",
                format!(
                    "must be within {} days (the server's maximum grant lifetime)",
                    max_lifetime.whole_days().max(0)
                ),
            )
            .into());
        }
        Ok(Self {
            agent: terms.agent,
            principal: terms.principal,
            scopes,
            resources,
            constraints,
            max_delegation_depth: depth,
            expires_at: terms.expires_at,
        })
    }

    /// The grant as first stored. Created by the principal it is `active`; created by
    /// anyone else (an admin, the agent's owner) it is `proposed` and waits for the
    /// principal.
    #[must_use]
    pub fn into_grant(self, id: GrantId, created_by: HumanId, now: OffsetDateTime) -> Grant {
        let status = if created_by == self.principal {
            GrantStatus::Active
        } else {
            GrantStatus::Proposed
        };
        Grant {
            id,
            agent: self.agent,
            principal: self.principal,
            created_by,
            scopes: self.scopes,
            resources: self.resources,
            constraints: self.constraints,
            max_delegation_depth: self.max_delegation_depth,
            status,
            status_reason: None,
            created_at: now,
            updated_at: now,
            expires_at: self.expires_at,
        }
    }
}

impl Caller {
    /// A human delegates their own authority; admins and the agent's owner may *propose* a
    /// grant on behalf of another principal. Anyone else is refused.
    pub fn may_create_grant(
        &self,
        principal: HumanId,
        agent_owner: HumanId,
    ) -> Result<(), RuleError> {
        if self.id == principal || self.is_admin() || self.id == agent_owner {
            Ok(())
        } else {
            Err(RuleError::Forbidden(
                "members may delegate their own authority, or propose grants for agents they own"
                    .into(),
            ))
        }
    }
}

/// Validates a free-text reason for revoking or declining.
pub fn reason(value: Option<&str>) -> Result<Option<String>, FieldError> {
    value
        .map(|r| validate::free_text("reason", r, validate::MAX_PURPOSE))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::human::Role;
    use serde_json::json;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);

    /// Ids carry random bits: make them once.
    static IDS: std::sync::LazyLock<(AgentId, HumanId, HumanId)> = std::sync::LazyLock::new(|| {
        (
            AgentId::new(NOW),
            HumanId::new(NOW),
            HumanId::new(NOW + Duration::SECOND),
        )
    });

    fn ids() -> (AgentId, HumanId, HumanId) {
        *IDS
    }

    fn terms<'a>(scopes: &'a [String], resources: &'a [String]) -> GrantTerms<'a> {
        let (agent, principal, _) = ids();
        GrantTerms {
            agent,
            principal,
            scopes,
            resources,
            constraints: None,
            max_delegation_depth: None,
            expires_at: NOW + Duration::days(1),
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn every_transition_matches_the_design_table() {
        use GrantAction as A;
        use GrantStatus as S;
        let id = GrantId::new(NOW);
        let expected = [
            (S::Proposed, A::Accept, Some(S::Active)),
            (S::Proposed, A::Decline, Some(S::Declined)),
            (S::Proposed, A::Revoke, Some(S::Revoked)),
            (S::Active, A::Accept, None),
            (S::Active, A::Decline, None),
            (S::Active, A::Revoke, Some(S::Revoked)),
        ];
        for (from, action, to) in expected {
            assert_eq!(from.apply(id, action).ok(), to, "{from} --{action}-->");
        }
        for terminal in [S::Expired, S::Revoked, S::Declined] {
            for action in A::ALL {
                assert_eq!(
                    terminal.apply(id, *action).unwrap_err().current,
                    terminal.as_str()
                );
            }
        }
    }

    #[test]
    fn grants_never_outlive_their_expiry() {
        let s = strings(&["crm.read"]);
        let r = strings(&["https://crm.example"]);
        let (_, principal, _) = ids();
        let grant = NewGrant::parse(&terms(&s, &r), NOW, Duration::days(30))
            .unwrap()
            .into_grant(GrantId::new(NOW), principal, NOW);
        assert_eq!(grant.status_at(NOW), GrantStatus::Active);
        assert_eq!(grant.status_at(grant.expires_at), GrantStatus::Expired);
        let me = Caller {
            id: principal,
            role: Role::Member,
        };
        let err = grant
            .decide(&me, principal, GrantAction::Revoke, grant.expires_at)
            .unwrap_err();
        assert!(matches!(err, RuleError::Transition(t) if t.current == "expired"));
    }

    #[test]
    fn created_by_someone_else_it_is_only_proposed() {
        let s = strings(&["crm.read"]);
        let r = strings(&["https://crm.example"]);
        let (_, principal, other) = ids();
        let grant = NewGrant::parse(&terms(&s, &r), NOW, Duration::days(30))
            .unwrap()
            .into_grant(GrantId::new(NOW), other, NOW);
        assert_eq!(grant.status, GrantStatus::Proposed);
        // Only the principal accepts — not the proposer, not an admin.
        let admin = Caller {
            id: other,
            role: Role::Admin,
        };
        assert!(matches!(
            grant.decide(&admin, other, GrantAction::Accept, NOW),
            Err(RuleError::Forbidden(_))
        ));
        let principal = Caller {
            id: principal,
            role: Role::Member,
        };
        assert_eq!(
            grant.decide(&principal, other, GrantAction::Accept, NOW),
            Ok(GrantStatus::Active)
        );
    }

    #[test]
    fn bad_terms_are_named() {
        let ok_s = strings(&["crm.read"]);
        let ok_r = strings(&["https://crm.example/api"]);
        let max = Duration::days(30);
        let cases: Vec<(GrantTerms<'_>, &str)> = vec![
            (terms(&[], &ok_r), "scopes"),
            (terms(&ok_s, &[]), "resources"),
            (
                GrantTerms {
                    expires_at: NOW,
                    ..terms(&ok_s, &ok_r)
                },
                "expires_at",
            ),
            (
                GrantTerms {
                    expires_at: NOW + Duration::days(31),
                    ..terms(&ok_s, &ok_r)
                },
                "expires_at",
            ),
            (
                GrantTerms {
                    max_delegation_depth: Some(6),
                    ..terms(&ok_s, &ok_r)
                },
                "max_delegation_depth",
            ),
        ];
        for (t, field) in cases {
            let err = NewGrant::parse(&t, NOW, max).unwrap_err();
            assert!(
                matches!(&err, RuleError::Invalid(f) if f.field == field),
                "{err}"
            );
        }
        let bad_json = json!(["not", "an", "object"]);
        let t = GrantTerms {
            constraints: Some(&bad_json),
            ..terms(&ok_s, &ok_r)
        };
        assert!(NewGrant::parse(&t, NOW, max).is_err());
        for bad in [
            "ftp://x",
            "https://",
            "https://u@h",
            "https://h/#f",
            "https://h/ x",
            "/relative",
        ] {
            assert!(resource_url("r", bad).is_err(), "{bad}");
        }
        assert!(resource_url("r", "http://127.0.0.1:8080/mcp").is_ok());
    }

    #[test]
    fn who_may_create_grants() {
        let (_, principal, owner) = ids();
        let stranger = HumanId::new(NOW + Duration::SECOND * 2);
        let member = |id| Caller {
            id,
            role: Role::Member,
        };
        assert!(member(principal).may_create_grant(principal, owner).is_ok());
        assert!(member(owner).may_create_grant(principal, owner).is_ok());
        assert!(member(stranger).may_create_grant(principal, owner).is_err());
        let admin = Caller {
            id: stranger,
            role: Role::Admin,
        };
        assert!(admin.may_create_grant(principal, owner).is_ok());
    }
}
