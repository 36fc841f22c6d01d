//! End to end with independent, unmodified third-party OAuth clients (installed from npm by
//! `.ci/run`, pinned in `tests/e2e/package.json` and its lock file): the client drives a real
//! server, and the server's own records are checked afterwards.

mod federation;
pub(crate) mod gateway;
mod inventory;
mod signals;

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use surety_api::admin::{AuditEventView, AuditQuery};
use surety_core::audit::{Actor, EventKind};
use surety_jose::PrivateJwk;
use surety_testkit::TestServer;

const SCOPE: &str = "crm.read";
const RESOURCE: &str = "https://crm.example";

/// `crates/surety-cli/tests/e2e`: the npm project of the e2e clients.
fn e2e_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e")
}

pub(super) fn describe(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Makes sure `node_modules` holds exactly the pinned version of every package in
/// `tests/e2e/package.json` (`.ci/run` installs them; a bare `cargo test` installs them here
/// with `npm ci`). Never skips: no Node or no npm is a failure. All packages are checked
/// together and installs run one at a time, so that no test's `npm ci` replaces
/// `node_modules` under another test's running client.
pub(super) fn ensure_npm_packages() {
    static NPM: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = NPM
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = e2e_dir();
    let read = |path: PathBuf| -> Option<Value> {
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
    };
    let manifest = read(dir.join("package.json")).expect("tests/e2e/package.json");
    let pinned: Vec<(String, String)> = manifest["dependencies"]
        .as_object()
        .expect("dependencies in tests/e2e/package.json")
        .iter()
        .map(|(name, version)| {
            (
                name.clone(),
                version.as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let missing = || -> Vec<String> {
        pinned
            .iter()
            .filter(|(name, version)| {
                read(dir.join("node_modules").join(name).join("package.json"))
                    .and_then(|m| m["version"].as_str().map(str::to_owned))
                    .as_deref()
                    != Some(version.as_str())
            })
            .map(|(name, version)| format!("{name}@{version}"))
            .collect()
    };
    if missing().is_empty() {
        return;
    }
    let out = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `npm ci` in {}: {e}", dir.display()));
    assert!(
        out.status.success(),
        "{}",
        describe("`npm ci` failed", &out)
    );
    let still = missing();
    assert!(still.is_empty(), "`npm ci` did not install {still:?}");
}

/// Writes a private JWK where only its owner can read it.
pub(super) fn write_key(dir: &Path, name: &str, key: &PrivateJwk) -> PathBuf {
    let path = dir.join(name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .unwrap();
    file.write_all(key.to_json().unwrap().to_string().as_bytes())
        .unwrap();
    path
}

/// Runs `node <script>` in the e2e folder with `env`, off the async runtime (the server
/// answers on it meanwhile), and returns the one JSON line it prints.
pub(super) async fn node(script: &str, env: Vec<(&'static str, String)>) -> Value {
    let what = format!("`node {script}` failed");
    let script = script.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script)
            .current_dir(e2e_dir())
            .envs(env)
            .output()
            .unwrap_or_else(|e| panic!("cannot run `node {script}`: {e}"))
    })
    .await
    .unwrap();
    assert!(out.status.success(), "{}", describe(&what, &out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON line ({e}): {stdout}"))
}

/// The audit events of `kind` concerning `agent`.
async fn events(server: &TestServer, agent: &str, kind: EventKind) -> Vec<AuditEventView> {
    server
        .admin_client()
        .list_audit(&AuditQuery {
            agent: Some(agent.to_owned()),
            kind: Some(kind.as_str().to_owned()),
            limit: Some(100),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn rfc8693_e2e_oauth4webapi_token_exchange_dpop_introspection_revocation() {
    // oauth4webapi, unmodified, as the agent and as the resource server: RFC 8414 discovery,
    // RFC 8693 token exchange of a grant with RFC 7523 private_key_jwt and an RFC 9449 DPoP
    // proof (after the server's `use_dpop_nonce`), RFC 9068 validation of the token with a
    // DPoP proof, RFC 7662 introspection, RFC 7009 revocation, and introspection again.
    let package_task = tokio::task::spawn_blocking(ensure_npm_packages);
    let server = TestServer::start().await;
    let (agent, agent_key) = server.agent("e2e-oauth4webapi").await;
    let grant = server.grant(agent.id, &[SCOPE], &[RESOURCE], 0).await;
    let (rs, rs_key) = server.resource_server(RESOURCE).await;
    let keys = tempfile::tempdir().unwrap();
    let agent_jwk = write_key(keys.path(), "agent.jwk.json", &agent_key);
    let rs_jwk = write_key(keys.path(), "resource-server.jwk.json", &rs_key);
    package_task.await.unwrap();

    let agent_id = agent.id.to_string();
    let human_id = grant.principal.to_string();
    let seen = node(
        "oauth4webapi.mjs",
        vec![
            ("SURETY_ISSUER", server.base.clone()),
            ("SURETY_AGENT_ID", agent_id.clone()),
            ("SURETY_AGENT_JWK", agent_jwk.display().to_string()),
            ("SURETY_GRANT_ID", grant.id.to_string()),
            ("SURETY_SUBJECT", human_id.clone()),
            ("SURETY_SCOPE", SCOPE.to_owned()),
            ("SURETY_RESOURCE", RESOURCE.to_owned()),
            ("SURETY_RS_ID", rs.id.to_string()),
            ("SURETY_RS_JWK", rs_jwk.display().to_string()),
        ],
    )
    .await;

    // What the client saw (printed for the record; `--nocapture` shows it).
    println!("oauth4webapi observed: {seen}");
    assert_eq!(seen["ok"], true, "{seen}");
    assert_eq!(seen["dpop_nonce_retry"], true, "{seen}");
    assert_eq!(seen["dpop_jkt"], agent_key.thumbprint().as_str(), "{seen}");
    let before = &seen["introspection_before"];
    assert_eq!(before["active"], true, "{seen}");
    assert_eq!(before["sub"], human_id.as_str(), "{seen}");
    assert_eq!(before["act"]["sub"], agent_id.as_str(), "{seen}");
    assert_eq!(before["grant_id"], grant.id.to_string().as_str(), "{seen}");
    assert_eq!(
        seen["introspection_after"],
        serde_json::json!({"active": false}),
        "{seen}"
    );
    let jti = before["jti"].as_str().expect("a jti").to_owned();
    assert_eq!(seen["access_token_claims"]["jti"], jti.as_str(), "{seen}");

    // What the server recorded: the token it issued to the agent, and its revocation by the
    // agent, for that token.
    for kind in [EventKind::TokenIssued, EventKind::TokenRevoked] {
        let found = events(&server, &agent_id, kind).await;
        assert_eq!(
            found.len(),
            1,
            "one {} event for the agent: {found:?}",
            kind.as_str()
        );
        let event = &found[0];
        assert_eq!(event.target, jti, "{event:?}");
        assert_eq!(event.actor, Actor::Agent(agent.id), "{event:?}");
        assert_eq!(event.agent, Some(agent.id), "{event:?}");
        assert_eq!(event.human, Some(grant.principal), "{event:?}");
        assert_eq!(
            event.details["grant_id"],
            grant.id.to_string().as_str(),
            "{event:?}"
        );
    }
    server.stop().await;
}

/// Writes a CLI profile for the server's first admin (device key file mode 0600).
pub(crate) fn admin_profile(server: &TestServer, dir: &Path) -> PathBuf {
    let key_file = write_key(dir, "admin.jwk.json", &server.admin_key());
    let profile = dir.join("admin.toml");
    surety_sdk::profile::Profile {
        server: server.base.clone(),
        human_id: server.admin.id,
        key_file,
    }
    .save(&profile)
    .unwrap();
    profile
}

/// Runs the `surety` binary with `profile`.
pub(crate) async fn surety_cli(profile: &Path, args: &[&str]) -> Output {
    let profile = profile.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_surety"))
            .env_clear()
            .env("SURETY_PROFILE", profile)
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// openid-client drives CIBA while the principal answers with `surety approve` (device key).
async fn ciba_with_openid_client(approve: bool) -> (TestServer, Value, String) {
    let package_task = tokio::task::spawn_blocking(ensure_npm_packages);
    let server = TestServer::start_with(surety_testkit::Options {
        config: vec![("ciba_interval", "1s".into())],
        ..Default::default()
    })
    .await;
    let (agent, agent_key) = server.agent("e2e-openid-client").await;
    let grant = server
        .grant(agent.id, &["payments.transfer"], &[RESOURCE], 0)
        .await;
    let keys = tempfile::tempdir().unwrap();
    let agent_jwk = write_key(keys.path(), "agent.jwk.json", &agent_key);
    let profile = admin_profile(&server, keys.path());
    package_task.await.unwrap();
    let details = serde_json::json!([{
        "type": "surety_action",
        "locations": [RESOURCE],
        "action": "payments.transfer",
        "resource": {"type": "Resource", "id": "acct-7"},
        "arguments": {"amount": 7500, "currency": "EUR", "to": "ACME"},
    }]);
    let client = tokio::spawn(node(
        "ciba.mjs",
        vec![
            ("SURETY_ISSUER", server.base.clone()),
            ("SURETY_AGENT_ID", agent.id.to_string()),
            ("SURETY_AGENT_JWK", agent_jwk.display().to_string()),
            ("SURETY_LOGIN_HINT", server.admin.email.clone()),
            ("SURETY_BINDING_MESSAGE", "Pay ACME 7500 EUR".into()),
            ("SURETY_AUTHORIZATION_DETAILS", details.to_string()),
        ],
    ));
    // The request shows up in the principal's inbox; they answer from the CLI.
    let mut id = None;
    for _ in 0..100 {
        let out = surety_cli(&profile, &["approve", "list", "--json"]).await;
        assert!(
            out.status.success(),
            "{}",
            describe("surety approve list", &out)
        );
        let list: Value = serde_json::from_slice(&out.stdout).unwrap();
        if let Some(found) = list["items"][0]["id"].as_str() {
            id = Some(found.to_owned());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let id = id.expect("the request reached the approver's inbox");
    let shown = surety_cli(&profile, &["approve", "show", &id]).await;
    let text = String::from_utf8_lossy(&shown.stderr).into_owned();
    assert!(
        text.contains("Pay ACME 7500 EUR") && text.contains("7500"),
        "{text}"
    );
    let verb = if approve { "approve" } else { "deny" };
    let answered = surety_cli(&profile, &["approve", verb, &id, "--reason", "e2e"]).await;
    assert!(
        answered.status.success(),
        "{}",
        describe("surety approve", &answered)
    );
    let seen = client.await.unwrap();
    println!("openid-client observed: {seen}");
    if approve {
        assert_eq!(
            seen["access_token_claims"]["grant_id"],
            grant.id.to_string().as_str(),
            "{seen}"
        );
    }
    (server, seen, id)
}

#[tokio::test]
async fn ciba_e2e_openid_client_poll_with_dpop_approved_on_the_cli() {
    let (server, seen, id) = ciba_with_openid_client(true).await;
    assert_eq!(seen["ok"], true, "{seen}");
    // openid-client normalises `token_type` to lower case.
    assert!(
        seen["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("DPoP")),
        "{seen}"
    );
    assert_eq!(
        seen["token_responses"][0]["error"], "use_dpop_nonce",
        "{seen}"
    );
    assert_eq!(
        seen["authorization_details"][0]["arguments"]["amount"], 7500,
        "{seen}"
    );
    let claims = &seen["access_token_claims"];
    assert_eq!(claims["approval_id"], id.as_str(), "{seen}");
    assert_eq!(claims["cnf"]["jkt"], seen["dpop_jkt"], "{seen}");
    assert_eq!(
        claims["authorization_details"], seen["authorization_details"],
        "{seen}"
    );
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 300);
    server.stop().await;
}

#[tokio::test]
async fn ciba_e2e_openid_client_sees_access_denied_when_the_human_denies() {
    let (server, seen, _) = ciba_with_openid_client(false).await;
    assert_eq!(seen["ok"], false, "{seen}");
    assert_eq!(seen["error"], "access_denied", "{seen}");
    server.stop().await;
}

/// Debian's Chromium (or `CHROMIUM`). A bare `cargo test` installs it with apt the first
/// time, as `.ci/run` does; if that is impossible the test fails — it never skips.
pub(super) fn chromium() -> String {
    let path = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    apt_install(&path, "chromium");
    assert!(
        Path::new(&path).exists(),
        "Chromium is needed for the browser tests: install Debian's `chromium`, or set CHROMIUM"
    );
    path
}

/// Installs Debian's `package` with apt when `path` (a program it provides) is missing, one
/// installation at a time; a failure to install fails the test.
pub(crate) fn apt_install(path: &str, package: &str) {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if Path::new(path).exists() {
        return;
    }
    for args in [
        &["update", "-qq"][..],
        &["install", "-y", "-qq", "--no-install-recommends", package][..],
    ] {
        let out = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .unwrap_or_else(|e| panic!("{package} is missing and apt-get cannot run: {e}"));
        assert!(
            out.status.success(),
            "{}",
            describe(&format!("apt-get (installing {package})"), &out)
        );
    }
}

/// A real browser (Chromium with a WebAuthn virtual authenticator: user verification by
/// "biometrics") registers a passkey from an invite link, signs in, opens the request in
/// the inbox and answers it; the agent's next poll then gets its answer.
async fn passkey_answer_in_a_browser(approve: bool) -> (TestServer, Value, reqwest::Response) {
    let package_task = tokio::task::spawn_blocking(ensure_npm_packages);
    let browser = tokio::task::spawn_blocking(chromium).await.unwrap();
    let server = TestServer::start_with(surety_testkit::Options {
        localhost: true,
        config: vec![("ciba_interval", "1s".into())],
        ..Default::default()
    })
    .await;
    let (agent, agent_key) = server.agent("e2e-browser").await;
    server
        .grant(agent.id, &["payments.transfer"], &[RESOURCE], 0)
        .await;
    let invite = server.admin_client().invite(server.admin.id).await.unwrap();
    assert!(
        invite
            .url
            .starts_with(&format!("{}/ui/enroll#", server.base)),
        "{invite:?}"
    );
    let details = serde_json::json!([{
        "type": "surety_action",
        "locations": [RESOURCE],
        "action": "payments.transfer",
        "resource": {"type": "Resource", "id": "acct-9"},
        "arguments": {"amount": 12000, "currency": "EUR", "to": "ACME"},
    }]);
    let opened = crate::api::approvals::bc_authorize(
        &server,
        &agent_key,
        &agent.id.to_string(),
        &[
            ("login_hint", server.admin.email.clone()),
            ("binding_message", "Pay ACME 12000 EUR".into()),
            ("authorization_details", details.to_string()),
        ],
    )
    .await;
    let opened: Value = opened.json().await.unwrap();
    let auth_req_id = opened["auth_req_id"]
        .as_str()
        .expect("a request")
        .to_owned();
    let pending = server
        .admin_client()
        .list_approvals(&surety_api::approvals::ApprovalQuery::default())
        .await
        .unwrap();
    let approval = pending.items[0].id.clone();
    package_task.await.unwrap();
    let mut env = vec![
        ("SURETY_BASE", server.base.clone()),
        ("SURETY_INVITE_URL", invite.url.clone()),
        ("SURETY_EMAIL", server.admin.email.clone()),
        ("SURETY_APPROVAL_ID", approval),
        (
            "SURETY_DECISION",
            if approve { "approve" } else { "deny" }.into(),
        ),
        ("SURETY_REASON", "checked with the supplier".into()),
        ("CHROMIUM", browser),
    ];
    // Set to a folder to refresh the UI screenshots in docs/.
    if let Ok(dir) = std::env::var("SURETY_SCREENSHOTS") {
        env.push(("SURETY_SCREENSHOTS", dir));
    }
    let seen = node("browser.mjs", env).await;
    println!("browser observed: {seen}");
    let poll =
        crate::api::approvals::poll(&server, &agent_key, &agent.id.to_string(), &auth_req_id)
            .send(&server)
            .await;
    (server, seen, poll)
}

#[tokio::test]
async fn webauthn_e2e_passkey_approval_in_chromium_then_the_agent_redeems() {
    let (server, seen, poll) = passkey_answer_in_a_browser(true).await;
    assert_eq!(seen["ok"], true, "{seen}");
    assert_eq!(seen["result"], "approved", "{seen}");
    assert_eq!(seen["binding_message"], "Pay ACME 12000 EUR", "{seen}");
    assert_eq!(seen["action"], "payments.transfer", "{seen}");
    assert!(
        seen["arguments"]
            .as_str()
            .is_some_and(|a| a.contains("12000")),
        "{seen}"
    );
    assert_eq!(seen["credentials"], 1, "{seen}");
    let status = poll.status();
    let body: Value = poll.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["authorization_details"][0]["arguments"]["amount"],
        12000
    );
    // The vote keeps the passkey's assertion, bound to the statement's digest.
    let list = server
        .admin_client()
        .list_approvals(&surety_api::approvals::ApprovalQuery {
            status: Some("all".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let vote = &list.items[0].votes[0];
    assert_eq!(
        (vote.method.as_str(), vote.decision.as_str()),
        ("passkey", "approve")
    );
    assert_eq!(vote.reason.as_deref(), Some("checked with the supplier"));
    server.stop().await;
}

#[tokio::test]
async fn webauthn_e2e_passkey_denial_in_chromium_ends_the_agents_poll_with_access_denied() {
    let (server, seen, poll) = passkey_answer_in_a_browser(false).await;
    assert_eq!(seen["result"], "denied", "{seen}");
    let status = poll.status().as_u16();
    let body: Value = poll.json().await.unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("access_denied")),
        "{body}"
    );
    server.stop().await;
}

/// `surety audit export` then `surety audit verify`, offline, with only the file and the
/// log's key: it passes as exported, and names what each tampering broke.
#[tokio::test]
async fn audit_export_verifies_offline_and_names_each_tampering() {
    let server = TestServer::start().await;
    // Checkpoints along the way: the export carries each, chained by `previous`.
    for name in ["one", "two", "three"] {
        server.agent(name).await;
        server.admin_client().audit_checkpoint().await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let profile = admin_profile(&server, dir.path());
    let file = dir.path().join("audit.jsonl");
    let out = surety_cli(
        &profile,
        &["audit", "export", "--out", file.to_str().unwrap()],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        describe("surety audit export", &out)
    );
    let vkey = server.log_key().await;
    let jwks = surety_testkit::http()
        .get(server.url("/jwks"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, &jwks).unwrap();
    server.stop().await;
    // The server is gone: verification needs only the file and the key.
    let verify = |path: &Path, key: &str| {
        let (path, key) = (path.to_owned(), key.to_owned());
        async move {
            surety_cli(
                Path::new("/nonexistent"),
                &["audit", "verify", path.to_str().unwrap(), "--key", &key],
            )
            .await
        }
    };
    let good = verify(&file, &vkey).await;
    assert!(
        good.status.success(),
        "{}",
        describe("surety audit verify", &good)
    );
    let said = String::from_utf8_lossy(&good.stdout).into_owned();
    // The organisation's JWKS serves as well as the note key (`--key FILE`).
    let by_jwks = verify(&file, jwks_file.to_str().unwrap()).await;
    assert!(
        by_jwks.status.success(),
        "{}",
        describe("surety audit verify --key jwks.json", &by_jwks)
    );
    // The three made along the way, and the export's own (the export's sign-in added events).
    let checkpoints: usize = said
        .split(" signed checkpoint")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_default();
    assert!(said.contains("verified:") && checkpoints >= 3, "{said}");
    let lines: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let written = std::cell::Cell::new(0);
    let tampered = |edit: &dyn Fn(&mut Vec<String>)| {
        let mut l = lines.clone();
        edit(&mut l);
        written.set(written.get() + 1);
        let path = dir.path().join(format!("tampered-{}.jsonl", written.get()));
        std::fs::write(&path, l.join("\n") + "\n").unwrap();
        path
    };
    let cases: Vec<(PathBuf, &str)> = vec![
        // One byte of one event changed.
        (
            tampered(&|l| l[3] = l[3].replacen("\"kind\":\"", "\"kind\":\"x", 1)),
            "do not hash to the signed root",
        ),
        // An event re-encoded: the same meaning, other text (a space) — not what was signed.
        (
            tampered(&|l| l[4] = l[4].replacen("\"kind\":", "\"kind\": ", 1)),
            "do not hash to the signed root",
        ),
        // An event removed.
        (
            tampered(&|l| {
                l.remove(2);
            }),
            "where leaf 1 was expected",
        ),
        // Two events swapped.
        (tampered(&|l| l.swap(2, 3)), "where leaf 1 was expected"),
        // The last checkpoint dropped: the newest events are signed by nothing.
        (
            tampered(&|l| {
                l.pop();
            }),
            "covered by no signature",
        ),
        // The checkpoint forged (another size).
        (
            tampered(&|l| {
                let last = l.len() - 1;
                let size = lines
                    .iter()
                    .filter(|x| x.contains("\"leaf_index\""))
                    .count();
                let forged = l[last].replacen(&format!("\\n{size}\\n"), "\\n1\\n", 1);
                assert_ne!(forged, l[last], "the size is in the note");
                l[last] = forged;
            }),
            "not signed by the key",
        ),
    ];
    for (path, expected) in cases {
        let bad = verify(&path, &vkey).await;
        let err = String::from_utf8_lossy(&bad.stderr).into_owned();
        assert!(
            !bad.status.success() && err.contains(expected),
            "{expected}: {err}"
        );
    }
    // Another key: nothing verifies.
    let other = PrivateJwk::generate(surety_jose::KeyAlg::EdDSA).unwrap();
    let other =
        surety_jose::note::NoteKey::from_jwk(vkey.split('+').next().unwrap(), other.public())
            .unwrap()
            .vkey();
    let bad = verify(&file, &other).await;
    assert!(!bad.status.success());
    // Nor does another organisation's key set.
    let other_jwks = dir.path().join("other-jwks.json");
    let other = PrivateJwk::generate(surety_jose::KeyAlg::EdDSA).unwrap();
    std::fs::write(
        &other_jwks,
        serde_json::json!({"keys": [other.public().to_json()]}).to_string(),
    )
    .unwrap();
    let bad = verify(&file, other_jwks.to_str().unwrap()).await;
    let err = String::from_utf8_lossy(&bad.stderr).into_owned();
    assert!(
        !bad.status.success() && err.contains("not signed by the key"),
        "{err}"
    );
}

/// A checkpoint whose `previous` line names a root this log never had is a fork, even when
/// every signature and root checks out.
#[tokio::test]
async fn audit_verify_catches_a_forked_chain_of_checkpoints() {
    use base64::Engine as _;
    use surety_core::merkle::{self, MemoryTree};
    let key = PrivateJwk::generate(surety_jose::KeyAlg::EdDSA).unwrap();
    let name = "log.example/audit";
    let vkey = surety_jose::note::NoteKey::from_jwk(name, key.public())
        .unwrap()
        .vkey();
    let entries: Vec<Value> = (0..3)
        .map(|i| serde_json::json!({"v": 1, "n": i}))
        .collect();
    let mut tree = MemoryTree::new();
    let mut lines =
        vec![serde_json::json!({"surety_audit_export": 1, "origin": name, "size": 3}).to_string()];
    for (i, e) in entries.iter().enumerate() {
        // Entries are written in canonical form, as the tree hashes them.
        let text = surety_core::canonical::to_string(e);
        tree.push(merkle::leaf_hash(text.as_bytes()));
        lines.push(format!("{{\"leaf_index\":{i},\"entry\":{text}}}"));
    }
    let b64 = |h: &merkle::Hash| base64::engine::general_purpose::STANDARD.encode(h);
    let checkpoint = |previous: &str| {
        let cp = surety_jose::note::Checkpoint {
            origin: name.into(),
            size: 3,
            root: tree.root(3).unwrap(),
            extensions: vec!["time 1".into(), previous.into()],
        };
        let note = surety_jose::note::sign(&cp.to_text(), name, &key).unwrap();
        serde_json::json!({ "checkpoint": note }).to_string()
    };
    let dir = tempfile::tempdir().unwrap();
    let run = |file: &str, previous: String| {
        let mut l = lines.clone();
        l.push(checkpoint(&previous));
        let path = dir.path().join(file);
        std::fs::write(&path, l.join("\n") + "\n").unwrap();
        let vkey = vkey.clone();
        async move {
            surety_cli(
                Path::new("/nonexistent"),
                &["audit", "verify", path.to_str().unwrap(), "--key", &vkey],
            )
            .await
        }
    };
    let honest = run(
        "honest.jsonl",
        format!("previous 2 {}", b64(&tree.root(2).unwrap())),
    )
    .await;
    assert!(honest.status.success(), "{}", describe("verify", &honest));
    let forked = run("forked.jsonl", format!("previous 2 {}", b64(&[9; 32]))).await;
    let err = String::from_utf8_lossy(&forked.stderr).into_owned();
    assert!(!forked.status.success() && err.contains("forked"), "{err}");
}

/// `surety audit tail --follow` prints the latest events, then each new one as it comes.
#[tokio::test]
async fn audit_tail_follows_new_events() {
    use std::io::BufRead as _;
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let profile = admin_profile(&server, dir.path());
    let mut child = Command::new(env!("CARGO_BIN_EXE_surety"))
        .env_clear()
        .env("SURETY_PROFILE", &profile)
        .args(["audit", "tail", "--follow", "--json", "--limit", "3"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The latest three first, oldest first.
    let mut first = Vec::new();
    for _ in 0..3 {
        let line = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .expect("the latest events")
            .unwrap();
        first.push(
            serde_json::from_str::<Value>(&line).unwrap()["seq"]
                .as_i64()
                .unwrap(),
        );
    }
    assert!(first.windows(2).all(|w| w[0] < w[1]), "{first:?}");
    // Then what happens next.
    let (agent, _) = server.agent("followed").await;
    let seen = loop {
        let line = tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
            .await
            .expect("the new event")
            .unwrap();
        let e: Value = serde_json::from_str(&line).unwrap();
        if e["type"] == "agent.registered" {
            break e;
        }
    };
    assert_eq!(seen["target"], agent.id.to_string().as_str());
    child.kill().unwrap();
    let _ = child.wait();
    server.stop().await;
}

/// `surety audit export --from --to`: a range of the log, with the subtrees around it,
/// verifies offline against the same signed root; a changed event, a missing one, a forged
/// subtree or a moved range does not.
#[tokio::test]
async fn a_range_export_proves_its_events_against_the_signed_root() {
    let server = TestServer::start().await;
    for name in ["one", "two", "three", "four", "five", "six"] {
        server.agent(name).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let profile = admin_profile(&server, dir.path());
    let vkey = server.log_key().await;
    let export = |name: &str, range: Vec<String>| {
        let (file, profile) = (dir.path().join(name), profile.clone());
        async move {
            let mut args = vec!["audit".to_owned(), "export".into(), "--out".into()];
            args.push(file.to_str().unwrap().to_owned());
            args.extend(range);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = surety_cli(&profile, &args).await;
            assert!(
                out.status.success(),
                "{}",
                describe("surety audit export", &out)
            );
            file
        }
    };
    let verify = |path: PathBuf| {
        let key = vkey.clone();
        async move {
            surety_cli(
                Path::new("/nonexistent"),
                &[
                    "audit",
                    "verify",
                    path.to_str().unwrap(),
                    "--key",
                    &key,
                    "--json",
                ],
            )
            .await
        }
    };
    // By leaf index.
    let by_index = export(
        "range.jsonl",
        vec!["--from".into(), "3".into(), "--to".into(), "8".into()],
    )
    .await;
    let good = verify(by_index.clone()).await;
    assert!(good.status.success(), "{}", describe("verify", &good));
    let said: Value = serde_json::from_slice(&good.stdout).unwrap();
    assert_eq!(
        (said["first"].as_u64(), said["events"].as_u64()),
        (Some(3), Some(5)),
        "{said}"
    );
    // By time: from the third agent's registration on (one request after another: time
    // ascends with the log).
    let third = server
        .store()
        .list_events(
            surety_core::audit::AuditScope::All,
            &surety_core::audit::AuditFilter {
                kind: Some(EventKind::AgentRegistered),
                ..Default::default()
            },
            &surety_core::page::PageRequest::first(10),
        )
        .await
        .unwrap()
        .items
        .into_iter()
        .rev()
        .nth(2)
        .unwrap();
    let since = third
        .event
        .time
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let by_time = export("since.jsonl", vec!["--from".into(), since]).await;
    let good = verify(by_time.clone()).await;
    assert!(good.status.success(), "{}", describe("verify", &good));
    let said: Value = serde_json::from_slice(&good.stdout).unwrap();
    assert_eq!(
        said["first"].as_u64(),
        third.leaf_index,
        "the range starts at that event: {said}"
    );
    server.stop().await;

    let lines: Vec<String> = std::fs::read_to_string(&by_index)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert!(lines[1].starts_with("{\"range_nodes\":"), "{}", lines[1]);
    let tampered = |name: &str, edit: &dyn Fn(&mut Vec<String>)| {
        let mut l = lines.clone();
        edit(&mut l);
        let path = dir.path().join(name);
        std::fs::write(&path, l.join("\n") + "\n").unwrap();
        path
    };
    let cases: Vec<(PathBuf, &str)> = vec![
        (
            tampered("changed.jsonl", &|l| {
                l[3] = l[3].replacen("\"kind\":\"", "\"kind\":\"x", 1)
            }),
            "do not hash to the signed root",
        ),
        (
            // Leaf 5 of 3..8 removed.
            tampered("missing.jsonl", &|l| {
                l.remove(4);
            }),
            "where leaf 5 was expected",
        ),
        (
            // The range's last leaf removed.
            tampered("last-missing.jsonl", &|l| {
                l.remove(6);
            }),
            "is not all there",
        ),
        (
            // One subtree outside the range, forged.
            tampered("forged-node.jsonl", &|l| {
                let mut nodes: Value = serde_json::from_str(&l[1]).unwrap();
                nodes["range_nodes"][0]["hash"] =
                    serde_json::json!("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
                l[1] = nodes.to_string();
            }),
            "do not hash to the signed root",
        ),
        (
            tampered("no-nodes.jsonl", &|l| {
                l.remove(1);
            }),
            "needs its `range_nodes`",
        ),
        (
            // The same events claimed one place later in the log.
            tampered("moved.jsonl", &|l| {
                l[0] = l[0]
                    .replace("\"from\":3", "\"from\":4")
                    .replace("\"to\":8", "\"to\":9");
                for line in l.iter_mut().skip(2).take(5) {
                    for i in (3..8).rev() {
                        *line = line.replace(
                            &format!("\"leaf_index\":{i},"),
                            &format!("\"leaf_index\":{},", i + 1),
                        );
                    }
                }
            }),
            "the range was moved",
        ),
    ];
    for (path, expected) in cases {
        let bad = verify(path).await;
        let err = String::from_utf8_lossy(&bad.stderr).into_owned();
        assert!(
            !bad.status.success() && err.contains(expected),
            "{expected}: {err}"
        );
    }
}
