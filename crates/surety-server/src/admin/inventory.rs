//! `/v1/inventory/…`: every agent with its owner, keys, grants, scope use and activity, and
//! the report of what needs attention — as JSON, or as CSV for a spreadsheet.

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use surety_api::inventory::{
    InventoryAgent, InventoryQuery, InventoryResponse, ReportResponse, ThresholdsView,
};
use surety_core::grant::GrantStatus;
use surety_core::key::KeyStatus;
use time::format_description::well_known::Rfc3339;

use super::parse_opt;
use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::csv::record;
use crate::error::ApiError;
use crate::extract::Query;
use crate::inventory::{self, Selection};

type Result<T> = std::result::Result<T, ApiError>;

fn wants_csv(q: &InventoryQuery, headers: &HeaderMap) -> Result<bool> {
    match q.format.as_deref() {
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        Some(other) => Err(ApiError::invalid_request(format!(
            "`format`: `{other}` is neither `json` nor `csv`"
        ))),
        None => Ok(headers
            .get(header::ACCEPT)
            .and_then(|a| a.to_str().ok())
            .is_some_and(|a| a.split(',').any(|t| t.trim().starts_with("text/csv")))),
    }
}

fn selection(q: &InventoryQuery) -> Result<Selection> {
    Ok(Selection {
        owner: parse_opt("owner", q.owner.as_deref())?,
        status: parse_opt("status", q.status.as_deref())?,
        environment: q.environment.clone(),
        finding: parse_opt("finding", q.finding.as_deref())?,
    })
}

fn limits(state: &AppState, q: &InventoryQuery) -> Result<surety_core::inventory::Thresholds> {
    inventory::thresholds(
        &state.config,
        [
            ("stale_after", q.stale_after.as_deref()),
            ("key_max_age", q.key_max_age.as_deref()),
            ("unused_after", q.unused_after.as_deref()),
            ("expiring_within", q.expiring_within.as_deref()),
            ("recent", q.recent.as_deref()),
        ],
    )
}

/// What a request asks: CSV or JSON, under which thresholds, about which agents.
struct Asked {
    csv: bool,
    limits: surety_core::inventory::Thresholds,
    selection: Selection,
}

fn asked(state: &AppState, q: &InventoryQuery, headers: &HeaderMap) -> Result<Asked> {
    Ok(Asked {
        csv: wants_csv(q, headers)?,
        limits: limits(state, q)?,
        selection: selection(q)?,
    })
}

fn time(t: Option<time::OffsetDateTime>) -> String {
    t.and_then(|t| t.format(&Rfc3339).ok()).unwrap_or_default()
}

fn csv(name: &str, body: String) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                "text/csv; charset=utf-8; header=present".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.csv\""),
            ),
        ],
        body,
    )
        .into_response()
}

fn agents_csv(items: &[InventoryAgent], now: time::OffsetDateTime) -> String {
    let mut out = record([
        "agent_id",
        "name",
        "environment",
        "status",
        "owner_email",
        "owner_status",
        "active_keys",
        "oldest_active_key_days",
        "active_grants",
        "scopes",
        "unused_scopes",
        "last_seen_at",
        "recent_denied",
        "findings",
    ]);
    for a in items {
        let active_keys: Vec<_> = a
            .keys
            .iter()
            .filter(|k| k.status == KeyStatus::Active)
            .collect();
        let oldest = active_keys
            .iter()
            .map(|k| (now - k.created_at).whole_days())
            .max()
            .map(|d| d.to_string())
            .unwrap_or_default();
        let live: Vec<_> = a
            .grants
            .iter()
            .filter(|g| g.grant.status == GrantStatus::Active)
            .collect();
        let scopes: Vec<&str> = live
            .iter()
            .flat_map(|g| g.grant.scopes.iter().map(String::as_str))
            .collect();
        let unused: Vec<&str> = a
            .findings
            .iter()
            .filter(|f| f.kind == "unused_permission")
            .filter_map(|f| f.subject.as_deref()?.split(' ').nth(1))
            .collect();
        let kinds: Vec<&str> = a.findings.iter().map(|f| f.kind.as_str()).collect();
        out.push_str(&record([
            a.id.to_string(),
            a.name.clone(),
            a.environment.clone(),
            a.status.as_str().to_owned(),
            a.owner.email.clone(),
            a.owner.status.as_str().to_owned(),
            active_keys.len().to_string(),
            oldest,
            live.len().to_string(),
            scopes.join(" "),
            unused.join(" "),
            time(a.last_seen_at),
            a.recent.denied.to_string(),
            kinds.join(" "),
        ]));
    }
    out
}

/// The inventory as a CSV download, one line per agent.
pub(crate) fn agents_csv_response(items: &[InventoryAgent], now: time::OffsetDateTime) -> Response {
    csv("inventory", agents_csv(items, now))
}

fn report_csv(report: &ReportResponse) -> String {
    let mut out = record([
        "kind",
        "agent_id",
        "agent_name",
        "owner_email",
        "subject",
        "since",
        "detail",
    ]);
    for line in &report.items {
        let f = &line.finding;
        out.push_str(&record([
            f.kind.clone(),
            line.agent.to_string(),
            line.agent_name.clone(),
            line.owner_email.clone(),
            f.subject.clone().unwrap_or_default(),
            time(f.since),
            f.detail.clone(),
        ]));
    }
    out
}

/// Every agent the caller may see (members: their own), with owner, keys (and their age),
/// grants with the use of each scope, recent activity and findings. `?format=csv` (or
/// `Accept: text/csv`) gives one line per agent.
#[utoipa::path(get, path = "/v1/inventory/agents", tag = "inventory", params(InventoryQuery), security(("dpop" = [])),
    responses(
        (status = 200, body = InventoryResponse, description = "JSON, or CSV with `format=csv`"),
        (status = 400, description = "a malformed filter or threshold, named in the description", body = surety_api::ErrorBody),
        (status = 403, description = "a member asked for another owner's agents", body = surety_api::ErrorBody),
    ))]
pub async fn agents(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    headers: HeaderMap,
    Query(q): Query<InventoryQuery>,
) -> Result<Response> {
    let a = asked(&state, &q, &headers)?;
    let now = state.clock.now();
    let items = inventory::agents(&state, &caller, &a.selection, &a.limits, now).await?;
    if a.csv {
        return Ok(agents_csv_response(&items, now));
    }
    Ok(axum::Json(InventoryResponse {
        generated_at: now,
        thresholds: ThresholdsView::from(&a.limits),
        items,
    })
    .into_response())
}

/// What needs attention among the agents the caller may see: orphaned agents, agents with no
/// grant, stale agents and keys, unused permissions, expiring grants, recent denials and
/// suspensions — each with what to do. `?format=csv` gives one line per finding.
#[utoipa::path(get, path = "/v1/inventory/report", tag = "inventory", params(InventoryQuery), security(("dpop" = [])),
    responses(
        (status = 200, body = ReportResponse, description = "JSON, or CSV with `format=csv`"),
        (status = 400, description = "a malformed filter or threshold, named in the description", body = surety_api::ErrorBody),
        (status = 403, description = "a member asked for another owner's agents", body = surety_api::ErrorBody),
    ))]
pub async fn report(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    headers: HeaderMap,
    Query(q): Query<InventoryQuery>,
) -> Result<Response> {
    let a = asked(&state, &q, &headers)?;
    let now = state.clock.now();
    let report = inventory::report(&state, &caller, &a.selection, &a.limits, now).await?;
    if a.csv {
        return Ok(csv("inventory-report", report_csv(&report)));
    }
    Ok(axum::Json(report).into_response())
}
