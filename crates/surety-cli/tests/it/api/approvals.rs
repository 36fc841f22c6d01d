//! Step-up approvals against a real server: an agent's step-up decision, its CIBA request,
//! the principal's device-key answer, the one-time approval token, and its single use by the
//! decision it approves — and every way each of those is refused.

use std::sync::Arc;

use serde_json::{Value, json};
use surety_api::approvals::{ApprovalQuery, ApprovalView};
use surety_api::oauth::{CLIENT_ASSERTION_TYPE_JWT_BEARER, GRANT_TYPE_CIBA};
use surety_core::clock::ManualClock;
use surety_jose::PrivateJwk;
use surety_testkit::{TestServer, http};
use time::Duration;

use super::decisions::{agent_token, ask, decisions_token, setup};
use crate::support::{CRM, Delegation, TokenRequest, claims_of, expect_error};

const TRANSFER: &str = "payments.transfer";

pub(super) fn transfer_details(amount: u64) -> Value {
    json!([{
        "type": "surety_action",
        "locations": [CRM],
        "action": TRANSFER,
        "resource": {"type": "Resource", "id": "acct-1"},
        "arguments": {"amount": amount, "currency": "EUR"},
    }])
}

/// `POST /oauth2/bc-authorize` as agent `client` with `key`, with `params`.
pub(crate) async fn bc_authorize(
    server: &TestServer,
    key: &PrivateJwk,
    client: &str,
    params: &[(&str, String)],
) -> reqwest::Response {
    let mut form = vec![
        (
            "client_assertion_type",
            CLIENT_ASSERTION_TYPE_JWT_BEARER.to_owned(),
        ),
        ("client_assertion", server.client_assertion(key, client)),
    ];
    form.extend(params.iter().map(|(k, v)| (*k, v.clone())));
    http()
        .post(server.url("/oauth2/bc-authorize"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// A correct request by `d`'s agent to the first admin (its principal) for `details`.
pub(super) async fn ask_approval(server: &TestServer, d: &Delegation, details: &Value) -> Value {
    let r = bc_authorize(
        server,
        &d.key,
        &d.agent.id.to_string(),
        &[
            ("login_hint", server.admin.email.clone()),
            ("binding_message", "transfer 2000 EUR".into()),
            ("authorization_details", details.to_string()),
            ("scope", "openid".into()),
        ],
    )
    .await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

/// The CIBA grant at the token endpoint, as agent `client` with `key`.
pub(crate) fn poll(
    server: &TestServer,
    key: &PrivateJwk,
    client: &str,
    auth_req_id: &str,
) -> TokenRequest<'static> {
    let proof = server.proof(key, "POST", "/oauth2/token", None, Some(&server.nonce()));
    TokenRequest {
        proofs: vec![proof],
        form: vec![
            ("grant_type", GRANT_TYPE_CIBA.into()),
            ("auth_req_id", auth_req_id.into()),
            (
                "client_assertion_type",
                CLIENT_ASSERTION_TYPE_JWT_BEARER.into(),
            ),
            ("client_assertion", server.client_assertion(key, client)),
        ],
    }
}

fn poll_by(server: &TestServer, d: &Delegation, auth_req_id: &str) -> TokenRequest<'static> {
    poll(server, &d.key, &d.agent.id.to_string(), auth_req_id)
}

/// The one pending request in the admin's inbox.
pub(super) async fn pending(server: &TestServer) -> ApprovalView {
    let list = server
        .admin_client()
        .list_approvals(&ApprovalQuery::default())
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1, "{list:?}");
    list.items.into_iter().next().unwrap()
}

pub(super) struct Setup {
    pub(super) server: TestServer,
    pub(super) clock: Arc<ManualClock>,
    pub(super) d: Delegation,
    pub(super) rs: String,
    pub(super) agent: String,
}

pub(super) async fn started() -> Setup {
    let (server, clock) = TestServer::with_manual_clock().await;
    let d = setup(&server).await;
    let rs = decisions_token(&server, &d).await;
    let agent = agent_token(&server, &d).await;
    Setup {
        server,
        clock,
        d,
        rs,
        agent,
    }
}

pub(super) async fn decide(s: &Setup, amount: u64, extra: Value) -> Value {
    let mut body = json!({
        "token": s.agent,
        "action": TRANSFER,
        "resource": {"type": "Resource", "id": "acct-1"},
        "arguments": {"amount": amount, "currency": "EUR"},
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let r = ask(&s.server, &s.d, &s.rs, "/v1/decisions", body).await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn ciba_step_up_device_key_approval_one_time_token_for_exactly_that_transfer() {
    let s = started().await;
    let (server, d) = (&s.server, &s.d);
    // 1. The transfer needs approval: the decision says what to approve.
    let first = decide(&s, 2000, json!({})).await;
    assert_eq!(first["decision"], "step_up", "{first}");
    let details = first["step_up"]["authorization_details"].clone();
    assert_eq!(details[0]["grant_id"], d.grant.id.to_string().as_str());
    // 2. The agent asks its human (CIBA, poll mode).
    let opened = ask_approval(server, d, &details).await;
    let auth_req_id = opened["auth_req_id"].as_str().unwrap().to_owned();
    assert!(auth_req_id.len() >= 43, "high entropy: {opened}");
    assert_eq!(opened["expires_in"], 300);
    assert_eq!(opened["interval"], 5);
    // Polling before the interval is up: slow_down, and the interval grows by 5 s each time
    // (CIBA §7.3): 5 → 10 → 15.
    expect_error(
        poll_by(server, d, &auth_req_id).send(server).await,
        400,
        "slow_down",
    )
    .await;
    s.clock.advance(Duration::seconds(6));
    let early = poll_by(server, d, &auth_req_id).send(server).await;
    let body = expect_error(early, 400, "slow_down").await;
    assert!(
        body["error_description"].as_str().unwrap().contains("15"),
        "{body}"
    );
    s.clock.advance(Duration::seconds(16));
    let waiting = poll_by(server, d, &auth_req_id).send(server).await;
    expect_error(waiting, 400, "authorization_pending").await;
    // 3. The principal sees exactly the action, and approves with their device key.
    let shown = pending(server).await;
    assert_eq!(shown.action, TRANSFER);
    assert_eq!(shown.arguments, json!({"amount": 2000, "currency": "EUR"}));
    assert_eq!(shown.binding_message, "transfer 2000 EUR");
    assert_eq!(shown.chain, vec![d.agent.id.to_string()]);
    assert_eq!(shown.approvers, vec![server.admin.id.to_string()]);
    let answered = server
        .admin_client()
        .answer_approval(&shown, true, Some("expected invoice".into()))
        .await
        .unwrap();
    assert_eq!(answered.status, "approved");
    assert_eq!(answered.votes[0].method, "device_key");
    // 4. The next poll gets the one-time approval token.
    s.clock.advance(Duration::seconds(16));
    let response = poll_by(server, d, &auth_req_id).send(server).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    assert!(body.get("scope").is_none(), "no scope: {body}");
    assert_eq!(
        body["authorization_details"][0]["arguments"]["amount"],
        2000
    );
    let approval_token = body["access_token"].as_str().unwrap().to_owned();
    let claims = claims_of(&approval_token);
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 300);
    assert_eq!(
        claims["authorization_details"],
        body["authorization_details"]
    );
    assert_eq!(claims["act"]["sub"], d.agent.id.to_string().as_str());
    assert_eq!(claims["sub"], server.admin.id.to_string().as_str());
    assert_eq!(claims["cnf"]["jkt"], d.key.thumbprint().as_str());
    // CIBA §7.3: redeemed once.
    let again = poll_by(server, d, &auth_req_id).send(server).await;
    expect_error(again, 400, "invalid_grant").await;
    // Introspection shows what it approves (RFC 9396 §9.2) while it is unused.
    let seen = crate::support::introspect(server, d, &approval_token).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(
        seen["authorization_details"], body["authorization_details"],
        "{seen}"
    );
    assert_eq!(seen["approval_id"], shown.id.as_str(), "{seen}");
    // 5. The token approves another amount: deny, and it is not used up.
    let evidence = json!({"approval_token": approval_token});
    let other = decide(&s, 2001, evidence.clone()).await;
    assert_eq!(other["decision"], "deny", "{other}");
    assert!(
        other["reasons"][0]
            .as_str()
            .unwrap()
            .contains("another action"),
        "{other}"
    );
    // Exactly that transfer: allow; the approval is consumed.
    let allowed = decide(&s, 2000, evidence.clone()).await;
    assert_eq!(allowed["decision"], "allow", "{allowed}");
    // A second use: deny.
    let replay = decide(&s, 2000, evidence.clone()).await;
    assert_eq!(replay["decision"], "deny", "{replay}");
    assert!(
        replay["reasons"][0]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{replay}"
    );
    let used = crate::support::introspect(server, d, &approval_token).await;
    assert_eq!(used, json!({"active": false}));
    // The approval token is not an access token.
    let misuse = ask(
        server,
        d,
        &s.rs,
        "/v1/decisions",
        json!({"token": approval_token, "action": TRANSFER, "resource": {"type": "Resource", "id": "acct-1"}, "arguments": {"amount": 2000, "currency": "EUR"}}),
    )
    .await;
    let misuse: Value = misuse.json().await.unwrap();
    assert_eq!(misuse["decision"], "deny", "{misuse}");
    // Everything is in the audit log.
    let events = server
        .admin_client()
        .list_audit(&surety_api::admin::AuditQuery {
            target: Some(shown.id.clone()),
            limit: Some(50),
            ..Default::default()
        })
        .await
        .unwrap();
    let kinds: Vec<&str> = events.items.iter().map(|e| e.kind.as_str()).collect();
    for kind in [
        "approval.requested",
        "approval.voted",
        "approval.approved",
        "approval.redeemed",
        "approval.consumed",
    ] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    s.server.stop().await;
}

#[tokio::test]
async fn a_denied_request_ends_in_access_denied_and_an_expired_one_in_expired_token() {
    let s = started().await;
    let (server, d) = (&s.server, &s.d);
    let opened = ask_approval(server, d, &transfer_details(3000)).await;
    let id = opened["auth_req_id"].as_str().unwrap();
    let shown = pending(server).await;
    let denied = server
        .admin_client()
        .answer_approval(&shown, false, Some("not expected".into()))
        .await
        .unwrap();
    assert_eq!(denied.status, "denied");
    s.clock.advance(Duration::seconds(6));
    expect_error(
        poll_by(server, d, id).send(server).await,
        400,
        "access_denied",
    )
    .await;

    let short = bc_authorize(
        server,
        &d.key,
        &d.agent.id.to_string(),
        &[
            ("login_hint", server.admin.id.to_string()),
            ("authorization_details", transfer_details(4000).to_string()),
            ("requested_expiry", "10".into()),
        ],
    )
    .await;
    let short: Value = short.json().await.unwrap();
    assert_eq!(short["expires_in"], 10, "{short}");
    s.clock.advance(Duration::seconds(11));
    let id = short["auth_req_id"].as_str().unwrap();
    expect_error(
        poll_by(server, d, id).send(server).await,
        400,
        "expired_token",
    )
    .await;
    // An expired request cannot be answered either.
    let list = server
        .admin_client()
        .list_approvals(&ApprovalQuery {
            status: Some("all".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let expired = list.items.iter().find(|a| a.status == "expired").unwrap();
    let late = server
        .admin_client()
        .answer_approval(expired, true, None)
        .await;
    assert!(late.unwrap_err().to_string().contains("409"));
    s.server.stop().await;
}

#[tokio::test]
async fn only_the_client_that_asked_redeems_and_only_covered_actions_can_be_asked() {
    let s = started().await;
    let (server, d) = (&s.server, &s.d);
    let opened = ask_approval(server, d, &transfer_details(2500)).await;
    let id = opened["auth_req_id"].as_str().unwrap();
    // Another agent polling this request: indistinguishable from an unknown id.
    let (other, other_key) = server.agent("other").await;
    s.clock.advance(Duration::seconds(6));
    let theirs = poll(server, &other_key, &other.id.to_string(), id)
        .send(server)
        .await;
    expect_error(theirs, 400, "invalid_grant").await;
    let unknown = poll_by(server, d, "not-a-request").send(server).await;
    expect_error(unknown, 400, "invalid_grant").await;
    let missing = poll_by(server, d, id)
        .without("auth_req_id")
        .send(server)
        .await;
    expect_error(missing, 400, "invalid_request").await;
    // Resource servers neither ask nor redeem.
    let rs = d.rs.id.to_string();
    let r = bc_authorize(
        server,
        &d.rs_key,
        &rs,
        &[
            ("login_hint", server.admin.id.to_string()),
            ("authorization_details", transfer_details(1).to_string()),
        ],
    )
    .await;
    expect_error(r, 400, "unauthorized_client").await;
    let r = poll(server, &d.rs_key, &rs, id).send(server).await;
    expect_error(r, 400, "unauthorized_client").await;
    // The DPoP proof must be by the agent's own key.
    let stranger = PrivateJwk::generate(surety_jose::KeyAlg::EdDSA).unwrap();
    let wrong_key = poll_by(server, d, id).proofs(vec![server.proof(
        &stranger,
        "POST",
        "/oauth2/token",
        None,
        Some(&server.nonce()),
    )]);
    expect_error(wrong_key.send(server).await, 400, "invalid_dpop_proof").await;

    let agent = d.agent.id.to_string();
    let with = |extra: Vec<(&'static str, String)>| {
        let mut p = vec![
            ("login_hint", server.admin.id.to_string()),
            ("authorization_details", transfer_details(100).to_string()),
        ];
        for (k, v) in extra {
            p.retain(|(n, _)| *n != k);
            p.push((k, v));
        }
        p
    };
    let cases: Vec<(Vec<(&'static str, String)>, &str)> = vec![
        (with(vec![("login_hint", "nobody@example.com".into())]), "unknown_user_id"),
        (with(vec![("login_hint", "hum_00000000000000000000000000000000".into())]), "unknown_user_id"),
        (with(vec![("login_hint_token", "x".into())]), "invalid_request"),
        (with(vec![("binding_message", "x".repeat(101))]), "invalid_binding_message"),
        (with(vec![("binding_message", "a\nb".into())]), "invalid_binding_message"),
        (with(vec![("authorization_details", "not json".into())]), "invalid_authorization_details"),
        (with(vec![("authorization_details", json!([{"type": "payment_initiation"}]).to_string())]), "invalid_authorization_details"),
        (with(vec![("requested_expiry", "0".into())]), "invalid_request"),
        (with(vec![("requested_expiry", "999999".into())]), "invalid_request"),
        // Not delegated: an action outside the grant, or another resource server.
        (with(vec![("authorization_details", json!([{"type": "surety_action", "locations": [CRM], "action": "iam.grant_role", "resource": {"type": "Resource", "id": "r"}}]).to_string())]), "access_denied"),
        (with(vec![("authorization_details", json!([{"type": "surety_action", "locations": ["https://elsewhere.example"], "action": TRANSFER, "resource": {"type": "Resource", "id": "r"}}]).to_string())]), "access_denied"),
        // Ping mode needs a registered endpoint.
        (with(vec![("client_notification_token", "t".repeat(32))]), "invalid_request"),
    ];
    for (params, code) in cases {
        let r = bc_authorize(server, &d.key, &agent, &params).await;
        // CIBA §13: `access_denied` is a 403 at this endpoint, the rest 400.
        let status = if code == "access_denied" { 403 } else { 400 };
        expect_error(r, status, code).await;
    }
    // Another human than the grant's principal: to this agent, they do not exist.
    let (bob, _, _) = server
        .enrolled_human("Bob", "bob@example.com", surety_core::human::Role::Member)
        .await;
    let r = bc_authorize(
        server,
        &d.key,
        &agent,
        &with(vec![("login_hint", bob.id.to_string())]),
    )
    .await;
    expect_error(r, 400, "unknown_user_id").await;
    // No client authentication.
    let r = http()
        .post(server.url("/oauth2/bc-authorize"))
        .form(&with(vec![]))
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "invalid_client").await;
    s.server.stop().await;
}

#[tokio::test]
async fn answers_must_come_from_an_approver_and_sign_the_request_shown() {
    let s = started().await;
    let (server, d) = (&s.server, &s.d);
    ask_approval(server, d, &transfer_details(2000)).await;
    let shown = pending(server).await;
    // Bob is not an approver: the request does not even exist for him.
    let (_, _, bob_client) = server
        .enrolled_human("Bob", "bob@example.com", surety_core::human::Role::Member)
        .await;
    let err = bob_client
        .answer_approval(&shown, true, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    // The client refuses to sign a statement that says something else than what it shows.
    let mut forged = shown.clone();
    forged.statement["authorization_details"][0]["arguments"]["amount"] = json!(20);
    let err = server
        .admin_client()
        .answer_approval(&forged, true, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    // The server refuses a signature over another statement than the request's (a
    // different amount, consistently shown and signed).
    forged.authorization_details[0]["arguments"]["amount"] = json!(20);
    forged.arguments["amount"] = json!(20);
    let err = server
        .admin_client()
        .answer_approval(&forged, true, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("digest"), "{err}");
    // An answer signed by a key that is not the approver's is refused.
    let stranger = surety_sdk::AdminClient::new(
        &server.base,
        server.admin.id,
        PrivateJwk::generate(surety_jose::KeyAlg::EdDSA).unwrap(),
    )
    .unwrap();
    let jws = stranger.sign_answer(&shown, true, None).unwrap();
    let key = server.admin_key();
    let token = crate::support::token_for(server, &key, &server.admin.id.to_string()).await;
    let path = format!("/v1/approvals/{}/answer", shown.id);
    let send = |jws: String| {
        crate::support::call(
            server,
            &key,
            &token,
            "POST",
            &path,
            Some(json!({"answer": jws})),
        )
    };
    expect_error(send(jws).await, 400, "invalid_request").await;
    // Every part of the answer is checked; each of these is refused with what is wrong.
    let now = shown.created_at.unix_timestamp();
    let good = json!({
        "iss": server.admin.id.to_string(),
        "approval_id": shown.id,
        "digest": shown.digest,
        "decision": "approve",
        "iat": now,
    });
    let with = |name: &str, value: Value| {
        let mut c = good.clone();
        c[name] = value;
        c
    };
    let other_approval = "apr_01a2247056be798890609655e0d08d2c";
    let cases: Vec<(Value, Option<&str>, Option<String>, &str)> = vec![
        // (claims, typ, kid, what the description names)
        (with("iat", json!(i64::MIN)), None, None, "iat"),
        (with("iat", json!(now - 3600)), None, None, "iat"),
        (with("iat", json!(now + 3600)), None, None, "iat"),
        (
            with("iss", json!(d.agent.id.to_string())),
            None,
            None,
            "iss",
        ),
        (
            with("approval_id", json!(other_approval)),
            None,
            None,
            "another request",
        ),
        (with("decision", json!("maybe")), None, None, "decision"),
        (with("extra", json!(1)), None, None, "payload"),
        (good.clone(), Some("JWT"), None, "typ"),
        (good.clone(), None, Some(String::new()), "kid"),
    ];
    for (claims, typ, kid, names) in cases {
        let mut header = serde_json::Map::new();
        header.insert("typ".into(), json!(typ.unwrap_or("surety-approval+jwt")));
        match kid {
            Some(k) if k.is_empty() => {}
            Some(k) => {
                header.insert("kid".into(), json!(k));
            }
            None => {
                header.insert("kid".into(), json!(key.thumbprint()));
            }
        }
        let jws = surety_jose::jws::sign(header, &claims, &key).unwrap();
        let body = expect_error(send(jws).await, 400, "invalid_request").await;
        assert!(
            body["error_description"].as_str().unwrap().contains(names),
            "{names}: {body}"
        );
    }
    // The real answer counts once; replaying it is a conflict.
    let jws = server
        .admin_client()
        .sign_answer(&shown, true, None)
        .unwrap();
    assert_eq!(send(jws.clone()).await.status(), 200);
    expect_error(send(jws).await, 409, "conflict").await;
    s.server.stop().await;
}

#[tokio::test]
async fn two_of_three_approvers_and_revoking_the_grant_cancels_what_is_open() {
    let (server, clock) = TestServer::with_manual_clock().await;
    let (agent, key) = server.agent("treasury").await;
    let member = surety_core::human::Role::Member;
    let (x, _, x_client) = server.enrolled_human("X", "x@example.com", member).await;
    let (y, _, _) = server.enrolled_human("Y", "y@example.com", member).await;
    let grant = server
        .admin_client()
        .create_grant(&surety_api::credentials::CreateGrant {
            agent: agent.id,
            principal: None,
            scopes: vec![TRANSFER.into()],
            resources: vec![CRM.into()],
            constraints: Some(json!({
                "approvers": format!("{},{},{}", server.admin.id, x.id, y.id),
                "approvals_required": 2,
            })),
            max_delegation_depth: None,
            expires_at: None,
            expires_in: Some(3600),
        })
        .await
        .unwrap();
    let d = Delegation {
        agent,
        key,
        grant,
        rs: server.resource_server(CRM).await.0,
        rs_key: PrivateJwk::generate(surety_jose::KeyAlg::EdDSA).unwrap(),
    };
    let opened = ask_approval(&server, &d, &transfer_details(9000)).await;
    let id = opened["auth_req_id"].as_str().unwrap().to_owned();
    let shown = pending(&server).await;
    assert_eq!(shown.required, 2);
    let one = server
        .admin_client()
        .answer_approval(&shown, true, None)
        .await
        .unwrap();
    assert_eq!(one.status, "pending", "one of two");
    clock.advance(Duration::seconds(6));
    expect_error(
        poll_by(&server, &d, &id).send(&server).await,
        400,
        "authorization_pending",
    )
    .await;
    // An approver who left cannot answer.
    server
        .admin_client()
        .human_action(x.id, "deactivate", Some("left".into()))
        .await
        .unwrap();
    let refused = x_client.answer_approval(&shown, true, None).await;
    assert!(refused.is_err(), "a deactivated approver answered");
    server
        .admin_client()
        .human_action(x.id, "reactivate", None)
        .await
        .unwrap();
    let two = x_client.answer_approval(&shown, true, None).await.unwrap();
    assert_eq!(two.status, "approved", "two of two");

    // A second request under the same grant, then the grant is revoked: it is cancelled.
    let second = ask_approval(&server, &d, &transfer_details(9001)).await;
    server
        .admin_client()
        .grant_action(d.grant.id, "revoke", Some("incident".into()))
        .await
        .unwrap();
    clock.advance(Duration::seconds(6));
    let id2 = second["auth_req_id"].as_str().unwrap();
    expect_error(
        poll_by(&server, &d, id2).send(&server).await,
        400,
        "access_denied",
    )
    .await;
    // And the approved one can no longer be redeemed either.
    expect_error(
        poll_by(&server, &d, &id).send(&server).await,
        400,
        "access_denied",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn a_gateway_opens_the_request_on_the_agents_behalf_and_uses_the_approval_once() {
    let s = started().await;
    let (server, d) = (&s.server, &s.d);
    let held = decide(&s, 2500, json!({"request_approval": true})).await;
    assert_eq!(held["decision"], "step_up", "{held}");
    let auth_req_id = held["step_up"]["auth_req_id"].as_str().unwrap().to_owned();
    assert_eq!(held["step_up"]["approval_status"], "pending");
    // Another resource server cannot present it, even with a token of the agent's for itself.
    const OTHER: &str = "https://other.example";
    let (other_rs, other_key) = server.resource_server(OTHER).await;
    let grant = server.grant(d.agent.id, &[TRANSFER], &[OTHER], 0).await;
    let other = Delegation {
        rs: other_rs,
        rs_key: other_key,
        agent: d.agent.clone(),
        key: PrivateJwk::from_json(&d.key.to_json().unwrap()).unwrap(),
        grant,
    };
    let other_rs_token = decisions_token(server, &other).await;
    let agent_for_other = crate::support::ok_token(
        server,
        TokenRequest::for_grant(server, &other).set("resource", OTHER),
    )
    .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = ask(
        server,
        &other,
        &other_rs_token,
        "/v1/decisions",
        json!({"token": agent_for_other, "action": TRANSFER, "resource": {"type": "Resource", "id": "acct-1"},
               "arguments": {"amount": 2500, "currency": "EUR"}, "auth_req_id": auth_req_id}),
    )
    .await;
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["decision"], "deny", "{answer}");
    assert!(
        answer["reasons"][0]
            .as_str()
            .unwrap()
            .contains("auth_req_id"),
        "{answer}"
    );
    // It is the gateway's to use: the agent cannot redeem it.
    s.clock.advance(Duration::seconds(6));
    let r = poll_by(server, d, &auth_req_id).send(server).await;
    expect_error(r, 400, "invalid_grant").await;
    let still = decide(&s, 2500, json!({"auth_req_id": auth_req_id})).await;
    assert_eq!(still["decision"], "step_up", "{still}");
    assert_eq!(still["step_up"]["approval_status"], "pending");
    let shown = pending(server).await;
    assert_eq!(shown.reasons.len(), 1, "why policy asked: {shown:?}");
    server
        .admin_client()
        .answer_approval(&shown, true, None)
        .await
        .unwrap();
    // Another amount with that request: deny.
    let other = decide(&s, 99, json!({"auth_req_id": auth_req_id})).await;
    assert_eq!(other["decision"], "deny", "{other}");
    let allowed = decide(&s, 2500, json!({"auth_req_id": auth_req_id})).await;
    assert_eq!(allowed["decision"], "allow", "{allowed}");
    let replay = decide(&s, 2500, json!({"auth_req_id": auth_req_id})).await;
    assert_eq!(replay["decision"], "deny", "{replay}");
    // The agent cannot redeem it afterwards either.
    s.clock.advance(Duration::seconds(6));
    let late = poll_by(server, d, &auth_req_id).send(server).await;
    expect_error(late, 400, "invalid_grant").await;
    s.server.stop().await;
}

#[tokio::test]
async fn an_agent_cannot_flood_its_humans_and_quorums_name_real_humans() {
    let s = started().await;
    let (server, d) = (&s.server, &s.d);
    for i in 0..20 {
        ask_approval(server, d, &transfer_details(1000 + i)).await;
    }
    let r = bc_authorize(
        server,
        &d.key,
        &d.agent.id.to_string(),
        &[
            ("login_hint", server.admin.id.to_string()),
            ("authorization_details", transfer_details(9999).to_string()),
        ],
    )
    .await;
    let body = expect_error(r, 403, "access_denied").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("waiting"),
        "{body}"
    );
    // A grant whose quorum names someone who does not exist is refused.
    let err = server
        .admin_client()
        .create_grant(&surety_api::credentials::CreateGrant {
            agent: d.agent.id,
            principal: None,
            scopes: vec![TRANSFER.into()],
            resources: vec![CRM.into()],
            constraints: Some(json!({
                "approvers": [server.admin.id.to_string(), "hum_00000000000000000000000000000001"],
                "approvals_required": 2,
            })),
            max_delegation_depth: None,
            expires_at: None,
            expires_in: Some(3600),
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not an active human"), "{err}");
    s.server.stop().await;
}

#[tokio::test]
async fn deactivating_the_principal_cancels_what_waits_on_their_authority() {
    let s = started().await;
    let (server, d) = (&s.server, &s.d);
    let member = surety_core::human::Role::Member;
    let (carol, _, carol_client) = server
        .enrolled_human("Carol", "carol@example.com", member)
        .await;
    let grant = carol_client
        .create_grant(&surety_api::credentials::CreateGrant {
            agent: d.agent.id,
            principal: None,
            scopes: vec![TRANSFER.into()],
            resources: vec![CRM.into()],
            constraints: None,
            max_delegation_depth: None,
            expires_at: None,
            expires_in: Some(3600),
        })
        .await
        .unwrap();
    let mut details = transfer_details(4000);
    details[0]["grant_id"] = json!(grant.id.to_string());
    let r = bc_authorize(
        server,
        &d.key,
        &d.agent.id.to_string(),
        &[
            ("login_hint", "carol@example.com".into()),
            ("authorization_details", details.to_string()),
        ],
    )
    .await;
    let opened: Value = r.json().await.unwrap();
    let id = opened["auth_req_id"].as_str().expect("opened").to_owned();
    server
        .admin_client()
        .human_action(carol.id, "deactivate", Some("left".into()))
        .await
        .unwrap();
    s.clock.advance(Duration::seconds(6));
    let r = poll_by(server, d, &id).send(server).await;
    let body = expect_error(r, 400, "access_denied").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("cancelled"),
        "{body}"
    );
    s.server.stop().await;
}
