//! `/v1/approvals`: the approver's side of step-up. An approver lists the requests waiting
//! for them, reads one — the agent, its chain, the principal, the exact action and arguments,
//! why policy asked — and answers with a JWS signed by one of their device keys over the
//! request's digest (`surety approve`), so the signature proves what was seen. A stream
//! (Server-Sent Events) tells their devices about new requests as they come.
//!
//! Also here: an agent's CIBA ping endpoint (`/v1/agents/{id}/notification-endpoint`).

use std::convert::Infallible;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use futures_util::stream::{self, StreamExt};
use serde_json::json;
use surety_api::approvals::{
    ANSWER_TYP, Answer, AnswerClaims, ApprovalList, ApprovalQuery, ApprovalView,
    NotificationEndpoint,
};
use surety_core::access::Caller;
use surety_core::approval::{Approval, ApprovalMethod, ApprovalStatus, Verdict};
use surety_core::audit::{EventKind, NewEvent};
use surety_core::id::{AgentId, ApprovalId, PrincipalId};
use surety_core::key::KeyStatus;
use surety_jose::PublicJwk;
use surety_store::ApprovalFilter;
use tokio::sync::broadcast::error::RecvError;

use super::{actor, page, parse};
use crate::app::AppState;
use crate::approvals::{self, Evidence};
use crate::auth::AdminCaller;
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};

type Result<T> = std::result::Result<T, ApiError>;

/// How far a device-key answer's `iat` may be from the server's clock.
const ANSWER_MAX_AGE: time::Duration = time::Duration::minutes(5);
/// Longest answer JWS accepted.
const MAX_ANSWER_LEN: usize = 8 * 1024;

/// Who may read a request: its approvers, its principal, and admins.
fn may_read(caller: &Caller, a: &Approval) -> Result<()> {
    if caller.is_admin() || caller.id == a.principal || a.approvers.contains(&caller.id) {
        Ok(())
    } else {
        // Indistinguishable from an unknown request.
        Err(ApiError::not_found(format!(
            "approval `{}` not found",
            a.id
        )))
    }
}

async fn readable(state: &AppState, caller: &Caller, id: &str) -> Result<Approval> {
    let a = approvals::load(state, parse("id", id)?).await?;
    may_read(caller, &a)?;
    Ok(a)
}

/// The requests waiting for the caller (or, with `status`, in that state).
#[utoipa::path(get, path = "/v1/approvals", tag = "approvals", params(ApprovalQuery), security(("dpop" = [])),
    responses((status = 200, body = ApprovalList), (status = 400, body = surety_api::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Query(q): Query<ApprovalQuery>,
) -> Result<axum::Json<ApprovalList>> {
    let status = match q.status.as_deref() {
        None => Some(ApprovalStatus::Pending),
        Some("all") => None,
        Some(s) => Some(parse("status", s)?),
    };
    let now = state.clock.now();
    // "pending" means answerable now: expired requests are not listed as waiting.
    let filter = ApprovalFilter {
        approver: Some(caller.id),
        client: None,
        status,
        unexpired_at: (status == Some(ApprovalStatus::Pending)).then_some(now),
    };
    let found = state
        .store
        .list_approvals(&filter, &page(q.limit, q.cursor)?)
        .await?;
    let mut items = Vec::with_capacity(found.items.len());
    for a in &found.items {
        items.push(approvals::view(&state, a).await?);
    }
    Ok(axum::Json(ApprovalList {
        items,
        next_cursor: found.next_cursor,
    }))
}

/// One request, as its approver must see it before answering.
#[utoipa::path(get, path = "/v1/approvals/{id}", tag = "approvals", params(("id" = String, Path)), security(("dpop" = [])),
    responses((status = 200, body = ApprovalView), (status = 404, body = surety_api::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<String>,
) -> Result<axum::Json<ApprovalView>> {
    let a = readable(&state, &caller, &id).await?;
    Ok(axum::Json(approvals::view(&state, &a).await?))
}

/// Answers a request with a device-key signature over its digest.
#[utoipa::path(post, path = "/v1/approvals/{id}/answer", tag = "approvals", params(("id" = String, Path)),
    request_body(content = Answer, description = "A compact JWS (`typ: surety-approval+jwt`, `kid` = one of the caller's active device keys) of `{iss, approval_id, digest, decision, reason?, iat}`"),
    security(("dpop" = [])),
    responses(
        (status = 200, description = "The request as it now stands", body = ApprovalView),
        (status = 400, description = "the answer is malformed, badly signed, stale, or signs another digest", body = surety_api::ErrorBody),
        (status = 403, description = "the caller is not an approver of this request", body = surety_api::ErrorBody),
        (status = 404, body = surety_api::ErrorBody),
        (status = 409, description = "the request is no longer pending, or the caller already answered", body = surety_api::ErrorBody),
    ))]
pub async fn answer(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<String>,
    Json(body): Json<Answer>,
) -> Result<axum::Json<ApprovalView>> {
    let a = readable(&state, &caller, &id).await?;
    let (verdict, reason, evidence) = check_answer(&state, &caller, &a, &body.answer).await?;
    let settled = approvals::answer(&state, a.id, caller.id, verdict, reason, evidence).await?;
    Ok(axum::Json(approvals::view(&state, &settled).await?))
}

/// Verifies a device-key answer: a JWS of the right type, signed by an active device key of
/// the caller, naming this request and the digest of its statement as the server holds it,
/// fresh.
async fn check_answer(
    state: &AppState,
    caller: &Caller,
    a: &Approval,
    answer: &str,
) -> Result<(Verdict, Option<String>, Evidence)> {
    let bad = |why: &str| ApiError::invalid_request(format!("the answer is not valid: {why}"));
    let jws = surety_jose::jws::decode(answer, MAX_ANSWER_LEN).map_err(|e| bad(&e.to_string()))?;
    if jws.header.typ.as_deref() != Some(ANSWER_TYP) {
        return Err(bad(&format!("`typ` must be `{ANSWER_TYP}`")));
    }
    let kid = jws
        .header
        .kid
        .clone()
        .ok_or_else(|| bad("`kid` (the device key's thumbprint) is required"))?;
    let key = state
        .store
        .get_key(&kid)
        .await?
        .filter(|k| k.holder == PrincipalId::Human(caller.id) && k.status == KeyStatus::Active)
        .ok_or_else(|| bad("`kid` is not an active device key of the caller"))?;
    let public = PublicJwk::from_json(&key.jwk).map_err(ApiError::internal)?;
    jws.verify(&public)
        .map_err(|_| bad("the signature does not verify"))?;
    let claims: AnswerClaims = jws.claims().map_err(|e| bad(&e.to_string()))?;
    if claims.iss != caller.id.to_string() {
        return Err(bad("`iss` must be the approver"));
    }
    if claims.approval_id != a.id.to_string() {
        return Err(bad("it answers another request"));
    }
    let digest = approvals::digest(a);
    if claims.digest != digest {
        return Err(bad(
            "it signs another statement than this request's (the digest differs)",
        ));
    }
    let now = state.clock.now().unix_timestamp();
    if now.abs_diff(claims.iat) > ANSWER_MAX_AGE.whole_seconds().unsigned_abs() {
        return Err(bad("`iat` is too far from the server's clock"));
    }
    let verdict: Verdict = parse("decision", &claims.decision)?;
    let reason = claims
        .reason
        .clone()
        .map(|r| r.trim().chars().take(500).collect::<String>())
        .filter(|r| !r.is_empty());
    let evidence = Evidence {
        method: ApprovalMethod::DeviceKey,
        proof: json!({"jws": answer, "kid": kid, "digest": digest}),
    };
    Ok((verdict, reason, evidence))
}

/// Server-Sent Events: an `approval` event (`{id, status}`) for every request waiting for
/// the caller when the stream opens, then for every change of one of their requests.
#[utoipa::path(get, path = "/v1/approvals/stream", tag = "approvals", security(("dpop" = [])),
    responses((status = 200, description = "`text/event-stream` of `approval` events")))]
pub async fn stream(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<Sse<impl Stream<Item = std::result::Result<Event, Infallible>>>> {
    Ok(Sse::new(notices(&state, caller, true).await?).keep_alive(KeepAlive::default()))
}

/// The stream of `approval` events for `caller` (also used by the web UI, which renders the
/// waiting requests itself and asks only for what changes: `waiting` false).
pub(crate) async fn notices(
    state: &AppState,
    caller: Caller,
    waiting: bool,
) -> Result<impl Stream<Item = std::result::Result<Event, Infallible>> + use<>> {
    let me = caller.id;
    // Subscribe first, so nothing opened meanwhile is missed.
    let rx = state.notices.subscribe();
    let now = state.clock.now();
    let filter = ApprovalFilter {
        approver: Some(me),
        client: None,
        status: Some(ApprovalStatus::Pending),
        unexpired_at: Some(now),
    };
    let listed = if waiting {
        state
            .store
            .list_approvals(&filter, &page(Some(200), None)?)
            .await?
            .items
    } else {
        Vec::new()
    };
    let event = |id: ApprovalId, status: ApprovalStatus| {
        Ok(Event::default()
            .event("approval")
            .id(id.to_string())
            .data(json!({"id": id.to_string(), "status": status.as_str()}).to_string()))
    };
    let first: Vec<_> = listed
        .iter()
        .map(|a| event(a.id, ApprovalStatus::Pending))
        .collect();
    let live = stream::unfold(rx, move |mut rx| async move {
        loop {
            match rx.recv().await {
                Ok(n) if n.approvers.contains(&me) => return Some((event(n.id, n.status), rx)),
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Ok(stream::iter(first).chain(live))
}

/// Sets (or clears) an agent's CIBA ping endpoint: the agent's owner or an admin.
#[utoipa::path(put, path = "/v1/agents/{id}/notification-endpoint", tag = "agents", params(("id" = String, Path)),
    request_body = NotificationEndpoint, security(("dpop" = [])),
    responses((status = 200, body = NotificationEndpoint), (status = 400, body = surety_api::ErrorBody), (status = 403, body = surety_api::ErrorBody), (status = 404, body = surety_api::ErrorBody)))]
pub async fn set_notification_endpoint(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<String>,
    Json(body): Json<NotificationEndpoint>,
) -> Result<axum::Json<NotificationEndpoint>> {
    let id: AgentId = parse("id", &id)?;
    let agent = state
        .store
        .get_agent(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("agent `{id}` not found")))?;
    if !caller.is_admin() && caller.id != agent.owner {
        return Err(ApiError::forbidden(
            "only the agent's owner or an admin may set its notification endpoint",
        ));
    }
    if let Some(url) = &body.url {
        let parsed =
            url::Url::parse(url).map_err(|e| ApiError::invalid_request(format!("`url`: {e}")))?;
        match parsed.scheme() {
            "https" => {}
            "http" if state.config.dev => {}
            "http" => {
                return Err(ApiError::invalid_request(
                    "`url` must be https (plain http only when the server runs in `dev` mode)",
                ));
            }
            _ => return Err(ApiError::invalid_request("`url` must be an https URL")),
        }
        if !state.config.dev && crate::egress::internal_host(&parsed) {
            return Err(ApiError::invalid_request(
                "`url` must not name a loopback, private or link-local address (only in `dev` mode)",
            ));
        }
        if parsed.fragment().is_some() || url.len() > 2048 {
            return Err(ApiError::invalid_request(
                "`url` must have no fragment and be at most 2048 bytes",
            ));
        }
    }
    let now = state.clock.now();
    let event = NewEvent::new(
        EventKind::AgentNotificationEndpointSet,
        actor(&caller),
        id,
        now,
    )
    .agent(id)
    .human(agent.owner)
    .details(json!({"url": body.url}));
    state
        .store
        .set_notification_endpoint(id, body.url.as_deref(), &[event])
        .await?;
    Ok(axum::Json(body))
}

#[cfg(test)]
mod tests {
    use crate::egress::internal_host;

    #[test]
    fn internal_hosts_are_recognised_by_literal_address_or_localhost() {
        for internal in [
            "https://localhost/cb",
            "https://a.localhost/cb",
            "https://127.0.0.1/cb",
            "https://10.1.2.3/cb",
            "https://172.16.0.1/cb",
            "https://192.168.1.1/cb",
            "https://169.254.169.254/latest",
            "https://100.64.0.1/cb",
            "https://0.0.0.0/cb",
            "https://[::1]/cb",
            "https://[fd00::1]/cb",
            "https://[fe80::1]/cb",
            "https://[::ffff:10.0.0.1]/cb",
            "https://0.1.2.3/cb",
            "https://224.0.0.1/cb",
            "https://198.18.0.1/cb",
            "https://[64:ff9b::a00:1]/cb",
            "https://[2002:a00:1::]/cb",
        ] {
            assert!(
                internal_host(&url::Url::parse(internal).unwrap_or_else(|e| unreachable!("{e}"))),
                "{internal}"
            );
        }
        for public in [
            "https://agent.example/cb",
            "https://93.184.215.14/cb",
            "https://[2001:db8::1]/cb",
        ] {
            assert!(
                !internal_host(&url::Url::parse(public).unwrap_or_else(|e| unreachable!("{e}"))),
                "{public}"
            );
        }
    }
}
