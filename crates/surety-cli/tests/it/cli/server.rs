//! Starting, configuring, stopping and crashing the server.

use std::path::Path;

use super::*;

#[test]
fn serve_initialises_an_empty_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("fresh");
    let server = Serve::start(&["--data-dir", data.to_str().unwrap()], &[]);
    let profile = data.join("admin-profile.toml");
    wait_for_file(&profile);
    let me = json(surety(
        &["whoami", "--json"],
        &[("SURETY_PROFILE", profile.to_str().unwrap())],
    ));
    assert_eq!(me["role"], "admin");
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("admin-profile.toml"),
        "prints how to use the profile: {log}"
    );
}

#[test]
fn config_check_names_the_offending_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("surety.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:9\"\nacess_token_ttl = \"5m\"\n",
    )
    .unwrap();
    let err = fails(surety(&["config", "check", file.to_str().unwrap()], &[]));
    assert!(err.contains("`acess_token_ttl`"), "{err}");
    std::fs::write(&file, "access_token_ttl = \"5m\"\n").unwrap();
    ok(surety(&["config", "check", file.to_str().unwrap()], &[]));
    let err = fails(surety(
        &["config", "check", file.to_str().unwrap()],
        &[("SURETY_MAX_BODY_BYTES", "huge")],
    ));
    assert!(err.contains("SURETY_MAX_BODY_BYTES"), "{err}");
}

#[test]
fn the_configuration_reference_is_up_to_date() {
    let generated = ok(surety(&["config", "docs"], &[]));
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/configuration.md"),
    )
    .unwrap();
    assert_eq!(
        committed, generated,
        "run `surety config docs > docs/configuration.md`"
    );
}

#[test]
fn commands_need_a_profile_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    let out = cmd
        .env_clear()
        .current_dir(dir.path())
        .args(["agent", "list"])
        .output()
        .unwrap();
    let err = fails(out);
    assert!(
        err.contains("--profile") && err.contains("SURETY_PROFILE"),
        "{err}"
    );
}

#[test]
fn the_server_runs_on_postgresql_too() {
    // Both backends serve the same API; this walks the core of it on PostgreSQL.
    if !surety_testkit::postgres_configured() {
        eprintln!(
            "PostgreSQL run skipped: set {}",
            surety_testkit::TEST_DATABASE_URL_ENV
        );
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let schema = runtime
        .block_on(surety_store::testing::PgTestSchema::create())
        .unwrap()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pg");
    let server = Serve::start(
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--database-url",
            &schema.url,
        ],
        &[],
    );
    let profile = data.join("admin-profile.toml");
    wait_for_file(&profile);
    let admin = [("SURETY_PROFILE", profile.to_str().unwrap())];
    let key = dir.path().join("a.jwk");
    ok(surety(
        &["agent", "keygen", "--out", key.to_str().unwrap()],
        &admin,
    ));
    let id = ok(surety(
        &[
            "agent",
            "register",
            "pg-bot",
            "--public-key",
            key.to_str().unwrap(),
        ],
        &admin,
    ))
    .trim()
    .to_owned();
    assert_eq!(
        json(surety(
            &["agent", "revoke", &id, "--reason", "test", "--json"],
            &admin
        ))["status"],
        "revoked"
    );
    let events = json(surety(&["audit", "list", "--agent", &id, "--json"], &admin));
    assert_eq!(events["items"].as_array().unwrap().len(), 2);
    assert!(
        !data.join("surety.db").exists(),
        "nothing was written to SQLite"
    );
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
    runtime.block_on(schema.drop_schema()).unwrap();
}

#[test]
fn acknowledged_changes_survive_kill_9() {
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("crash");
    let data_s = data.to_str().unwrap().to_owned();
    let mut server = Serve::start(&["--data-dir", &data_s], &[]);
    let profile_path = data.join("admin-profile.toml");
    wait_for_file(&profile_path);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let profile = surety_sdk::Profile::load(&profile_path).unwrap();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let acked = acked.clone();
        let client = surety_sdk::AdminClient::from_profile(&profile).unwrap();
        runtime.spawn(async move {
            for i in 0.. {
                let body = surety_api::admin::RegisterAgent {
                    name: format!("crash-{i}"),
                    owner: None,
                    public_key: surety_jose::PrivateJwk::generate(surety_jose::KeyAlg::EdDSA)
                        .unwrap()
                        .public()
                        .to_json(),
                    purpose: None,
                    environment: None,
                    labels: Default::default(),
                };
                match client.register_agent(&body).await {
                    Ok(agent) => acked.lock().unwrap().push(agent.id),
                    Err(_) => break,
                }
            }
        })
    };
    // Let writes flow, then kill the server without warning, mid-stream.
    while acked.lock().unwrap().len() < 20 {
        std::thread::sleep(Duration::from_millis(20));
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    runtime.block_on(writer).unwrap();
    let acked = acked.lock().unwrap().clone();
    let port = server.port;
    drop(server);

    let restarted = Serve::start_on(port, &["--data-dir", &data_s], &[]);
    let client = surety_sdk::AdminClient::from_profile(&profile).unwrap();
    let stored: Vec<_> = runtime
        .block_on(client.list_agents(&surety_api::admin::AgentQuery {
            limit: Some(1000),
            ..Default::default()
        }))
        .unwrap()
        .items
        .into_iter()
        .map(|a| a.id)
        .collect();
    for id in &acked {
        assert!(
            stored.contains(id),
            "acknowledged agent {id} lost after kill -9"
        );
    }
    let events = runtime
        .block_on(client.list_audit(&surety_api::admin::AuditQuery {
            kind: Some("agent.registered".into()),
            limit: Some(1000),
            ..Default::default()
        }))
        .unwrap();
    assert_eq!(
        events.items.len(),
        stored.len(),
        "every stored agent has its registration event"
    );
    let (status, log) = restarted.terminate();
    assert!(status.success(), "{log}");
}

/// `kill -9` under write load, three times: after each restart every acknowledged
/// registration is there with its audit event, and the log still verifies as one tree.
#[test]
fn sigkill_under_load_loses_no_acknowledged_event_and_the_log_verifies() {
    sigkill_under_load(None);
}

/// The same on PostgreSQL: a connection killed mid-transaction leaves nothing half-written.
#[test]
fn sigkill_under_load_on_postgresql_loses_no_acknowledged_event() {
    if !surety_testkit::postgres_configured() {
        eprintln!(
            "PostgreSQL run skipped: set {}",
            surety_testkit::TEST_DATABASE_URL_ENV
        );
        return;
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let schema = runtime
        .block_on(surety_store::testing::PgTestSchema::create())
        .unwrap()
        .unwrap();
    sigkill_under_load(Some(&schema.url));
    runtime.block_on(schema.drop_schema()).unwrap();
}

fn sigkill_under_load(database_url: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap().to_owned();
    let mut store_args = vec!["--data-dir", data_s.as_str()];
    if let Some(url) = database_url {
        store_args.extend(["--database-url", url]);
    }
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let mut init_args = vec!["init"];
    init_args.extend(&store_args);
    init_args.extend([
        "--issuer",
        &issuer,
        "--admin",
        "Ada",
        "--admin-email",
        "ada@example.com",
        "--json",
    ]);
    let init = json(surety(&init_args, &[]));
    let profile = init["profile"].as_str().unwrap().to_owned();
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    for round in 0..3 {
        let server = Serve::start_on(port, &store_args, &[]);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let (stop, acknowledged) = (stop.clone(), acknowledged.clone());
                let (profile, dir) = (profile.clone(), dir.path().to_owned());
                std::thread::spawn(move || {
                    let env = [("SURETY_PROFILE", profile.as_str())];
                    let mut i = 0;
                    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                        i += 1;
                        let name = format!("load-{round}-{w}-{i}");
                        let key = dir.join(format!("{name}.jwk"));
                        let key = key.to_str().unwrap();
                        if !surety(&["agent", "keygen", "--out", key], &env)
                            .status
                            .success()
                        {
                            continue;
                        }
                        let out = surety(&["agent", "register", &name, "--public-key", key], &env);
                        // Acknowledged: the server answered with the new agent's id.
                        if out.status.success() {
                            let id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                            acknowledged.lock().unwrap().push(id);
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(1500 + 300 * round));
        // SIGKILL: no shutdown, no flush, whatever is in flight.
        drop(server);
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        for w in workers {
            w.join().unwrap();
        }
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 6,
        "load was applied: {acknowledged:?}"
    );
    let server = Serve::start_on(port, &store_args, &[]);
    let env = [("SURETY_PROFILE", profile.as_str())];
    let listed = json(surety(
        &["agent", "list", "--limit", "1000", "--json"],
        &env,
    ));
    let present: Vec<&str> = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["id"].as_str())
        .collect();
    let export = export_and_verify(dir.path(), &env);
    let exported = std::fs::read_to_string(&export).unwrap();
    for id in &acknowledged {
        assert!(
            present.contains(&id.as_str()),
            "acknowledged agent {id} is missing"
        );
        let event = "\"kind\":\"agent.registered\"";
        assert!(
            exported
                .lines()
                .any(|l| l.contains(event) && l.contains(&format!("\"target\":\"{id}\""))),
            "the registration of {id} is not in the log"
        );
    }
    drop(server);
}

#[test]
fn gateway_check_reads_the_file_and_names_the_offending_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("gw.jwk");
    ok(surety(
        &["agent", "keygen", "--out", key.to_str().unwrap()],
        &[],
    ));
    let good = "public_url = \"https://gw.example\"\nissuer = \"https://surety.example\"\n\
                [[upstream]]\nprefix = \"/crm\"\nurl = \"http://127.0.0.1:9000/mcp\"\n\
                client_id = \"rsv_01936d3c8f6a7b2c9d0e1f2a3b4c5d6e\"\nkey_file = \"gw.jwk\"\n";
    let file = dir.path().join("gateway.toml");
    std::fs::write(&file, good).unwrap();
    let said = ok(surety(
        &["gateway", "--config", file.to_str().unwrap(), "--check"],
        &[],
    ));
    assert!(said.contains("ok") && said.contains("/crm"), "{said}");
    for (from, to, key) in [
        (
            "prefix = \"/crm\"",
            "prefix = \"crm\"",
            "upstream[0].prefix",
        ),
        (
            "key_file = \"gw.jwk\"",
            "key_file = \"missing.jwk\"",
            "missing.jwk",
        ),
        (
            "client_id = \"rsv_01936d3c8f6a7b2c9d0e1f2a3b4c5d6e\"",
            "client_id = \"agt_x\"",
            "client_id",
        ),
    ] {
        std::fs::write(&file, good.replace(from, to)).unwrap();
        let err = fails(surety(
            &["gateway", "--config", file.to_str().unwrap(), "--check"],
            &[],
        ));
        assert!(err.contains(key), "{key}: {err}");
    }
}

/// `surety serve --gateway`: the MCP gateway in the server's process, deciding in-process:
/// an allowed call reaches the MCP server, a refused one does not, a bad file stops the
/// start with the reason.
#[tokio::test]
async fn serve_with_an_embedded_gateway_decides_in_process() {
    use crate::e2e::gateway::{lines, python, start_upstream};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_s = data.to_str().unwrap().to_owned();
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let resource = format!("{issuer}/crm");
    let init = json(surety(
        &["init", "--data-dir", &data_s, "--issuer", &issuer, "--json"],
        &[],
    ));
    let profile = init["profile"].as_str().unwrap().to_owned();
    let admin = [("SURETY_PROFILE", profile.as_str())];
    let server = Serve::start_on(port, &["--data-dir", &data_s], &[]);
    let key = |name: &str| {
        let path = dir.path().join(name);
        ok(surety(
            &["agent", "keygen", "--out", path.to_str().unwrap()],
            &[],
        ));
        path
    };
    let (agent_key, rs_key) = (key("agent.jwk"), key("gateway.jwk"));
    let agent = ok(surety(
        &[
            "agent",
            "register",
            "mcp-bot",
            "--public-key",
            agent_key.to_str().unwrap(),
        ],
        &admin,
    ))
    .trim()
    .to_owned();
    let rs = ok(surety(
        &[
            "resource",
            "add",
            "--audience",
            &resource,
            "--public-key",
            rs_key.to_str().unwrap(),
        ],
        &admin,
    ))
    .trim()
    .to_owned();
    let grant = ok(surety(
        &[
            "grant",
            "create",
            "--agent",
            &agent,
            "--scope",
            "crm.read_customer",
            "--resource",
            &resource,
            "--expires",
            "1h",
        ],
        &admin,
    ))
    .trim()
    .to_owned();
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");

    let py = tokio::task::spawn_blocking(python).await.unwrap();
    let up_port = free_port();
    let _upstream = start_upstream(&py, up_port, dir.path());
    let file = dir.path().join("gateway.toml");
    let toml = format!(
        "public_url = \"{issuer}\"\nissuer = \"{issuer}\"\n[[upstream]]\nprefix = \"/crm\"\n\
         url = \"http://127.0.0.1:{up_port}/mcp\"\nclient_id = \"{rs}\"\nkey_file = \"gateway.jwk\"\n"
    );
    // A prefix that is one of the server's paths is refused, and the server does not start.
    std::fs::write(&file, toml.replace("prefix = \"/crm\"", "prefix = \"/v1\"")).unwrap();
    let refused = fails(
        Command::new(BIN)
            .env_clear()
            .args([
                "serve",
                "--data-dir",
                &data_s,
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--gateway",
            ])
            .arg(&file)
            .output()
            .unwrap(),
    );
    assert!(refused.contains("/v1"), "{refused}");

    std::fs::write(&file, &toml).unwrap();
    let server = Serve::start_on(
        port,
        &["--data-dir", &data_s, "--gateway", file.to_str().unwrap()],
        &[],
    );
    let token: Value = json(surety(
        &[
            "token",
            "--server",
            &issuer,
            "--key",
            agent_key.to_str().unwrap(),
            "--agent",
            &agent,
            "--grant",
            &grant,
        ],
        &[],
    ));
    let token = token["access_token"].as_str().unwrap().to_owned();
    let key = surety_sdk::keyfile::read(&agent_key).unwrap();
    let post = async |body: Value, session: Option<&str>| {
        let proof = surety_jose::rfc9449::create(
            &key,
            "POST",
            &resource,
            Some(&token),
            None,
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        let mut r = surety_testkit::http()
            .post(&resource)
            .header("Authorization", format!("DPoP {token}"))
            .header("DPoP", proof)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2025-06-18");
        if let Some(s) = session {
            r = r.header("Mcp-Session-Id", s);
        }
        r.body(body.to_string()).send().await.unwrap()
    };
    let init = post(serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}), None).await;
    assert_eq!(init.status(), 200);
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let call = async |tool: &str| {
        let r = post(
            serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": tool, "arguments": {"customer_id": "c-9", "user": "eve", "role": "admin"}}}),
            Some(&session),
        )
        .await;
        r.text().await.unwrap()
    };
    let read = call("crm.read_customer").await;
    assert!(read.contains("customer c-9: ACME Corp"), "{read}");
    let denied = call("iam.grant_role").await;
    assert!(
        denied.contains("-32003") && denied.contains("Access denied"),
        "{denied}"
    );
    let calls: Vec<Value> = lines(&dir.path().join("calls.jsonl"));
    assert_eq!(
        calls.len(),
        1,
        "only the allowed call reached the server: {calls:?}"
    );
    // The decision is in Surety's audit log, made for the gateway's registration.
    let events = json(surety(
        &["audit", "list", "--type", "decision.made", "--json"],
        &admin,
    ));
    assert_eq!(
        events["items"][0]["details"]["resource_server"],
        rs.as_str()
    );
    let (status, log) = server.terminate();
    assert!(status.success(), "{log}");
}
