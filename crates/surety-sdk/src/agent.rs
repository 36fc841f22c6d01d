//! The agent side: an agent holds its own private key (never a shared secret), trades a
//! grant for a short-lived DPoP-bound access token (RFC 8693 token exchange with
//! `private_key_jwt`), keeps it until shortly before it expires, delegates to sub-agents,
//! revokes, and signs each request to a resource server with a fresh DPoP proof.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::Method;
use surety_api::oauth::{
    BackchannelResponse, CLIENT_ASSERTION_TYPE_JWT_BEARER, GRANT_TYPE_CIBA, GRANT_TYPE_JWT_BEARER,
    GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS_TOKEN, TOKEN_TYPE_GRANT, TOKEN_TYPE_JWT,
    TokenResponse,
};
use surety_core::id::{AgentId, GrantId};
use surety_jose::{PrivateJwk, rfc7523, rfc9449};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::ClientError;
use crate::client::{decode, http_client, nonce_of, post_token};

/// Lifetime of the client assertions an agent signs.
const ASSERTION_LIFETIME: time::Duration = time::Duration::seconds(60);
/// A cached token is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(30);

/// What to ask a human to approve.
#[derive(Debug, Clone, Copy)]
pub struct ApprovalAsk<'a> {
    /// The human: their id or e-mail.
    pub login_hint: &'a str,
    /// The action: RFC 9396 `authorization_details` (one `surety_action`), typically a step-up
    /// decision's.
    pub authorization_details: &'a serde_json::Value,
    /// A short message shown to the human.
    pub binding_message: Option<&'a str>,
    /// Seconds the human has to answer.
    pub requested_expiry: Option<u64>,
    /// Ping mode: the bearer token the server calls the agent's registered endpoint with.
    pub client_notification_token: Option<&'a str>,
}

/// What a token is asked for: the grant, and optionally narrower scope and one resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TokenRequest {
    /// Space-separated scopes; `None` for everything the grant allows.
    pub scope: Option<String>,
    /// The resource (audience); `None` when the grant names exactly one.
    pub resource: Option<String>,
}

#[derive(Debug, Default)]
struct Cache {
    /// The last DPoP nonce of each server (by base URL).
    nonces: HashMap<String, String>,
    tokens: HashMap<(String, TokenRequest), (TokenResponse, Instant)>,
}

/// An agent talking to Surety and to resource servers.
#[derive(Debug)]
pub struct AgentClient {
    http: reqwest::Client,
    base: String,
    agent: AgentId,
    key: PrivateJwk,
    cache: Mutex<Cache>,
}

impl AgentClient {
    /// A client for `server`, acting as `agent` with its private key.
    pub fn new(server: &str, agent: AgentId, key: PrivateJwk) -> Result<Self, ClientError> {
        Ok(Self::with_http(http_client()?, server, agent, key))
    }

    /// The same, sharing `http` (its connection pool) with other clients — for a process that
    /// acts as many agents.
    #[must_use]
    pub fn with_http(http: reqwest::Client, server: &str, agent: AgentId, key: PrivateJwk) -> Self {
        Self {
            http,
            base: server.trim_end_matches('/').to_owned(),
            agent,
            key,
            cache: Mutex::new(Cache::default()),
        }
    }

    /// The agent.
    #[must_use]
    pub fn agent_id(&self) -> AgentId {
        self.agent
    }

    /// The agent's key.
    #[must_use]
    pub fn key(&self) -> &PrivateJwk {
        &self.key
    }

    /// A fresh `private_key_jwt` client assertion for the server at `base` (its issuer).
    fn assertion(&self, base: &str) -> Result<String, ClientError> {
        let id = self.agent.to_string();
        Ok(rfc7523::create(
            &self.key,
            &id,
            &id,
            base,
            ASSERTION_LIFETIME,
            OffsetDateTime::now_utc(),
        )?)
    }

    /// Sends a token-endpoint request with a DPoP proof, answering one `use_dpop_nonce`.
    async fn token_request(&self, params: &[(&str, &str)]) -> Result<TokenResponse, ClientError> {
        self.grant_request(GRANT_TYPE_TOKEN_EXCHANGE, params).await
    }

    /// Sends a `grant_type` request to the token endpoint with a DPoP proof and client
    /// authentication, answering one `use_dpop_nonce`.
    async fn grant_request(
        &self,
        grant_type: &str,
        params: &[(&str, &str)],
    ) -> Result<TokenResponse, ClientError> {
        self.grant_request_at(&self.base, grant_type, params).await
    }

    /// [`Self::grant_request`] at the server whose issuer is `base` (a federation peer).
    async fn grant_request_at(
        &self,
        base: &str,
        grant_type: &str,
        params: &[(&str, &str)],
    ) -> Result<TokenResponse, ClientError> {
        let base = base.trim_end_matches('/');
        let url = format!("{base}/oauth2/token");
        for attempt in 0..2 {
            let nonce = self.cache.lock().await.nonces.get(base).cloned();
            let proof = rfc9449::create(
                &self.key,
                "POST",
                &url,
                None,
                nonce.as_deref(),
                OffsetDateTime::now_utc(),
            )?;
            let assertion = self.assertion(base)?;
            let mut form: Vec<(&str, &str)> = vec![
                ("grant_type", grant_type),
                ("client_assertion_type", CLIENT_ASSERTION_TYPE_JWT_BEARER),
                ("client_assertion", &assertion),
            ];
            form.extend_from_slice(params);
            let response = self
                .http
                .post(&url)
                .header("DPoP", proof)
                .form(&form)
                .send()
                .await?;
            if let Some(n) = nonce_of(&response) {
                self.cache.lock().await.nonces.insert(base.to_owned(), n);
            }
            match decode::<TokenResponse>(response).await {
                Err(e) if attempt == 0 && e.code() == Some("use_dpop_nonce") => continue,
                other => return other,
            }
        }
        Err(ClientError::Other(
            "the server kept asking for a new DPoP nonce".into(),
        ))
    }

    fn params<'a>(request: &'a TokenRequest, base: &mut Vec<(&'a str, &'a str)>) {
        if let Some(s) = &request.scope {
            base.push(("scope", s));
        }
        if let Some(r) = &request.resource {
            base.push(("resource", r));
        }
    }

    /// Exchanges `grant` for a new access token (no cache).
    pub async fn exchange_grant(
        &self,
        grant: GrantId,
        request: &TokenRequest,
    ) -> Result<TokenResponse, ClientError> {
        let grant = grant.to_string();
        let mut params = vec![
            ("subject_token", grant.as_str()),
            ("subject_token_type", TOKEN_TYPE_GRANT),
        ];
        Self::params(request, &mut params);
        self.token_request(&params).await
    }

    /// Identity chaining, at home: exchanges `grant` for a JWT authorization grant for the
    /// federation peer whose issuer is `peer`, optionally for one `resource` there (the
    /// grant must name it, or the peer's issuer).
    pub async fn authorization_grant(
        &self,
        grant: GrantId,
        peer: &str,
        resource: Option<&str>,
        scope: Option<&str>,
    ) -> Result<TokenResponse, ClientError> {
        let grant = grant.to_string();
        let mut params = vec![
            ("subject_token", grant.as_str()),
            ("subject_token_type", TOKEN_TYPE_GRANT),
            ("requested_token_type", TOKEN_TYPE_JWT),
            ("audience", peer),
        ];
        if let Some(r) = resource {
            params.push(("resource", r));
        }
        if let Some(s) = scope {
            params.push(("scope", s));
        }
        self.token_request(&params).await
    }

    /// Identity chaining, at the peer: trades the authorization grant `assertion` for an
    /// access token of the peer whose issuer is `peer` (RFC 7523 `jwt-bearer`, with this
    /// agent's `private_key_jwt` and a DPoP proof by the key the grant is bound to).
    pub async fn redeem_at_peer(
        &self,
        peer: &str,
        assertion: &str,
        request: &TokenRequest,
    ) -> Result<TokenResponse, ClientError> {
        let mut params = vec![("assertion", assertion)];
        Self::params(request, &mut params);
        self.grant_request_at(peer, GRANT_TYPE_JWT_BEARER, &params)
            .await
    }

    /// Both steps: a token of the peer `peer` for `grant`'s authority there.
    pub async fn chained_token(
        &self,
        grant: GrantId,
        peer: &str,
        request: &TokenRequest,
    ) -> Result<TokenResponse, ClientError> {
        let assertion = self
            .authorization_grant(
                grant,
                peer,
                request.resource.as_deref(),
                request.scope.as_deref(),
            )
            .await?;
        self.redeem_at_peer(peer, &assertion.access_token, request)
            .await
    }

    /// A token for `grant`: the cached one while it has more than 30 s left, else a new one.
    pub async fn token(
        &self,
        grant: GrantId,
        request: &TokenRequest,
    ) -> Result<TokenResponse, ClientError> {
        let key = (grant.to_string(), request.clone());
        if let Some((t, expires)) = self.cache.lock().await.tokens.get(&key)
            && Instant::now() + RENEW_BEFORE < *expires
        {
            return Ok(t.clone());
        }
        let fresh = self.exchange_grant(grant, request).await?;
        let expires = Instant::now() + Duration::from_secs(fresh.expires_in);
        self.cache
            .lock()
            .await
            .tokens
            .insert(key, (fresh.clone(), expires));
        Ok(fresh)
    }

    /// Delegates: exchanges this agent's `token` for one bound to `sub_agent`'s registered
    /// key, never wider or longer-lived than `token`. Hand the result to the sub-agent.
    pub async fn delegate(
        &self,
        token: &str,
        sub_agent: AgentId,
        scope: Option<&str>,
    ) -> Result<TokenResponse, ClientError> {
        let actor = sub_agent.to_string();
        let mut params = vec![
            ("subject_token", token),
            ("subject_token_type", TOKEN_TYPE_ACCESS_TOKEN),
            ("requested_actor", actor.as_str()),
        ];
        if let Some(s) = scope {
            params.push(("scope", s));
        }
        self.token_request(&params).await
    }

    /// Asks a human to approve one action (OpenID CIBA §7.1).
    pub async fn request_approval(
        &self,
        ask: &ApprovalAsk<'_>,
    ) -> Result<BackchannelResponse, ClientError> {
        let url = format!("{}/oauth2/bc-authorize", self.base);
        let assertion = self.assertion(&self.base)?;
        let details = ask.authorization_details.to_string();
        let expiry = ask.requested_expiry.map(|e| e.to_string());
        let mut form: Vec<(&str, &str)> = vec![
            ("client_assertion_type", CLIENT_ASSERTION_TYPE_JWT_BEARER),
            ("client_assertion", &assertion),
            ("login_hint", ask.login_hint),
            ("authorization_details", &details),
        ];
        for (name, value) in [
            ("binding_message", ask.binding_message),
            ("requested_expiry", expiry.as_deref()),
            ("client_notification_token", ask.client_notification_token),
        ] {
            if let Some(v) = value {
                form.push((name, v));
            }
        }
        decode(self.http.post(&url).form(&form).send().await?).await
    }

    /// Polls once for the answer to a request: the one-time approval token once approved,
    /// `None` while the human has not answered (`authorization_pending`, `slow_down`).
    /// Denied, expired or already redeemed requests are errors (`access_denied`,
    /// `expired_token`, `invalid_grant`).
    pub async fn poll_approval(
        &self,
        auth_req_id: &str,
    ) -> Result<Option<TokenResponse>, ClientError> {
        match self
            .grant_request(GRANT_TYPE_CIBA, &[("auth_req_id", auth_req_id)])
            .await
        {
            Ok(t) => Ok(Some(t)),
            Err(e) if matches!(e.code(), Some("authorization_pending" | "slow_down")) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Waits for the answer to `request`, polling at its interval (5 s longer after each
    /// `slow_down`, CIBA §11), until it expires.
    pub async fn wait_for_approval(
        &self,
        auth_req_id: &str,
        request: &BackchannelResponse,
    ) -> Result<TokenResponse, ClientError> {
        let deadline = Instant::now() + Duration::from_secs(request.expires_in);
        let mut interval = Duration::from_secs(request.interval.max(1));
        loop {
            tokio::time::sleep(interval).await;
            match self
                .grant_request(GRANT_TYPE_CIBA, &[("auth_req_id", auth_req_id)])
                .await
            {
                Ok(t) => return Ok(t),
                Err(e) if e.code() == Some("slow_down") => interval += Duration::from_secs(5),
                Err(e) if e.code() == Some("authorization_pending") => {}
                Err(e) => return Err(e),
            }
            if Instant::now() > deadline {
                return Err(ClientError::Other(
                    "the approval request expired before it was answered".into(),
                ));
            }
        }
    }

    /// Revokes `token` (RFC 7009), and drops it from the cache.
    pub async fn revoke(&self, token: &str) -> Result<(), ClientError> {
        let url = format!("{}/oauth2/revoke", self.base);
        let id = self.agent.to_string();
        let response = post_token(&self.http, &url, token, &id, &self.key, &self.base).await?;
        self.cache
            .lock()
            .await
            .tokens
            .retain(|_, (t, _)| t.access_token != token);
        if response.status().is_success() {
            Ok(())
        } else {
            decode::<serde_json::Value>(response).await.map(|_| ())
        }
    }

    /// A request to a resource server carrying `token` as `Authorization: DPoP` with a
    /// fresh proof (`htm`, `htu`, `ath`) signed by this agent's key.
    pub fn request(
        &self,
        method: Method,
        url: &str,
        token: &str,
    ) -> Result<reqwest::RequestBuilder, ClientError> {
        let htu = url.split(['?', '#']).next().unwrap_or(url);
        let proof = rfc9449::create(
            &self.key,
            method.as_str(),
            htu,
            Some(token),
            None,
            OffsetDateTime::now_utc(),
        )?;
        Ok(self
            .http
            .request(method, url)
            .header("Authorization", format!("DPoP {token}"))
            .header("DPoP", proof))
    }
}
