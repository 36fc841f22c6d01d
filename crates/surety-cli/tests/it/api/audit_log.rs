//! The tamper-evident audit log over HTTP: a signed checkpoint (C2SP), opened with the
//! published verifier key; inclusion and consistency proofs (RFC 9162) checked against it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;
use surety_core::merkle;
use surety_jose::note::{Checkpoint, NoteKey, open};
use surety_testkit::{Options, TestServer, http};

use crate::support::{call, expect_error, token_for};

fn hash(b64: &Value) -> merkle::Hash {
    STANDARD
        .decode(b64.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

async fn get(server: &TestServer, path: &str) -> reqwest::Response {
    let key = server.admin_key();
    let token = token_for(server, &key, &server.admin.id.to_string()).await;
    call(server, &key, &token, "GET", path, None).await
}

/// The current checkpoint, verified with the published key.
async fn checkpoint(server: &TestServer) -> Checkpoint {
    let key = NoteKey::parse(&server.log_key().await).unwrap();
    let r = get(server, "/v1/audit/checkpoint").await;
    assert_eq!(r.headers()["content-type"], "text/plain; charset=utf-8");
    let note = r.text().await.unwrap();
    let text = open(&note, &[key]).unwrap_or_else(|e| panic!("{e}: {note}"));
    Checkpoint::parse(text).unwrap()
}

#[tokio::test]
async fn checkpoints_are_signed_and_proofs_verify_against_them() {
    let server = TestServer::start().await;
    let first = checkpoint(&server).await;
    assert!(first.size >= 1, "the deployment's own events: {first:?}");
    assert!(first.origin.ends_with("/audit"), "{first:?}");
    assert!(first.extensions[0].starts_with("time "), "{first:?}");
    // More events.
    for name in ["a", "b", "c"] {
        server.agent(name).await;
    }
    let later = checkpoint(&server).await;
    assert!(later.size > first.size);
    // Every leaf of the later tree is included in it.
    for index in [0, first.size - 1, later.size - 1] {
        let path = format!(
            "/v1/audit/proofs/inclusion?index={index}&tree_size={}",
            later.size
        );
        let proof: Value = get(&server, &path).await.json().await.unwrap();
        let nodes: Vec<merkle::Hash> = proof["inclusion_path"]
            .as_array()
            .unwrap()
            .iter()
            .map(hash)
            .collect();
        assert_eq!(hash(&proof["root_hash"]), later.root);
        let leaf = hash(&proof["leaf_hash"]);
        assert!(merkle::verify_inclusion(
            index,
            later.size,
            &leaf,
            &nodes,
            &later.root
        ));
        let mut other = leaf;
        other[0] ^= 1;
        assert!(!merkle::verify_inclusion(
            index,
            later.size,
            &other,
            &nodes,
            &later.root
        ));
    }
    // An event as listed is in the signed tree: its leaf, hashed here from the listing,
    // has an inclusion proof to the checkpoint's root.
    let listed = server
        .admin_client()
        .list_audit(&surety_api::admin::AuditQuery {
            kind: Some("agent.registered".into()),
            limit: Some(1),
            ..Default::default()
        })
        .await
        .unwrap();
    let e = &listed.items[0];
    let index = e.leaf_index.expect("a leaf index");
    let event = surety_core::audit::NewEvent {
        id: e.id,
        time: e.time,
        kind: e.kind,
        actor: e.actor,
        target: e.target.clone(),
        agent: e.agent,
        human: e.human,
        details: e.details.clone(),
    };
    let leaf = merkle::leaf_hash(&event.leaf_entry());
    let path = format!(
        "/v1/audit/proofs/inclusion?index={index}&tree_size={}",
        later.size
    );
    let proof: Value = get(&server, &path).await.json().await.unwrap();
    assert_eq!(
        hash(&proof["leaf_hash"]),
        leaf,
        "the listing hashes to the stored leaf"
    );
    let nodes: Vec<merkle::Hash> = proof["inclusion_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(hash)
        .collect();
    assert!(merkle::verify_inclusion(
        index,
        later.size,
        &leaf,
        &nodes,
        &later.root
    ));
    // The later tree extends the earlier one: nothing was rewritten.
    let path = format!(
        "/v1/audit/proofs/consistency?from={}&to={}",
        first.size, later.size
    );
    let proof: Value = get(&server, &path).await.json().await.unwrap();
    let nodes: Vec<merkle::Hash> = proof["consistency_path"]
        .as_array()
        .unwrap()
        .iter()
        .map(hash)
        .collect();
    assert!(merkle::verify_consistency(
        first.size,
        later.size,
        &first.root,
        &later.root,
        &nodes
    ));
    // A range of leaves, with the subtrees around it, gives the signed root.
    let size = later.size;
    let path = format!("/v1/audit/proofs/range?start=1&end=3&tree_size={size}");
    let proof: Value = get(&server, &path).await.json().await.unwrap();
    assert_eq!(hash(&proof["root_hash"]), later.root);
    let mut outside = merkle::NodeMap::default();
    for n in proof["nodes"].as_array().unwrap() {
        let (level, index) = (n["level"].as_u64().unwrap(), n["index"].as_u64().unwrap());
        assert!(
            (index + 1) << level <= 1 || index << level >= 3,
            "only nodes outside the range: {n}"
        );
        outside
            .0
            .insert((u8::try_from(level).unwrap(), index), hash(&n["hash"]));
    }
    let leaves: Value = get(&server, "/v1/audit/leaves?start=1&end=3")
        .await
        .json()
        .await
        .unwrap();
    let held: Vec<merkle::Hash> = leaves["leaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| merkle::leaf_hash(l["entry"].to_string().as_bytes()))
        .collect();
    let partial = merkle::Partial {
        outside: &outside,
        start: 1,
        leaves: &held,
    };
    assert_eq!(merkle::root(&partial, size), Ok(later.root));
    // Out of range, and without credentials.
    for bad in [
        format!("/v1/audit/proofs/inclusion?index={size}&tree_size={size}"),
        format!(
            "/v1/audit/proofs/inclusion?index=0&tree_size={}",
            size + 100
        ),
        format!("/v1/audit/proofs/consistency?from=0&to={size}"),
        format!("/v1/audit/proofs/consistency?from={size}&to=1"),
        format!("/v1/audit/proofs/consistency?from=1&to={}", size + 100),
        format!("/v1/audit/proofs/range?start=2&end=2&tree_size={size}"),
        format!(
            "/v1/audit/proofs/range?start=0&end={}&tree_size={size}",
            size + 1
        ),
        format!(
            "/v1/audit/proofs/range?start=0&end=1&tree_size={}",
            size + 100
        ),
    ] {
        expect_error(get(&server, &bad).await, 400, "invalid_request").await;
    }
    let anonymous = http()
        .get(server.url("/v1/audit/checkpoint"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    server.stop().await;
}

#[tokio::test]
async fn checkpoints_need_an_ed25519_organisation_key() {
    let server = TestServer::start_with(Options {
        config: vec![("signing_alg", "ES256".into())],
        ..Options::default()
    })
    .await;
    let r = get(&server, "/v1/audit/checkpoint").await;
    let body = expect_error(r, 503, "temporarily_unavailable").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("Ed25519")
    );
    server.stop().await;
}

#[tokio::test]
async fn checkpoints_are_made_as_events_accumulate_and_name_the_previous_one() {
    let server = TestServer::start_with(Options {
        config: vec![
            ("checkpoint_every", "2".into()),
            ("checkpoint_interval", "1s".into()),
        ],
        ..Options::default()
    })
    .await;
    let key = NoteKey::parse(&server.log_key().await).unwrap();
    let mut stored: Vec<Value> = Vec::new();
    for (round, name) in ["x", "y", "z"].into_iter().enumerate() {
        server.agent(name).await;
        // The background task signs within its tick (1 s here).
        for _ in 0..50 {
            let list: Value = get(&server, "/v1/audit/checkpoints")
                .await
                .json()
                .await
                .unwrap();
            stored = list["checkpoints"].as_array().unwrap().clone();
            if stored.len() > round {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    assert!(stored.len() >= 3, "{stored:?}");
    let mut previous: Option<Checkpoint> = None;
    for c in &stored {
        let text = open(c["note"].as_str().unwrap(), std::slice::from_ref(&key)).unwrap();
        let cp = Checkpoint::parse(text).unwrap();
        assert_eq!(Some(cp.size), c["size"].as_u64());
        if let Some(p) = &previous {
            assert!(cp.size > p.size);
            let named = format!("previous {} {}", p.size, STANDARD.encode(p.root));
            assert!(cp.extensions.contains(&named), "{cp:?} names {p:?}");
        }
        previous = Some(cp);
    }
    server.stop().await;
}

#[tokio::test]
async fn no_checkpoint_is_signed_over_a_log_altered_since_the_last_one() {
    let server = TestServer::start().await;
    let signed = checkpoint(&server).await;
    server.agent("later").await;
    // Someone with write access to the database rewrites the tree under the signed
    // checkpoint (the leftmost node of every level: whatever the root is computed from).
    let db = server.dir.path().join("surety.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE audit_tree SET hash = randomblob(32) WHERE idx = 0")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let r = get(&server, "/v1/audit/checkpoint").await;
    let body = expect_error(r, 503, "temporarily_unavailable").await;
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.contains(&format!(
            "no longer matches its latest signed checkpoint (size {})",
            signed.size
        )),
        "{description}"
    );
    // The last signed checkpoint stays the latest.
    let list: Value = get(&server, "/v1/audit/checkpoints")
        .await
        .json()
        .await
        .unwrap();
    let sizes: Vec<u64> = list["checkpoints"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes.iter().max(), Some(&signed.size), "{list}");
    server.stop().await;
}
