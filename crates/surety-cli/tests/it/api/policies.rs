//! `/v1/policies`: the set in force, validation, applying, history, rollback — and that an
//! invalid set, or a member's attempt, changes nothing.

use surety_api::credentials::{ApplyPolicySet, PolicyHistoryQuery};
use surety_core::human::Role;
use surety_policy::{CATALOG, DEFAULT_POLICIES};
use surety_testkit::TestServer;

use crate::support::change_count;

const NARROW: &str = r#"
@id("permit-reads")
@reason("reads only")
permit (principal is Agent, action in Action::"read", resource)
when { context.scope.contains(context.action_name) };
"#;

fn set(policies: &str) -> ApplyPolicySet {
    ApplyPolicySet {
        policies: policies.into(),
        catalog: None,
        note: Some("test".into()),
    }
}

#[tokio::test]
async fn the_shipped_pack_is_in_force_until_a_set_is_applied_and_history_keeps_every_version() {
    let server = TestServer::start().await;
    let admin = server.admin_client();
    let shipped = admin.policy_set(None).await.unwrap();
    assert_eq!((shipped.version, shipped.current), (0, true));
    assert_eq!(
        (shipped.catalog.as_str(), shipped.policies.as_str()),
        (CATALOG, DEFAULT_POLICIES)
    );
    assert_eq!(shipped.policy_count, 13);

    assert_eq!(
        admin
            .validate_policies(&set(NARROW))
            .await
            .unwrap()
            .policy_count,
        1
    );
    let v1 = admin.apply_policies(&set(NARROW)).await.unwrap();
    assert_eq!((v1.version, v1.policy_count, v1.current), (1, 1, true));
    assert_eq!(
        server.state.policies.current().version(),
        1,
        "the node decides with it now"
    );
    let now = admin.policy_set(None).await.unwrap();
    assert_eq!((now.version, now.policies.as_str()), (1, NARROW));
    assert_eq!(now.created_by, Some(server.admin.id));

    // Rollback to the shipped default is a new version with its content.
    let v2 = admin.rollback_policies(0).await.unwrap();
    assert_eq!((v2.version, v2.policy_count), (2, 13));
    assert_eq!(
        admin.policy_set(Some(2)).await.unwrap().policies,
        DEFAULT_POLICIES
    );
    assert!(!admin.policy_set(Some(1)).await.unwrap().current);
    let history = admin
        .policy_history(&PolicyHistoryQuery::default())
        .await
        .unwrap();
    let versions: Vec<u64> = history.items.iter().map(|s| s.version).collect();
    assert_eq!(versions, [2, 1]);
    let events = admin
        .list_audit(&surety_api::admin::AuditQuery {
            kind: Some("policy.applied".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.items.len(), 2);
    assert_eq!(events.items[0].details["rolled_back_from"], 0);
    assert_eq!(
        admin.policy_set(Some(9)).await.unwrap_err().status(),
        Some(404)
    );
    // A node starting on this database decides with the newest set.
    let restarted = surety_server::AppState::new(
        server.state.config.as_ref().clone(),
        server.store().clone(),
        server.state.clock.clone(),
    )
    .await
    .unwrap();
    assert_eq!(restarted.policies.current().version(), 2);
}

#[tokio::test]
async fn an_invalid_set_is_refused_with_cedars_message_and_the_set_in_force_stays() {
    let server = TestServer::start().await;
    let admin = server.admin_client();
    admin.apply_policies(&set(NARROW)).await.unwrap();
    let before = change_count(&server).await;
    let cases = [
        (
            "@id(\"x\") permit(principal, action, resource) when { context.no_such_field };",
            "validate",
        ),
        ("permit(principal, action, resource);", "@id"),
        ("@id(\"x\") permit(principal, action", "policies"),
        (
            "@id(\"x\") permit(principal, action == Action::\"nope\", resource);",
            "validate",
        ),
    ];
    for (policies, expect) in cases {
        let refused = [
            admin.validate_policies(&set(policies)).await.unwrap_err(),
            admin.apply_policies(&set(policies)).await.unwrap_err(),
        ];
        for err in refused {
            assert_eq!(
                (err.status(), err.code()),
                (Some(400), Some("invalid_request")),
                "{policies}"
            );
            assert!(err.to_string().contains(expect), "{policies}: {err}");
        }
    }
    let bad_catalog = ApplyPolicySet {
        catalog: Some("action x in [nope];".into()),
        ..set(NARROW)
    };
    assert_eq!(
        admin
            .apply_policies(&bad_catalog)
            .await
            .unwrap_err()
            .status(),
        Some(400)
    );
    assert_eq!(
        admin.policy_set(None).await.unwrap().version,
        1,
        "the set in force stays"
    );
    assert_eq!(server.state.policies.current().version(), 1);
    assert_eq!(change_count(&server).await, before, "nothing was written");
}

#[tokio::test]
async fn only_admins_change_policies() {
    let server = TestServer::start().await;
    let (_, _, member) = server
        .enrolled_human("M", "m@example.com", Role::Member)
        .await;
    assert_eq!(
        member.policy_set(None).await.unwrap().version,
        0,
        "members may read"
    );
    assert_eq!(
        member
            .apply_policies(&set(NARROW))
            .await
            .unwrap_err()
            .status(),
        Some(403)
    );
    assert_eq!(
        member.rollback_policies(0).await.unwrap_err().status(),
        Some(403)
    );
    assert_eq!(
        member
            .validate_policies(&set(NARROW))
            .await
            .unwrap_err()
            .status(),
        Some(403)
    );
    assert_eq!(
        server
            .admin_client()
            .policy_set(None)
            .await
            .unwrap()
            .version,
        0
    );
}

#[tokio::test]
async fn another_node_picks_up_a_new_set_without_restarting() {
    let server = TestServer::start().await;
    let other = surety_server::AppState::new(
        server.state.config.as_ref().clone(),
        server.store().clone(),
        server.state.clock.clone(),
    )
    .await
    .unwrap();
    server
        .admin_client()
        .apply_policies(&set(NARROW))
        .await
        .unwrap();
    assert_eq!(other.policies.current().version(), 0, "not seen yet");
    let now = server.now();
    let every = time::Duration::seconds(10);
    let fresh = other
        .policies
        .fresh(other.store.as_ref(), now, every)
        .await
        .unwrap();
    assert_eq!(fresh.version(), 1);
    // Within the interval it does not ask again.
    server.admin_client().rollback_policies(0).await.unwrap();
    let again = other
        .policies
        .fresh(
            other.store.as_ref(),
            now + time::Duration::seconds(1),
            every,
        )
        .await
        .unwrap();
    assert_eq!(again.version(), 1);
    let later = other
        .policies
        .fresh(other.store.as_ref(), now + every, every)
        .await
        .unwrap();
    assert_eq!(later.version(), 2);
}
