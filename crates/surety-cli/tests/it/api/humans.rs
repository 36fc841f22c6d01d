use surety_api::admin::{AgentQuery, CreateHuman, HumanQuery, RegisterAgent};
use surety_core::agent::AgentStatus;
use surety_core::human::{HumanStatus, Role};
use surety_jose::{KeyAlg, PrivateJwk};
use surety_testkit::TestServer;

use crate::support::{call, change_count, expect_error, token_for};

fn new_human(email: &str) -> CreateHuman {
    CreateHuman {
        display_name: "Somebody".into(),
        email: email.into(),
        role: None,
    }
}

fn agent(name: &str) -> RegisterAgent {
    RegisterAgent {
        name: name.into(),
        owner: None,
        public_key: PrivateJwk::generate(KeyAlg::EdDSA)
            .unwrap()
            .public()
            .to_json(),
        purpose: None,
        environment: None,
        labels: Default::default(),
    }
}

#[tokio::test]
async fn admins_register_humans_with_a_one_time_code() {
    let server = TestServer::start().await;
    let admin = server.admin_client();
    let created = admin
        .create_human(&new_human("Ada@Example.com"))
        .await
        .unwrap();
    assert_eq!(created.human.email, "ada@example.com");
    assert_eq!(created.human.role, Role::Member);
    assert_eq!(created.human.status, HumanStatus::Active);
    assert!(created.enrollment.code.len() >= 22);
    let minutes = (created.enrollment.expires_at - server.now()).whole_minutes();
    assert!(
        (14..=15).contains(&minutes),
        "15 min by default, got {minutes}"
    );
    let all = admin.list_humans(&HumanQuery::default()).await.unwrap();
    assert_eq!(all.items.len(), 2);
}

#[tokio::test]
async fn duplicate_email_is_409_and_changes_nothing() {
    let server = TestServer::start().await;
    let admin = server.admin_client();
    admin
        .create_human(&new_human("ada@example.com"))
        .await
        .unwrap();
    let before = change_count(&server).await;
    let err = admin
        .create_human(&new_human("ADA@example.com"))
        .await
        .unwrap_err();
    assert_eq!((err.status(), err.code()), (Some(409), Some("conflict")));
    assert_eq!(change_count(&server).await, before);
    assert_eq!(
        admin
            .list_humans(&HumanQuery::default())
            .await
            .unwrap()
            .items
            .len(),
        2
    );
}

#[tokio::test]
async fn bad_human_fields_are_400_naming_the_field() {
    let server = TestServer::start().await;
    let admin = server.admin_client();
    let err = admin
        .create_human(&new_human("not-an-email"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400));
    assert!(err.to_string().contains("`email`"), "{err}");
    let blank = CreateHuman {
        display_name: " ".into(),
        email: "x@example.com".into(),
        role: None,
    };
    let err = admin.create_human(&blank).await.unwrap_err();
    assert!(err.to_string().contains("`display_name`"), "{err}");
}

#[tokio::test]
async fn members_cannot_administer_humans() {
    let server = TestServer::start().await;
    let (member, _, client) = server
        .enrolled_human("M", "m@example.com", Role::Member)
        .await;
    for err in [
        client
            .create_human(&new_human("x@example.com"))
            .await
            .unwrap_err(),
        client
            .list_humans(&HumanQuery::default())
            .await
            .unwrap_err(),
        client.get_human(server.admin.id).await.unwrap_err(),
        client
            .human_action(server.admin.id, "deactivate", None)
            .await
            .unwrap_err(),
        client.enrollment_code(member.id).await.unwrap_err(),
    ] {
        assert_eq!(
            (err.status(), err.code()),
            (Some(403), Some("forbidden")),
            "{err}"
        );
    }
    assert_eq!(
        client.get_human(member.id).await.unwrap().id,
        member.id,
        "members see themselves"
    );
    assert_eq!(client.me().await.unwrap().keys.unwrap().len(), 1);
}

#[tokio::test]
async fn deactivating_a_human_suspends_their_agents_and_kills_their_tokens() {
    let server = TestServer::start().await;
    let admin = server.admin_client();
    let (member, key, client) = server
        .enrolled_human("M", "m@example.com", Role::Member)
        .await;
    let a1 = client.register_agent(&agent("one")).await.unwrap();
    let a2 = client.register_agent(&agent("two")).await.unwrap();
    client
        .agent_action(a2.id, "suspend", Some("paused".into()))
        .await
        .unwrap();
    let token = token_for(&server, &key, &member.id.to_string()).await;
    assert_eq!(
        call(&server, &key, &token, "GET", "/v1/me", None)
            .await
            .status(),
        200
    );

    let h = admin
        .human_action(member.id, "deactivate", Some("left the company".into()))
        .await
        .unwrap();
    assert_eq!(h.status, HumanStatus::Deactivated);
    let a1 = admin.get_agent(a1.id).await.unwrap();
    assert_eq!(a1.status, AgentStatus::Suspended);
    assert_eq!(a1.status_reason.as_deref(), Some("owner deactivated"));
    assert_eq!(
        admin
            .get_agent(a2.id)
            .await
            .unwrap()
            .status_reason
            .as_deref(),
        Some("paused"),
        "already suspended: untouched"
    );
    let events = admin
        .list_audit(&surety_api::admin::AuditQuery {
            kind: Some("agent.suspended".into()),
            agent: Some(a1.id.to_string()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.items.len(), 1, "one audit event per suspended agent");
    assert_eq!(events.items[0].actor.to_string(), "system");

    // The still-unexpired token dies at once.
    let r = call(&server, &key, &token, "GET", "/v1/me", None).await;
    expect_error(r, 401, "invalid_token").await;

    // Reactivation does not reinstate agents.
    admin
        .human_action(member.id, "reactivate", None)
        .await
        .unwrap();
    assert_eq!(
        admin.get_agent(a1.id).await.unwrap().status,
        AgentStatus::Suspended
    );
    let listed = admin
        .list_agents(&AgentQuery {
            owner: Some(member.id.to_string()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 2);
}

#[tokio::test]
async fn illegal_human_transitions_are_409_with_the_current_state() {
    let server = TestServer::start().await;
    let admin = server.admin_client();
    let created = admin
        .create_human(&new_human("x@example.com"))
        .await
        .unwrap();
    let before = change_count(&server).await;
    let err = admin
        .human_action(created.human.id, "reactivate", None)
        .await
        .unwrap_err();
    let surety_sdk::ClientError::Api { status, body } = err else {
        panic!("{err}")
    };
    assert_eq!(
        (status, body.error.as_str(), body.current_state.as_deref()),
        (409, "conflict", Some("active"))
    );
    assert_eq!(change_count(&server).await, before);
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_deactivated() {
    let server = TestServer::start().await;
    let admin = server.admin_client();
    let err = admin
        .human_action(server.admin.id, "deactivate", None)
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(409));
    assert!(err.to_string().contains("last active admin"), "{err}");
    assert_eq!(admin.me().await.unwrap().status, HumanStatus::Active);
    // With a second admin it is allowed.
    let (second, _, second_client) = server
        .enrolled_human("Two", "two@example.com", Role::Admin)
        .await;
    second_client
        .human_action(server.admin.id, "deactivate", None)
        .await
        .unwrap();
    assert_eq!(
        second_client
            .get_human(server.admin.id)
            .await
            .unwrap()
            .status,
        HumanStatus::Deactivated
    );
    let _ = second;
}

#[tokio::test]
async fn a_device_key_revoked_by_its_human_stops_working() {
    let server = TestServer::start().await;
    let (member, key, client) = server
        .enrolled_human("M", "m@example.com", Role::Member)
        .await;
    let token = token_for(&server, &key, &member.id.to_string()).await;
    let h = client
        .revoke_device_key(member.id, &key.thumbprint())
        .await
        .unwrap();
    assert_eq!(h.keys.unwrap()[0].status.to_string(), "revoked");
    let again = server
        .admin_client()
        .revoke_device_key(member.id, &key.thumbprint())
        .await
        .unwrap_err();
    assert_eq!(again.status(), Some(409));
    // A token bound to the revoked key dies at once.
    let r = call(&server, &key, &token, "GET", "/v1/me", None).await;
    expect_error(r, 401, "invalid_token").await;
    let other = server
        .enrolled_human("O", "o@example.com", Role::Member)
        .await;
    let err = other
        .2
        .revoke_device_key(member.id, &key.thumbprint())
        .await
        .unwrap_err();
    assert_eq!(
        err.status(),
        Some(403),
        "members revoke only their own keys"
    );
}
