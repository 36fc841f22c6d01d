//! `/v1/grants`: delegations. A human delegates their own authority (`active` at once); an
//! admin or the agent's owner may propose a grant for another principal (`proposed`), which
//! only that principal can accept or decline. The principal, the agent's owner and admins
//! may revoke. Revoking a grant makes every token minted from it inactive at once.

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use surety_api::admin::{ListResponse, Reason};
use surety_api::credentials::{CreateGrant, GrantQuery, GrantView};
use surety_core::access::Caller;
use surety_core::audit::{EventKind, NewEvent};
use surety_core::grant::{Grant, GrantAction, GrantStatus, GrantTerms, NewGrant};
use surety_core::id::{GrantId, HumanId};
use surety_store::{GrantFilter, GrantStatusChange};
use time::Duration;

use super::{actor, page, parse, parse_opt, reason};
use crate::app::AppState;
use crate::auth::{AdminCaller, to_time};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};

type Result<T> = std::result::Result<T, ApiError>;

async fn load(state: &AppState, id: GrantId) -> Result<Grant> {
    state
        .store
        .get_grant(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("grant `{id}` not found")))
}

async fn agent_owner(state: &AppState, grant: &Grant) -> Result<HumanId> {
    Ok(state
        .store
        .get_agent(grant.agent)
        .await?
        .ok_or_else(|| ApiError::internal(format!("grant `{}` names a missing agent", grant.id)))?
        .owner)
}

/// Delegates authority to an agent, or proposes a delegation for another principal.
#[utoipa::path(post, path = "/v1/grants", tag = "grants", request_body = CreateGrant, security(("dpop" = [])),
    responses(
        (status = 201, description = "`active` when the caller is the principal, `proposed` otherwise", body = GrantView),
        (status = 400, description = "a malformed field, named in the description", body = surety_api::ErrorBody),
        (status = 403, body = surety_api::ErrorBody),
        (status = 404, description = "unknown agent or principal", body = surety_api::ErrorBody),
        (status = 409, description = "the agent or principal is not active", body = surety_api::ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Json(body): Json<CreateGrant>,
) -> Result<(StatusCode, axum::Json<GrantView>)> {
    let now = state.clock.now();
    let principal = body.principal.unwrap_or(caller.id);
    let agent = state
        .store
        .get_agent(body.agent)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("agent `{}` not found", body.agent)))?;
    caller.may_create_grant(principal, agent.owner)?;
    let expires_at = match (body.expires_at, body.expires_in) {
        (Some(at), None) => at,
        (None, Some(secs)) => {
            let secs = i64::try_from(secs)
                .unwrap_or(i64::MAX)
                .min(i64::from(u32::MAX));
            now + Duration::seconds(secs)
        }
        _ => {
            return Err(ApiError::invalid_request(
                "`expires_at` or `expires_in` is required (exactly one): every grant ends",
            ));
        }
    };
    let terms = GrantTerms {
        agent: agent.id,
        principal,
        scopes: &body.scopes,
        resources: &body.resources,
        constraints: body.constraints.as_ref(),
        max_delegation_depth: body.max_delegation_depth,
        expires_at,
    };
    let new = NewGrant::parse(&terms, now, to_time(state.config.grant_max_lifetime))?;
    // Whoever must approve step-ups under it exists and can answer.
    let (approvers, _) = surety_core::approval::quorum(principal, &new.constraints)?;
    for h in approvers {
        let active = state
            .store
            .get_human(h)
            .await?
            .is_some_and(|h| h.status == surety_core::human::HumanStatus::Active);
        if !active {
            return Err(ApiError::invalid_request(format!(
                "`constraints.approvers`: `{h}` is not an active human"
            )));
        }
    }
    let grant = new.into_grant(GrantId::new(now), caller.id, now);
    let event = NewEvent::new(EventKind::GrantCreated, actor(&caller), grant.id, now)
        .agent(grant.agent)
        .human(grant.principal)
        .details(json!({
            "status": grant.status,
            "principal": grant.principal,
            "scopes": grant.scopes.to_vec(),
            "resources": grant.resources,
            "constraints": grant.constraints,
            "max_delegation_depth": grant.max_delegation_depth,
            "expires_at": grant.expires_at.unix_timestamp(),
        }));
    state.store.create_grant(&grant, &[event]).await?;
    Ok((StatusCode::CREATED, axum::Json(GrantView::at(&grant, now))))
}

/// Lists grants: admins see all; members see grants they are principal of or that are for
/// agents they own.
#[utoipa::path(get, path = "/v1/grants", tag = "grants", params(GrantQuery), security(("dpop" = [])),
    responses((status = 200, body = ListResponse<GrantView>), (status = 400, body = surety_api::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Query(q): Query<GrantQuery>,
) -> Result<axum::Json<ListResponse<GrantView>>> {
    let now = state.clock.now();
    let status: Option<GrantStatus> = parse_opt("status", q.status.as_deref())?;
    let filter = GrantFilter {
        agent: parse_opt("agent", q.agent.as_deref())?,
        principal: parse_opt("principal", q.principal.as_deref())?,
        status: status.map(|s| (s, now)),
        visible_to: (!caller.is_admin()).then_some(caller.id),
    };
    let page = state
        .store
        .list_grants(&filter, &page(q.limit, q.cursor)?)
        .await?;
    Ok(axum::Json(ListResponse {
        items: page.items.iter().map(|g| GrantView::at(g, now)).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One grant.
#[utoipa::path(get, path = "/v1/grants/{id}", tag = "grants", params(("id" = String, Path)), security(("dpop" = [])),
    responses((status = 200, body = GrantView), (status = 403, body = surety_api::ErrorBody), (status = 404, body = surety_api::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<String>,
) -> Result<axum::Json<GrantView>> {
    let grant = load(&state, parse("id", &id)?).await?;
    grant.may_manage(&caller, agent_owner(&state, &grant).await?)?;
    Ok(axum::Json(GrantView::at(&grant, state.clock.now())))
}

async fn transition(
    state: &AppState,
    caller: &Caller,
    id: &str,
    action: GrantAction,
    reason: Option<String>,
) -> Result<axum::Json<GrantView>> {
    let now = state.clock.now();
    let grant = load(state, parse("id", id)?).await?;
    let owner = agent_owner(state, &grant).await?;
    grant.may_manage(caller, owner)?;
    let to = grant.decide(caller, owner, action, now)?;
    let kind = match action {
        GrantAction::Accept => EventKind::GrantAccepted,
        GrantAction::Decline => EventKind::GrantDeclined,
        GrantAction::Revoke => EventKind::GrantRevoked,
    };
    let event = NewEvent::new(kind, actor(caller), grant.id, now)
        .agent(grant.agent)
        .human(grant.principal)
        .details(json!({"from": grant.status, "to": to, "reason": reason}));
    state
        .store
        .change_grant_status(
            &GrantStatusChange {
                id: grant.id,
                from: grant.status,
                to,
                reason,
                at: now,
            },
            &[event],
        )
        .await?;
    if to == GrantStatus::Revoked {
        let scope = surety_store::ApprovalScope::Grant(grant.id);
        crate::approvals::cancel(state, scope, "the grant was revoked").await?;
    }
    Ok(axum::Json(GrantView::at(
        &load(state, grant.id).await?,
        now,
    )))
}

/// Accepts a proposed grant (the principal only).
#[utoipa::path(post, path = "/v1/grants/{id}/accept", tag = "grants", params(("id" = String, Path)), security(("dpop" = [])),
    responses((status = 200, body = GrantView), (status = 403, body = surety_api::ErrorBody), (status = 404, body = surety_api::ErrorBody),
        (status = 409, description = "not proposed (the body carries `current_state`), expired, or the agent/principal is not active", body = surety_api::ErrorBody)))]
pub async fn accept(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<String>,
) -> Result<axum::Json<GrantView>> {
    transition(&state, &caller, &id, GrantAction::Accept, None).await
}

/// Declines a proposed grant (the principal only).
#[utoipa::path(post, path = "/v1/grants/{id}/decline", tag = "grants", params(("id" = String, Path)), request_body(content = Reason, description = "optional"), security(("dpop" = [])),
    responses((status = 200, body = GrantView), (status = 403, body = surety_api::ErrorBody), (status = 404, body = surety_api::ErrorBody), (status = 409, body = surety_api::ErrorBody)))]
pub async fn decline(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<String>,
    body: Option<Json<Reason>>,
) -> Result<axum::Json<GrantView>> {
    let reason = reason(body.map(|Json(b)| b))?;
    transition(&state, &caller, &id, GrantAction::Decline, reason).await
}

/// Revokes a grant (its principal, the agent's owner, or an admin). Every token minted from
/// it is inactive from the next introspection on.
#[utoipa::path(post, path = "/v1/grants/{id}/revoke", tag = "grants", params(("id" = String, Path)), request_body(content = Reason, description = "optional"), security(("dpop" = [])),
    responses((status = 200, body = GrantView), (status = 403, body = surety_api::ErrorBody), (status = 404, body = surety_api::ErrorBody), (status = 409, body = surety_api::ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<String>,
    body: Option<Json<Reason>>,
) -> Result<axum::Json<GrantView>> {
    let reason = reason(body.map(|Json(b)| b))?;
    transition(&state, &caller, &id, GrantAction::Revoke, reason).await
}
