//! The inventory, agent and audit pages in a real browser (Chromium, signed in with a passkey
//! on a virtual authenticator), over an organisation ten days old.

use std::sync::Arc;

use serde_json::{Value, json};
use surety_core::clock::ManualClock;
use surety_core::human::Role;
use surety_testkit::{Options, TestServer};
use time::{Duration, OffsetDateTime};

use super::{chromium, ensure_npm_packages, node};
use crate::api::inventory::{busy_agent, decide};
use crate::support::{call, token_for};

#[tokio::test]
async fn inventory_agent_and_audit_pages_in_chromium() {
    let package_task = tokio::task::spawn_blocking(ensure_npm_packages);
    let browser = tokio::task::spawn_blocking(chromium).await.unwrap();
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let server = TestServer::start_with(Options {
        localhost: true,
        clock: clock.clone(),
        config: vec![("inventory_unused_after", "7d".into())],
        ..Options::default()
    })
    .await;
    // Day 0: a busy agent reads a customer; an idle one; a member's agent, then the member
    // leaves.
    let d = busy_agent(&server).await;
    server.agent("idle").await;
    let (leaver, _, _) = server
        .enrolled_human("Lee", "lee@example.com", Role::Member)
        .await;
    server.agent_owned_by("orphan", Some(leaver.id)).await;
    server
        .admin_client()
        .human_action(leaver.id, "deactivate", Some("left".into()))
        .await
        .unwrap();
    assert_eq!(
        decide(&server, &d, "crm.read_customer", json!({})).await,
        "allow"
    );
    // Day 10: a transfer. From here on requests carry proofs made at the server's time.
    clock.advance(Duration::days(10));
    let transfer = json!({"amount": 100, "currency": "EUR"});
    assert_eq!(
        decide(&server, &d, "payments.transfer", transfer).await,
        "allow"
    );
    let admin = server.admin.id.to_string();
    let admin_key = server.admin_key();
    let token = token_for(&server, &admin_key, &admin).await;
    let r = call(
        &server,
        &admin_key,
        &token,
        "GET",
        "/v1/audit/checkpoint",
        None,
    )
    .await;
    assert_eq!(r.status(), 200);
    let path = format!("/v1/humans/{admin}/invite");
    let r = call(&server, &admin_key, &token, "POST", &path, Some(json!({}))).await;
    assert_eq!(r.status(), 201, "invite");
    let invite: Value = r.json().await.unwrap();

    package_task.await.unwrap();
    let mut env = vec![
        ("SURETY_BASE", server.base.clone()),
        (
            "SURETY_INVITE_URL",
            invite["url"].as_str().unwrap().to_owned(),
        ),
        ("SURETY_EMAIL", server.admin.email.clone()),
        ("SURETY_AGENT_ID", d.agent.id.to_string()),
        ("CHROMIUM", browser),
    ];
    // Set to a folder to refresh the UI screenshots in docs/.
    if let Ok(dir) = std::env::var("SURETY_SCREENSHOTS") {
        env.push(("SURETY_SCREENSHOTS", dir));
    }
    let seen = node("inventory.mjs", env).await;
    println!("browser observed: {seen}");

    assert_eq!(seen["agents"], 3, "{seen}");
    assert_eq!(seen["counts"]["orphaned"], 1, "{seen}");
    assert_eq!(seen["counts"]["no_grant"], 1, "{seen}");
    assert_eq!(
        seen["counts"]["unused_permission"], 1,
        "one agent has some: {seen}"
    );
    assert!(
        seen["orphan_row"]
            .as_str()
            .is_some_and(|r| r.contains("lee@example.com")),
        "{seen}"
    );
    assert_eq!(seen["no_grant"], json!(["idle"]), "{seen}");
    assert_eq!(seen["csv"]["status"], 200, "{seen}");
    assert!(
        seen["csv"]["type"]
            .as_str()
            .unwrap()
            .starts_with("text/csv"),
        "{seen}"
    );
    assert_eq!(
        seen["csv"]["lines"], 2,
        "a header and the one agent filtered: {seen}"
    );
    assert_eq!(seen["scopes"].as_array().unwrap().len(), 3, "{seen}");
    assert_eq!(
        seen["unused"],
        json!(["crm.read_customer", "files.share_external"]),
        "used 10 days ago, and never: {seen}"
    );
    assert_eq!(seen["decisions"], 2, "{seen}");
    assert!(
        seen["refused_without_reason"]
            .as_str()
            .is_some_and(|s| s.contains("reason")),
        "{seen}"
    );
    assert_eq!(seen["after_suspend"], "suspended", "{seen}");
    assert_eq!(
        seen["actions_left"], 0,
        "nothing follows a revocation: {seen}"
    );
    assert_eq!(seen["checkpoint"], "Signed checkpoint verified", "{seen}");
    let revoked = seen["revoked_events"].as_array().unwrap();
    assert_eq!(revoked.len(), 1, "{seen}");
    assert!(
        revoked[0].as_str().unwrap().contains(&admin),
        "by the admin: {seen}"
    );

    // The server agrees: revoked, by the admin, with the reasons typed.
    let events = server
        .store()
        .list_events(
            surety_core::audit::AuditScope::All,
            &surety_core::audit::AuditFilter {
                agent: Some(d.agent.id),
                ..Default::default()
            },
            &surety_core::page::PageRequest::first(50),
        )
        .await
        .unwrap();
    let reasons: Vec<(&str, &str)> = events
        .items
        .iter()
        .filter_map(|e| Some((e.event.kind.as_str(), e.event.details["reason"].as_str()?)))
        .collect();
    assert_eq!(
        reasons,
        [
            ("agent.revoked", "no longer needed"),
            ("agent.suspended", "under review")
        ]
    );
    server.stop().await;
}
