//! RFC 6749 token endpoint shapes: error responses (§5.2), parameters (§3.1, §3.2), grant
//! types and scope.

use surety_testkit::{TestServer, http};

use crate::support::{TokenRequest, expect_error};

#[tokio::test]
async fn rfc6749_s5_2_unsupported_grant_type() {
    // §5.2: "unsupported_grant_type — The authorization grant type is not supported".
    let server = TestServer::start().await;
    let r = TokenRequest::for_admin(&server)
        .set("grant_type", "password")
        .send(&server)
        .await;
    expect_error(r, 400, "unsupported_grant_type").await;
}

#[tokio::test]
async fn rfc6749_s5_2_missing_parameters_are_invalid_request() {
    // §5.2: "invalid_request — The request is missing a required parameter".
    let server = TestServer::start().await;
    for missing in ["grant_type", "assertion"] {
        let r = TokenRequest::for_admin(&server)
            .without(missing)
            .send(&server)
            .await;
        let body = expect_error(r, 400, "invalid_request").await;
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains(missing),
            "{body}"
        );
    }
}

#[tokio::test]
async fn rfc6749_s3_2_repeated_parameters_are_invalid_request() {
    // §3.2: "Request and response parameters MUST NOT be included more than once."
    let server = TestServer::start().await;
    let mut req = TokenRequest::for_admin(&server);
    req.form.push(("assertion", "again".into()));
    let r = req.send(&server).await;
    expect_error(r, 400, "invalid_request").await;
}

#[tokio::test]
async fn rfc6749_s3_2_the_body_must_be_form_encoded() {
    // §3.2: the client uses "application/x-www-form-urlencoded".
    let server = TestServer::start().await;
    let r = http()
        .post(server.url("/oauth2/token"))
        .json(&serde_json::json!({"grant_type": "x"}))
        .send()
        .await
        .unwrap();
    expect_error(r, 400, "invalid_request").await;
}

#[tokio::test]
async fn rfc6749_s5_2_invalid_scope() {
    // §5.2: "invalid_scope — The requested scope is invalid, unknown, malformed, or exceeds
    // the scope granted".
    let server = TestServer::start().await;
    let r = TokenRequest::for_admin(&server)
        .set("scope", "admin payments.transfer")
        .send(&server)
        .await;
    expect_error(r, 400, "invalid_scope").await;
}

#[tokio::test]
async fn rfc6749_s5_1_and_s5_2_answers_are_not_cached() {
    // §5.1: "Cache-Control: no-store" on token responses; errors carry it too.
    let server = TestServer::start().await;
    let ok = TokenRequest::for_admin(&server).send(&server).await;
    assert_eq!(ok.headers()["cache-control"], "no-store");
    let err = TokenRequest::for_admin(&server)
        .without("assertion")
        .send(&server)
        .await;
    assert_eq!(err.headers()["cache-control"], "no-store");
    assert_eq!(err.headers()["content-type"], "application/json");
}
