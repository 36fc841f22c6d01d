//! Audit events: who did what to which target, when, with what details.
//!
//! The shape is stable (schema version [`EVENT_SCHEMA_VERSION`]); a later version turns the
//! log into a Merkle tree over a canonical encoding of exactly these fields.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;

use crate::id::{AgentId, EventId, HumanId, InvalidId, PrincipalId};
use crate::names::named_enum;

/// Version of the event encoding written by this code.
pub const EVENT_SCHEMA_VERSION: u16 = 1;

named_enum! {
    /// What happened.
    pub enum EventKind: "type" {
        /// The deployment was initialised with its first admin.
        OrgInitialized = "org.initialized",
        /// A human was registered.
        HumanCreated = "human.created",
        /// A one-time enrollment code was issued for a human.
        HumanEnrollmentCodeIssued = "human.enrollment_code_issued",
        /// A device key was enrolled for a human.
        HumanKeyEnrolled = "human.key_enrolled",
        /// A human's device key was revoked.
        HumanKeyRevoked = "human.key_revoked",
        /// A human was deactivated (off-boarded).
        HumanDeactivated = "human.deactivated",
        /// A human was reactivated.
        HumanReactivated = "human.reactivated",
        /// An agent was registered.
        AgentRegistered = "agent.registered",
        /// An agent was suspended.
        AgentSuspended = "agent.suspended",
        /// An agent was reinstated by its owner.
        AgentReinstated = "agent.reinstated",
        /// An agent was revoked (final).
        AgentRevoked = "agent.revoked",
        /// An agent was retired (final).
        AgentRetired = "agent.retired",
        /// A key was added to an agent.
        AgentKeyAdded = "agent.key_added",
        /// An agent key was retired by rotation.
        AgentKeyRetired = "agent.key_retired",
        /// An agent key was revoked.
        AgentKeyRevoked = "agent.key_revoked",
        /// A grant was created (`active`) or proposed (`proposed`).
        GrantCreated = "grant.created",
        /// A proposed grant was accepted by its principal.
        GrantAccepted = "grant.accepted",
        /// A proposed grant was declined by its principal.
        GrantDeclined = "grant.declined",
        /// A grant was revoked.
        GrantRevoked = "grant.revoked",
        /// An access token was issued.
        TokenIssued = "token.issued",
        /// An access token was revoked (RFC 7009).
        TokenRevoked = "token.revoked",
        /// An organisation signing key was created.
        SigningKeyCreated = "signing_key.created",
        /// The signing key was rotated: a new key signs, the old one stays published.
        SigningKeyRotated = "signing_key.rotated",
        /// A resource server was registered as a client.
        ResourceServerRegistered = "resource_server.registered",
        /// A decision was made about an agent's action (allow, deny or step-up).
        DecisionMade = "decision.made",
        /// A policy set was applied (or an earlier one applied again: a rollback).
        PolicyApplied = "policy.applied",
        /// An agent asked a human to approve one action (CIBA request).
        ApprovalRequested = "approval.requested",
        /// An approver approved or denied (one vote; a quorum may need more).
        ApprovalVoted = "approval.voted",
        /// The request was approved (its quorum reached).
        ApprovalApproved = "approval.approved",
        /// The request was denied.
        ApprovalDenied = "approval.denied",
        /// The request was cancelled (agent or grant revoked, approver gone).
        ApprovalCancelled = "approval.cancelled",
        /// The request expired before it was decided.
        ApprovalExpired = "approval.expired",
        /// The approval was redeemed for a one-time approval token.
        ApprovalRedeemed = "approval.redeemed",
        /// The approval was consumed by the decision it approved.
        ApprovalConsumed = "approval.consumed",
        /// An agent's CIBA ping endpoint was set or cleared.
        AgentNotificationEndpointSet = "agent.notification_endpoint_set",
        /// A passkey was registered for a human.
        HumanPasskeyRegistered = "human.passkey_registered",
        /// A human's passkey was revoked (their web sessions end with it).
        HumanPasskeyRevoked = "human.passkey_revoked",
        /// A one-time passkey enrollment link was issued for a human.
        HumanInvited = "human.invited",
        /// A federation peer was trusted.
        FederationPeerAdded = "federation.peer_added",
        /// A federation peer's keys changed (fetched anew).
        FederationPeerKeysChanged = "federation.peer_keys_changed",
        /// A federation peer is no longer trusted.
        FederationPeerRemoved = "federation.peer_removed",
        /// A federation grant was created.
        FederationGrantCreated = "federation.grant_created",
        /// A federation grant was revoked.
        FederationGrantRevoked = "federation.grant_revoked",
        /// An agent card was published.
        AgentCardPublished = "agent.card_published",
        /// An agent card was withdrawn.
        AgentCardWithdrawn = "agent.card_withdrawn",
        /// A receiver created a security event stream.
        SignalStreamCreated = "signals.stream_created",
        /// A receiver deleted a security event stream.
        SignalStreamDeleted = "signals.stream_deleted",
    }
}

/// Who caused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Actor {
    /// A human, through the admin API or CLI.
    Human(HumanId),
    /// An agent.
    Agent(AgentId),
    /// Surety itself (bootstrap, cascades, expiry).
    System,
}

impl From<PrincipalId> for Actor {
    fn from(p: PrincipalId) -> Self {
        match p {
            PrincipalId::Human(h) => Self::Human(h),
            PrincipalId::Agent(a) => Self::Agent(a),
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Human(id) => id.fmt(f),
            Self::Agent(id) => id.fmt(f),
            Self::System => f.write_str("system"),
        }
    }
}

impl FromStr for Actor {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "system" {
            Ok(Self::System)
        } else {
            s.parse::<PrincipalId>().map(Self::from)
        }
    }
}

impl Serialize for Actor {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Actor {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An event about to be appended, written in the same transaction as the change it records.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// `evt_…`, time-ordered.
    pub id: EventId,
    /// When it happened.
    pub time: OffsetDateTime,
    /// What happened.
    pub kind: EventKind,
    /// Who did it.
    pub actor: Actor,
    /// The id of the thing it happened to (`agt_…`, `hum_…`, a key thumbprint).
    pub target: String,
    /// The agent concerned, if any (for filtering).
    pub agent: Option<AgentId>,
    /// The human concerned — the subject, or the owner of the agent concerned — if any.
    pub human: Option<HumanId>,
    /// Event-specific details (reasons, previous and new states, key ids).
    pub details: serde_json::Value,
}

/// Version of the encoding of events as leaves of the Merkle log ([`NewEvent::leaf_entry`]).
pub const LEAF_VERSION: u64 = 1;

impl NewEvent {
    /// The event as a leaf of the tamper-evident log: the canonical JSON
    /// ([`crate::canonical`]) of every field as stored — the time in microseconds since the
    /// epoch — with the encoding's version. Anyone holding the stored event computes the same
    /// bytes.
    #[must_use]
    pub fn leaf_entry(&self) -> Vec<u8> {
        let time = crate::clock::truncate_to_micros(self.time);
        let micros = i64::try_from(time.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX);
        let entry = serde_json::json!({
            "v": LEAF_VERSION,
            "schema": EVENT_SCHEMA_VERSION,
            "id": self.id.to_string(),
            "time_us": micros,
            "kind": self.kind.as_str(),
            "actor": self.actor.to_string(),
            "target": self.target,
            "agent": self.agent.map(|a| a.to_string()),
            "human": self.human.map(|h| h.to_string()),
            "details": self.details,
        });
        crate::canonical::to_string(&entry).into_bytes()
    }

    /// An event of `kind` by `actor` on `target`, at `time`.
    pub fn new(
        kind: EventKind,
        actor: Actor,
        target: impl fmt::Display,
        time: OffsetDateTime,
    ) -> Self {
        Self {
            id: EventId::new(time),
            time,
            kind,
            actor,
            target: target.to_string(),
            agent: None,
            human: None,
            details: serde_json::Value::Object(serde_json::Map::new()),
        }
    }

    /// Records the agent concerned.
    #[must_use]
    pub fn agent(mut self, id: AgentId) -> Self {
        self.agent = Some(id);
        self
    }

    /// Records the human concerned.
    #[must_use]
    pub fn human(mut self, id: HumanId) -> Self {
        self.human = Some(id);
        self
    }

    /// Sets the details object.
    #[must_use]
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// An event as stored: a [`NewEvent`] plus its position in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEvent {
    /// Position in the log, assigned at append; strictly increasing.
    pub seq: i64,
    /// Its leaf in the log's Merkle tree (0-based, commit order): what inclusion proofs
    /// name. `None` only while an older log is being given its tree.
    pub leaf_index: Option<u64>,
    /// The event.
    pub event: NewEvent,
}

/// Which events a caller may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditScope {
    /// Every event (admins).
    All,
    /// Events whose actor or concerned human is this human (members).
    Involving(HumanId),
}

/// Filters on the audit log; all optional, combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Events concerning this agent.
    pub agent: Option<AgentId>,
    /// Events concerning this human.
    pub human: Option<HumanId>,
    /// Events with this target id.
    pub target: Option<String>,
    /// Events of this kind.
    pub kind: Option<EventKind>,
    /// At or after this time.
    pub since: Option<OffsetDateTime>,
    /// Strictly before this time.
    pub until: Option<OffsetDateTime>,
}
