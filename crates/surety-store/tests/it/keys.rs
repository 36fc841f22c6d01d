use std::sync::Arc;

use surety_core::human::Role;
use surety_core::id::PrincipalId;
use surety_core::key::KeyStatus;
use surety_store::{Store, StoreError};

use crate::fixtures::*;

crate::storage_tests!(
    rotation_adds_and_retires_in_one_step,
    a_final_agent_gets_no_new_key,
    a_revoked_key_can_never_be_added_again,
    a_key_belongs_to_one_principal_only,
    key_status_change_is_compare_and_set,
);

async fn rotation_adds_and_retires_in_one_step(store: Arc<dyn Store>) {
    let owner = add_human(&store, "o@example.com", Role::Member).await;
    let (a, old) = add_agent(&store, "bot", owner.id).await;
    let new = key(PrincipalId::Agent(a.id));
    store
        .add_agent_key(a.id, &new, Some(std::slice::from_ref(&old.kid)), &[])
        .await
        .unwrap();
    let keys = store.list_keys(PrincipalId::Agent(a.id)).await.unwrap();
    let status = |kid: &str| keys.iter().find(|k| k.kid == kid).unwrap().status;
    assert_eq!(status(&old.kid), KeyStatus::Retired);
    assert_eq!(status(&new.kid), KeyStatus::Active);
    // A rotation decided on keys that have moved since (here: `new` became active) is
    // stale, and aborts as a whole.
    let newer = key(PrincipalId::Agent(a.id));
    let err = store
        .add_agent_key(a.id, &newer, Some(std::slice::from_ref(&old.kid)), &[])
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
    let err = store
        .add_agent_key(a.id, &again, None, &[])
        .await
        .unwrap_err();
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
    let (other, _) = add_agent(&store, "other", owner.id).await;
    let mut for_other = k.clone();
    for_other.holder = PrincipalId::Agent(other.id);
    assert!(matches!(
        store.add_agent_key(other.id, &for_other, None, &[]).await,
        Err(StoreError::Conflict(_))
    ));
    // Nor can a human enroll an agent's key as a device key.
    store
        .issue_enrollment(
            &surety_store::Enrollment {
                code_hash: "code".into(),
                human: owner.id,
                created_at: t0(),
                expires_at: t0() + time::Duration::minutes(15),
            },
            &[],
        )
        .await
        .unwrap();
    let enroll = |h| {
        let mut as_device = k.clone();
        as_device.holder = PrincipalId::Human(h);
        (as_device, Vec::new())
    };
    let err = store
        .redeem_enrollment("code", t0(), &enroll)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
}

async fn a_final_agent_gets_no_new_key(store: Arc<dyn Store>) {
    let owner = add_human(&store, "o@example.com", Role::Member).await;
    let (a, k) = add_agent(&store, "bot", owner.id).await;
    store
        .change_agent_status(
            &surety_store::AgentStatusChange {
                id: a.id,
                from: surety_core::agent::AgentStatus::Active,
                to: surety_core::agent::AgentStatus::Revoked,
                reason: None,
                keys_to: Some(KeyStatus::Revoked),
                keys: vec![k.kid.clone()],
                at: t0(),
                unchanged_since: None,
            },
            &[],
        )
        .await
        .unwrap();
    let fresh = key(PrincipalId::Agent(a.id));
    let err = store
        .add_agent_key(a.id, &fresh, None, &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Stale), "{err}");
    assert_eq!(store.get_key(&fresh.kid).await.unwrap(), None);
    let missing = surety_core::id::AgentId::new(t0());
    let err = store
        .add_agent_key(missing, &key(PrincipalId::Agent(missing)), None, &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
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
