//! The application: shared state, routes, middleware and the OpenAPI document generated
//! from the handlers' types.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use surety_core::clock::Clock;
use surety_store::{AgentActivity, Store};
use time::OffsetDateTime;
use tower_http::LatencyUnit;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::admin::policies::Policies;
use crate::admin::{
    agents, approvals, audit, credentials, enroll, grants, humans, inventory, policies,
};
use crate::batch::Batcher;
use crate::config::Config;
use crate::error::ApiError;
use crate::keyring::{KeyRing, KeyRingError};
use crate::nonce::NonceIssuer;
use crate::{decisions, federation, oauth, ops, signals, telemetry};
use surety_jose::KeyAlg;

/// Path of the token endpoint.
pub const TOKEN_PATH: &str = "/oauth2/token";
/// Path of the introspection endpoint.
pub const INTROSPECT_PATH: &str = "/oauth2/introspect";
/// Path of the revocation endpoint.
pub const REVOKE_PATH: &str = "/oauth2/revoke";
/// Path of the JWK Set.
pub const JWKS_PATH: &str = "/jwks";
/// Path of the CIBA backchannel authentication endpoint.
pub const BC_AUTHORIZE_PATH: &str = "/oauth2/bc-authorize";
/// Path of the enrollment endpoint.
pub const ENROLL_PATH: &str = "/v1/enroll";
/// Path of the OpenAPI document.
pub const OPENAPI_PATH: &str = "/v1/openapi.json";

/// Why the state could not be built at start.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The signing keys could not be loaded.
    #[error(transparent)]
    Keys(#[from] KeyRingError),
    /// The policy set in force could not be loaded.
    #[error(transparent)]
    Policies(#[from] crate::admin::policies::PolicyLoadError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] surety_store::StoreError),
    /// The HTTP client for outgoing calls could not be built.
    #[error("HTTP client: {0}")]
    Http(String),
}

/// Most writes one group commit takes.
const GROUP_COMMIT_MAX: usize = 256;

/// Everything a handler needs.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database.
    pub store: Arc<dyn Store>,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// The resolved configuration.
    pub config: Arc<Config>,
    /// Public base URL, without a trailing slash.
    pub issuer: Arc<str>,
    /// DPoP nonces.
    pub nonces: Arc<NonceIssuer>,
    /// The organisation's signing keys.
    pub keys: Arc<KeyRing>,
    /// The policy set in force.
    pub policies: Arc<Policies>,
    /// Group commit of single-use values (`jti`s of proofs and assertions).
    replay: Arc<Batcher<(String, OffsetDateTime), bool>>,
    /// Group commit of issued tokens' audit events.
    issued: Arc<Batcher<AgentActivity, ()>>,
    /// Metrics.
    pub metrics: PrometheusHandle,
    /// Changes of approval requests, for the approvers' streams on this node.
    pub(crate) notices: Arc<crate::approvals::Notices>,
    /// The WebAuthn relying party of the web UI.
    pub(crate) passkeys: Arc<crate::ui::Passkeys>,
    /// The client for URLs others gave (federation peers).
    pub(crate) egress: Arc<crate::egress::Egress>,
    /// When federation peers' keys were last fetched by this node.
    pub(crate) peer_fetches: Arc<crate::federation::FetchLog>,
}

impl AppState {
    /// Builds the state: loads the shared nonce key and the signing keys from the store.
    pub async fn new(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StateError> {
        let nonces =
            NonceIssuer::load(store.as_ref(), config.dpop_nonce_lifetime, clock.now()).await?;
        let alg: KeyAlg = config.signing_alg.parse().map_err(|_| KeyRingError::Kek {
            path: config.kek_path(),
            reason: format!("unknown signing algorithm `{}`", config.signing_alg),
        })?;
        let keys = KeyRing::load(
            store.as_ref(),
            &config.kek_path(),
            alg,
            config.key_refresh_interval,
            clock.now(),
        )
        .await?;
        let replay = {
            let (store, clock) = (store.clone(), clock.clone());
            Batcher::spawn(
                GROUP_COMMIT_MAX,
                move |items: Vec<(String, OffsetDateTime)>| {
                    let (store, now) = (store.clone(), clock.now());
                    async move {
                        // A lost deadlock (PostgreSQL) is run once more before failing.
                        match store.remember_many(&items, now).await {
                            Err(e) if e.is_retryable() => store.remember_many(&items, now).await,
                            other => other,
                        }
                    }
                },
            )
        };
        let issued = {
            let store = store.clone();
            Batcher::spawn(GROUP_COMMIT_MAX, move |items: Vec<AgentActivity>| {
                let store = store.clone();
                async move {
                    match store.record_agent_activity(&items).await {
                        Err(e) if e.is_retryable() => store.record_agent_activity(&items).await?,
                        other => other?,
                    }
                    Ok(vec![(); items.len()])
                }
            })
        };
        let policies = Policies::load(store.as_ref()).await?;
        let passkeys = crate::ui::Passkeys::new(&config.issuer_url());
        let egress = crate::egress::Egress::new(config.dev).map_err(StateError::Http)?;
        Ok(Self {
            egress: Arc::new(egress),
            peer_fetches: Arc::default(),
            policies: Arc::new(policies),
            replay: Arc::new(replay),
            issued: Arc::new(issued),
            keys: Arc::new(keys),
            issuer: config.issuer_url().into(),
            store,
            clock,
            config: Arc::new(config),
            nonces: Arc::new(nonces),
            metrics: telemetry::prometheus(),
            notices: Arc::new(crate::approvals::Notices::new()),
            passkeys: Arc::new(passkeys),
        })
    }

    /// Records a single-use value until `until` (group-committed); `false` if it was seen
    /// before and is still live — a replay.
    pub(crate) async fn remember(
        &self,
        key: String,
        until: OffsetDateTime,
    ) -> Result<bool, ApiError> {
        self.replay.submit((key, until)).await
    }

    /// Records an issued token's audit events and its agent's `last_seen_at`
    /// (group-committed).
    pub(crate) async fn record_activity(&self, issued: AgentActivity) -> Result<(), ApiError> {
        self.issued.submit(issued).await
    }

    /// The public URL of `path`: what a DPoP proof's `htu` must name.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Surety",
        description = "Identity, delegated authority and runtime assurance for AI agents.",
        license(name = "Apache-2.0")
    ),
    tags(
        (name = "oauth", description = "OAuth 2.0 endpoints (RFC 6749, RFC 7523, RFC 8693, RFC 7662, RFC 7009, RFC 8414, RFC 9449)"),
        (name = "grants", description = "Delegations from humans to agents"),
        (name = "credentials", description = "Resource servers and the organisation's signing keys"),
        (name = "decisions", description = "May this agent, for this human, do this now? (native and OpenID AuthZEN)"),
        (name = "policies", description = "The Cedar policy set: in force, history, validate, apply, roll back"),
        (name = "humans", description = "Human principals and their device keys"),
        (name = "agents", description = "Agent identities, lifecycle and keys"),
        (name = "audit", description = "The audit log"),
        (name = "inventory", description = "Every agent, who owns it, what it may do and what it never uses; the report of what needs attention"),
        (name = "federation", description = "Trusted peer organisations and what their agents may do here (identity chaining across domains)"),
        (name = "signals", description = "Security events for receivers: an OpenID Shared Signals Framework 1.0 transmitter (RFC 8417 SETs, push RFC 8935 and poll RFC 8936)"),
        (name = "approvals", description = "Step-up approvals: the approver's inbox and signed answers (OpenID CIBA on the agent's side)"),
        (name = "operations", description = "Health, readiness and metrics"),
    )
)]
struct ApiDoc;

/// Declares the `dpop` security scheme. OpenAPI's `http` type takes any IANA-registered
/// scheme and RFC 9449 §7.1 registers `DPoP`; utoipa has no variant for it, so the scheme is
/// written into the JSON document directly.
fn with_dpop_scheme(mut doc: serde_json::Value) -> serde_json::Value {
    doc["components"]["securitySchemes"]["dpop"] = serde_json::json!({
        "type": "http",
        "scheme": "DPoP",
        "description": "A DPoP-bound access token from `POST /oauth2/token`, sent as \
            `Authorization: DPoP <token>` with a `DPoP` proof header (RFC 9449)."
    });
    doc
}

fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(oauth::token))
        .routes(routes!(oauth::ciba::bc_authorize))
        .routes(routes!(oauth::rfc7662::introspect))
        .routes(routes!(oauth::rfc7009::revoke))
        .routes(routes!(oauth::metadata::authorization_server))
        .routes(routes!(oauth::metadata::openid_configuration))
        .routes(routes!(oauth::metadata::jwks))
        .routes(routes!(oauth::metadata::authzen))
        .routes(routes!(grants::create, grants::list))
        .routes(routes!(grants::get))
        .routes(routes!(grants::accept))
        .routes(routes!(grants::decline))
        .routes(routes!(grants::revoke))
        .routes(routes!(
            credentials::create_resource_server,
            credentials::list_resource_servers
        ))
        .routes(routes!(credentials::list_signing_keys))
        .routes(routes!(credentials::rotate_signing_key))
        .routes(routes!(policies::current, policies::apply_set))
        .routes(routes!(policies::history))
        .routes(routes!(policies::validate))
        .routes(routes!(policies::rollback))
        .routes(routes!(policies::get))
        .routes(routes!(decisions::native))
        .routes(routes!(decisions::evaluation))
        .routes(routes!(decisions::evaluations))
        .routes(routes!(enroll::enroll))
        .routes(routes!(humans::create, humans::list))
        .routes(routes!(humans::get))
        .routes(routes!(humans::me))
        .routes(routes!(humans::deactivate))
        .routes(routes!(humans::reactivate))
        .routes(routes!(humans::enrollment_code))
        .routes(routes!(humans::invite))
        .routes(routes!(humans::passkeys))
        .routes(routes!(humans::revoke_passkey))
        .routes(routes!(humans::revoke_key))
        .routes(routes!(agents::register, agents::list))
        .routes(routes!(agents::get))
        .routes(routes!(agents::suspend))
        .routes(routes!(agents::reinstate))
        .routes(routes!(agents::revoke))
        .routes(routes!(agents::retire))
        .routes(routes!(agents::list_keys, agents::add_key))
        .routes(routes!(agents::revoke_key))
        .routes(routes!(inventory::agents))
        .routes(routes!(inventory::report))
        .routes(routes!(audit::list))
        .routes(routes!(audit::range))
        .routes(routes!(audit::checkpoint))
        .routes(routes!(audit::checkpoints))
        .routes(routes!(audit::verifier_key))
        .routes(routes!(audit::inclusion))
        .routes(routes!(audit::consistency))
        .routes(routes!(audit::leaves))
        .routes(routes!(approvals::list))
        .routes(routes!(approvals::stream))
        .routes(routes!(approvals::get))
        .routes(routes!(approvals::answer))
        .routes(routes!(approvals::set_notification_endpoint))
        .routes(routes!(
            federation::admin::add_peer,
            federation::admin::list_peers
        ))
        .routes(routes!(federation::admin::remove_peer))
        .routes(routes!(
            federation::admin::create_grant,
            federation::admin::list_grants
        ))
        .routes(routes!(federation::admin::revoke_grant))
        .routes(routes!(
            federation::card::publish,
            federation::card::withdraw
        ))
        .routes(routes!(federation::card::serve))
        .routes(routes!(signals::configuration))
        .routes(routes!(
            signals::create_stream,
            signals::read_stream,
            signals::delete_stream
        ))
        .routes(routes!(signals::read_status, signals::update_status))
        .routes(routes!(signals::poll))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
}

/// The OpenAPI document, as served at [`OPENAPI_PATH`].
#[must_use]
pub fn openapi() -> serde_json::Value {
    with_dpop_scheme(serde_json::to_value(api().into_openapi()).unwrap_or_default())
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

async fn method_not_allowed() -> impl IntoResponse {
    let mut response =
        ApiError::invalid_request("method not allowed on this endpoint").into_response();
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    response
}

/// The complete application.
pub fn router(state: AppState) -> Router {
    let (routes, openapi) = api().split_for_parts();
    let openapi = Arc::new(with_dpop_scheme(
        serde_json::to_value(openapi).unwrap_or_default(),
    ));
    let request_id = HeaderName::from_static("x-request-id");
    let timeout = state.config.request_timeout;
    let body_limit = state.config.max_body_bytes;
    routes
        .merge(crate::ui::routes())
        .route(OPENAPI_PATH, get(move || async move { axum::Json(openapi.as_ref().clone()) }))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn(telemetry::record))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, timeout.max(Duration::from_millis(1))))
        .layer(SetResponseHeaderLayer::if_not_present(header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
            let id = req
                .extensions()
                .get::<RequestId>()
                .and_then(|id| id.header_value().to_str().ok())
                .unwrap_or("-");
            tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path())
        })
        // One access-log line per request, at the level operators run with.
        .on_response(DefaultOnResponse::new().level(tracing::Level::INFO).latency_unit(LatencyUnit::Micros)))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}
