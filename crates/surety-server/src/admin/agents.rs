//! `/v1/agents`: registering agents, their lifecycle and their keys.

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use surety_api::admin::{
    AddKey, AgentQuery, AgentView, KeyView, ListResponse, Reason, RegisterAgent,
};
use surety_core::TransitionError;
use surety_core::access::Caller;
use surety_core::agent::{Agent, AgentAction, NewAgent};
use surety_core::audit::{EventKind, NewEvent};
use surety_core::id::{AgentId, PrincipalId};
use surety_core::key::{KeyAction, KeyStatus};
use surety_store::{AgentFilter, AgentStatusChange, StoreError};

use super::{actor, key_record, page, parse, parse_opt, public_key, reason};
use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};

type Result<T> = std::result::Result<T, ApiError>;

async fn load(state: &AppState, id: AgentId) -> Result<Agent> {
    state
        .store
        .get_agent(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("agent `{id}` not found")))
}

async fn view(state: &AppState, id: AgentId) -> Result<AgentView> {
    let agent = load(state, id).await?;
    let keys = state.store.list_keys(PrincipalId::Agent(id)).await?;
    Ok(AgentView::from(&agent).with_keys(&keys))
}

/// Registers an agent with its first public key. It starts `active` with no grants: it can
/// authenticate and be inventoried, but is allowed nothing.
#[utoipa::path(post, path = "/v1/agents", tag = "agents", request_body = RegisterAgent, security(("dpop" = [])),
    responses(
        (status = 201, body = AgentView),
        (status = 400, description = "a malformed field, named in the description", body = surety_api::ErrorBody),
        (status = 403, body = surety_api::ErrorBody),
        (status = 404, description = "unknown owner", body = surety_api::ErrorBody),
        (status = 409, description = "duplicate name for the owner, key already registered, or owner deactivated", body = surety_api::ErrorBody),
    ))]
pub async fn register(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Json(body): Json<RegisterAgent>,
) -> Result<(StatusCode, axum::Json<AgentView>)> {
    let owner = body.owner.unwrap_or(caller.id);
    caller.may_register_agent_for(owner)?;
    let jwk = public_key("public_key", &body.public_key)?;
    let new = NewAgent::parse(
        &body.name,
        owner,
        body.purpose.as_deref(),
        body.environment.as_deref(),
        &body.labels,
    )?;
    let now = state.clock.now();
    let agent = new.into_agent(AgentId::new(now), now);
    let key = key_record(&jwk, PrincipalId::Agent(agent.id), now);
    let event = NewEvent::new(EventKind::AgentRegistered, actor(&caller), agent.id, now)
        .agent(agent.id)
        .human(owner)
        .details(json!({
            "name": agent.name, "environment": agent.environment, "purpose": agent.purpose,
            "labels": agent.labels, "kid": key.kid, "alg": key.alg,
        }));
    state.store.create_agent(&agent, &key, &[event]).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(AgentView::from(&agent).with_keys(&[key])),
    ))
}

/// Lists agents in creation order. Members see only their own.
#[utoipa::path(get, path = "/v1/agents", tag = "agents", params(AgentQuery), security(("dpop" = [])),
    responses((status = 200, body = ListResponse<AgentView>), (status = 403, body = surety_api::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Query(q): Query<AgentQuery>,
) -> Result<axum::Json<ListResponse<AgentView>>> {
    let requested = parse_opt("owner", q.owner.as_deref())?;
    let filter = AgentFilter {
        owner: caller.agent_list_owner(requested)?,
        status: parse_opt("status", q.status.as_deref())?,
        environment: q.environment.clone(),
        id: None,
    };
    if let Some(c) = &q.cursor {
        parse::<AgentId>("cursor", c)?;
    }
    let page = state
        .store
        .list_agents(&filter, &page(q.limit, q.cursor)?)
        .await?;
    Ok(axum::Json(ListResponse::from(&page)))
}

/// One agent with its keys.
#[utoipa::path(get, path = "/v1/agents/{id}", tag = "agents", params(("id" = String, Path, description = "`agt_…`")),
    security(("dpop" = [])),
    responses((status = 200, body = AgentView), (status = 403, body = surety_api::ErrorBody), (status = 404, body = surety_api::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<String>,
) -> Result<axum::Json<AgentView>> {
    let id = parse("id", &id)?;
    caller.may_view_agent(&load(&state, id).await?)?;
    Ok(axum::Json(view(&state, id).await?))
}

pub(crate) async fn transition(
    state: &AppState,
    caller: &Caller,
    id: &str,
    action: AgentAction,
    body: Option<Reason>,
) -> Result<AgentView> {
    let id: AgentId = parse("id", id)?;
    let reason = reason(body)?;
    if reason.is_none() && matches!(action, AgentAction::Suspend | AgentAction::Revoke) {
        return Err(ApiError::invalid_request(format!(
            "`reason` is required to {action} an agent"
        )));
    }
    let (kind, keys_to) = match action {
        AgentAction::Suspend => (EventKind::AgentSuspended, None),
        AgentAction::Reinstate => (EventKind::AgentReinstated, None),
        AgentAction::Revoke => (EventKind::AgentRevoked, Some(KeyStatus::Revoked)),
        AgentAction::Retire => (EventKind::AgentRetired, Some(KeyStatus::Retired)),
    };
    for _ in 0..3 {
        let agent = load(state, id).await?;
        caller.may_apply(&agent, action)?;
        let to = agent.status.apply(id, action)?;
        let keys = state.store.list_keys(PrincipalId::Agent(id)).await?;
        let affected: Vec<String> = keys
            .into_iter()
            .filter(|k| match keys_to {
                Some(KeyStatus::Revoked) => k.status != KeyStatus::Revoked,
                Some(KeyStatus::Retired) => k.status == KeyStatus::Active,
                _ => false,
            })
            .map(|k| k.kid)
            .collect();
        let now = state.clock.now();
        let event = NewEvent::new(kind, actor(caller), id, now)
            .agent(id)
            .human(agent.owner)
            .details(json!({"from": agent.status, "to": to, "reason": reason, "keys": affected}));
        let change = AgentStatusChange {
            id,
            from: agent.status,
            to,
            reason: reason.clone(),
            keys_to,
            keys: affected,
            at: now,
            unchanged_since: None,
        };
        match state.store.change_agent_status(&change, &[event]).await {
            Ok(()) => {
                if to != surety_core::agent::AgentStatus::Active {
                    let why = format!("the agent was {to}");
                    crate::approvals::cancel(state, surety_store::ApprovalScope::Agent(id), &why)
                        .await?;
                }
                return view(state, id).await;
            }
            Err(StoreError::Stale) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(
        "the agent keeps changing concurrently; try again",
    ))
}

macro_rules! lifecycle_handler {
    ($name:ident, $action:expr, $path:literal, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "agents", params(("id" = String, Path)),
            request_body(content = Reason, description = "`reason` (required to suspend or revoke)"),
            security(("dpop" = [])),
            responses(
                (status = 200, body = AgentView),
                (status = 403, body = surety_api::ErrorBody),
                (status = 404, body = surety_api::ErrorBody),
                (status = 409, description = "not allowed from the current state (`current_state`)", body = surety_api::ErrorBody),
            ))]
        pub async fn $name(
            State(state): State<AppState>,
            AdminCaller(caller): AdminCaller,
            Path(id): Path<String>,
            body: Option<Json<Reason>>,
        ) -> Result<axum::Json<AgentView>> {
            Ok(axum::Json(transition(&state, &caller, &id, $action, body.map(|b| b.0)).await?))
        }
    };
}

lifecycle_handler!(
    suspend,
    AgentAction::Suspend,
    "/v1/agents/{id}/suspend",
    "Suspends an agent: every token and decision is blocked until its owner reinstates it."
);
lifecycle_handler!(
    reinstate,
    AgentAction::Reinstate,
    "/v1/agents/{id}/reinstate",
    "Reinstates a suspended agent. Only its owner may, whatever the caller's role."
);
lifecycle_handler!(
    revoke,
    AgentAction::Revoke,
    "/v1/agents/{id}/revoke",
    "Revokes an agent for good (compromise, misbehaviour); its keys are revoked with it."
);
lifecycle_handler!(
    retire,
    AgentAction::Retire,
    "/v1/agents/{id}/retire",
    "Retires an agent for good (decommissioned); its active keys are retired with it."
);

/// The agent's keys, oldest first.
#[utoipa::path(get, path = "/v1/agents/{id}/keys", tag = "agents", params(("id" = String, Path)), security(("dpop" = [])),
    responses((status = 200, body = [KeyView]), (status = 403, body = surety_api::ErrorBody), (status = 404, body = surety_api::ErrorBody)))]
pub async fn list_keys(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<KeyView>>> {
    let id = parse("id", &id)?;
    caller.may_view_agent(&load(&state, id).await?)?;
    let keys = state.store.list_keys(PrincipalId::Agent(id)).await?;
    Ok(axum::Json(keys.iter().map(KeyView::from).collect()))
}

/// Adds a key — key rotation: by default every active key is retired in the same step.
/// A key ever registered before (even revoked) is refused.
#[utoipa::path(post, path = "/v1/agents/{id}/keys", tag = "agents", params(("id" = String, Path)), request_body = AddKey,
    security(("dpop" = [])),
    responses(
        (status = 201, body = AgentView),
        (status = 400, body = surety_api::ErrorBody),
        (status = 409, description = "key already registered, or agent revoked/retired", body = surety_api::ErrorBody),
    ))]
pub async fn add_key(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<String>,
    Json(body): Json<AddKey>,
) -> Result<(StatusCode, axum::Json<AgentView>)> {
    let id: AgentId = parse("id", &id)?;
    let jwk = public_key("public_key", &body.public_key)?;
    let retire_previous = body.retire_previous.unwrap_or(true);
    for _ in 0..3 {
        let agent = load(&state, id).await?;
        caller.may_change_agent_keys(&agent)?;
        if agent.status.is_terminal() {
            return Err(TransitionError {
                entity: "agent",
                id: id.to_string(),
                action: "add a key to",
                current: agent.status.to_string(),
            }
            .into());
        }
        let now = state.clock.now();
        let key = key_record(&jwk, PrincipalId::Agent(id), now);
        let retire: Option<Vec<String>> = if retire_previous {
            let keys = state.store.list_keys(PrincipalId::Agent(id)).await?;
            Some(
                keys.into_iter()
                    .filter(|k| k.status == KeyStatus::Active)
                    .map(|k| k.kid)
                    .collect(),
            )
        } else {
            None
        };
        let retired = retire.clone().unwrap_or_default();
        let mut events = vec![
            NewEvent::new(EventKind::AgentKeyAdded, actor(&caller), &key.kid, now)
                .agent(id)
                .human(agent.owner)
                .details(json!({"alg": key.alg, "retired": retired})),
        ];
        for kid in &retired {
            events.push(
                NewEvent::new(EventKind::AgentKeyRetired, actor(&caller), kid, now)
                    .agent(id)
                    .human(agent.owner)
                    .details(json!({"from": "active", "to": "retired", "replaced_by": key.kid})),
            );
        }
        match state
            .store
            .add_agent_key(id, &key, retire.as_deref(), &events)
            .await
        {
            Ok(()) => return Ok((StatusCode::CREATED, axum::Json(view(&state, id).await?))),
            // The agent or its keys moved since they were read: decide again.
            Err(StoreError::Stale) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::conflict(
        "the agent's keys keep changing concurrently; try again",
    ))
}

/// Revokes one key of an agent. A revoked key never returns.
#[utoipa::path(post, path = "/v1/agents/{id}/keys/{kid}/revoke", tag = "agents",
    params(("id" = String, Path), ("kid" = String, Path)), request_body(content = Reason, description = "optional"),
    security(("dpop" = [])),
    responses((status = 200, body = AgentView), (status = 404, body = surety_api::ErrorBody), (status = 409, body = surety_api::ErrorBody)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path((id, kid)): Path<(String, String)>,
    body: Option<Json<Reason>>,
) -> Result<axum::Json<AgentView>> {
    let id: AgentId = parse("id", &id)?;
    let agent = load(&state, id).await?;
    caller.may_change_agent_keys(&agent)?;
    let key = state
        .store
        .get_key(&kid)
        .await?
        .filter(|k| k.holder == PrincipalId::Agent(id))
        .ok_or_else(|| ApiError::not_found(format!("agent `{id}` has no key `{kid}`")))?;
    let reason = reason(body.map(|b| b.0))?;
    let to = key.status.apply(&kid, KeyAction::Revoke)?;
    let now = state.clock.now();
    let event = NewEvent::new(EventKind::AgentKeyRevoked, actor(&caller), &kid, now)
        .agent(id)
        .human(agent.owner)
        .details(json!({"from": key.status, "to": to, "reason": reason}));
    match state
        .store
        .change_key_status(&kid, key.status, to, now, &[event])
        .await
    {
        Ok(()) => Ok(axum::Json(view(&state, id).await?)),
        Err(StoreError::Stale) => Err(ApiError::conflict(
            "the key changed concurrently; try again",
        )),
        Err(e) => Err(e.into()),
    }
}
