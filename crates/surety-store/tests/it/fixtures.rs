//! Builders for valid domain values.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;
use surety_core::agent::{Agent, NewAgent};
use surety_core::audit::{Actor, EventKind, NewEvent};
use surety_core::human::{Human, NewHuman, Role};
use surety_core::id::{AgentId, HumanId, PrincipalId};
use surety_core::key::{KeyRecord, KeyStatus};
use surety_store::Store;
use time::OffsetDateTime;
use time::macros::datetime;

pub fn t0() -> OffsetDateTime {
    datetime!(2026-03-01 09:00:00.123456 UTC)
}

pub fn human(email: &str, role: Role) -> Human {
    NewHuman::parse("Some One", email, role)
        .unwrap()
        .into_human(HumanId::new(t0()), t0())
}

pub fn agent(name: &str, owner: HumanId) -> Agent {
    NewAgent::parse(
        name,
        owner,
        Some("testing"),
        Some("staging"),
        &BTreeMap::new(),
    )
    .unwrap()
    .into_agent(AgentId::new(t0()), t0())
}

/// A key record with a unique, made-up thumbprint.
pub fn key(holder: PrincipalId) -> KeyRecord {
    let kid = format!(
        "kid-{}",
        AgentId::new(OffsetDateTime::now_utc()).uuid().simple()
    );
    KeyRecord {
        kid,
        holder,
        alg: "EdDSA".into(),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": "test"}),
        status: KeyStatus::Active,
        created_at: t0(),
        status_changed_at: None,
    }
}

pub fn event(kind: EventKind, target: impl std::fmt::Display) -> NewEvent {
    NewEvent::new(kind, Actor::System, target, t0())
}

/// Creates a human and returns it.
pub async fn add_human(store: &Arc<dyn Store>, email: &str, role: Role) -> Human {
    let h = human(email, role);
    store
        .create_human(
            &h,
            None,
            &[event(EventKind::HumanCreated, h.id).human(h.id)],
        )
        .await
        .unwrap();
    h
}

/// Creates an agent with one key and returns both.
pub async fn add_agent(store: &Arc<dyn Store>, name: &str, owner: HumanId) -> (Agent, KeyRecord) {
    let a = agent(name, owner);
    let k = key(PrincipalId::Agent(a.id));
    store
        .create_agent(
            &a,
            &k,
            &[event(EventKind::AgentRegistered, a.id)
                .agent(a.id)
                .human(owner)],
        )
        .await
        .unwrap();
    (a, k)
}

/// How many events the log holds (up to 1000).
pub async fn event_count(store: &Arc<dyn Store>) -> usize {
    use surety_core::audit::{AuditFilter, AuditScope};
    use surety_core::page::PageRequest;
    store
        .list_events(
            AuditScope::All,
            &AuditFilter::default(),
            &PageRequest::first(1000),
        )
        .await
        .unwrap()
        .items
        .len()
}
