//! The security event stream: an OpenID Shared Signals Framework 1.0 transmitter.
//!
//! - `GET /.well-known/ssf-configuration`: transmitter metadata (SSF §7.1).
//! - `/ssf/streams` (`POST` create, `GET` read, `DELETE`), `/ssf/status` (`GET`, `POST`):
//!   stream management (§8.1) by receivers — registered resource servers, with their
//!   DPoP-bound `decisions` token (`private_key_jwt` at the token endpoint). A receiver sees
//!   and manages its own streams only (`404` otherwise).
//! - Delivery of signed Security Event Tokens (RFC 8417): pushed (RFC 8935) by a worker on
//!   every node, or polled (RFC 8936) at `POST /ssf/poll/{stream_id}`.
//!
//! Events are the audit log's, read from each stream's cursor (a leaf index of the
//! tamper-evident log): what [`surety_core::signals::signal`] turns into a signal, of the
//! types the stream asked for, concerning tokens the receiver could hold — a grant, agent
//! or human with a grant naming the receiver's audience. A SET's `jti` is the stream and the
//! leaf, so a redelivery carries the same `jti`. The cursor moves only past what the
//! receiver acknowledged (a push answered `202`, a poll's `ack`): delivery is at least once,
//! and a receiver that was down catches up from where it left.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use surety_api::signals::{
    DELIVERY_POLL, DELIVERY_PUSH, Delivery, PollRequest, PollResponse, SET_MEDIA_TYPE, SET_TYP,
    StreamConfig, StreamQuery, StreamStatus,
};
use surety_core::audit::{Actor, EventKind, NewEvent};
use surety_core::signals::{Concerns, EVENT_TYPES, signal};
use surety_store::{GrantFilter, ResourceServer, StreamRecord};

use crate::app::{AppState, JWKS_PATH};
use crate::auth::ResourceServerCaller;
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};

type Result<T> = std::result::Result<T, ApiError>;

/// Path of the stream configuration endpoint.
pub const STREAMS_PATH: &str = "/ssf/streams";
/// Path of the stream status endpoint.
pub const STATUS_PATH: &str = "/ssf/status";
/// Most audit leaves read for one delivery.
const SCAN: u64 = 1000;
/// Most SETs in one poll answer.
const MAX_POLL: usize = 100;
/// Most SETs pushed in one round of a stream.
const PUSH_BATCH: usize = 50;
/// Longest one stream's push round may take.
const PUSH_ROUND: Duration = Duration::from_secs(10);
/// Most streams per receiver.
const MAX_STREAMS: usize = 16;
/// A stream not polled or delivered to for this long may be let go for a new one.
const IDLE: time::Duration = time::Duration::minutes(10);

/// Transmitter configuration metadata.
#[utoipa::path(get, path = "/.well-known/ssf-configuration", tag = "signals",
    responses((status = 200, description = "OpenID SSF 1.0 transmitter configuration")))]
pub async fn configuration(State(state): State<AppState>) -> axum::Json<Value> {
    axum::Json(json!({
        "spec_version": "1_0",
        "issuer": state.issuer.as_ref(),
        "jwks_uri": state.url(JWKS_PATH),
        "delivery_methods_supported": [DELIVERY_PUSH, DELIVERY_POLL],
        "configuration_endpoint": state.url(STREAMS_PATH),
        "status_endpoint": state.url(STATUS_PATH),
        "authorization_schemes": [{"spec_urn": "urn:ietf:rfc:6749"}],
        "default_subjects": "ALL",
    }))
}

fn view(state: &AppState, s: &StreamRecord) -> StreamConfig {
    let endpoint_url = match s.method.as_str() {
        "poll" => Some(state.url(&format!("/ssf/poll/{}", s.id))),
        _ => s.endpoint_url.clone(),
    };
    StreamConfig {
        stream_id: Some(s.id.clone()),
        iss: Some(state.issuer.to_string()),
        aud: Some(s.audience.clone()),
        events_supported: EVENT_TYPES.iter().map(|e| (*e).to_owned()).collect(),
        events_requested: s.events.clone(),
        events_delivered: s.events.clone(),
        delivery: Some(Delivery {
            method: if s.method == "poll" {
                DELIVERY_POLL
            } else {
                DELIVERY_PUSH
            }
            .into(),
            endpoint_url,
        }),
        description: s.description.clone(),
    }
}

/// The first audit leaf recorded at or after `t` (the log's size if none), by bisection:
/// leaves are in commit order, which follows time.
async fn leaf_since(state: &AppState, t: time::OffsetDateTime) -> Result<u64> {
    let (mut lo, mut hi) = (0, state.store.tree_size().await?);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let at = state
            .store
            .leaves(mid, mid + 1)
            .await?
            .first()
            .map(|(_, e)| e.time);
        match at {
            Some(time) if time < t => lo = mid + 1,
            _ => hi = mid,
        }
    }
    Ok(lo)
}

/// A push endpoint: an absolute https URL (http only in development mode) without
/// credentials or fragment. Unlike a federation peer's, it may be on a private network: the
/// receiver is a resource server an admin registered, typically inside the deployment.
fn push_endpoint(state: &AppState, raw: &str) -> Result<String> {
    let bad = |why: &str| ApiError::invalid_request(format!("`delivery.endpoint_url`: {why}"));
    let url = url::Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
    match url.scheme() {
        "https" => {}
        "http" if state.config.dev => {}
        _ => return Err(bad("must be an https URL (http only in development mode)")),
    }
    if url.host().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
        || url.fragment().is_some()
    {
        return Err(bad("must name a host, without credentials or fragment"));
    }
    Ok(url.to_string())
}

/// The receiver's stream `id` (others' are unknown to it).
async fn own_stream(state: &AppState, rs: &ResourceServer, id: &str) -> Result<StreamRecord> {
    state
        .store
        .get_stream(id)
        .await?
        .filter(|s| s.receiver == rs.id)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no stream `{}`",
                id.chars().take(64).collect::<String>()
            ))
        })
}

/// Creates a stream (SSF §8.1.1.1).
#[utoipa::path(post, path = "/ssf/streams", tag = "signals", request_body = StreamConfig, security(("dpop" = [])),
    responses(
        (status = 201, body = StreamConfig),
        (status = 400, description = "an unknown delivery method or event type, a push endpoint that is not https (outside `dev`)", body = surety_api::ErrorBody),
        (status = 401, body = surety_api::ErrorBody),
        (status = 409, description = "too many streams for this receiver", body = surety_api::ErrorBody),
    ))]
pub async fn create_stream(
    State(state): State<AppState>,
    ResourceServerCaller(rs): ResourceServerCaller,
    Json(body): Json<StreamConfig>,
) -> Result<(StatusCode, axum::Json<StreamConfig>)> {
    let now = state.clock.now();
    let delivery = body.delivery.unwrap_or(Delivery {
        method: DELIVERY_POLL.into(),
        endpoint_url: None,
    });
    let (method, endpoint_url) = match delivery.method.as_str() {
        DELIVERY_PUSH => {
            let url = delivery.endpoint_url.as_deref().ok_or_else(|| {
                ApiError::invalid_request("push delivery needs `delivery.endpoint_url`")
            })?;
            ("push", Some(push_endpoint(&state, url)?))
        }
        DELIVERY_POLL => ("poll", None),
        other => {
            return Err(ApiError::invalid_request(format!(
                "`delivery.method` must be `{DELIVERY_PUSH}` or `{DELIVERY_POLL}`, not `{}`",
                other.chars().take(100).collect::<String>()
            )));
        }
    };
    // SSF §8.1.1: event types this transmitter does not know are ignored; none asked, all.
    let mut events: Vec<String> = Vec::new();
    for e in &body.events_requested {
        if EVENT_TYPES.contains(&e.as_str()) && !events.contains(e) {
            events.push(e.clone());
        }
    }
    if body.events_requested.is_empty() {
        events = EVENT_TYPES.iter().map(|e| (*e).to_owned()).collect();
    }
    let description = body
        .description
        .as_deref()
        .map(|d| surety_core::validate::free_text("description", d, 500))
        .transpose()
        .map_err(|e| ApiError::invalid_request(e.to_string()))?;
    // Streams left behind by receivers that restarted are let go once idle.
    let mine = state.store.list_streams(Some(rs.id)).await?;
    if mine.len() >= MAX_STREAMS {
        for idle in mine.iter().filter(|s| now - s.updated_at > IDLE) {
            let event = NewEvent::new(EventKind::SignalStreamDeleted, Actor::System, &idle.id, now)
                .details(json!({"receiver": rs.id, "reason": "idle"}));
            state.store.delete_stream(&idle.id, &[event]).await?;
        }
        if state.store.list_streams(Some(rs.id)).await?.len() >= MAX_STREAMS {
            return Err(ApiError::conflict(format!(
                "a receiver has at most {MAX_STREAMS} streams (idle ones go after {} minutes)",
                IDLE.whole_minutes()
            )));
        }
    }
    let stream = StreamRecord {
        id: surety_jose::random_b64(16).map_err(ApiError::internal)?,
        receiver: rs.id,
        audience: rs.audience.clone(),
        method: method.into(),
        endpoint_url,
        events,
        description,
        status: "enabled".into(),
        reason: None,
        // Events from one token lifetime ago: a receiver (re)starting learns what was
        // withdrawn among the tokens that may still be presented to it.
        cursor: leaf_since(&state, now - crate::auth::to_time(state.config.token_ttl)).await?,
        created_at: now,
        updated_at: now,
    };
    let event = NewEvent::new(EventKind::SignalStreamCreated, Actor::System, &stream.id, now)
        .details(json!({"receiver": rs.id, "audience": rs.audience, "method": method, "events": stream.events}));
    state.store.create_stream(&stream, &[event]).await?;
    Ok((StatusCode::CREATED, axum::Json(view(&state, &stream))))
}

/// Reads a stream's configuration, or every stream of the receiver (SSF §8.1.1.2).
#[utoipa::path(get, path = "/ssf/streams", tag = "signals", params(StreamQuery), security(("dpop" = [])),
    responses((status = 200, description = "one configuration, or a list of them"), (status = 404, body = surety_api::ErrorBody)))]
pub async fn read_stream(
    State(state): State<AppState>,
    ResourceServerCaller(rs): ResourceServerCaller,
    Query(q): Query<StreamQuery>,
) -> Result<axum::Json<Value>> {
    let answer = match q.stream_id {
        Some(id) => json!(view(&state, &own_stream(&state, &rs, &id).await?)),
        None => {
            let streams = state.store.list_streams(Some(rs.id)).await?;
            json!(streams.iter().map(|s| view(&state, s)).collect::<Vec<_>>())
        }
    };
    Ok(axum::Json(answer))
}

/// Deletes a stream (SSF §8.1.1.5).
#[utoipa::path(delete, path = "/ssf/streams", tag = "signals", params(StreamQuery), security(("dpop" = [])),
    responses((status = 204), (status = 404, body = surety_api::ErrorBody)))]
pub async fn delete_stream(
    State(state): State<AppState>,
    ResourceServerCaller(rs): ResourceServerCaller,
    Query(q): Query<StreamQuery>,
) -> Result<StatusCode> {
    let id = q
        .stream_id
        .ok_or_else(|| ApiError::invalid_request("`stream_id` is required"))?;
    let stream = own_stream(&state, &rs, &id).await?;
    let event = NewEvent::new(
        EventKind::SignalStreamDeleted,
        Actor::System,
        &stream.id,
        state.clock.now(),
    )
    .details(json!({"receiver": rs.id}));
    state.store.delete_stream(&stream.id, &[event]).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A stream's status (SSF §8.1.2.1).
#[utoipa::path(get, path = "/ssf/status", tag = "signals", params(StreamQuery), security(("dpop" = [])),
    responses((status = 200, body = StreamStatus), (status = 404, body = surety_api::ErrorBody)))]
pub async fn read_status(
    State(state): State<AppState>,
    ResourceServerCaller(rs): ResourceServerCaller,
    Query(q): Query<StreamQuery>,
) -> Result<axum::Json<StreamStatus>> {
    let id = q
        .stream_id
        .ok_or_else(|| ApiError::invalid_request("`stream_id` is required"))?;
    let s = own_stream(&state, &rs, &id).await?;
    Ok(axum::Json(StreamStatus {
        stream_id: s.id,
        status: s.status,
        reason: s.reason,
    }))
}

/// Enables, pauses or disables a stream (SSF §8.1.2.2). A paused stream keeps its events
/// for later; a disabled one skips what happens while it is disabled.
#[utoipa::path(post, path = "/ssf/status", tag = "signals", request_body = StreamStatus, security(("dpop" = [])),
    responses((status = 200, body = StreamStatus), (status = 400, body = surety_api::ErrorBody), (status = 404, body = surety_api::ErrorBody)))]
pub async fn update_status(
    State(state): State<AppState>,
    ResourceServerCaller(rs): ResourceServerCaller,
    Json(body): Json<StreamStatus>,
) -> Result<axum::Json<StreamStatus>> {
    let now = state.clock.now();
    if !matches!(body.status.as_str(), "enabled" | "paused" | "disabled") {
        return Err(ApiError::invalid_request(
            "`status` must be `enabled`, `paused` or `disabled`",
        ));
    }
    let s = own_stream(&state, &rs, &body.stream_id).await?;
    let reason = body
        .reason
        .as_deref()
        .map(|r| surety_core::validate::free_text("reason", r, 500))
        .transpose()
        .map_err(|e| ApiError::invalid_request(e.to_string()))?;
    // Re-enabling a disabled stream starts from now: what happened meanwhile is skipped.
    if s.status == "disabled" && body.status == "enabled" {
        let size = state.store.tree_size().await?;
        state
            .store
            .advance_stream(&s.id, s.cursor, size, now)
            .await?;
    }
    state
        .store
        .set_stream_status(&s.id, &body.status, reason.as_deref(), now)
        .await?;
    Ok(axum::Json(StreamStatus {
        stream_id: s.id,
        status: body.status,
        reason,
    }))
}

/// A SET waiting for a stream, with the leaf it comes from.
struct Pending {
    leaf: u64,
    jti: String,
    set: String,
}

/// Whether the receiver of `audience` could hold tokens `concerns` is about.
async fn visible(
    state: &AppState,
    audience: &str,
    concerns: Concerns,
    seen: &mut HashMap<String, bool>,
) -> Result<bool> {
    let key = format!("{concerns:?}");
    if let Some(v) = seen.get(&key) {
        return Ok(*v);
    }
    let names = |resources: &[String]| resources.iter().any(|r| r == audience);
    let answer = match concerns {
        Concerns::Grant(g) => state
            .store
            .get_grant(g)
            .await?
            .is_some_and(|g| names(&g.resources)),
        Concerns::Agent(_) | Concerns::Human(_) => {
            let filter = GrantFilter {
                agent: match concerns {
                    Concerns::Agent(a) => Some(a),
                    _ => None,
                },
                principal: match concerns {
                    Concerns::Human(h) => Some(h),
                    _ => None,
                },
                status: None,
                visible_to: None,
            };
            // Every grant, page by page. An agent with no grant of its own acts only as a
            // sub-agent, under grants naming it nowhere: its events go to every receiver
            // (failing open for a revocation would be worse than showing an agent id).
            let mut after = None;
            let mut any = false;
            let mut names_it = false;
            loop {
                let page = surety_core::page::PageRequest { limit: 1000, after };
                let grants = state.store.list_grants(&filter, &page).await?;
                any |= !grants.items.is_empty();
                if grants.items.iter().any(|g| names(&g.resources)) {
                    names_it = true;
                    break;
                }
                match grants.next_cursor {
                    Some(c) => after = Some(c),
                    None => break,
                }
            }
            names_it || (!any && matches!(concerns, Concerns::Agent(_)))
        }
    };
    seen.insert(key, answer);
    Ok(answer)
}

/// The SETs waiting for `stream` from its cursor (at most `max`), and the leaf up to which
/// the log was read. Unsigned (`set` empty) when only their positions are wanted.
async fn pending(
    state: &AppState,
    stream: &StreamRecord,
    max: usize,
    sign: bool,
) -> Result<(Vec<Pending>, u64)> {
    let size = state.store.tree_size().await?;
    let end = size.min(stream.cursor.saturating_add(SCAN));
    if end <= stream.cursor {
        return Ok((Vec::new(), stream.cursor));
    }
    let leaves = state.store.leaves(stream.cursor, end).await?;
    let signer = state
        .keys
        .signer(state.store.as_ref(), state.clock.now())
        .await
        .map_err(ApiError::internal)?;
    let mut seen = HashMap::new();
    let mut out = Vec::new();
    let mut read_to = end;
    for (leaf, event) in leaves {
        let Some(s) = signal(&event) else { continue };
        if !stream.events.iter().any(|e| e == s.event_type)
            || !visible(state, &stream.audience, s.concerns, &mut seen).await?
        {
            continue;
        }
        if out.len() == max {
            read_to = leaf;
            break;
        }
        let jti = format!("{}.{leaf}", stream.id);
        if !sign {
            out.push(Pending {
                leaf,
                jti,
                set: String::new(),
            });
            continue;
        }
        let claims = json!({
            "iss": state.issuer.as_ref(),
            "iat": state.clock.now().unix_timestamp(),
            "jti": jti,
            "aud": stream.audience,
            "txn": event.id.to_string(),
            "sub_id": s.subject,
            "events": { s.event_type: s.body },
        });
        let mut header = Map::new();
        header.insert("typ".into(), json!(SET_TYP));
        header.insert("kid".into(), json!(signer.kid));
        let set =
            surety_jose::jws::sign(header, &claims, &signer.key).map_err(ApiError::internal)?;
        out.push(Pending { leaf, jti, set });
    }
    Ok((out, read_to))
}

/// Where the cursor may move once `acked` are acknowledged: past every waiting SET acked in
/// order, up to the first one that is not; past everything read when all are.
fn acknowledged_to(cursor: u64, waiting: &[Pending], read_to: u64, acked: &HashSet<&str>) -> u64 {
    let mut to = cursor;
    for p in waiting {
        if !acked.contains(p.jti.as_str()) {
            return p.leaf.max(to);
        }
        to = p.leaf + 1;
    }
    read_to.max(to)
}

/// Poll delivery (RFC 8936): acknowledges, then answers what waits.
#[utoipa::path(post, path = "/ssf/poll/{stream_id}", tag = "signals", params(("stream_id" = String, Path)), request_body = PollRequest, security(("dpop" = [])),
    responses((status = 200, body = PollResponse), (status = 400, body = surety_api::ErrorBody), (status = 404, body = surety_api::ErrorBody)))]
pub async fn poll(
    State(state): State<AppState>,
    ResourceServerCaller(rs): ResourceServerCaller,
    Path(id): Path<String>,
    Json(body): Json<PollRequest>,
) -> Result<axum::Json<PollResponse>> {
    let now = state.clock.now();
    let mut stream = own_stream(&state, &rs, &id).await?;
    if stream.method != "poll" {
        return Err(ApiError::invalid_request(
            "this stream is delivered by push",
        ));
    }
    // A stream polled is in use (see `IDLE`).
    if now - stream.updated_at > time::Duration::minutes(1) {
        state
            .store
            .set_stream_status(&stream.id, &stream.status, stream.reason.as_deref(), now)
            .await?;
    }
    let max = body
        .max_events
        .map_or(MAX_POLL, |m| (m as usize).min(MAX_POLL));
    let acked: HashSet<&str> = body
        .ack
        .iter()
        .map(String::as_str)
        .chain(body.set_errs.keys().map(String::as_str))
        .collect();
    // Acknowledge first (SETs past the first unacknowledged one stay for the next poll),
    // paused or not.
    let (waiting, read_to) = pending(&state, &stream, MAX_POLL, false).await?;
    let to = acknowledged_to(stream.cursor, &waiting, read_to, &acked);
    if to != stream.cursor
        && state
            .store
            .advance_stream(&stream.id, stream.cursor, to, now)
            .await?
    {
        stream.cursor = to;
    }
    if stream.status != "enabled" {
        return Ok(axum::Json(PollResponse::default()));
    }
    let (waiting, read_to) = pending(&state, &stream, max + 1, true).await?;
    let more = waiting.len() > max || read_to < state.store.tree_size().await?;
    let sets = waiting
        .into_iter()
        .take(max)
        .map(|p| (p.jti, Value::String(p.set)))
        .collect();
    Ok(axum::Json(PollResponse {
        sets,
        more_available: more,
    }))
}

/// Pushes what waits for one stream (RFC 8935), in order, moving its cursor past each SET
/// the receiver accepted; stops at the first refusal. Returns whether it delivered all.
async fn push_once(
    state: &AppState,
    client: &reqwest::Client,
    stream: &StreamRecord,
) -> Result<bool> {
    let Some(url) = stream.endpoint_url.as_deref() else {
        return Ok(true);
    };
    let (waiting, read_to) = pending(state, stream, PUSH_BATCH, true).await?;
    let mut cursor = stream.cursor;
    for p in waiting {
        let sent = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, SET_MEDIA_TYPE)
            .header(reqwest::header::ACCEPT, "application/json")
            .body(p.set)
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                let now = state.clock.now();
                if !state
                    .store
                    .advance_stream(&stream.id, cursor, p.leaf + 1, now)
                    .await?
                {
                    // Another node delivered it; it goes on from where that node left.
                    return Ok(false);
                }
                cursor = p.leaf + 1;
                metrics::counter!("surety_signals_pushed_total").increment(1);
            }
            // RFC 8935 §2.3: a 400 says the receiver will never take this SET (its `err`
            // names why); sending it again would stall the stream for good. It counts as
            // delivered, with the refusal logged.
            Ok(r) if r.status() == reqwest::StatusCode::BAD_REQUEST => {
                let body = r.text().await.unwrap_or_default();
                tracing::warn!(stream = %stream.id, jti = %p.jti, answer = %body.chars().take(300).collect::<String>(), "signals: the receiver rejected a SET");
                let now = state.clock.now();
                if !state
                    .store
                    .advance_stream(&stream.id, cursor, p.leaf + 1, now)
                    .await?
                {
                    return Ok(false);
                }
                cursor = p.leaf + 1;
            }
            Ok(r) => {
                tracing::warn!(stream = %stream.id, status = %r.status(), "signals: the receiver refused a SET");
                return Ok(false);
            }
            Err(e) => {
                tracing::debug!(stream = %stream.id, error = %e, "signals: the receiver is unreachable");
                return Ok(false);
            }
        }
    }
    if read_to > cursor {
        state
            .store
            .advance_stream(&stream.id, cursor, read_to, state.clock.now())
            .await?;
    }
    Ok(true)
}

/// Pushes every enabled push stream, forever; a receiver that fails is retried with
/// exponential backoff (0.2 s doubling to 30 s), and catches up from its cursor.
pub(crate) fn spawn_pusher(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = match reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_secs(2))
            .redirect(reqwest::redirect::Policy::none())
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "signals: no HTTP client; push delivery is off");
                return;
            }
        };
        let mut backoff: HashMap<String, (Duration, tokio::time::Instant)> = HashMap::new();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let streams = match state.store.list_streams(None).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "signals: cannot read the streams");
                    continue;
                }
            };
            let now = tokio::time::Instant::now();
            let due: Vec<&StreamRecord> = streams
                .iter()
                .filter(|s| s.method == "push" && s.status == "enabled")
                .filter(|s| backoff.get(&s.id).is_none_or(|(_, until)| now >= *until))
                .collect();
            // Streams side by side, each round bounded: a slow receiver delays only itself.
            let rounds = due.iter().map(|s| async {
                let done = tokio::time::timeout(PUSH_ROUND, push_once(&state, &client, s)).await;
                (s.id.clone(), matches!(done, Ok(Ok(true))))
            });
            for (id, delivered) in futures_util::future::join_all(rounds).await {
                if delivered {
                    backoff.remove(&id);
                } else {
                    let wait = backoff
                        .get(&id)
                        .map_or(Duration::from_millis(200), |(w, _)| {
                            (*w * 2).min(Duration::from_secs(30))
                        });
                    backoff.insert(id, (wait, tokio::time::Instant::now() + wait));
                }
            }
        }
    })
}
