use std::sync::Arc;

use serde_json::json;
use surety_core::audit::{Actor, AuditFilter, AuditScope, EventKind, NewEvent};
use surety_core::human::Role;
use surety_core::page::PageRequest;
use surety_store::Store;
use time::Duration;

use crate::fixtures::*;

crate::storage_tests!(
    events_round_trip_newest_first,
    filters_scope_and_cursor_compose,
    every_event_is_a_leaf_of_the_merkle_tree_in_commit_order,
);

/// Every event so far, oldest first.
async fn all_events(store: &Arc<dyn Store>) -> Vec<NewEvent> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(1000);
    loop {
        let got = store
            .list_events(AuditScope::All, &AuditFilter::default(), &page)
            .await
            .unwrap();
        out.extend(got.items.into_iter().map(|e| e.event));
        match got.next_cursor {
            Some(c) => page.after = Some(c),
            None => break,
        }
    }
    out.reverse();
    out
}

async fn every_event_is_a_leaf_of_the_merkle_tree_in_commit_order(store: Arc<dyn Store>) {
    use surety_core::merkle::{self, MemoryTree};
    let h = add_human(&store, "a@example.com", Role::Admin).await;
    // Events from several kinds of transaction, some in batches.
    for i in 0..5u8 {
        let batch: Vec<NewEvent> = (0..i)
            .map(|j| {
                NewEvent::new(EventKind::TokenIssued, Actor::Human(h.id), h.id, t0())
                    .details(json!({"batch": i, "n": j, "f": 0.1}))
            })
            .collect();
        store.append_events(&batch).await.unwrap();
    }
    add_agent(&store, "bot", h.id).await;
    let events = all_events(&store).await;
    let size = store.tree_size().await.unwrap();
    assert_eq!(size, events.len() as u64, "one leaf per event");
    // The same leaves, hashed here from the events as read back, give the same root.
    let mut expected = MemoryTree::new();
    for e in &events {
        expected.push(merkle::leaf_hash(&e.leaf_entry()));
    }
    let wanted = merkle::wanted(|src| merkle::root(src, size)).unwrap();
    let nodes = store.tree_nodes(&wanted).await.unwrap();
    let root = merkle::root(&nodes, size).unwrap();
    assert_eq!(root, expected.root(size).unwrap());
    // Proofs assembled from stored nodes verify against it.
    for index in [0, size / 2, size - 1] {
        let wanted = merkle::wanted(|src| merkle::inclusion_proof(src, index, size)).unwrap();
        let nodes = store.tree_nodes(&wanted).await.unwrap();
        let proof = merkle::inclusion_proof(&nodes, index, size).unwrap();
        let leaf = merkle::leaf_hash(&events[index as usize].leaf_entry());
        assert!(merkle::verify_inclusion(index, size, &leaf, &proof, &root));
    }
    let old = size / 3;
    let wanted = merkle::wanted(|src| {
        merkle::consistency_proof(src, old, size)?;
        merkle::root(src, old)
    })
    .unwrap();
    let nodes = store.tree_nodes(&wanted).await.unwrap();
    let proof = merkle::consistency_proof(&nodes, old, size).unwrap();
    let old_root = merkle::root(&nodes, old).unwrap();
    assert!(merkle::verify_consistency(
        old, size, &old_root, &root, &proof
    ));
}

async fn events_round_trip_newest_first(store: Arc<dyn Store>) {
    let h = add_human(&store, "a@example.com", Role::Admin).await;
    let e = NewEvent::new(
        EventKind::TokenIssued,
        Actor::Human(h.id),
        h.id,
        t0() + Duration::seconds(5),
    )
    .human(h.id)
    .details(json!({"scope": "admin", "nested": {"n": 1.5}}));
    store.append_events(std::slice::from_ref(&e)).await.unwrap();
    let page = store
        .list_events(
            AuditScope::All,
            &AuditFilter::default(),
            &PageRequest::first(10),
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.items[0].event, e, "newest first, stored exactly");
    assert!(page.items[0].seq > page.items[1].seq);
}

async fn filters_scope_and_cursor_compose(store: Arc<dyn Store>) {
    let alice = add_human(&store, "alice@example.com", Role::Member).await;
    let bob = add_human(&store, "bob@example.com", Role::Member).await;
    let (a, _) = add_agent(&store, "a", alice.id).await;
    let (b, _) = add_agent(&store, "b", bob.id).await;
    let mut events = Vec::new();
    for i in 0..5 {
        let at = t0() + Duration::minutes(i);
        events.push(
            NewEvent::new(EventKind::AgentSuspended, Actor::Human(alice.id), a.id, at)
                .agent(a.id)
                .human(alice.id),
        );
        events.push(
            NewEvent::new(EventKind::AgentSuspended, Actor::System, b.id, at)
                .agent(b.id)
                .human(bob.id),
        );
    }
    store.append_events(&events).await.unwrap();
    let all = |f: AuditFilter, scope: AuditScope| {
        let store = store.clone();
        async move {
            let mut out = Vec::new();
            let mut page = PageRequest::first(2);
            loop {
                let p = store.list_events(scope, &f, &page).await.unwrap();
                out.extend(p.items);
                match p.next_cursor {
                    Some(c) => page.after = Some(c),
                    None => break,
                }
            }
            out
        }
    };
    let about_a = all(
        AuditFilter {
            agent: Some(a.id),
            ..Default::default()
        },
        AuditScope::All,
    )
    .await;
    assert_eq!(about_a.len(), 6, "registration + 5 suspensions");
    assert!(about_a.windows(2).all(|w| w[0].seq > w[1].seq));
    let bobs_view = all(AuditFilter::default(), AuditScope::Involving(bob.id)).await;
    assert!(
        bobs_view
            .iter()
            .all(|e| e.event.human == Some(bob.id) || e.event.actor == Actor::Human(bob.id))
    );
    assert_eq!(bobs_view.len(), 7, "created + registered + 5 suspensions");
    let window = AuditFilter {
        kind: Some(EventKind::AgentSuspended),
        since: Some(t0() + Duration::minutes(1)),
        until: Some(t0() + Duration::minutes(3)),
        ..Default::default()
    };
    assert_eq!(
        all(window, AuditScope::All).await.len(),
        4,
        "minutes 1 and 2, both agents"
    );
    let by_target = AuditFilter {
        target: Some(b.id.to_string()),
        ..Default::default()
    };
    assert_eq!(
        all(by_target, AuditScope::Involving(alice.id)).await.len(),
        0,
        "scope applies to every filter"
    );
}

/// A log recorded before the tree existed gets its leaves, in order, when the store opens.
#[tokio::test]
async fn events_older_than_the_tree_become_its_first_leaves_on_open() {
    use surety_core::merkle::{self, MemoryTree};
    let dir = tempfile::tempdir().unwrap();
    let url = surety_store::testing::sqlite_url(dir.path());
    let store: Arc<dyn Store> = Arc::new(surety_store::SqliteStore::open(&url, 2).await.unwrap());
    let h = add_human(&store, "a@example.com", Role::Admin).await;
    add_agent(&store, "bot", h.id).await;
    let events = all_events(&store).await;
    store.close().await;
    // Forget the tree, as a database from before it would be.
    {
        use sqlx::ConnectOptions as _;
        let mut conn = url
            .parse::<sqlx::sqlite::SqliteConnectOptions>()
            .unwrap()
            .connect()
            .await
            .unwrap();
        sqlx::query("UPDATE audit_events SET leaf_index = NULL")
            .execute(&mut conn)
            .await
            .unwrap();
        sqlx::query("DELETE FROM audit_tree")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let store: Arc<dyn Store> = Arc::new(surety_store::SqliteStore::open(&url, 2).await.unwrap());
    let size = store.tree_size().await.unwrap();
    assert_eq!(size, events.len() as u64);
    let mut expected = MemoryTree::new();
    for e in &events {
        expected.push(merkle::leaf_hash(&e.leaf_entry()));
    }
    let nodes = store
        .tree_nodes(&merkle::wanted(|src| merkle::root(src, size)).unwrap())
        .await
        .unwrap();
    assert_eq!(merkle::root(&nodes, size), expected.root(size));
    store.close().await;
}
