//! The admin API client.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use surety_api::ErrorBody;
use surety_api::admin::{
    AddKey, AgentQuery, AgentView, AuditEventView, AuditQuery, CreateHuman, CreatedHuman,
    EnrollRequest, EnrollResponse, EnrollmentCode, HumanQuery, HumanView, KeyView, ListResponse,
    Reason, RegisterAgent,
};
use surety_api::credentials::{
    ApplyPolicySet, CreateGrant, CreateResourceServer, GrantQuery, GrantView, PolicyHistoryQuery,
    PolicySetView, PolicyValidation, ResourceServerView, RollbackPolicySet, RotateSigningKey,
    RotatedSigningKey, SigningKeyView,
};
use surety_api::inventory::{InventoryQuery, InventoryResponse, ReportResponse};
use surety_api::oauth::{GRANT_TYPE_JWT_BEARER, SCOPE_ADMIN, TokenResponse};
use surety_core::id::{AgentId, GrantId, HumanId};
use surety_jose::{PrivateJwk, rfc7523, rfc9449};
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::{ClientError, Profile, keyfile};

/// Lifetime of the assertions this client signs.
const ASSERTION_LIFETIME: time::Duration = time::Duration::seconds(60);
/// A cached token is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
struct Session {
    token: Option<(String, Instant)>,
    nonce: Option<String>,
}

/// Which inventory export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InventoryExport {
    /// One line per agent.
    Agents,
    /// One line per finding.
    Report,
}

/// A client of the admin API, acting as one human with one enrolled device key.
#[derive(Debug)]
pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    human: HumanId,
    key: PrivateJwk,
    session: Mutex<Session>,
}

pub(crate) fn http_client() -> Result<reqwest::Client, ClientError> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("surety/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

pub(crate) async fn decode<T: DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, ClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response.json().await?);
    }
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str::<ErrorBody>(&text).unwrap_or_else(|_| ErrorBody {
        error: format!("http_{}", status.as_u16()),
        error_description: Some(text.chars().take(500).collect()),
        current_state: None,
    });
    Err(ClientError::Api {
        status: status.as_u16(),
        body,
    })
}

pub(crate) fn nonce_of(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("dpop-nonce")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Posts `token` to an endpoint that takes one (introspection, revocation) as `client_id`,
/// authenticated with a fresh `private_key_jwt` assertion signed by `key` for `issuer`.
pub(crate) async fn post_token(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    client_id: &str,
    key: &PrivateJwk,
    issuer: &str,
) -> Result<reqwest::Response, ClientError> {
    let assertion = rfc7523::create(
        key,
        client_id,
        client_id,
        issuer,
        ASSERTION_LIFETIME,
        OffsetDateTime::now_utc(),
    )?;
    Ok(http
        .post(url)
        .form(&[
            ("token", token),
            ("token_type_hint", "access_token"),
            (
                "client_assertion_type",
                surety_api::oauth::CLIENT_ASSERTION_TYPE_JWT_BEARER,
            ),
            ("client_assertion", &assertion),
        ])
        .send()
        .await?)
}

/// Enrolls a freshly generated device key with a one-time code (`POST /v1/enroll`). The
/// request's DPoP proof, signed by `key`, is what proves possession.
pub async fn enroll(
    server: &str,
    code: &str,
    key: &PrivateJwk,
) -> Result<EnrollResponse, ClientError> {
    let base = server.trim_end_matches('/');
    let url = format!("{base}/v1/enroll");
    let proof = rfc9449::create(key, "POST", &url, None, None, OffsetDateTime::now_utc())?;
    let response = http_client()?
        .post(&url)
        .header("DPoP", proof)
        .json(&EnrollRequest {
            code: code.trim().to_owned(),
        })
        .send()
        .await?;
    decode(response).await
}

impl AdminClient {
    /// A client for `server` acting as `human` with device key `key`.
    pub fn new(server: &str, human: HumanId, key: PrivateJwk) -> Result<Self, ClientError> {
        Ok(Self {
            http: http_client()?,
            base: server.trim_end_matches('/').to_owned(),
            human,
            key,
            session: Mutex::new(Session::default()),
        })
    }

    /// A client from a profile (reads its key file).
    pub fn from_profile(profile: &Profile) -> Result<Self, ClientError> {
        let key = keyfile::read(&profile.key_file)?;
        Self::new(&profile.server, profile.human_id, key)
    }

    /// The server's base URL.
    #[must_use]
    pub fn server(&self) -> &str {
        &self.base
    }

    /// The human this client acts as.
    #[must_use]
    pub fn human_id(&self) -> HumanId {
        self.human
    }

    /// Trades a fresh assertion for an access token (RFC 7523 §2.1), answering one
    /// `use_dpop_nonce` challenge (RFC 9449 §8).
    pub async fn fetch_token(&self) -> Result<TokenResponse, ClientError> {
        let url = format!("{}/oauth2/token", self.base);
        let human = self.human.to_string();
        for attempt in 0..2 {
            let nonce = self.session.lock().await.nonce.clone();
            let now = OffsetDateTime::now_utc();
            let assertion =
                rfc7523::create(&self.key, &human, &human, &url, ASSERTION_LIFETIME, now)?;
            let proof = rfc9449::create(&self.key, "POST", &url, None, nonce.as_deref(), now)?;
            let response = self
                .http
                .post(&url)
                .header("DPoP", proof)
                .form(&[
                    ("grant_type", GRANT_TYPE_JWT_BEARER),
                    ("assertion", &assertion),
                    ("scope", SCOPE_ADMIN),
                ])
                .send()
                .await?;
            if let Some(n) = nonce_of(&response) {
                self.session.lock().await.nonce = Some(n);
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

    async fn token(&self, renew: bool) -> Result<String, ClientError> {
        {
            let session = self.session.lock().await;
            if let Some((token, expires)) = &session.token
                && !renew
                && Instant::now() + RENEW_BEFORE < *expires
            {
                return Ok(token.clone());
            }
        }
        let fresh = self.fetch_token().await?;
        let expires = Instant::now() + Duration::from_secs(fresh.expires_in);
        self.session.lock().await.token = Some((fresh.access_token.clone(), expires));
        Ok(fresh.access_token)
    }

    /// Calls the admin API: `Authorization: DPoP <token>` and a fresh proof bound to it. An
    /// expired or unknown token is renewed once.
    pub async fn call<B: Serialize + ?Sized, Q: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: Option<&Q>,
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        decode(self.send(method, path, query, body).await?).await
    }

    /// Sends an admin-API request (token, proof, one renewal) and returns the response as is.
    async fn send<B: Serialize + ?Sized, Q: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        query: Option<&Q>,
        body: Option<&B>,
    ) -> Result<reqwest::Response, ClientError> {
        let url = format!("{}{path}", self.base);
        for attempt in 0..2 {
            let token = self.token(attempt > 0).await?;
            let proof = rfc9449::create(
                &self.key,
                method.as_str(),
                &url,
                Some(&token),
                None,
                OffsetDateTime::now_utc(),
            )?;
            let mut request = self
                .http
                .request(method.clone(), &url)
                .header("Authorization", format!("DPoP {token}"))
                .header("DPoP", proof);
            if let Some(q) = query {
                request = request.query(q);
            }
            if let Some(b) = body {
                request = request.json(b);
            }
            let response = request.send().await?;
            if response.status() == StatusCode::UNAUTHORIZED && attempt == 0 {
                let renewable = response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.contains("invalid_token"));
                if renewable {
                    continue;
                }
            }
            return Ok(response);
        }
        Err(ClientError::Other(
            "the server refused a freshly issued token".into(),
        ))
    }

    /// A text resource of the admin API (a signed checkpoint, a CSV export).
    async fn text<Q: Serialize + ?Sized>(
        &self,
        path: &str,
        query: Option<&Q>,
    ) -> Result<String, ClientError> {
        let response = self.send::<(), Q>(Method::GET, path, query, None).await?;
        if response.status().is_success() {
            return Ok(response.text().await?);
        }
        decode::<serde_json::Value>(response)
            .await
            .map(|_| String::new())
    }

    /// `GET /v1/audit/checkpoint`: the signed note of the current tree head.
    pub async fn audit_checkpoint(&self) -> Result<String, ClientError> {
        self.text::<()>("/v1/audit/checkpoint", None).await
    }

    /// `GET /v1/inventory/agents`: every agent the caller may see, with its findings.
    pub async fn inventory(
        &self,
        query: &InventoryQuery,
    ) -> Result<InventoryResponse, ClientError> {
        self.get("/v1/inventory/agents", Some(query)).await
    }

    /// `GET /v1/inventory/report`: what needs attention.
    pub async fn inventory_report(
        &self,
        query: &InventoryQuery,
    ) -> Result<ReportResponse, ClientError> {
        self.get("/v1/inventory/report", Some(query)).await
    }

    /// The CSV form of `GET /v1/inventory/{agents|report}`.
    pub async fn inventory_csv(
        &self,
        what: InventoryExport,
        query: &InventoryQuery,
    ) -> Result<String, ClientError> {
        let query = InventoryQuery {
            format: Some("csv".into()),
            ..query.clone()
        };
        let path = match what {
            InventoryExport::Agents => "/v1/inventory/agents",
            InventoryExport::Report => "/v1/inventory/report",
        };
        self.text(path, Some(&query)).await
    }

    /// `GET /v1/audit/checkpoints`: stored checkpoints of sizes in `(after, up_to]`.
    pub async fn audit_checkpoints(
        &self,
        after: u64,
        up_to: u64,
    ) -> Result<surety_api::admin::CheckpointsView, ClientError> {
        self.get(
            "/v1/audit/checkpoints",
            Some(&surety_api::admin::CheckpointsQuery {
                after: Some(after),
                up_to: Some(up_to),
            }),
        )
        .await
    }

    /// `GET /v1/audit/proofs/range`: the nodes that prove leaves `[start, end)` against the
    /// root of the tree of `tree_size`.
    pub async fn audit_range_proof(
        &self,
        start: u64,
        end: u64,
        tree_size: u64,
    ) -> Result<surety_api::admin::RangeProofView, ClientError> {
        self.get(
            "/v1/audit/proofs/range",
            Some(&surety_api::admin::RangeQuery {
                start,
                end,
                tree_size,
            }),
        )
        .await
    }

    /// `GET /v1/audit/leaves`.
    pub async fn audit_leaves(
        &self,
        start: u64,
        end: u64,
    ) -> Result<surety_api::admin::LeavesView, ClientError> {
        self.get(
            "/v1/audit/leaves",
            Some(&surety_api::admin::LeavesQuery { start, end }),
        )
        .await
    }

    async fn get<T: DeserializeOwned, Q: Serialize + ?Sized>(
        &self,
        path: &str,
        query: Option<&Q>,
    ) -> Result<T, ClientError> {
        self.call::<(), Q, T>(Method::GET, path, query, None).await
    }

    async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call::<B, (), T>(Method::POST, path, None, Some(body))
            .await
    }

    /// `GET /v1/me`.
    pub async fn me(&self) -> Result<HumanView, ClientError> {
        self.get::<_, ()>("/v1/me", None).await
    }

    /// `POST /v1/humans`.
    pub async fn create_human(&self, body: &CreateHuman) -> Result<CreatedHuman, ClientError> {
        self.post("/v1/humans", body).await
    }

    /// `GET /v1/humans`.
    pub async fn list_humans(
        &self,
        query: &HumanQuery,
    ) -> Result<ListResponse<HumanView>, ClientError> {
        self.get("/v1/humans", Some(query)).await
    }

    /// `GET /v1/humans/{id}`.
    pub async fn get_human(&self, id: HumanId) -> Result<HumanView, ClientError> {
        self.get::<_, ()>(&format!("/v1/humans/{id}"), None).await
    }

    /// `POST /v1/humans/{id}/deactivate` or `…/reactivate`.
    pub async fn human_action(
        &self,
        id: HumanId,
        action: &str,
        reason: Option<String>,
    ) -> Result<HumanView, ClientError> {
        self.post(&format!("/v1/humans/{id}/{action}"), &Reason { reason })
            .await
    }

    /// `POST /v1/humans/{id}/enrollment-codes`.
    pub async fn enrollment_code(&self, id: HumanId) -> Result<EnrollmentCode, ClientError> {
        self.post(
            &format!("/v1/humans/{id}/enrollment-codes"),
            &serde_json::json!({}),
        )
        .await
    }

    /// `POST /v1/humans/{id}/keys/{kid}/revoke`.
    pub async fn revoke_device_key(
        &self,
        id: HumanId,
        kid: &str,
    ) -> Result<HumanView, ClientError> {
        self.post(
            &format!("/v1/humans/{id}/keys/{kid}/revoke"),
            &serde_json::json!({}),
        )
        .await
    }

    /// `POST /v1/agents`.
    pub async fn register_agent(&self, body: &RegisterAgent) -> Result<AgentView, ClientError> {
        self.post("/v1/agents", body).await
    }

    /// `GET /v1/agents`.
    pub async fn list_agents(
        &self,
        query: &AgentQuery,
    ) -> Result<ListResponse<AgentView>, ClientError> {
        self.get("/v1/agents", Some(query)).await
    }

    /// `GET /v1/agents/{id}`.
    pub async fn get_agent(&self, id: AgentId) -> Result<AgentView, ClientError> {
        self.get::<_, ()>(&format!("/v1/agents/{id}"), None).await
    }

    /// `POST /v1/agents/{id}/{suspend|reinstate|revoke|retire}`.
    pub async fn agent_action(
        &self,
        id: AgentId,
        action: &str,
        reason: Option<String>,
    ) -> Result<AgentView, ClientError> {
        self.post(&format!("/v1/agents/{id}/{action}"), &Reason { reason })
            .await
    }

    /// `GET /v1/agents/{id}/keys`.
    pub async fn list_agent_keys(&self, id: AgentId) -> Result<Vec<KeyView>, ClientError> {
        self.get::<_, ()>(&format!("/v1/agents/{id}/keys"), None)
            .await
    }

    /// `POST /v1/agents/{id}/keys`.
    pub async fn add_agent_key(
        &self,
        id: AgentId,
        body: &AddKey,
    ) -> Result<AgentView, ClientError> {
        self.post(&format!("/v1/agents/{id}/keys"), body).await
    }

    /// `POST /v1/agents/{id}/keys/{kid}/revoke`.
    pub async fn revoke_agent_key(
        &self,
        id: AgentId,
        kid: &str,
        reason: Option<String>,
    ) -> Result<AgentView, ClientError> {
        self.post(
            &format!("/v1/agents/{id}/keys/{kid}/revoke"),
            &Reason { reason },
        )
        .await
    }

    /// `GET /v1/audit`.
    pub async fn list_audit(
        &self,
        query: &AuditQuery,
    ) -> Result<ListResponse<AuditEventView>, ClientError> {
        self.get("/v1/audit", Some(query)).await
    }

    /// `POST /v1/grants`.
    pub async fn create_grant(&self, body: &CreateGrant) -> Result<GrantView, ClientError> {
        self.post("/v1/grants", body).await
    }

    /// `GET /v1/grants`.
    pub async fn list_grants(
        &self,
        query: &GrantQuery,
    ) -> Result<ListResponse<GrantView>, ClientError> {
        self.get("/v1/grants", Some(query)).await
    }

    /// `GET /v1/grants/{id}`.
    pub async fn get_grant(&self, id: GrantId) -> Result<GrantView, ClientError> {
        self.get::<_, ()>(&format!("/v1/grants/{id}"), None).await
    }

    /// `POST /v1/grants/{id}/{accept|decline|revoke}`.
    pub async fn grant_action(
        &self,
        id: GrantId,
        action: &str,
        reason: Option<String>,
    ) -> Result<GrantView, ClientError> {
        self.post(&format!("/v1/grants/{id}/{action}"), &Reason { reason })
            .await
    }

    /// `POST /v1/humans/{id}/invite`: a one-time passkey enrollment link.
    pub async fn invite(
        &self,
        id: HumanId,
    ) -> Result<surety_api::approvals::InviteView, ClientError> {
        self.post(&format!("/v1/humans/{id}/invite"), &serde_json::json!({}))
            .await
    }

    /// `GET /v1/humans/{id}/passkeys`.
    pub async fn passkeys(
        &self,
        id: HumanId,
    ) -> Result<Vec<surety_api::approvals::PasskeyView>, ClientError> {
        self.get::<_, ()>(&format!("/v1/humans/{id}/passkeys"), None)
            .await
    }

    /// `POST /v1/humans/{id}/passkeys/{credential_id}/revoke`: the passkeys that remain.
    pub async fn revoke_passkey(
        &self,
        id: HumanId,
        credential_id: &str,
    ) -> Result<Vec<surety_api::approvals::PasskeyView>, ClientError> {
        self.post(
            &format!("/v1/humans/{id}/passkeys/{credential_id}/revoke"),
            &serde_json::json!({}),
        )
        .await
    }

    /// `GET /v1/approvals`: the requests waiting for this human (or in `status`, or `all`).
    pub async fn list_approvals(
        &self,
        query: &surety_api::approvals::ApprovalQuery,
    ) -> Result<surety_api::approvals::ApprovalList, ClientError> {
        self.get("/v1/approvals", Some(query)).await
    }

    /// `GET /v1/approvals/{id}`.
    pub async fn get_approval(
        &self,
        id: &str,
    ) -> Result<surety_api::approvals::ApprovalView, ClientError> {
        self.get::<_, ()>(&format!("/v1/approvals/{id}"), None)
            .await
    }

    /// Answers `approval` — the request as this client fetched and showed it — by signing the
    /// digest of its statement with this client's device key. The digest is recomputed here
    /// from the statement, so what is signed is what was shown, not what the server says.
    pub async fn answer_approval(
        &self,
        approval: &surety_api::approvals::ApprovalView,
        approve: bool,
        reason: Option<String>,
    ) -> Result<surety_api::approvals::ApprovalView, ClientError> {
        let answer = self.sign_answer(approval, approve, reason)?;
        self.post(
            &format!("/v1/approvals/{}/answer", approval.id),
            &surety_api::approvals::Answer { answer },
        )
        .await
    }

    /// The compact JWS of an answer (see [`AdminClient::answer_approval`]). Refuses to sign
    /// a statement that says anything else than the fields shown to the approver.
    pub fn sign_answer(
        &self,
        approval: &surety_api::approvals::ApprovalView,
        approve: bool,
        reason: Option<String>,
    ) -> Result<String, ClientError> {
        let s = &approval.statement;
        let shown = serde_json::json!({
            "v": surety_core::approval::STATEMENT_VERSION,
            "id": approval.id,
            "agent": approval.agent,
            "chain": approval.chain,
            "principal": approval.principal,
            "grant_id": approval.grant_id,
            "authorization_details": approval.authorization_details,
            "binding_message": approval.binding_message,
            "reasons": approval.reasons,
            "expires_at": approval.expires_at.unix_timestamp(),
        });
        let entry = &approval.authorization_details[0];
        let details_shown = entry["action"] == approval.action.as_str()
            && entry["resource"] == approval.resource
            && entry["arguments"] == approval.arguments
            && entry["locations"] == serde_json::json!([approval.location]);
        if surety_core::canonical::to_string(s) != surety_core::canonical::to_string(&shown)
            || !details_shown
        {
            return Err(ClientError::Other(
                "the request's statement does not match what it shows; not signing".into(),
            ));
        }
        let text = surety_core::canonical::to_string(s);
        let claims = surety_api::approvals::AnswerClaims {
            iss: self.human.to_string(),
            approval_id: approval.id.clone(),
            digest: surety_jose::sha256_b64(text.as_bytes()),
            decision: if approve { "approve" } else { "deny" }.into(),
            reason,
            iat: time::OffsetDateTime::now_utc().unix_timestamp(),
        };
        let mut header = serde_json::Map::new();
        header.insert("typ".into(), surety_api::approvals::ANSWER_TYP.into());
        header.insert("kid".into(), self.key.thumbprint().into());
        let claims =
            serde_json::to_value(&claims).map_err(|e| ClientError::Other(e.to_string()))?;
        Ok(surety_jose::jws::sign(header, &claims, &self.key)?)
    }

    /// `POST /v1/federation/peers`.
    pub async fn add_peer(
        &self,
        body: &surety_api::federation::AddPeer,
    ) -> Result<surety_api::federation::PeerView, ClientError> {
        self.post("/v1/federation/peers", body).await
    }

    /// `GET /v1/federation/peers`.
    pub async fn list_peers(&self) -> Result<Vec<surety_api::federation::PeerView>, ClientError> {
        self.get::<_, ()>("/v1/federation/peers", None).await
    }

    /// `DELETE /v1/federation/peers/{name}`.
    pub async fn remove_peer(&self, name: &str) -> Result<(), ClientError> {
        let path = format!("/v1/federation/peers/{}", urlencoding(name));
        self.no_content(Method::DELETE, &path).await
    }

    /// `POST /v1/federation/grants`.
    pub async fn create_federation_grant(
        &self,
        body: &surety_api::federation::CreateFederationGrant,
    ) -> Result<surety_api::federation::FederationGrantView, ClientError> {
        self.post("/v1/federation/grants", body).await
    }

    /// `GET /v1/federation/grants`.
    pub async fn list_federation_grants(
        &self,
    ) -> Result<Vec<surety_api::federation::FederationGrantView>, ClientError> {
        self.get::<_, ()>("/v1/federation/grants", None).await
    }

    /// `POST /v1/federation/grants/{id}/revoke`.
    pub async fn revoke_federation_grant(
        &self,
        id: surety_core::id::FederationGrantId,
    ) -> Result<surety_api::federation::FederationGrantView, ClientError> {
        self.post(
            &format!("/v1/federation/grants/{id}/revoke"),
            &serde_json::json!({}),
        )
        .await
    }

    /// `PUT /v1/agents/{id}/card`: the signed card as served.
    pub async fn publish_card(
        &self,
        id: AgentId,
        body: &surety_api::federation::PublishCard,
    ) -> Result<serde_json::Value, ClientError> {
        self.call(
            Method::PUT,
            &format!("/v1/agents/{id}/card"),
            None::<&()>,
            Some(body),
        )
        .await
    }

    /// `DELETE /v1/agents/{id}/card`.
    pub async fn withdraw_card(&self, id: AgentId) -> Result<(), ClientError> {
        self.no_content(Method::DELETE, &format!("/v1/agents/{id}/card"))
            .await
    }

    /// A request answered `204 No Content`.
    async fn no_content(&self, method: Method, path: &str) -> Result<(), ClientError> {
        let response = self.send::<(), ()>(method, path, None, None).await?;
        if response.status().is_success() {
            return Ok(());
        }
        decode::<serde_json::Value>(response).await.map(|_| ())
    }

    /// `PUT /v1/agents/{id}/notification-endpoint`.
    pub async fn set_notification_endpoint(
        &self,
        id: AgentId,
        url: Option<String>,
    ) -> Result<surety_api::approvals::NotificationEndpoint, ClientError> {
        self.call(
            Method::PUT,
            &format!("/v1/agents/{id}/notification-endpoint"),
            None::<&()>,
            Some(&surety_api::approvals::NotificationEndpoint { url }),
        )
        .await
    }

    /// `POST /v1/resource-servers`.
    pub async fn create_resource_server(
        &self,
        body: &CreateResourceServer,
    ) -> Result<ResourceServerView, ClientError> {
        self.post("/v1/resource-servers", body).await
    }

    /// `GET /v1/resource-servers`.
    pub async fn list_resource_servers(&self) -> Result<Vec<ResourceServerView>, ClientError> {
        self.get::<_, ()>("/v1/resource-servers", None).await
    }

    /// `GET /v1/signing-keys`.
    pub async fn list_signing_keys(&self) -> Result<Vec<SigningKeyView>, ClientError> {
        self.get::<_, ()>("/v1/signing-keys", None).await
    }

    /// `POST /v1/signing-keys/rotate`.
    pub async fn rotate_signing_key(
        &self,
        alg: Option<String>,
    ) -> Result<RotatedSigningKey, ClientError> {
        self.post("/v1/signing-keys/rotate", &RotateSigningKey { alg })
            .await
    }

    /// `GET /v1/policies` (`None`) or `GET /v1/policies/{version}`.
    pub async fn policy_set(&self, version: Option<u64>) -> Result<PolicySetView, ClientError> {
        let path = version.map_or_else(
            || "/v1/policies".to_owned(),
            |v| format!("/v1/policies/{v}"),
        );
        self.get::<_, ()>(&path, None).await
    }

    /// `GET /v1/policies/history`.
    pub async fn policy_history(
        &self,
        query: &PolicyHistoryQuery,
    ) -> Result<ListResponse<PolicySetView>, ClientError> {
        self.get("/v1/policies/history", Some(query)).await
    }

    /// `POST /v1/policies/validate`.
    pub async fn validate_policies(
        &self,
        body: &ApplyPolicySet,
    ) -> Result<PolicyValidation, ClientError> {
        self.post("/v1/policies/validate", body).await
    }

    /// `POST /v1/policies`.
    pub async fn apply_policies(
        &self,
        body: &ApplyPolicySet,
    ) -> Result<PolicySetView, ClientError> {
        self.post("/v1/policies", body).await
    }

    /// `POST /v1/policies/rollback`.
    pub async fn rollback_policies(&self, version: u64) -> Result<PolicySetView, ClientError> {
        self.post("/v1/policies/rollback", &RollbackPolicySet { version })
            .await
    }
}

/// Percent-encodes a path segment (RFC 3986 §2.1): everything but unreserved characters.
fn urlencoding(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
