//! Decisions: may this agent, for this human, do this now? Asked by registered resource
//! servers (with their DPoP-bound `decisions` token), answered from the Cedar policy set in
//! force, recorded in the audit log before the answer is sent.
//!
//! - `POST /v1/decisions`: Surety's native form — `allow`, `deny` or `step_up`, with reasons,
//!   the determining policies, the policy version, and for a step-up what to approve.
//! - `POST /access/v1/evaluation`, `POST /access/v1/evaluations`: OpenID AuthZEN
//!   Authorization API 1.0. A step-up is `decision: false` with `context.step_up`.
//!
//! The agent, its principal, chain, grant and scope come only from the agent's verified
//! access token, which must be active and issued for the asking resource server's audience.
//! A request that names another agent than the token's is refused without evaluation.

use axum::extract::State;
use serde_json::{Value, json};
use surety_api::decisions::{
    DecisionInput, DecisionView, EvaluationRequest, EvaluationResponse, EvaluationsRequest,
    EvaluationsResponse, StepUp,
};
use surety_core::agent::AgentStatus;
use surety_core::approval::{ActionDetails, ApprovalStatus, Delivery};
use surety_core::audit::{Actor, EventKind, NewEvent};
use surety_core::id::AgentId;
use surety_policy::{Decision, DecisionRequest, HumanFacts, Outcome};
use surety_store::{
    ActivityKind, AgentActivity, AgentStatusChange, ApprovalTransition, ResourceServer,
};

use crate::app::AppState;
use crate::auth::ResourceServerCaller;
use crate::error::ApiError;
use crate::extract::Json;
use crate::oauth::access_token::{ActiveToken, Inactive, verify_active};

mod federated;

type Result<T> = std::result::Result<T, ApiError>;

/// Most evaluations in one AuthZEN batch.
const MAX_BATCH: usize = 64;

/// What a resource server asks.
struct Asked<'a> {
    token: &'a str,
    /// The agent the request names, if it names one (AuthZEN's subject).
    named_agent: Option<&'a str>,
    action: &'a str,
    resource_type: &'a str,
    resource_id: &'a str,
    arguments: &'a Value,
    /// A one-time approval token presented as evidence.
    approval_token: Option<&'a str>,
    /// The `auth_req_id` of a request this resource server opened, presented as evidence.
    auth_req_id: Option<&'a str>,
    /// On a step-up, open the approval request on the agent's behalf.
    request_approval: bool,
}

/// What approval evidence a request carried, once checked.
enum Evidence {
    /// None was presented.
    None,
    /// Valid for exactly this action: consumed if the decision allows.
    Valid(ApprovalTransition),
    /// A request opened by this resource server that is not approved yet.
    Waiting(ApprovalStatus),
    /// Presented but not valid for this request: the decision is `deny`.
    Invalid(String),
}

/// A decision, recorded.
struct Decided {
    decision: Decision,
    id: String,
    step_up: Option<StepUp>,
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Allow => "allow",
        Outcome::Deny => "deny",
        Outcome::StepUp => "step_up",
    }
}

/// A refusal made before any policy ran (inactive token, another audience…).
fn refusal(reason: &str, version: u64) -> Decision {
    Decision {
        outcome: Outcome::Deny,
        reasons: vec![reason.to_owned()],
        policy_ids: Vec::new(),
        version,
        errors: Vec::new(),
    }
}

async fn decide(state: &AppState, rs: &ResourceServer, asked: &Asked<'_>) -> Result<Decided> {
    let now = state.clock.now();
    let engine = state
        .policies
        .fresh(
            state.store.as_ref(),
            now,
            crate::auth::to_time(state.config.key_refresh_interval),
        )
        .await?;
    // A peer's agent's token: decided under its federation grant.
    if crate::federation::token::is_federated(asked.token) {
        return federated::decide(state, rs, asked, &engine).await;
    }
    let mut misused = None;
    let token = match verify_active(state, asked.token).await {
        Ok(t) => Some(t),
        Err(Inactive::Because(_)) => None,
        Err(Inactive::Withdrawn(w)) => {
            misused = misuse(rs, w, now);
            None
        }
        Err(Inactive::Error(e)) => return Err(e),
    };
    let mut evidence = Evidence::None;
    let decision_and_agent = match &token {
        None => (
            refusal("the agent's token is not active", engine.version()),
            None,
            None,
            None,
        ),
        Some(t) if t.claims.aud != rs.audience => (
            refusal(
                "the agent's token was not issued for this resource server",
                engine.version(),
            ),
            Some(t),
            None,
            None,
        ),
        Some(t) if t.claims.approval_id.is_some() => (
            refusal(
                "an approval token is evidence, not an access token: send it as `approval_token`",
                engine.version(),
            ),
            Some(t),
            None,
            None,
        ),
        Some(t) => {
            let agent = t.chain[0];
            // Identity comes from the token: a request naming anyone else is refused as
            // malformed, without evaluation.
            if let Some(named) = asked.named_agent
                && named != agent.to_string()
            {
                return Err(ApiError::invalid_request(format!(
                    "the subject `{}` is not the agent of the token",
                    named.chars().take(64).collect::<String>()
                )));
            }
            let facts = state.store.get_agent(agent).await?;
            let grant = state.store.get_grant(t.grant).await?;
            let principal = state.store.get_human(t.principal).await?;
            match (facts, grant, principal) {
                (Some(facts), Some(grant), Some(principal)) => {
                    let owner = if facts.owner == principal.id {
                        principal.clone()
                    } else {
                        state
                            .store
                            .get_human(facts.owner)
                            .await?
                            .ok_or_else(|| ApiError::internal("an agent's owner is missing"))?
                    };
                    let request = DecisionRequest {
                        agent: agent.to_string(),
                        environment: facts.environment.clone(),
                        owner: HumanFacts {
                            id: owner.id.to_string(),
                            role: owner.role.to_string(),
                        },
                        principal: HumanFacts {
                            id: principal.id.to_string(),
                            role: principal.role.to_string(),
                        },
                        grant: t.grant.to_string(),
                        chain: t.chain.iter().map(ToString::to_string).collect(),
                        scope: t.claims.scope.split(' ').map(str::to_owned).collect(),
                        action: asked.action.to_owned(),
                        resource_type: asked.resource_type.to_owned(),
                        resource_id: asked.resource_id.to_owned(),
                        constraints: grant.constraints.clone(),
                        arguments: asked.arguments.clone(),
                        time: now.unix_timestamp(),
                        org_domains: state.config.org_domain_list(),
                        approved: false,
                        peer: String::new(),
                    };
                    evidence = check_evidence(state, rs, asked, t).await?;
                    let mut request = request;
                    request.approved = matches!(evidence, Evidence::Valid(_));
                    let decision = match &evidence {
                        Evidence::Invalid(why) => Decision {
                            outcome: Outcome::Deny,
                            reasons: vec![why.clone()],
                            policy_ids: Vec::new(),
                            version: engine.version(),
                            errors: Vec::new(),
                        },
                        _ => engine.decide(&request),
                    };
                    (decision, Some(t), Some(request), Some(grant))
                }
                _ => (
                    refusal(
                        "the token's agent, grant or principal is gone",
                        engine.version(),
                    ),
                    Some(t),
                    None,
                    None,
                ),
            }
        }
    };
    let (mut decision, token, request, grant) = decision_and_agent;
    let decision_id = surety_core::id::EventId::new(now);
    let mut consumed = None;
    // The approval is used by the decision it allows, once: a concurrent use loses.
    if decision.outcome == Outcome::Allow
        && let Evidence::Valid(change) = &evidence
        && let Some(t) = token
    {
        let event = NewEvent::new(EventKind::ApprovalConsumed, Actor::System, change.id, now)
            .agent(t.chain[0])
            .human(t.principal)
            .details(json!({"resource_server": rs.id, "action": asked.action, "decision_id": decision_id.to_string()}));
        match state.store.transition_approval(change, &[event]).await {
            Ok(()) => consumed = Some(change.id.to_string()),
            Err(surety_store::StoreError::Stale) => {
                decision = refusal("the approval was already used", decision.version);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut step_up = None;
    if decision.outcome == Outcome::StepUp {
        let binding_message: String = format!("{} on {}", asked.action, asked.resource_id)
            .chars()
            .take(surety_core::approval::MAX_BINDING_MESSAGE)
            .collect();
        let mut s = StepUp {
            authorization_details: step_up_details(rs, asked, grant.as_ref().map(|g| g.id)),
            binding_message,
            auth_req_id: None,
            expires_in: None,
            approval_status: None,
        };
        if let Evidence::Waiting(status) = evidence {
            s.approval_status = Some(status.as_str().to_owned());
            s.auth_req_id = asked.auth_req_id.map(str::to_owned);
        } else if asked.request_approval
            && let (Some(t), Some(grant)) = (token, &grant)
        {
            let (id, expires_in) = open_on_behalf(state, rs, t, grant, &s, &decision).await?;
            s.auth_req_id = Some(id);
            s.expires_in = Some(expires_in);
            s.approval_status = Some(ApprovalStatus::Pending.as_str().to_owned());
        }
        step_up = Some(s);
    }
    let mut event = decision_event(
        asked,
        &decision,
        rs,
        decision_id,
        now,
        json!({
            "token_jti": token.map(|t| t.claims.jti.clone()),
            "grant_id": token.map(|t| t.claims.grant_id.clone()),
            "act": token.map(|t| t.claims.act.clone()),
            // Everything the policies saw, so that `surety policy test` can replay it.
            "request": request,
            "approval_id": consumed,
        }),
    );
    // Only evaluated decisions are filed under the agent (and so count towards its rate):
    // a refusal of a token meant for another audience says nothing about the agent.
    if let (Some(t), Some(_)) = (token, &request) {
        event = event.agent(t.chain[0]).human(t.principal);
    }
    let id = event.id.to_string();
    metrics::counter!("surety_decisions_total", "decision" => outcome_name(decision.outcome))
        .increment(1);
    // A denied attempt outside the token's scope is a strike.
    let strike = decision.outcome == Outcome::Deny
        && request
            .as_ref()
            .is_some_and(|r| !r.scope.iter().any(|s| s == &r.action));
    // An allowed action the token's scope names exercises that scope of the grant.
    let exercised = match (&grant, &request) {
        (Some(g), Some(r)) if decision.outcome == Outcome::Allow && r.scope.contains(&r.action) => {
            Some((g.id, r.action.clone()))
        }
        _ => None,
    };
    // Durable before the answer: an allow is never sent for an unrecorded decision.
    match token {
        Some(t) => {
            let agent = t.chain[0];
            state
                .record_activity(AgentActivity {
                    agent,
                    at: now,
                    events: vec![event],
                    strike,
                    kind: match (decision.outcome, &request) {
                        (_, None) => ActivityKind::Refused,
                        (Outcome::Allow, _) => ActivityKind::Allowed,
                        (Outcome::Deny, _) => ActivityKind::Denied,
                        (Outcome::StepUp, _) => ActivityKind::SteppedUp,
                    },
                    exercised,
                })
                .await?;
            if strike {
                let since = now - crate::auth::to_time(state.config.suspend_window);
                let strikes = state.store.count_strikes(agent, since).await?;
                let limit = state.config.suspend_after_denials;
                if limit > 0 && strikes >= u64::from(limit) {
                    let window = humantime::format_duration(state.config.suspend_window);
                    let why = format!("{strikes} attempts outside its scope within {window}");
                    suspend(state, agent, why, "out_of_scope", now).await?;
                }
            }
            let rate = state.config.suspend_above_rate;
            if rate > 0 && request.is_some() {
                let since = now - time::Duration::minutes(1);
                let recent = state
                    .store
                    .count_agent_events(agent, EventKind::DecisionMade, since)
                    .await?;
                if recent > u64::from(rate) {
                    let why = format!("{recent} decisions within a minute (limit {rate})");
                    suspend(state, agent, why, "rate", now).await?;
                }
            }
        }
        None => state.store.append_events(&[event]).await?,
    }
    if let Some((agent, why)) = misused {
        suspend(state, agent, why, "withdrawn_credential", now).await?;
    }
    Ok(Decided {
        decision,
        id,
        step_up,
    })
}

/// The audit event of a decision: the question and the answer, then `about` (the token's
/// identities and what the policies saw), under the decision's id.
fn decision_event(
    asked: &Asked<'_>,
    decision: &Decision,
    rs: &ResourceServer,
    id: surety_core::id::EventId,
    now: time::OffsetDateTime,
    about: Value,
) -> NewEvent {
    let mut details = json!({
        "decision": outcome_name(decision.outcome),
        "action": asked.action,
        "resource": {"type": asked.resource_type, "id": asked.resource_id},
        "arguments": asked.arguments,
        "reasons": decision.reasons,
        "policy_ids": decision.policy_ids,
        "policy_version": decision.version,
        "resource_server": rs.id,
    });
    if let (Some(d), Value::Object(more)) = (details.as_object_mut(), about) {
        d.extend(more);
    }
    let mut event =
        NewEvent::new(EventKind::DecisionMade, Actor::System, asked.action, now).details(details);
    event.id = id;
    event
}

/// The `authorization_details` of a step-up: exactly the action asked, at this resource
/// server, under the token's grant.
fn step_up_details(
    rs: &ResourceServer,
    asked: &Asked<'_>,
    grant: Option<surety_core::id::GrantId>,
) -> Value {
    let arguments = if asked.arguments.is_null() {
        json!({})
    } else {
        asked.arguments.clone()
    };
    let mut entry = json!({
        "type": surety_core::approval::ACTION_TYPE,
        "locations": [rs.audience],
        "actions": [asked.action],
        "action": asked.action,
        "resource": {"type": asked.resource_type, "id": asked.resource_id},
        "arguments": arguments,
    });
    if let Some(g) = grant {
        entry["grant_id"] = json!(g.to_string());
    }
    json!([entry])
}

/// Checks the approval evidence a request carries against the agent's token and the exact
/// action asked.
async fn check_evidence(
    state: &AppState,
    rs: &ResourceServer,
    asked: &Asked<'_>,
    t: &ActiveToken,
) -> Result<Evidence> {
    let now = state.clock.now();
    let same_action = |d: &ActionDetails| {
        d.matches(
            asked.action,
            asked.resource_type,
            asked.resource_id,
            asked.arguments,
            &rs.audience,
        )
    };
    if let Some(token) = asked.approval_token {
        let invalid = |why: &str| {
            Ok(Evidence::Invalid(format!(
                "the approval token is not valid for this request: {why}"
            )))
        };
        let approval_token = match verify_active(state, token).await {
            Ok(a) => a,
            Err(Inactive::Error(e)) => return Err(e),
            Err(_) => return invalid("it is not active"),
        };
        let c = &approval_token.claims;
        let (Some(id), Some(details)) = (&c.approval_id, &c.authorization_details) else {
            return invalid("it is not an approval token");
        };
        if c.aud != rs.audience {
            return invalid("it was issued for another resource server");
        }
        if approval_token.chain != t.chain
            || approval_token.principal != t.principal
            || approval_token.grant != t.grant
        {
            return invalid("it was issued to another agent, principal or grant");
        }
        if c.cnf.jkt != t.claims.cnf.jkt {
            return invalid("it is bound to another key than the access token");
        }
        let Ok(details) = ActionDetails::parse(details) else {
            return invalid("its `authorization_details` are malformed");
        };
        if !same_action(&details) {
            return invalid("it approves another action, resource or arguments");
        }
        let approval = match id.parse() {
            Ok(id) => state.store.get_approval(id).await?,
            Err(_) => None,
        };
        let Some(a) = approval else {
            return invalid("its approval is unknown");
        };
        return match a.status_at(now) {
            ApprovalStatus::Redeemed if a.token_jti.as_deref() == Some(c.jti.as_str()) => {
                Ok(Evidence::Valid(ApprovalTransition {
                    id: a.id,
                    from: ApprovalStatus::Redeemed,
                    to: ApprovalStatus::Consumed,
                    token_jti: Some(c.jti.clone()),
                    at: now,
                }))
            }
            ApprovalStatus::Consumed => invalid("it was already used"),
            other => invalid(&format!("its approval is {other}")),
        };
    }
    if let Some(req) = asked.auth_req_id {
        let invalid = |why: &str| {
            Ok(Evidence::Invalid(format!(
                "the `auth_req_id` is not valid for this request: {why}"
            )))
        };
        let found = state
            .store
            .find_approval(&surety_jose::sha256_b64(req.as_bytes()))
            .await?
            .filter(|a| a.requested_by == Some(rs.id));
        let Some(a) = found else {
            return invalid("unknown request");
        };
        if a.chain != t.chain || a.principal != t.principal || a.grant != t.grant {
            return invalid("it was opened for another agent, principal or grant");
        }
        if !same_action(&a.details) {
            return invalid("it approves another action, resource or arguments");
        }
        return match a.status_at(now) {
            ApprovalStatus::Approved => Ok(Evidence::Valid(ApprovalTransition {
                id: a.id,
                from: ApprovalStatus::Approved,
                to: ApprovalStatus::Consumed,
                token_jti: None,
                at: now,
            })),
            ApprovalStatus::Pending => Ok(Evidence::Waiting(ApprovalStatus::Pending)),
            ApprovalStatus::Redeemed | ApprovalStatus::Consumed => invalid("it was already used"),
            other => invalid(&format!("the request is {other}")),
        };
    }
    Ok(Evidence::None)
}

/// Opens the approval request of a step-up on the agent's behalf.
async fn open_on_behalf(
    state: &AppState,
    rs: &ResourceServer,
    t: &ActiveToken,
    grant: &surety_core::grant::Grant,
    s: &StepUp,
    decision: &Decision,
) -> Result<(String, u64)> {
    let now = state.clock.now();
    let details = ActionDetails::parse(&s.authorization_details)
        .map_err(|e| ApiError::invalid_request(e.0))?;
    let client = state
        .store
        .get_agent(t.chain[0])
        .await?
        .ok_or_else(|| ApiError::internal("the token's agent is missing"))?;
    let (a, id) = crate::approvals::open(
        state,
        crate::approvals::NewRequest {
            client: &client,
            chain: t.chain.clone(),
            grant,
            details,
            binding_message: s.binding_message.clone(),
            reasons: decision.reasons.clone(),
            requested_by: Some(rs.id),
            delivery: Delivery::Poll,
            expires_in: crate::auth::to_time(state.config.approval_ttl),
        },
    )
    .await?;
    Ok((id, crate::approvals::seconds_until(a.expires_at, now)))
}

/// How long after a token or key is revoked its holder may still present it without it
/// counting as misuse: requests already in flight, caches being refreshed.
const WITHDRAWAL_GRACE: time::Duration = time::Duration::minutes(1);

/// Whether presenting a withdrawn credential is misuse that suspends its holder: it was
/// presented to the resource server it was issued for (so another resource server cannot
/// provoke it), well after the revocation (not a request in flight), and the revocation came
/// after the holder's last status change (an owner who reinstated the agent since has
/// already dealt with it).
fn misuse(
    rs: &ResourceServer,
    w: crate::oauth::access_token::Withdrawn,
    now: time::OffsetDateTime,
) -> Option<(AgentId, String)> {
    let reviewed = w.agent_changed_at.is_some_and(|at| at >= w.revoked_at);
    (w.audience == rs.audience && now - w.revoked_at >= WITHDRAWAL_GRACE && !reviewed).then(|| {
        (
            w.agent,
            format!("presented a withdrawn credential: {}", w.why),
        )
    })
}

/// Suspends `agent` for misbehaviour (`trigger`: `out_of_scope`, `rate` or
/// `withdrawn_credential`) if it is active: its tokens die at once, and the audit event (which
/// names its owner) says why. Reinstating it is its owner's decision.
async fn suspend(
    state: &AppState,
    agent: AgentId,
    reason: String,
    trigger: &str,
    now: time::OffsetDateTime,
) -> Result<()> {
    let Some(a) = state.store.get_agent(agent).await? else {
        return Ok(());
    };
    if a.status != AgentStatus::Active {
        return Ok(());
    }
    let event = NewEvent::new(EventKind::AgentSuspended, Actor::System, agent, now)
        .agent(agent)
        .human(a.owner)
        .details(
            json!({"from": "active", "to": "suspended", "reason": reason, "trigger": trigger}),
        );
    let change = AgentStatusChange {
        id: agent,
        from: AgentStatus::Active,
        to: AgentStatus::Suspended,
        reason: Some(reason),
        keys_to: None,
        keys: Vec::new(),
        at: now,
        unchanged_since: Some(now),
    };
    match state.store.change_agent_status(&change, &[event]).await {
        Ok(()) => {
            metrics::counter!("surety_behavioural_suspensions_total", "trigger" => trigger.to_owned()).increment(1);
            crate::approvals::owner_notice(
                state,
                &a,
                change.reason.as_deref().unwrap_or_default(),
                trigger,
            );
            crate::approvals::cancel(
                state,
                surety_store::ApprovalScope::Agent(agent),
                "the agent was suspended",
            )
            .await
        }
        // Another request (or a person) suspended it first: that one is counted and told.
        Err(surety_store::StoreError::Stale) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Asks for a decision about an agent's action (native form).
#[utoipa::path(post, path = "/v1/decisions", tag = "decisions", request_body = DecisionInput, security(("dpop" = [])),
    responses(
        (status = 200, body = DecisionView),
        (status = 400, body = surety_api::ErrorBody),
        (status = 401, description = "not a registered resource server with a valid `decisions` token", body = surety_api::ErrorBody),
    ))]
pub async fn native(
    State(state): State<AppState>,
    ResourceServerCaller(rs): ResourceServerCaller,
    Json(body): Json<DecisionInput>,
) -> Result<axum::Json<DecisionView>> {
    decide_native(&state, &rs, &body).await.map(axum::Json)
}

/// A native decision for resource server `rs`, already authenticated: what `POST
/// /v1/decisions` answers, for a caller in the same process (the embedded MCP gateway).
pub async fn decide_native(
    state: &AppState,
    rs: &ResourceServer,
    body: &DecisionInput,
) -> Result<DecisionView> {
    let asked = Asked {
        token: &body.token,
        named_agent: None,
        action: &body.action,
        resource_type: &body.resource.kind,
        resource_id: &body.resource.id,
        arguments: &body.arguments,
        approval_token: body.approval_token.as_deref(),
        auth_req_id: body.auth_req_id.as_deref(),
        request_approval: body.request_approval,
    };
    let d = decide(state, rs, &asked).await?;
    Ok(DecisionView {
        decision: outcome_name(d.decision.outcome).to_owned(),
        reasons: d.decision.reasons,
        policy_ids: d.decision.policy_ids,
        decision_id: d.id,
        policy_version: d.decision.version,
        step_up: d.step_up,
    })
}

/// The AuthZEN answer. The context names the decision (`id`, for the audit log) and, for a
/// step-up, what to approve; why — reasons, policies, version — only when
/// `authzen_reason_admin` is on (policy internals are not shared by default).
fn authzen_answer(d: Decided, reasons: bool) -> EvaluationResponse {
    let mut context = json!({ "id": d.id });
    if reasons {
        context["reason_admin"] = json!({
            "decision": outcome_name(d.decision.outcome),
            "reasons": d.decision.reasons,
            "policy_ids": d.decision.policy_ids,
            "policy_version": d.decision.version,
        });
    }
    if let Some(step_up) = d.step_up {
        context["step_up"] = json!(step_up);
    }
    EvaluationResponse {
        decision: d.decision.outcome == Outcome::Allow,
        context: Some(context),
    }
}

async fn evaluate_one(
    state: &AppState,
    rs: &ResourceServer,
    r: &EvaluationRequest,
) -> Result<EvaluationResponse> {
    if r.subject.kind != "agent" {
        return Err(ApiError::invalid_request("`subject.type` must be `agent`"));
    }
    let token = r.subject.properties["token"].as_str().ok_or_else(|| {
        ApiError::invalid_request(
            "`subject.properties.token` (the agent's access token) is required",
        )
    })?;
    let null = Value::Null;
    let asked = Asked {
        token,
        named_agent: Some(&r.subject.id),
        action: &r.action.name,
        resource_type: &r.resource.kind,
        resource_id: &r.resource.id,
        arguments: r.context.get("arguments").unwrap_or(&null),
        approval_token: r.context.get("approval_token").and_then(Value::as_str),
        auth_req_id: r.context.get("auth_req_id").and_then(Value::as_str),
        request_approval: r.context.get("request_approval").and_then(Value::as_bool) == Some(true),
    };
    Ok(authzen_answer(
        decide(state, rs, &asked).await?,
        state.config.authzen_reason_admin,
    ))
}

/// OpenID AuthZEN Authorization API 1.0 — Access Evaluation.
#[utoipa::path(post, path = "/access/v1/evaluation", tag = "decisions", request_body = EvaluationRequest, security(("dpop" = [])),
    responses((status = 200, body = EvaluationResponse), (status = 400, body = surety_api::ErrorBody), (status = 401, body = surety_api::ErrorBody)))]
pub async fn evaluation(
    State(state): State<AppState>,
    ResourceServerCaller(rs): ResourceServerCaller,
    Json(body): Json<EvaluationRequest>,
) -> Result<axum::Json<EvaluationResponse>> {
    Ok(axum::Json(evaluate_one(&state, &rs, &body).await?))
}

/// OpenID AuthZEN Authorization API 1.0 — Access Evaluations (batch): each entry overrides
/// the top-level defaults; `options.evaluations_semantic` is `execute_all` (default),
/// `deny_on_first_deny` or `permit_on_first_permit`.
#[utoipa::path(post, path = "/access/v1/evaluations", tag = "decisions", request_body = EvaluationsRequest, security(("dpop" = [])),
    responses((status = 200, body = EvaluationsResponse), (status = 400, body = surety_api::ErrorBody), (status = 401, body = surety_api::ErrorBody)))]
pub async fn evaluations(
    State(state): State<AppState>,
    ResourceServerCaller(rs): ResourceServerCaller,
    Json(body): Json<EvaluationsRequest>,
) -> Result<axum::Json<EvaluationsResponse>> {
    let semantic = body
        .options
        .as_ref()
        .and_then(|o| o.evaluations_semantic.as_deref())
        .unwrap_or("execute_all");
    if !matches!(
        semantic,
        "execute_all" | "deny_on_first_deny" | "permit_on_first_permit"
    ) {
        return Err(ApiError::invalid_request(
            "`options.evaluations_semantic` must be `execute_all`, `deny_on_first_deny` or `permit_on_first_permit`",
        ));
    }
    if body.evaluations.len() > MAX_BATCH {
        return Err(ApiError::invalid_request(format!(
            "at most {MAX_BATCH} evaluations per request"
        )));
    }
    // With no `evaluations`, the request is a single evaluation of its defaults.
    let entries = if body.evaluations.is_empty() {
        vec![Default::default()]
    } else {
        body.evaluations.clone()
    };
    let missing = |what: &str| ApiError::invalid_request(format!("an evaluation has no `{what}`"));
    let mut answers = Vec::with_capacity(entries.len());
    for e in entries {
        let request = EvaluationRequest {
            subject: e
                .subject
                .or_else(|| body.subject.clone())
                .ok_or_else(|| missing("subject"))?,
            action: e
                .action
                .or_else(|| body.action.clone())
                .ok_or_else(|| missing("action"))?,
            resource: e
                .resource
                .or_else(|| body.resource.clone())
                .ok_or_else(|| missing("resource"))?,
            context: e
                .context
                .or_else(|| body.context.clone())
                .unwrap_or(Value::Null),
        };
        // A malformed entry answers for itself (`decision: false` with the error) instead of
        // failing the batch; only a server failure fails it.
        let answer = match evaluate_one(&state, &rs, &request).await {
            Ok(a) => a,
            Err(e) if e.status().is_client_error() => EvaluationResponse {
                decision: false,
                context: Some(
                    json!({"error": {"status": e.status().as_u16(), "code": e.code(), "message": e.description()}}),
                ),
            },
            Err(e) => return Err(e),
        };
        let decision = answer.decision;
        answers.push(answer);
        if (semantic == "deny_on_first_deny" && !decision)
            || (semantic == "permit_on_first_permit" && decision)
        {
            break;
        }
    }
    Ok(axum::Json(EvaluationsResponse {
        evaluations: answers,
    }))
}
