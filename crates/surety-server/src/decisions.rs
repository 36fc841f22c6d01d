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
use surety_core::audit::{Actor, EventKind, NewEvent};
use surety_core::id::AgentId;
use surety_policy::{Decision, DecisionRequest, HumanFacts, Outcome};
use surety_store::{AgentActivity, AgentStatusChange, ResourceServer};

use crate::app::AppState;
use crate::auth::ResourceServerCaller;
use crate::error::ApiError;
use crate::extract::Json;
use crate::oauth::access_token::{Inactive, verify_active};

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
    let decision_and_agent = match &token {
        None => (
            refusal("the agent's token is not active", engine.version()),
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
                    };
                    (engine.decide(&request), Some(t), Some(request))
                }
                _ => (
                    refusal(
                        "the token's agent, grant or principal is gone",
                        engine.version(),
                    ),
                    Some(t),
                    None,
                ),
            }
        }
    };
    let (decision, token, request) = decision_and_agent;
    let step_up = (decision.outcome == Outcome::StepUp).then(|| StepUp {
        authorization_details: json!([{
            "type": "surety_action",
            "locations": [rs.audience],
            "actions": [asked.action],
            "action": asked.action,
            "resource": {"type": asked.resource_type, "id": asked.resource_id},
            "arguments": asked.arguments,
        }]),
        binding_message: format!("{} on {}", asked.action, asked.resource_id)
            .chars()
            .take(64)
            .collect(),
    });
    let mut event = NewEvent::new(EventKind::DecisionMade, Actor::System, asked.action, now)
        .details(json!({
            "decision": outcome_name(decision.outcome),
            "action": asked.action,
            "resource": {"type": asked.resource_type, "id": asked.resource_id},
            "arguments": asked.arguments,
            "reasons": decision.reasons,
            "policy_ids": decision.policy_ids,
            "policy_version": decision.version,
            "resource_server": rs.id,
            "token_jti": token.map(|t| t.claims.jti.clone()),
            "grant_id": token.map(|t| t.claims.grant_id.clone()),
            "act": token.map(|t| t.claims.act.clone()),
            // Everything the policies saw, so that `surety policy test` can replay it.
            "request": request,
        }));
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
    };
    match state.store.change_agent_status(&change, &[event]).await {
        // Another request suspended it first.
        Ok(()) | Err(surety_store::StoreError::Stale) => {
            metrics::counter!("surety_behavioural_suspensions_total", "trigger" => trigger.to_owned()).increment(1);
            Ok(())
        }
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
    let asked = Asked {
        token: &body.token,
        named_agent: None,
        action: &body.action,
        resource_type: &body.resource.kind,
        resource_id: &body.resource.id,
        arguments: &body.arguments,
    };
    let d = decide(&state, &rs, &asked).await?;
    Ok(axum::Json(DecisionView {
        decision: outcome_name(d.decision.outcome).to_owned(),
        reasons: d.decision.reasons,
        policy_ids: d.decision.policy_ids,
        decision_id: d.id,
        policy_version: d.decision.version,
        step_up: d.step_up,
    }))
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
