//! The agent side: an agent holds its own private key (never a shared secret), trades a
//! grant for a short-lived DPoP-bound access token (RFC 8693 token exchange with
//! `private_key_jwt`), keeps it until shortly before it expires, delegates to sub-agents,
//! revokes, and signs each request to a resource server with a fresh DPoP proof.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use reqwest::Method;
use surety_api::oauth::{
    CLIENT_ASSERTION_TYPE_JWT_BEARER, GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_ACCESS_TOKEN,
    TOKEN_TYPE_GRANT, TokenResponse,
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
    nonce: Option<String>,
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
        Ok(Self {
            http: http_client()?,
            base: server.trim_end_matches('/').to_owned(),
            agent,
            key,
            cache: Mutex::new(Cache::default()),
        })
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

    /// A fresh `private_key_jwt` client assertion for `endpoint`.
    fn assertion(&self) -> Result<String, ClientError> {
        let id = self.agent.to_string();
        Ok(rfc7523::create(
            &self.key,
            &id,
            &id,
            &self.base,
            ASSERTION_LIFETIME,
            OffsetDateTime::now_utc(),
        )?)
    }

    /// Sends a token-endpoint request with a DPoP proof, answering one `use_dpop_nonce`.
    async fn token_request(&self, params: &[(&str, &str)]) -> Result<TokenResponse, ClientError> {
        let url = format!("{}/oauth2/token", self.base);
        for attempt in 0..2 {
            let nonce = self.cache.lock().await.nonce.clone();
            let proof = rfc9449::create(
                &self.key,
                "POST",
                &url,
                None,
                nonce.as_deref(),
                OffsetDateTime::now_utc(),
            )?;
            let assertion = self.assertion()?;
            let mut form: Vec<(&str, &str)> = vec![
                ("grant_type", GRANT_TYPE_TOKEN_EXCHANGE),
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
                self.cache.lock().await.nonce = Some(n);
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
