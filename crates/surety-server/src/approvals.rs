//! Step-up approvals, server side: opening a request (from CIBA's `bc-authorize` or from a
//! step-up decision), counting approvers' signed answers (passkey or device key), telling
//! everyone who waits (the approvers' SSE streams, the optional webhook, the agent's CIBA
//! ping endpoint), and the views approvers read.

use std::time::Duration;

use serde_json::{Value, json};
use surety_api::approvals::{AGENT_NOTICE_TYP, ApprovalView, VoteView, WEBHOOK_TYP};
use surety_core::agent::Agent;
use surety_core::approval::{
    ActionDetails, Approval, ApprovalMethod, ApprovalStatus, Delivery, Tally, Verdict, Vote, quorum,
};
use surety_core::audit::{Actor, EventKind, NewEvent};
use surety_core::grant::Grant;
use surety_core::human::HumanStatus;
use surety_core::id::{AgentId, ApprovalId, HumanId, ResourceServerId};
use surety_jose::sha256_b64;
use surety_store::ApprovalTransition;
use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::app::AppState;
use crate::error::ApiError;

type Result<T> = std::result::Result<T, ApiError>;

/// A change worth telling approvers' devices about.
#[derive(Debug, Clone)]
pub(crate) struct Notice {
    /// Which request.
    pub id: ApprovalId,
    /// Who may answer it.
    pub approvers: Vec<HumanId>,
    /// Its state now.
    pub status: ApprovalStatus,
}

/// Fan-out of [`Notice`]s to the approvers' open streams on this node.
#[derive(Debug)]
pub(crate) struct Notices(broadcast::Sender<Notice>);

impl Notices {
    pub(crate) fn new() -> Self {
        Self(broadcast::channel(1024).0)
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.0.subscribe()
    }

    fn send(&self, a: &Approval, status: ApprovalStatus) {
        // Nobody listening is fine.
        let _ = self.0.send(Notice {
            id: a.id,
            approvers: a.approvers.clone(),
            status,
        });
    }
}

/// The SHA-256 (base64url) of a request's statement: what every answer commits to.
pub(crate) fn digest(a: &Approval) -> String {
    sha256_b64(a.statement_text().as_bytes())
}

/// What a new request is for.
pub(crate) struct NewRequest<'a> {
    pub client: &'a Agent,
    pub chain: Vec<AgentId>,
    pub grant: &'a Grant,
    pub details: ActionDetails,
    pub binding_message: String,
    pub reasons: Vec<String>,
    pub requested_by: Option<ResourceServerId>,
    pub delivery: Delivery,
    pub expires_in: time::Duration,
}

/// Opens a request; returns it with its `auth_req_id` (handed out once, stored as a hash).
pub(crate) async fn open(state: &AppState, r: NewRequest<'_>) -> Result<(Approval, String)> {
    let now = state.clock.now();
    let (approvers, required) = quorum(r.grant.principal, &r.grant.constraints)?;
    let auth_req_id = surety_jose::random_b64(32).map_err(ApiError::internal)?;
    let delivery = match r.delivery {
        Delivery::Ping {
            endpoint, token, ..
        } => Delivery::Ping {
            endpoint,
            token,
            auth_req_id: auth_req_id.clone(),
        },
        Delivery::Poll => Delivery::Poll,
    };
    let approval = Approval {
        id: ApprovalId::new(now),
        auth_req_hash: sha256_b64(auth_req_id.as_bytes()),
        client: r.client.id,
        chain: r.chain,
        principal: r.grant.principal,
        grant: r.grant.id,
        details: ActionDetails {
            grant: Some(r.grant.id),
            ..r.details
        },
        binding_message: r.binding_message,
        reasons: r.reasons,
        approvers,
        required,
        status: ApprovalStatus::Pending,
        requested_by: r.requested_by,
        delivery,
        interval: u32::try_from(state.config.ciba_interval.as_secs())
            .unwrap_or(5)
            .max(1),
        last_polled_at: None,
        created_at: now,
        expires_at: now + r.expires_in,
        updated_at: now,
        token_jti: None,
    };
    let event = NewEvent::new(EventKind::ApprovalRequested, Actor::Agent(approval.client), approval.id, now)
        .agent(approval.client)
        .human(approval.principal)
        .details(json!({
            "grant_id": approval.grant.to_string(),
            "chain": approval.chain.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "authorization_details": approval.details.to_authorization_details(approval.grant),
            "binding_message": approval.binding_message,
            "reasons": approval.reasons,
            "approvers": approval.approvers.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "required": approval.required,
            "expires_at": approval.expires_at.unix_timestamp(),
            "digest": digest(&approval),
            "requested_by": approval.requested_by.map(|rs| rs.to_string()),
            "delivery": match approval.delivery { Delivery::Poll => "poll", Delivery::Ping { .. } => "ping" },
        }));
    // An agent cannot flood its humans' devices (`approval_max_waiting`, counted in the
    // same transaction as the insert).
    let most = state.config.approval_max_waiting;
    match state.store.create_approval(&approval, most, &[event]).await {
        Ok(()) => {}
        Err(surety_store::StoreError::Conflict(why)) => {
            return Err(ApiError::ciba_forbidden("access_denied", why));
        }
        Err(e) => return Err(e.into()),
    }
    metrics::counter!("surety_approvals_requested_total").increment(1);
    state.notices.send(&approval, ApprovalStatus::Pending);
    webhook(state, &approval);
    Ok((approval, auth_req_id))
}

/// Evidence of presence, checked by the caller, to record with an answer.
pub(crate) struct Evidence {
    pub method: ApprovalMethod,
    pub proof: serde_json::Value,
}

/// Records `approver`'s answer to `id`, whose statement digest the evidence was checked
/// against, and settles the request if the quorum is reached (or can no longer be).
pub(crate) async fn answer(
    state: &AppState,
    id: ApprovalId,
    approver: HumanId,
    verdict: Verdict,
    reason: Option<String>,
    evidence: Evidence,
) -> Result<Approval> {
    let now = state.clock.now();
    let approval = load(state, id).await?;
    let votes = state.store.approval_votes(id).await?;
    approval.may_vote(approver, &votes, now)?;
    // An approver who left cannot approve.
    let standing = state.store.get_human(approver).await?;
    if standing.is_none_or(|h| h.status != HumanStatus::Active) {
        return Err(ApiError::forbidden(format!("`{approver}` is not active")));
    }
    let vote = Vote {
        approval: id,
        approver,
        verdict,
        method: evidence.method,
        reason,
        evidence: evidence.proof,
        at: now,
    };
    let outcome = |a: &Approval, votes: &[Vote]| {
        let cast = NewEvent::new(EventKind::ApprovalVoted, Actor::Human(approver), a.id, now)
            .agent(a.client)
            .human(approver)
            .details(json!({
                "decision": verdict.as_str(),
                "method": vote.method.as_str(),
                "reason": vote.reason,
                "digest": digest(a),
                "evidence": vote.evidence,
            }));
        let (to, kind) = match a.tally(votes) {
            Tally::Pending => return (None, vec![cast]),
            Tally::Approved => (ApprovalStatus::Approved, EventKind::ApprovalApproved),
            Tally::Denied => (ApprovalStatus::Denied, EventKind::ApprovalDenied),
        };
        let settled = NewEvent::new(kind, Actor::Human(approver), a.id, now)
            .agent(a.client)
            .human(a.principal)
            .details(json!({
                "votes": votes.iter().map(|v| json!({"approver": v.approver.to_string(), "decision": v.verdict.as_str(), "method": v.method.as_str()})).collect::<Vec<_>>(),
                "required": a.required,
                "decided_in_ms": (now - a.created_at).whole_milliseconds(),
            }));
        (Some(to), vec![cast, settled])
    };
    let settled = match state.store.vote(&vote, &outcome).await {
        Ok(a) => a,
        Err(surety_store::StoreError::Stale) => {
            return Err(ApiError::conflict("the request is no longer pending"));
        }
        Err(e) => return Err(e.into()),
    };
    metrics::counter!("surety_approval_answers_total", "decision" => verdict.as_str(), "method" => vote.method.as_str()).increment(1);
    if settled.status != ApprovalStatus::Pending {
        state.notices.send(&settled, settled.status);
        ping(&settled).await?;
    }
    Ok(settled)
}

/// A request, or 404.
pub(crate) async fn load(state: &AppState, id: ApprovalId) -> Result<Approval> {
    state
        .store
        .get_approval(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("approval `{id}` not found")))
}

/// Records that a request ran out of time (once, by whoever notices first).
pub(crate) async fn note_expiry(state: &AppState, a: &Approval) -> Result<()> {
    let now = state.clock.now();
    if a.status.is_final() || a.status_at(now) != ApprovalStatus::Expired {
        return Ok(());
    }
    let event = NewEvent::new(EventKind::ApprovalExpired, Actor::System, a.id, now)
        .agent(a.client)
        .human(a.principal)
        .details(json!({"was": a.status.as_str()}));
    let change = ApprovalTransition {
        id: a.id,
        from: a.status,
        to: ApprovalStatus::Expired,
        token_jti: a.token_jti.clone(),
        at: now,
    };
    match state.store.transition_approval(&change, &[event]).await {
        Ok(()) | Err(surety_store::StoreError::Stale) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Cancels the open requests of an agent or grant that was just revoked or suspended.
pub(crate) async fn cancel(
    state: &AppState,
    scope: surety_store::ApprovalScope,
    why: &str,
) -> Result<()> {
    let now = state.clock.now();
    let event = |a: &Approval| {
        NewEvent::new(EventKind::ApprovalCancelled, Actor::System, a.id, now)
            .agent(a.client)
            .human(a.principal)
            .details(json!({"reason": why, "was": a.status.as_str()}))
    };
    let n = state.store.cancel_approvals(scope, now, &event).await?;
    if n > 0 {
        metrics::counter!("surety_approvals_cancelled_total").increment(n);
    }
    Ok(())
}

/// An agent's name, for people to read (empty if it is gone).
pub(crate) async fn agent_name(state: &AppState, agent: AgentId) -> Result<String> {
    Ok(state
        .store
        .get_agent(agent)
        .await?
        .map(|ag| ag.name)
        .unwrap_or_default())
}

/// The approver's view of a request.
pub(crate) async fn view(state: &AppState, a: &Approval) -> Result<ApprovalView> {
    let now = state.clock.now();
    let votes = state.store.approval_votes(a.id).await?;
    let agent_name = agent_name(state, a.client).await?;
    Ok(ApprovalView {
        id: a.id.to_string(),
        status: a.status_at(now).as_str().to_owned(),
        agent: a.client.to_string(),
        agent_name,
        chain: a.chain.iter().map(ToString::to_string).collect(),
        principal: a.principal.to_string(),
        grant_id: a.grant.to_string(),
        authorization_details: a.details.to_authorization_details(a.grant),
        action: a.details.action.clone(),
        resource: json!({"type": a.details.resource_type, "id": a.details.resource_id}),
        arguments: a.details.arguments.clone(),
        location: a.details.location.clone(),
        binding_message: a.binding_message.clone(),
        reasons: a.reasons.clone(),
        approvers: a.approvers.iter().map(ToString::to_string).collect(),
        required: a.required,
        votes: votes
            .iter()
            .map(|v| VoteView {
                approver: v.approver.to_string(),
                decision: v.verdict.as_str().to_owned(),
                method: v.method.as_str().to_owned(),
                reason: v.reason.clone(),
                at: v.at,
            })
            .collect(),
        created_at: a.created_at,
        expires_at: a.expires_at,
        statement: a.statement(),
        digest: digest(a),
    })
}

fn http_client() -> Option<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .ok()
}

/// Delivers `body` with retries and backoff (1 s, 2 s, 4 s), off the request path.
fn deliver(
    url: String,
    build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + 'static,
    what: &'static str,
) {
    tokio::spawn(async move {
        let Some(client) = http_client() else { return };
        for attempt in 0..4u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_secs(1 << (attempt - 1))).await;
            }
            match build(&client).send().await {
                Ok(r) if r.status().is_success() => {
                    metrics::counter!("surety_notifications_total", "kind" => what, "result" => "delivered").increment(1);
                    return;
                }
                Ok(r) => {
                    tracing::warn!(%url, status = %r.status(), kind = what, "notification refused")
                }
                Err(e) => tracing::warn!(%url, error = %e, kind = what, "notification failed"),
            }
        }
        metrics::counter!("surety_notifications_total", "kind" => what, "result" => "failed")
            .increment(1);
    });
}

/// CIBA §10.2 ping: tells the agent its request is decided, with the bearer token it gave.
async fn ping(a: &Approval) -> Result<()> {
    let Delivery::Ping {
        endpoint,
        token,
        auth_req_id,
    } = &a.delivery
    else {
        return Ok(());
    };
    let id = auth_req_id.clone();
    let (endpoint, token) = (endpoint.clone(), token.clone());
    deliver(
        endpoint.clone(),
        move |c| {
            c.post(&endpoint)
                .bearer_auth(&token)
                .json(&json!({ "auth_req_id": id }))
        },
        "ciba_ping",
    );
    Ok(())
}

/// The optional approvals webhook: a JWT signed by the org key naming the new request, so a
/// chat bot or phone app can relay it to the approvers (who then answer on their device).
fn webhook(state: &AppState, a: &Approval) {
    let claims = json!({
        "approval_id": a.id.to_string(),
        "approvers": a.approvers.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "agent": a.client.to_string(),
        "binding_message": a.binding_message,
        "authorization_details": a.details.to_authorization_details(a.grant),
        "expires_at": a.expires_at.unix_timestamp(),
        "digest": digest(a),
    });
    notify(state, WEBHOOK_TYP, claims, "approval_webhook");
}

/// Tells an agent's owner, through the webhook, that Surety suspended the agent on its own
/// (`trigger`: `out_of_scope`, `rate` or `withdrawn_credential`), so they look into it.
pub(crate) fn owner_notice(state: &AppState, agent: &Agent, reason: &str, trigger: &str) {
    let claims = json!({
        "event": "agent.suspended",
        "agent": agent.id.to_string(),
        "agent_name": agent.name,
        "owner": agent.owner.to_string(),
        "reason": reason,
        "trigger": trigger,
    });
    notify(state, AGENT_NOTICE_TYP, claims, "owner_notice");
}

/// POSTs `claims` to the webhook, if one is set, as a JWT of type `typ` signed by the org key
/// (with `iss`, `aud`, `iat`, `exp` and `jti` added), off the request path.
fn notify(state: &AppState, typ: &'static str, mut claims: Value, what: &'static str) {
    if state.config.approval_webhook_url.is_empty() {
        return;
    }
    let state = state.clone();
    tokio::spawn(async move {
        let now = state.clock.now();
        let Ok(signer) = state.keys.signer(state.store.as_ref(), now).await else {
            return;
        };
        // Receivers drop repeated `jti`s: never send one without its own.
        let Ok(jti) = surety_jose::random_b64(16) else {
            return;
        };
        let url = state.config.approval_webhook_url.clone();
        claims["iss"] = json!(state.issuer.as_ref());
        claims["aud"] = json!(url);
        claims["iat"] = json!(now.unix_timestamp());
        claims["exp"] = json!((now + time::Duration::minutes(5)).unix_timestamp());
        claims["jti"] = json!(jti);
        let mut header = serde_json::Map::new();
        header.insert("typ".into(), json!(typ));
        header.insert("kid".into(), json!(signer.kid));
        let Ok(jwt) = surety_jose::jws::sign(header, &claims, &signer.key) else {
            return;
        };
        deliver(
            url.clone(),
            move |c| {
                c.post(&url)
                    .header("content-type", "application/jwt")
                    .body(jwt.clone())
            },
            what,
        );
    });
}

/// Seconds from `now` to `until`, at least 0.
pub(crate) fn seconds_until(until: OffsetDateTime, now: OffsetDateTime) -> u64 {
    u64::try_from((until - now).whole_seconds()).unwrap_or(0)
}
