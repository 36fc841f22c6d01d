//! RFC 8693 token exchange at the token endpoint, with RFC 7523 `private_key_jwt` client
//! authentication, RFC 8707 resource indicators and RFC 9068 JWT access tokens. Every
//! refusal names the RFC's error code and changes nothing.

use serde_json::{Map, json};
use surety_api::admin::Reason;
use surety_api::oauth::{TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_GRANT};
use surety_core::human::Role;
use surety_jose::{KeyAlg, PrivateJwk, jws};
use surety_testkit::{TestServer, http};
use time::Duration;

use crate::support::{
    CRM, PAY, TokenRequest, claims_of, delegation, expect_error, header_of, mint, ok_token,
};

fn exchange_as<'a>(server: &TestServer, d: &crate::support::Delegation) -> TokenRequest<'a> {
    TokenRequest::for_grant(server, d)
}

#[tokio::test]
async fn rfc8693_s2_2_1_a_grant_becomes_a_dpop_bound_rfc9068_token() {
    // §2.2.1: `access_token`, `issued_token_type`, `token_type`; RFC 9068 §2: `typ: at+jwt`
    // and the required claims; RFC 9449 §6.1: `cnf.jkt` is the proof key's thumbprint.
    let server = TestServer::start().await;
    let d = delegation(&server, 0).await;
    let body = ok_token(&server, exchange_as(&server, &d).set("scope", "crm.read")).await;
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(body["issued_token_type"], TOKEN_TYPE_ACCESS_TOKEN);
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "crm.read");
    let token = body["access_token"].as_str().unwrap();
    let header = header_of(token);
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "EdDSA");
    let c = claims_of(token);
    assert_eq!(c["iss"], server.base);
    assert_eq!(
        c["sub"],
        server.admin.id.to_string(),
        "sub = the human principal"
    );
    assert_eq!(
        c["act"],
        json!({"sub": d.agent.id.to_string()}),
        "act = the agent"
    );
    assert_eq!(c["client_id"], d.agent.id.to_string());
    assert_eq!(c["aud"], CRM);
    assert_eq!(c["scope"], "crm.read");
    assert_eq!(c["grant_id"], d.grant.id.to_string());
    assert_eq!(c["cnf"]["jkt"], d.key.thumbprint());
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 300);
    assert!(c["jti"].as_str().is_some_and(|j| j.len() >= 16));
    // The signing key is published.
    let jwks: serde_json::Value = http()
        .get(server.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == header["kid"])
    );
}

#[tokio::test]
async fn rfc8693_s2_1_required_parameters_are_invalid_request() {
    // §2.1: `subject_token` and `subject_token_type` are REQUIRED; §2.2.2 `invalid_request`.
    let server = TestServer::start().await;
    let d = delegation(&server, 0).await;
    for missing in ["subject_token", "subject_token_type"] {
        let r = exchange_as(&server, &d)
            .without(missing)
            .send(&server)
            .await;
        expect_error(r, 400, "invalid_request").await;
    }
    for (name, value) in [
        (
            "subject_token_type",
            "urn:ietf:params:oauth:token-type:saml2",
        ),
        (
            "requested_token_type",
            "urn:ietf:params:oauth:token-type:refresh_token",
        ),
    ] {
        let r = exchange_as(&server, &d)
            .set(name, value)
            .send(&server)
            .await;
        expect_error(r, 400, "invalid_request").await;
    }
    // Surety's actor is always the authenticated client: a separate actor token is refused.
    let r = exchange_as(&server, &d)
        .set("actor_token", "x")
        .set("actor_token_type", TOKEN_TYPE_ACCESS_TOKEN)
        .send(&server)
        .await;
    expect_error(r, 400, "invalid_request").await;
}

#[tokio::test]
async fn rfc6749_s5_2_scope_wider_than_the_grant_is_invalid_scope() {
    let server = TestServer::start().await;
    let d = delegation(&server, 0).await;
    let r = exchange_as(&server, &d)
        .set("scope", "crm.read iam.grant_role")
        .send(&server)
        .await;
    let body = expect_error(r, 400, "invalid_scope").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("iam.grant_role")
    );
    let r = exchange_as(&server, &d)
        .set("scope", "crm.read  x")
        .send(&server)
        .await;
    expect_error(r, 400, "invalid_scope").await;
}

#[tokio::test]
async fn rfc8707_s2_a_resource_outside_the_grant_is_invalid_target() {
    let server = TestServer::start().await;
    let d = delegation(&server, 0).await;
    let r = exchange_as(&server, &d)
        .set("resource", "https://evil.example")
        .send(&server)
        .await;
    expect_error(r, 400, "invalid_target").await;
    // The grant names two resources: without one, the server cannot pick.
    let r = exchange_as(&server, &d)
        .without("resource")
        .send(&server)
        .await;
    expect_error(r, 400, "invalid_target").await;
    // RFC 8693 §2.1 `audience` is honoured like `resource`.
    let body = ok_token(
        &server,
        exchange_as(&server, &d)
            .without("resource")
            .set("audience", PAY),
    )
    .await;
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["aud"],
        PAY
    );
}

#[tokio::test]
async fn rfc8693_s2_2_2_no_grant_means_no_token() {
    // Zero standing permission: a registered agent with no grant authenticates and gets
    // nothing — another agent's grant, an unknown grant, or no grant id are `invalid_grant`.
    let server = TestServer::start().await;
    let d = delegation(&server, 0).await;
    let (other, other_key) = server.agent("idle").await;
    let r = TokenRequest::exchange(
        &server,
        &other_key,
        &other.id.to_string(),
        &d.grant.id.to_string(),
        TOKEN_TYPE_GRANT,
    )
    .set("resource", CRM)
    .send(&server)
    .await;
    expect_error(r, 400, "invalid_grant").await;
    let unknown = surety_core::id::GrantId::new(server.now()).to_string();
    let r = TokenRequest::exchange(
        &server,
        &other_key,
        &other.id.to_string(),
        &unknown,
        TOKEN_TYPE_GRANT,
    )
    .send(&server)
    .await;
    expect_error(r, 400, "invalid_grant").await;
    let r = TokenRequest::exchange(
        &server,
        &other_key,
        &other.id.to_string(),
        "not-a-grant",
        TOKEN_TYPE_GRANT,
    )
    .send(&server)
    .await;
    expect_error(r, 400, "invalid_grant").await;
}

#[tokio::test]
async fn rfc8693_revoked_proposed_and_expired_grants_are_invalid_grant() {
    let (server, clock) = TestServer::with_manual_clock().await;
    let d = delegation(&server, 0).await;
    let admin = server.admin_client();
    // Proposed: the owner proposes on behalf of a member; not usable until accepted.
    let (member, _, member_client) = server
        .enrolled_human("M", "m@example.com", Role::Member)
        .await;
    let proposed = admin
        .create_grant(&crate::support::crm_read_for(d.agent.id, Some(member.id)))
        .await
        .unwrap();
    assert_eq!(proposed.status.as_str(), "proposed");
    let r = TokenRequest::exchange(
        &server,
        &d.key,
        &d.agent.id.to_string(),
        &proposed.id.to_string(),
        TOKEN_TYPE_GRANT,
    )
    .send(&server)
    .await;
    expect_error(r, 400, "invalid_grant").await;
    member_client
        .grant_action(proposed.id, "accept", None)
        .await
        .unwrap();
    let body = ok_token(
        &server,
        TokenRequest::exchange(
            &server,
            &d.key,
            &d.agent.id.to_string(),
            &proposed.id.to_string(),
            TOKEN_TYPE_GRANT,
        ),
    )
    .await;
    assert_eq!(
        claims_of(body["access_token"].as_str().unwrap())["sub"],
        member.id.to_string()
    );
    // Revoked (done before the clock moves: the admin client signs with real time).
    admin
        .grant_action(d.grant.id, "revoke", Some("done".into()))
        .await
        .unwrap();
    let r = exchange_as(&server, &d).send(&server).await;
    expect_error(r, 400, "invalid_grant").await;
    // Expired: the 600 s grant, 601 s later (the other grant lasts an hour).
    clock.advance(Duration::seconds(601));
    let r = TokenRequest::exchange(
        &server,
        &d.key,
        &d.agent.id.to_string(),
        &proposed.id.to_string(),
        TOKEN_TYPE_GRANT,
    )
    .send(&server)
    .await;
    expect_error(r, 400, "invalid_grant").await;
}

#[tokio::test]
async fn rfc8693_a_suspended_agent_a_revoked_key_or_a_deactivated_principal_get_nothing() {
    let server = TestServer::start().await;
    let admin = server.admin_client();
    // Suspended agent: client authentication itself fails.
    let d = delegation(&server, 0).await;
    admin
        .agent_action(d.agent.id, "suspend", Some("test".into()))
        .await
        .unwrap();
    expect_error(
        exchange_as(&server, &d).send(&server).await,
        401,
        "invalid_client",
    )
    .await;
    // Revoked key: no longer a key of the client.
    let (a2, k2) = server.agent("bot2").await;
    let g2 = server.grant(a2.id, &["crm.read"], &[CRM], 0).await;
    admin
        .revoke_agent_key(a2.id, &k2.thumbprint(), None)
        .await
        .unwrap();
    let r = TokenRequest::exchange(
        &server,
        &k2,
        &a2.id.to_string(),
        &g2.id.to_string(),
        TOKEN_TYPE_GRANT,
    )
    .send(&server)
    .await;
    expect_error(r, 401, "invalid_client").await;
    // Deactivated principal: the member's grant to an admin-owned agent dies with them.
    let (member, _, member_client) = server
        .enrolled_human("M", "m@example.com", Role::Member)
        .await;
    let (a3, k3) = server.agent("bot3").await;
    let g3 = member_client
        .create_grant(&crate::support::crm_read_for(a3.id, None))
        .await
        .unwrap();
    assert_eq!(
        g3.status.as_str(),
        "active",
        "a principal's own delegation is active at once"
    );
    admin
        .human_action(member.id, "deactivate", Some("left".into()))
        .await
        .unwrap();
    let r = TokenRequest::exchange(
        &server,
        &k3,
        &a3.id.to_string(),
        &g3.id.to_string(),
        TOKEN_TYPE_GRANT,
    )
    .send(&server)
    .await;
    expect_error(r, 400, "invalid_grant").await;
    let _ = Reason::default();
}

#[tokio::test]
async fn rfc7523_s2_2_client_authentication_failures_are_invalid_client() {
    // RFC 7523 §3 and RFC 6749 §5.2: missing, replayed, mis-addressed, expired or
    // wrongly signed client assertions are `401 invalid_client`.
    let server = TestServer::start().await;
    let d = delegation(&server, 0).await;
    let id = d.agent.id.to_string();
    for missing in ["client_assertion", "client_assertion_type"] {
        let r = exchange_as(&server, &d)
            .without(missing)
            .send(&server)
            .await;
        expect_error(r, 401, "invalid_client").await;
    }
    // Replay.
    let assertion = server.client_assertion(&d.key, &id);
    let first = exchange_as(&server, &d)
        .set("client_assertion", assertion.clone())
        .send(&server)
        .await;
    assert_eq!(first.status(), 200);
    let again = exchange_as(&server, &d)
        .set("client_assertion", assertion)
        .send(&server)
        .await;
    expect_error(again, 401, "invalid_client").await;
    let t = server.now().unix_timestamp();
    let signed = |key: &PrivateJwk, claims: serde_json::Value| {
        let mut h = Map::new();
        h.insert("typ".into(), json!("JWT"));
        jws::sign(h, &claims, key).unwrap()
    };
    let jti = || surety_jose::random_b64(12).unwrap();
    let cases = [
        (
            "wrong aud",
            signed(
                &d.key,
                json!({"iss": id, "sub": id, "aud": "https://other.example", "exp": t + 60, "iat": t, "jti": jti()}),
            ),
        ),
        (
            "expired",
            signed(
                &d.key,
                json!({"iss": id, "sub": id, "aud": server.base, "exp": t - 30, "iat": t - 90, "jti": jti()}),
            ),
        ),
        (
            "iss != sub",
            signed(
                &d.key,
                json!({"iss": id, "sub": server.admin.id.to_string(), "aud": server.base, "exp": t + 60, "iat": t, "jti": jti()}),
            ),
        ),
        (
            "no jti",
            signed(
                &d.key,
                json!({"iss": id, "sub": id, "aud": server.base, "exp": t + 60, "iat": t}),
            ),
        ),
        (
            "another key",
            signed(
                &PrivateJwk::generate(KeyAlg::EdDSA).unwrap(),
                json!({"iss": id, "sub": id, "aud": server.base, "exp": t + 60, "iat": t, "jti": jti()}),
            ),
        ),
    ];
    for (case, assertion) in cases {
        let r = exchange_as(&server, &d)
            .set("client_assertion", assertion)
            .send(&server)
            .await;
        let body = expect_error(r, 401, "invalid_client").await;
        assert!(
            !body["error_description"].as_str().unwrap().is_empty(),
            "{case}"
        );
    }
    // A `client_id` naming someone else than the assertion.
    let r = exchange_as(&server, &d)
        .set("client_id", "agt_00000000000000000000000000000000")
        .send(&server)
        .await;
    expect_error(r, 401, "invalid_client").await;
}

#[tokio::test]
async fn rfc9449_the_token_is_bound_to_the_agents_own_key() {
    // A proof by any key other than one of the agent's registered keys cannot mint its token.
    let server = TestServer::start().await;
    let d = delegation(&server, 0).await;
    let stranger = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let proof = server.proof(
        &stranger,
        "POST",
        "/oauth2/token",
        None,
        Some(&server.nonce()),
    );
    let r = exchange_as(&server, &d)
        .proofs(vec![proof])
        .send(&server)
        .await;
    expect_error(r, 400, "invalid_dpop_proof").await;
    // No proof at all; a proof without the nonce the server issued.
    let r = exchange_as(&server, &d).proofs(vec![]).send(&server).await;
    expect_error(r, 400, "invalid_dpop_proof").await;
    let no_nonce = server.proof(&d.key, "POST", "/oauth2/token", None, None);
    let r = exchange_as(&server, &d)
        .proofs(vec![no_nonce])
        .send(&server)
        .await;
    expect_error(r, 400, "use_dpop_nonce").await;
}

#[tokio::test]
async fn rfc8725_s3_11_an_access_token_is_neither_an_assertion_nor_a_proof() {
    // Cross-JWT confusion: each JWT kind is checked with its own rules (`typ`).
    let server = TestServer::start().await;
    let d = delegation(&server, 0).await;
    let token = mint(&server, &d).await;
    let r = exchange_as(&server, &d)
        .set("client_assertion", token.clone())
        .send(&server)
        .await;
    expect_error(r, 401, "invalid_client").await;
    let r = exchange_as(&server, &d)
        .proofs(vec![token.clone()])
        .send(&server)
        .await;
    expect_error(r, 400, "invalid_dpop_proof").await;
    // A DPoP proof is not an access token either.
    let proof = server.proof(&d.key, "POST", "/oauth2/token", None, None);
    let r = TokenRequest::exchange(
        &server,
        &d.key,
        &d.agent.id.to_string(),
        &proof,
        TOKEN_TYPE_ACCESS_TOKEN,
    )
    .set("requested_actor", d.agent.id.to_string())
    .send(&server)
    .await;
    expect_error(r, 400, "invalid_request").await;
}

/// A second agent, registered by the admin: the sub-agent.
async fn sub_agent(server: &TestServer, name: &str) -> (surety_api::admin::AgentView, PrivateJwk) {
    server.agent(name).await
}

fn delegate<'a>(
    server: &TestServer,
    d: &crate::support::Delegation,
    token: &str,
    to: &str,
) -> TokenRequest<'a> {
    TokenRequest::exchange(
        server,
        &d.key,
        &d.agent.id.to_string(),
        token,
        TOKEN_TYPE_ACCESS_TOKEN,
    )
    .set("requested_actor", to.to_owned())
}

#[tokio::test]
async fn rfc8693_s4_1_sub_agent_tokens_nest_act_and_attenuate() {
    let server = TestServer::start().await;
    let d = delegation(&server, 1).await;
    let parent = mint(&server, &d).await;
    let (b, b_key) = sub_agent(&server, "helper").await;
    let body = ok_token(
        &server,
        delegate(&server, &d, &parent, &b.id.to_string()).set("scope", "crm.read"),
    )
    .await;
    let token = body["access_token"].as_str().unwrap();
    let c = claims_of(token);
    let p = claims_of(&parent);
    assert_eq!(
        c["act"],
        json!({"sub": b.id.to_string(), "act": {"sub": d.agent.id.to_string()}})
    );
    assert_eq!(c["client_id"], b.id.to_string());
    assert_eq!(c["sub"], p["sub"]);
    assert_eq!(c["scope"], "crm.read");
    assert_eq!(c["aud"], p["aud"]);
    assert_eq!(
        c["cnf"]["jkt"],
        b_key.thumbprint(),
        "bound to the sub-agent's registered key"
    );
    assert!(
        c["exp"].as_i64() <= p["exp"].as_i64(),
        "never longer-lived than the parent"
    );
    assert_eq!(c["derived_from"][0]["jti"], p["jti"]);
}

#[tokio::test]
async fn rfc8693_sub_agent_rules_are_enforced() {
    let server = TestServer::start().await;
    // Depth 0: no sub-agents at all.
    let flat = delegation(&server, 0).await;
    let parent = mint(&server, &flat).await;
    let (b, _) = sub_agent(&server, "helper").await;
    let r = delegate(&server, &flat, &parent, &b.id.to_string())
        .send(&server)
        .await;
    let body = expect_error(r, 400, "invalid_grant").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("depth"),
        "{body}"
    );

    let server = TestServer::start().await;
    let d = delegation(&server, 1).await;
    let parent = mint(&server, &d).await;
    let (b, b_key) = sub_agent(&server, "helper").await;
    let (c, _) = sub_agent(&server, "helper2").await;
    // Widening the parent's scope.
    let r = delegate(&server, &d, &parent, &b.id.to_string())
        .set("scope", "crm.read iam.grant_role")
        .send(&server)
        .await;
    expect_error(r, 400, "invalid_scope").await;
    // Another audience than the parent's.
    let r = delegate(&server, &d, &parent, &b.id.to_string())
        .set("resource", PAY)
        .send(&server)
        .await;
    expect_error(r, 400, "invalid_target").await;
    // An unregistered sub-agent; a suspended one; a malformed id.
    let ghost = surety_core::id::AgentId::new(server.now()).to_string();
    let r = delegate(&server, &d, &parent, &ghost).send(&server).await;
    expect_error(r, 400, "invalid_grant").await;
    server
        .admin_client()
        .agent_action(c.id, "suspend", Some("x".into()))
        .await
        .unwrap();
    let r = delegate(&server, &d, &parent, &c.id.to_string())
        .send(&server)
        .await;
    expect_error(r, 400, "invalid_grant").await;
    let r = delegate(&server, &d, &parent, "nobody").send(&server).await;
    expect_error(r, 400, "invalid_request").await;
    // Depth overflow: B's token cannot be delegated further under depth 1.
    let child = ok_token(&server, delegate(&server, &d, &parent, &b.id.to_string())).await;
    let child = child["access_token"].as_str().unwrap();
    let (e, _) = sub_agent(&server, "helper3").await;
    let r = TokenRequest::exchange(
        &server,
        &b_key,
        &b.id.to_string(),
        child,
        TOKEN_TYPE_ACCESS_TOKEN,
    )
    .set("requested_actor", e.id.to_string())
    .send(&server)
    .await;
    expect_error(r, 400, "invalid_grant").await;
}

#[tokio::test]
async fn rfc8693_chain_splicing_is_refused() {
    // A subject token must come from the same context as the client: another agent that
    // obtained A's token cannot delegate it, even proving with its own key.
    let server = TestServer::start().await;
    let d = delegation(&server, 2).await;
    let parent = mint(&server, &d).await;
    let (thief, thief_key) = sub_agent(&server, "thief").await;
    let (b, _) = sub_agent(&server, "helper").await;
    let r = TokenRequest::exchange(
        &server,
        &thief_key,
        &thief.id.to_string(),
        &parent,
        TOKEN_TYPE_ACCESS_TOKEN,
    )
    .set("requested_actor", b.id.to_string())
    .send(&server)
    .await;
    // RFC 8693 §2.2.2: an unacceptable subject token is `invalid_request`.
    let stolen_active = expect_error(r, 400, "invalid_request").await;
    // And a requested actor on a grant exchange is a malformed request.
    let r = exchange_as(&server, &d)
        .set("requested_actor", b.id.to_string())
        .send(&server)
        .await;
    expect_error(r, 400, "invalid_request").await;
    // And the answer is the same whether the stolen token is still active or not: no
    // agent learns anything about tokens that are not its own.
    server
        .admin_client()
        .grant_action(d.grant.id, "revoke", Some("x".into()))
        .await
        .unwrap();
    let r = TokenRequest::exchange(
        &server,
        &thief_key,
        &thief.id.to_string(),
        &parent,
        TOKEN_TYPE_ACCESS_TOKEN,
    )
    .set("requested_actor", b.id.to_string())
    .send(&server)
    .await;
    let stolen_revoked = expect_error(r, 400, "invalid_request").await;
    assert_eq!(stolen_active, stolen_revoked);
}
