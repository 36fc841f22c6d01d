//! How approvers and agents hear about approval requests: the approvers' event stream, the
//! signed webhook, and agents' CIBA ping endpoints (the ping itself is in
//! `compliance::ciba`).

use serde_json::{Value, json};
use surety_api::approvals::ApprovalQuery;
use surety_testkit::{TestServer, http};

use super::approvals::{ask_approval, pending, started, transfer_details};
use super::decisions::{agent_token, decisions_token, native, setup};

#[tokio::test]
async fn ping_endpoints_must_be_https_outside_dev_mode() {
    let server = TestServer::start().await;
    let (agent, _) = server.agent("pinger").await;
    let admin = server.admin_client();
    let err = admin
        .set_notification_endpoint(agent.id, Some("http://agent.example/cb".into()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("https"), "{err}");
    // Only the agent's owner or an admin sets it.
    let (_, _, bob) = server
        .enrolled_human("Bob", "bob@example.com", surety_core::human::Role::Member)
        .await;
    let err = bob
        .set_notification_endpoint(agent.id, Some("https://bob.example/cb".into()))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    let ok = admin
        .set_notification_endpoint(agent.id, Some("https://agent.example/cb".into()))
        .await
        .unwrap();
    assert_eq!(ok.url.as_deref(), Some("https://agent.example/cb"));
    // The server would call it: not inside its own network.
    for internal in [
        "https://10.0.0.7/cb",
        "https://localhost/cb",
        "https://169.254.169.254/cb",
    ] {
        let err = admin
            .set_notification_endpoint(agent.id, Some(internal.into()))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("private"), "{internal}: {err}");
    }
    server.stop().await;
}

/// Reads from an event stream until `needle` has arrived (or fails after 5 s).
async fn read_stream_until(response: &mut reqwest::Response, needle: &str) -> String {
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while !seen.contains(needle) {
        let chunk = tokio::time::timeout_at(deadline, response.chunk())
            .await
            .unwrap_or_else(|_| panic!("no `{needle}` on the stream; got: {seen}"))
            .unwrap()
            .unwrap_or_else(|| panic!("the stream ended; got: {seen}"));
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    seen
}

#[tokio::test]
async fn the_approvers_stream_names_waiting_and_new_requests_and_only_theirs() {
    let s = started().await;
    let (server, d) = (&s.server, &s.d);
    ask_approval(server, d, &transfer_details(2100)).await;
    let first = pending(server).await;
    let key = server.admin_key();
    let token = crate::support::token_for(server, &key, &server.admin.id.to_string()).await;
    let proof = server.proof(&key, "GET", "/v1/approvals/stream", Some(&token), None);
    let mut stream = http()
        .get(server.url("/v1/approvals/stream"))
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", proof)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(stream.headers()["content-type"], "text/event-stream");
    // What already waits, then what arrives.
    let seen = read_stream_until(&mut stream, &first.id).await;
    assert!(seen.contains("event: approval"), "{seen}");
    ask_approval(server, d, &transfer_details(2200)).await;
    let list = server
        .admin_client()
        .list_approvals(&ApprovalQuery::default())
        .await
        .unwrap();
    let newest = list
        .items
        .iter()
        .map(|a| a.id.clone())
        .find(|id| *id != first.id)
        .unwrap();
    read_stream_until(&mut stream, &newest).await;
    // Someone else's stream says nothing of these.
    let (_, bob_key, _) = server
        .enrolled_human("Bob", "bob@example.com", surety_core::human::Role::Member)
        .await;
    let bob = server
        .store()
        .list_humans(
            &Default::default(),
            &surety_core::page::PageRequest::first(10),
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .find(|h| h.email == "bob@example.com")
        .unwrap();
    let bob_token = crate::support::token_for(server, &bob_key, &bob.id.to_string()).await;
    let proof = server.proof(
        &bob_key,
        "GET",
        "/v1/approvals/stream",
        Some(&bob_token),
        None,
    );
    let mut theirs = http()
        .get(server.url("/v1/approvals/stream"))
        .header("Authorization", format!("DPoP {bob_token}"))
        .header("DPoP", proof)
        .send()
        .await
        .unwrap();
    ask_approval(server, d, &transfer_details(2300)).await;
    let quiet = tokio::time::timeout(std::time::Duration::from_millis(500), theirs.chunk()).await;
    let leaked = quiet
        .ok()
        .and_then(|c| c.ok().flatten())
        .map(|c| String::from_utf8_lossy(&c).into_owned())
        .filter(|c| c.contains("apr_"));
    assert_eq!(leaked, None);
    s.server.stop().await;
}

/// Accepts one webhook call on `receiver` within `within`, answers it 204, and returns its
/// body (checked to be `application/jwt`); `None` if no call came.
async fn webhook_call(
    receiver: &tokio::net::TcpListener,
    within: std::time::Duration,
) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut socket, _) = tokio::time::timeout(within, receiver.accept())
        .await
        .ok()?
        .unwrap();
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let body = loop {
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed early");
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap();
            assert!(
                head.to_ascii_lowercase()
                    .contains("content-type: application/jwt"),
                "{head}"
            );
            if body.len() >= length {
                break body.to_owned();
            }
        }
    };
    socket
        .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
        .await
        .unwrap();
    Some(body)
}

/// The claims of a webhook notice, once its signature verifies with the server's published
/// key and its `typ` is `typ`.
async fn verified_notice(server: &TestServer, body: &str, typ: &str) -> Value {
    let jws = surety_jose::jws::decode(body, 16 * 1024).unwrap();
    assert_eq!(jws.header.typ.as_deref(), Some(typ));
    let jwks = crate::support::get_json(server, "/jwks").await;
    let kid = jws.header.kid.clone().unwrap();
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap();
    jws.verify(&surety_jose::PublicJwk::from_json(jwk).unwrap())
        .unwrap();
    jws.claims().unwrap()
}

#[tokio::test]
async fn the_webhook_gets_each_new_request_as_a_jwt_signed_by_the_org_key() {
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", receiver.local_addr().unwrap());
    let server = TestServer::start_with(surety_testkit::Options {
        config: vec![("dev", "true".into()), ("approval_webhook_url", url)],
        ..Default::default()
    })
    .await;
    let d = setup(&server).await;
    let details = transfer_details(2400);
    let (body, _) = tokio::join!(
        webhook_call(&receiver, std::time::Duration::from_secs(5)),
        ask_approval(&server, &d, &details)
    );
    let body = body.expect("the webhook was called");
    // Verifiable with the published keys, typed, and naming the request.
    let claims = verified_notice(&server, &body, "surety-approval-notice+jwt").await;
    let shown = pending(&server).await;
    assert_eq!(claims["approval_id"], shown.id.as_str());
    assert_eq!(claims["digest"], shown.digest.as_str());
    assert_eq!(claims["approvers"], json!([server.admin.id.to_string()]));
    server.stop().await;
}

#[tokio::test]
async fn the_owner_hears_through_the_webhook_when_surety_suspends_their_agent() {
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", receiver.local_addr().unwrap());
    let server = TestServer::start_with(surety_testkit::Options {
        config: vec![
            ("dev", "true".into()),
            ("approval_webhook_url", url.clone()),
            ("suspend_after_denials", "2".into()),
        ],
        ..Default::default()
    })
    .await;
    let d = setup(&server).await;
    let admin = server.admin_client();
    // A person's suspension: they know; no notice.
    admin
        .agent_action(d.agent.id, "suspend", Some("checking".into()))
        .await
        .unwrap();
    let quiet = webhook_call(&receiver, std::time::Duration::from_millis(500)).await;
    assert_eq!(quiet, None, "a suspension by a person sends no notice");
    admin
        .agent_action(d.agent.id, "reinstate", None)
        .await
        .unwrap();
    // Surety's own: two attempts outside the scope.
    let rs = decisions_token(&server, &d).await;
    let agent = agent_token(&server, &d).await;
    for _ in 0..2 {
        let r = native(&server, &d, &rs, &agent, "iam.grant_role", json!({})).await;
        assert_eq!(r["decision"], "deny");
    }
    let body = webhook_call(&receiver, std::time::Duration::from_secs(5))
        .await
        .expect("the owner was told");
    let claims = verified_notice(&server, &body, "surety-agent-notice+jwt").await;
    assert_eq!(claims["event"], "agent.suspended");
    assert_eq!(claims["agent"], d.agent.id.to_string());
    assert_eq!(claims["agent_name"], "bot");
    assert_eq!(claims["owner"], server.admin.id.to_string());
    assert_eq!(claims["trigger"], "out_of_scope");
    assert_eq!(claims["aud"], url.as_str());
    assert_eq!(claims["iss"], server.base.as_str());
    assert!(
        claims["reason"]
            .as_str()
            .unwrap()
            .contains("outside its scope")
    );
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    assert!(claims["jti"].as_str().unwrap().len() >= 16);
    // Once: further attempts of the suspended agent tell nobody again.
    let r = native(&server, &d, &rs, &agent, "iam.grant_role", json!({})).await;
    assert_eq!(r["decision"], "deny");
    let again = webhook_call(&receiver, std::time::Duration::from_millis(500)).await;
    assert_eq!(again, None, "one suspension, one notice");
    server.stop().await;
}
