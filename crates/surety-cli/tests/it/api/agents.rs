use std::collections::BTreeMap;

use serde_json::json;
use surety_api::admin::{AddKey, AgentQuery, AuditQuery, RegisterAgent};
use surety_core::agent::AgentStatus;
use surety_core::human::Role;
use surety_core::id::HumanId;
use surety_core::key::KeyStatus;
use surety_jose::{KeyAlg, PrivateJwk};
use surety_testkit::TestServer;

use crate::support::{call, change_count, expect_error, token_for};

fn register(name: &str, key: &PrivateJwk) -> RegisterAgent {
    RegisterAgent {
        name: name.into(),
        owner: None,
        public_key: key.public().to_json(),
        purpose: Some("reconciles invoices".into()),
        environment: Some("production".into()),
        labels: BTreeMap::from([("team".to_owned(), "finance".to_owned())]),
    }
}

fn fresh() -> PrivateJwk {
    PrivateJwk::generate(KeyAlg::EdDSA).unwrap()
}

#[tokio::test]
async fn a_registered_agent_is_active_owned_and_identified_by_its_key() {
    let server = TestServer::start().await;
    let (member, _, client) = server
        .enrolled_human("M", "m@example.com", Role::Member)
        .await;
    let key = PrivateJwk::generate(KeyAlg::ES256).unwrap();
    let agent = client
        .register_agent(&register("invoice-bot", &key))
        .await
        .unwrap();
    assert!(agent.id.to_string().starts_with("agt_"));
    assert_eq!(agent.owner, member.id);
    assert_eq!(agent.status, AgentStatus::Active);
    assert_eq!(agent.environment, "production");
    assert!(agent.last_seen_at.is_none());
    let keys = agent.keys.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        keys[0].kid,
        key.thumbprint(),
        "kid is the RFC 7638 thumbprint"
    );
    assert_eq!(keys[0].alg, "ES256");
    assert_eq!(keys[0].jwk, key.public().to_json());
    let events = client
        .list_audit(&AuditQuery {
            agent: Some(agent.id.to_string()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.items[0].kind.as_str(), "agent.registered");
    assert_eq!(events.items[0].human, Some(member.id));
}

#[tokio::test]
async fn unknown_owner_is_404() {
    let server = TestServer::start().await;
    let mut body = register("bot", &fresh());
    body.owner = Some(HumanId::new(server.now()));
    let err = server
        .admin_client()
        .register_agent(&body)
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(404), Some("not_found")));
}

#[tokio::test]
async fn malformed_or_private_keys_are_400_naming_the_member() {
    let server = TestServer::start().await;
    let admin = server.admin_client();
    let private = fresh().to_json().unwrap();
    let cases = [
        (private, "`public_key.d`"),
        (
            json!({"kty": "OKP", "crv": "Ed25519", "x": "tooshort"}),
            "`public_key.x`",
        ),
        (
            json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}),
            "`public_key.kty`",
        ),
        (json!({"kty": "oct", "k": "c2VjcmV0"}), "`public_key.k`"),
        (
            json!({"kty": "EC", "crv": "P-256", "x": "AAAA"}),
            "`public_key.x`",
        ),
        (json!("a string"), "`public_key.kty`"),
    ];
    let before = change_count(&server).await;
    for (jwk, field) in cases {
        let mut body = register("bot", &fresh());
        body.public_key = jwk;
        let err = admin.register_agent(&body).await.unwrap_err();
        assert_eq!(err.status(), Some(400), "{err}");
        assert!(
            err.to_string().contains(field),
            "expected {field} in: {err}"
        );
    }
    assert_eq!(change_count(&server).await, before);
    assert!(
        admin
            .list_agents(&AgentQuery::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn duplicate_names_per_owner_and_reused_keys_are_409() {
    let server = TestServer::start().await;
    let admin = server.admin_client();
    let key = fresh();
    admin.register_agent(&register("Bot", &key)).await.unwrap();
    let before = change_count(&server).await;
    let err = admin
        .register_agent(&register("bot", &fresh()))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(409));
    let err = admin
        .register_agent(&register("other", &key))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(409));
    assert!(err.to_string().contains(&key.thumbprint()), "{err}");
    assert_eq!(change_count(&server).await, before);
}

#[tokio::test]
async fn members_act_only_on_their_own_agents() {
    let server = TestServer::start().await;
    let (_, _, alice) = server
        .enrolled_human("Alice", "alice@example.com", Role::Member)
        .await;
    let (bob, _, bob_client) = server
        .enrolled_human("Bob", "bob@example.com", Role::Member)
        .await;
    let bobs = bob_client
        .register_agent(&register("bobs-bot", &fresh()))
        .await
        .unwrap();
    let before = change_count(&server).await;
    let mut for_bob = register("sneaky", &fresh());
    for_bob.owner = Some(bob.id);
    let errors = [
        alice.get_agent(bobs.id).await.unwrap_err(),
        alice
            .agent_action(bobs.id, "suspend", Some("x".into()))
            .await
            .unwrap_err(),
        alice
            .agent_action(bobs.id, "revoke", Some("x".into()))
            .await
            .unwrap_err(),
        alice
            .agent_action(bobs.id, "retire", None)
            .await
            .unwrap_err(),
        alice.list_agent_keys(bobs.id).await.unwrap_err(),
        alice
            .add_agent_key(
                bobs.id,
                &AddKey {
                    public_key: fresh().public().to_json(),
                    retire_previous: None,
                },
            )
            .await
            .unwrap_err(),
        alice
            .revoke_agent_key(bobs.id, &bobs.keys.clone().unwrap()[0].kid, None)
            .await
            .unwrap_err(),
        alice.register_agent(&for_bob).await.unwrap_err(),
        alice
            .list_agents(&AgentQuery {
                owner: Some(bob.id.to_string()),
                ..Default::default()
            })
            .await
            .unwrap_err(),
    ];
    for err in errors {
        assert_eq!(
            (err.status(), err.code()),
            (Some(403), Some("forbidden")),
            "{err}"
        );
    }
    assert_eq!(change_count(&server).await, before, "nothing changed");
    assert!(
        alice
            .list_agents(&AgentQuery::default())
            .await
            .unwrap()
            .items
            .is_empty(),
        "members list their own only"
    );
    assert_eq!(
        server
            .admin_client()
            .get_agent(bobs.id)
            .await
            .unwrap()
            .status,
        AgentStatus::Active
    );
}

#[tokio::test]
async fn the_lifecycle_follows_the_design_and_only_the_owner_reinstates() {
    let server = TestServer::start().await;
    let admin = server.admin_client();
    let (_, _, owner) = server
        .enrolled_human("O", "o@example.com", Role::Member)
        .await;
    let agent = owner
        .register_agent(&register("bot", &fresh()))
        .await
        .unwrap();

    let suspended = admin
        .agent_action(agent.id, "suspend", Some("anomaly".into()))
        .await
        .unwrap();
    assert_eq!(
        (suspended.status, suspended.status_reason.as_deref()),
        (AgentStatus::Suspended, Some("anomaly"))
    );
    let err = admin
        .agent_action(agent.id, "reinstate", None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(403), "an admin is not the owner");
    let back = owner
        .agent_action(agent.id, "reinstate", None)
        .await
        .unwrap();
    assert_eq!(
        (back.status, back.status_reason),
        (AgentStatus::Active, None)
    );

    let before = change_count(&server).await;
    let err = owner
        .agent_action(agent.id, "reinstate", None)
        .await
        .unwrap_err();
    let surety_sdk::ClientError::Api { status, body } = err else {
        panic!()
    };
    assert_eq!(
        (status, body.current_state.as_deref()),
        (409, Some("active"))
    );
    assert_eq!(change_count(&server).await, before);

    let revoked = admin
        .agent_action(agent.id, "revoke", Some("compromised".into()))
        .await
        .unwrap();
    assert_eq!(revoked.status, AgentStatus::Revoked);
    assert!(
        revoked
            .keys
            .unwrap()
            .iter()
            .all(|k| k.status == KeyStatus::Revoked),
        "keys revoked with it"
    );
    for action in ["suspend", "reinstate", "retire", "revoke"] {
        let err = owner
            .agent_action(agent.id, action, Some("again".into()))
            .await
            .unwrap_err();
        let surety_sdk::ClientError::Api { status, body } = err else {
            panic!()
        };
        assert_eq!(
            (status, body.current_state.as_deref()),
            (409, Some("revoked")),
            "{action}"
        );
    }
    let err = owner
        .add_agent_key(
            agent.id,
            &AddKey {
                public_key: fresh().public().to_json(),
                retire_previous: None,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(409), "a revoked agent gets no new keys");
}

#[tokio::test]
async fn suspend_and_revoke_need_a_reason() {
    let server = TestServer::start().await;
    let admin = server.admin_client();
    let agent = admin
        .register_agent(&register("bot", &fresh()))
        .await
        .unwrap();
    for action in ["suspend", "revoke"] {
        let err = admin
            .agent_action(agent.id, action, None)
            .await
            .unwrap_err();
        assert_eq!(err.status(), Some(400), "{action}");
    }
    let retired = admin.agent_action(agent.id, "retire", None).await.unwrap();
    assert_eq!(retired.status, AgentStatus::Retired);
    assert!(
        retired
            .keys
            .unwrap()
            .iter()
            .all(|k| k.status == KeyStatus::Retired)
    );
}

#[tokio::test]
async fn rotation_retires_the_old_key_and_revoked_keys_never_return() {
    let server = TestServer::start().await;
    let admin = server.admin_client();
    let old = fresh();
    let agent = admin.register_agent(&register("bot", &old)).await.unwrap();
    let new = PrivateJwk::generate(KeyAlg::ES256).unwrap();
    let rotated = admin
        .add_agent_key(
            agent.id,
            &AddKey {
                public_key: new.public().to_json(),
                retire_previous: None,
            },
        )
        .await
        .unwrap();
    let keys = rotated.keys.unwrap();
    let status = |kid: &str| keys.iter().find(|k| k.kid == kid).unwrap().status;
    assert_eq!(status(&old.thumbprint()), KeyStatus::Retired);
    assert_eq!(status(&new.thumbprint()), KeyStatus::Active);

    let after = admin
        .revoke_agent_key(agent.id, &new.thumbprint(), Some("leaked".into()))
        .await
        .unwrap();
    assert!(
        after
            .keys
            .unwrap()
            .iter()
            .all(|k| k.status != KeyStatus::Active)
    );
    let before = change_count(&server).await;
    for key in [&new, &old] {
        let err = admin
            .add_agent_key(
                agent.id,
                &AddKey {
                    public_key: key.public().to_json(),
                    retire_previous: None,
                },
            )
            .await
            .unwrap_err();
        assert_eq!(
            err.status(),
            Some(409),
            "a thumbprint is registered once, for ever"
        );
    }
    assert_eq!(change_count(&server).await, before);
    let err = admin
        .revoke_agent_key(agent.id, "no-such-kid", None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(404));
}

#[tokio::test]
async fn agents_list_in_keyset_pages() {
    let server = TestServer::start().await;
    let admin = server.admin_client();
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(
            admin
                .register_agent(&register(&format!("bot-{i}"), &fresh()))
                .await
                .unwrap()
                .id,
        );
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = admin
            .list_agents(&AgentQuery {
                limit: Some(3),
                cursor: cursor.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
        seen.extend(page.items.iter().map(|a| a.id));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let bad = [
        AgentQuery {
            limit: Some(0),
            ..Default::default()
        },
        AgentQuery {
            status: Some("sleeping".into()),
            ..Default::default()
        },
        AgentQuery {
            cursor: Some("'; DROP TABLE agents; --".into()),
            ..Default::default()
        },
    ];
    for q in bad {
        let err = admin.list_agents(&q).await.unwrap_err();
        assert_eq!(err.status(), Some(400), "{q:?}");
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_changes_nothing() {
    let server = TestServer::start_with(surety_testkit::Options {
        config: vec![("max_body_bytes", "4096".into())],
        ..Default::default()
    })
    .await;
    let key = server.admin_key();
    let token = token_for(&server, &key, &server.admin.id.to_string()).await;
    let before = change_count(&server).await;
    let mut body = serde_json::to_value(register("bot", &fresh())).unwrap();
    body["purpose"] = json!("x".repeat(5000));
    let r = call(&server, &key, &token, "POST", "/v1/agents", Some(body)).await;
    expect_error(r, 413, "payload_too_large").await;
    assert_eq!(change_count(&server).await, before);
}

#[tokio::test]
async fn malformed_json_and_unknown_fields_are_400() {
    let server = TestServer::start().await;
    let key = server.admin_key();
    let token = token_for(&server, &key, &server.admin.id.to_string()).await;
    let mut body = serde_json::to_value(register("bot", &fresh())).unwrap();
    body["colour"] = json!("blue");
    let r = call(&server, &key, &token, "POST", "/v1/agents", Some(body)).await;
    let err = expect_error(r, 400, "invalid_request").await;
    assert!(
        err["error_description"]
            .as_str()
            .unwrap()
            .contains("colour"),
        "{err}"
    );
    let r = call(&server, &key, &token, "GET", "/v1/agents/not-an-id", None).await;
    expect_error(r, 400, "invalid_request").await;
}
