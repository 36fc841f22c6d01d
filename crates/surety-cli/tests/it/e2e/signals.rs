//! The security event stream against a real server: a resource server registers as an SSF
//! receiver, revocations reach it as signed CAEP events by poll (RFC 8936) and by push
//! (RFC 8935) to a real HTTP receiver that goes down and comes back, each receiver sees only
//! what concerns its audience, and streams are its own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use surety_jose::{PrivateJwk, PublicJwk};
use surety_sdk::ResourceVerifier;
use surety_testkit::{Options, TestServer, http};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;

use crate::support::{CRM, PAY, delegation, mint, revoke};

const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
const AGENT_SUSPENDED: &str = "urn:surety:secevent:agent-suspended";

/// A receiver: a registered resource server calling the transmitter with its DPoP-bound
/// `decisions` token.
struct Receiver {
    base: String,
    key: PrivateJwk,
    verifier: ResourceVerifier,
}

impl Receiver {
    fn new(
        server: &TestServer,
        id: surety_core::id::ResourceServerId,
        audience: &str,
        key: &PrivateJwk,
    ) -> Self {
        let copy = || PrivateJwk::from_json(&key.to_json().unwrap()).unwrap();
        Self {
            base: server.base.clone(),
            key: copy(),
            verifier: ResourceVerifier::new(&server.base, audience, id, copy()).unwrap(),
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> reqwest::Response {
        let token = self.verifier.decisions_token().await.unwrap();
        let url = format!("{}{path}", self.base);
        let bare = url.split('?').next().unwrap().to_owned();
        let proof = surety_jose::rfc9449::create(
            &self.key,
            method,
            &bare,
            Some(&token),
            None,
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        let mut request = http()
            .request(method.parse().unwrap(), &url)
            .header("Authorization", format!("DPoP {token}"))
            .header("DPoP", proof);
        if let Some(b) = body {
            request = request.json(&b);
        }
        request.send().await.unwrap()
    }

    async fn json(&self, method: &str, path: &str, body: Option<Value>, status: u16) -> Value {
        let r = self.call(method, path, body).await;
        assert_eq!(r.status().as_u16(), status, "{method} {path}");
        if status == 204 {
            return Value::Null;
        }
        r.json().await.unwrap()
    }

    async fn poll(&self, stream: &str, ack: &[String]) -> Value {
        self.json(
            "POST",
            &format!("/ssf/poll/{stream}"),
            Some(json!({"ack": ack, "returnImmediately": true})),
            200,
        )
        .await
    }
}

/// Verifies a SET as a receiver would: the transmitter's keys, `typ`, `iss`, `aud`; no
/// `sub` or `exp` (SSF §4).
async fn open_set(server: &TestServer, set: &str, audience: &str) -> Value {
    let jwks: Value = http()
        .get(server.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jws = surety_jose::jws::decode(set, 16 * 1024).unwrap();
    assert_eq!(jws.header.typ.as_deref(), Some("secevent+jwt"));
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"].as_str() == jws.header.kid.as_deref())
        .map(|k| PublicJwk::from_json(k).unwrap())
        .expect("signed by a published key");
    jws.verify(&key).unwrap();
    let claims: Value = jws.claims().unwrap();
    assert_eq!(claims["iss"], server.base.as_str());
    assert_eq!(claims["aud"], audience);
    assert!(
        claims.get("sub").is_none() && claims.get("exp").is_none(),
        "{claims}"
    );
    claims
}

#[tokio::test]
async fn revocations_reach_receivers_by_poll_each_seeing_its_own() {
    let server = TestServer::start().await;
    let config: Value = http()
        .get(server.url("/.well-known/ssf-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["issuer"], server.base.as_str());
    assert_eq!(
        config["delivery_methods_supported"],
        json!(["urn:ietf:rfc:8935", "urn:ietf:rfc:8936"])
    );
    let d = delegation(&server, 0).await;
    let crm = Receiver::new(&server, d.rs.id, CRM, &d.rs_key);
    let (pay_rs, pay_key) = server.resource_server(PAY).await;
    let (other_rs, other_key) = server.resource_server("https://other.example").await;
    let pay = Receiver::new(&server, pay_rs.id, PAY, &pay_key);
    let other = Receiver::new(&server, other_rs.id, "https://other.example", &other_key);
    // Unauthenticated: 401.
    let r = http()
        .post(server.url("/ssf/streams"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Bad requests: an unknown method or event type.
    let bad = crm
        .call(
            "POST",
            "/ssf/streams",
            Some(json!({"delivery": {"method": "urn:example:smoke-signals"}})),
        )
        .await;
    assert_eq!(bad.status(), 400);
    // Unknown event types are ignored (SSF §8.1.1).
    let ignoring = crm
        .json(
            "POST",
            "/ssf/streams",
            Some(json!({"events_requested": ["urn:example:nothing", SESSION_REVOKED]})),
            201,
        )
        .await;
    assert_eq!(ignoring["events_delivered"], json!([SESSION_REVOKED]));
    let id = ignoring["stream_id"].as_str().unwrap();
    crm.json("DELETE", &format!("/ssf/streams?stream_id={id}"), None, 204)
        .await;
    // Poll streams (the default delivery) for CRM and for another audience.
    let created = crm.json("POST", "/ssf/streams", Some(json!({"events_requested": [SESSION_REVOKED, AGENT_SUSPENDED], "description": "crm"})), 201).await;
    let stream = created["stream_id"].as_str().unwrap().to_owned();
    assert_eq!(created["aud"], CRM);
    assert_eq!(created["delivery"]["method"], "urn:ietf:rfc:8936");
    assert_eq!(
        created["delivery"]["endpoint_url"],
        server.url(&format!("/ssf/poll/{stream}")).as_str()
    );
    let other_stream = other
        .json("POST", "/ssf/streams", Some(json!({})), 201)
        .await["stream_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Streams are their receiver's: another one cannot read, poll or delete them.
    assert_eq!(
        other
            .call("GET", &format!("/ssf/streams?stream_id={stream}"), None)
            .await
            .status(),
        404
    );
    assert_eq!(
        other
            .call("POST", &format!("/ssf/poll/{stream}"), Some(json!({})))
            .await
            .status(),
        404
    );
    assert_eq!(
        other
            .call("DELETE", &format!("/ssf/streams?stream_id={stream}"), None)
            .await
            .status(),
        404
    );
    assert_eq!(
        crm.json("GET", &format!("/ssf/status?stream_id={stream}"), None, 200)
            .await["status"],
        "enabled"
    );
    // Nothing yet.
    let empty = crm.poll(&stream, &[]).await;
    assert_eq!(empty["sets"], json!({}));
    // A token revoked: its jti, to CRM's stream.
    let token = mint(&server, &d).await;
    let jti = crate::support::claims_of(&token)["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    revoke(&server, &d, &token).await;
    let polled = crm.poll(&stream, &[]).await;
    let sets = polled["sets"].as_object().unwrap();
    assert_eq!(sets.len(), 1, "{polled}");
    let (set_jti, set) = sets.iter().next().unwrap();
    let claims = open_set(&server, set.as_str().unwrap(), CRM).await;
    assert_eq!(&claims["jti"], set_jti);
    assert_eq!(claims["sub_id"], json!({"format": "opaque", "id": jti}));
    assert!(
        claims["events"][SESSION_REVOKED]["event_timestamp"].is_i64(),
        "{claims}"
    );
    // Unacknowledged, it comes again, with the same jti; acknowledged, it is gone.
    let again = crm.poll(&stream, &[]).await;
    assert!(again["sets"].get(set_jti).is_some(), "{again}");
    let acked = crm.poll(&stream, std::slice::from_ref(set_jti)).await;
    assert_eq!(acked["sets"], json!({}), "{acked}");
    // Another audience's receiver saw nothing of CRM's token; the grant also names PAY, so
    // PAY's would have (it made no stream).
    assert_eq!(other.poll(&other_stream, &[]).await["sets"], json!({}));
    let _ = pay;
    // Suspending the agent: an event for receivers of its audiences.
    server
        .admin_client()
        .agent_action(d.agent.id, "suspend", Some("investigating".into()))
        .await
        .unwrap();
    let polled = crm.poll(&stream, &[]).await;
    let set = polled["sets"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    let claims = open_set(&server, &set, CRM).await;
    assert_eq!(claims["sub_id"]["id"], d.agent.id.to_string().as_str());
    assert_eq!(
        claims["events"][AGENT_SUSPENDED]["reason_admin"],
        json!({"en": "investigating"})
    );
    assert_eq!(other.poll(&other_stream, &[]).await["sets"], json!({}));
    // Acknowledged while paused: a paused stream holds its events, but takes acks.
    let held = crm.poll(&stream, &[]).await;
    let held: Vec<String> = held["sets"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(held.len(), 1, "the suspension is still unacknowledged");
    let paused = json!({"stream_id": stream, "status": "paused"});
    crm.json("POST", "/ssf/status", Some(paused), 200).await;
    assert_eq!(
        crm.poll(&stream, &held).await["sets"],
        json!({}),
        "a paused stream sends nothing"
    );
    let enabled = json!({"stream_id": stream, "status": "enabled"});
    crm.json("POST", "/ssf/status", Some(enabled), 200).await;
    assert_eq!(
        crm.poll(&stream, &[]).await["sets"],
        json!({}),
        "what was acknowledged while paused is gone"
    );
    // Deleted: gone.
    crm.json(
        "DELETE",
        &format!("/ssf/streams?stream_id={stream}"),
        None,
        204,
    )
    .await;
    assert_eq!(
        crm.call("GET", &format!("/ssf/streams?stream_id={stream}"), None)
            .await
            .status(),
        404
    );
    server.stop().await;
}

/// A resource server's SDK verifier that follows the event stream refuses a revoked token
/// locally, without introspection.
#[tokio::test]
async fn an_event_fed_verifier_refuses_revoked_tokens_without_introspection() {
    let server = TestServer::start().await;
    let d = delegation(&server, 0).await;
    let key = PrivateJwk::from_json(&d.rs_key.to_json().unwrap()).unwrap();
    let verifier = Arc::new(
        ResourceVerifier::new(&server.base, CRM, d.rs.id, key)
            .unwrap()
            .without_introspection(),
    );
    let follower = verifier
        .follow_signals(Duration::from_millis(10))
        .await
        .unwrap();
    let url = format!("{CRM}/customers/1");
    let call = |token: String| {
        let verifier = verifier.clone();
        let proof = surety_jose::rfc9449::create(
            &d.key,
            "GET",
            &url,
            Some(&token),
            None,
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        let url = url.clone();
        async move {
            verifier
                .verify(&[&format!("DPoP {token}")], &[&proof], "GET", &url)
                .await
        }
    };
    let token = mint(&server, &d).await;
    call(token.clone()).await.unwrap();
    let other = mint(&server, &d).await;
    revoke(&server, &d, &token).await;
    let revoked = Instant::now();
    loop {
        match call(token.clone()).await {
            Err(e) => {
                assert!(e.to_string().contains("revoked"), "{e}");
                break;
            }
            Ok(_) => {
                assert!(
                    revoked.elapsed() < Duration::from_secs(5),
                    "the verifier never learnt of the revocation"
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    eprintln!(
        "an event-fed verifier refused the revoked token {:?} after the revocation",
        revoked.elapsed()
    );
    // Another token of the same grant is untouched; revoking the grant ends it too.
    call(other.clone()).await.unwrap();
    server
        .admin_client()
        .grant_action(d.grant.id, "revoke", None)
        .await
        .unwrap();
    let start = Instant::now();
    while call(other.clone()).await.is_ok() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the grant's revocation never arrived"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    follower.abort();
    server.stop().await;
}

/// What an event-fed verifier refuses follows the server: a sub-agent's token dies with the
/// parent token it derives from and with the sub-agent's suspension (an agent without grants
/// of its own: its events go to every receiver); an agent reinstated gets new tokens
/// accepted again; and a verifier that starts after a revocation still learns of it.
#[tokio::test]
async fn an_event_fed_verifier_follows_derivations_reinstatements_and_the_recent_past() {
    let server = TestServer::start().await;
    let d = delegation(&server, 1).await;
    let copy = |k: &PrivateJwk| PrivateJwk::from_json(&k.to_json().unwrap()).unwrap();
    let parent = surety_sdk::AgentClient::new(&server.base, d.agent.id, copy(&d.key)).unwrap();
    let (sub, sub_key) = server.agent("sub-agent").await;
    let url = format!("{CRM}/customers/1");
    let follow = || async {
        let v = Arc::new(
            ResourceVerifier::new(&server.base, CRM, d.rs.id, copy(&d.rs_key))
                .unwrap()
                .without_introspection(),
        );
        let task = v.follow_signals(Duration::from_millis(10)).await.unwrap();
        (v, task)
    };
    let accepts = |v: Arc<ResourceVerifier>, key: &PrivateJwk, token: String| {
        let proof = surety_jose::rfc9449::create(
            key,
            "GET",
            &url,
            Some(&token),
            None,
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        let url = url.clone();
        async move {
            v.verify(&[&format!("DPoP {token}")], &[&proof], "GET", &url)
                .await
                .is_ok()
        }
    };
    let until_refused =
        |v: Arc<ResourceVerifier>, key: PrivateJwk, token: String, what: &'static str| async move {
            let start = Instant::now();
            while accepts(v.clone(), &key, token.clone()).await {
                assert!(start.elapsed() < Duration::from_secs(5), "{what}");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
    let (v, task) = follow().await;
    let request = surety_sdk::TokenRequest {
        scope: None,
        resource: Some(CRM.into()),
    };
    // Derivation: revoking the parent token ends the sub-agent's.
    let parent_token = parent
        .exchange_grant(d.grant.id, &request)
        .await
        .unwrap()
        .access_token;
    let sub_token = parent
        .delegate(&parent_token, sub.id, None)
        .await
        .unwrap()
        .access_token;
    assert!(accepts(v.clone(), &sub_key, sub_token.clone()).await);
    revoke(&server, &d, &parent_token).await;
    until_refused(
        v.clone(),
        copy(&sub_key),
        sub_token,
        "the parent's revocation never reached the sub-agent's token",
    )
    .await;
    // The sub-agent suspended (it has no grant of its own).
    let parent_token = parent
        .exchange_grant(d.grant.id, &request)
        .await
        .unwrap()
        .access_token;
    let sub_token = parent
        .delegate(&parent_token, sub.id, None)
        .await
        .unwrap()
        .access_token;
    assert!(accepts(v.clone(), &sub_key, sub_token.clone()).await);
    server
        .admin_client()
        .agent_action(sub.id, "suspend", Some("check".into()))
        .await
        .unwrap();
    until_refused(
        v.clone(),
        copy(&sub_key),
        sub_token,
        "the sub-agent's suspension never arrived",
    )
    .await;
    // Reinstated: its new tokens are accepted (tokens live seconds here; iat moves on).
    server
        .admin_client()
        .agent_action(sub.id, "reinstate", None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let parent_token = parent
        .exchange_grant(d.grant.id, &request)
        .await
        .unwrap()
        .access_token;
    let fresh = parent
        .delegate(&parent_token, sub.id, None)
        .await
        .unwrap()
        .access_token;
    assert!(
        accepts(v.clone(), &sub_key, fresh).await,
        "a reinstated agent's new token is refused"
    );
    task.abort();
    // A token revoked before a verifier starts: its new stream begins a token lifetime ago.
    let token = mint(&server, &d).await;
    revoke(&server, &d, &token).await;
    let (late, task) = follow().await;
    // Past its first polls, so that the refusal is the stream's, not introspection's.
    tokio::time::sleep(Duration::from_millis(300)).await;
    until_refused(
        late,
        copy(&d.key),
        token,
        "a verifier started after the revocation never learnt of it",
    )
    .await;
    task.abort();
    server.stop().await;
}

/// A minimal RFC 8935 receiver on loopback: answers `202` and records each SET, or `503`
/// while `down`.
async fn push_receiver(
    down: Arc<AtomicBool>,
    reject: Arc<AtomicBool>,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    let got = Arc::new(Mutex::new(Vec::new()));
    let sink = got.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (sink, down, reject) = (sink.clone(), down.clone(), reject.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = vec![0u8; 16 * 1024];
                loop {
                    let n = socket.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() < length {
                        continue;
                    }
                    assert!(
                        head.to_ascii_lowercase()
                            .contains("content-type: application/secevent+jwt"),
                        "{head}"
                    );
                    let answer: &[u8] = if reject.load(Ordering::SeqCst) {
                        b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 26\r\nconnection: close\r\n\r\n{\"err\":\"invalid_request\"}"
                    } else if down.load(Ordering::SeqCst) {
                        b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    } else {
                        sink.lock().await.push(body[..length].to_owned());
                        b"HTTP/1.1 202 Accepted\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                    };
                    let _ = socket.write_all(answer).await;
                    return;
                }
            });
        }
    });
    (url, got)
}

async fn wait_for(got: &Mutex<Vec<String>>, n: usize) {
    let start = Instant::now();
    while got.lock().await.len() < n {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} SETs pushed, {n} expected",
            got.lock().await.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn pushed_events_survive_a_receiver_outage() {
    let server = TestServer::start_with(Options {
        config: vec![("dev", "true".into())],
        ..Options::default()
    })
    .await;
    let d = delegation(&server, 0).await;
    let crm = Receiver::new(&server, d.rs.id, CRM, &d.rs_key);
    let down = Arc::new(AtomicBool::new(false));
    let reject = Arc::new(AtomicBool::new(false));
    let (url, got) = push_receiver(down.clone(), reject.clone()).await;
    let created = crm
        .json(
            "POST",
            "/ssf/streams",
            Some(json!({"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": url}})),
            201,
        )
        .await;
    assert_eq!(created["delivery"]["endpoint_url"], url.as_str());
    // A token revoked: pushed.
    let token = mint(&server, &d).await;
    revoke(&server, &d, &token).await;
    wait_for(&got, 1).await;
    let first = open_set(&server, &got.lock().await[0], CRM).await;
    assert!(first["events"].get(SESSION_REVOKED).is_some(), "{first}");
    // The receiver goes down; meanwhile the grant is revoked and the agent suspended.
    down.store(true, Ordering::SeqCst);
    server
        .admin_client()
        .grant_action(d.grant.id, "revoke", None)
        .await
        .unwrap();
    server
        .admin_client()
        .agent_action(d.agent.id, "suspend", Some("outage test".into()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        got.lock().await.len(),
        1,
        "nothing is acknowledged while the receiver is down"
    );
    // Back: it catches up, in order, nothing lost.
    down.store(false, Ordering::SeqCst);
    wait_for(&got, 3).await;
    let sets = got.lock().await.clone();
    let grant = open_set(&server, &sets[1], CRM).await;
    assert_eq!(grant["sub_id"]["id"], d.grant.id.to_string().as_str());
    assert!(grant["events"].get(SESSION_REVOKED).is_some());
    let suspended = open_set(&server, &sets[2], CRM).await;
    assert!(
        suspended["events"].get(AGENT_SUSPENDED).is_some(),
        "{suspended}"
    );
    // A push endpoint must be https outside development mode.
    let strict = TestServer::start().await;
    let s = delegation(&strict, 0).await;
    let strict_crm = Receiver::new(&strict, s.rs.id, CRM, &s.rs_key);
    let refused = strict_crm
        .call("POST", "/ssf/streams", Some(json!({"delivery": {"method": "urn:ietf:rfc:8935", "endpoint_url": "http://127.0.0.1:1/events"}})))
        .await;
    assert_eq!(refused.status(), 400);
    strict.stop().await;
    server.stop().await;
}
