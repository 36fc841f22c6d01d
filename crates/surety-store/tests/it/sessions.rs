use std::sync::Arc;

use surety_core::human::Role;
use surety_store::{AccessTokenRecord, Store, StoreError};
use time::Duration;

use crate::fixtures::*;

crate::storage_tests!(
    a_single_use_value_is_refused_while_live,
    a_batch_of_single_use_values_refuses_replays_within_and_across_batches,
    purge_drops_only_expired_rows,
    access_tokens_round_trip,
);

async fn a_single_use_value_is_refused_while_live(store: Arc<dyn Store>) {
    let until = t0() + Duration::seconds(65);
    store.remember("jti-1", until, t0()).await.unwrap();
    let replay = store
        .remember("jti-1", until, t0() + Duration::seconds(10))
        .await;
    assert!(matches!(replay, Err(StoreError::Replay)));
    store.remember("jti-2", until, t0()).await.unwrap();
    // Once expired, an entry no longer blocks (the proof's own `iat` window refuses it).
    store
        .remember("jti-1", until + Duration::seconds(65), until)
        .await
        .unwrap();
}

async fn a_batch_of_single_use_values_refuses_replays_within_and_across_batches(
    store: Arc<dyn Store>,
) {
    let until = t0() + Duration::seconds(65);
    store.remember("seen", until, t0()).await.unwrap();
    let batch = [
        ("a".to_owned(), until),
        ("seen".to_owned(), until),
        ("b".to_owned(), until),
        ("a".to_owned(), until),
    ];
    let recorded = store.remember_many(&batch, t0()).await.unwrap();
    assert_eq!(recorded, [true, false, true, false]);
    assert!(matches!(
        store.remember("b", until, t0()).await,
        Err(StoreError::Replay)
    ));
    assert_eq!(
        store.remember_many(&[], t0()).await.unwrap(),
        Vec::<bool>::new()
    );
}

async fn purge_drops_only_expired_rows(store: Arc<dyn Store>) {
    store
        .remember("old", t0(), t0() - Duration::seconds(1))
        .await
        .unwrap();
    store
        .remember("new", t0() + Duration::minutes(5), t0())
        .await
        .unwrap();
    let purged = store.purge_expired(t0()).await.unwrap();
    assert_eq!(purged, 1);
    assert!(matches!(
        store
            .remember("new", t0() + Duration::minutes(5), t0())
            .await,
        Err(StoreError::Replay)
    ));
}

async fn access_tokens_round_trip(store: Arc<dyn Store>) {
    let h = add_human(&store, "t@example.com", Role::Admin).await;
    let t = AccessTokenRecord {
        token_hash: "hash".into(),
        human: h.id,
        jkt: "thumb".into(),
        scope: "admin".into(),
        issued_at: t0(),
        expires_at: t0() + Duration::minutes(5),
    };
    store.insert_access_token(&t, &[]).await.unwrap();
    assert_eq!(store.get_access_token("hash").await.unwrap(), Some(t));
    assert_eq!(store.get_access_token("other").await.unwrap(), None);
    store
        .purge_expired(t0() + Duration::minutes(6))
        .await
        .unwrap();
    assert_eq!(store.get_access_token("hash").await.unwrap(), None);
}
