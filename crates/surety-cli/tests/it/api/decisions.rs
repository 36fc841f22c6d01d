//! Decisions against a real server with real tokens: a resource server gets a `decisions`
//! token (client credentials, `private_key_jwt`, DPoP), then asks about agents' actions in
//! Surety's native form and in OpenID AuthZEN form.

use serde_json::{Value, json};
use surety_api::credentials::CreateGrant;
use surety_api::oauth::{CLIENT_ASSERTION_TYPE_JWT_BEARER, TOKEN_TYPE_GRANT};
use surety_jose::PrivateJwk;
use surety_testkit::{Options, TestServer, http};
use time::Duration;

use crate::support::{CRM, Delegation, TokenRequest, expect_error, ok_token, revoke};

/// An agent with a grant for three catalog actions on CRM (transfers up to 5000 EUR), and
/// CRM registered as a resource server.
pub(super) async fn setup(server: &TestServer) -> Delegation {
    let (agent, key) = server.agent("bot").await;
    let grant = server
        .admin_client()
        .create_grant(&CreateGrant {
            agent: agent.id,
            principal: None,
            scopes: vec![
                "crm.read_customer".into(),
                "payments.transfer".into(),
                "files.share_external".into(),
            ],
            resources: vec![CRM.into()],
            constraints: Some(json!({"max_amount": 5000, "currency": "EUR"})),
            max_delegation_depth: None,
            expires_at: None,
            expires_in: Some(3600),
        })
        .await
        .unwrap();
    let (rs, rs_key) = server.resource_server(CRM).await;
    Delegation {
        agent,
        key,
        grant,
        rs,
        rs_key,
    }
}

/// The resource server's `decisions` token (RFC 6749 §4.4, `private_key_jwt`, DPoP).
async fn rs_token(server: &TestServer, key: &PrivateJwk, client: &str) -> reqwest::Response {
    let proof = server.proof(key, "POST", "/oauth2/token", None, Some(&server.nonce()));
    http()
        .post(server.url("/oauth2/token"))
        .header("DPoP", proof)
        .form(&[
            ("grant_type", "client_credentials".to_owned()),
            ("scope", "decisions".to_owned()),
            (
                "client_assertion_type",
                CLIENT_ASSERTION_TYPE_JWT_BEARER.to_owned(),
            ),
            ("client_assertion", server.client_assertion(key, client)),
        ])
        .send()
        .await
        .unwrap()
}

pub(super) async fn decisions_token(server: &TestServer, d: &Delegation) -> String {
    let r = rs_token(server, &d.rs_key, &d.rs.id.to_string()).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        (body["token_type"].as_str(), body["scope"].as_str()),
        (Some("DPoP"), Some("decisions"))
    );
    body["access_token"].as_str().unwrap().to_owned()
}

pub(super) async fn agent_token(server: &TestServer, d: &Delegation) -> String {
    let body = ok_token(
        server,
        TokenRequest::exchange(
            server,
            &d.key,
            &d.agent.id.to_string(),
            &d.grant.id.to_string(),
            TOKEN_TYPE_GRANT,
        ),
    )
    .await;
    body["access_token"].as_str().unwrap().to_owned()
}

/// POSTs `body` to `path` as the resource server.
pub(super) async fn ask(
    server: &TestServer,
    d: &Delegation,
    token: &str,
    path: &str,
    body: Value,
) -> reqwest::Response {
    let proof = server.proof(&d.rs_key, "POST", path, Some(token), None);
    http()
        .post(server.url(path))
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", proof)
        .json(&body)
        .send()
        .await
        .unwrap()
}

pub(super) async fn native(
    server: &TestServer,
    d: &Delegation,
    rs: &str,
    agent: &str,
    action: &str,
    args: Value,
) -> Value {
    let body = json!({"token": agent, "action": action, "resource": {"type": "Resource", "id": "acct-1"}, "arguments": args});
    let r = ask(server, d, rs, "/v1/decisions", body).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn native_decisions_allow_deny_and_step_up_and_each_is_audited() {
    let server = TestServer::start().await;
    let d = setup(&server).await;
    let rs = decisions_token(&server, &d).await;
    let agent = agent_token(&server, &d).await;
    let read = native(&server, &d, &rs, &agent, "crm.read_customer", json!({})).await;
    assert_eq!(read["decision"], "allow");
    assert_eq!(read["policy_ids"], json!(["permit-in-scope"]));
    assert_eq!(read["policy_version"], 0);
    let small = native(
        &server,
        &d,
        &rs,
        &agent,
        "payments.transfer",
        json!({"amount": 100, "currency": "EUR"}),
    )
    .await;
    assert_eq!(small["decision"], "allow");
    let large = native(
        &server,
        &d,
        &rs,
        &agent,
        "payments.transfer",
        json!({"amount": 2000, "currency": "EUR"}),
    )
    .await;
    assert_eq!(large["decision"], "step_up", "{large}");
    let details = &large["step_up"]["authorization_details"][0];
    assert_eq!(
        (details["type"].as_str(), details["action"].as_str()),
        (Some("surety_action"), Some("payments.transfer"))
    );
    assert_eq!(details["arguments"]["amount"], 2000);
    let over = native(
        &server,
        &d,
        &rs,
        &agent,
        "payments.transfer",
        json!({"amount": 9000, "currency": "EUR"}),
    )
    .await;
    assert_eq!(
        (over["decision"].as_str(), over["policy_ids"][0].as_str()),
        (Some("deny"), Some("forbid-over-max-amount"))
    );
    let outside = native(&server, &d, &rs, &agent, "iam.grant_role", json!({})).await;
    assert_eq!(outside["decision"], "deny", "not in the token's scope");
    // Every decision is an audit event, named by the decision's id.
    let events = server
        .admin_client()
        .list_audit(&surety_api::admin::AuditQuery {
            kind: Some("decision.made".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.items.len(), 5);
    assert!(
        events
            .items
            .iter()
            .any(|e| e.id.to_string() == large["decision_id"].as_str().unwrap())
    );
    assert_eq!(events.items[0].agent, Some(d.agent.id));
}

#[tokio::test]
async fn authzen_s6_evaluation_and_batch_semantics() {
    let server = TestServer::start().await;
    let d = setup(&server).await;
    let rs = decisions_token(&server, &d).await;
    let agent = agent_token(&server, &d).await;
    let subject =
        json!({"type": "agent", "id": d.agent.id.to_string(), "properties": {"token": agent}});
    let one = |action: &str, args: Value| json!({"subject": subject, "action": {"name": action}, "resource": {"type": "Resource", "id": "acct-1"}, "context": {"arguments": args}});
    let r = ask(
        &server,
        &d,
        &rs,
        "/access/v1/evaluation",
        one("crm.read_customer", json!({})),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["decision"], true);
    assert!(body["context"]["id"].is_string());
    // A step-up is `false` with what to approve.
    let r = ask(
        &server,
        &d,
        &rs,
        "/access/v1/evaluation",
        one(
            "payments.transfer",
            json!({"amount": 2000, "currency": "EUR"}),
        ),
    )
    .await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["decision"], false);
    assert!(body["context"]["step_up"]["binding_message"].is_string());
    assert!(
        body["context"].get("reason_admin").is_none(),
        "policy internals are not shared by default"
    );
    // Batches: defaults overridden per entry; the semantics cut the answers short.
    let batch = |semantic: &str| {
        json!({
            "subject": subject,
            "resource": {"type": "Resource", "id": "acct-1"},
            "evaluations": [
                {"action": {"name": "crm.read_customer"}},
                {"action": {"name": "iam.grant_role"}},
                {"action": {"name": "crm.read_customer"}},
            ],
            "options": {"evaluations_semantic": semantic},
        })
    };
    for (semantic, expected) in [
        ("execute_all", vec![true, false, true]),
        ("deny_on_first_deny", vec![true, false]),
        ("permit_on_first_permit", vec![true]),
    ] {
        let r = ask(&server, &d, &rs, "/access/v1/evaluations", batch(semantic)).await;
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        let got: Vec<bool> = body["evaluations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["decision"].as_bool().unwrap())
            .collect();
        assert_eq!(got, expected, "{semantic}");
    }
    let r = ask(
        &server,
        &d,
        &rs,
        "/access/v1/evaluations",
        batch("majority_vote"),
    )
    .await;
    expect_error(r, 400, "invalid_request").await;
    // Discovery names the endpoints.
    let config: Value = http()
        .get(server.url("/.well-known/authzen-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        config["access_evaluation_endpoint"],
        server.url("/access/v1/evaluation")
    );
}

#[tokio::test]
async fn identity_comes_only_from_the_token() {
    let server = TestServer::start().await;
    let d = setup(&server).await;
    let rs = decisions_token(&server, &d).await;
    let agent = agent_token(&server, &d).await;
    let before = crate::support::change_count(&server).await;
    // A subject naming another agent than the token's is refused without evaluation.
    let (other, _) = server.agent("other").await;
    let forged = json!({"subject": {"type": "agent", "id": other.id.to_string(), "properties": {"token": agent}},
        "action": {"name": "crm.read_customer"}, "resource": {"type": "Resource", "id": "acct-1"}});
    let r = ask(&server, &d, &rs, "/access/v1/evaluation", forged).await;
    expect_error(r, 400, "invalid_request").await;
    let no_token = json!({"subject": {"type": "agent", "id": d.agent.id.to_string()},
        "action": {"name": "crm.read_customer"}, "resource": {"type": "Resource", "id": "acct-1"}});
    expect_error(
        ask(&server, &d, &rs, "/access/v1/evaluation", no_token).await,
        400,
        "invalid_request",
    )
    .await;
    assert_eq!(
        crate::support::change_count(&server).await,
        before + 1,
        "only the other agent's registration"
    );
}

#[tokio::test]
async fn tokens_that_are_not_active_or_not_for_this_server_are_denied() {
    let (server, clock) = TestServer::with_manual_clock().await;
    let d = setup(&server).await;
    let rs = decisions_token(&server, &d).await;
    let agent = agent_token(&server, &d).await;
    // A token for another resource server's audience.
    let (other_rs, other_key) = server.resource_server("https://pay.example").await;
    let other = Delegation {
        rs: other_rs,
        rs_key: other_key,
        ..setup_clone(&d)
    };
    let other_token = decisions_token(&server, &other).await;
    let d2 = native(
        &server,
        &other,
        &other_token,
        &agent,
        "crm.read_customer",
        json!({}),
    )
    .await;
    assert_eq!(d2["decision"], "deny");
    assert!(
        d2["reasons"][0]
            .as_str()
            .unwrap()
            .contains("not issued for this resource server"),
        "{d2}"
    );
    // A suspended agent's token.
    server
        .admin_client()
        .agent_action(d.agent.id, "suspend", Some("odd".into()))
        .await
        .unwrap();
    let suspended = native(&server, &d, &rs, &agent, "crm.read_customer", json!({})).await;
    assert_eq!(suspended["decision"], "deny");
    server
        .admin_client()
        .agent_action(d.agent.id, "reinstate", None)
        .await
        .unwrap();
    clock.advance(Duration::seconds(1));
    let fresh = agent_token(&server, &d).await;
    // An expired token (and the resource server's own, past its lifetime, is refused).
    clock.advance(Duration::seconds(299));
    let rs2 = decisions_token(&server, &d).await;
    clock.advance(Duration::seconds(2));
    let expired = native(&server, &d, &rs2, &fresh, "crm.read_customer", json!({})).await;
    assert_eq!(expired["decision"], "deny");
    let body = json!({"token": fresh, "action": "crm.read_customer", "resource": {"type": "Resource", "id": "a"}});
    let r = ask(&server, &d, &rs, "/v1/decisions", body).await;
    expect_error(r, 401, "invalid_token").await;
}

fn setup_clone(d: &Delegation) -> Delegation {
    Delegation {
        agent: d.agent.clone(),
        key: PrivateJwk::from_json(&d.key.to_json().unwrap()).unwrap(),
        grant: d.grant.clone(),
        rs: d.rs.clone(),
        rs_key: PrivateJwk::from_json(&d.rs_key.to_json().unwrap()).unwrap(),
    }
}

#[tokio::test]
async fn only_registered_resource_servers_with_their_own_key_may_ask() {
    let server = TestServer::start().await;
    let d = setup(&server).await;
    let agent = agent_token(&server, &d).await;
    // Agents do not get `decisions` tokens.
    let r = rs_token(&server, &d.key, &d.agent.id.to_string()).await;
    expect_error(r, 400, "unauthorized_client").await;
    // Another scope, or a proof by another key than the registered one.
    let proof = server.proof(
        &PrivateJwk::generate(surety_jose::KeyAlg::EdDSA).unwrap(),
        "POST",
        "/oauth2/token",
        None,
        Some(&server.nonce()),
    );
    let r = http()
        .post(server.url("/oauth2/token"))
        .header("DPoP", proof)
        .form(&[
            ("grant_type", "client_credentials".to_owned()),
            (
                "client_assertion_type",
                CLIENT_ASSERTION_TYPE_JWT_BEARER.to_owned(),
            ),
            (
                "client_assertion",
                server.client_assertion(&d.rs_key, &d.rs.id.to_string()),
            ),
        ])
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "invalid_dpop_proof").await;
    // No token; a bearer token; the agent's own token in place of the resource server's.
    let body = json!({"token": agent, "action": "crm.read_customer", "resource": {"type": "Resource", "id": "a"}});
    let r = http()
        .post(server.url("/v1/decisions"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let rs = decisions_token(&server, &d).await;
    let r = http()
        .post(server.url("/v1/decisions"))
        .header("Authorization", format!("Bearer {rs}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "invalid_token").await;
    let r = ask(&server, &d, &agent, "/v1/decisions", body.clone()).await;
    expect_error(r, 401, "invalid_token").await;
    // A proof by another key than the token's.
    let stranger = PrivateJwk::generate(surety_jose::KeyAlg::EdDSA).unwrap();
    let proof = server.proof(&stranger, "POST", "/v1/decisions", Some(&rs), None);
    let r = http()
        .post(server.url("/v1/decisions"))
        .header("Authorization", format!("DPoP {rs}"))
        .header("DPoP", proof)
        .json(&body)
        .send()
        .await
        .unwrap();
    expect_error(r, 401, "invalid_dpop_proof").await;
}

#[tokio::test]
async fn an_agent_that_keeps_reaching_outside_its_scope_suspends_itself() {
    let server = TestServer::start_with(Options {
        config: vec![
            ("suspend_after_denials", "3".into()),
            ("suspend_window", "10m".into()),
        ],
        ..Options::default()
    })
    .await;
    let d = setup(&server).await;
    let rs = decisions_token(&server, &d).await;
    let agent = agent_token(&server, &d).await;
    // Denials inside the scope (over the limit) do not count; attempts outside it do.
    for _ in 0..3 {
        let over = native(
            &server,
            &d,
            &rs,
            &agent,
            "payments.transfer",
            json!({"amount": 9000, "currency": "EUR"}),
        )
        .await;
        assert_eq!(over["decision"], "deny");
    }
    assert_eq!(
        server
            .admin_client()
            .get_agent(d.agent.id)
            .await
            .unwrap()
            .status
            .as_str(),
        "active"
    );
    for _ in 0..2 {
        native(&server, &d, &rs, &agent, "iam.grant_role", json!({})).await;
    }
    assert_eq!(
        server
            .admin_client()
            .get_agent(d.agent.id)
            .await
            .unwrap()
            .status
            .as_str(),
        "active"
    );
    native(&server, &d, &rs, &agent, "iam.grant_role", json!({})).await;
    let suspended = server.admin_client().get_agent(d.agent.id).await.unwrap();
    assert_eq!(suspended.status.as_str(), "suspended");
    assert!(
        suspended
            .status_reason
            .unwrap()
            .contains("outside its scope")
    );
    // Its tokens are dead at once; the audit log says why, naming the owner.
    let read = native(&server, &d, &rs, &agent, "crm.read_customer", json!({})).await;
    assert_eq!(read["decision"], "deny");
    let events = server
        .admin_client()
        .list_audit(&surety_api::admin::AuditQuery {
            kind: Some("agent.suspended".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.items.len(), 1);
    assert_eq!(events.items[0].details["trigger"], "out_of_scope");
    assert_eq!(
        events.items[0].human,
        Some(server.admin.id),
        "the owner is told"
    );
    // Reinstating is the owner's decision.
    server
        .admin_client()
        .agent_action(d.agent.id, "reinstate", None)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_decision_rate_spike_suspends_the_agent() {
    let server = TestServer::start_with(Options {
        config: vec![("suspend_above_rate", "4".into())],
        ..Options::default()
    })
    .await;
    let d = setup(&server).await;
    let rs = decisions_token(&server, &d).await;
    let admin = server.admin_client();
    // A revoked token is refused (and, not being evaluated, does not count).
    let agent = agent_token(&server, &d).await;
    revoke(&server, &d, &agent).await;
    let refused = native(&server, &d, &rs, &agent, "crm.read_customer", json!({})).await;
    assert_eq!(refused["decision"], "deny");
    let fresh = agent_token(&server, &d).await;
    for _ in 0..4 {
        let ok = native(&server, &d, &rs, &fresh, "crm.read_customer", json!({})).await;
        assert_eq!(ok["decision"], "allow");
    }
    assert_eq!(
        admin.get_agent(d.agent.id).await.unwrap().status.as_str(),
        "active"
    );
    native(&server, &d, &rs, &fresh, "crm.read_customer", json!({})).await;
    let a = admin.get_agent(d.agent.id).await.unwrap();
    assert_eq!(a.status.as_str(), "suspended");
    assert!(a.status_reason.unwrap().contains("within a minute"));
    let events = admin
        .list_audit(&surety_api::admin::AuditQuery {
            kind: Some("agent.suspended".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.items[0].details["trigger"], "rate");
}

#[tokio::test]
async fn presenting_a_withdrawn_token_suspends_its_holder_after_a_grace_period() {
    let (server, clock) = TestServer::with_manual_clock().await;
    let d = setup(&server).await;
    let rs = decisions_token(&server, &d).await;
    let agent = agent_token(&server, &d).await;
    revoke(&server, &d, &agent).await;
    let status = || async {
        server
            .store()
            .get_agent(d.agent.id)
            .await
            .unwrap()
            .unwrap()
            .status
    };
    // In flight: refused, but no misuse yet.
    let early = native(&server, &d, &rs, &agent, "crm.read_customer", json!({})).await;
    assert_eq!(early["decision"], "deny");
    assert_eq!(status().await.as_str(), "active");
    // (Registered now: the admin client signs with the real time.)
    let (pay, pay_key) = server.resource_server("https://pay.example").await;
    clock.advance(Duration::seconds(61));
    // Another resource server presenting it cannot get the agent suspended.
    let other = Delegation {
        rs: pay,
        rs_key: pay_key,
        ..setup_clone(&d)
    };
    let other_token = decisions_token(&server, &other).await;
    native(
        &server,
        &other,
        &other_token,
        &agent,
        "crm.read_customer",
        json!({}),
    )
    .await;
    assert_eq!(status().await.as_str(), "active");
    // The resource server it was issued for, well after the revocation: misuse.
    native(&server, &d, &rs, &agent, "crm.read_customer", json!({})).await;
    let a = server.store().get_agent(d.agent.id).await.unwrap().unwrap();
    assert_eq!(a.status.as_str(), "suspended");
    assert!(a.status_reason.unwrap().contains("withdrawn credential"));
    // Once its owner has reinstated it, the old revocation no longer counts.
    let now = server.now();
    server
        .store()
        .change_agent_status(
            &surety_store::AgentStatusChange {
                id: d.agent.id,
                from: surety_core::agent::AgentStatus::Suspended,
                to: surety_core::agent::AgentStatus::Active,
                reason: None,
                keys_to: None,
                keys: vec![],
                at: now,
                unchanged_since: None,
            },
            &[],
        )
        .await
        .unwrap();
    native(&server, &d, &rs, &agent, "crm.read_customer", json!({})).await;
    assert_eq!(status().await.as_str(), "active");
}
