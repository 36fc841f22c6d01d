//! The approvers' web UI without a browser: what it refuses. (A real browser with a passkey
//! drives the happy paths in `e2e.rs`.)

use serde_json::{Value, json};
use surety_core::human::Role;
use surety_testkit::{Options, TestServer, http};

use crate::support::expect_error;

async fn localhost() -> TestServer {
    TestServer::start_with(Options {
        localhost: true,
        ..Options::default()
    })
    .await
}

/// POSTs JSON to a UI endpoint, from this origin unless `origin` says otherwise.
async fn post(
    server: &TestServer,
    path: &str,
    body: Value,
    origin: Option<&str>,
) -> reqwest::Response {
    let mut r = http().post(server.url(path)).json(&body);
    if let Some(o) = origin {
        r = r.header("Origin", o);
    }
    r.send().await.unwrap()
}

/// The code of an invite link.
async fn invite_code(server: &TestServer) -> String {
    let invite = server.admin_client().invite(server.admin.id).await.unwrap();
    invite.url.split_once('#').unwrap().1.to_owned()
}

#[tokio::test]
async fn pages_need_a_session_and_carry_strict_security_headers() {
    let server = localhost().await;
    for path in [
        "/ui/",
        "/ui/approvals",
        "/ui/approvals/apr_01a2243bcfcf735bbe42c6d18296e203",
    ] {
        let r = http().get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(r.headers()["location"], "/ui/login", "{path}");
    }
    // A forged session cookie is no session.
    let r = http()
        .get(server.url("/ui/approvals"))
        .header("Cookie", "surety_session=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let login = http().get(server.url("/ui/login")).send().await.unwrap();
    assert_eq!(login.status(), 200);
    let csp = login.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(login.headers()["x-frame-options"], "DENY");
    let html = login.text().await.unwrap();
    assert!(
        html.contains("id=\"sign-in\"") && !html.contains("<script>"),
        "{html}"
    );
    // No CDN: the one script is served from here.
    let js = http()
        .get(server.url("/ui/assets/ui.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    server.stop().await;
}

#[tokio::test]
async fn ui_calls_must_come_from_this_origin_and_with_live_links_and_ceremonies() {
    let server = localhost().await;
    let ours = server.base.clone();
    let code = invite_code(&server).await;
    let start = "/ui/api/passkeys/register/start";
    // Cross-site or origin-less calls are refused before anything else.
    let r = post(&server, start, json!({"code": code}), None).await;
    expect_error(r, 403, "forbidden").await;
    let r = post(
        &server,
        start,
        json!({"code": code}),
        Some("https://evil.example"),
    )
    .await;
    expect_error(r, 403, "forbidden").await;
    // A made-up link.
    let r = post(&server, start, json!({"code": "made-up"}), Some(&ours)).await;
    let body = expect_error(r, 400, "invalid_request").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("unknown, used or expired")
    );
    // The real link starts a registration: WebAuthn creation options with user verification.
    let r = post(&server, start, json!({"code": code}), Some(&ours)).await;
    assert_eq!(r.status(), 200);
    let started: Value = r.json().await.unwrap();
    let options = &started["options"]["publicKey"];
    assert_eq!(options["rp"]["id"], "localhost", "{started}");
    assert_eq!(
        options["authenticatorSelection"]["userVerification"], "required",
        "{started}"
    );
    // A newer link replaces it.
    let newer = invite_code(&server).await;
    let r = post(&server, start, json!({"code": code}), Some(&ours)).await;
    expect_error(r, 400, "invalid_request").await;
    assert_eq!(
        post(&server, start, json!({"code": newer}), Some(&ours))
            .await
            .status(),
        200
    );
    // Unknown ceremonies, and sign-in without a passkey.
    let finish = json!({"ceremony": "nope", "credential": {"id": "x", "rawId": "eA", "type": "public-key", "response": {"attestationObject": "eA", "clientDataJSON": "eA"}, "extensions": {}}});
    let r = post(
        &server,
        "/ui/api/passkeys/register/finish",
        finish,
        Some(&ours),
    )
    .await;
    expect_error(r, 400, "invalid_request").await;
    let r = post(
        &server,
        "/ui/api/login/start",
        json!({"email": server.admin.email}),
        Some(&ours),
    )
    .await;
    expect_error(r, 400, "invalid_request").await;
    // Answering needs a session.
    let path = "/ui/api/approvals/apr_01a2243bcfcf735bbe42c6d18296e203/challenge";
    let r = post(&server, path, json!({"decision": "approve"}), Some(&ours)).await;
    expect_error(r, 401, "invalid_token").await;
    server.stop().await;
}

#[tokio::test]
async fn invites_are_for_admins_or_oneself_and_passkeys_need_a_domain_name() {
    // Named by its IP address, a deployment cannot be a WebAuthn relying party, and says so.
    let server = TestServer::start().await;
    let code = invite_code(&server).await;
    let r = post(
        &server,
        "/ui/api/passkeys/register/start",
        json!({"code": code}),
        Some(&server.base),
    )
    .await;
    let body = expect_error(r, 503, "temporarily_unavailable").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("domain name"),
        "{body}"
    );
    let (bob, _, bob_client) = server
        .enrolled_human("Bob", "bob@example.com", Role::Member)
        .await;
    let err = bob_client.invite(server.admin.id).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    let own = bob_client.invite(bob.id).await.unwrap();
    assert!(own.url.contains("/ui/enroll#"), "{own:?}");
    // Passkeys: listed and revoked by their human or an admin only.
    assert!(bob_client.passkeys(bob.id).await.unwrap().is_empty());
    let err = bob_client.passkeys(server.admin.id).await.unwrap_err();
    assert!(err.to_string().contains("403"), "{err}");
    let err = bob_client
        .revoke_passkey(bob.id, "unknown")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    server.stop().await;
}
