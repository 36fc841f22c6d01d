//! RFC 9449 (DPoP) at the token endpoint (§4.3, §5, §8, §11.1) and at a protected resource
//! (§7), over HTTP.

use serde_json::{Value, json};
use surety_jose::{KeyAlg, PrivateJwk, b64, jws};
use surety_testkit::{TestServer, http};
use time::Duration;

use crate::support::{TokenRequest, call, expect_error, token_for};

/// A proof with arbitrary header and claims, signed by `key`.
fn forged(key: &PrivateJwk, header: Value, claims: Value) -> String {
    let Value::Object(h) = header else {
        unreachable!()
    };
    jws::sign(h, &claims, key).unwrap()
}

/// Sends a token request with `proof` and expects `400 invalid_dpop_proof`.
async fn refused_proof(server: &TestServer, proof: String) -> Value {
    let r = TokenRequest::for_admin(server)
        .proofs(vec![proof])
        .send(server)
        .await;
    expect_error(r, 400, "invalid_dpop_proof").await
}

fn claims(server: &TestServer, nonce: &str) -> Value {
    json!({"jti": surety_jose::random_b64(12).unwrap(), "htm": "POST", "htu": server.url("/oauth2/token"),
        "iat": server.now().unix_timestamp(), "nonce": nonce})
}

#[tokio::test]
async fn rfc9449_s5_issues_a_dpop_token_type() {
    // §5: "the authorization server ... MUST ... token_type ... DPoP".
    let server = TestServer::start().await;
    let response = TokenRequest::for_admin(&server).send(&server).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(body["expires_in"], 300);
    assert_eq!(body["scope"], "admin");
}

#[tokio::test]
async fn rfc9449_s5_token_request_without_proof_is_invalid_dpop_proof() {
    // §5: a token request for a DPoP-bound token carries a DPoP proof; we issue no other kind.
    let server = TestServer::start().await;
    let r = TokenRequest::for_admin(&server)
        .proofs(vec![])
        .send(&server)
        .await;
    expect_error(r, 400, "invalid_dpop_proof").await;
}

#[tokio::test]
async fn rfc9449_s4_3_step1_token_endpoint_rejects_two_dpop_headers() {
    // §4.3 (1): "There is not more than one DPoP HTTP request header field."
    let server = TestServer::start().await;
    let key = server.admin_key();
    let p1 = server.proof(&key, "POST", "/oauth2/token", None, Some(&server.nonce()));
    let p2 = server.proof(&key, "POST", "/oauth2/token", None, Some(&server.nonce()));
    let r = TokenRequest::for_admin(&server)
        .proofs(vec![p1, p2])
        .send(&server)
        .await;
    expect_error(r, 400, "invalid_dpop_proof").await;
}

#[tokio::test]
async fn rfc9449_s4_3_step5_rejects_alg_none_and_hs256() {
    // §4.3 (5): the `alg` is an asymmetric algorithm, not `none`, and supported.
    let server = TestServer::start().await;
    let key = server.admin_key();
    for alg in ["none", "HS256"] {
        let h = json!({"typ": "dpop+jwt", "alg": alg, "jwk": key.public().to_json()});
        let hb = b64::encode(h.to_string().as_bytes());
        let pb = b64::encode(claims(&server, &server.nonce()).to_string().as_bytes());
        let sig = if alg == "none" {
            String::new()
        } else {
            b64::encode(b"not-a-mac-anyone-checks")
        };
        let r = TokenRequest::for_admin(&server)
            .proofs(vec![format!("{hb}.{pb}.{sig}")])
            .send(&server)
            .await;
        let body = expect_error(r, 400, "invalid_dpop_proof").await;
        assert!(
            body["error_description"].as_str().unwrap().contains(alg),
            "{body}"
        );
    }
}

#[tokio::test]
async fn rfc9449_s4_3_step4_rejects_wrong_typ() {
    // §4.3 (4): "the typ JOSE Header Parameter has the value dpop+jwt".
    let server = TestServer::start().await;
    let key = server.admin_key();
    let proof = forged(
        &key,
        json!({"typ": "JWT", "jwk": key.public().to_json()}),
        claims(&server, &server.nonce()),
    );
    refused_proof(&server, proof).await;
}

#[tokio::test]
async fn rfc9449_s4_3_step6_rejects_a_proof_not_signed_by_its_jwk() {
    // §4.3 (6): "the JWT signature verifies with the public key contained in the jwk".
    let server = TestServer::start().await;
    let key = server.admin_key();
    let other = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let proof = forged(
        &other,
        json!({"typ": "dpop+jwt", "jwk": key.public().to_json()}),
        claims(&server, &server.nonce()),
    );
    refused_proof(&server, proof).await;
}

#[tokio::test]
async fn rfc9449_s4_3_step7_rejects_a_private_key_in_jwk() {
    // §4.3 (7): "the jwk JOSE Header Parameter does not contain a private key".
    let server = TestServer::start().await;
    let key = server.admin_key();
    let proof = forged(
        &key,
        json!({"typ": "dpop+jwt", "jwk": key.to_json().unwrap()}),
        claims(&server, &server.nonce()),
    );
    refused_proof(&server, proof).await;
}

#[tokio::test]
async fn rfc9449_s4_3_step8_rejects_wrong_htm() {
    // §4.3 (8): "the htm claim matches the HTTP method of the current request".
    let server = TestServer::start().await;
    let key = server.admin_key();
    let proof = server.proof(&key, "GET", "/oauth2/token", None, Some(&server.nonce()));
    let body = refused_proof(&server, proof).await;
    assert!(
        body["error_description"].as_str().unwrap().contains("htm"),
        "{body}"
    );
}

#[tokio::test]
async fn rfc9449_s4_3_step9_rejects_wrong_htu() {
    // §4.3 (9): "the htu claim matches the HTTP URI value for the HTTP request".
    let server = TestServer::start().await;
    let key = server.admin_key();
    for htu in ["/v1/agents", "/oauth2/token/"] {
        let proof = server.proof(&key, "POST", htu, None, Some(&server.nonce()));
        let body = refused_proof(&server, proof).await;
        assert!(
            body["error_description"].as_str().unwrap().contains("htu"),
            "{body}"
        );
    }
    let elsewhere = surety_jose::rfc9449::create(
        &key,
        "POST",
        "https://evil.example/oauth2/token",
        None,
        Some(&server.nonce()),
        server.now(),
    )
    .unwrap();
    refused_proof(&server, elsewhere).await;
}

#[tokio::test]
async fn rfc9449_s4_3_step11_rejects_expired_and_future_iat() {
    // §4.3 (11): "the creation time of the JWT ... is within an acceptable window".
    let server = TestServer::start().await;
    let key = server.admin_key();
    for offset in [Duration::seconds(-120), Duration::seconds(30)] {
        let mut c = claims(&server, &server.nonce());
        c["iat"] = json!((server.now() + offset).unix_timestamp());
        let proof = forged(
            &key,
            json!({"typ": "dpop+jwt", "jwk": key.public().to_json()}),
            c,
        );
        let body = refused_proof(&server, proof).await;
        assert!(
            body["error_description"].as_str().unwrap().contains("iat"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn rfc9449_s8_token_endpoint_demands_a_server_nonce() {
    // §8: the server answers `use_dpop_nonce` with a `DPoP-Nonce` header; a retry with that
    // nonce succeeds.
    let server = TestServer::start().await;
    let key = server.admin_key();
    let sub = server.admin.id.to_string();
    let without = server.proof(&key, "POST", "/oauth2/token", None, None);
    let r = TokenRequest::for_admin(&server)
        .proofs(vec![without])
        .send(&server)
        .await;
    let nonce = r
        .headers()
        .get("dpop-nonce")
        .expect("DPoP-Nonce header")
        .to_str()
        .unwrap()
        .to_owned();
    expect_error(r, 400, "use_dpop_nonce").await;
    let forged_nonce = server.proof(&key, "POST", "/oauth2/token", None, Some("made-up"));
    let r = TokenRequest::for_admin(&server)
        .proofs(vec![forged_nonce])
        .send(&server)
        .await;
    expect_error(r, 400, "use_dpop_nonce").await;
    let with = server.proof(&key, "POST", "/oauth2/token", None, Some(&nonce));
    let r = TokenRequest::for_admin(&server)
        .proofs(vec![with])
        .set("assertion", server.assertion(&key, &sub))
        .send(&server)
        .await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().contains_key("dpop-nonce"),
        "every answer carries a current nonce"
    );
}

#[tokio::test]
async fn rfc9449_s11_1_token_endpoint_rejects_a_replayed_proof() {
    // §11.1: the server keeps the `jti` of accepted proofs and rejects a replay.
    let server = TestServer::start().await;
    let key = server.admin_key();
    let sub = server.admin.id.to_string();
    let proof = server.proof(&key, "POST", "/oauth2/token", None, Some(&server.nonce()));
    let first = TokenRequest::for_admin(&server)
        .proofs(vec![proof.clone()])
        .send(&server)
        .await;
    assert_eq!(first.status(), 200);
    let again = TokenRequest::for_admin(&server)
        .proofs(vec![proof])
        .set("assertion", server.assertion(&key, &sub))
        .send(&server)
        .await;
    let body = expect_error(again, 400, "invalid_dpop_proof").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("replay"),
        "{body}"
    );
}

#[tokio::test]
async fn rfc9449_s7_1_resource_answers_401_with_a_dpop_challenge() {
    // §7.1: without a token the resource answers 401 with `WWW-Authenticate: DPoP` naming
    // the accepted algorithms.
    let server = TestServer::start().await;
    let r = http().get(server.url("/v1/agents")).send().await.unwrap();
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.starts_with("DPoP ") && challenge.contains("algs=\"EdDSA Ed25519 ES256\""),
        "{challenge}"
    );
    assert!(
        !challenge.contains("error="),
        "no error code without credentials (RFC 6750 §3.1)"
    );
    expect_error(r, 401, "invalid_token").await;
}

#[tokio::test]
async fn rfc9449_s7_2_a_dpop_token_under_the_bearer_scheme_is_refused() {
    // §7.2: a DPoP-bound token presented as a bearer token must be refused.
    let server = TestServer::start().await;
    let key = server.admin_key();
    let token = token_for(&server, &key, &server.admin.id.to_string()).await;
    let proof = server.proof(&key, "GET", "/v1/agents", Some(&token), None);
    let r = http()
        .get(server.url("/v1/agents"))
        .header("Authorization", format!("Bearer {token}"))
        .header("DPoP", proof)
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    expect_error(r, 401, "invalid_token").await;
}

#[tokio::test]
async fn rfc9449_s7_1_resource_requires_a_proof_with_the_token() {
    // §7.1: a DPoP-bound token is accepted only with a valid proof.
    let server = TestServer::start().await;
    let key = server.admin_key();
    let token = token_for(&server, &key, &server.admin.id.to_string()).await;
    let r = http()
        .get(server.url("/v1/agents"))
        .header("Authorization", format!("DPoP {token}"))
        .send()
        .await
        .unwrap();
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_dpop_proof\"")
    );
    expect_error(r, 401, "invalid_dpop_proof").await;
}

#[tokio::test]
async fn rfc9449_s4_3_step12_resource_rejects_ath_of_another_token() {
    // §4.3 (12): "ensure that the value of the ath claim equals the hash of that access token".
    let server = TestServer::start().await;
    let key = server.admin_key();
    let token = token_for(&server, &key, &server.admin.id.to_string()).await;
    let proof = server.proof(&key, "GET", "/v1/agents", Some("some-other-token"), None);
    let r = http()
        .get(server.url("/v1/agents"))
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", proof)
        .send()
        .await
        .unwrap();
    let body = expect_error(r, 401, "invalid_dpop_proof").await;
    assert!(
        body["error_description"].as_str().unwrap().contains("ath"),
        "{body}"
    );
}

#[tokio::test]
async fn rfc9449_s4_3_step12_resource_rejects_a_proof_by_another_key() {
    // §4.3 (12): "ensure that the public key to which the access token is bound matches the
    // public key from the DPoP proof" — a stolen token is useless without the key.
    let server = TestServer::start().await;
    let key = server.admin_key();
    let token = token_for(&server, &key, &server.admin.id.to_string()).await;
    let thief = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let r = call(&server, &thief, &token, "GET", "/v1/agents", None).await;
    expect_error(r, 401, "invalid_dpop_proof").await;
}

#[tokio::test]
async fn rfc9449_s4_3_step9_resource_rejects_a_proof_for_another_uri_or_method() {
    // §4.3 (8, 9): the proof names this request's method and URI.
    let server = TestServer::start().await;
    let key = server.admin_key();
    let token = token_for(&server, &key, &server.admin.id.to_string()).await;
    for (method, path) in [("GET", "/v1/humans"), ("POST", "/v1/agents")] {
        let proof = server.proof(&key, method, path, Some(&token), None);
        let r = http()
            .get(server.url("/v1/agents"))
            .header("Authorization", format!("DPoP {token}"))
            .header("DPoP", proof)
            .send()
            .await
            .unwrap();
        expect_error(r, 401, "invalid_dpop_proof").await;
    }
}

#[tokio::test]
async fn rfc9449_s11_1_resource_rejects_a_replayed_proof() {
    // §11.1: a proof is accepted once at the resource too.
    let server = TestServer::start().await;
    let key = server.admin_key();
    let token = token_for(&server, &key, &server.admin.id.to_string()).await;
    let proof = server.proof(&key, "GET", "/v1/me", Some(&token), None);
    let send = || {
        http()
            .get(server.url("/v1/me"))
            .header("Authorization", format!("DPoP {token}"))
            .header("DPoP", proof.clone())
            .send()
    };
    assert_eq!(send().await.unwrap().status(), 200);
    let body = expect_error(send().await.unwrap(), 401, "invalid_dpop_proof").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("replay"),
        "{body}"
    );
}

#[tokio::test]
async fn rfc6750_s3_the_challenge_survives_hostile_input() {
    // RFC 6750 §3 / RFC 9449 §7.1: a 401 always carries `WWW-Authenticate`, even when the
    // error description echoes request input that is not header-safe.
    let server = TestServer::start().await;
    let key = server.admin_key();
    let token = token_for(&server, &key, &server.admin.id.to_string()).await;
    let h = json!({"typ": "dpop+jwt", "alg": "Ëd\"25519\u{1}", "jwk": key.public().to_json()});
    let hb = b64::encode(h.to_string().as_bytes());
    let pb = b64::encode(json!({"jti": "x"}).to_string().as_bytes());
    let r = http()
        .get(server.url("/v1/me"))
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", format!("{hb}.{pb}.AA"))
        .send()
        .await
        .unwrap();
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        challenge.contains("error=\"invalid_dpop_proof\""),
        "{challenge}"
    );
    expect_error(r, 401, "invalid_dpop_proof").await;
}

#[tokio::test]
async fn rfc6750_s3_1_a_malformed_authorization_header_is_invalid_request() {
    // RFC 6750 §3.1: "invalid_request ... The resource server SHOULD respond with the HTTP
    // 400 (Bad Request) status code" — repeated credentials, or a scheme without a token.
    let server = TestServer::start().await;
    let key = server.admin_key();
    let token = token_for(&server, &key, &server.admin.id.to_string()).await;
    let twice = http()
        .get(server.url("/v1/me"))
        .header("Authorization", format!("DPoP {token}"))
        .header("Authorization", format!("DPoP {token}"))
        .header(
            "DPoP",
            server.proof(&key, "GET", "/v1/me", Some(&token), None),
        )
        .send()
        .await
        .unwrap();
    expect_error(twice, 400, "invalid_request").await;
    let empty = http()
        .get(server.url("/v1/me"))
        .header("Authorization", "DPoP ")
        .send()
        .await
        .unwrap();
    expect_error(empty, 400, "invalid_request").await;
    let basic = http()
        .get(server.url("/v1/me"))
        .header("Authorization", "Basic YTpi")
        .send()
        .await
        .unwrap();
    assert!(
        !basic.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=")
    );
    expect_error(basic, 401, "invalid_token").await;
}
