//! Federation: peers, federation grants, tokens minted under them, agent cards.

use std::sync::Arc;

use serde_json::json;
use surety_core::audit::EventKind;
use surety_core::federation::{FederationGrant, FederationGrantStatus, FederationGrantTerms};
use surety_core::human::Role;
use surety_core::id::{FederationGrantId, HumanId};
use surety_store::{FederatedTokenRecord, PeerRecord, Store, StoreError};
use time::Duration;

use crate::fixtures::*;

crate::storage_tests!(
    peers_are_unique_listed_refreshed_and_removed_with_their_grants,
    federated_tokens_are_followed_until_revoked,
    agent_cards_are_published_replaced_and_withdrawn,
);

const PEER: &str = "https://a.example";

fn peer(issuer: &str, name: &str, by: HumanId) -> PeerRecord {
    PeerRecord {
        issuer: issuer.into(),
        name: name.into(),
        source: "metadata".into(),
        metadata_url: Some(format!("{issuer}/.well-known/oauth-authorization-server")),
        jwks: json!({"keys": []}),
        introspection_endpoint: None,
        fetched_at: Some(t0()),
        created_by: by,
        created_at: t0(),
    }
}

fn grant(peer: &str, by: HumanId) -> FederationGrant {
    FederationGrantTerms {
        peer,
        agents: Some("agt_*"),
        principals: None,
        scopes: &["crm.read".into()],
        resources: &["https://crm.b.example".into()],
        constraints: Some(&json!({"max_amount": 100})),
        expires_at: t0() + Duration::days(1),
    }
    .parse(FederationGrantId::new(t0()), by, t0(), Duration::days(30))
    .unwrap()
}

async fn peers_are_unique_listed_refreshed_and_removed_with_their_grants(store: Arc<dyn Store>) {
    let admin = add_human(&store, "admin@b.example", Role::Admin).await;
    let before = event_count(&store).await;
    let p = peer(PEER, "org-a", admin.id);
    store
        .add_peer(&p, &[event(EventKind::FederationPeerAdded, PEER)])
        .await
        .unwrap();
    assert_eq!(event_count(&store).await, before + 1);
    assert_eq!(store.get_peer(PEER).await.unwrap(), Some(p.clone()));
    // Same issuer, or same name: refused, nothing written.
    for dup in [
        peer(PEER, "other", admin.id),
        peer("https://c.example", "org-a", admin.id),
    ] {
        assert!(matches!(
            store
                .add_peer(&dup, &[event(EventKind::FederationPeerAdded, "x")])
                .await,
            Err(StoreError::Conflict(_))
        ));
    }
    assert_eq!(event_count(&store).await, before + 1);
    let keys = json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "abc", "kid": "k"}]});
    store
        .update_peer_keys(
            PEER,
            &keys,
            Some("https://a.example/oauth2/introspect"),
            t0() + Duration::hours(1),
            &[],
        )
        .await
        .unwrap();
    let refreshed = store.get_peer(PEER).await.unwrap().unwrap();
    assert_eq!(refreshed.jwks, keys);
    assert_eq!(refreshed.fetched_at, Some(t0() + Duration::hours(1)));
    assert_eq!(
        refreshed.introspection_endpoint.as_deref(),
        Some("https://a.example/oauth2/introspect")
    );
    // A grant needs a trusted peer.
    assert!(matches!(
        store
            .create_federation_grant(&grant("https://c.example", admin.id), &[])
            .await,
        Err(StoreError::NotFound(_))
    ));
    let g = grant(PEER, admin.id);
    store.create_federation_grant(&g, &[]).await.unwrap();
    assert_eq!(
        store.get_federation_grant(g.id).await.unwrap(),
        Some(g.clone())
    );
    assert_eq!(
        store.list_federation_grants(Some(PEER)).await.unwrap(),
        vec![g.clone()]
    );
    assert!(
        store
            .list_federation_grants(Some("https://c.example"))
            .await
            .unwrap()
            .is_empty()
    );
    // Removing the peer revokes its grants.
    assert!(store.remove_peer(PEER, t0(), &[]).await.unwrap());
    assert!(!store.remove_peer(PEER, t0(), &[]).await.unwrap());
    assert_eq!(store.get_peer(PEER).await.unwrap(), None);
    assert_eq!(
        store
            .get_federation_grant(g.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        FederationGrantStatus::Revoked
    );
    assert!(
        !store
            .revoke_federation_grant(g.id, t0(), &[])
            .await
            .unwrap()
    );
}

async fn federated_tokens_are_followed_until_revoked(store: Arc<dyn Store>) {
    let admin = add_human(&store, "admin@b.example", Role::Admin).await;
    store
        .add_peer(&peer(PEER, "org-a", admin.id), &[])
        .await
        .unwrap();
    let g = grant(PEER, admin.id);
    store.create_federation_grant(&g, &[]).await.unwrap();
    let token = |jti: &str, assertion: &str, minutes: i64| FederatedTokenRecord {
        jti: jti.into(),
        peer: PEER.into(),
        grant: g.id,
        assertion_jti: assertion.into(),
        assertion: format!("jwt-{assertion}"),
        expires_at: t0() + Duration::minutes(minutes),
    };
    store
        .record_federated_token(&token("t1", "a1", 5), &[])
        .await
        .unwrap();
    store
        .record_federated_token(&token("t2", "a1", 4), &[])
        .await
        .unwrap();
    store
        .record_federated_token(&token("t3", "a2", 1), &[])
        .await
        .unwrap();
    // One row per peer grant, the latest-expiring token's.
    let live = store.live_federated_assertions(t0()).await.unwrap();
    assert_eq!(
        live.iter().map(|t| t.jti.as_str()).collect::<Vec<_>>(),
        ["t1", "t3"]
    );
    // Expired ones are not followed.
    let later = store
        .live_federated_assertions(t0() + Duration::minutes(2))
        .await
        .unwrap();
    assert_eq!(
        later.iter().map(|t| t.jti.as_str()).collect::<Vec<_>>(),
        ["t1"]
    );
    // Another peer's grant of the same `jti` is not this one.
    let other = store
        .revoke_federated_tokens("https://c.example", "a1", t0(), &[])
        .await
        .unwrap();
    assert_eq!(other, 0);
    let before = event_count(&store).await;
    let n = store
        .revoke_federated_tokens(PEER, "a1", t0(), &[event(EventKind::TokenRevoked, "a1")])
        .await
        .unwrap();
    assert_eq!(n, 2);
    assert_eq!(event_count(&store).await, before + 1);
    assert_eq!(store.token_revoked_at("t1").await.unwrap(), Some(t0()));
    assert_eq!(store.token_revoked_at("t2").await.unwrap(), Some(t0()));
    assert_eq!(store.token_revoked_at("t3").await.unwrap(), None);
    // Again: nothing more to revoke, no second event.
    assert_eq!(
        store
            .revoke_federated_tokens(PEER, "a1", t0(), &[event(EventKind::TokenRevoked, "a1")])
            .await
            .unwrap(),
        0
    );
    assert_eq!(event_count(&store).await, before + 1);
    let live = store.live_federated_assertions(t0()).await.unwrap();
    assert_eq!(
        live.iter().map(|t| t.jti.as_str()).collect::<Vec<_>>(),
        ["t3"]
    );
}

async fn agent_cards_are_published_replaced_and_withdrawn(store: Arc<dyn Store>) {
    let owner = add_human(&store, "ada@a.example", Role::Member).await;
    let (agent, _) = add_agent(&store, "billing", owner.id).await;
    assert_eq!(store.agent_card(agent.id).await.unwrap(), None);
    store
        .put_agent_card(agent.id, &json!({"name": "v1"}), t0(), &[])
        .await
        .unwrap();
    store
        .put_agent_card(agent.id, &json!({"name": "v2"}), t0(), &[])
        .await
        .unwrap();
    assert_eq!(
        store.agent_card(agent.id).await.unwrap(),
        Some(json!({"name": "v2"}))
    );
    assert!(store.delete_agent_card(agent.id, &[]).await.unwrap());
    assert!(!store.delete_agent_card(agent.id, &[]).await.unwrap());
    assert_eq!(store.agent_card(agent.id).await.unwrap(), None);
}

mod streams {
    use std::sync::Arc;

    use surety_core::human::Role;
    use surety_store::{ResourceServer, Store, StreamRecord};

    use crate::fixtures::*;

    crate::storage_tests!(streams_are_kept_per_receiver_and_their_cursor_moves_only_forward_once);

    async fn streams_are_kept_per_receiver_and_their_cursor_moves_only_forward_once(
        store: Arc<dyn Store>,
    ) {
        let admin = add_human(&store, "admin@example.com", Role::Admin).await;
        let key = key(surety_core::id::PrincipalId::Human(admin.id));
        let rs = ResourceServer {
            id: surety_core::id::ResourceServerId::new(t0()),
            audience: "https://crm.example".into(),
            name: "crm".into(),
            kid: key.kid.clone(),
            jwk: key.jwk.clone(),
            status: "active".into(),
            created_by: admin.id,
            created_at: t0(),
        };
        store.create_resource_server(&rs, &[]).await.unwrap();
        let stream = StreamRecord {
            id: "s1".into(),
            receiver: rs.id,
            audience: rs.audience.clone(),
            method: "poll".into(),
            endpoint_url: None,
            events: vec!["urn:x".into()],
            description: Some("test".into()),
            status: "enabled".into(),
            reason: None,
            cursor: 7,
            created_at: t0(),
            updated_at: t0(),
        };
        store.create_stream(&stream, &[]).await.unwrap();
        assert_eq!(store.get_stream("s1").await.unwrap(), Some(stream.clone()));
        assert_eq!(store.list_streams(Some(rs.id)).await.unwrap().len(), 1);
        let other = surety_core::id::ResourceServerId::new(t0());
        assert!(store.list_streams(Some(other)).await.unwrap().is_empty());
        // The cursor moves from where it is, once: a second node racing loses.
        assert!(store.advance_stream("s1", 7, 9, t0()).await.unwrap());
        assert!(!store.advance_stream("s1", 7, 12, t0()).await.unwrap());
        assert_eq!(store.get_stream("s1").await.unwrap().unwrap().cursor, 9);
        assert!(
            store
                .set_stream_status("s1", "paused", Some("maintenance"), t0())
                .await
                .unwrap()
        );
        let paused = store.get_stream("s1").await.unwrap().unwrap();
        assert_eq!(
            (paused.status.as_str(), paused.reason.as_deref()),
            ("paused", Some("maintenance"))
        );
        assert!(store.delete_stream("s1", &[]).await.unwrap());
        assert!(!store.delete_stream("s1", &[]).await.unwrap());
    }
}
