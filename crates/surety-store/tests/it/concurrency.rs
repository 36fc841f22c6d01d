//! Races that the store must settle the same way on both backends.

use std::sync::Arc;

use surety_core::human::{HumanStatus, Role};
use surety_store::{HumanStatusChange, Store, StoreError};
use time::Duration;

use crate::fixtures::*;

crate::storage_tests!(
    two_admins_deactivating_each_other_leave_one_admin,
    no_active_agent_survives_its_owners_deactivation,
    a_value_raced_from_many_tasks_is_accepted_once,
    concurrent_registrations_all_land_with_their_events,
);

async fn two_admins_deactivating_each_other_leave_one_admin(store: Arc<dyn Store>) {
    let change = |id| HumanStatusChange {
        id,
        from: HumanStatus::Active,
        to: HumanStatus::Deactivated,
        at: t0(),
    };
    let mut survivor = None;
    for round in 0..5 {
        let a = add_human(&store, &format!("a{round}@example.com"), Role::Admin).await;
        let b = add_human(&store, &format!("b{round}@example.com"), Role::Admin).await;
        if let Some(previous) = survivor {
            store
                .change_human_status(&change(previous), &[], &|_| unreachable!())
                .await
                .unwrap();
        }
        // a and b are now the only active admins, and each tries to remove the other.
        let (s1, s2) = (store.clone(), store.clone());
        let (r1, r2) = tokio::join!(
            tokio::spawn(async move {
                s1.change_human_status(&change(a.id), &[], &|_| unreachable!())
                    .await
            }),
            tokio::spawn(async move {
                s2.change_human_status(&change(b.id), &[], &|_| unreachable!())
                    .await
            }),
        );
        let results = [r1.unwrap(), r2.unwrap()];
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "exactly one wins: {results:?}"
        );
        assert!(
            results.iter().any(
                |r| matches!(r, Err(StoreError::Conflict(m)) if m.contains("last active admin"))
            )
        );
        survivor = Some(if results[0].is_ok() { b.id } else { a.id });
    }
}

async fn a_value_raced_from_many_tasks_is_accepted_once(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.remember("raced-jti", t0() + Duration::minutes(1), t0())
                .await
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => accepted += 1,
            Err(StoreError::Replay) => {}
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(accepted, 1);
}

async fn concurrent_registrations_all_land_with_their_events(store: Arc<dyn Store>) {
    let owner = add_human(&store, "o@example.com", Role::Member).await;
    let before = event_count(&store).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            add_agent(&s, &format!("bot-{i}"), owner.id).await
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(event_count(&store).await, before + 20);
    let page = store
        .list_agents(
            &Default::default(),
            &surety_core::page::PageRequest::first(100),
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 20);
}

async fn no_active_agent_survives_its_owners_deactivation(store: Arc<dyn Store>) {
    use surety_core::agent::AgentStatus;
    let _admin = add_human(&store, "admin@example.com", Role::Admin).await;
    for round in 0..8 {
        let owner = add_human(&store, &format!("o{round}@example.com"), Role::Member).await;
        let off = HumanStatusChange {
            id: owner.id,
            from: HumanStatus::Active,
            to: HumanStatus::Deactivated,
            at: t0(),
        };
        let (s1, s2) = (store.clone(), store.clone());
        let register = tokio::spawn(async move {
            let a = agent("racer", owner.id);
            let k = key(surety_core::id::PrincipalId::Agent(a.id));
            s1.create_agent(&a, &k, &[]).await.map(|()| a.id)
        });
        let deactivate = tokio::spawn(async move {
            let cascade = |a: &surety_core::agent::Agent| {
                event(surety_core::audit::EventKind::AgentSuspended, a.id)
            };
            s2.change_human_status(&off, &[], &cascade).await
        });
        let (registered, deactivated) = (register.await.unwrap(), deactivate.await.unwrap());
        deactivated.unwrap();
        if let Ok(id) = registered {
            let agent = store.get_agent(id).await.unwrap().unwrap();
            assert_eq!(
                agent.status,
                AgentStatus::Suspended,
                "round {round}: an active agent under a deactivated owner"
            );
        }
    }
}
