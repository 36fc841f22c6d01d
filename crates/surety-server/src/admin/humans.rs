//! `/v1/humans`, `/v1/me`: registering humans, off-boarding, device keys.

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use surety_api::admin::{
    CreateHuman, CreatedHuman, EnrollmentCode, HumanQuery, HumanView, ListResponse, Reason,
};
use surety_core::access::Caller;
use surety_core::agent::{Agent, OWNER_DEACTIVATED};
use surety_core::audit::{Actor, EventKind, NewEvent};
use surety_core::human::{Human, HumanAction, HumanStatus, NewHuman, Role};
use surety_core::id::{HumanId, PrincipalId};
use surety_core::key::{KeyAction, KeyStatus};
use surety_jose::{random_b64, sha256_b64};
use surety_store::{Enrollment, HumanFilter, HumanStatusChange, StoreError};

use super::{actor, page, parse, parse_opt, reason};
use crate::app::AppState;
use crate::auth::{AdminCaller, to_time};
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};

type Result<T> = std::result::Result<T, ApiError>;

/// A fresh one-time code; only its hash is stored.
pub(crate) fn new_enrollment(
    state: &AppState,
    human: HumanId,
) -> Result<(EnrollmentCode, Enrollment)> {
    let now = state.clock.now();
    let code = random_b64(16).map_err(ApiError::internal)?;
    let expires_at = now + to_time(state.config.enrollment_code_ttl);
    let stored = Enrollment {
        code_hash: sha256_b64(code.as_bytes()),
        human,
        created_at: now,
        expires_at,
    };
    Ok((EnrollmentCode { code, expires_at }, stored))
}

pub(crate) async fn load_human(state: &AppState, id: HumanId) -> Result<Human> {
    state
        .store
        .get_human(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("human `{id}` not found")))
}

async fn view_with_keys(state: &AppState, human: &Human) -> Result<HumanView> {
    let keys = state.store.list_keys(PrincipalId::Human(human.id)).await?;
    Ok(HumanView::from(human).with_keys(&keys))
}

/// Registers a human and returns their first enrollment code (admins only).
#[utoipa::path(post, path = "/v1/humans", tag = "humans", request_body = CreateHuman,
    security(("dpop" = [])),
    responses(
        (status = 201, body = CreatedHuman),
        (status = 400, body = surety_api::ErrorBody), (status = 403, body = surety_api::ErrorBody),
        (status = 409, description = "e-mail already registered", body = surety_api::ErrorBody),
    ))]
pub async fn create(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Json(body): Json<CreateHuman>,
) -> Result<(StatusCode, axum::Json<CreatedHuman>)> {
    caller.require_admin("add humans")?;
    let new = NewHuman::parse(
        &body.display_name,
        &body.email,
        body.role.unwrap_or(Role::Member),
    )?;
    let now = state.clock.now();
    let human = new.into_human(HumanId::new(now), now);
    let (code, enrollment) = new_enrollment(&state, human.id)?;
    let events = [
        NewEvent::new(EventKind::HumanCreated, actor(&caller), human.id, now)
            .human(human.id)
            .details(json!({"email": human.email, "role": human.role, "display_name": human.display_name})),
        NewEvent::new(EventKind::HumanEnrollmentCodeIssued, actor(&caller), human.id, now)
            .human(human.id)
            .details(json!({"expires_at": code.expires_at.unix_timestamp()})),
    ];
    state
        .store
        .create_human(&human, Some(&enrollment), &events)
        .await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedHuman {
            human: HumanView::from(&human),
            enrollment: code,
        }),
    ))
}

/// Lists humans (admins only).
#[utoipa::path(get, path = "/v1/humans", tag = "humans", params(HumanQuery),
    security(("dpop" = [])),
    responses((status = 200, body = ListResponse<HumanView>), (status = 403, body = surety_api::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Query(q): Query<HumanQuery>,
) -> Result<axum::Json<ListResponse<HumanView>>> {
    caller.require_admin("list humans")?;
    let filter = HumanFilter {
        status: parse_opt("status", q.status.as_deref())?,
        role: parse_opt("role", q.role.as_deref())?,
    };
    if let Some(c) = &q.cursor {
        parse::<HumanId>("cursor", c)?;
    }
    let page = state
        .store
        .list_humans(&filter, &page(q.limit, q.cursor)?)
        .await?;
    Ok(axum::Json(ListResponse::from(&page)))
}

/// One human with their device keys (admins, or the human themselves).
#[utoipa::path(get, path = "/v1/humans/{id}", tag = "humans",
    params(("id" = String, Path, description = "`hum_…`")), security(("dpop" = [])),
    responses((status = 200, body = HumanView), (status = 403, body = surety_api::ErrorBody), (status = 404, body = surety_api::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<String>,
) -> Result<axum::Json<HumanView>> {
    let id: HumanId = parse("id", &id)?;
    caller.may_view_human(id)?;
    let human = load_human(&state, id).await?;
    Ok(axum::Json(view_with_keys(&state, &human).await?))
}

/// The caller.
#[utoipa::path(get, path = "/v1/me", tag = "humans", security(("dpop" = [])),
    responses((status = 200, body = HumanView), (status = 401, body = surety_api::ErrorBody)))]
pub async fn me(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<axum::Json<HumanView>> {
    let human = load_human(&state, caller.id).await?;
    Ok(axum::Json(view_with_keys(&state, &human).await?))
}

async fn transition(
    state: &AppState,
    caller: &Caller,
    id: &str,
    action: HumanAction,
    body: Option<Json<Reason>>,
) -> Result<axum::Json<HumanView>> {
    caller.require_admin(&format!("{action} humans"))?;
    let id: HumanId = parse("id", id)?;
    let reason = reason(body.map(|b| b.0))?;
    // Decided on the state read; applied only if it is still that state (else decided again).
    for _ in 0..3 {
        let human = load_human(state, id).await?;
        let to = human.status.apply(id, action)?;
        let now = state.clock.now();
        let kind = match action {
            HumanAction::Deactivate => EventKind::HumanDeactivated,
            HumanAction::Reactivate => EventKind::HumanReactivated,
        };
        let event = NewEvent::new(kind, actor(caller), id, now)
            .human(id)
            .details(json!({"from": human.status, "to": to, "reason": reason}));
        let cause = event.id.to_string();
        let cascade = move |agent: &Agent| {
            NewEvent::new(EventKind::AgentSuspended, Actor::System, agent.id, now)
                .agent(agent.id)
                .human(agent.owner)
                .details(json!({"from": "active", "to": "suspended", "reason": OWNER_DEACTIVATED, "cause": cause}))
        };
        let change = HumanStatusChange {
            id,
            from: human.status,
            to,
            at: now,
        };
        match state
            .store
            .change_human_status(&change, &[event], &cascade)
            .await
        {
            Ok(suspended) => {
                if !suspended.is_empty() {
                    tracing::info!(human = %id, agents = suspended.len(), "owner deactivated: agents suspended");
                }
                if to == HumanStatus::Deactivated {
                    // Reactivation must not bring old web sessions back.
                    state.store.end_ui_sessions_of(id).await?;
                    let scope = surety_store::ApprovalScope::Human(id);
                    crate::approvals::cancel(
                        state,
                        scope,
                        "the principal or the agent's owner was deactivated",
                    )
                    .await?;
                }
                return Ok(axum::Json(HumanView::from(&load_human(state, id).await?)));
            }
            Err(StoreError::Stale) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(ApiError::conflict(
        "the human keeps changing concurrently; try again",
    ))
}

/// Deactivates (off-boards) a human: every active agent they own is suspended in the same
/// transaction, each with its own audit event. The last active admin cannot be deactivated.
#[utoipa::path(post, path = "/v1/humans/{id}/deactivate", tag = "humans", request_body(content = Reason, description = "optional"),
    params(("id" = String, Path)), security(("dpop" = [])),
    responses((status = 200, body = HumanView), (status = 409, description = "not allowed from the current state", body = surety_api::ErrorBody)))]
pub async fn deactivate(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<String>,
    body: Option<Json<Reason>>,
) -> Result<axum::Json<HumanView>> {
    transition(&state, &caller, &id, HumanAction::Deactivate, body).await
}

/// Reactivates a human. Their agents stay suspended until the owner reinstates each.
#[utoipa::path(post, path = "/v1/humans/{id}/reactivate", tag = "humans",
    params(("id" = String, Path)), security(("dpop" = [])),
    responses((status = 200, body = HumanView), (status = 409, body = surety_api::ErrorBody)))]
pub async fn reactivate(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<String>,
    body: Option<Json<Reason>>,
) -> Result<axum::Json<HumanView>> {
    transition(&state, &caller, &id, HumanAction::Reactivate, body).await
}

/// Issues a new one-time enrollment code (a new device, a lost one); older unused codes
/// stop working (admins only).
#[utoipa::path(post, path = "/v1/humans/{id}/enrollment-codes", tag = "humans",
    params(("id" = String, Path)), security(("dpop" = [])),
    responses((status = 201, body = EnrollmentCode), (status = 409, body = surety_api::ErrorBody)))]
pub async fn enrollment_code(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<String>,
) -> Result<(StatusCode, axum::Json<EnrollmentCode>)> {
    caller.require_admin("issue enrollment codes")?;
    let id: HumanId = parse("id", &id)?;
    let human = load_human(&state, id).await?;
    if human.status != surety_core::human::HumanStatus::Active {
        return Err(ApiError::conflict(format!(
            "human `{id}` is {}",
            human.status
        )));
    }
    let (code, enrollment) = new_enrollment(&state, id)?;
    let event = NewEvent::new(
        EventKind::HumanEnrollmentCodeIssued,
        actor(&caller),
        id,
        state.clock.now(),
    )
    .human(id)
    .details(json!({"expires_at": code.expires_at.unix_timestamp()}));
    state.store.issue_enrollment(&enrollment, &[event]).await?;
    Ok((StatusCode::CREATED, axum::Json(code)))
}

/// Issues a one-time link to register a passkey for the web UI (admins, or the human
/// themselves); older unused links stop working. The code travels in the URL's fragment, so
/// it never reaches a server log.
#[utoipa::path(post, path = "/v1/humans/{id}/invite", tag = "humans",
    params(("id" = String, Path)), security(("dpop" = [])),
    responses((status = 201, body = surety_api::approvals::InviteView), (status = 403, body = surety_api::ErrorBody), (status = 409, body = surety_api::ErrorBody)))]
pub async fn invite(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<String>,
) -> Result<(StatusCode, axum::Json<surety_api::approvals::InviteView>)> {
    let id: HumanId = parse("id", &id)?;
    if !caller.is_admin() && caller.id != id {
        return Err(ApiError::forbidden(
            "only admins may invite someone else to register a passkey",
        ));
    }
    let human = load_human(&state, id).await?;
    if human.status != surety_core::human::HumanStatus::Active {
        return Err(ApiError::conflict(format!(
            "human `{id}` is {}",
            human.status
        )));
    }
    let (code, invite) = new_enrollment(&state, id)?;
    let event = NewEvent::new(
        EventKind::HumanInvited,
        actor(&caller),
        id,
        state.clock.now(),
    )
    .human(id)
    .details(json!({"expires_at": code.expires_at.unix_timestamp()}));
    state.store.issue_invite(&invite, &[event]).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(surety_api::approvals::InviteView {
            url: format!("{}/ui/enroll#{}", state.issuer, code.code),
            expires_at: code.expires_at,
        }),
    ))
}

fn passkey_view(r: &surety_store::PasskeyRecord) -> surety_api::approvals::PasskeyView {
    surety_api::approvals::PasskeyView {
        credential_id: r.cred_id.clone(),
        public_key: serde_json::from_value::<webauthn_rs::prelude::Passkey>(r.passkey.clone())
            .ok()
            .and_then(|p| serde_json::to_value(p.get_public_key()).ok())
            .unwrap_or_default(),
        created_at: r.created_at,
        last_used_at: r.last_used_at,
    }
}

/// A human's passkeys (admins, or the human themselves).
#[utoipa::path(get, path = "/v1/humans/{id}/passkeys", tag = "humans",
    params(("id" = String, Path)), security(("dpop" = [])),
    responses((status = 200, body = Vec<surety_api::approvals::PasskeyView>), (status = 403, body = surety_api::ErrorBody)))]
pub async fn passkeys(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<String>,
) -> Result<axum::Json<Vec<surety_api::approvals::PasskeyView>>> {
    let id: HumanId = parse("id", &id)?;
    caller.may_revoke_device_key(id)?;
    let list = state.store.list_passkeys(id).await?;
    Ok(axum::Json(list.iter().map(passkey_view).collect()))
}

/// Revokes a passkey (admins, or the human themselves); every web session of the human ends.
/// Answers with the passkeys that remain.
#[utoipa::path(post, path = "/v1/humans/{id}/passkeys/{credential_id}/revoke", tag = "humans",
    params(("id" = String, Path), ("credential_id" = String, Path)), security(("dpop" = [])),
    responses((status = 200, body = Vec<surety_api::approvals::PasskeyView>), (status = 403, body = surety_api::ErrorBody), (status = 404, body = surety_api::ErrorBody)))]
pub async fn revoke_passkey(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path((id, credential)): Path<(String, String)>,
) -> Result<axum::Json<Vec<surety_api::approvals::PasskeyView>>> {
    let id: HumanId = parse("id", &id)?;
    caller.may_revoke_device_key(id)?;
    let event = NewEvent::new(
        EventKind::HumanPasskeyRevoked,
        actor(&caller),
        id,
        state.clock.now(),
    )
    .human(id)
    .details(json!({"credential_id": credential}));
    state
        .store
        .revoke_passkey(id, &credential, &[event])
        .await?;
    let left = state.store.list_passkeys(id).await?;
    Ok(axum::Json(left.iter().map(passkey_view).collect()))
}

/// Revokes a device key (admins, or the human themselves). A revoked key never returns.
#[utoipa::path(post, path = "/v1/humans/{id}/keys/{kid}/revoke", tag = "humans",
    params(("id" = String, Path), ("kid" = String, Path)), security(("dpop" = [])),
    responses((status = 200, body = HumanView), (status = 404, body = surety_api::ErrorBody), (status = 409, body = surety_api::ErrorBody)))]
pub async fn revoke_key(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path((id, kid)): Path<(String, String)>,
) -> Result<axum::Json<HumanView>> {
    let id: HumanId = parse("id", &id)?;
    caller.may_revoke_device_key(id)?;
    let key = state
        .store
        .get_key(&kid)
        .await?
        .filter(|k| k.holder == PrincipalId::Human(id))
        .ok_or_else(|| ApiError::not_found(format!("human `{id}` has no key `{kid}`")))?;
    let to = key.status.apply(&kid, KeyAction::Revoke)?;
    let now = state.clock.now();
    let event = NewEvent::new(EventKind::HumanKeyRevoked, actor(&caller), &kid, now)
        .human(id)
        .details(json!({"from": key.status, "to": to}));
    match state
        .store
        .change_key_status(&kid, key.status, KeyStatus::Revoked, now, &[event])
        .await
    {
        Ok(()) => {}
        Err(StoreError::Stale) => {
            let current = state
                .store
                .get_key(&kid)
                .await?
                .map(|k| k.status.to_string())
                .unwrap_or_default();
            return Err(ApiError::transition(&surety_core::TransitionError {
                entity: "key",
                id: kid,
                action: "revoke",
                current,
            }));
        }
        Err(e) => return Err(e.into()),
    }
    let human = load_human(&state, id).await?;
    Ok(axum::Json(view_with_keys(&state, &human).await?))
}
