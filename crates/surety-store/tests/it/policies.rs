use std::sync::Arc;

use surety_core::audit::EventKind;
use surety_core::human::Role;
use surety_core::page::PageRequest;
use surety_store::Store;

use crate::fixtures::*;

crate::storage_tests!(policy_sets_are_numbered_kept_and_the_newest_is_in_force);

async fn policy_sets_are_numbered_kept_and_the_newest_is_in_force(store: Arc<dyn Store>) {
    let admin = add_human(&store, "a@example.com", Role::Admin).await;
    assert_eq!(store.current_policy_set().await.unwrap(), None);
    let events = |v: u64| vec![event(EventKind::PolicyApplied, v)];
    let one = store
        .apply_policy_set("c1", "p1", Some("first"), admin.id, t0(), &events)
        .await
        .unwrap();
    let two = store
        .apply_policy_set("c2", "p2", None, admin.id, t0(), &events)
        .await
        .unwrap();
    assert_eq!((one, two), (1, 2));
    let current = store.current_policy_set().await.unwrap().unwrap();
    assert_eq!((current.version, current.policies.as_str()), (2, "p2"));
    let first = store.policy_set(1).await.unwrap().unwrap();
    assert_eq!(
        (
            first.catalog.as_str(),
            first.note.as_deref(),
            first.created_by
        ),
        ("c1", Some("first"), admin.id)
    );
    assert_eq!(store.policy_set(3).await.unwrap(), None);
    let page = store
        .list_policy_sets(&PageRequest::first(1))
        .await
        .unwrap();
    assert_eq!(page.items[0].version, 2);
    let rest = store
        .list_policy_sets(&PageRequest::new(Some(1), page.next_cursor).unwrap())
        .await
        .unwrap();
    assert_eq!(rest.items[0].version, 1);
    assert_eq!(
        event_count(&store).await,
        3,
        "one event per version, plus the admin"
    );
}
