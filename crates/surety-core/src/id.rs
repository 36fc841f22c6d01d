//! Typed identifiers: a short prefix naming the kind (`hum_`, `agt_`, `evt_`) followed by a
//! UUIDv7 in lower-case hex, so ids sort by creation time and never mix kinds.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use uuid::{Timestamp, Uuid};

/// Why a string is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {kind} id (expected `{prefix}` followed by 32 hex digits)")]
pub struct InvalidId {
    /// The rejected input (truncated).
    pub value: String,
    /// Kind of id that was expected.
    pub kind: &'static str,
    /// Prefix that was expected.
    pub prefix: &'static str,
}

fn new_v7(at: OffsetDateTime) -> Uuid {
    let nanos = at.unix_timestamp_nanos();
    let secs = u64::try_from(nanos.div_euclid(1_000_000_000)).unwrap_or(0);
    let subsec = u32::try_from(nanos.rem_euclid(1_000_000_000)).unwrap_or(0);
    Uuid::new_v7(Timestamp::from_unix(uuid::NoContext, secs, subsec))
}

fn parse_prefixed(s: &str, prefix: &'static str, kind: &'static str) -> Result<Uuid, InvalidId> {
    let invalid = || InvalidId {
        value: s.chars().take(64).collect(),
        kind,
        prefix,
    };
    let hex = s.strip_prefix(prefix).ok_or_else(invalid)?;
    if hex.len() != 32 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(invalid());
    }
    Uuid::try_parse(hex).map_err(|_| invalid())
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// The prefix every id of this kind starts with.
            pub const PREFIX: &'static str = $prefix;

            /// A new id whose time-ordered part is `at`.
            #[must_use]
            pub fn new(at: OffsetDateTime) -> Self {
                Self(new_v7(at))
            }

            /// The underlying UUID.
            #[must_use]
            pub fn uuid(&self) -> Uuid {
                self.0
            }

            /// The instant the id was made at, to the millisecond (UUIDv7's timestamp).
            #[must_use]
            pub fn time(&self) -> Option<OffsetDateTime> {
                let (secs, nanos) = self.0.get_timestamp()?.to_unix();
                let at = OffsetDateTime::from_unix_timestamp(i64::try_from(secs).ok()?).ok()?;
                Some(at + time::Duration::nanoseconds(i64::from(nanos)))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, self.0.simple())
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                parse_prefixed(s, $prefix, $kind).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

prefixed_id!(
    /// A human principal.
    HumanId,
    "hum_",
    "human"
);
prefixed_id!(
    /// An agent identity.
    AgentId,
    "agt_",
    "agent"
);
prefixed_id!(
    /// A grant: a human's delegation of bounded authority to an agent.
    GrantId,
    "grt_",
    "grant"
);
prefixed_id!(
    /// A federation grant: what a peer organisation's agents may do here.
    FederationGrantId,
    "fgr_",
    "federation grant"
);
prefixed_id!(
    /// A resource server registered as an OAuth client (for introspection).
    ResourceServerId,
    "rsv_",
    "resource server"
);
prefixed_id!(
    /// An access token (its `jti`): the time-ordered part says, to the millisecond, when it
    /// was issued — finer than `iat`, which revocation watermarks need.
    TokenId,
    "tok_",
    "token"
);
prefixed_id!(
    /// A request for a human's approval of one action (a CIBA authentication request).
    ApprovalId,
    "apr_",
    "approval"
);
prefixed_id!(
    /// An audit event.
    EventId,
    "evt_",
    "event"
);

/// Any principal that can be the actor of an audited change, or the holder of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrincipalId {
    /// A human.
    Human(HumanId),
    /// An agent.
    Agent(AgentId),
}

impl fmt::Display for PrincipalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Human(id) => id.fmt(f),
            Self::Agent(id) => id.fmt(f),
        }
    }
}

impl FromStr for PrincipalId {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with(HumanId::PREFIX) {
            s.parse().map(Self::Human)
        } else {
            s.parse().map(Self::Agent)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn ids_round_trip_and_sort_by_time() {
        let a = AgentId::new(datetime!(2026-01-01 00:00:00 UTC));
        let b = AgentId::new(datetime!(2026-01-01 00:00:01 UTC));
        assert!(a.to_string() < b.to_string());
        assert!(a.to_string().starts_with("agt_"));
        assert_eq!(a.to_string().len(), 4 + 32);
        assert_eq!(a.to_string().parse::<AgentId>(), Ok(a));
        assert_eq!(a.uuid().get_version_num(), 7);
    }

    #[test]
    fn ids_tell_when_they_were_made_to_the_millisecond() {
        let at = datetime!(2026-01-01 00:00:01.234567 UTC);
        assert_eq!(
            TokenId::new(at).time(),
            Some(datetime!(2026-01-01 00:00:01.234 UTC))
        );
    }

    #[test]
    fn ids_of_another_kind_are_rejected() {
        let h = HumanId::new(datetime!(2026-01-01 00:00:00 UTC));
        assert!(h.to_string().parse::<AgentId>().is_err());
        assert!("agt_".parse::<AgentId>().is_err());
        assert!(
            "agt_0190A6B2C3D47E8F9A0B1C2D3E4F5A6B"
                .parse::<AgentId>()
                .is_err()
        );
        assert!(
            "agt_0190a6b2-c3d4-7e8f-9a0b-1c2d3e4f"
                .parse::<AgentId>()
                .is_err()
        );
    }

    #[test]
    fn principal_ids_dispatch_on_prefix() {
        let h = HumanId::new(datetime!(2026-01-01 00:00:00 UTC));
        assert_eq!(h.to_string().parse(), Ok(PrincipalId::Human(h)));
        assert!("xyz_1".parse::<PrincipalId>().is_err());
    }
}
