//! `GET /v1/audit`: the audit log, newest first, filtered and keyset-paginated. Members
//! see the events they caused or that concern them and their agents.

use axum::extract::State;
use surety_api::admin::{AuditEventView, AuditQuery, ListResponse};
use surety_core::audit::AuditFilter;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{page, parse, parse_opt};
use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::error::ApiError;
use crate::extract::Query;

fn time_param(field: &str, raw: Option<&str>) -> Result<Option<OffsetDateTime>, ApiError> {
    raw.map(|r| {
        OffsetDateTime::parse(r, &Rfc3339).map_err(|_| {
            ApiError::invalid_request(format!("`{field}`: `{r}` is not an RFC 3339 time"))
        })
    })
    .transpose()
}

/// Lists audit events.
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditQuery), security(("dpop" = [])),
    responses((status = 200, body = ListResponse<AuditEventView>), (status = 400, body = surety_api::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Query(q): Query<AuditQuery>,
) -> Result<axum::Json<ListResponse<AuditEventView>>, ApiError> {
    let filter = AuditFilter {
        agent: parse_opt("agent", q.agent.as_deref())?,
        human: parse_opt("human", q.human.as_deref())?,
        target: q.target.clone(),
        kind: parse_opt("type", q.kind.as_deref())?,
        since: time_param("since", q.since.as_deref())?,
        until: time_param("until", q.until.as_deref())?,
    };
    if let Some(c) = &q.cursor {
        parse::<u64>("cursor", c)?;
    }
    let page = state
        .store
        .list_events(caller.audit_scope(), &filter, &page(q.limit, q.cursor)?)
        .await?;
    Ok(axum::Json(ListResponse::from(&page)))
}
