//! RFC 7523 §2.1/§3 (JWT bearer grant) at the token endpoint: every failure is
//! `invalid_grant` (§3.1) and changes nothing.

use serde_json::{Map, json};
use surety_api::admin::Reason;
use surety_core::human::Role;
use surety_jose::{KeyAlg, PrivateJwk, jws};
use surety_testkit::TestServer;

use crate::support::{TokenRequest, change_count, expect_error};

fn signed(key: &PrivateJwk, claims: serde_json::Value) -> String {
    let mut h = Map::new();
    h.insert("kid".into(), json!(key.thumbprint()));
    jws::sign(h, &claims, key).unwrap()
}

/// Sends a token request with `assertion` and expects `400 invalid_grant`.
async fn refused_assertion(server: &TestServer, assertion: String) -> serde_json::Value {
    let r = TokenRequest::for_admin(server)
        .set("assertion", assertion)
        .send(server)
        .await;
    expect_error(r, 400, "invalid_grant").await
}

fn claims(server: &TestServer) -> serde_json::Value {
    let t = server.now().unix_timestamp();
    let sub = server.admin.id.to_string();
    json!({"iss": sub, "sub": sub, "aud": server.url("/oauth2/token"), "iat": t, "exp": t + 60, "jti": surety_jose::random_b64(12).unwrap()})
}

#[tokio::test]
async fn rfc7523_s3_1_a_replayed_assertion_is_invalid_grant() {
    // §3 (7) and §3.1: the `jti` is single use; a second use is `invalid_grant`.
    let server = TestServer::start().await;
    let assertion = server.assertion(&server.admin_key(), &server.admin.id.to_string());
    let first = TokenRequest::for_admin(&server)
        .set("assertion", assertion.clone())
        .send(&server)
        .await;
    assert_eq!(first.status(), 200);
    let again = TokenRequest::for_admin(&server)
        .set("assertion", assertion)
        .send(&server)
        .await;
    let body = expect_error(again, 400, "invalid_grant").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{body}"
    );
}

#[tokio::test]
async fn rfc7523_s3_3_wrong_audience_is_invalid_grant() {
    // §3 (3): the server "MUST reject any JWT that does not contain its own identity as the
    // intended audience".
    let server = TestServer::start().await;
    let mut c = claims(&server);
    c["aud"] = json!("https://other.example/oauth2/token");
    refused_assertion(&server, signed(&server.admin_key(), c)).await;
}

#[tokio::test]
async fn rfc7523_s3_4_expired_assertion_is_invalid_grant() {
    // §3 (4): the server "MUST reject any JWT with an expiration time that has passed".
    let server = TestServer::start().await;
    let mut c = claims(&server);
    let t = server.now().unix_timestamp();
    c["iat"] = json!(t - 120);
    c["exp"] = json!(t - 60);
    refused_assertion(&server, signed(&server.admin_key(), c)).await;
}

#[tokio::test]
async fn rfc7523_s3_6_future_iat_and_long_lifetimes_are_invalid_grant() {
    // §3 (6): iat in the future, or an assertion living longer than five minutes, is refused.
    let server = TestServer::start().await;
    let t = server.now().unix_timestamp();
    for (iat, exp) in [(t + 60, t + 120), (t, t + 3600)] {
        let mut c = claims(&server);
        c["iat"] = json!(iat);
        c["exp"] = json!(exp);
        refused_assertion(&server, signed(&server.admin_key(), c)).await;
    }
}

#[tokio::test]
async fn rfc7523_s3_9_assertion_by_a_key_not_enrolled_is_invalid_grant() {
    // §3 (9): the signature must verify with a key of the subject; an unknown key is refused.
    let server = TestServer::start().await;
    let stranger = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let body = refused_assertion(&server, signed(&stranger, claims(&server))).await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("not an active device key"),
        "{body}"
    );
}

#[tokio::test]
async fn rfc7523_s3_9_a_kid_that_lies_about_the_signer_is_invalid_grant() {
    // §3 (9): naming the admin's key in `kid` while signing with another key fails the
    // signature check.
    let server = TestServer::start().await;
    let stranger = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let mut h = Map::new();
    h.insert("kid".into(), json!(server.admin_key().thumbprint()));
    let token = jws::sign(h, &claims(&server), &stranger).unwrap();
    refused_assertion(&server, token).await;
}

#[tokio::test]
async fn rfc7523_s3_9_alg_none_assertion_is_invalid_grant() {
    // §3 (9): "The JWT MUST be digitally signed"; `alg: none` is refused.
    let server = TestServer::start().await;
    let hb = surety_jose::b64::encode(
        json!({"alg": "none", "kid": server.admin_key().thumbprint()})
            .to_string()
            .as_bytes(),
    );
    let pb = surety_jose::b64::encode(claims(&server).to_string().as_bytes());
    refused_assertion(&server, format!("{hb}.{pb}.")).await;
}

#[tokio::test]
async fn rfc7523_s3_iss_must_equal_sub_for_humans() {
    // §3 (1, 2): Surety's humans sign for themselves: `iss` = `sub`.
    let server = TestServer::start().await;
    let mut c = claims(&server);
    c["iss"] = json!("someone-else");
    refused_assertion(&server, signed(&server.admin_key(), c)).await;
}

#[tokio::test]
async fn rfc7523_s3_a_revoked_device_key_is_invalid_grant() {
    // A device key revoked by its human can no longer sign assertions.
    let server = TestServer::start().await;
    let (member, key, client) = server
        .enrolled_human("M", "m@example.com", Role::Member)
        .await;
    client
        .revoke_device_key(member.id, &key.thumbprint())
        .await
        .unwrap();
    let proof = server.proof(&key, "POST", "/oauth2/token", None, Some(&server.nonce()));
    let r = TokenRequest::for_admin(&server)
        .proofs(vec![proof])
        .set("assertion", server.assertion(&key, &member.id.to_string()))
        .send(&server)
        .await;
    expect_error(r, 400, "invalid_grant").await;
}

#[tokio::test]
async fn rfc7523_s3_a_deactivated_human_gets_no_token() {
    // Off-boarding: a deactivated human's device keys no longer yield tokens.
    let server = TestServer::start().await;
    let (member, key, _) = server
        .enrolled_human("M", "m@example.com", Role::Member)
        .await;
    server
        .admin_client()
        .human_action(member.id, "deactivate", Reason::default().reason)
        .await
        .unwrap();
    let before = change_count(&server).await;
    let proof = server.proof(&key, "POST", "/oauth2/token", None, Some(&server.nonce()));
    let r = TokenRequest::for_admin(&server)
        .proofs(vec![proof])
        .set("assertion", server.assertion(&key, &member.id.to_string()))
        .send(&server)
        .await;
    expect_error(r, 400, "invalid_grant").await;
    assert_eq!(change_count(&server).await, before);
}

#[tokio::test]
async fn rfc7523_the_token_is_bound_to_the_device_key_itself() {
    // The DPoP proof must be signed by the device key that signed the assertion, so the
    // token is bound to a key the human enrolled.
    let server = TestServer::start().await;
    let other = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let proof = server.proof(&other, "POST", "/oauth2/token", None, Some(&server.nonce()));
    let r = TokenRequest::for_admin(&server)
        .proofs(vec![proof])
        .send(&server)
        .await;
    expect_error(r, 400, "invalid_dpop_proof").await;
}
