//! Public keys held by principals: an agent's keys and a human's enrolled device keys.
//!
//! A key is identified by its RFC 7638 JWK thumbprint (`kid`). Thumbprints are unique across
//! every principal and for ever: a key that was once registered, even if later revoked, can
//! never be registered again.

use time::OffsetDateTime;

use crate::error::TransitionError;
use crate::id::PrincipalId;
use crate::names::named_enum;

named_enum! {
    /// Lifecycle of a key: `active` → `retired` → `revoked`, or `active` → `revoked`.
    pub enum KeyStatus: "status" {
        /// Accepted for authentication.
        Active = "active",
        /// Replaced by rotation; no longer accepted.
        Retired = "retired",
        /// Withdrawn (compromise); never accepted again.
        Revoked = "revoked",
    }
}

named_enum! {
    /// A change of a key's state.
    pub enum KeyAction: "action" {
        /// `active` → `retired`.
        Retire = "retire",
        /// `active | retired` → `revoked`.
        Revoke = "revoke",
    }
}

impl KeyStatus {
    /// The state after `action`, or why it is not allowed.
    pub fn apply(self, kid: &str, action: KeyAction) -> Result<Self, TransitionError> {
        match (self, action) {
            (Self::Active, KeyAction::Retire) => Ok(Self::Retired),
            (Self::Active | Self::Retired, KeyAction::Revoke) => Ok(Self::Revoked),
            (current, action) => Err(TransitionError::new("key", kid, action.as_str(), current)),
        }
    }
}

/// A registered public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    /// RFC 7638 thumbprint of the key.
    pub kid: String,
    /// Who holds the private half.
    pub holder: PrincipalId,
    /// Signing algorithm family of the key (`EdDSA` or `ES256`).
    pub alg: String,
    /// The public JWK, as validated at registration.
    pub jwk: serde_json::Value,
    /// Lifecycle state.
    pub status: KeyStatus,
    /// When registered.
    pub created_at: OffsetDateTime,
    /// When the status last changed (retired or revoked), if it did.
    pub status_changed_at: Option<OffsetDateTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revoked_keys_never_come_back() {
        assert_eq!(
            KeyStatus::Active.apply("k", KeyAction::Retire),
            Ok(KeyStatus::Retired)
        );
        assert_eq!(
            KeyStatus::Retired.apply("k", KeyAction::Revoke),
            Ok(KeyStatus::Revoked)
        );
        assert!(KeyStatus::Revoked.apply("k", KeyAction::Revoke).is_err());
        assert!(KeyStatus::Revoked.apply("k", KeyAction::Retire).is_err());
        assert!(KeyStatus::Retired.apply("k", KeyAction::Retire).is_err());
    }
}
