//! Security events for receivers (OpenID Shared Signals Framework): which audit events
//! become signals, as which event type, about which subject, and whose they are to see.
//!
//! - a token revoked → CAEP `session-revoked`, subject the token's `jti`;
//! - a grant revoked → CAEP `session-revoked`, subject the grant (every token minted from it
//!   ends);
//! - an agent key revoked or retired → CAEP `credential-change` (`revoke`), subject the key's
//!   RFC 7638 thumbprint (the `cnf.jkt` of the tokens bound to it);
//! - an agent suspended, revoked or retired, a human deactivated, a step-up approved or
//!   denied → Surety's own event types, subject the agent, human or approval.
//!
//! Subjects are RFC 9493 `opaque` identifiers: receivers match them against the claims of the
//! tokens they hold (`jti`, `grant_id`, `cnf.jkt`, `act` agents, `sub`).

use serde_json::{Value, json};

use crate::audit::{EventKind, NewEvent};
use crate::id::{AgentId, GrantId, HumanId};

/// CAEP 1.0 session revoked.
pub const SESSION_REVOKED: &str =
    "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
/// CAEP 1.0 credential change.
pub const CREDENTIAL_CHANGE: &str =
    "https://schemas.openid.net/secevent/caep/event-type/credential-change";
/// SSF 1.0 verification.
pub const VERIFICATION: &str = "https://schemas.openid.net/secevent/ssf/event-type/verification";
/// An agent was suspended.
pub const AGENT_SUSPENDED: &str = "urn:surety:secevent:agent-suspended";
/// An agent was revoked or retired (final).
pub const AGENT_REVOKED: &str = "urn:surety:secevent:agent-revoked";
/// A human was deactivated: their agents are suspended and their tokens end.
pub const HUMAN_DEACTIVATED: &str = "urn:surety:secevent:human-deactivated";
/// A step-up was approved.
pub const APPROVAL_APPROVED: &str = "urn:surety:secevent:approval-approved";
/// A step-up was denied.
pub const APPROVAL_DENIED: &str = "urn:surety:secevent:approval-denied";

/// Every event type a stream may ask for.
pub const EVENT_TYPES: [&str; 7] = [
    SESSION_REVOKED,
    CREDENTIAL_CHANGE,
    AGENT_SUSPENDED,
    AGENT_REVOKED,
    HUMAN_DEACTIVATED,
    APPROVAL_APPROVED,
    APPROVAL_DENIED,
];

/// Whose tokens a signal is about: a receiver sees it when they could reach it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concerns {
    /// Tokens minted from this grant.
    Grant(GrantId),
    /// Tokens of this agent.
    Agent(AgentId),
    /// Tokens for this human.
    Human(HumanId),
}

/// A security event, before it is addressed and signed.
#[derive(Debug, Clone, PartialEq)]
pub struct Signal {
    /// The event type URI.
    pub event_type: &'static str,
    /// The subject (RFC 9493 `sub_id`).
    pub subject: Value,
    /// The event's members.
    pub body: Value,
    /// Whose it is to see.
    pub concerns: Concerns,
}

fn opaque(id: &str) -> Value {
    json!({"format": "opaque", "id": id})
}

/// The signal an audit event makes, if any. Only this organisation's own tokens are
/// signalled: the revocation of a token minted for a federation peer's agent is not.
#[must_use]
pub fn signal(e: &NewEvent) -> Option<Signal> {
    let timestamp = e.time.unix_timestamp();
    let reason = e.details.get("reason").and_then(Value::as_str);
    let body = |initiating: &str| {
        let mut b = json!({"event_timestamp": timestamp, "initiating_entity": initiating});
        if let Some(r) = reason {
            b["reason_admin"] = json!({"en": r});
        }
        b
    };
    let initiating = if matches!(e.actor, crate::audit::Actor::System) {
        "policy"
    } else {
        "admin"
    };
    let (event_type, subject, body, concerns) = match e.kind {
        EventKind::TokenRevoked => {
            let grant: GrantId = e.details.get("grant_id")?.as_str()?.parse().ok()?;
            (
                SESSION_REVOKED,
                opaque(&e.target),
                body(initiating),
                Concerns::Grant(grant),
            )
        }
        EventKind::GrantRevoked => {
            let grant: GrantId = e.target.parse().ok()?;
            (
                SESSION_REVOKED,
                opaque(&e.target),
                body(initiating),
                Concerns::Grant(grant),
            )
        }
        EventKind::AgentKeyRevoked | EventKind::AgentKeyRetired => {
            let mut b = body(initiating);
            b["credential_type"] = json!("app");
            b["change_type"] = json!("revoke");
            (
                CREDENTIAL_CHANGE,
                opaque(&e.target),
                b,
                Concerns::Agent(e.agent?),
            )
        }
        EventKind::AgentSuspended => (
            AGENT_SUSPENDED,
            opaque(&e.target),
            body(initiating),
            Concerns::Agent(e.agent?),
        ),
        EventKind::AgentRevoked | EventKind::AgentRetired => (
            AGENT_REVOKED,
            opaque(&e.target),
            body(initiating),
            Concerns::Agent(e.agent?),
        ),
        EventKind::HumanDeactivated => {
            let human: HumanId = e.target.parse().ok()?;
            (
                HUMAN_DEACTIVATED,
                opaque(&e.target),
                body(initiating),
                Concerns::Human(human),
            )
        }
        EventKind::ApprovalApproved | EventKind::ApprovalDenied => {
            let kind = if e.kind == EventKind::ApprovalApproved {
                APPROVAL_APPROVED
            } else {
                APPROVAL_DENIED
            };
            (
                kind,
                opaque(&e.target),
                json!({"event_timestamp": timestamp}),
                Concerns::Agent(e.agent?),
            )
        }
        _ => return None,
    };
    Some(Signal {
        event_type,
        subject,
        body,
        concerns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::Actor;
    use time::macros::datetime;

    const T: time::OffsetDateTime = datetime!(2026-11-29 12:00 UTC);

    #[test]
    fn revocations_become_caep_events_about_what_receivers_hold() {
        let agent = AgentId::new(T);
        let grant = GrantId::new(T);
        let token = NewEvent::new(EventKind::TokenRevoked, Actor::Agent(agent), "tok_1", T)
            .agent(agent)
            .details(json!({"grant_id": grant.to_string()}));
        let s = signal(&token).unwrap();
        assert_eq!(s.event_type, SESSION_REVOKED);
        assert_eq!(s.subject, json!({"format": "opaque", "id": "tok_1"}));
        assert_eq!(s.body["event_timestamp"], T.unix_timestamp());
        assert_eq!(s.concerns, Concerns::Grant(grant));
        let key = NewEvent::new(EventKind::AgentKeyRevoked, Actor::System, "jkt-1", T)
            .agent(agent)
            .details(json!({"reason": "leaked"}));
        let s = signal(&key).unwrap();
        assert_eq!(s.event_type, CREDENTIAL_CHANGE);
        assert_eq!(s.body["change_type"], "revoke");
        assert_eq!(s.body["reason_admin"], json!({"en": "leaked"}));
        assert_eq!(s.concerns, Concerns::Agent(agent));
    }

    #[test]
    fn other_events_and_peers_tokens_make_no_signal() {
        let created = NewEvent::new(EventKind::GrantCreated, Actor::System, "grt_x", T);
        assert!(signal(&created).is_none());
        // A federated token's revocation names no local grant.
        let peer = NewEvent::new(EventKind::TokenRevoked, Actor::System, "jti", T)
            .details(json!({"federation_grant": "fgr_1"}));
        assert!(signal(&peer).is_none());
    }
}
