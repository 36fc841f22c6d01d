//! Two nodes on one PostgreSQL database, one issuer (as behind a load balancer): they sign
//! with the same keys (sealed in the database under the shared key-encryption key), and a
//! revocation made through one is seen by the other on the very next introspection. A node
//! with another key-encryption key refuses to start.

use surety_api::oauth::CLIENT_ASSERTION_TYPE_JWT_BEARER;
use surety_testkit::{Backend, Options, TestServer, http, postgres_configured};

use crate::support::{TokenRequest, delegation, introspect_at, mint, ok_token};

#[tokio::test]
async fn nodes_sharing_postgresql_share_signing_keys_and_revocations() {
    if !postgres_configured() {
        eprintln!("PostgreSQL not configured: SURETY_TEST_DATABASE_URL is unset");
        return;
    }
    let one = TestServer::start_with(Options {
        backend: Backend::Postgres,
        ..Options::default()
    })
    .await;
    let two = TestServer::start_with(Options {
        join: Some(one.node()),
        ..Options::default()
    })
    .await;
    let d = delegation(&one, 0).await;
    let at_one = one.url("/oauth2/introspect");
    let at_two = two.url("/oauth2/introspect");
    // Minted by one, believed by two; minted by two (its nonce too comes from the shared
    // secret), believed by one.
    let token = mint(&one, &d).await;
    assert_eq!(
        introspect_at(&one, &at_two, &d, &token).await["active"],
        true
    );
    let response = TokenRequest::for_grant(&one, &d)
        .send_to(&two.url("/oauth2/token"))
        .await;
    assert_eq!(response.status(), 200);
    let from_two: serde_json::Value = response.json().await.unwrap();
    let from_two = from_two["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        introspect_at(&one, &at_one, &d, &from_two).await["active"],
        true
    );
    // Revoked through two (RFC 7009), inactive on one at once.
    let r = http()
        .post(two.url("/oauth2/revoke"))
        .form(&[
            ("token", token.clone()),
            (
                "client_assertion_type",
                CLIENT_ASSERTION_TYPE_JWT_BEARER.into(),
            ),
            (
                "client_assertion",
                one.client_assertion(&d.key, &d.agent.id.to_string()),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        introspect_at(&one, &at_one, &d, &token).await["active"],
        false
    );
    // A rotation made on one: two signs with the new key within `key_refresh_interval`,
    // and meanwhile keeps verifying both (an unknown kid makes it re-read at once).
    one.admin_client().rotate_signing_key(None).await.unwrap();
    let after = ok_token(&one, TokenRequest::for_grant(&one, &d)).await;
    let after = after["access_token"].as_str().unwrap();
    assert_eq!(
        introspect_at(&one, &at_two, &d, after).await["active"],
        true
    );

    // A node whose key-encryption key differs cannot open the signing keys: it fails to
    // start and says why.
    let stranger = tempfile::tempdir().unwrap();
    let node = one.node();
    let config = surety_server::Config::load(
        None,
        |_| None,
        &[
            ("data_dir", stranger.path().display().to_string()),
            ("database_url", node.database_url.clone()),
            (
                "signing_kek_file",
                stranger.path().join("other-kek").display().to_string(),
            ),
        ],
    )
    .unwrap();
    let store = surety_server::bootstrap::open_store(&config).await.unwrap();
    let err = surety_server::AppState::new(
        config,
        store.clone(),
        std::sync::Arc::new(surety_core::clock::SystemClock),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("same key-encryption key"), "{err}");
    store.close().await;
    two.stop().await;
    one.stop().await;
}
