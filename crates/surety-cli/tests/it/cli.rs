//! The `surety` binary end to end: init, serve, enroll, human, agent and audit commands
//! against a real server process.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_surety");

/// Runs `surety` with a clean environment plus `env`.
fn surety(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.env_clear().args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn ok(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "failed: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn fails(out: Output) -> String {
    assert!(
        !out.status.success(),
        "unexpectedly succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: Output) -> Value {
    serde_json::from_str(&ok(out)).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Waits until `serve` has written `path` (the first admin's profile, say).
fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} did not appear",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `surety serve` process, killed on drop. Its stderr (the log) is drained as it comes,
/// so a busy server never blocks on a full pipe.
struct Serve {
    child: Child,
    base: String,
    port: u16,
    log: Option<std::thread::JoinHandle<String>>,
}

impl Serve {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_on(free_port(), args, env)
    }

    fn start_on(port: u16, args: &[&str], env: &[(&str, &str)]) -> Self {
        let listen = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(BIN);
        cmd.env_clear()
            .arg("serve")
            .args(args)
            .args(["--listen", &listen]);
        cmd.env("SURETY_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let log = std::thread::spawn(move || {
            use std::io::Read;
            let mut log = String::new();
            let _ = stderr.read_to_string(&mut log);
            log
        });
        let base = format!("http://{listen}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&listen).is_err() {
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            base,
            port,
            log: Some(log),
        }
    }

    /// Sends SIGTERM and returns the exit status and the log (stderr).
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        let log = self.log.take().unwrap().join().unwrap();
        (status, log)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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
        &[("SURETY_ISSUER", issuer.as_str())],
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
    let decide = |amount: &str| {
        json(surety(
            &[
                "decide",
                "--token",
                &full,
                "--action",
                "payments.transfer",
                "--resource",
                "Resource:acct-7",
                "--arg",
                &format!("amount={amount}"),
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
            ],
            &[],
        ))
    };
    assert_eq!(decide("50")["decision"], "allow");
    let over = decide("500");
    assert_eq!(
        (over["decision"].as_str(), over["policy_ids"][0].as_str()),
        (Some("deny"), Some("forbid-over-max-amount"))
    );

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
    // What-if: the recorded decisions (the two above and the benchmark's, all denials but
    // one) replayed against the reads-only set — the allowed transfer would now be denied.
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
    assert_eq!(changes.len(), 1, "{what_if}");
    assert_eq!(
        (
            changes[0]["was"].as_str(),
            changes[0]["would_be"].as_str(),
            changes[0]["action"].as_str()
        ),
        (Some("allow"), Some("deny"), Some("payments.transfer"))
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
    assert!(table.contains("1 would change"), "{table}");
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
