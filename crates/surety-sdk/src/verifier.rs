//! The resource-server side: verify a request that carries a Surety access token.
//!
//! 1. exactly one `Authorization: DPoP <token>` (RFC 9449 §7.1);
//! 2. the token is an RFC 9068 JWT signed by a key of the issuer's JWKS (cached; re-read
//!    when an unknown `kid` appears), from the expected issuer, unexpired, for this audience;
//! 3. the DPoP proof passes every check of RFC 9449 §4.3, including `ath` and a key whose
//!    thumbprint is the token's `cnf.jkt`, and its `jti` was not seen before;
//! 4. revocation: the token is still active according to introspection (RFC 7662), asked
//!    with this resource server's own `private_key_jwt` — or, for a verifier that follows
//!    Surety's security events ([`ResourceVerifier::follow_signals`]), withdrawn by none of
//!    them: checked locally, with no call per request.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use surety_core::id::ResourceServerId;
use surety_jose::rfc9068::{self, AccessTokenClaims, TokenPolicy};
use surety_jose::rfc9449::{self, NonceCheck, ProofContext, ProofPolicy};
use surety_jose::{PrivateJwk, PublicJwk};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::ClientError;
use crate::client::http_client;

/// Why a request was refused; maps to `WWW-Authenticate: DPoP error="…"`.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// No usable token (401 without an error code, RFC 6750 §3.1).
    #[error("no DPoP access token")]
    Missing,
    /// The token is malformed, expired, for someone else or no longer active.
    #[error("invalid_token: {0}")]
    InvalidToken(String),
    /// The DPoP proof failed a check.
    #[error("invalid_dpop_proof: {0}")]
    InvalidProof(String),
    /// Surety could not be asked.
    #[error("authorization server unavailable: {0}")]
    Unavailable(#[from] ClientError),
}

impl VerifyError {
    /// The `error` code for `WWW-Authenticate`, if any.
    #[must_use]
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Self::Missing | Self::Unavailable(_) => None,
            Self::InvalidToken(_) => Some("invalid_token"),
            Self::InvalidProof(_) => Some("invalid_dpop_proof"),
        }
    }
}

/// What the security events received so far withdrew — tokens by `jti`, grants, agents,
/// keys (by thumbprint) and humans — each with when it happened: a token issued later (an
/// agent reinstated, a human reactivated) is not withdrawn by it.
#[derive(Debug, Default)]
struct Withdrawn {
    ids: HashMap<String, i64>,
}

/// How long a withdrawal is remembered: longer than any token lives (at most an hour).
const WITHDRAWAL_MEMORY: i64 = 2 * 3600;

impl Withdrawn {
    fn record(&mut self, id: &str, at: i64, now: i64) {
        self.ids.retain(|_, t| *t > now - WITHDRAWAL_MEMORY);
        let t = self.ids.entry(id.to_owned()).or_insert(at);
        *t = (*t).max(at);
    }

    /// Why `claims` are withdrawn, if they are: an id of the token (its `jti`, grant, key,
    /// principal, chain, or a token or key it derives from) withdrawn at or after it was
    /// issued.
    fn check(&self, claims: &AccessTokenClaims) -> Option<&'static str> {
        let hit = |id: &str| self.ids.get(id).is_some_and(|at| *at >= claims.iat);
        if hit(&claims.jti) || claims.derived_from.iter().any(|d| hit(&d.jti)) {
            return Some("the token, or one it derives from, was revoked");
        }
        if hit(&claims.grant_id) {
            return Some("its grant was revoked");
        }
        if hit(&claims.cnf.jkt) || claims.derived_from.iter().any(|d| hit(&d.jkt)) {
            return Some("its key, or a key of its chain, was revoked");
        }
        if hit(&claims.sub) {
            return Some("its principal was deactivated");
        }
        if claims.act.chain().iter().any(|a| hit(a)) {
            return Some("an agent of its chain was suspended or revoked");
        }
        None
    }
}

/// How a verifier following the event stream is doing.
#[derive(Debug, Default)]
struct Following {
    /// When it started following.
    since: Option<Instant>,
    /// The last successful poll.
    last_ok: Option<Instant>,
    /// Its poll interval.
    every: Duration,
}

#[derive(Debug, Default)]
struct State {
    /// The `decisions` token (client credentials) and when to renew it.
    decisions: Option<(String, Instant)>,
    /// The token endpoint's DPoP nonce.
    nonce: Option<String>,
    keys: HashMap<String, PublicJwk>,
    fetched: Option<Instant>,
    seen: HashMap<String, OffsetDateTime>,
}

/// Verifies requests to one resource server.
#[derive(Debug)]
pub struct ResourceVerifier {
    http: reqwest::Client,
    issuer: String,
    audience: String,
    id: ResourceServerId,
    key: PrivateJwk,
    introspect: bool,
    state: Mutex<State>,
    withdrawn: std::sync::Arc<std::sync::RwLock<Withdrawn>>,
    following: std::sync::Mutex<Following>,
}

impl ResourceVerifier {
    /// A verifier for `audience`, registered at `issuer` as `id` with `key`.
    pub fn new(
        issuer: &str,
        audience: &str,
        id: ResourceServerId,
        key: PrivateJwk,
    ) -> Result<Self, ClientError> {
        Ok(Self {
            http: http_client()?,
            issuer: issuer.trim_end_matches('/').to_owned(),
            audience: audience.to_owned(),
            id,
            key,
            introspect: true,
            state: Mutex::new(State::default()),
            withdrawn: std::sync::Arc::default(),
            following: std::sync::Mutex::default(),
        })
    }

    /// Skips step 4: revocation then takes effect only at token expiry. For verifiers that
    /// learn revocations another way.
    #[must_use]
    pub fn without_introspection(mut self) -> Self {
        self.introspect = false;
        self
    }

    async fn fetch_keys(&self, state: &mut State) -> Result<(), ClientError> {
        let url = format!("{}/jwks", self.issuer);
        let set: serde_json::Value =
            crate::client::decode(self.http.get(&url).send().await?).await?;
        state.keys.clear();
        for jwk in set["keys"].as_array().into_iter().flatten() {
            if let (Some(kid), Ok(key)) = (jwk["kid"].as_str(), PublicJwk::from_json(jwk)) {
                state.keys.insert(kid.to_owned(), key);
            }
        }
        state.fetched = Some(Instant::now());
        Ok(())
    }

    async fn signing_key(&self, kid: &str) -> Result<Option<PublicJwk>, ClientError> {
        let mut state = self.state.lock().await;
        if let Some(k) = state.keys.get(kid) {
            return Ok(Some(k.clone()));
        }
        // An unknown kid: re-read, but at most every 5 s whatever callers send.
        if state
            .fetched
            .is_none_or(|t| t.elapsed() >= Duration::from_secs(5))
        {
            self.fetch_keys(&mut state).await?;
        }
        Ok(state.keys.get(kid).cloned())
    }

    /// Verifies a request: `authorization` and `dpop` are every value of those headers,
    /// `method` and `url` the request's (the URL as the client addressed it).
    pub async fn verify(
        &self,
        authorization: &[&str],
        dpop: &[&str],
        method: &str,
        url: &str,
    ) -> Result<AccessTokenClaims, VerifyError> {
        let now = OffsetDateTime::now_utc();
        // 1.
        let token = match authorization {
            [one] => match one.split_once(' ') {
                Some((scheme, t))
                    if scheme.eq_ignore_ascii_case("dpop") && !t.trim().is_empty() =>
                {
                    t.trim()
                }
                _ => return Err(VerifyError::Missing),
            },
            _ => return Err(VerifyError::Missing),
        };
        // 2.
        let invalid = |e: &dyn std::fmt::Display| VerifyError::InvalidToken(e.to_string());
        let decoded = rfc9068::decode(token).map_err(|e| invalid(&e))?;
        let key = self
            .signing_key(decoded.kid())
            .await?
            .ok_or_else(|| VerifyError::InvalidToken("signed by an unknown key".into()))?;
        let policy = TokenPolicy {
            issuer: &self.issuer,
            max_skew: time::Duration::seconds(5),
        };
        let claims = decoded
            .verify(&key, &policy, now)
            .map_err(|e| invalid(&e))?;
        if claims.aud != self.audience {
            return Err(VerifyError::InvalidToken(
                "the token is for another audience".into(),
            ));
        }
        // A one-time approval token is evidence for the decision endpoint, not authority.
        if claims.approval_id.is_some() || claims.authorization_details.is_some() {
            return Err(VerifyError::InvalidToken(
                "this is an approval token: pass it to the decision as `approval_token`".into(),
            ));
        }
        // 3.
        let htu = url.split(['?', '#']).next().unwrap_or(url);
        let ctx = ProofContext {
            method,
            uri: htu,
            access_token: Some(token),
            bound_jkt: Some(&claims.cnf.jkt),
        };
        let proof = rfc9449::validate(
            dpop,
            &ctx,
            &ProofPolicy::default(),
            NonceCheck::NotRequired,
            now,
        )
        .map_err(|e| VerifyError::InvalidProof(e.to_string()))?;
        {
            let mut state = self.state.lock().await;
            state.seen.retain(|_, until| *until > now);
            if state
                .seen
                .insert(proof.replay_key.clone(), proof.replay_until)
                .is_some()
            {
                return Err(VerifyError::InvalidProof(
                    "the proof was already used (jti replay)".into(),
                ));
            }
        }
        // 4.
        let withdrawn = match self.withdrawn.read() {
            Ok(w) => w.check(&claims),
            Err(poisoned) => poisoned.into_inner().check(&claims),
        };
        if let Some(why) = withdrawn {
            return Err(VerifyError::InvalidToken(format!(
                "the token is no longer active: {why}"
            )));
        }
        if (self.introspect || self.events_unreliable())
            && !self.is_active(token, &claims.jti).await?
        {
            return Err(VerifyError::InvalidToken(
                "the token is no longer active".into(),
            ));
        }
        Ok(claims)
    }

    /// Introspects `token` (RFC 7662): `{"active": false}`, or its claims.
    pub async fn introspect(&self, token: &str) -> Result<serde_json::Value, ClientError> {
        self.introspect_at(&self.issuer, token).await
    }

    /// Introspects `token` at one node of the deployment, `node` (its own base URL, behind
    /// the issuer's load balancer): what that node knows, now.
    pub async fn introspect_at(
        &self,
        node: &str,
        token: &str,
    ) -> Result<serde_json::Value, ClientError> {
        let url = format!("{}/oauth2/introspect", node.trim_end_matches('/'));
        let id = self.id.to_string();
        let response =
            crate::client::post_token(&self.http, &url, token, &id, &self.key, &self.issuer)
                .await?;
        crate::client::decode(response).await
    }

    /// Asks Surety whether `token`, whose `jti` is `jti`, is active.
    pub async fn is_active(&self, token: &str, jti: &str) -> Result<bool, ClientError> {
        let body = self.introspect(token).await?;
        Ok(body["active"] == true && body["jti"] == jti)
    }
}

impl ResourceVerifier {
    /// Follows Surety's security events (OpenID SSF, poll delivery): opens a stream for this
    /// resource server and polls it every `every`, acknowledging what it received; tokens
    /// the events withdraw (revoked tokens and grants, revoked keys, suspended or revoked
    /// agents, deactivated humans) are refused by [`ResourceVerifier::verify`] from then on,
    /// without asking Surety. Combine with [`ResourceVerifier::without_introspection`] for
    /// verification without a call per request. Returns the polling task.
    pub async fn follow_signals(
        self: &std::sync::Arc<Self>,
        every: Duration,
    ) -> Result<tokio::task::JoinHandle<()>, ClientError> {
        let created: serde_json::Value = crate::client::decode(
            self.signed_request(
                "POST",
                "/ssf/streams",
                Some(serde_json::json!({
                    "delivery": {"method": "urn:ietf:rfc:8936"},
                    "description": "surety-sdk resource verifier",
                })),
            )
            .await?,
        )
        .await?;
        let stream = created["stream_id"]
            .as_str()
            .ok_or_else(|| ClientError::Other("the stream has no `stream_id`".into()))?
            .to_owned();
        {
            let mut f = match self.following.lock() {
                Ok(f) => f,
                Err(poisoned) => poisoned.into_inner(),
            };
            f.since = Some(Instant::now());
            f.every = every;
        }
        let me = self.clone();
        Ok(tokio::spawn(async move {
            let mut ack: Vec<String> = Vec::new();
            loop {
                // A failed poll keeps what is still to acknowledge, and is retried next time;
                // meanwhile `verify` introspects (see `events_unreliable`).
                if let Ok((received, more)) = me.poll_signals(&stream, &ack).await {
                    ack = received;
                    if let Ok(mut f) = me.following.lock() {
                        f.last_ok = Some(Instant::now());
                    }
                    if more {
                        continue;
                    }
                }
                tokio::time::sleep(every).await;
            }
        }))
    }

    /// Whether a verifier that follows the event stream cannot rely on it now — it has not
    /// polled successfully yet, or not for ten intervals (at least 5 s) — so that it
    /// introspects instead: it fails closed. (A new stream starts one token lifetime in the
    /// past, so what was revoked just before it began is in it.)
    fn events_unreliable(&self) -> bool {
        let f = match self.following.lock() {
            Ok(f) => f,
            Err(poisoned) => poisoned.into_inner(),
        };
        f.since.is_some()
            && f.last_ok
                .is_none_or(|t| t.elapsed() > (f.every * 10).max(Duration::from_secs(5)))
    }

    /// One poll: acknowledges `ack`, records what the received SETs withdraw (each verified
    /// with the issuer's keys), and returns their `jti`s to acknowledge next time.
    async fn poll_signals(
        &self,
        stream: &str,
        ack: &[String],
    ) -> Result<(Vec<String>, bool), ClientError> {
        let path = format!("/ssf/poll/{stream}");
        let body = serde_json::json!({"ack": ack, "returnImmediately": true});
        let answer: serde_json::Value =
            crate::client::decode(self.signed_request("POST", &path, Some(body)).await?).await?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let mut received = Vec::new();
        for (jti, set) in answer["sets"].as_object().into_iter().flatten() {
            match self.open_set(set.as_str().unwrap_or_default()).await {
                // Applied: acknowledged next time.
                Ok(Some((id, at))) => {
                    let mut w = match self.withdrawn.write() {
                        Ok(w) => w,
                        Err(poisoned) => poisoned.into_inner(),
                    };
                    w.record(&id, at, now);
                    received.push(jti.clone());
                }
                // Not for this verifier, or about nothing it holds: acknowledged.
                Ok(None) => received.push(jti.clone()),
                // Not verifiable now (a key not yet known): left unacknowledged, so that it
                // comes again.
                Err(_) => {}
            }
        }
        let more = answer["moreAvailable"] == true;
        Ok((received, more))
    }

    /// A SET's withdrawn id and when, once verified with the issuer's keys; `None` for a SET
    /// not addressed to this verifier.
    async fn open_set(&self, set: &str) -> Result<Option<(String, i64)>, ClientError> {
        let jws = surety_jose::jws::decode(set, 64 * 1024)?;
        if jws.header.typ.as_deref() != Some("secevent+jwt") {
            return Ok(None);
        }
        let kid = jws.header.kid.clone().unwrap_or_default();
        let key = self
            .signing_key(&kid)
            .await?
            .ok_or_else(|| ClientError::Other(format!("unknown signing key `{kid}`")))?;
        jws.verify(&key)?;
        let claims: serde_json::Value = jws.claims()?;
        if claims["iss"] != self.issuer.as_str() || claims["aud"] != self.audience.as_str() {
            return Ok(None);
        }
        let Some(id) = claims["sub_id"]["id"].as_str() else {
            return Ok(None);
        };
        let at = claims["events"]
            .as_object()
            .and_then(|e| e.values().next())
            .and_then(|e| e["event_timestamp"].as_i64())
            .or_else(|| claims["iat"].as_i64())
            .unwrap_or(i64::MAX);
        Ok(Some((id.to_owned(), at)))
    }

    /// A request to Surety as this resource server: its `decisions` token and a DPoP proof.
    async fn signed_request(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Result<reqwest::Response, ClientError> {
        let token = self.decisions_token().await?;
        let url = format!("{}{path}", self.issuer);
        let proof = rfc9449::create(
            &self.key,
            method,
            &url,
            Some(&token),
            None,
            OffsetDateTime::now_utc(),
        )?;
        let method: reqwest::Method = method
            .parse()
            .map_err(|_| ClientError::Other("bad method".into()))?;
        let mut request = self
            .http
            .request(method, &url)
            .header("Authorization", format!("DPoP {token}"))
            .header("DPoP", proof);
        if let Some(b) = body {
            request = request.json(&b);
        }
        Ok(request.send().await?)
    }

    /// A `decisions` token for this resource server (RFC 6749 §4.4 client credentials with
    /// `private_key_jwt` and DPoP), kept until 30 s before it expires.
    pub async fn decisions_token(&self) -> Result<String, ClientError> {
        if let Some((token, renew_at)) = &self.state.lock().await.decisions
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let url = format!("{}/oauth2/token", self.issuer);
        let id = self.id.to_string();
        for attempt in 0..2 {
            let nonce = self.state.lock().await.nonce.clone();
            let now = OffsetDateTime::now_utc();
            let proof = rfc9449::create(&self.key, "POST", &url, None, nonce.as_deref(), now)?;
            let assertion = surety_jose::rfc7523::create(
                &self.key,
                &id,
                &id,
                &self.issuer,
                time::Duration::seconds(60),
                now,
            )?;
            let response = self
                .http
                .post(&url)
                .header("DPoP", proof)
                .form(&[
                    (
                        "grant_type",
                        surety_api::oauth::GRANT_TYPE_CLIENT_CREDENTIALS,
                    ),
                    ("scope", surety_api::oauth::SCOPE_DECISIONS),
                    (
                        "client_assertion_type",
                        surety_api::oauth::CLIENT_ASSERTION_TYPE_JWT_BEARER,
                    ),
                    ("client_assertion", &assertion),
                ])
                .send()
                .await?;
            if let Some(n) = crate::client::nonce_of(&response) {
                self.state.lock().await.nonce = Some(n);
            }
            match crate::client::decode::<surety_api::oauth::TokenResponse>(response).await {
                Err(e) if attempt == 0 && e.code() == Some("use_dpop_nonce") => continue,
                Err(e) => return Err(e),
                Ok(t) => {
                    let renew_at =
                        Instant::now() + Duration::from_secs(t.expires_in.saturating_sub(30));
                    self.state.lock().await.decisions = Some((t.access_token.clone(), renew_at));
                    return Ok(t.access_token);
                }
            }
        }
        Err(ClientError::Other(
            "the server kept asking for a new DPoP nonce".into(),
        ))
    }

    /// Asks Surety whether the agent holding `input.token` may take the action now
    /// (`POST /v1/decisions`).
    pub async fn decide(
        &self,
        input: &surety_api::decisions::DecisionInput,
    ) -> Result<surety_api::decisions::DecisionView, ClientError> {
        let url = format!("{}/v1/decisions", self.issuer);
        let token = self.decisions_token().await?;
        let proof = rfc9449::create(
            &self.key,
            "POST",
            &url,
            Some(&token),
            None,
            OffsetDateTime::now_utc(),
        )?;
        let response = self
            .http
            .post(&url)
            .header("Authorization", format!("DPoP {token}"))
            .header("DPoP", proof)
            .json(input)
            .send()
            .await?;
        crate::client::decode(response).await
    }
}
