use std::sync::Arc;

use surety_core::agent::AgentStatus;
use surety_core::audit::EventKind;
use surety_core::human::{HumanStatus, Role};
use surety_core::id::{AgentId, HumanId, PrincipalId};
use surety_core::key::KeyStatus;
use surety_core::page::PageRequest;
use surety_store::{AgentFilter, AgentStatusChange, HumanStatusChange, Store, StoreError};

use crate::fixtures::*;

crate::storage_tests!(
    agents_round_trip_exactly,
    unknown_owner_is_not_found,
    deactivated_owner_is_a_conflict,
    names_are_unique_per_owner_ignoring_case,
    a_refused_registration_leaves_no_trace,
    status_change_is_compare_and_set,
    a_change_drawn_from_an_older_view_of_the_agent_is_stale,
    revoking_revokes_every_usable_key,
    retiring_retires_active_keys,
    agents_list_in_keyset_pages_with_filters,
);

fn change(
    id: AgentId,
    from: AgentStatus,
    to: AgentStatus,
    keys_to: Option<KeyStatus>,
) -> AgentStatusChange {
    AgentStatusChange {
        id,
        from,
        to,
        reason: Some("test".into()),
        keys_to,
        keys: Vec::new(),
        at: t0(),
        unchanged_since: None,
    }
}

async fn agents_round_trip_exactly(store: Arc<dyn Store>) {
    let owner = add_human(&store, "o@example.com", Role::Member).await;
    let mut a = agent("bot", owner.id);
    a.labels.insert("team".into(), "payments".into());
    let k = key(PrincipalId::Agent(a.id));
    store.create_agent(&a, &k, &[]).await.unwrap();
    assert_eq!(store.get_agent(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(store.get_key(&k.kid).await.unwrap(), Some(k));
}

async fn unknown_owner_is_not_found(store: Arc<dyn Store>) {
    let a = agent("bot", HumanId::new(t0()));
    let err = store
        .create_agent(&a, &key(PrincipalId::Agent(a.id)), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound(ref m) if m.contains("owner")),
        "{err}"
    );
}

async fn deactivated_owner_is_a_conflict(store: Arc<dyn Store>) {
    let _admin = add_human(&store, "admin@example.com", Role::Admin).await;
    let owner = add_human(&store, "o@example.com", Role::Member).await;
    let off = HumanStatusChange {
        id: owner.id,
        from: HumanStatus::Active,
        to: HumanStatus::Deactivated,
        at: t0(),
    };
    store
        .change_human_status(&off, &[], &|_| unreachable!())
        .await
        .unwrap();
    let a = agent("bot", owner.id);
    let err = store
        .create_agent(&a, &key(PrincipalId::Agent(a.id)), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(ref m) if m.contains("deactivated")),
        "{err}"
    );
}

async fn names_are_unique_per_owner_ignoring_case(store: Arc<dyn Store>) {
    let alice = add_human(&store, "alice@example.com", Role::Member).await;
    let bob = add_human(&store, "bob@example.com", Role::Member).await;
    add_agent(&store, "Invoice-Bot", alice.id).await;
    let dup = agent("invoice-bot", alice.id);
    let err = store
        .create_agent(&dup, &key(PrincipalId::Agent(dup.id)), &[])
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(ref m) if m.contains("invoice-bot")),
        "{err}"
    );
    add_agent(&store, "invoice-bot", bob.id).await;
}

async fn a_refused_registration_leaves_no_trace(store: Arc<dyn Store>) {
    let owner = add_human(&store, "o@example.com", Role::Member).await;
    let (_, used_key) = add_agent(&store, "first", owner.id).await;
    let before = event_count(&store).await;
    let second = agent("second", owner.id);
    let mut reused = used_key.clone();
    reused.holder = PrincipalId::Agent(second.id);
    let err = store
        .create_agent(
            &second,
            &reused,
            &[event(EventKind::AgentRegistered, second.id)],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(ref m) if m.contains(&used_key.kid)),
        "{err}"
    );
    assert_eq!(
        store.get_agent(second.id).await.unwrap(),
        None,
        "agent row rolled back"
    );
    assert_eq!(event_count(&store).await, before, "event rolled back");
}

async fn status_change_is_compare_and_set(store: Arc<dyn Store>) {
    let owner = add_human(&store, "o@example.com", Role::Member).await;
    let (a, _) = add_agent(&store, "bot", owner.id).await;
    let before = event_count(&store).await;
    let suspend = change(a.id, AgentStatus::Active, AgentStatus::Suspended, None);
    store
        .change_agent_status(&suspend, &[event(EventKind::AgentSuspended, a.id)])
        .await
        .unwrap();
    let stored = store.get_agent(a.id).await.unwrap().unwrap();
    assert_eq!(stored.status, AgentStatus::Suspended);
    assert_eq!(stored.status_reason.as_deref(), Some("test"));
    assert_eq!(event_count(&store).await, before + 1);
    let stale = store
        .change_agent_status(&suspend, &[event(EventKind::AgentSuspended, a.id)])
        .await;
    assert!(matches!(stale, Err(StoreError::Stale)), "{stale:?}");
    assert_eq!(
        event_count(&store).await,
        before + 1,
        "a stale change writes no event"
    );
    let missing = change(
        AgentId::new(t0()),
        AgentStatus::Active,
        AgentStatus::Suspended,
        None,
    );
    assert!(matches!(
        store.change_agent_status(&missing, &[]).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn a_change_drawn_from_an_older_view_of_the_agent_is_stale(store: Arc<dyn Store>) {
    let owner = add_human(&store, "o@example.com", Role::Member).await;
    let (a, _) = add_agent(&store, "bot", owner.id).await;
    let at = |s: i64| t0() + time::Duration::seconds(s);
    let mut suspend = change(a.id, AgentStatus::Active, AgentStatus::Suspended, None);
    suspend.at = at(1);
    store.change_agent_status(&suspend, &[]).await.unwrap();
    let mut reinstate = change(a.id, AgentStatus::Suspended, AgentStatus::Active, None);
    reinstate.at = at(2);
    store.change_agent_status(&reinstate, &[]).await.unwrap();
    // Strikes counted at 1 s, before the owner reinstated it at 2 s: stale.
    let before = event_count(&store).await;
    let mut again = change(a.id, AgentStatus::Active, AgentStatus::Suspended, None);
    again.at = at(3);
    again.unchanged_since = Some(at(1));
    let stale = store
        .change_agent_status(&again, &[event(EventKind::AgentSuspended, a.id)])
        .await;
    assert!(matches!(stale, Err(StoreError::Stale)), "{stale:?}");
    assert_eq!(
        event_count(&store).await,
        before,
        "a stale change writes no event"
    );
    let stored = store.get_agent(a.id).await.unwrap().unwrap();
    assert_eq!(stored.status, AgentStatus::Active);
    // Drawn from what it is now: applies.
    again.unchanged_since = Some(at(2));
    store.change_agent_status(&again, &[]).await.unwrap();
    let stored = store.get_agent(a.id).await.unwrap().unwrap();
    assert_eq!(stored.status, AgentStatus::Suspended);
}

async fn revoking_revokes_every_usable_key(store: Arc<dyn Store>) {
    let owner = add_human(&store, "o@example.com", Role::Member).await;
    let (a, k1) = add_agent(&store, "bot", owner.id).await;
    let k2 = key(PrincipalId::Agent(a.id));
    store
        .add_agent_key(a.id, &k2, Some(std::slice::from_ref(&k1.kid)), &[])
        .await
        .unwrap();
    let mut revoke = change(
        a.id,
        AgentStatus::Active,
        AgentStatus::Revoked,
        Some(KeyStatus::Revoked),
    );
    // A decision that missed a key is stale: the change would revoke more than it says.
    revoke.keys = vec![k2.kid.clone()];
    let stale = store.change_agent_status(&revoke, &[]).await;
    assert!(matches!(stale, Err(StoreError::Stale)), "{stale:?}");
    assert_eq!(
        store.get_agent(a.id).await.unwrap().unwrap().status,
        AgentStatus::Active
    );
    revoke.keys = vec![k1.kid.clone(), k2.kid.clone()];
    store.change_agent_status(&revoke, &[]).await.unwrap();
    let keys = store.list_keys(PrincipalId::Agent(a.id)).await.unwrap();
    assert_eq!(keys.len(), 2);
    assert!(
        keys.iter().all(|k| k.status == KeyStatus::Revoked),
        "{keys:?}"
    );
}

async fn retiring_retires_active_keys(store: Arc<dyn Store>) {
    let owner = add_human(&store, "o@example.com", Role::Member).await;
    let (a, k1) = add_agent(&store, "bot", owner.id).await;
    store
        .change_key_status(&k1.kid, KeyStatus::Active, KeyStatus::Revoked, t0(), &[])
        .await
        .unwrap();
    let k2 = key(PrincipalId::Agent(a.id));
    store.add_agent_key(a.id, &k2, None, &[]).await.unwrap();
    let mut retire = change(
        a.id,
        AgentStatus::Active,
        AgentStatus::Retired,
        Some(KeyStatus::Retired),
    );
    retire.keys = vec![k2.kid.clone()];
    store.change_agent_status(&retire, &[]).await.unwrap();
    assert_eq!(
        store.get_key(&k1.kid).await.unwrap().unwrap().status,
        KeyStatus::Revoked,
        "revoked stays revoked"
    );
    assert_eq!(
        store.get_key(&k2.kid).await.unwrap().unwrap().status,
        KeyStatus::Retired
    );
}

async fn agents_list_in_keyset_pages_with_filters(store: Arc<dyn Store>) {
    let alice = add_human(&store, "alice@example.com", Role::Member).await;
    let bob = add_human(&store, "bob@example.com", Role::Member).await;
    let mut alice_agents = Vec::new();
    for i in 0..11 {
        let owner = if i % 4 == 0 { bob.id } else { alice.id };
        let (a, _) = add_agent(&store, &format!("agent-{i}"), owner).await;
        if owner == alice.id {
            alice_agents.push(a.id);
        }
    }
    let filter = AgentFilter {
        owner: Some(alice.id),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut page = PageRequest::first(3);
    let mut pages = 0;
    loop {
        let p = store.list_agents(&filter, &page).await.unwrap();
        pages += 1;
        assert!(p.items.len() <= 3);
        seen.extend(p.items.iter().map(|a| a.id));
        match p.next_cursor {
            Some(c) => page.after = Some(c),
            None => break,
        }
    }
    alice_agents.sort();
    assert_eq!(seen, alice_agents);
    assert_eq!(pages, 3, "8 agents in pages of 3");
    let first = alice_agents[0];
    store
        .change_agent_status(
            &change(first, AgentStatus::Active, AgentStatus::Suspended, None),
            &[],
        )
        .await
        .unwrap();
    let suspended = store
        .list_agents(
            &AgentFilter {
                status: Some(AgentStatus::Suspended),
                ..Default::default()
            },
            &PageRequest::first(50),
        )
        .await
        .unwrap();
    assert_eq!(
        suspended.items.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![first]
    );
    let staging = store
        .list_agents(
            &AgentFilter {
                environment: Some("production".into()),
                ..Default::default()
            },
            &PageRequest::first(50),
        )
        .await
        .unwrap();
    assert!(staging.items.is_empty());
    let one = store
        .list_agents(
            &AgentFilter {
                id: Some(first),
                ..Default::default()
            },
            &PageRequest::first(50),
        )
        .await
        .unwrap();
    assert_eq!(
        one.items.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![first]
    );
}
