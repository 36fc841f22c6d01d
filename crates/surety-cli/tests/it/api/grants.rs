//! `/v1/grants`, `/v1/resource-servers`, `/v1/signing-keys`: who may do what, and that a
//! refused request changes nothing.

use serde_json::json;
use surety_api::credentials::{CreateGrant, CreateResourceServer, GrantQuery};
use surety_core::human::Role;
use surety_jose::{KeyAlg, PrivateJwk};
use surety_testkit::TestServer;

use crate::support::{CRM, change_count};

fn terms(
    agent: surety_core::id::AgentId,
    principal: Option<surety_core::id::HumanId>,
) -> CreateGrant {
    CreateGrant {
        agent,
        principal,
        scopes: vec!["crm.read".into(), "payments.transfer".into()],
        resources: vec![CRM.into()],
        constraints: Some(
            json!({"max_amount": 500, "currency": "EUR", "allowed_domains": ["acme.example"]}),
        ),
        max_delegation_depth: Some(1),
        expires_at: None,
        expires_in: Some(3600),
    }
}

#[tokio::test]
async fn a_principal_delegates_and_an_owner_only_proposes() {
    let server = TestServer::start().await;
    let (alice, _, alice_client) = server
        .enrolled_human("Alice", "alice@example.com", Role::Member)
        .await;
    let (bob, _, bob_client) = server
        .enrolled_human("Bob", "bob@example.com", Role::Member)
        .await;
    // Alice owns the agent.
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let agent = alice_client
        .register_agent(&surety_api::admin::RegisterAgent {
            name: "bot".into(),
            owner: None,
            public_key: key.public().to_json(),
            purpose: None,
            environment: None,
            labels: Default::default(),
        })
        .await
        .unwrap();
    // Her own authority: active at once, with the constraints kept exactly.
    let own = alice_client
        .create_grant(&terms(agent.id, None))
        .await
        .unwrap();
    assert_eq!(own.status.as_str(), "active");
    assert_eq!(own.principal, alice.id);
    assert_eq!(own.constraints["allowed_domains"], json!(["acme.example"]));
    // Bob's authority, proposed by the owner: only Bob can accept it.
    let proposal = alice_client
        .create_grant(&terms(agent.id, Some(bob.id)))
        .await
        .unwrap();
    assert_eq!(proposal.status.as_str(), "proposed");
    let err = alice_client
        .grant_action(proposal.id, "accept", None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
    let err = server
        .admin_client()
        .grant_action(proposal.id, "accept", None)
        .await
        .unwrap_err();
    assert_eq!(
        err.status(),
        Some(403),
        "not even an admin accepts for someone else"
    );
    let accepted = bob_client
        .grant_action(proposal.id, "accept", None)
        .await
        .unwrap();
    assert_eq!(accepted.status.as_str(), "active");
    // Accepting twice is an illegal transition, with the current state.
    let err = bob_client
        .grant_action(proposal.id, "accept", None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(409));
    let surety_sdk::ClientError::Api { body, .. } = err else {
        panic!()
    };
    assert_eq!(body.current_state.as_deref(), Some("active"));
    // Declining a fresh proposal.
    let p2 = alice_client
        .create_grant(&terms(agent.id, Some(bob.id)))
        .await
        .unwrap();
    let declined = bob_client
        .grant_action(p2.id, "decline", Some("not now".into()))
        .await
        .unwrap();
    assert_eq!(declined.status.as_str(), "declined");
    assert_eq!(declined.status_reason.as_deref(), Some("not now"));
    // Bob (principal) may revoke; the owner may revoke too.
    let revoked = alice_client
        .grant_action(accepted.id, "revoke", Some("done".into()))
        .await
        .unwrap();
    assert_eq!(revoked.status.as_str(), "revoked");
    // Visibility: Bob sees his two; a stranger sees none and may not read one.
    let (_, _, carol_client) = server
        .enrolled_human("Carol", "carol@example.com", Role::Member)
        .await;
    let bobs = bob_client
        .list_grants(&GrantQuery::default())
        .await
        .unwrap();
    assert_eq!(bobs.items.len(), 2);
    assert!(
        carol_client
            .list_grants(&GrantQuery::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        carol_client.get_grant(own.id).await.unwrap_err().status(),
        Some(403)
    );
    assert_eq!(
        server
            .admin_client()
            .list_grants(&GrantQuery::default())
            .await
            .unwrap()
            .items
            .len(),
        3
    );
}

#[tokio::test]
async fn refused_grants_change_nothing() {
    let server = TestServer::start().await;
    let (agent, _) = server.agent("bot").await;
    let (_, _, stranger) = server
        .enrolled_human("S", "s@example.com", Role::Member)
        .await;
    let (member, _, _) = server
        .enrolled_human("M", "m@example.com", Role::Member)
        .await;
    let admin = server.admin_client();
    let before = change_count(&server).await;
    // A member may not propose for someone else on an agent they do not own.
    let err = stranger
        .create_grant(&terms(agent.id, Some(member.id)))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403));
    let mut cases: Vec<(&str, CreateGrant)> = Vec::new();
    let mut t = terms(agent.id, None);
    t.expires_in = None;
    cases.push(("no expiry", t));
    let mut t = terms(agent.id, None);
    t.expires_in = Some(31 * 86400);
    cases.push(("past the server maximum", t));
    let mut t = terms(agent.id, None);
    t.scopes = vec!["bad scope".into()];
    cases.push(("malformed scope", t));
    let mut t = terms(agent.id, None);
    t.scopes = vec![];
    cases.push(("no scope", t));
    let mut t = terms(agent.id, None);
    t.resources = vec!["ftp://crm".into()];
    cases.push(("bad resource", t));
    let mut t = terms(agent.id, None);
    t.max_delegation_depth = Some(6);
    cases.push(("too deep", t));
    let mut t = terms(agent.id, None);
    t.constraints = Some(json!([1, 2]));
    cases.push(("constraints not an object", t));
    for (case, body) in cases {
        let err = admin.create_grant(&body).await.unwrap_err();
        assert_eq!(
            (err.status(), err.code()),
            (Some(400), Some("invalid_request")),
            "{case}: {err}"
        );
    }
    // A suspended agent receives no authority.
    admin
        .agent_action(agent.id, "suspend", Some("x".into()))
        .await
        .unwrap();
    let after_suspend = change_count(&server).await;
    let err = admin
        .create_grant(&terms(agent.id, None))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(409));
    assert_eq!(change_count(&server).await, after_suspend);
    assert_eq!(
        after_suspend,
        before + 1,
        "only the suspension was recorded"
    );
}

#[tokio::test]
async fn resource_servers_and_signing_keys_are_for_admins() {
    let server = TestServer::start().await;
    let (_, _, member) = server
        .enrolled_human("M", "m@example.com", Role::Member)
        .await;
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let body = CreateResourceServer {
        audience: CRM.into(),
        public_key: key.public().to_json(),
        name: None,
    };
    assert_eq!(
        member
            .create_resource_server(&body)
            .await
            .unwrap_err()
            .status(),
        Some(403)
    );
    assert_eq!(
        member.rotate_signing_key(None).await.unwrap_err().status(),
        Some(403)
    );
    assert_eq!(
        member.list_signing_keys().await.unwrap_err().status(),
        Some(403)
    );
    let admin = server.admin_client();
    let rs = admin.create_resource_server(&body).await.unwrap();
    assert_eq!(rs.name, "crm.example");
    assert_eq!(rs.kid, key.thumbprint());
    // The same audience twice, or a private key, are refused.
    let again = CreateResourceServer {
        public_key: PrivateJwk::generate(KeyAlg::EdDSA)
            .unwrap()
            .public()
            .to_json(),
        ..body.clone()
    };
    assert_eq!(
        admin
            .create_resource_server(&again)
            .await
            .unwrap_err()
            .status(),
        Some(409)
    );
    let private = CreateResourceServer {
        audience: "https://other.example".into(),
        public_key: PrivateJwk::generate(KeyAlg::EdDSA)
            .unwrap()
            .to_json()
            .unwrap(),
        name: None,
    };
    assert_eq!(
        admin
            .create_resource_server(&private)
            .await
            .unwrap_err()
            .status(),
        Some(400)
    );
    assert_eq!(admin.list_resource_servers().await.unwrap().len(), 1);
    let err = admin
        .rotate_signing_key(Some("RS256".into()))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
}
