use std::sync::Arc;

use surety_core::human::Role;
use surety_core::id::PrincipalId;
use surety_core::key::KeyStatus;
use surety_store::{Store, StoreError};

use crate::fixtures::*;

crate::storage_tests!(
    rotation_adds_and_retires_in_one_step,
    a_revoked_key_can_never_be_added_again,
    a_key_belongs_to_one_principal_only,
    key_status_change_is_compare_and_set,
);

async fn rotation_adds_and_retires_in_one_step(store: Arc<dyn Store>) {
    let owner = add_human(&store, "o@example.com", Role::Member).await;
    let (a, old) = add_agent(&store, "bot", owner.id).await;
    let new = key(PrincipalId::Agent(a.id));
    store
        .add_key(&new, std::slice::from_ref(&old.kid), &[])
        .await
        .unwrap();
    let keys = store.list_keys(PrincipalId::Agent(a.id)).await.unwrap();
    let status = |kid: &str| keys.iter().find(|k| k.kid == kid).unwrap().status;
    assert_eq!(status(&old.kid), KeyStatus::Retired);
    assert_eq!(status(&new.kid), KeyStatus::Active);
    // Retiring a key that is no longer active aborts the whole rotation.
    let newer = key(PrincipalId::Agent(a.id));
    let err = store
        .add_key(&newer, std::slice::from_ref(&old.kid), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Stale), "{err}");
    assert_eq!(store.get_key(&newer.kid).await.unwrap(), None);
}

async fn a_revoked_key_can_never_be_added_again(store: Arc<dyn Store>) {
    let owner = add_human(&store, "o@example.com", Role::Member).await;
    let (a, k) = add_agent(&store, "bot", owner.id).await;
    store
        .change_key_status(&k.kid, KeyStatus::Active, KeyStatus::Revoked, t0(), &[])
        .await
        .unwrap();
    let mut again = k.clone();
    again.status = KeyStatus::Active;
    let err = store.add_key(&again, &[], &[]).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(ref m) if m.contains("revoked")),
        "{err}"
    );
    assert_eq!(
        store.get_key(&k.kid).await.unwrap().unwrap().status,
        KeyStatus::Revoked
    );
    assert_eq!(
        store
            .list_keys(PrincipalId::Agent(a.id))
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn a_key_belongs_to_one_principal_only(store: Arc<dyn Store>) {
    let owner = add_human(&store, "o@example.com", Role::Member).await;
    let (_, k) = add_agent(&store, "bot", owner.id).await;
    let mut for_human = k.clone();
    for_human.holder = PrincipalId::Human(owner.id);
    assert!(matches!(
        store.add_key(&for_human, &[], &[]).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn key_status_change_is_compare_and_set(store: Arc<dyn Store>) {
    let owner = add_human(&store, "o@example.com", Role::Member).await;
    let (_, k) = add_agent(&store, "bot", owner.id).await;
    store
        .change_key_status(&k.kid, KeyStatus::Active, KeyStatus::Retired, t0(), &[])
        .await
        .unwrap();
    let stale = store
        .change_key_status(&k.kid, KeyStatus::Active, KeyStatus::Revoked, t0(), &[])
        .await;
    assert!(matches!(stale, Err(StoreError::Stale)));
    let missing = store
        .change_key_status("nope", KeyStatus::Active, KeyStatus::Revoked, t0(), &[])
        .await;
    assert!(matches!(missing, Err(StoreError::NotFound(_))));
    let k = store.get_key(&k.kid).await.unwrap().unwrap();
    assert_eq!(k.status, KeyStatus::Retired);
    assert_eq!(k.status_changed_at, Some(t0()));
}
