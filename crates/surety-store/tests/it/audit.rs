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
    filters_scope_and_cursor_compose
);

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
