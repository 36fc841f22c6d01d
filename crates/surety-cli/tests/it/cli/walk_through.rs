//! The README's walk-through, command by command.

use std::path::Path;

use serde_json::Value;

use super::*;

#[test]
fn the_walk_through_works_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap();
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");

    // init: creates the admin, a 0600 device key and a profile; refuses to run twice.
    let init = json(surety(
        &[
            "init",
            "--data-dir",
            data_s,
            "--issuer",
            &issuer,
            "--admin",
            "Ada",
            "--admin-email",
            "ada@example.com",
            "--json",
        ],
        &[],
    ));
    let profile = init["profile"].as_str().unwrap().to_owned();
    assert_eq!(mode(Path::new(init["key_file"].as_str().unwrap())), 0o600);
    assert_eq!(mode(&data), 0o700);
    let again = fails(surety(&["init", "--data-dir", data_s], &[]));
    assert!(again.contains("already initialized"), "{again}");

    // serve on that port.
    let server = Serve::start_on(
        port,
        &["--data-dir", data_s],
        &[
            ("SURETY_ISSUER", issuer.as_str()),
            ("SURETY_CIBA_INTERVAL", "1s"),
        ],
    );
    let admin = [("SURETY_PROFILE", profile.as_str())];

    let me = json(surety(&["whoami", "--json"], &admin));
    assert_eq!(
        (me["role"].as_str(), me["email"].as_str()),
        (Some("admin"), Some("ada@example.com"))
    );

    // An admin adds a human; the human enrolls from "their own machine".
    let added = json(surety(
        &[
            "human",
            "add",
            "Bob",
            "--email",
            "bob@example.com",
            "--json",
        ],
        &admin,
    ));
    let bob_id = added["human"]["id"].as_str().unwrap().to_owned();
    let code = added["enrollment"]["code"].as_str().unwrap().to_owned();
    let bob_dir = dir.path().join("bob");
    let bob_profile = bob_dir.join("profile.toml");
    let enrolled = json(surety(
        &[
            "enroll",
            "--server",
            &server.base,
            "--code",
            &code,
            "--out",
            bob_profile.to_str().unwrap(),
            "--json",
        ],
        &[],
    ));
    assert_eq!(enrolled["human_id"].as_str(), Some(bob_id.as_str()));
    assert_eq!(mode(&bob_dir.join("profile.jwk")), 0o600);
    let reuse = fails(surety(
        &[
            "enroll",
            "--server",
            &server.base,
            "--code",
            &code,
            "--out",
            bob_dir.join("p2.toml").to_str().unwrap(),
        ],
        &[],
    ));
    assert!(reuse.contains("invalid_request"), "{reuse}");
    let bob = [("SURETY_PROFILE", bob_profile.to_str().unwrap())];
    assert_eq!(json(surety(&["whoami", "--json"], &bob))["role"], "member");

    // Bob makes an agent key and registers the agent; only the public half leaves.
    let key_file = bob_dir.join("agent.jwk");
    let keygen = ok(surety(
        &["agent", "keygen", "--out", key_file.to_str().unwrap()],
        &bob,
    ));
    let public: Value = serde_json::from_str(&keygen).unwrap();
    assert!(
        public.get("d").is_none() && public["kty"] == "OKP",
        "{public}"
    );
    assert_eq!(mode(&key_file), 0o600);
    fails(surety(
        &["agent", "keygen", "--out", key_file.to_str().unwrap()],
        &bob,
    ));
    let agent_id = ok(surety(
        &[
            "agent",
            "register",
            "invoice-bot",
            "--public-key",
            key_file.to_str().unwrap(),
            "--purpose",
            "pays invoices",
            "--env",
            "production",
            "--label",
            "team=finance",
        ],
        &bob,
    ))
    .trim()
    .to_owned();
    assert!(agent_id.starts_with("agt_"), "{agent_id}");
    let listed = json(surety(&["agent", "list", "--json"], &bob));
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let table = ok(surety(&["agent", "list"], &admin));
    assert!(
        table.starts_with("ID ") && table.contains("invoice-bot"),
        "{table}"
    );

    // Suspension by an admin; only the owner reinstates.
    let suspended = json(surety(
        &[
            "agent",
            "suspend",
            &agent_id,
            "--reason",
            "odd traffic",
            "--json",
        ],
        &admin,
    ));
    assert_eq!(suspended["status"], "suspended");
    let refused = fails(surety(&["agent", "reinstate", &agent_id], &admin));
    assert!(
        refused.contains("403") && refused.contains("owner"),
        "{refused}"
    );
    assert_eq!(
        json(surety(&["agent", "reinstate", &agent_id, "--json"], &bob))["status"],
        "active"
    );
    let illegal = fails(surety(&["agent", "reinstate", &agent_id], &bob));
    assert!(illegal.contains("409"), "{illegal}");

    // Key rotation.
    let key2 = bob_dir.join("agent2.jwk");
    ok(surety(
        &[
            "agent",
            "keygen",
            "--out",
            key2.to_str().unwrap(),
            "--alg",
            "ES256",
        ],
        &bob,
    ));
    let rotated = json(surety(
        &[
            "agent",
            "rotate-key",
            &agent_id,
            "--public-key",
            key2.to_str().unwrap(),
            "--json",
        ],
        &bob,
    ));
    let statuses: Vec<&str> = rotated["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["retired", "active"]);
    let shown = ok(surety(&["agent", "show", &agent_id], &bob));
    assert!(
        shown.contains("team=finance") && shown.contains("retired"),
        "{shown}"
    );

    // Bob delegates bounded authority to the agent; it mints a token with the CLI; a
    // resource server introspects it; revoking the grant ends it at once.
    let grant = json(surety(
        &[
            "grant",
            "create",
            "--agent",
            &agent_id,
            "--scope",
            "crm.read",
            "--scope",
            "payments.transfer",
            "--resource",
            "https://crm.example",
            "--expires",
            "1h",
            "--constraint",
            "max_amount=100",
            "--constraint",
            "currency=EUR",
            "--json",
        ],
        &bob,
    ));
    assert_eq!(grant["status"], "active");
    assert_eq!(
        grant["constraints"],
        serde_json::json!({"max_amount": 100, "currency": "EUR"})
    );
    let grant_id = grant["id"].as_str().unwrap().to_owned();
    assert!(ok(surety(&["grant", "list"], &bob)).contains(&grant_id));
    let rs_key = dir.path().join("crm.jwk");
    ok(surety(
        &["agent", "keygen", "--out", rs_key.to_str().unwrap()],
        &admin,
    ));
    let rs_id = ok(surety(
        &[
            "resource",
            "add",
            "--audience",
            "https://crm.example",
            "--public-key",
            rs_key.to_str().unwrap(),
        ],
        &admin,
    ))
    .trim()
    .to_owned();
    assert!(rs_id.starts_with("rsv_"), "{rs_id}");
    let minted = json(surety(
        &[
            "token",
            "--key",
            key2.to_str().unwrap(),
            "--agent",
            &agent_id,
            "--grant",
            &grant_id,
            "--server",
            &server.base,
            "--scope",
            "crm.read",
        ],
        &[],
    ));
    assert_eq!(
        (minted["token_type"].as_str(), minted["scope"].as_str()),
        (Some("DPoP"), Some("crm.read"))
    );
    let token = minted["access_token"].as_str().unwrap().to_owned();
    let verifier = surety_sdk::ResourceVerifier::new(
        &server.base,
        "https://crm.example",
        rs_id.parse().unwrap(),
        surety_sdk::keyfile::read(&rs_key).unwrap(),
    )
    .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let jti = {
        let payload = token.split('.').nth(1).unwrap();
        let claims: Value =
            serde_json::from_slice(&surety_jose::b64::decode(payload).unwrap()).unwrap();
        assert_eq!(claims["sub"].as_str(), Some(bob_id.as_str()));
        assert_eq!(claims["act"]["sub"].as_str(), Some(agent_id.as_str()));
        claims["jti"].as_str().unwrap().to_owned()
    };
    assert!(rt.block_on(verifier.is_active(&token, &jti)).unwrap());
    let seen = json(surety(
        &[
            "resource",
            "introspect",
            "--id",
            &rs_id,
            "--key",
            rs_key.to_str().unwrap(),
            "--audience",
            "https://crm.example",
            "--server",
            &server.base,
            &token,
        ],
        &[],
    ));
    assert_eq!(
        (seen["active"].as_bool(), seen["grant_id"].as_str()),
        (Some(true), Some(grant_id.as_str()))
    );
    // The resource server asks whether the agent may act (policy in force: the shipped pack),
    // with a token carrying the grant's whole scope.
    let full = json(surety(
        &[
            "token",
            "--key",
            key2.to_str().unwrap(),
            "--agent",
            &agent_id,
            "--grant",
            &grant_id,
            "--server",
            &server.base,
        ],
        &[],
    ))["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let decide = |token: &str, amount: &str, approval_token: Option<&str>| {
        let amount = format!("amount={amount}");
        let mut args = vec![
            "decide",
            "--token",
            token,
            "--action",
            "payments.transfer",
            "--resource",
            "Resource:acct-7",
            "--arg",
            &amount,
            "--arg",
            "currency=EUR",
            "--id",
            &rs_id,
            "--key",
            rs_key.to_str().unwrap(),
            "--audience",
            "https://crm.example",
            "--server",
            &server.base,
            "--json",
        ];
        if let Some(t) = approval_token {
            args.extend(["--approval-token", t]);
        }
        json(surety(&args, &[]))
    };
    assert_eq!(decide(&full, "50", None)["decision"], "allow");
    let over = decide(&full, "500", None);
    assert_eq!(
        (over["decision"].as_str(), over["policy_ids"][0].as_str()),
        (Some("deny"), Some("forbid-over-max-amount"))
    );

    // Step-up: with room for large transfers, one above 1 000 needs Bob's approval. The agent
    // asks him (CIBA), he answers with his device key, the agent gets a one-time approval
    // token, and the resource server lets exactly that transfer through, once.
    let big = json(surety(
        &[
            "grant",
            "create",
            "--agent",
            &agent_id,
            "--scope",
            "payments.transfer",
            "--resource",
            "https://crm.example",
            "--expires",
            "1h",
            "--constraint",
            "max_amount=5000",
            "--json",
        ],
        &bob,
    ));
    let big_token = json(surety(
        &[
            "token",
            "--key",
            key2.to_str().unwrap(),
            "--agent",
            &agent_id,
            "--grant",
            big["id"].as_str().unwrap(),
            "--server",
            &server.base,
        ],
        &[],
    ))["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let stepped = decide(&big_token, "2000", None);
    assert_eq!(stepped["decision"], "step_up", "{stepped}");
    let details = stepped["step_up"]["authorization_details"].to_string();
    let agent_args = [
        "--key",
        key2.to_str().unwrap(),
        "--agent",
        &agent_id,
        "--server",
        &server.base,
    ];
    let mut request = vec!["approval", "request"];
    request.extend(agent_args);
    request.extend([
        "--login-hint",
        "bob@example.com",
        "--details",
        &details,
        "--message",
        "Pay 2000 EUR from acct-7",
    ]);
    let asked = json(surety(&request, &[]));
    let auth_req_id = asked["auth_req_id"].as_str().unwrap().to_owned();
    let inbox = json(surety(&["approve", "list", "--json"], &bob));
    let apr = inbox["items"][0]["id"].as_str().unwrap().to_owned();
    let shown = surety(&["approve", "show", &apr], &bob);
    let text = String::from_utf8_lossy(&shown.stderr).into_owned();
    assert!(
        text.contains("Pay 2000 EUR from acct-7") && text.contains("\"amount\":2000"),
        "{text}"
    );
    let answered = json(surety(
        &["approve", "approve", &apr, "--reason", "expected", "--json"],
        &bob,
    ));
    assert_eq!(answered["status"], "approved", "{answered}");
    let mut wait = vec!["approval", "wait"];
    wait.extend(agent_args);
    wait.extend(["--interval", "1", &auth_req_id]);
    let approval = json(surety(&wait, &[]));
    let approval_token = approval["access_token"].as_str().unwrap().to_owned();
    let with_approval = || decide(&big_token, "2000", Some(&approval_token));
    assert_eq!(with_approval()["decision"], "allow");
    assert_eq!(with_approval()["decision"], "deny");

    // The load generators drive the same flow (Surety's form, and the generic one that any
    // authorization server understands); the crypto baseline runs offline.
    let key2_s = key2.to_str().unwrap();
    let load = json(surety(
        &[
            "bench",
            "token-exchange",
            "--server",
            &server.base,
            "--client-id",
            &agent_id,
            "--key",
            key2_s,
            "--grant",
            &grant_id,
            "--param",
            "resource=https://crm.example",
            "--concurrency",
            "2",
            "--duration",
            "1s",
            "--json",
        ],
        &[],
    ));
    assert!(
        load["ok"].as_u64().unwrap() > 0 && load["errors"] == serde_json::json!({}),
        "{load}"
    );
    let generic = json(surety(
        &[
            "bench",
            "token-exchange",
            "--token-endpoint",
            &format!("{}/oauth2/token", server.base),
            "--client-id",
            &agent_id,
            "--key",
            key2_s,
            "--param",
            "grant_type=urn:ietf:params:oauth:grant-type:token-exchange",
            "--param",
            &format!("subject_token={grant_id}"),
            "--param",
            "subject_token_type=urn:surety:params:oauth:token-type:grant",
            "--concurrency",
            "1",
            "--duration",
            "500ms",
            "--json",
        ],
        &[],
    ));
    assert!(
        generic["ok"].as_u64().unwrap() > 0 && generic["errors"] == serde_json::json!({}),
        "{generic}"
    );
    let introspections = json(surety(
        &[
            "bench",
            "introspect",
            "--server",
            &server.base,
            "--client-id",
            &rs_id,
            "--key",
            rs_key.to_str().unwrap(),
            "--token",
            &token,
            "--concurrency",
            "2",
            "--duration",
            "500ms",
            "--json",
        ],
        &[],
    ));
    assert!(
        introspections["ok"].as_u64().unwrap() > 0
            && introspections["errors"] == serde_json::json!({}),
        "{introspections}"
    );
    let decisions = json(surety(
        &[
            "bench",
            "decide",
            "--server",
            &server.base,
            "--client-id",
            &rs_id,
            "--key",
            rs_key.to_str().unwrap(),
            "--audience",
            "https://crm.example",
            "--token",
            &full,
            "--agent",
            &agent_id,
            "--action",
            "payments.transfer",
            "--concurrency",
            "2",
            "--duration",
            "500ms",
            "--json",
        ],
        &[],
    ));
    assert!(
        decisions["ok"].as_u64().unwrap() > 0 && decisions["errors"] == serde_json::json!({}),
        "{decisions}"
    );
    let approvals = json(surety(
        &[
            "bench",
            "approvals",
            "--rounds",
            "1",
            "--pending",
            "3",
            "--json",
        ],
        &admin,
    ));
    assert_eq!(
        (
            approvals["answer_to_token_ms"].as_array().map(Vec::len),
            approvals["pending"].as_u64()
        ),
        (Some(1), Some(3)),
        "{approvals}"
    );
    let audit_verify = json(surety(
        &["bench", "audit-verify", "--events", "1000", "--json"],
        &[],
    ));
    assert_eq!(audit_verify["events"], 1000, "{audit_verify}");
    let crypto = json(surety(
        &["bench", "crypto", "--duration", "50ms", "--json"],
        &[],
    ));
    assert!(
        crypto[0]["token_limit_per_second"].as_f64().unwrap() > 0.0,
        "{crypto}"
    );

    let revoked = json(surety(
        &["grant", "revoke", &grant_id, "--reason", "done", "--json"],
        &bob,
    ));
    assert_eq!(revoked["status"], "revoked");
    assert!(!rt.block_on(verifier.is_active(&token, &jti)).unwrap());
    let refused = fails(surety(
        &[
            "token",
            "--key",
            key2.to_str().unwrap(),
            "--agent",
            &agent_id,
            "--grant",
            &grant_id,
            "--server",
            &server.base,
        ],
        &[],
    ));
    assert!(refused.contains("invalid_grant"), "{refused}");
    // Signing keys: one to start with; rotation keeps the old one published.
    let keys = json(surety(&["keys", "list", "--json"], &admin));
    assert_eq!(keys.as_array().unwrap().len(), 1);
    ok(surety(&["keys", "rotate"], &admin));
    let keys = json(surety(&["keys", "list", "--json"], &admin));
    assert_eq!(
        keys.as_array()
            .unwrap()
            .iter()
            .filter(|k| k["published"] == true)
            .count(),
        2
    );

    // Policies: the shipped pack is in force; a new set is validated, diffed, applied,
    // listed, and rolled back; an invalid one is refused and changes nothing.
    let shown = ok(surety(&["policy", "show"], &admin));
    assert!(shown.contains("@id(\"permit-in-scope\")"), "{shown}");
    let reads = dir.path().join("reads.cedar");
    std::fs::write(
        &reads,
        "@id(\"permit-reads\")\npermit (principal is Agent, action in Action::\"read\", resource)\nwhen { context.scope.contains(context.action_name) };\n",
    )
    .unwrap();
    assert!(
        ok(surety(
            &["policy", "validate", reads.to_str().unwrap()],
            &admin
        ))
        .contains("valid: 1")
    );
    let diff = ok(surety(&["policy", "diff", reads.to_str().unwrap()], &admin));
    assert!(
        diff.contains("+ @id(\"permit-reads\")") && diff.contains("- @id(\"permit-in-scope\")"),
        "{diff}"
    );
    // What-if: the recorded decisions (the transfers above and the benchmark's denials)
    // replayed against the reads-only set — the small transfer, the step-up and the approved
    // transfer would now all be denied.
    let what_if = json(surety(
        &[
            "policy",
            "test",
            reads.to_str().unwrap(),
            "--against",
            "last:100000",
            "--json",
        ],
        &admin,
    ));
    assert!(what_if["replayed"].as_u64().unwrap() > 2, "{what_if}");
    let changes = what_if["changes"].as_array().unwrap();
    // Newest first: the approved transfer, its step-up, the small transfer.
    let seen: Vec<(&str, &str, &str)> = changes
        .iter()
        .map(|c| {
            (
                c["was"].as_str().unwrap(),
                c["would_be"].as_str().unwrap(),
                c["action"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("allow", "deny", "payments.transfer"),
            ("step_up", "deny", "payments.transfer"),
            ("allow", "deny", "payments.transfer"),
        ],
        "{what_if}"
    );
    let table = ok(surety(
        &[
            "policy",
            "test",
            reads.to_str().unwrap(),
            "--against",
            "last:100000",
        ],
        &admin,
    ));
    assert!(table.contains("3 would change"), "{table}");
    let broken = dir.path().join("broken.cedar");
    std::fs::write(
        &broken,
        "@id(\"x\") permit (principal, action, resource) when { context.nope };",
    )
    .unwrap();
    let refused = fails(surety(
        &["policy", "apply", broken.to_str().unwrap()],
        &admin,
    ));
    assert!(
        refused.contains("400") && refused.contains("validate"),
        "{refused}"
    );
    let member_refused = fails(surety(&["policy", "apply", reads.to_str().unwrap()], &bob));
    assert!(member_refused.contains("403"), "{member_refused}");
    let applied = json(surety(
        &[
            "policy",
            "apply",
            reads.to_str().unwrap(),
            "--note",
            "reads only",
            "--json",
        ],
        &admin,
    ));
    assert_eq!(
        (
            applied["version"].as_u64(),
            applied["policy_count"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let rolled = json(surety(&["policy", "rollback", "0", "--json"], &admin));
    assert_eq!(rolled["version"], 2);
    let history = ok(surety(&["policy", "history"], &admin));
    assert!(
        history.contains("reads only") && history.contains("rollback to version 0"),
        "{history}"
    );

    // The audit trail names who did what.
    let audit = json(surety(
        &["audit", "list", "--target", &agent_id, "--json"],
        &admin,
    ));
    let kinds: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        ["agent.reinstated", "agent.suspended", "agent.registered"]
    );
    let human_audit = ok(surety(
        &["audit", "list", "--type", "agent.key_added", "--limit", "5"],
        &admin,
    ));
    assert!(human_audit.contains("agent.key_added"), "{human_audit}");

    // Off-boarding Bob suspends his agent and locks him out.
    let off = json(surety(
        &["human", "deactivate", &bob_id, "--reason", "left", "--json"],
        &admin,
    ));
    assert_eq!(off["status"], "deactivated");
    assert_eq!(
        json(surety(&["agent", "show", &agent_id, "--json"], &admin))["status"],
        "suspended"
    );
    let locked = fails(surety(&["whoami"], &bob));
    assert!(locked.contains("invalid_grant"), "{locked}");

    // The inventory names Bob's agent as orphaned: in the report, the table and a CSV file.
    let report = json(surety(
        &["inventory", "report", "--finding", "orphaned", "--json"],
        &admin,
    ));
    let orphaned: Vec<&str> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["agent"].as_str().unwrap())
        .collect();
    assert_eq!(orphaned, [agent_id.as_str()], "{report}");
    let table = ok(surety(
        &["inventory", "agents", "--finding", "orphaned"],
        &admin,
    ));
    assert!(
        table.contains(&agent_id) && table.contains("(deactivated)"),
        "{table}"
    );
    let csv = dir.path().join("inventory.csv");
    ok(surety(
        &[
            "inventory",
            "agents",
            "--format",
            "csv",
            "--out",
            csv.to_str().unwrap(),
        ],
        &admin,
    ));
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert!(csv.starts_with("agent_id,name,"), "{csv}");
    assert!(
        csv.lines()
            .any(|l| l.starts_with(&agent_id) && l.contains("orphaned")),
        "{csv}"
    );

    // The whole log, exported and verified offline with the log's key.
    export_and_verify(dir.path(), &admin);

    // Graceful shutdown on SIGTERM, with JSON logs carrying request ids.
    let (status, log) = server.terminate();
    assert!(status.success(), "exit {status}: {log}");
    let lines: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "finished processing request")
        .collect();
    assert!(access.len() > 10, "one access-log line per request: {log}");
    assert!(
        access
            .iter()
            .all(|l| l["span"]["request_id"].is_string() && l["fields"]["status"].is_number()),
        "{log}"
    );
    assert!(
        lines.iter().any(|l| l["fields"]["message"] == "stopped"),
        "{log}"
    );
}
