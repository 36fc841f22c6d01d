//! RFC 7662 token introspection, and the revocations that must show in it at once: a
//! grant, a key, an agent (suspended, even once reinstated), a principal, a signing-key
//! rotation (which must not end live tokens).

use serde_json::json;
use surety_api::oauth::CLIENT_ASSERTION_TYPE_JWT_BEARER;
use surety_jose::{KeyAlg, PrivateJwk};
use surety_testkit::{Options, TestServer, http};
use time::Duration;

use crate::support::{
    CRM, Delegation, claims_of, delegation, expect_error, header_of, introspect, mint,
};

async fn introspect_as(server: &TestServer, form: Vec<(&str, String)>) -> reqwest::Response {
    http()
        .post(server.url("/oauth2/introspect"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

fn inactive() -> serde_json::Value {
    json!({"active": false})
}

async fn assert_inactive(server: &TestServer, d: &Delegation, token: &str) {
    assert_eq!(
        introspect(server, d, token).await,
        inactive(),
        "exactly {{\"active\": false}} (§2.2)"
    );
}

#[tokio::test]
async fn rfc7662_s2_2_an_active_token_shows_its_claims() {
    let server = TestServer::start().await;
    let d = delegation(&server, 0).await;
    let token = mint(&server, &d).await;
    let c = claims_of(&token);
    let body = introspect(&server, &d, &token).await;
    assert_eq!(body["active"], true);
    for claim in [
        "scope",
        "client_id",
        "sub",
        "aud",
        "iss",
        "exp",
        "iat",
        "jti",
        "act",
        "cnf",
        "grant_id",
    ] {
        assert_eq!(body[claim], c[claim], "{claim}");
    }
    assert_eq!(body["token_type"], "DPoP");
}

#[tokio::test]
async fn rfc7662_s2_2_unknown_malformed_and_foreign_tokens_are_just_inactive() {
    let server = TestServer::start().await;
    let d = delegation(&server, 0).await;
    for junk in ["x", "a.b.c", "eyJhbGciOiJub25lIn0.e30."] {
        assert_inactive(&server, &d, junk).await;
    }
    // A token signed by a key Surety does not publish, with the right shape.
    let mut c = claims_of(&mint(&server, &d).await);
    c["jti"] = json!("forged");
    let mut h = serde_json::Map::new();
    h.insert("typ".into(), json!("at+jwt"));
    h.insert(
        "kid".into(),
        header_of(&mint(&server, &d).await)["kid"].clone(),
    );
    let forged =
        surety_jose::jws::sign(h, &c, &PrivateJwk::generate(KeyAlg::EdDSA).unwrap()).unwrap();
    assert_inactive(&server, &d, &forged).await;
    // A token for another audience: this resource server learns nothing about it.
    let pay = crate::support::ok_token(
        &server,
        crate::support::TokenRequest::for_grant(&server, &d).set("resource", crate::support::PAY),
    )
    .await;
    assert_inactive(&server, &d, pay["access_token"].as_str().unwrap()).await;
}

#[tokio::test]
async fn rfc7662_s2_1_only_registered_resource_servers_may_ask() {
    let server = TestServer::start().await;
    let d = delegation(&server, 0).await;
    let token = mint(&server, &d).await;
    // No client authentication.
    let r = introspect_as(&server, vec![("token", token.clone())]).await;
    expect_error(r, 401, "invalid_client").await;
    // An agent is not a resource server.
    let r = introspect_as(
        &server,
        vec![
            ("token", token.clone()),
            (
                "client_assertion_type",
                CLIENT_ASSERTION_TYPE_JWT_BEARER.into(),
            ),
            (
                "client_assertion",
                server.client_assertion(&d.key, &d.agent.id.to_string()),
            ),
        ],
    )
    .await;
    expect_error(r, 400, "unauthorized_client").await;
    // A resource server's assertion signed by another key.
    let r = introspect_as(
        &server,
        vec![
            ("token", token),
            (
                "client_assertion_type",
                CLIENT_ASSERTION_TYPE_JWT_BEARER.into(),
            ),
            (
                "client_assertion",
                server.client_assertion(
                    &PrivateJwk::generate(KeyAlg::EdDSA).unwrap(),
                    &d.rs.id.to_string(),
                ),
            ),
        ],
    )
    .await;
    expect_error(r, 401, "invalid_client").await;
    // `token` is required.
    let r = introspect_as(
        &server,
        vec![
            (
                "client_assertion_type",
                CLIENT_ASSERTION_TYPE_JWT_BEARER.into(),
            ),
            (
                "client_assertion",
                server.client_assertion(&d.rs_key, &d.rs.id.to_string()),
            ),
        ],
    )
    .await;
    expect_error(r, 400, "invalid_request").await;
}

#[tokio::test]
async fn revoking_a_grant_ends_its_tokens_at_once() {
    let server = TestServer::start().await;
    let d = delegation(&server, 0).await;
    let token = mint(&server, &d).await;
    server
        .admin_client()
        .grant_action(d.grant.id, "revoke", Some("done".into()))
        .await
        .unwrap();
    assert_inactive(&server, &d, &token).await;
}

#[tokio::test]
async fn revoking_the_agents_key_ends_its_tokens_at_once() {
    let server = TestServer::start().await;
    let d = delegation(&server, 0).await;
    let token = mint(&server, &d).await;
    server
        .admin_client()
        .revoke_agent_key(d.agent.id, &d.key.thumbprint(), Some("leaked".into()))
        .await
        .unwrap();
    assert_inactive(&server, &d, &token).await;
}

#[tokio::test]
async fn suspending_ends_tokens_and_reinstating_does_not_revive_them() {
    let (server, clock) = TestServer::with_manual_clock().await;
    let d = delegation(&server, 0).await;
    let token = mint(&server, &d).await;
    let admin = server.admin_client();
    admin
        .agent_action(d.agent.id, "suspend", Some("odd".into()))
        .await
        .unwrap();
    assert_inactive(&server, &d, &token).await;
    admin
        .agent_action(d.agent.id, "reinstate", None)
        .await
        .unwrap();
    assert_inactive(&server, &d, &token).await;
    // A token minted after the reinstatement (in a later second) is active.
    clock.advance(Duration::seconds(1));
    let fresh = mint(&server, &d).await;
    assert_eq!(introspect(&server, &d, &fresh).await["active"], true);
}

#[tokio::test]
async fn deactivating_the_principal_ends_their_tokens_at_once() {
    let server = TestServer::start().await;
    let (member, _, member_client) = server
        .enrolled_human("M", "m@example.com", surety_core::human::Role::Member)
        .await;
    let (agent, key) = server.agent("bot").await;
    let grant = member_client
        .create_grant(&crate::support::crm_read_for(agent.id, None))
        .await
        .unwrap();
    let (rs, rs_key) = server.resource_server(CRM).await;
    let d = Delegation {
        agent,
        key,
        grant,
        rs,
        rs_key,
    };
    let token = mint(&server, &d).await;
    assert_eq!(
        introspect(&server, &d, &token).await["sub"],
        member.id.to_string()
    );
    server
        .admin_client()
        .human_action(member.id, "deactivate", Some("left".into()))
        .await
        .unwrap();
    assert_inactive(&server, &d, &token).await;
    server
        .admin_client()
        .human_action(member.id, "reactivate", None)
        .await
        .unwrap();
    assert_inactive(&server, &d, &token).await;
}

#[tokio::test]
async fn rfc9068_expired_tokens_are_inactive() {
    let (server, clock) = TestServer::with_manual_clock().await;
    let d = delegation(&server, 0).await;
    let token = mint(&server, &d).await;
    clock.advance(Duration::seconds(299));
    assert_eq!(introspect(&server, &d, &token).await["active"], true);
    clock.advance(Duration::seconds(1));
    assert_inactive(&server, &d, &token).await;
}

#[tokio::test]
async fn a_revoked_parent_takes_its_sub_agent_tokens_with_it() {
    let server = TestServer::start().await;
    let d = delegation(&server, 1).await;
    let parent = mint(&server, &d).await;
    let (b, _) = server.agent("helper").await;
    let child = crate::support::ok_token(
        &server,
        crate::support::TokenRequest::exchange(
            &server,
            &d.key,
            &d.agent.id.to_string(),
            &parent,
            surety_api::oauth::TOKEN_TYPE_ACCESS_TOKEN,
        )
        .set("requested_actor", b.id.to_string()),
    )
    .await;
    let child = child["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        introspect(&server, &d, &child).await["act"]["act"]["sub"],
        d.agent.id.to_string()
    );
    // Suspending the parent agent ends the child's token too.
    server
        .admin_client()
        .agent_action(d.agent.id, "suspend", Some("x".into()))
        .await
        .unwrap();
    assert_inactive(&server, &d, &child).await;
}

#[tokio::test]
async fn rotating_the_signing_key_keeps_live_tokens_valid() {
    // DESIGN: old keys stay published until their tokens expire.
    let server = TestServer::start_with(Options {
        config: vec![("signing_alg", "ES256".into())],
        ..Options::default()
    })
    .await;
    let d = delegation(&server, 0).await;
    let before = mint(&server, &d).await;
    assert_eq!(header_of(&before)["alg"], "ES256");
    let rotated = server
        .admin_client()
        .rotate_signing_key(Some("EdDSA".into()))
        .await
        .unwrap();
    assert_eq!(
        rotated.retired,
        vec![header_of(&before)["kid"].as_str().unwrap().to_owned()]
    );
    let after = mint(&server, &d).await;
    assert_eq!(header_of(&after)["kid"], rotated.kid);
    assert_eq!(header_of(&after)["alg"], "EdDSA");
    assert_eq!(introspect(&server, &d, &before).await["active"], true);
    assert_eq!(introspect(&server, &d, &after).await["active"], true);
    let jwks: serde_json::Value = http()
        .get(server.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    let keys = server.admin_client().list_signing_keys().await.unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().all(|k| k.published));
    assert!(
        keys.iter()
            .any(|k| k.status == "retired" && k.publish_until.is_some())
    );
}
