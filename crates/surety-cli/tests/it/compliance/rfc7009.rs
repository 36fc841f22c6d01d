//! RFC 7009 token revocation by the agent that holds the token.

use surety_api::oauth::{CLIENT_ASSERTION_TYPE_JWT_BEARER, TOKEN_TYPE_ACCESS_TOKEN};
use surety_jose::PrivateJwk;
use surety_testkit::{TestServer, http};

use crate::support::{TokenRequest, delegation, expect_error, introspect, mint, ok_token};

async fn revoke(
    server: &TestServer,
    key: &PrivateJwk,
    client: &str,
    token: &str,
    hint: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![
        ("token", token.to_owned()),
        (
            "client_assertion_type",
            CLIENT_ASSERTION_TYPE_JWT_BEARER.to_owned(),
        ),
        ("client_assertion", server.client_assertion(key, client)),
    ];
    if let Some(h) = hint {
        form.push(("token_type_hint", h.to_owned()));
    }
    http()
        .post(server.url("/oauth2/revoke"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn rfc7009_s2_2_the_holder_revokes_and_the_token_and_its_children_die() {
    let server = TestServer::start().await;
    let d = delegation(&server, 1).await;
    let token = mint(&server, &d).await;
    let (b, _) = server.agent("helper").await;
    let child = ok_token(
        &server,
        TokenRequest::exchange(
            &server,
            &d.key,
            &d.agent.id.to_string(),
            &token,
            TOKEN_TYPE_ACCESS_TOKEN,
        )
        .set("requested_actor", b.id.to_string()),
    )
    .await;
    let child = child["access_token"].as_str().unwrap().to_owned();
    let r = revoke(
        &server,
        &d.key,
        &d.agent.id.to_string(),
        &token,
        Some("access_token"),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(introspect(&server, &d, &token).await["active"], false);
    assert_eq!(
        introspect(&server, &d, &child).await["active"],
        false,
        "derived tokens die with their parent"
    );
    // §2.2: revoking again, or an unknown token, is still 200.
    assert_eq!(
        revoke(&server, &d.key, &d.agent.id.to_string(), &token, None)
            .await
            .status(),
        200
    );
    assert_eq!(
        revoke(&server, &d.key, &d.agent.id.to_string(), "garbage", None)
            .await
            .status(),
        200
    );
    // The revocation is audited.
    let events = server
        .admin_client()
        .list_audit(&surety_api::admin::AuditQuery {
            kind: Some("token.revoked".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.items.len(), 1);
}

#[tokio::test]
async fn rfc7009_s2_1_another_clients_token_is_refused() {
    // §2.1: the server "verifies whether the token was issued to the client making the
    // revocation request"; if not, the request is refused.
    let server = TestServer::start().await;
    let d = delegation(&server, 0).await;
    let token = mint(&server, &d).await;
    let (other, other_key) = server.agent("other").await;
    let r = revoke(&server, &other_key, &other.id.to_string(), &token, None).await;
    expect_error(r, 400, "unauthorized_client").await;
    assert_eq!(
        introspect(&server, &d, &token).await["active"],
        true,
        "nothing changed"
    );
}

#[tokio::test]
async fn rfc7009_s2_1_a_hint_is_only_a_hint_and_the_client_must_authenticate() {
    // §2.1: the server "MUST" authenticate the client; `token_type_hint` only speeds the
    // lookup, and a wrong hint does not stop the revocation.
    let server = TestServer::start().await;
    let d = delegation(&server, 0).await;
    let token = mint(&server, &d).await;
    let r = http()
        .post(server.url("/oauth2/revoke"))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "invalid_client").await;
    assert_eq!(introspect(&server, &d, &token).await["active"], true);
    let r = revoke(
        &server,
        &d.key,
        &d.agent.id.to_string(),
        &token,
        Some("refresh_token"),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(introspect(&server, &d, &token).await["active"], false);
}
