//! Nodes on one PostgreSQL database, one issuer (as behind a load balancer): they sign with
//! the same keys (sealed in the database under the shared key-encryption key), a revocation
//! made through one is seen by the others on the very next introspection or decision, and
//! what they cache (the policy set, the signing keys) follows changes announced over
//! `LISTEN`/`NOTIFY`. A node with another key-encryption key refuses to start.

use std::time::Duration;

use serde_json::{Value, json};
use surety_api::credentials::ApplyPolicySet;
use surety_api::oauth::CLIENT_ASSERTION_TYPE_JWT_BEARER;
use surety_testkit::{Backend, Options, TestServer, http, postgres_configured};

use crate::support::{
    CRM, Delegation, TokenRequest, delegation, expect_error, header_of, introspect_at, mint,
    ok_token,
};

#[tokio::test]
async fn nodes_sharing_postgresql_share_signing_keys_and_revocations() {
    if !postgres_configured() {
        eprintln!("PostgreSQL not configured: SURETY_TEST_DATABASE_URL is unset");
        return;
    }
    let one = TestServer::start_with(Options {
        backend: Backend::Postgres,
        ..Options::default()
    })
    .await;
    let two = TestServer::start_with(Options {
        join: Some(one.node()),
        ..Options::default()
    })
    .await;
    let d = delegation(&one, 0).await;
    let at_one = one.url("/oauth2/introspect");
    let at_two = two.url("/oauth2/introspect");
    // Minted by one, believed by two; minted by two (its nonce too comes from the shared
    // secret), believed by one.
    let token = mint(&one, &d).await;
    assert_eq!(
        introspect_at(&one, &at_two, &d, &token).await["active"],
        true
    );
    let response = TokenRequest::for_grant(&one, &d)
        .send_to(&two.url("/oauth2/token"))
        .await;
    assert_eq!(response.status(), 200);
    let from_two: serde_json::Value = response.json().await.unwrap();
    let from_two = from_two["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        introspect_at(&one, &at_one, &d, &from_two).await["active"],
        true
    );
    // Revoked through two (RFC 7009), inactive on one at once.
    let r = http()
        .post(two.url("/oauth2/revoke"))
        .form(&[
            ("token", token.clone()),
            (
                "client_assertion_type",
                CLIENT_ASSERTION_TYPE_JWT_BEARER.into(),
            ),
            (
                "client_assertion",
                one.client_assertion(&d.key, &d.agent.id.to_string()),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        introspect_at(&one, &at_one, &d, &token).await["active"],
        false
    );
    // A rotation made on one: two signs with the new key within `key_refresh_interval`,
    // and meanwhile keeps verifying both (an unknown kid makes it re-read at once).
    one.admin_client().rotate_signing_key(None).await.unwrap();
    let after = ok_token(&one, TokenRequest::for_grant(&one, &d)).await;
    let after = after["access_token"].as_str().unwrap();
    assert_eq!(
        introspect_at(&one, &at_two, &d, after).await["active"],
        true
    );

    // A node whose key-encryption key differs cannot open the signing keys: it fails to
    // start and says why.
    let stranger = tempfile::tempdir().unwrap();
    let node = one.node();
    let config = surety_server::Config::load(
        None,
        |_| None,
        &[
            ("data_dir", stranger.path().display().to_string()),
            ("database_url", node.database_url.clone()),
            (
                "signing_kek_file",
                stranger.path().join("other-kek").display().to_string(),
            ),
        ],
    )
    .unwrap();
    let store = surety_server::bootstrap::open_store(&config).await.unwrap();
    let err = surety_server::AppState::new(
        config,
        store.clone(),
        std::sync::Arc::new(surety_core::clock::SystemClock),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("same key-encryption key"), "{err}");
    store.close().await;
    two.stop().await;
    one.stop().await;
}

/// A decision about `token` asked at `node` (behind the shared issuer `front`) by the
/// delegation's resource server: its own `decisions` token from that node, then the
/// question, each with a DPoP proof for the issuer's URL.
async fn decide_at(front: &TestServer, node: &TestServer, d: &Delegation, token: &str) -> Value {
    let proof = front.proof(
        &d.rs_key,
        "POST",
        "/oauth2/token",
        None,
        Some(&front.nonce()),
    );
    let rs = d.rs.id.to_string();
    let issued: Value = http()
        .post(node.url("/oauth2/token"))
        .header("DPoP", proof)
        .form(&[
            ("grant_type", "client_credentials".to_owned()),
            ("scope", "decisions".to_owned()),
            (
                "client_assertion_type",
                CLIENT_ASSERTION_TYPE_JWT_BEARER.to_owned(),
            ),
            ("client_assertion", front.client_assertion(&d.rs_key, &rs)),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = issued["access_token"].as_str().unwrap();
    let proof = front.proof(&d.rs_key, "POST", "/v1/decisions", Some(access), None);
    http()
        .post(node.url("/v1/decisions"))
        .header("Authorization", format!("DPoP {access}"))
        .header("DPoP", proof)
        .json(&json!({
            "token": token,
            "action": "payments.transfer",
            "resource": {"type": "Resource", "id": "acct-1"},
            "arguments": {"amount": 10},
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits (up to 5 s) until `check` holds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while !check().await {
        assert!(start.elapsed() < Duration::from_secs(5), "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Three nodes on one PostgreSQL behave as one Surety: a revocation on one is refused on the
/// others; a proof used on one is a replay on another; a policy set applied or a key
/// rotated on one is in force on the others at once (announced over `LISTEN`/`NOTIFY`,
/// although they would re-read only every hour), also after the notification channel was
/// cut; appends from all three make one audit tree that verifies.
#[tokio::test]
async fn three_nodes_behave_as_one() {
    if !postgres_configured() {
        eprintln!("PostgreSQL not configured: SURETY_TEST_DATABASE_URL is unset");
        return;
    }
    let config = vec![("key_refresh_interval", "1h".to_owned())];
    let one = TestServer::start_with(Options {
        backend: Backend::Postgres,
        config: config.clone(),
        ..Options::default()
    })
    .await;
    let join = || Options {
        join: Some(one.node()),
        config: config.clone(),
        ..Options::default()
    };
    let two = TestServer::start_with(join()).await;
    let three = TestServer::start_with(join()).await;
    let nodes = [&one, &two, &three];
    let d = delegation(&one, 0).await;

    // Revoked on one → inactive and denied on two and three.
    let token = mint(&one, &d).await;
    for n in [&two, &three] {
        assert_eq!(decide_at(&one, n, &d, &token).await["decision"], "allow");
    }
    one.admin_client()
        .grant_action(d.grant.id, "revoke", None)
        .await
        .unwrap();
    for n in [&two, &three] {
        let at = n.url("/oauth2/introspect");
        assert_eq!(introspect_at(&one, &at, &d, &token).await["active"], false);
        assert_eq!(decide_at(&one, n, &d, &token).await["decision"], "deny");
    }

    // One DPoP proof, sent to node two then node three: the replay cache is shared.
    let again = one
        .grant(d.agent.id, &["payments.transfer"], &[CRM], 0)
        .await;
    let d = Delegation { grant: again, ..d };
    let proof = one.proof(&d.key, "POST", "/oauth2/token", None, Some(&one.nonce()));
    let first = TokenRequest::for_grant(&one, &d)
        .proofs(vec![proof.clone()])
        .send_to(&two.url("/oauth2/token"))
        .await;
    assert_eq!(first.status(), 200);
    let replay = TokenRequest::for_grant(&one, &d)
        .proofs(vec![proof])
        .send_to(&three.url("/oauth2/token"))
        .await;
    expect_error(replay, 400, "invalid_dpop_proof").await;

    // A policy set applied on one is in force on two and three at once.
    let token = mint(&one, &d).await;
    assert_eq!(
        decide_at(&one, &three, &d, &token).await["decision"],
        "allow"
    );
    let deny_all = "@id(\"nothing\") @reason(\"closed\")\nforbid (principal, action, resource);\n\
                    @id(\"reads\") permit (principal, action, resource);\n";
    let applied = one
        .admin_client()
        .apply_policies(&ApplyPolicySet {
            policies: deny_all.into(),
            catalog: None,
            note: None,
        })
        .await
        .unwrap();
    for n in [&two, &three] {
        eventually(
            "a policy set applied on node one is in force on the others",
            || async { decide_at(&one, n, &d, &token).await["policy_version"] == applied.version },
        )
        .await;
        assert_eq!(decide_at(&one, n, &d, &token).await["decision"], "deny");
    }

    // A rotation on one: three signs with the new key at once.
    let rotated = one.admin_client().rotate_signing_key(None).await.unwrap();
    eventually("a key rotated on node one signs on node three", || async {
        let t: Value = TokenRequest::for_grant(&one, &d)
            .send_to(&three.url("/oauth2/token"))
            .await
            .json()
            .await
            .unwrap();
        header_of(t["access_token"].as_str().unwrap())["kid"] == rotated.kid.as_str()
    })
    .await;

    // The notification channel cut (its connections terminated): the nodes reconnect, and
    // what was applied meanwhile is in force once they resync.
    let pg = sqlx::PgPool::connect(&one.node().database_url)
        .await
        .unwrap();
    let cut: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE pid <> pg_backend_pid() AND query ILIKE 'LISTEN %surety_changes%'",
    )
    .fetch_one(&pg)
    .await
    .unwrap();
    assert!(cut >= 3, "each node listens: {cut} connections cut");
    let reopened = one.admin_client().rollback_policies(0).await.unwrap();
    for n in [&two, &three] {
        eventually(
            "a policy applied while the channel was cut is in force after",
            || async { decide_at(&one, n, &d, &token).await["policy_version"] == reopened.version },
        )
        .await;
        assert_eq!(decide_at(&one, n, &d, &token).await["decision"], "allow");
    }
    pg.close().await;

    // Appends from every node at once: one tree, no forks, verified offline.
    let mut tasks = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        for _ in 0..10 {
            let request = TokenRequest::for_grant(&one, &d);
            let url = n.url("/oauth2/token");
            tasks.push(async move { (i, request.send_to(&url).await.status()) });
        }
    }
    for (i, status) in futures_util::future::join_all(tasks).await {
        assert_eq!(status, 200, "node {i}");
    }
    let dir = tempfile::tempdir().unwrap();
    let profile = crate::e2e::admin_profile(&one, dir.path());
    let export = dir.path().join("audit.json");
    let out = crate::e2e::surety_cli(
        &profile,
        &["audit", "export", "--out", export.to_str().unwrap()],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = three.log_key().await;
    let out = crate::e2e::surety_cli(
        &profile,
        &["audit", "verify", export.to_str().unwrap(), "--key", &key],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    three.stop().await;
    two.stop().await;
    one.stop().await;
}

/// `node` (behind `front`) is ready again, decides, and follows changes announced by
/// `front` again: a policy set applied there is in force here.
async fn recovered(front: &TestServer, node: &TestServer, d: &Delegation, token: &str) {
    eventually("the node is ready again", || async {
        http()
            .get(node.url("/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert_eq!(decide_at(front, node, d, token).await["decision"], "allow");
    let applied = front
        .admin_client()
        .apply_policies(&ApplyPolicySet {
            policies: format!(
                "@id(\"all\") permit (principal, action, resource);\n// applied for {}\n",
                node.base
            ),
            catalog: None,
            note: None,
        })
        .await
        .unwrap();
    eventually("the node follows changes again", || async {
        decide_at(front, node, d, token).await["policy_version"] == applied.version
    })
    .await;
}

/// A node whose every database connection is cut (as by a PostgreSQL restart) reconnects:
/// it is ready again, decides, and follows other nodes' changes again.
#[tokio::test]
async fn a_node_recovers_when_its_database_connections_are_cut() {
    if !postgres_configured() {
        eprintln!("PostgreSQL not configured: SURETY_TEST_DATABASE_URL is unset");
        return;
    }
    let config = vec![("key_refresh_interval", "1h".to_owned())];
    let one = TestServer::start_with(Options {
        backend: Backend::Postgres,
        config: config.clone(),
        ..Options::default()
    })
    .await;
    let name = format!("surety-two-{}", uuid::Uuid::new_v4().simple());
    let mut two_config = config.clone();
    two_config.push((
        "database_url",
        format!("{}&application_name={name}", one.node().database_url),
    ));
    let two = TestServer::start_with(Options {
        join: Some(one.node()),
        config: two_config,
        ..Options::default()
    })
    .await;
    let d = delegation(&one, 0).await;
    let token = mint(&one, &d).await;
    assert_eq!(decide_at(&one, &two, &d, &token).await["decision"], "allow");

    let pg = sqlx::PgPool::connect(&one.node().database_url)
        .await
        .unwrap();
    let cut: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
    )
    .bind(&name)
    .fetch_one(&pg)
    .await
    .unwrap();
    assert!(
        cut >= 2,
        "the node's pool and its change feed: {cut} connections cut"
    );
    pg.close().await;

    recovered(&one, &two, &d, &token).await;
    two.stop().await;
    one.stop().await;
}

/// A PostgreSQL cluster of the test's own (initdb in a temporary directory, on a free port),
/// stopped when dropped: one that can be restarted without disturbing the rest of the suite.
struct OwnCluster {
    bin: std::path::PathBuf,
    data: std::path::PathBuf,
    url: String,
    dir: tempfile::TempDir,
}

impl OwnCluster {
    fn pg_ctl(&self, args: &[&str]) {
        let out = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's server binaries (/usr/lib/postgresql/*/bin)")
            .filter_map(Result::ok)
            .map(|e| e.path().join("bin"))
            .find(|p| p.join("initdb").exists())
            .expect("initdb");
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        if is_root() {
            let out = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .output()
                .unwrap();
            assert!(out.status.success());
        }
        let out = as_postgres(&bin.join("initdb"))
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Self {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            bin,
            data,
            dir,
        };
        let options = format!(
            "-p {port} -c listen_addresses=127.0.0.1 -k {}",
            cluster.dir.path().display()
        );
        let log = cluster.dir.path().join("log");
        cluster.pg_ctl(&["-o", &options, "-l", log.to_str().unwrap(), "-w", "start"]);
        cluster
    }
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program`, run as the `postgres` user when this process is root (PostgreSQL refuses to
/// run as root).
fn as_postgres(program: &std::path::Path) -> std::process::Command {
    if is_root() {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        std::process::Command::new(program)
    }
}

/// Two nodes on a PostgreSQL that restarts under them: both come back ready, decide, and
/// follow each other's changes again.
#[tokio::test]
async fn nodes_recover_when_postgresql_restarts() {
    if !postgres_configured() {
        eprintln!("PostgreSQL not configured: SURETY_TEST_DATABASE_URL is unset");
        return;
    }
    let cluster = tokio::task::spawn_blocking(OwnCluster::start)
        .await
        .unwrap();
    let config = vec![
        ("key_refresh_interval", "1h".to_owned()),
        ("database_url", cluster.url.clone()),
    ];
    let one = TestServer::start_with(Options {
        config: config.clone(),
        ..Options::default()
    })
    .await;
    let two = TestServer::start_with(Options {
        join: Some(one.node_on(&cluster.url)),
        config: vec![("key_refresh_interval", "1h".to_owned())],
        ..Options::default()
    })
    .await;
    let d = delegation(&one, 0).await;
    let token = mint(&one, &d).await;
    assert_eq!(decide_at(&one, &two, &d, &token).await["decision"], "allow");
    let cluster = tokio::task::spawn_blocking(move || {
        // With its log file named again: a server writing to pg_ctl's output would keep it
        // open.
        let log = cluster.dir.path().join("log");
        cluster.pg_ctl(&["-m", "fast", "-l", log.to_str().unwrap(), "-w", "restart"]);
        cluster
    })
    .await
    .unwrap();

    recovered(&one, &one, &d, &token).await;
    recovered(&one, &two, &d, &token).await;
    two.stop().await;
    one.stop().await;
    drop(cluster);
}
