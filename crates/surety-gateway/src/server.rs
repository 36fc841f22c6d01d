//! The gateway's HTTP side: per upstream, the MCP endpoint (POST, GET stream, DELETE) and
//! its RFC 9728 protected-resource metadata; `/healthz` and `/metrics`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::{Value, json};
use surety_jose::rfc9068::AccessTokenClaims;
use surety_sdk::{ResourceVerifier, VerifyError};

use crate::config::{GatewayConfig, Upstream};
use crate::decide::{self, Verdict};
use crate::jsonrpc;
use crate::mapping::{self, Anchor, Plan};

/// Headers relayed to the upstream (never `Authorization`, `DPoP` or cookies: no token
/// passthrough).
const TO_UPSTREAM: [&str; 4] = ["content-type", "accept", "mcp-session-id", "last-event-id"];
const PROTOCOL_VERSION: &str = "mcp-protocol-version";
/// Headers relayed back to the client.
const TO_CLIENT: [&str; 4] = [
    "content-type",
    "mcp-session-id",
    "mcp-protocol-version",
    "cache-control",
];

/// One upstream and what the gateway knows about it.
#[derive(Debug)]
pub struct Route {
    pub(crate) upstream: Upstream,
    pub(crate) verifier: Arc<ResourceVerifier>,
    /// Who answers decisions and introspection: Surety over HTTP, or in-process.
    pub(crate) decider: Arc<dyn crate::decider::Decider>,
    /// `x-authzen-mapping` per tool, as the upstream declared it in `tools/list`.
    declared: RwLock<HashMap<String, Value>>,
    /// `x-authzen-mapping` per tool from the gateway's configuration (reloadable), which
    /// takes precedence over the upstream's.
    configured: RwLock<std::collections::BTreeMap<String, Value>>,
    /// Session ids the upstream gave, and the agent each belongs to.
    sessions: RwLock<HashMap<String, (String, Instant)>>,
}

/// Everything a request needs.
#[derive(Debug)]
pub struct Gateway {
    pub(crate) config: GatewayConfig,
    pub(crate) http: reqwest::Client,
    metrics: Option<PrometheusHandle>,
}

type Shared = (Arc<Gateway>, Arc<Route>);

impl Route {
    /// A route for `upstream`, verifying tokens with its registration at Surety.
    pub fn new(
        config: &GatewayConfig,
        upstream: Upstream,
        decider: Option<Arc<dyn crate::decider::Decider>>,
    ) -> Result<Self, String> {
        let read = || {
            surety_sdk::keyfile::read(&upstream.key_file)
                .map_err(|e| format!("{}: {e}", upstream.key_file.display()))
        };
        let key = read()?;
        let id = upstream
            .client_id
            .parse()
            .map_err(|e| format!("`client_id` `{}`: {e}", upstream.client_id))?;
        // Revocation is checked per message instead (see `still_active`): a decision already
        // checks the token's standing, so a decided message needs no introspection too.
        let verifier = Arc::new(
            ResourceVerifier::new(&config.issuer, &upstream.resource, id, key)
                .map_err(|e| e.to_string())?
                .without_introspection(),
        );
        if let Some(every) = config.follow_signals {
            follow(verifier.clone(), every);
        }
        let decider = match decider {
            Some(d) => d,
            None => Arc::new(
                ResourceVerifier::new(&config.issuer, &upstream.resource, id, read()?)
                    .map_err(|e| e.to_string())?,
            ),
        };
        Ok(Self {
            decider,
            configured: RwLock::new(upstream.tools.clone()),
            upstream,
            verifier,
            declared: RwLock::new(HashMap::new()),

            sessions: RwLock::new(HashMap::new()),
        })
    }

    fn metadata_url(&self, config: &GatewayConfig) -> String {
        format!(
            "{}/.well-known/oauth-protected-resource{}",
            config.public_url, self.upstream.prefix
        )
    }

    /// The mapping of `tool`: the gateway's configuration first, then the upstream's.
    fn declared(&self, tool: &str) -> Option<Value> {
        if let Some(m) = self.configured.read().ok()?.get(tool) {
            return Some(m.clone());
        }
        self.declared.read().ok()?.get(tool).cloned()
    }
}

/// Has `verifier` follow Surety's security event stream, opening its stream as soon as Surety
/// answers (retrying every second until then).
fn follow(verifier: Arc<ResourceVerifier>, every: Duration) {
    // Outside a runtime (a configuration check) there is nothing to follow.
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        loop {
            match verifier.follow_signals(every).await {
                Ok(polling) => {
                    let _ = polling.await;
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open a security event stream at Surety yet; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
}

/// Applies a changed configuration to a running gateway: each upstream's declared mappings.
/// What else changed (listen address, upstreams, keys, step-up…) needs a restart, and is
/// named in the answer.
#[derive(Debug, Clone)]
pub struct Reloader {
    running: GatewayConfig,
    routes: Vec<Arc<Route>>,
}

impl Reloader {
    /// Takes `new`'s mappings; returns what it could not apply without a restart.
    pub fn apply(&self, new: &GatewayConfig) -> Vec<String> {
        let mut needs_restart = Vec::new();
        let fixed = |c: &GatewayConfig| {
            (
                c.listen.clone(),
                c.public_url.clone(),
                c.issuer.clone(),
                c.step_up,
                c.hold_timeout,
                c.upstream_timeout,
                c.max_body_bytes,
                c.introspect,
                c.follow_signals,
            )
        };
        if fixed(new) != fixed(&self.running) {
            needs_restart.push("a setting outside `[[upstream]]` changed".to_owned());
        }
        let prefixes = |c: &GatewayConfig| {
            c.upstreams
                .iter()
                .map(|u| u.prefix.clone())
                .collect::<Vec<_>>()
        };
        if prefixes(new) != prefixes(&self.running) {
            needs_restart.push("upstreams were added or removed".to_owned());
        }
        for route in &self.routes {
            let Some(u) = new
                .upstreams
                .iter()
                .find(|u| u.prefix == route.upstream.prefix)
            else {
                continue;
            };
            if (&u.url, &u.client_id, &u.key_file)
                != (
                    &route.upstream.url,
                    &route.upstream.client_id,
                    &route.upstream.key_file,
                )
            {
                needs_restart.push(format!(
                    "`{}`: its url, client_id or key_file changed",
                    u.prefix
                ));
            }
            if let Ok(mut m) = route.configured.write() {
                *m = u.tools.clone();
            }
        }
        needs_restart
    }
}

/// Builds the router for `config` (reading each upstream's key file).
pub fn router(config: GatewayConfig, metrics: Option<PrometheusHandle>) -> Result<Router, String> {
    build(config, metrics).map(|(router, _)| router)
}

/// The router for `config`, and what reloads its mappings.
pub fn build(
    config: GatewayConfig,
    metrics: Option<PrometheusHandle>,
) -> Result<(Router, Reloader), String> {
    build_with(config, metrics, &|_| None, true)
}

/// [`build`], with `decider` naming who decides for an upstream (`None`: Surety over HTTP);
/// `standalone` adds `/healthz` and `/metrics` (a gateway embedded in the Surety server has
/// the server's).
pub fn build_with(
    config: GatewayConfig,
    metrics: Option<PrometheusHandle>,
    decider: &dyn Fn(&Upstream) -> Option<Arc<dyn crate::decider::Decider>>,
    standalone: bool,
) -> Result<(Router, Reloader), String> {
    let http = reqwest::Client::builder()
        .connect_timeout(config.upstream_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let routes: Vec<Route> = config
        .upstreams
        .iter()
        .map(|u| Route::new(&config, u.clone(), decider(u)))
        .collect::<Result<_, _>>()?;
    let limit = config.max_body_bytes;
    let routes: Vec<Arc<Route>> = routes.into_iter().map(Arc::new).collect();
    let reloader = Reloader {
        running: config.clone(),
        routes: routes.clone(),
    };
    let gateway = Arc::new(Gateway {
        config,
        http,
        metrics,
    });
    let mut app = Router::new();
    if standalone {
        app = app
            .route("/healthz", get(|| async { "ok" }))
            .route("/metrics", get(render_metrics).with_state(gateway.clone()));
    }
    for route in routes {
        let shared: Shared = (gateway.clone(), route.clone());
        let prefix = route.upstream.prefix.clone();
        app = app
            .route(
                &format!("/.well-known/oauth-protected-resource{prefix}"),
                get(metadata).with_state(shared.clone()),
            )
            .route(
                &prefix,
                axum::routing::post(post)
                    .get(stream)
                    .delete(stream)
                    .with_state(shared),
            );
    }
    Ok((app.layer(DefaultBodyLimit::max(limit)), reloader))
}

async fn render_metrics(State(gw): State<Arc<Gateway>>) -> Response {
    match &gw.metrics {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// RFC 9728 §3: what this protected resource is and who issues its tokens.
async fn metadata(State((gw, route)): State<Shared>) -> Response {
    axum::Json(json!({
        "resource": route.upstream.resource,
        "authorization_servers": [gw.config.issuer],
        "bearer_methods_supported": ["header"],
        "dpop_bound_access_tokens_required": true,
        "dpop_signing_alg_values_supported": ["EdDSA", "ES256"],
        "resource_name": format!("MCP server at {}", route.upstream.prefix),
    }))
    .into_response()
}

/// RFC 9449 §7.1 and RFC 9728 §5.1: a refusal naming where to learn about this resource.
fn unauthorized(gw: &Gateway, route: &Route, e: &VerifyError) -> Response {
    let meta = route.metadata_url(&gw.config);
    let mut challenge = String::from("DPoP algs=\"EdDSA ES256\"");
    if let Some(code) = e.code() {
        let description = e.to_string().replace(['"', '\\'], "'");
        challenge.push_str(&format!(
            ", error=\"{code}\", error_description=\"{description}\""
        ));
    }
    challenge.push_str(&format!(", resource_metadata=\"{meta}\""));
    let status = match e {
        VerifyError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::UNAUTHORIZED,
    };
    let reason = match e {
        VerifyError::Unavailable(_) => "surety_unavailable",
        other => other.code().unwrap_or("no_token"),
    };
    metrics::counter!("surety_gateway_refused_total", "reason" => reason).increment(1);
    let mut r = (status, axum::Json(json!({"error": e.code().unwrap_or("invalid_request"), "error_description": e.to_string()}))).into_response();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

fn values(headers: &HeaderMap, name: HeaderName) -> Vec<&str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

async fn authenticate(
    gw: &Gateway,
    route: &Route,
    method: &Method,
    headers: &HeaderMap,
) -> Result<(AccessTokenClaims, String), Response> {
    let auth = values(headers, header::AUTHORIZATION);
    let dpop = values(headers, HeaderName::from_static("dpop"));
    let claims = route
        .verifier
        .verify(&auth, &dpop, method.as_str(), &route.upstream.resource)
        .await
        .map_err(|e| unauthorized(gw, route, &e))?;
    let token = auth
        .first()
        .and_then(|a| a.split_once(' '))
        .map(|(_, t)| t.trim().to_owned())
        .unwrap_or_default();
    // A session belongs to the agent that opened it: another token may not ride on it.
    let sessions: Vec<_> = headers.get_all("mcp-session-id").iter().collect();
    if sessions.len() > 1 || sessions.first().is_some_and(|v| v.to_str().is_err()) {
        return Err((
            StatusCode::BAD_REQUEST,
            "one Mcp-Session-Id, in visible ASCII",
        )
            .into_response());
    }
    if let Some(session) = headers.get("mcp-session-id").and_then(|v| v.to_str().ok()) {
        let owner = route
            .sessions
            .read()
            .ok()
            .and_then(|s| s.get(session).map(|(agent, _)| agent.clone()));
        // A session this gateway did not see opened (before a restart, say) is unknown
        // too: the client initializes again (MCP: 404 ends a session).
        if owner.is_none_or(|o| o != claims.client_id) {
            return Err((StatusCode::NOT_FOUND, "no such session").into_response());
        }
    }
    Ok((claims, token))
}

/// Revocation for what no decision covers (lists, lifecycle, the GET stream): asks Surety
/// whether the token is still active (RFC 7662), when `introspect` is on.
async fn still_active(
    gw: &Gateway,
    route: &Route,
    token: &str,
    claims: &AccessTokenClaims,
) -> Result<(), Response> {
    if !gw.config.introspect {
        return Ok(());
    }
    match route.decider.is_active(token, &claims.jti).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(unauthorized(
            gw,
            route,
            &VerifyError::InvalidToken("the token is no longer active".into()),
        )),
        Err(e) => Err(unauthorized(gw, route, &VerifyError::Unavailable(e))),
    }
}

fn rpc_error(id: Option<&Value>, code: i64, message: &str, data: Option<Value>) -> Response {
    axum::Json(jsonrpc::error(id, code, message, data)).into_response()
}

/// The client's request for the upstream: the headers it may see and `body`.
fn upstream_request(
    gw: &Gateway,
    route: &Route,
    method: Method,
    headers: &HeaderMap,
    body: Option<Bytes>,
) -> reqwest::RequestBuilder {
    let mut r = gw.http.request(method, route.upstream.url.clone());
    for name in TO_UPSTREAM.iter().chain(std::iter::once(&PROTOCOL_VERSION)) {
        for v in headers.get_all(*name) {
            r = r.header(*name, v.clone());
        }
    }
    if let Some(b) = body {
        r = r.body(b);
    }
    r
}

/// [`relay`], cut off after `limit`.
fn relay_until(
    upstream: reqwest::Response,
    rewrite: Option<Arc<dyn Fn(Value) -> Value + Send + Sync>>,
    limit: std::time::Duration,
) -> Response {
    use futures_util::StreamExt as _;
    let (parts, body) = relay(upstream, rewrite).into_parts();
    let stream = body
        .into_data_stream()
        .take_until(tokio::time::sleep(limit));
    Response::from_parts(parts, Body::from_stream(stream))
}

/// Relays the upstream's answer as it arrives; `rewrite` may edit JSON-RPC responses
/// (list filtering), event by event on an SSE stream.
fn relay(
    upstream: reqwest::Response,
    rewrite: Option<Arc<dyn Fn(Value) -> Value + Send + Sync>>,
) -> Response {
    let status =
        StatusCode::from_u16(upstream.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut builder = Response::builder().status(status);
    for name in TO_CLIENT {
        for v in upstream.headers().get_all(name) {
            builder = builder.header(name, v.clone());
        }
    }
    let content_type = upstream
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let is_sse = content_type.starts_with("text/event-stream");
    // Only JSON can carry a list a client would read; anything else (an empty DELETE
    // answer, a plain-text 405) passes as it is.
    let rewrite = rewrite.filter(|_| is_sse || content_type.starts_with("application/json"));
    let body = match rewrite {
        None => Body::from_stream(upstream.bytes_stream()),
        Some(f) if is_sse => Body::from_stream(crate::sse::rewrite(upstream.bytes_stream(), f)),
        Some(f) => Body::from_stream(futures_util::stream::once(async move {
            let bytes = upstream.bytes().await?;
            // An answer that cannot be read cannot be filtered: it is not passed on.
            Ok::<Bytes, reqwest::Error>(match serde_json::from_slice::<Value>(&bytes) {
                Ok(v) => Bytes::from(f(v).to_string()),
                Err(_) => Bytes::from(
                    jsonrpc::error(
                        None,
                        jsonrpc::UPSTREAM_UNAVAILABLE,
                        "the MCP server's answer is not JSON",
                        None,
                    )
                    .to_string(),
                ),
            })
        })),
    };
    builder
        .body(body)
        .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
}

async fn stream(State((gw, route)): State<Shared>, method: Method, headers: HeaderMap) -> Response {
    let (claims, token) = match authenticate(&gw, &route, &method, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    if let Err(r) = still_active(&gw, &route, &token, &claims).await {
        return r;
    }
    let scope = claims.scope.split(' ').map(str::to_owned).collect();
    let filter = filter_tools(route.clone(), scope);
    // A stream lives no longer than the token it was opened with.
    let left =
        u64::try_from(claims.exp - time::OffsetDateTime::now_utc().unix_timestamp()).unwrap_or(0);
    let session = headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let ending = method == Method::DELETE;
    match upstream_request(&gw, &route, method, &headers, None)
        .send()
        .await
    {
        Ok(up) => {
            if ending
                && up.status().is_success()
                && let (Some(id), Ok(mut s)) = (session, route.sessions.write())
            {
                s.remove(&id);
            }
            relay_until(up, Some(filter), std::time::Duration::from_secs(left))
        }
        Err(e) => {
            tracing::warn!(error = %e, upstream = %route.upstream.url, "upstream unavailable");
            (StatusCode::BAD_GATEWAY, "the MCP server is unavailable").into_response()
        }
    }
}

/// Sessions one agent may hold open here, and all agents together.
const SESSIONS_PER_AGENT: usize = 64;
const SESSIONS: usize = 100_000;

/// Records a session the upstream opened for `agent`; beyond the caps, the oldest go.
/// A session id is never given to another agent.
fn remember_session(s: &mut HashMap<String, (String, Instant)>, id: &str, agent: &str) {
    if s.contains_key(id) {
        return;
    }
    let oldest = |s: &HashMap<String, (String, Instant)>, of: Option<&str>| {
        s.iter()
            .filter(|(_, (a, _))| of.is_none_or(|of| a == of))
            .min_by_key(|(_, (_, t))| *t)
            .map(|(k, _)| k.clone())
    };
    if s.values().filter(|(a, _)| a == agent).count() >= SESSIONS_PER_AGENT
        && let Some(k) = oldest(s, Some(agent))
    {
        s.remove(&k);
    }
    if s.len() >= SESSIONS
        && let Some(k) = oldest(s, None)
    {
        s.remove(&k);
    }
    s.insert(id.to_owned(), (agent.to_owned(), Instant::now()));
}

/// Keeps only the tools the token's scope names (and learns their declared mappings).
fn filter_tools(
    route: Arc<Route>,
    scope: Vec<String>,
) -> Arc<dyn Fn(Value) -> Value + Send + Sync> {
    // Every list of tools in the answer, whatever id it names (a server may echo `1.0` as
    // `1`): nothing the scope does not name gets through.
    Arc::new(move |mut v: Value| {
        // Resources, templates and prompts are shown when the scope names what reads them
        // (their default mappings decide `resources/read` and `prompts/get`).
        for (list, action) in [
            ("/result/resources", "resources/read"),
            ("/result/resourceTemplates", "resources/read"),
            ("/result/prompts", "prompts/get"),
        ] {
            if !scope.iter().any(|s| s == action)
                && let Some(items) = v.pointer_mut(list).and_then(Value::as_array_mut)
            {
                items.clear();
            }
        }
        if let Some(tools) = v.pointer_mut("/result/tools").and_then(Value::as_array_mut) {
            let mut learned = HashMap::new();
            tools.retain(|t| {
                let Some(name) = t["name"].as_str() else {
                    return false;
                };
                if let Some(m) = t.pointer("/inputSchema/x-authzen-mapping") {
                    learned.insert(name.to_owned(), m.clone());
                }
                let mapping = route.declared(name).or_else(|| learned.get(name).cloned());
                decide::listed_action(name, mapping.as_ref()).is_some_and(|a| scope.contains(&a))
            });
            if let Ok(mut d) = route.declared.write() {
                d.extend(learned);
            }
        }
        v
    })
}

async fn post(State((gw, route)): State<Shared>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    // Who is asking is known from the headers: no body is read for an anonymous caller.
    let (claims, token) = match authenticate(&gw, &route, &Method::POST, &headers).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let read = axum::body::to_bytes(body, gw.config.max_body_bytes);
    let body = match tokio::time::timeout(gw.config.upstream_timeout, read).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return (StatusCode::PAYLOAD_TOO_LARGE, "the body is too large").into_response();
        }
        Err(_) => return (StatusCode::REQUEST_TIMEOUT, "the body took too long").into_response(),
    };
    let (messages, batch) = match jsonrpc::parse(&body) {
        Ok(m) => m,
        Err(e) => {
            let mut r = rpc_error(None, e.code(), &e.to_string(), None);
            *r.status_mut() = StatusCode::BAD_REQUEST;
            return r;
        }
    };
    let claims_json = serde_json::to_value(&claims).unwrap_or(Value::Null);
    let anchor = Anchor {
        subject: &claims.sub,
        agent: &claims.client_id,
    };
    let mut plans = Vec::with_capacity(messages.len());
    for m in &messages {
        let tool = m.params["name"].as_str().map(str::to_owned);
        let declared = (m.method.as_deref() == Some("tools/call"))
            .then(|| tool.as_deref().and_then(|t| route.declared(t)))
            .flatten();
        match mapping::plan(
            m.method.as_deref(),
            &m.params,
            &claims_json,
            &anchor,
            declared.as_ref(),
        ) {
            Ok(p) => plans.push(p),
            Err(e) => {
                decide::audit(&claims, m, "mapping_error", None, None, started);
                tracing::info!(error = %e, "COAZ mapping error");
                let text = if e.0.contains("subject") || e.0.contains("agent") {
                    // The anchoring rule is the client's to know; the mapping's text is not.
                    "COAZ mapping error: the call names another subject or agent than its token"
                } else {
                    "COAZ mapping error: the call does not fit its authorization mapping"
                };
                return rpc_error(m.id.as_ref(), jsonrpc::INVALID_PARAMS, text, None);
            }
        }
    }
    // MCP 2025-06-18 has no batches; only notifications and responses may come together.
    if batch && plans.iter().any(|p| *p != Plan::PassThrough) {
        let mut r = rpc_error(
            None,
            jsonrpc::INVALID_REQUEST,
            "requests must come one per POST",
            None,
        );
        *r.status_mut() = StatusCode::BAD_REQUEST;
        return r;
    }
    if !matches!(plans[0], Plan::Decide(_) | Plan::Deny(_))
        && let Err(r) = still_active(&gw, &route, &token, &claims).await
    {
        return r;
    }
    let message = &messages[0];
    // What is forwarded is what was parsed and decided on, re-serialised: never the
    // client's bytes, which another decoder could read differently.
    let parsed = if batch {
        Value::Array(messages.iter().map(|m| m.raw.clone()).collect())
    } else {
        messages[0].raw.clone()
    };
    let mut forward = Bytes::from(parsed.to_string());
    let mut rewrite = None;
    let mut outcome = "pass_through";
    let mut approval = None;
    match plans.remove(0) {
        Plan::PassThrough => {}
        Plan::Deny(why) => {
            decide::audit(&claims, message, "deny", None, None, started);
            return rpc_error(message.id.as_ref(), jsonrpc::FORBIDDEN, &why, None);
        }
        Plan::List => {
            outcome = "list";
            if matches!(
                message.method.as_deref(),
                Some("tools/list" | "resources/list" | "resources/templates/list" | "prompts/list")
            ) {
                let scope = claims.scope.split(' ').map(str::to_owned).collect();
                rewrite = Some(filter_tools(route.clone(), scope));
            }
        }
        Plan::Decide(evaluations) => {
            match decide::decide(&gw, &route, &token, message, &evaluations).await {
                Verdict::Allow { approved } => {
                    outcome = "allow";
                    approval = approved;
                    // The approval token is for Surety, not for the upstream.
                    if let Some(stripped) = decide::without_approval(message) {
                        forward = Bytes::from(stripped.to_string());
                    }
                }
                Verdict::Refuse {
                    code,
                    message: text,
                    data,
                    outcome: o,
                } => {
                    // What to approve is for the client; the request id is a bearer value, not for logs.
                    decide::audit(&claims, message, o, None, None, started);
                    let mut r = rpc_error(message.id.as_ref(), code, &text, data);
                    // MCP authorization (scope challenge): an action outside the token's
                    // scope is a 403 naming the scope to ask for — the same answer whether or
                    // not such a tool exists. The JSON-RPC error stays in the body.
                    let scope: Vec<&str> = claims.scope.split(' ').collect();
                    // Only the tool the client named: a declared mapping's own action is not
                    // revealed (nor, through it, that the tool exists).
                    let asked = message.params["name"].as_str().unwrap_or_default();
                    let missing: Vec<String> = evaluations
                        .iter()
                        .map(decide::surety_action)
                        .filter(|a| !scope.contains(&a.as_str()) && a == asked)
                        .collect();
                    if o == "deny" && !missing.is_empty() {
                        *r.status_mut() = StatusCode::FORBIDDEN;
                        let challenge = format!(
                            "DPoP algs=\"EdDSA ES256\", error=\"insufficient_scope\", scope=\"{}\", resource_metadata=\"{}\"",
                            missing.join(" ").replace(['"', '\\'], ""),
                            route.metadata_url(&gw.config)
                        );
                        if let Ok(v) = HeaderValue::from_str(&challenge) {
                            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                        }
                    }
                    return r;
                }
            }
        }
    }
    let sent = upstream_request(&gw, &route, Method::POST, &headers, Some(forward));
    let upstream_started = Instant::now();
    let up = match tokio::time::timeout(gw.config.upstream_timeout, sent.send()).await {
        Ok(Ok(up)) => up,
        Ok(Err(_)) | Err(_) => {
            tracing::warn!(upstream = %route.upstream.url, "upstream unavailable");
            decide::audit(
                &claims,
                message,
                "upstream_unavailable",
                None,
                None,
                started,
            );
            let mut r = rpc_error(
                message.id.as_ref(),
                jsonrpc::UPSTREAM_UNAVAILABLE,
                "the MCP server is unavailable",
                None,
            );
            *r.status_mut() = StatusCode::BAD_GATEWAY;
            return r;
        }
    };
    metrics::histogram!("surety_gateway_upstream_seconds")
        .record(upstream_started.elapsed().as_secs_f64());
    if message.method.as_deref() == Some("initialize")
        && let Some(session) = up
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
        && let Ok(mut s) = route.sessions.write()
    {
        remember_session(&mut s, session, &claims.client_id);
    }
    decide::audit(
        &claims,
        message,
        outcome,
        approval.as_ref(),
        Some(up.status().as_u16()),
        started,
    );
    relay(up, rewrite)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_capped_per_agent_and_never_change_owner() {
        let mut s = HashMap::new();
        for i in 0..SESSIONS_PER_AGENT + 3 {
            remember_session(&mut s, &format!("a-{i}"), "agt_a");
        }
        assert_eq!(
            s.len(),
            SESSIONS_PER_AGENT,
            "the oldest of the agent's went"
        );
        assert!(!s.contains_key("a-0") && s.contains_key(&format!("a-{}", SESSIONS_PER_AGENT + 2)));
        // Another agent's sessions are not evicted for it, and an id keeps its owner.
        remember_session(&mut s, "b-0", "agt_b");
        remember_session(&mut s, "b-0", "agt_a");
        assert_eq!(s["b-0"].0, "agt_b");
        for i in 0..SESSIONS_PER_AGENT {
            remember_session(&mut s, &format!("a-x{i}"), "agt_a");
        }
        assert!(s.contains_key("b-0"));
    }
}
