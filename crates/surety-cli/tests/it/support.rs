//! Helpers shared by the integration tests.

use reqwest::Response;
use serde_json::Value;
use surety_api::oauth::GRANT_TYPE_JWT_BEARER;
use surety_jose::PrivateJwk;
use surety_testkit::{TestServer, http};

/// A token request as raw HTTP, so tests control every part.
pub struct TokenRequest<'a> {
    pub proofs: Vec<String>,
    pub form: Vec<(&'a str, String)>,
}

impl<'a> TokenRequest<'a> {
    /// A correct jwt-bearer request for the server's first admin (with a fresh nonce).
    pub fn for_admin(server: &TestServer) -> Self {
        let key = server.admin_key();
        let sub = server.admin.id.to_string();
        let proof = server.proof(&key, "POST", "/oauth2/token", None, Some(&server.nonce()));
        Self {
            proofs: vec![proof],
            form: vec![
                ("grant_type", GRANT_TYPE_JWT_BEARER.into()),
                ("assertion", server.assertion(&key, &sub)),
            ],
        }
    }

    /// Replaces (or adds) a form parameter.
    pub fn set(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.form.retain(|(n, _)| *n != name);
        self.form.push((name, value.into()));
        self
    }

    /// Removes a form parameter.
    pub fn without(mut self, name: &str) -> Self {
        self.form.retain(|(n, _)| *n != name);
        self
    }

    /// Replaces the DPoP proofs.
    pub fn proofs(mut self, proofs: Vec<String>) -> Self {
        self.proofs = proofs;
        self
    }

    pub async fn send(self, server: &TestServer) -> Response {
        let mut request = http().post(server.url("/oauth2/token")).form(&self.form);
        for p in &self.proofs {
            request = request.header("DPoP", p);
        }
        request.send().await.unwrap()
    }
}

/// Asserts an error response: status, `error` code, and returns the body.
pub async fn expect_error(response: Response, status: u16, code: &str) -> Value {
    let got = response.status().as_u16();
    let headers = response.headers().clone();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(
        (got, body["error"].as_str()),
        (status, Some(code)),
        "body: {body}, headers: {headers:?}"
    );
    assert!(
        body["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "a readable description: {body}"
    );
    body
}

/// Gets an admin access token for `human` with `key`, by hand.
pub async fn token_for(server: &TestServer, key: &PrivateJwk, human: &str) -> String {
    let proof = server.proof(key, "POST", "/oauth2/token", None, Some(&server.nonce()));
    let response = http()
        .post(server.url("/oauth2/token"))
        .header("DPoP", proof)
        .form(&[
            ("grant_type", GRANT_TYPE_JWT_BEARER.to_owned()),
            ("assertion", server.assertion(key, human)),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

/// Calls the admin API by hand with a token and a proof.
pub async fn call(
    server: &TestServer,
    key: &PrivateJwk,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Response {
    let proof = server.proof(key, method, path, Some(token), None);
    let mut request = http()
        .request(method.parse().unwrap(), server.url(path))
        .header("Authorization", format!("DPoP {token}"))
        .header("DPoP", proof);
    if let Some(b) = body {
        request = request.json(&b);
    }
    request.send().await.unwrap()
}

/// The number of audit events excluding `token.issued` (which every fresh client adds).
pub async fn change_count(server: &TestServer) -> usize {
    use surety_core::audit::{AuditFilter, AuditScope};
    use surety_core::page::PageRequest;
    server
        .store()
        .list_events(
            AuditScope::All,
            &AuditFilter::default(),
            &PageRequest::first(1000),
        )
        .await
        .unwrap()
        .items
        .iter()
        .filter(|e| e.event.kind != surety_core::audit::EventKind::TokenIssued)
        .count()
}
