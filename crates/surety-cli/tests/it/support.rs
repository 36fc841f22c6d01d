//! Helpers shared by the integration tests.

use reqwest::Response;
use serde_json::Value;
use surety_api::oauth::{CLIENT_ASSERTION_TYPE_JWT_BEARER, GRANT_TYPE_JWT_BEARER};
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
        self.send_to(&server.url("/oauth2/token")).await
    }

    /// Sends to another address than the issuer's (another node of the deployment).
    pub async fn send_to(self, url: &str) -> Response {
        let mut request = http().post(url).form(&self.form);
        for p in &self.proofs {
            request = request.header("DPoP", p);
        }
        request.send().await.unwrap()
    }
}

/// GETs `path` without credentials and returns its JSON body (metadata, JWKS).
pub async fn get_json(server: &TestServer, path: &str) -> Value {
    http()
        .get(server.url(path))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
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

/// An agent with a grant, and a resource server for the grant's first resource.
pub struct Delegation {
    pub agent: surety_api::admin::AgentView,
    pub key: PrivateJwk,
    pub grant: surety_api::credentials::GrantView,
    pub rs: surety_api::credentials::ResourceServerView,
    pub rs_key: PrivateJwk,
}

pub const CRM: &str = "https://crm.example";
pub const PAY: &str = "https://pay.example";

/// The first admin delegates `crm.read payments.transfer` on CRM and PAY to a new agent,
/// with sub-agent depth `depth`; CRM is registered as a resource server.
pub async fn delegation(server: &TestServer, depth: u32) -> Delegation {
    let (agent, key) = server.agent("bot").await;
    let grant = server
        .grant(
            agent.id,
            &["crm.read", "payments.transfer"],
            &[CRM, PAY],
            depth,
        )
        .await;
    let (rs, rs_key) = server.resource_server(CRM).await;
    Delegation {
        agent,
        key,
        grant,
        rs,
        rs_key,
    }
}

impl<'a> TokenRequest<'a> {
    /// A correct token exchange by agent `client` (key `key`), with a fresh nonce.
    pub fn exchange(
        server: &TestServer,
        key: &PrivateJwk,
        client: &str,
        subject_token: &str,
        subject_type: &str,
    ) -> Self {
        let proof = server.proof(key, "POST", "/oauth2/token", None, Some(&server.nonce()));
        Self {
            proofs: vec![proof],
            form: vec![
                (
                    "grant_type",
                    surety_api::oauth::GRANT_TYPE_TOKEN_EXCHANGE.into(),
                ),
                ("subject_token", subject_token.into()),
                ("subject_token_type", subject_type.into()),
                (
                    "client_assertion_type",
                    surety_api::oauth::CLIENT_ASSERTION_TYPE_JWT_BEARER.into(),
                ),
                ("client_assertion", server.client_assertion(key, client)),
            ],
        }
    }

    /// A correct grant exchange for `d`'s agent, for the CRM resource.
    pub fn for_grant(server: &TestServer, d: &Delegation) -> Self {
        Self::exchange(
            server,
            &d.key,
            &d.agent.id.to_string(),
            &d.grant.id.to_string(),
            surety_api::oauth::TOKEN_TYPE_GRANT,
        )
        .set("resource", CRM)
    }
}

/// Sends `request`, expects 200, and returns the body.
pub async fn ok_token(server: &TestServer, request: TokenRequest<'_>) -> Value {
    let response = request.send(server).await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

/// Mints a CRM token for `d`'s agent.
pub async fn mint(server: &TestServer, d: &Delegation) -> String {
    let body = ok_token(server, TokenRequest::for_grant(server, d)).await;
    body["access_token"].as_str().unwrap().to_owned()
}

/// Introspects `token` as `d`'s resource server.
pub async fn introspect(server: &TestServer, d: &Delegation, token: &str) -> Value {
    introspect_at(server, &server.url("/oauth2/introspect"), d, token).await
}

/// Introspects at `url` (any node of `server`'s deployment).
pub async fn introspect_at(server: &TestServer, url: &str, d: &Delegation, token: &str) -> Value {
    let response = http()
        .post(url)
        .form(&[
            ("token", token.to_owned()),
            (
                "client_assertion_type",
                surety_api::oauth::CLIENT_ASSERTION_TYPE_JWT_BEARER.to_owned(),
            ),
            (
                "client_assertion",
                server.client_assertion(&d.rs_key, &d.rs.id.to_string()),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The claims of a JWT, unverified (tests only).
pub fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&surety_jose::b64::decode(payload).unwrap()).unwrap()
}

/// The JOSE header of a JWT.
pub fn header_of(token: &str) -> Value {
    let h = token.split('.').next().unwrap();
    serde_json::from_slice(&surety_jose::b64::decode(h).unwrap()).unwrap()
}

/// A ten-minute `crm.read` grant on CRM to `agent`, for `principal` (`None`: the caller).
pub fn crm_read_for(
    agent: surety_core::id::AgentId,
    principal: Option<surety_core::id::HumanId>,
) -> surety_api::credentials::CreateGrant {
    surety_api::credentials::CreateGrant {
        agent,
        principal,
        scopes: vec!["crm.read".into()],
        resources: vec![CRM.into()],
        constraints: None,
        max_delegation_depth: None,
        expires_at: None,
        expires_in: Some(600),
    }
}

/// The agent revokes its own token (RFC 7009).
pub async fn revoke(server: &TestServer, d: &Delegation, token: &str) {
    let r = http()
        .post(server.url("/oauth2/revoke"))
        .form(&[
            ("token", token.to_owned()),
            (
                "client_assertion_type",
                CLIENT_ASSERTION_TYPE_JWT_BEARER.into(),
            ),
            (
                "client_assertion",
                server.client_assertion(&d.key, &d.agent.id.to_string()),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
