//! Human principals: they own agents, delegate authority, approve actions and administer
//! Surety. They authenticate only with enrolled device keys.

use time::OffsetDateTime;

use crate::error::{RuleError, TransitionError};
use crate::id::HumanId;
use crate::names::named_enum;
use crate::validate;

named_enum! {
    /// What a human may administer.
    pub enum Role: "role" {
        /// Manages everything.
        Admin = "admin",
        /// Manages only the agents they own.
        Member = "member",
    }
}

named_enum! {
    /// Lifecycle of a human: `active` ⇄ `deactivated`.
    pub enum HumanStatus: "status" {
        /// May authenticate, own agents and approve.
        Active = "active",
        /// Off-boarded: cannot authenticate; their agents were suspended.
        Deactivated = "deactivated",
    }
}

named_enum! {
    /// A change of a human's lifecycle state.
    pub enum HumanAction: "action" {
        /// `active` → `deactivated`.
        Deactivate = "deactivate",
        /// `deactivated` → `active`.
        Reactivate = "reactivate",
    }
}

/// A registered human.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Human {
    /// `hum_…`
    pub id: HumanId,
    /// Name shown to people.
    pub display_name: String,
    /// Unique, lower-case.
    pub email: String,
    /// Admin or member.
    pub role: Role,
    /// Lifecycle state.
    pub status: HumanStatus,
    /// When registered.
    pub created_at: OffsetDateTime,
    /// Last change.
    pub updated_at: OffsetDateTime,
}

/// The validated input to register a human.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHuman {
    /// Name shown to people.
    pub display_name: String,
    /// E-mail, normalised.
    pub email: String,
    /// Role.
    pub role: Role,
}

impl NewHuman {
    /// Validates raw input.
    pub fn parse(display_name: &str, email: &str, role: Role) -> Result<Self, RuleError> {
        Ok(Self {
            display_name: validate::display_name("display_name", display_name)?,
            email: validate::email("email", email)?,
            role,
        })
    }

    /// The human as first stored: active, created `now`.
    #[must_use]
    pub fn into_human(self, id: HumanId, now: OffsetDateTime) -> Human {
        Human {
            id,
            display_name: self.display_name,
            email: self.email,
            role: self.role,
            status: HumanStatus::Active,
            created_at: now,
            updated_at: now,
        }
    }
}

impl HumanStatus {
    /// The state after `action`, or why it is not allowed.
    pub fn apply(self, id: HumanId, action: HumanAction) -> Result<Self, TransitionError> {
        match (self, action) {
            (Self::Active, HumanAction::Deactivate) => Ok(Self::Deactivated),
            (Self::Deactivated, HumanAction::Reactivate) => Ok(Self::Active),
            (current, action) => Err(TransitionError::new("human", id, action.as_str(), current)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn human_lifecycle_allows_only_the_two_moves() {
        let id = HumanId::new(datetime!(2026-01-01 00:00 UTC));
        assert_eq!(
            HumanStatus::Active.apply(id, HumanAction::Deactivate),
            Ok(HumanStatus::Deactivated)
        );
        assert_eq!(
            HumanStatus::Deactivated.apply(id, HumanAction::Reactivate),
            Ok(HumanStatus::Active)
        );
        let err = HumanStatus::Active
            .apply(id, HumanAction::Reactivate)
            .unwrap_err();
        assert_eq!(err.current, "active");
        assert!(
            HumanStatus::Deactivated
                .apply(id, HumanAction::Deactivate)
                .is_err()
        );
    }
}
