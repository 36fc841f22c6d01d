//! The inventory against a real server whose clock the test moves: what each report finds,
//! under the configured thresholds and under overrides, as JSON and CSV; who sees what; and
//! what is refused.

use serde_json::{Value, json};
use surety_api::credentials::CreateGrant;
use surety_core::human::Role;
use surety_jose::PrivateJwk;
use surety_testkit::{TestServer, http};
use time::Duration;

use super::decisions::{agent_token, ask, decisions_token};
use crate::support::{CRM, Delegation, expect_error, token_for};

const SCOPES: [&str; 3] = [
    "crm.read_customer",
    "payments.transfer",
    "files.share_external",
];

pub(crate) async fn decide(
    server: &TestServer,
    d: &Delegation,
    action: &str,
    args: Value,
) -> String {
    let rs = decisions_token(server, d).await;
    let agent = agent_token(server, d).await;
    let body = json!({"token": agent, "action": action,
        "resource": {"type": "Resource", "id": "acct-1"}, "arguments": args});
    let r = ask(server, d, &rs, "/v1/decisions", body).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    v["decision"].as_str().unwrap().to_owned()
}

/// GETs `path?query` as `human` with `key`, proofs made at the server's time.
pub(crate) async fn get(
    server: &TestServer,
    key: &PrivateJwk,
    human: &str,
    path: &str,
    query: &[(&str, &str)],
) -> reqwest::Response {
    let token = token_for(server, key, human).await;
    let proof = server.proof(key, "GET", path, Some(&token), None);
    http()
        .get(server.url(path))
        .query(query)
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", proof)
        .send()
        .await
        .unwrap()
}

async fn get_json(
    server: &TestServer,
    key: &PrivateJwk,
    human: &str,
    path: &str,
    query: &[(&str, &str)],
) -> Value {
    let r = get(server, key, human, path, query).await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

fn kinds(agent: &Value) -> Vec<&str> {
    agent["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect()
}

fn by_name<'a>(inventory: &'a Value, name: &str) -> &'a Value {
    inventory["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no agent `{name}` in {inventory}"))
}

/// An agent of the first admin with a 29-day grant of three scopes on CRM (transfers up to
/// 5000 EUR), CRM registered as a resource server.
pub(crate) async fn busy_agent(server: &TestServer) -> Delegation {
    let (busy, busy_key) = server.agent("busy").await;
    let grant = server
        .admin_client()
        .create_grant(&CreateGrant {
            agent: busy.id,
            principal: None,
            scopes: SCOPES.map(String::from).to_vec(),
            resources: vec![CRM.into()],
            constraints: Some(json!({"max_amount": 5000, "currency": "EUR"})),
            max_delegation_depth: None,
            expires_at: None,
            expires_in: Some(29 * 86_400),
        })
        .await
        .unwrap();
    let (rs, rs_key) = server.resource_server(CRM).await;
    Delegation {
        agent: busy,
        key: busy_key,
        grant,
        rs,
        rs_key,
    }
}

/// Days 0, 5 and 10 of an organisation: a busy agent that uses two of its three scopes, then
/// one; an idle agent without a grant; an agent whose owner leaves; a revoked one.
#[tokio::test]
async fn the_inventory_finds_what_needs_attention() {
    let (server, clock) = TestServer::with_manual_clock().await;
    let admin = server.admin.id.to_string();
    let admin_key = server.admin_key();
    let d = busy_agent(&server).await;
    server.agent("idle").await;
    let (gone, _) = server.agent("gone").await;
    server
        .admin_client()
        .agent_action(gone.id, "revoke", Some("decommissioned".into()))
        .await
        .unwrap();
    let (leaver, _, _) = server
        .enrolled_human("Lee", "lee@example.com", Role::Member)
        .await;
    let (viewer, viewer_key, _) = server
        .enrolled_human("Vi", "vi@example.com", Role::Member)
        .await;
    for (name, owner) in [("orphan", leaver.id), ("vis", viewer.id)] {
        server.agent_owned_by(name, Some(owner)).await;
    }
    server
        .admin_client()
        .human_action(leaver.id, "deactivate", Some("left".into()))
        .await
        .unwrap();

    // Day 0: two scopes exercised, one attempt outside the grant.
    let day0 = server.now();
    let transfer = json!({"amount": 100, "currency": "EUR"});
    assert_eq!(
        decide(&server, &d, "crm.read_customer", json!({})).await,
        "allow"
    );
    assert_eq!(
        decide(&server, &d, "payments.transfer", transfer.clone()).await,
        "allow"
    );
    assert_eq!(
        decide(&server, &d, "iam.grant_role", json!({})).await,
        "deny"
    );
    // Day 5: only transfers.
    clock.advance(Duration::days(5));
    assert_eq!(
        decide(&server, &d, "payments.transfer", transfer).await,
        "allow"
    );
    // Day 10.
    clock.advance(Duration::days(5));

    let path = "/v1/inventory/agents";
    let defaults = get_json(&server, &admin_key, &admin, path, &[]).await;
    assert_eq!(defaults["thresholds"]["unused_after"], 14 * 86_400);
    assert_eq!(defaults["items"].as_array().unwrap().len(), 5);
    let busy = by_name(&defaults, "busy");
    // Under the defaults (30 days, 90-day keys, 7-day windows) the busy agent is fine…
    assert_eq!(kinds(busy), Vec::<&str>::new(), "{busy}");
    assert_eq!(busy["owner"]["email"], server.admin.email);
    assert_eq!(busy["keys"][0]["status"], "active");
    let usage = &busy["grants"][0]["usage"];
    let at = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    assert_eq!(
        usage,
        &json!([
            {"scope": "crm.read_customer", "uses": 1, "last_used_at": at(day0)},
            {"scope": "files.share_external", "uses": 0},
            {"scope": "payments.transfer", "uses": 2, "last_used_at": at(day0 + Duration::days(5))},
        ])
    );
    // …the idle one has nothing to do and never did anything…
    assert_eq!(kinds(by_name(&defaults, "idle")), ["no_grant"]);
    // …the leaver's agent was suspended with its owner: orphaned…
    let orphan = by_name(&defaults, "orphan");
    assert_eq!(kinds(orphan), ["orphaned", "suspended"]);
    assert_eq!(orphan["owner"]["status"], "deactivated");
    // …and a revoked agent can do nothing, so it needs nothing.
    assert_eq!(kinds(by_name(&defaults, "gone")), Vec::<&str>::new());

    // Tighter thresholds, as an IAM lead would ask for them.
    let tight = [
        ("unused_after", "7d"),
        ("stale_after", "7d"),
        ("key_max_age", "7d"),
        ("expiring_within", "20d"),
        ("recent", "30d"),
    ];
    let inv = get_json(&server, &admin_key, &admin, path, &tight).await;
    let busy = by_name(&inv, "busy");
    assert_eq!(
        kinds(busy),
        [
            "stale_key",
            "unused_permission",
            "unused_permission",
            "expiring_grant",
            "recent_denials"
        ],
        "{busy}"
    );
    let unused: Vec<&str> = busy["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "unused_permission")
        .map(|f| f["subject"].as_str().unwrap())
        .collect();
    let g = d.grant.id;
    assert_eq!(
        unused,
        [
            format!("{g} crm.read_customer"),
            format!("{g} files.share_external")
        ]
    );
    assert_eq!(busy["recent"]["denied"], 1);
    assert_eq!(busy["recent"]["allowed"], 3);
    assert_eq!(busy["recent"]["tokens"], 4);
    assert_eq!(
        kinds(by_name(&inv, "idle")),
        ["no_grant", "stale_agent", "stale_key"]
    );

    // Only the agents with a finding of one kind.
    let only = get_json(
        &server,
        &admin_key,
        &admin,
        path,
        &[("finding", "no_grant")],
    )
    .await;
    // (Registered within the same millisecond of the test's clock: in either order.)
    let mut names: Vec<&str> = only["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["idle", "vis"]);

    // The report: every finding, counted by kind, filtered by kind.
    let report = get_json(&server, &admin_key, &admin, "/v1/inventory/report", &tight).await;
    assert_eq!(report["agents"], 5);
    assert_eq!(report["summary"]["unused_permission"], 2);
    assert_eq!(report["summary"]["orphaned"], 1);
    assert_eq!(report["summary"]["stale_key"], 4);
    let first = &report["items"][0];
    assert_eq!(
        (first["kind"].as_str(), first["agent_name"].as_str()),
        (Some("orphaned"), Some("orphan"))
    );
    assert_eq!(first["owner_email"], "lee@example.com");
    let unused = get_json(
        &server,
        &admin_key,
        &admin,
        "/v1/inventory/report",
        &[("finding", "unused_permission"), ("unused_after", "7d")],
    )
    .await;
    assert_eq!(unused["items"].as_array().unwrap().len(), 2);
    assert_eq!(
        unused["summary"]["no_grant"], 2,
        "the summary counts every kind"
    );
    assert!(
        unused["items"][0]["detail"]
            .as_str()
            .unwrap()
            .contains("remove it from the grant")
    );

    // CSV, by parameter or by content negotiation.
    let r = get(
        &server,
        &admin_key,
        &admin,
        "/v1/inventory/report",
        &[("format", "csv"), ("unused_after", "7d")],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = r.text().await.unwrap();
    let lines: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "kind,agent_id,agent_name,owner_email,subject,since,detail"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("unused_permission,") && l.contains(" files.share_external,"))
    );
    let token = token_for(&server, &admin_key, &admin).await;
    let csv = http()
        .get(server.url(path))
        .header("Authorization", format!("DPoP {token}"))
        .header(
            "DPoP",
            server.proof(&admin_key, "GET", path, Some(&token), None),
        )
        .header("Accept", "text/csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv.starts_with("agent_id,name,environment,status,owner_email"),
        "{csv}"
    );
    assert_eq!(
        csv.matches("\r\n").count(),
        6,
        "a header and five agents: {csv}"
    );

    // A member sees their own agents only, and may not ask for anyone else's.
    let viewer_id = viewer.id.to_string();
    let own = get_json(&server, &viewer_key, &viewer_id, path, &[]).await;
    assert_eq!(own["items"].as_array().unwrap().len(), 1);
    assert_eq!(own["items"][0]["name"], "vis");
    let r = get(
        &server,
        &viewer_key,
        &viewer_id,
        path,
        &[("owner", admin.as_str())],
    )
    .await;
    expect_error(r, 403, "forbidden").await;

    // Bad input is named.
    for (query, what) in [
        (("finding", "nope"), "finding"),
        (("unused_after", "soon"), "unused_after"),
        (("recent", "0s"), "recent"),
        (("format", "xml"), "format"),
        (("status", "asleep"), "status"),
        (("colour", "red"), "colour"),
    ] {
        let r = get(&server, &admin_key, &admin, path, &[query]).await;
        let body = expect_error(r, 400, "invalid_request").await;
        assert!(
            body["error_description"].as_str().unwrap().contains(what),
            "{body}"
        );
    }
    let r = http().get(server.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    server.stop().await;
}
