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

/// A UI session for `human`, as a passkey sign-in would leave (the browser test signs in
/// for real): the cookie to send.
async fn session_cookie(server: &TestServer, human: surety_core::id::HumanId) -> String {
    let token = surety_jose::random_b64(32).unwrap();
    let now = server.now();
    server
        .store()
        .create_ui_session(
            &surety_jose::sha256_b64(token.as_bytes()),
            human,
            now,
            now + time::Duration::hours(1),
        )
        .await
        .unwrap();
    format!("surety_session={token}")
}

async fn get_page(server: &TestServer, path: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut r = http().get(server.url(path));
    if let Some(c) = cookie {
        r = r.header("Cookie", c);
    }
    r.send().await.unwrap()
}

#[tokio::test]
async fn inventory_pages_show_each_human_their_own_and_refuse_what_they_may_not_do() {
    let server = localhost().await;
    let ours = server.base.clone();
    let (admins_agent, _) = server.agent("admins-bot").await;
    let (member, _, member_client) = server
        .enrolled_human("Mo", "mo@example.com", Role::Member)
        .await;
    let key = surety_jose::PrivateJwk::generate(surety_jose::KeyAlg::EdDSA).unwrap();
    let members_agent = member_client
        .register_agent(&surety_api::admin::RegisterAgent {
            name: "mos-bot".into(),
            owner: None,
            public_key: key.public().to_json(),
            purpose: None,
            environment: None,
            labels: Default::default(),
        })
        .await
        .unwrap();
    let admins = format!("/ui/agents/{}", admins_agent.id);
    let members = format!("/ui/agents/{}", members_agent.id);

    // Without a session: to the sign-in page, and no CSV.
    for path in ["/ui/inventory", "/ui/audit", admins.as_str()] {
        let r = get_page(&server, path, None).await;
        assert_eq!(
            (
                r.status().as_u16(),
                r.headers()["location"].to_str().unwrap()
            ),
            (303, "/ui/login"),
            "{path}"
        );
    }
    let r = get_page(&server, "/ui/inventory.csv", None).await;
    expect_error(r, 401, "invalid_token").await;

    // A member sees their own agent, and another's is as absent as a missing one.
    let mo = session_cookie(&server, member.id).await;
    let page = get_page(&server, "/ui/inventory", Some(&mo))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("mos-bot") && !page.contains("admins-bot"),
        "{page}"
    );
    let csv = get_page(&server, "/ui/inventory.csv", Some(&mo))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    let r = get_page(&server, &admins, Some(&mo)).await;
    assert_eq!(r.status(), 404);
    let r = get_page(&server, &members, Some(&mo)).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("id=\"suspend\"") && html.contains("id=\"revoke\""),
        "owners act on their agents"
    );
    let r = get_page(&server, "/ui/inventory?finding=nope", Some(&mo)).await;
    expect_error(r, 400, "invalid_request").await;
    let r = get_page(&server, "/ui/audit?since=yesterday", Some(&mo)).await;
    expect_error(r, 400, "invalid_request").await;

    let act = |path: String, origin: Option<String>, cookie: Option<String>, body: Value| {
        let server = &server;
        async move {
            let mut r = http().post(server.url(&path)).json(&body);
            if let Some(o) = origin {
                r = r.header("Origin", o);
            }
            if let Some(c) = cookie {
                r = r.header("Cookie", c);
            }
            r.send().await.unwrap()
        }
    };
    let suspend_admins = format!("/ui/api/agents/{}/suspend", admins_agent.id);
    let suspend_members = format!("/ui/api/agents/{}/suspend", members_agent.id);
    let why = json!({"reason": "review"});
    // Cross-site, no session, another's agent, no reason, an unknown action: refused.
    let r = act(
        suspend_members.clone(),
        Some("https://evil.example".into()),
        Some(mo.clone()),
        why.clone(),
    )
    .await;
    expect_error(r, 403, "forbidden").await;
    let r = act(
        suspend_members.clone(),
        Some(ours.clone()),
        None,
        why.clone(),
    )
    .await;
    expect_error(r, 401, "invalid_token").await;
    let r = act(
        suspend_admins,
        Some(ours.clone()),
        Some(mo.clone()),
        why.clone(),
    )
    .await;
    expect_error(r, 404, "not_found").await;
    let r = act(
        suspend_members.clone(),
        Some(ours.clone()),
        Some(mo.clone()),
        json!({}),
    )
    .await;
    expect_error(r, 400, "invalid_request").await;
    let retire = format!("/ui/api/agents/{}/retire", members_agent.id);
    let r = act(retire, Some(ours.clone()), Some(mo.clone()), why.clone()).await;
    expect_error(r, 404, "not_found").await;
    // Nothing changed; then the owner suspends, and it is on the record as theirs.
    let status = |id| {
        let server = &server;
        async move { server.store().get_agent(id).await.unwrap().unwrap().status }
    };
    assert_eq!(status(members_agent.id).await.as_str(), "active");
    assert_eq!(status(admins_agent.id).await.as_str(), "active");
    let r = act(suspend_members, Some(ours), Some(mo), why).await;
    assert_eq!(r.status(), 200);
    assert_eq!(status(members_agent.id).await.as_str(), "suspended");
    let events = server
        .admin_client()
        .list_audit(&surety_api::admin::AuditQuery {
            kind: Some("agent.suspended".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.items[0].actor.to_string(), member.id.to_string());
    server.stop().await;
}
