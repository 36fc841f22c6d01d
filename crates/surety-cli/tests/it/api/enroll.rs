use std::sync::Arc;

use serde_json::json;
use surety_api::admin::CreateHuman;
use surety_core::clock::{Clock, ManualClock, SystemClock};
use surety_jose::{KeyAlg, PrivateJwk};
use surety_testkit::{Options, TestServer, http};
use time::Duration;

use crate::support::{change_count, expect_error};

async fn code_for(server: &TestServer, email: &str) -> (surety_core::id::HumanId, String) {
    let created = server
        .admin_client()
        .create_human(&CreateHuman {
            display_name: "New".into(),
            email: email.into(),
            role: None,
        })
        .await
        .unwrap();
    (created.human.id, created.enrollment.code)
}

async fn enroll_raw(server: &TestServer, code: &str, proof: Option<String>) -> reqwest::Response {
    let mut request = http()
        .post(server.url("/v1/enroll"))
        .json(&json!({"code": code}));
    if let Some(p) = proof {
        request = request.header("DPoP", p);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn a_code_enrolls_the_proof_key_once() {
    let server = TestServer::start().await;
    let (human, code) = code_for(&server, "n@example.com").await;
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let r = enroll_raw(
        &server,
        &code,
        Some(server.proof(&key, "POST", "/v1/enroll", None, None)),
    )
    .await;
    assert_eq!(r.status(), 201);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (body["human_id"].as_str(), body["kid"].as_str()),
        (
            Some(human.to_string().as_str()),
            Some(key.thumbprint().as_str())
        )
    );
    let other = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let r = enroll_raw(
        &server,
        &code,
        Some(server.proof(&other, "POST", "/v1/enroll", None, None)),
    )
    .await;
    expect_error(r, 400, "invalid_request").await;
    let keys = server
        .admin_client()
        .get_human(human)
        .await
        .unwrap()
        .keys
        .unwrap();
    assert_eq!(keys.len(), 1, "the second use enrolled nothing");
}

#[tokio::test]
async fn enrolling_needs_a_valid_fresh_proof_of_the_key() {
    let server = TestServer::start().await;
    let (human, code) = code_for(&server, "n@example.com").await;
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let before = change_count(&server).await;
    expect_error(
        enroll_raw(&server, &code, None).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    let wrong_path = server.proof(&key, "POST", "/oauth2/token", None, None);
    expect_error(
        enroll_raw(&server, &code, Some(wrong_path)).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    let stale = surety_jose::rfc9449::create(
        &key,
        "POST",
        &server.url("/v1/enroll"),
        None,
        None,
        server.now() - Duration::minutes(5),
    )
    .unwrap();
    expect_error(
        enroll_raw(&server, &code, Some(stale)).await,
        400,
        "invalid_dpop_proof",
    )
    .await;
    assert_eq!(change_count(&server).await, before);
    // The code is still good after those failures.
    let ok = enroll_raw(
        &server,
        &code,
        Some(server.proof(&key, "POST", "/v1/enroll", None, None)),
    )
    .await;
    assert_eq!(ok.status(), 201);
    assert_eq!(
        server
            .admin_client()
            .get_human(human)
            .await
            .unwrap()
            .keys
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn codes_expire_and_a_new_code_replaces_the_old() {
    let clock = Arc::new(ManualClock::new(SystemClock.now()));
    let server = TestServer::start_with(Options {
        clock: clock.clone(),
        ..Default::default()
    })
    .await;
    let (human, first) = code_for(&server, "n@example.com").await;
    let second = server.admin_client().enrollment_code(human).await.unwrap();
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let r = enroll_raw(
        &server,
        &first,
        Some(server.proof(&key, "POST", "/v1/enroll", None, None)),
    )
    .await;
    expect_error(r, 400, "invalid_request").await;
    clock.advance(Duration::minutes(16));
    let r = enroll_raw(
        &server,
        &second.code,
        Some(server.proof(&key, "POST", "/v1/enroll", None, None)),
    )
    .await;
    let body = expect_error(r, 400, "invalid_request").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
}

#[tokio::test]
async fn a_key_already_registered_cannot_be_enrolled() {
    let server = TestServer::start().await;
    let (_, code) = code_for(&server, "n@example.com").await;
    let admin_key = server.admin_key();
    let r = enroll_raw(
        &server,
        &code,
        Some(server.proof(&admin_key, "POST", "/v1/enroll", None, None)),
    )
    .await;
    expect_error(r, 409, "conflict").await;
}
