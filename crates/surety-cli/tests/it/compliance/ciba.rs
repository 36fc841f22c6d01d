//! OpenID Client-Initiated Backchannel Authentication Flow — Core 1.0.

use std::time::Instant;

use serde_json::{Value, json};
use surety_api::approvals::ApprovalQuery;
use surety_testkit::{Options, TestServer, http};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::api::approvals::{bc_authorize, poll};
use crate::support::{CRM, delegation, expect_error, get_json};

fn details() -> String {
    json!([{
        "type": "surety_action",
        "locations": [CRM],
        "action": "payments.transfer",
        "resource": {"type": "Resource", "id": "acct-1"},
        "arguments": {"amount": 1500},
    }])
    .to_string()
}

#[tokio::test]
async fn ciba_s4_discovery_names_the_endpoint_the_modes_and_the_grant() {
    let server = TestServer::start().await;
    let meta = get_json(&server, "/.well-known/openid-configuration").await;
    assert_eq!(
        meta["backchannel_authentication_endpoint"],
        server.url("/oauth2/bc-authorize")
    );
    assert_eq!(
        meta["backchannel_token_delivery_modes_supported"],
        json!(["poll", "ping"])
    );
    assert_eq!(meta["backchannel_user_code_parameter_supported"], false);
    assert!(
        meta["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("urn:openid:params:grant-type:ciba"))
    );
    server.stop().await;
}

#[tokio::test]
async fn ciba_s7_1_exactly_one_hint_and_client_authentication_are_required() {
    let server = TestServer::start().await;
    let d = delegation(&server, 0).await;
    let agent = d.agent.id.to_string();
    let admin = server.admin.id.to_string();
    let none = bc_authorize(
        &server,
        &d.key,
        &agent,
        &[("authorization_details", details())],
    )
    .await;
    expect_error(none, 400, "invalid_request").await;
    let two = bc_authorize(
        &server,
        &d.key,
        &agent,
        &[
            ("login_hint", admin.clone()),
            ("id_token_hint", "x".into()),
            ("authorization_details", details()),
        ],
    )
    .await;
    expect_error(two, 400, "invalid_request").await;
    let anonymous = http()
        .post(server.url("/oauth2/bc-authorize"))
        .form(&[("login_hint", admin), ("authorization_details", details())])
        .send()
        .await
        .unwrap();
    expect_error(anonymous, 401, "invalid_client").await;
    server.stop().await;
}

#[tokio::test]
async fn ciba_s7_3_the_answer_is_an_opaque_id_with_expires_in_and_interval() {
    let server = TestServer::start().await;
    let d = delegation(&server, 0).await;
    let r = bc_authorize(
        &server,
        &d.key,
        &d.agent.id.to_string(),
        &[
            ("login_hint", server.admin.email.clone()),
            ("authorization_details", details()),
            // §7.1: `openid` is required by the spec; Surety issues no ID token and ignores it.
            ("scope", "openid".into()),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let id = body["auth_req_id"].as_str().unwrap();
    // 256 bits of entropy, base64url.
    assert_eq!(id.len(), 43, "{body}");
    assert!(!id.contains(&d.agent.id.to_string()), "opaque: {body}");
    assert!(body["expires_in"].as_u64().is_some() && body["interval"].as_u64().is_some());
    server.stop().await;
}

/// Accepts one HTTP request on `listener`, answers 204, and returns its head and body.
async fn receive_one(listener: tokio::net::TcpListener) -> (String, String) {
    let (mut socket, _) = listener.accept().await.unwrap();
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.unwrap();
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if body.len() >= length {
                socket
                    .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                    .await
                    .unwrap();
                return (head.to_owned(), body.to_owned());
            }
        }
        assert!(n > 0, "the connection closed early");
    }
}

#[tokio::test]
async fn ciba_s10_2_ping_posts_the_auth_req_id_with_the_clients_bearer_token() {
    // Plain http to a loopback receiver needs `dev` mode (tested elsewhere: refused without).
    let server = TestServer::start_with(Options {
        config: vec![("dev", "true".into())],
        ..Options::default()
    })
    .await;
    let d = delegation(&server, 0).await;
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/ciba/ping", receiver.local_addr().unwrap());
    server
        .admin_client()
        .set_notification_endpoint(d.agent.id, Some(endpoint))
        .await
        .unwrap();
    let agent = d.agent.id.to_string();
    // Ping mode needs the client's notification token.
    let without = bc_authorize(
        &server,
        &d.key,
        &agent,
        &[
            ("login_hint", server.admin.email.clone()),
            ("authorization_details", details()),
        ],
    )
    .await;
    expect_error(without, 400, "invalid_request").await;
    // It travels as `Authorization: Bearer`, so it must be an RFC 6750 token.
    let malformed = bc_authorize(
        &server,
        &d.key,
        &agent,
        &[
            ("login_hint", server.admin.email.clone()),
            ("authorization_details", details()),
            ("client_notification_token", "not a\ttoken".into()),
        ],
    )
    .await;
    expect_error(malformed, 400, "invalid_request").await;
    let token = "b8e9c2f4-1d3a-4f5e-9a6b-7c8d9e0f1a2b";
    let r = bc_authorize(
        &server,
        &d.key,
        &agent,
        &[
            ("login_hint", server.admin.email.clone()),
            ("authorization_details", details()),
            ("client_notification_token", token.into()),
        ],
    )
    .await;
    let opened: Value = r.json().await.unwrap();
    let auth_req_id = opened["auth_req_id"].as_str().unwrap().to_owned();
    let ping = tokio::spawn(receive_one(receiver));
    let list = server
        .admin_client()
        .list_approvals(&ApprovalQuery::default())
        .await
        .unwrap();
    let approved_at = Instant::now();
    server
        .admin_client()
        .answer_approval(&list.items[0], true, None)
        .await
        .unwrap();
    let (head, body) = ping.await.unwrap();
    let pinged_after = approved_at.elapsed();
    assert!(head.starts_with("POST /ciba/ping "), "{head}");
    assert!(
        head.lines()
            .any(|l| l.eq_ignore_ascii_case(&format!("authorization: Bearer {token}"))),
        "{head}"
    );
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body, json!({"auth_req_id": auth_req_id}));
    // On the ping, the client fetches its token at once: the interval paces polls of a
    // pending request only.
    let r = poll(&server, &d.key, &agent, &auth_req_id)
        .send(&server)
        .await;
    assert_eq!(r.status(), 200);
    println!("ping delivered {pinged_after:?} after the approval was recorded");
    server.stop().await;
}
