use std::sync::Arc;

use surety_core::agent::{AgentStatus, OWNER_DEACTIVATED};
use surety_core::audit::{Actor, EventKind, NewEvent};
use surety_core::human::{HumanStatus, Role};
use surety_core::id::{HumanId, PrincipalId};
use surety_core::page::PageRequest;
use surety_store::{
    AgentStatusChange, Enrollment, HumanFilter, HumanStatusChange, Store, StoreError,
};
use time::Duration;

use crate::fixtures::*;

crate::storage_tests!(
    humans_round_trip_exactly,
    duplicate_email_is_a_conflict_and_writes_nothing,
    humans_list_with_filters_and_keyset_pages,
    deactivation_suspends_only_active_agents_each_audited,
    the_last_active_admin_cannot_be_deactivated,
    human_status_change_is_compare_and_set,
    bootstrap_happens_once,
    enrollment_codes_are_single_use_latest_only_and_expire,
    server_secret_first_candidate_wins,
);

fn deactivate(id: HumanId) -> HumanStatusChange {
    HumanStatusChange {
        id,
        from: HumanStatus::Active,
        to: HumanStatus::Deactivated,
        at: t0() + Duration::hours(1),
    }
}

fn no_cascade(_: &surety_core::agent::Agent) -> NewEvent {
    unreachable!("no agents expected")
}

async fn humans_round_trip_exactly(store: Arc<dyn Store>) {
    let h = add_human(&store, "ada@example.com", Role::Admin).await;
    assert_eq!(store.get_human(h.id).await.unwrap(), Some(h.clone()));
    assert_eq!(store.get_human(HumanId::new(t0())).await.unwrap(), None);
}

async fn duplicate_email_is_a_conflict_and_writes_nothing(store: Arc<dyn Store>) {
    add_human(&store, "ada@example.com", Role::Admin).await;
    let before = event_count(&store).await;
    let dup = human("ada@example.com", Role::Member);
    let err = store
        .create_human(&dup, None, &[event(EventKind::HumanCreated, dup.id)])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(ref m) if m.contains("ada@example.com")),
        "{err}"
    );
    assert_eq!(store.get_human(dup.id).await.unwrap(), None);
    assert_eq!(
        event_count(&store).await,
        before,
        "no event for a refused change"
    );
}

async fn humans_list_with_filters_and_keyset_pages(store: Arc<dyn Store>) {
    let mut ids = Vec::new();
    for i in 0..7 {
        let role = if i % 3 == 0 {
            Role::Admin
        } else {
            Role::Member
        };
        ids.push(
            add_human(&store, &format!("h{i}@example.com"), role)
                .await
                .id,
        );
    }
    let mut seen = Vec::new();
    let mut page = PageRequest::first(3);
    loop {
        let p = store
            .list_humans(&HumanFilter::default(), &page)
            .await
            .unwrap();
        seen.extend(p.items.iter().map(|h| h.id));
        match p.next_cursor {
            Some(c) => page.after = Some(c),
            None => break,
        }
    }
    ids.sort();
    assert_eq!(seen, ids, "every human exactly once, in id order");
    let admins = store
        .list_humans(
            &HumanFilter {
                role: Some(Role::Admin),
                ..Default::default()
            },
            &PageRequest::first(100),
        )
        .await
        .unwrap();
    assert_eq!(admins.items.len(), 3);
    assert!(admins.items.iter().all(|h| h.role == Role::Admin));
}

async fn deactivation_suspends_only_active_agents_each_audited(store: Arc<dyn Store>) {
    let _admin = add_human(&store, "admin@example.com", Role::Admin).await;
    let owner = add_human(&store, "owner@example.com", Role::Member).await;
    let (a1, _) = add_agent(&store, "one", owner.id).await;
    let (a2, _) = add_agent(&store, "two", owner.id).await;
    let (revoked, _) = add_agent(&store, "gone", owner.id).await;
    store
        .change_agent_status(
            &AgentStatusChange {
                id: revoked.id,
                from: AgentStatus::Active,
                to: AgentStatus::Revoked,
                reason: Some("compromised".into()),
                keys_to: None,
                keys: Vec::new(),
                at: t0(),
                unchanged_since: None,
            },
            &[],
        )
        .await
        .unwrap();
    let cascade = |a: &surety_core::agent::Agent| {
        NewEvent::new(EventKind::AgentSuspended, Actor::System, a.id, t0())
            .agent(a.id)
            .human(a.owner)
    };
    let before = event_count(&store).await;
    let suspended = store
        .change_human_status(
            &deactivate(owner.id),
            &[event(EventKind::HumanDeactivated, owner.id)],
            &cascade,
        )
        .await
        .unwrap();
    let mut expected = vec![a1.id, a2.id];
    expected.sort();
    assert_eq!(suspended, expected);
    for id in [a1.id, a2.id] {
        let a = store.get_agent(id).await.unwrap().unwrap();
        assert_eq!(a.status, AgentStatus::Suspended);
        assert_eq!(a.status_reason.as_deref(), Some(OWNER_DEACTIVATED));
    }
    assert_eq!(
        store.get_agent(revoked.id).await.unwrap().unwrap().status,
        AgentStatus::Revoked
    );
    assert_eq!(
        event_count(&store).await,
        before + 3,
        "one event for the human, one per agent"
    );
    assert_eq!(
        store.get_human(owner.id).await.unwrap().unwrap().status,
        HumanStatus::Deactivated
    );
}

async fn the_last_active_admin_cannot_be_deactivated(store: Arc<dyn Store>) {
    let a = add_human(&store, "a@example.com", Role::Admin).await;
    let b = add_human(&store, "b@example.com", Role::Admin).await;
    store
        .change_human_status(&deactivate(a.id), &[], &no_cascade)
        .await
        .unwrap();
    let before = event_count(&store).await;
    let err = store
        .change_human_status(
            &deactivate(b.id),
            &[event(EventKind::HumanDeactivated, b.id)],
            &no_cascade,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(ref m) if m.contains("last active admin")),
        "{err}"
    );
    assert_eq!(
        store.get_human(b.id).await.unwrap().unwrap().status,
        HumanStatus::Active
    );
    assert_eq!(event_count(&store).await, before);
}

async fn human_status_change_is_compare_and_set(store: Arc<dyn Store>) {
    let _admin = add_human(&store, "admin@example.com", Role::Admin).await;
    let m = add_human(&store, "m@example.com", Role::Member).await;
    store
        .change_human_status(&deactivate(m.id), &[], &no_cascade)
        .await
        .unwrap();
    let again = store
        .change_human_status(&deactivate(m.id), &[], &no_cascade)
        .await;
    assert!(matches!(again, Err(StoreError::Stale)), "{again:?}");
    let missing = store
        .change_human_status(&deactivate(HumanId::new(t0())), &[], &no_cascade)
        .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound(_))),
        "{missing:?}"
    );
}

async fn bootstrap_happens_once(store: Arc<dyn Store>) {
    assert!(!store.is_initialized().await.unwrap());
    let admin = human("root@example.com", Role::Admin);
    let k = key(PrincipalId::Human(admin.id));
    store
        .bootstrap(&admin, &k, &[event(EventKind::OrgInitialized, admin.id)])
        .await
        .unwrap();
    assert!(store.is_initialized().await.unwrap());
    assert_eq!(
        store.get_key(&k.kid).await.unwrap().unwrap().holder,
        PrincipalId::Human(admin.id)
    );
    let second = human("other@example.com", Role::Admin);
    let err = store
        .bootstrap(&second, &key(PrincipalId::Human(second.id)), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::AlreadyInitialized));
    assert_eq!(store.get_human(second.id).await.unwrap(), None);
}

async fn enrollment_codes_are_single_use_latest_only_and_expire(store: Arc<dyn Store>) {
    let h = add_human(&store, "e@example.com", Role::Member).await;
    let code = |hash: &str, ttl: Duration| Enrollment {
        code_hash: hash.into(),
        human: h.id,
        created_at: t0(),
        expires_at: t0() + ttl,
    };
    let now = t0() + Duration::minutes(1);
    let enroll = |id: HumanId| {
        let k = key(PrincipalId::Human(id));
        let e = event(EventKind::HumanKeyEnrolled, &k.kid).human(id);
        (k, vec![e])
    };
    store
        .issue_enrollment(&code("first", Duration::minutes(15)), &[])
        .await
        .unwrap();
    store
        .issue_enrollment(&code("second", Duration::minutes(15)), &[])
        .await
        .unwrap();
    let replaced = store.redeem_enrollment("first", now, &enroll).await;
    assert!(
        matches!(replaced, Err(StoreError::NotFound(_))),
        "a newer code replaces the older"
    );
    assert_eq!(
        store
            .redeem_enrollment("second", now, &enroll)
            .await
            .unwrap(),
        h.id
    );
    assert_eq!(
        store
            .list_keys(PrincipalId::Human(h.id))
            .await
            .unwrap()
            .len(),
        1
    );
    let reused = store.redeem_enrollment("second", now, &enroll).await;
    assert!(matches!(reused, Err(StoreError::NotFound(_))), "single use");
    store
        .issue_enrollment(&code("third", Duration::minutes(15)), &[])
        .await
        .unwrap();
    let late = store
        .redeem_enrollment("third", t0() + Duration::minutes(16), &enroll)
        .await;
    assert!(matches!(late, Err(StoreError::NotFound(_))), "expired");
    assert_eq!(
        store
            .list_keys(PrincipalId::Human(h.id))
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn server_secret_first_candidate_wins(store: Arc<dyn Store>) {
    let a = store.server_secret("nonce", b"first", t0()).await.unwrap();
    let b = store.server_secret("nonce", b"second", t0()).await.unwrap();
    assert_eq!(a, b"first");
    assert_eq!(b, b"first");
}
