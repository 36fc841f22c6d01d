//! `surety gateway` in front of a real MCP server, driven by a real MCP client — both from
//! the official Python SDK (PyPI `mcp`, pinned in `crates/surety-gateway/tests/mcp/`): the
//! client, holding a Surety token, lists and calls tools through the gateway; allowed calls
//! reach the server, refused ones never do, and a step-up call goes through once a human
//! approves it. Then what the gateway refuses at the HTTP level.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use surety_api::credentials::CreateGrant;
use surety_api::oauth::TOKEN_TYPE_GRANT;
use surety_jose::{PrivateJwk, rfc9449};
use surety_testkit::{TestServer, http};
use tokio::sync::oneshot;

use super::{describe, write_key};
use crate::support::{TokenRequest, ok_token};

/// The Python side: `crates/surety-gateway/tests/mcp`.
fn mcp_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../surety-gateway/tests/mcp")
}

/// A virtualenv with the pinned official SDK (`.ci/run` makes it; a bare `cargo test` makes
/// it here). Never skips: no Python is a failure.
pub(crate) fn python() -> PathBuf {
    static VENV: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = VENV
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = mcp_dir();
    let venv = dir.join(".venv");
    let py = venv.join("bin/python");
    let stamp = venv.join("installed-requirements.txt");
    let wanted = std::fs::read_to_string(dir.join("requirements.txt")).unwrap();
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) && py.exists() {
        return py;
    }
    let run = |cmd: &mut Command, what: &str| {
        let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(out.status.success(), "{}", describe(what, &out));
    };
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "python3 -m venv",
    );
    run(
        Command::new(&py)
            .args(["-m", "pip", "install", "-q", "-r"])
            .arg(dir.join("requirements.txt")),
        "pip install -r requirements.txt",
    );
    std::fs::write(&stamp, wanted).unwrap();
    py
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The upstream MCP server, killed when dropped.
pub(crate) struct Upstream(Child);

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn start_upstream(py: &Path, port: u16, dir: &Path) -> Upstream {
    let mut child = Command::new(py)
        .arg(mcp_dir().join("upstream.py"))
        .args(["--port", &port.to_string(), "--log"])
        .arg(dir.join("calls.jsonl"))
        .arg("--http-log")
        .arg(dir.join("http.jsonl"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "the upstream did not start");
    Upstream(child)
}

pub(crate) fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A fresh DPoP proof by `key` for a POST to `htu` with `token`.
fn proof_for(key: &PrivateJwk, htu: &str, token: &str) -> String {
    rfc9449::create(
        key,
        "POST",
        htu,
        Some(token),
        None,
        time::OffsetDateTime::now_utc(),
    )
    .unwrap()
}

/// A JSON-RPC POST to `url` as the holder of `token` with `proof`, on `session` if any.
fn mcp_post(
    url: &str,
    token: &str,
    proof: String,
    session: Option<&str>,
) -> reqwest::RequestBuilder {
    let mut r = http()
        .post(url)
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", proof)
        .header("Content-Type", "application/json")
        .header("Accept", "application/json, text/event-stream");
    if let Some(id) = session {
        r = r
            .header("Mcp-Session-Id", id)
            .header("Mcp-Protocol-Version", "2025-06-18");
    }
    r
}

/// Everything a test needs: Surety, the upstream, the gateway in front of it, an agent with
/// a grant for the gateway's resource and a token for it.
struct Setup {
    server: TestServer,
    dir: tempfile::TempDir,
    gateway_url: String,
    agent_key: PrivateJwk,
    agent_key_file: PathBuf,
    token: String,
    upstream: Option<Upstream>,
    stop: Option<oneshot::Sender<()>>,
    reloader: surety_gateway::server::Reloader,
    toml: String,
}

/// A new agent with a grant of two tools on `resource`, and an access token for it.
async fn agent_with_token(server: &TestServer, name: &str, resource: &str) -> (PrivateJwk, String) {
    agent_with_scopes(
        server,
        name,
        resource,
        &["crm.read_customer", "payments.transfer"],
    )
    .await
}

/// A new agent with a grant of `scopes` on `resource`, and an access token for it.
async fn agent_with_scopes(
    server: &TestServer,
    name: &str,
    resource: &str,
    scopes: &[&str],
) -> (PrivateJwk, String) {
    let (agent, agent_key) = server.agent(name).await;
    let grant = server
        .admin_client()
        .create_grant(&CreateGrant {
            agent: agent.id,
            principal: None,
            scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
            resources: vec![resource.to_owned()],
            constraints: Some(json!({"max_amount": 5000, "currency": "EUR"})),
            max_delegation_depth: None,
            expires_at: None,
            expires_in: Some(3600),
        })
        .await
        .unwrap();
    let body = ok_token(
        server,
        TokenRequest::exchange(
            server,
            &agent_key,
            &agent.id.to_string(),
            &grant.id.to_string(),
            TOKEN_TYPE_GRANT,
        )
        .set("resource", resource),
    )
    .await;
    (agent_key, body["access_token"].as_str().unwrap().to_owned())
}

async fn setup(step_up: &str) -> Setup {
    setup_with(step_up, "").await
}

/// [`setup`], with `extra` lines in the gateway's configuration.
async fn setup_with(step_up: &str, extra: &str) -> Setup {
    let py = tokio::task::spawn_blocking(python).await.unwrap();
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("http://{}", listener.local_addr().unwrap());
    let resource = format!("{public}/crm");
    let (rs, rs_key) = server.resource_server(&resource).await;
    let rs_key_file = write_key(dir.path(), "gateway.jwk", &rs_key);
    let (agent_key, token) = agent_with_token(&server, "mcp-agent", &resource).await;
    let agent_key_file = write_key(dir.path(), "agent.jwk", &agent_key);
    let port = free_port();
    let upstream = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        move || start_upstream(&py, port, &dir)
    })
    .await
    .unwrap();
    let toml = format!(
        "public_url = \"{public}\"\nissuer = \"{}\"\nstep_up = \"{step_up}\"\nupstream_timeout = \"5s\"\nmax_body_bytes = 65536\n{extra}\
         [[upstream]]\nprefix = \"/crm\"\nurl = \"http://127.0.0.1:{port}/mcp\"\nclient_id = \"{}\"\nkey_file = \"{}\"\n",
        server.base,
        rs.id,
        rs_key_file.display()
    );
    let config =
        surety_gateway::GatewayConfig::parse(&toml, &dir.path().join("gateway.toml")).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let (app, reloader) = surety_gateway::server::build(config, None).unwrap();
    tokio::spawn(surety_gateway::serve_router(app, listener, async {
        let _ = stopped.await;
    }));
    Setup {
        server,
        dir,
        gateway_url: resource,
        agent_key,
        agent_key_file,
        token,
        upstream: Some(upstream),
        stop: Some(stop),
        reloader,
        toml,
    }
}

impl Setup {
    async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.upstream.take();
        self.server.stop().await;
    }

    /// A POST to the gateway with the agent's token and a fresh proof for `htu`.
    fn post(&self, htu: &str, body: impl Into<reqwest::Body>) -> reqwest::RequestBuilder {
        let proof = proof_for(&self.agent_key, htu, &self.token);
        mcp_post(&self.gateway_url, &self.token, proof, None).body(body)
    }
}

/// Starts `client.py` with `steps`: the process, its stdin, and its output lines as JSON.
fn start_client(
    py: &Path,
    s: &Setup,
    steps: &Value,
) -> (
    Child,
    std::process::ChildStdin,
    tokio::sync::mpsc::UnboundedReceiver<Value>,
) {
    let mut client = Command::new(py)
        .arg(mcp_dir().join("client.py"))
        .args([
            "--url",
            &s.gateway_url,
            "--token",
            &s.token,
            "--timeout",
            "90",
            "--key",
        ])
        .arg(&s.agent_key_file)
        .args(["--steps", &steps.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = client.stdin.take().unwrap();
    let stdout = client.stdout.take().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Value>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(serde_json::from_str(&line).unwrap_or(Value::String(line)));
        }
    });
    (client, stdin, rx)
}

/// Waits for the approval request the gateway opened, and answers it as the human.
async fn answer_when_asked(server: &TestServer, approve: bool) {
    let admin = server.admin_client();
    for _ in 0..200 {
        let pending = admin
            .list_approvals(&surety_api::approvals::ApprovalQuery::default())
            .await
            .unwrap();
        if let Some(a) = pending.items.first() {
            admin.answer_approval(a, approve, None).await.unwrap();
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the gateway opened no approval request");
}

#[tokio::test]
async fn a_held_call_goes_through_once_approved_and_not_once_denied() {
    let s = setup("hold").await;
    let py = python();
    let transfer = json!({"amount": 2000, "currency": "EUR", "to": "acct-7"});
    let steps = json!([
        {"op": "call", "tool": "payments.transfer", "arguments": transfer},
        {"op": "call", "tool": "payments.transfer", "arguments": transfer},
    ]);
    let (mut client, stdin, mut rx) = start_client(&py, &s, &steps);
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(90), rx.recv())
            .await
            .expect("the client answers")
            .expect("the client is still running")
    };
    // The call waits while the human looks at it; then the answer decides it.
    answer_when_asked(&s.server, true).await;
    let approved = next().await;
    assert_eq!(approved["ok"], true, "{approved}");
    answer_when_asked(&s.server, false).await;
    let denied = next().await;
    assert_eq!(denied["error"]["code"], -32003, "{denied}");
    drop(stdin);
    let _ = tokio::task::spawn_blocking(move || client.wait()).await;
    let calls = lines(&s.dir.path().join("calls.jsonl"));
    assert_eq!(
        calls.len(),
        1,
        "only the approved transfer reached the server: {calls:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn the_official_mcp_sdk_calls_tools_through_the_gateway() {
    let s = setup("error").await;
    let py = python();
    let steps = json!([
        {"op": "list"},
        {"op": "call", "tool": "crm.read_customer", "arguments": {"customer_id": "c-42"}},
        {"op": "call", "tool": "iam.grant_role", "arguments": {"user": "eve", "role": "admin"}},
        {"op": "call", "tool": "payments.transfer", "arguments": {"amount": 2000, "currency": "EUR", "to": "acct-7"}},
        {"op": "wait_line"},
        {"op": "call", "tool": "payments.transfer", "arguments": {"amount": 2000, "currency": "EUR", "to": "acct-7"},
         "meta": {"surety/auth_req_id": "${auth_req_id}"}},
    ]);
    let (client, mut stdin, mut rx) = start_client(&py, &s, &steps);
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .expect("the client answers")
            .expect("the client is still running")
    };
    let listed = next().await;
    assert_eq!(
        listed["tools"],
        json!(["crm.read_customer", "payments.transfer"]),
        "only what the grant names: {listed}"
    );
    let read = next().await;
    assert_eq!(read["ok"], true, "{read}");
    assert_eq!(read["content"], json!(["customer c-42: ACME Corp"]));
    let refused = next().await;
    assert_eq!(
        (refused["ok"].as_bool(), refused["error"]["code"].as_i64()),
        (Some(false), Some(-32003)),
        "{refused}"
    );
    assert_eq!(
        refused["error"]["message"], "Access denied",
        "nothing about whether the tool exists"
    );
    let stepped = next().await;
    assert_eq!(stepped["error"]["code"], -32004, "{stepped}");
    let data = &stepped["error"]["data"];
    assert_eq!(
        data["authorization_details"][0]["action"], "payments.transfer",
        "{stepped}"
    );
    let auth_req_id = data["auth_req_id"]
        .as_str()
        .expect("an auth_req_id")
        .to_owned();
    // The human approves with their device key, from the command line.
    let profile = super::admin_profile(&s.server, s.dir.path());
    let listed = super::surety_cli(&profile, &["approve", "list", "--json"]).await;
    assert!(
        listed.status.success(),
        "{}",
        describe("surety approve list", &listed)
    );
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let id = listed["items"][0]["id"]
        .as_str()
        .expect("one request waits")
        .to_owned();
    let approved = super::surety_cli(
        &profile,
        &["approve", "approve", &id, "--reason", "checked"],
    )
    .await;
    assert!(
        approved.status.success(),
        "{}",
        describe("surety approve approve", &approved)
    );
    writeln!(stdin, "{}", json!({"auth_req_id": auth_req_id})).unwrap();
    let paid = next().await;
    assert_eq!(paid["ok"], true, "{paid}");
    drop(stdin);
    let out = tokio::task::spawn_blocking(move || client.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success(), "{}", describe("client.py", &out));

    // The upstream saw the allowed calls, once each, and never the refused ones…
    let calls: Vec<String> = lines(&s.dir.path().join("calls.jsonl"))
        .iter()
        .map(|c| c["tool"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(calls, ["crm.read_customer", "payments.transfer"]);
    // …and never the agent's token or proof.
    let requests = lines(&s.dir.path().join("http.jsonl"));
    assert!(!requests.is_empty());
    assert!(
        requests
            .iter()
            .all(|r| r["authorization"] == false && r["dpop"] == false),
        "{requests:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn the_gateway_refuses_what_it_must() {
    let mut s = setup("error").await;
    let url = s.gateway_url.clone();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    .to_string();

    // RFC 9728: the metadata names Surety and the resource.
    let meta_url = url.replacen("/crm", "/.well-known/oauth-protected-resource/crm", 1);
    let meta: Value = http()
        .get(&meta_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["resource"], url);
    assert_eq!(meta["authorization_servers"], json!([s.server.base]));
    assert_eq!(meta["dpop_bound_access_tokens_required"], true);

    // No token: refused from the headers, before any body is read (even one over the limit).
    let r = http()
        .post(&url)
        .body("x".repeat(200_000))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "not 413: an anonymous body is never read");

    // No token: 401 naming where to learn about the resource.
    let r = http().post(&url).body(init.clone()).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.starts_with("DPoP ")
            && challenge.contains(&format!("resource_metadata=\"{meta_url}\"")),
        "{challenge}"
    );

    // An allowed initialize goes through, and the upstream opens a session.
    let r = s.post(&url, init.clone()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let session = r.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    // Another agent cannot ride on that session.
    let (other_key, other_token) = agent_with_token(&s.server, "other", &url).await;
    let ping = json!({"jsonrpc": "2.0", "id": 2, "method": "ping"}).to_string();
    let on_session = |key: &PrivateJwk, token: &str| {
        mcp_post(&url, token, proof_for(key, &url, token), Some(&session))
            .body(ping.clone())
            .send()
    };
    assert_eq!(
        on_session(&other_key, &other_token).await.unwrap().status(),
        404
    );
    assert_eq!(
        on_session(&s.agent_key, &s.token).await.unwrap().status(),
        200,
        "its own agent may"
    );

    // A token for another resource, with a good proof for the gateway.
    let (elsewhere_key, elsewhere) =
        agent_with_token(&s.server, "elsewhere", "https://crm.example").await;
    let proof = proof_for(&elsewhere_key, &url, &elsewhere);
    let r = mcp_post(&url, &elsewhere, proof, None)
        .body(init.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.contains("invalid_token") && challenge.contains("audience"),
        "{challenge}"
    );

    // A proof for another URL, a replayed proof.
    let r = s
        .post(&format!("{url}x"), init.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_dpop_proof")
    );
    let proof = proof_for(&s.agent_key, &url, &s.token);
    let send = |proof: String| {
        mcp_post(&url, &s.token, proof, None)
            .body(init.clone())
            .send()
    };
    assert_eq!(send(proof.clone()).await.unwrap().status(), 200);
    let replayed = send(proof).await.unwrap();
    assert_eq!(replayed.status(), 401);
    assert!(
        replayed.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("jti"),
        "{:?}",
        replayed.headers()
    );

    // Malformed JSON-RPC, a batch of requests, an oversized body.
    let r = s.post(&url, "{not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], -32700);
    let batch = json!([{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "crm.read_customer"}},
                      {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "iam.grant_role"}}]);
    let r = s.post(&url, batch.to_string()).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], -32600);
    let big = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\",\"params\":{{\"pad\":\"{}\"}}}}",
        "x".repeat(70_000)
    );
    assert_eq!(s.post(&url, big).send().await.unwrap().status(), 413);
    // A method the gateway does not know is refused without reaching the upstream.
    let r = s
        .post(
            &url,
            json!({"jsonrpc": "2.0", "id": 9, "method": "admin/shutdown"}).to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], -32003);

    // A mapping added to the configuration while running (SIGHUP or a file change): it
    // names another subject, so the call is a mapping error and no decision is asked.
    let spoofing = format!(
        "{}[upstream.tools.\"crm.read_customer\".evaluation]\nsubject = {{ id = \"$params.arguments.on_behalf_of\" }}\n\
         action = {{ name = \"crm.read_customer\" }}\nresource = {{ type = \"Resource\", id = \"c\" }}\n",
        s.toml
    );
    let changed =
        surety_gateway::GatewayConfig::parse(&spoofing, &s.dir.path().join("gateway.toml"))
            .unwrap();
    assert!(
        s.reloader.apply(&changed).is_empty(),
        "mappings reload without a restart"
    );
    let call = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
        "name": "crm.read_customer", "arguments": {"customer_id": "c", "on_behalf_of": "hum_someone_else"}}});
    let on_session_call = |body: String| {
        mcp_post(
            &url,
            &s.token,
            proof_for(&s.agent_key, &url, &s.token),
            Some(&session),
        )
        .body(body)
        .send()
    };
    let r: Value = on_session_call(call.to_string())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["error"]["code"], -32602, "{r}");
    // The client learns the rule it broke, not the mapping's text.
    assert_eq!(
        r["error"]["message"],
        "COAZ mapping error: the call names another subject or agent than its token",
        "{r}"
    );

    // A tool outside the token's scope: 403 insufficient_scope naming the scope (MCP's scope
    // challenge), with the same JSON-RPC error in the body — whether or not the tool exists.
    for tool in ["iam.grant_role", "no.such_tool"] {
        let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": tool, "arguments": {}}});
        let r = on_session_call(call.to_string()).await.unwrap();
        assert_eq!(r.status(), 403, "{tool}");
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(
            challenge.contains("error=\"insufficient_scope\"")
                && challenge.contains(&format!("scope=\"{tool}\"")),
            "{challenge}"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            (
                body["error"]["code"].as_i64(),
                body["error"]["message"].as_str()
            ),
            (Some(-32003), Some("Access denied"))
        );
    }
    // Keys another decoder could read otherwise are refused, not forwarded.
    for smuggled in [
        json!({"jsonrpc": "2.0", "id": 8, "method": "ping", "Method": "tools/call", "params": {"name": "iam.grant_role"}}),
        json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "crm.read_customer", "Name": "iam.grant_role"}}),
    ] {
        let r = on_session_call(smuggled.to_string()).await.unwrap();
        assert_eq!(r.status(), 400, "{smuggled}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], -32600);
    }
    // The tools list is filtered, whatever id the answer names (this server refuses the id
    // `1.0` outright; nothing unfiltered comes back either way).
    for id in ["11", "1.0"] {
        let list = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#);
        let listed = on_session_call(list).await.unwrap().text().await.unwrap();
        assert!(!listed.contains("iam.grant_role"), "{listed}");
        if id == "11" {
            assert!(listed.contains("crm.read_customer"), "{listed}");
        }
    }

    // Resources and prompts are listed only to a scope that may read them: this grant names
    // tools only; another's names `resources/read` and `prompts/get`.
    let (reader_key, reader) = agent_with_scopes(
        &s.server,
        "reader",
        &url,
        &["resources/read", "prompts/get"],
    )
    .await;
    let reader_session = mcp_post(&url, &reader, proof_for(&reader_key, &url, &reader), None)
        .body(init.clone())
        .send()
        .await
        .unwrap()
        .headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let read = |listed: &str| -> Value {
        let data = listed
            .lines()
            .find_map(|l| l.strip_prefix("data: "))
            .unwrap_or(listed);
        serde_json::from_str(data).unwrap()
    };
    for (method, key, name) in [
        ("resources/list", "resources", "customer c-1"),
        ("prompts/list", "prompts", "greeting"),
    ] {
        let list = json!({"jsonrpc": "2.0", "id": 12, "method": method}).to_string();
        let listed = on_session_call(list.clone())
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(read(&listed)["result"][key], json!([]), "{listed}");
        let listed = mcp_post(
            &url,
            &reader,
            proof_for(&reader_key, &url, &reader),
            Some(&reader_session),
        )
        .body(list)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
        assert_eq!(read(&listed)["result"][key][0]["name"], name, "{listed}");
    }

    // Upstream down: a clear error, quickly.
    s.upstream.take();
    let r = s.post(&url, init.clone()).send().await.unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], -32005);

    // The token revoked mid-session: refused at once (introspection).
    let admin = s.server.admin_client();
    let grants = admin
        .list_grants(&surety_api::credentials::GrantQuery::default())
        .await
        .unwrap();
    admin
        .grant_action(grants.items[0].id, "revoke", Some("test".into()))
        .await
        .unwrap();
    let r = s.post(&url, init).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token")
    );
    assert!(
        !s.dir.path().join("calls.jsonl").exists()
            || lines(&s.dir.path().join("calls.jsonl")).is_empty(),
        "no tool reached the upstream"
    );
    s.stop().await;
}

/// How many introspections the server answered (its metric).
async fn introspections(server: &TestServer) -> u64 {
    let text = http()
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("surety_introspections_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// A gateway that follows Surety's security event stream refuses a revoked token on its own:
/// no introspection.
#[tokio::test]
async fn a_gateway_following_events_refuses_a_revoked_token_without_introspection() {
    let s = setup_with("error", "introspect = false\nfollow_signals = \"20ms\"\n").await;
    let url = s.gateway_url.clone();
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})
    .to_string();
    assert_eq!(
        s.post(&url, init.clone()).send().await.unwrap().status(),
        200
    );
    let before = introspections(&s.server).await;
    let admin = s.server.admin_client();
    let grants = admin
        .list_grants(&surety_api::credentials::GrantQuery::default())
        .await
        .unwrap();
    admin
        .grant_action(grants.items[0].id, "revoke", Some("test".into()))
        .await
        .unwrap();
    let revoked = std::time::Instant::now();
    loop {
        let r = s.post(&url, init.clone()).send().await.unwrap();
        if r.status() == 401 {
            assert!(
                r.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .contains("invalid_token")
            );
            break;
        }
        assert_eq!(r.status(), 200);
        assert!(
            revoked.elapsed() < std::time::Duration::from_secs(5),
            "the gateway never learnt of the revocation"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    eprintln!(
        "the gateway refused the revoked token {:?} after the revocation",
        revoked.elapsed()
    );
    assert_eq!(
        introspections(&s.server).await,
        before,
        "the gateway introspected"
    );
    s.stop().await;
}
