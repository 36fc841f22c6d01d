//! Grants, signing keys, resource servers, and what token activity depends on.

use std::sync::Arc;

use serde_json::json;
use surety_core::agent::AgentStatus;
use surety_core::audit::EventKind;
use surety_core::grant::{Grant, GrantStatus, GrantTerms, NewGrant};
use surety_core::human::{HumanStatus, Role};
use surety_core::id::{AgentId, GrantId, HumanId, ResourceServerId};
use surety_core::page::PageRequest;
use surety_store::{
    AgentStatusChange, GrantFilter, GrantStatusChange, HumanStatusChange, ResourceServer,
    SigningKeyRecord, StandingQuery, Store, StoreError,
};
use time::Duration;

use crate::fixtures::*;

crate::storage_tests!(
    grants_round_trip_and_filter_by_visibility,
    a_grant_needs_an_active_principal_and_agent,
    accepting_is_compare_and_set_and_refuses_expired_grants,
    signing_keys_first_one_wins_and_rotation_keeps_the_old_published,
    resource_servers_are_unique_by_audience_and_key,
    token_standing_reports_states_watermarks_and_revocations,
);

fn new_grant(agent: AgentId, principal: HumanId, created_by: HumanId) -> Grant {
    let scopes = ["crm.read".to_owned()];
    let resources = ["https://crm.example".to_owned()];
    let constraints = json!({"max_amount": 100});
    NewGrant::parse(
        &GrantTerms {
            agent,
            principal,
            scopes: &scopes,
            resources: &resources,
            constraints: Some(&constraints),
            max_delegation_depth: Some(1),
            expires_at: t0() + Duration::days(1),
        },
        t0(),
        Duration::days(30),
    )
    .unwrap()
    .into_grant(GrantId::new(t0()), created_by, t0())
}

async fn grants_round_trip_and_filter_by_visibility(store: Arc<dyn Store>) {
    let owner = add_human(&store, "o@example.com", Role::Member).await;
    let principal = add_human(&store, "p@example.com", Role::Member).await;
    let stranger = add_human(&store, "s@example.com", Role::Member).await;
    let (a, _) = add_agent(&store, "bot", owner.id).await;
    let g = new_grant(a.id, principal.id, owner.id);
    assert_eq!(g.status, GrantStatus::Proposed);
    store
        .create_grant(&g, &[event(EventKind::GrantCreated, g.id)])
        .await
        .unwrap();
    assert_eq!(store.get_grant(g.id).await.unwrap(), Some(g.clone()));
    let page = PageRequest::first(10);
    for (viewer, seen) in [(owner.id, 1), (principal.id, 1), (stranger.id, 0)] {
        let filter = GrantFilter {
            visible_to: Some(viewer),
            ..GrantFilter::default()
        };
        assert_eq!(
            store.list_grants(&filter, &page).await.unwrap().items.len(),
            seen
        );
    }
    // States are as of a given instant: proposed before expiry, expired after.
    for (status, at, expected) in [
        (GrantStatus::Active, t0(), 0),
        (GrantStatus::Proposed, t0(), 1),
        (GrantStatus::Expired, t0(), 0),
        (GrantStatus::Proposed, g.expires_at, 0),
        (GrantStatus::Expired, g.expires_at, 1),
    ] {
        let filter = GrantFilter {
            agent: Some(a.id),
            status: Some((status, at)),
            ..GrantFilter::default()
        };
        let found = store.list_grants(&filter, &page).await.unwrap().items.len();
        assert_eq!(found, expected, "{status} at {at}");
    }
}

async fn a_grant_needs_an_active_principal_and_agent(store: Arc<dyn Store>) {
    let admin = add_human(&store, "admin@example.com", Role::Admin).await;
    let owner = add_human(&store, "o@example.com", Role::Member).await;
    let (a, k) = add_agent(&store, "bot", owner.id).await;
    store
        .change_agent_status(
            &AgentStatusChange {
                id: a.id,
                from: AgentStatus::Active,
                to: AgentStatus::Suspended,
                reason: None,
                keys_to: None,
                keys: vec![k.kid],
                at: t0(),
                unchanged_since: None,
            },
            &[],
        )
        .await
        .unwrap();
    let before = event_count(&store).await;
    let err = store
        .create_grant(
            &new_grant(a.id, owner.id, owner.id),
            &[event(EventKind::GrantCreated, "x")],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let (b, _) = add_agent(&store, "bot2", owner.id).await;
    store
        .change_human_status(
            &HumanStatusChange {
                id: owner.id,
                from: HumanStatus::Active,
                to: HumanStatus::Deactivated,
                at: t0(),
            },
            &[],
            &|agent| event(EventKind::AgentSuspended, agent.id),
        )
        .await
        .unwrap();
    let err = store
        .create_grant(&new_grant(b.id, owner.id, admin.id), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    // Nothing was written by the refusals: the two events are `bot2`'s registration and
    // its suspension by the cascade.
    assert_eq!(event_count(&store).await, before + 2);
}

async fn accepting_is_compare_and_set_and_refuses_expired_grants(store: Arc<dyn Store>) {
    let owner = add_human(&store, "o@example.com", Role::Member).await;
    let principal = add_human(&store, "p@example.com", Role::Member).await;
    let (a, _) = add_agent(&store, "bot", owner.id).await;
    let g = new_grant(a.id, principal.id, owner.id);
    store.create_grant(&g, &[]).await.unwrap();
    let accept = |at| GrantStatusChange {
        id: g.id,
        from: GrantStatus::Proposed,
        to: GrantStatus::Active,
        reason: None,
        at,
    };
    let err = store
        .change_grant_status(&accept(g.expires_at), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(
        store.get_grant(g.id).await.unwrap().unwrap().status,
        GrantStatus::Proposed
    );
    store.change_grant_status(&accept(t0()), &[]).await.unwrap();
    // Decided on `proposed`, which is no longer current.
    let err = store
        .change_grant_status(&accept(t0()), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Stale), "{err}");
    let missing = GrantStatusChange {
        id: GrantId::new(t0()),
        ..accept(t0())
    };
    assert!(matches!(
        store.change_grant_status(&missing, &[]).await,
        Err(StoreError::NotFound(_))
    ));
}

fn signing_key(kid: &str, at: time::OffsetDateTime) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        alg: "EdDSA".into(),
        public_jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": kid}),
        sealed_private: vec![1, 2, 3],
        status: "active".into(),
        created_at: at,
        retired_at: None,
        publish_until: None,
    }
}

async fn signing_keys_first_one_wins_and_rotation_keeps_the_old_published(store: Arc<dyn Store>) {
    assert!(
        store
            .create_first_signing_key(&signing_key("k1", t0()), &[])
            .await
            .unwrap()
    );
    assert!(
        !store
            .create_first_signing_key(&signing_key("k0", t0()), &[])
            .await
            .unwrap()
    );
    let t1 = t0() + Duration::hours(1);
    let until = t1 + Duration::minutes(10);
    let retired = store
        .rotate_signing_key(&signing_key("k2", t1), until, &[])
        .await
        .unwrap();
    assert_eq!(retired, vec!["k1".to_owned()]);
    let kids = |keys: Vec<SigningKeyRecord>| {
        keys.into_iter()
            .map(|k| (k.kid, k.status))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kids(store.published_signing_keys(t1).await.unwrap()),
        vec![
            ("k2".into(), "active".into()),
            ("k1".into(), "retired".into())
        ]
    );
    assert_eq!(
        kids(store.published_signing_keys(until).await.unwrap()),
        vec![("k2".into(), "active".into())]
    );
    assert_eq!(store.all_signing_keys().await.unwrap().len(), 2);
}

async fn resource_servers_are_unique_by_audience_and_key(store: Arc<dyn Store>) {
    let admin = add_human(&store, "admin@example.com", Role::Admin).await;
    let rs = |aud: &str, kid: &str| ResourceServer {
        id: ResourceServerId::new(t0()),
        name: "crm".into(),
        audience: aud.into(),
        kid: kid.into(),
        jwk: json!({"kty": "OKP"}),
        status: "active".into(),
        created_by: admin.id,
        created_at: t0(),
    };
    let first = rs("https://crm.example", "k1");
    store.create_resource_server(&first, &[]).await.unwrap();
    assert_eq!(
        store.get_resource_server(first.id).await.unwrap(),
        Some(first.clone())
    );
    for dup in [
        rs("https://crm.example", "k2"),
        rs("https://other.example", "k1"),
    ] {
        let err = store.create_resource_server(&dup, &[]).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    }
    // A key already held by a human is not reusable.
    let device = store
        .list_keys(surety_core::id::PrincipalId::Human(admin.id))
        .await
        .unwrap();
    assert!(device.is_empty());
    let (_, agent_key) = add_agent(&store, "bot", admin.id).await;
    let err = store
        .create_resource_server(&rs("https://x.example", &agent_key.kid), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert_eq!(store.list_resource_servers().await.unwrap().len(), 1);
}

async fn token_standing_reports_states_watermarks_and_revocations(store: Arc<dyn Store>) {
    let owner = add_human(&store, "o@example.com", Role::Member).await;
    let (a, k) = add_agent(&store, "bot", owner.id).await;
    let g = new_grant(a.id, owner.id, owner.id);
    store.create_grant(&g, &[]).await.unwrap();
    let agents = [a.id];
    let keys = [k.kid.as_str()];
    let jtis = ["j1", "j0"];
    let q = StandingQuery {
        grant: g.id,
        principal: owner.id,
        agents: &agents,
        keys: &keys,
        jtis: &jtis,
    };
    let s = store.token_standing(&q).await.unwrap();
    assert_eq!(
        s.grant,
        Some(surety_store::GrantStanding {
            agent: a.id,
            principal: owner.id,
            status: g.status,
            expires_at: g.expires_at
        })
    );
    assert_eq!(s.principal, Some((HumanStatus::Active, None)));
    assert_eq!(s.agents, vec![(a.id, AgentStatus::Active, None)]);
    assert_eq!(s.keys.len(), 1);
    assert!(s.revoked.is_empty());

    let t1 = t0() + Duration::minutes(1);
    assert!(
        store
            .revoke_token("j0", t1 + Duration::minutes(5), t1, &[])
            .await
            .unwrap()
    );
    assert!(
        !store
            .revoke_token("j0", t1 + Duration::minutes(5), t1, &[])
            .await
            .unwrap()
    );
    // Every status change moves the watermark: suspending, and reinstating too (a token
    // minted while a suspension was committing must not revive with the agent).
    let t2 = t1 + Duration::seconds(30);
    for (from, to, at) in [
        (AgentStatus::Active, AgentStatus::Suspended, t1),
        (AgentStatus::Suspended, AgentStatus::Active, t2),
    ] {
        store
            .change_agent_status(
                &AgentStatusChange {
                    id: a.id,
                    from,
                    to,
                    reason: None,
                    keys_to: None,
                    keys: vec![],
                    at,
                    unchanged_since: None,
                },
                &[],
            )
            .await
            .unwrap();
    }
    store
        .record_agent_activity(&[surety_store::AgentActivity {
            strike: true,
            agent: a.id,
            at: t1,
            events: vec![],
            kind: surety_store::ActivityKind::Denied,
            exercised: None,
        }])
        .await
        .unwrap();
    let s = store.token_standing(&q).await.unwrap();
    assert_eq!(s.revoked, vec![("j0".to_owned(), t1)]);
    assert_eq!(s.agents, vec![(a.id, AgentStatus::Active, Some(t2))]);
    assert_eq!(
        store.get_agent(a.id).await.unwrap().unwrap().last_seen_at,
        Some(t1)
    );
    // The activity counted as a strike, inside the window only.
    assert_eq!(store.count_strikes(a.id, t1).await.unwrap(), 1);
    assert_eq!(
        store
            .count_strikes(a.id, t1 + Duration::SECOND)
            .await
            .unwrap(),
        0
    );
    // Revocations are purged once the token would have expired anyway.
    store
        .purge_expired(t1 + Duration::minutes(6))
        .await
        .unwrap();
    assert!(store.token_standing(&q).await.unwrap().revoked.is_empty());
}
