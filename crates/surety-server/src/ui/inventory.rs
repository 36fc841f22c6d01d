//! The inventory pages: every agent the signed-in human may see, with what needs attention,
//! and one agent in full — keys, grants and the use of each scope, recent decisions, its
//! audit trail — with suspend, reinstate and revoke for its owner or an admin.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use surety_api::admin::Reason;
use surety_api::inventory::InventoryAgent;
use surety_core::access::Caller;
use surety_core::agent::{AgentAction, AgentStatus};
use surety_core::audit::{AuditFilter, EventKind};
use surety_core::grant::GrantStatus;
use surety_core::id::AgentId;
use surety_core::inventory::{FindingKind, findings};
use surety_core::key::KeyStatus;
use surety_core::page::PageRequest;
use surety_store::AgentFilter;

use super::{page, same_origin, session, short};
use crate::admin::parse_opt;
use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::{Json, Path};
use crate::inventory::{self as inv, Selection};

type Result<T> = std::result::Result<T, ApiError>;

/// The navigation every signed-in page shows.
pub(super) struct Nav {
    pub who: String,
    pub admin: bool,
}

impl Nav {
    pub(super) async fn of(state: &AppState, me: &Caller) -> Result<Self> {
        let who = state
            .store
            .get_human(me.id)
            .await?
            .map(|h| h.email)
            .unwrap_or_default();
        Ok(Self {
            who,
            admin: me.is_admin(),
        })
    }
}

/// The page's filters, as the form sends them (empty fields mean "any").
#[derive(Debug, Default, Deserialize)]
pub(super) struct Filters {
    #[serde(default)]
    status: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    finding: String,
}

impl Filters {
    fn selection(&self) -> Result<Selection> {
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Ok(Selection {
            owner: None,
            status: parse_opt("status", opt(&self.status).as_deref())?,
            environment: opt(&self.environment),
            finding: parse_opt("finding", opt(&self.finding).as_deref())?,
        })
    }

    fn query(&self) -> String {
        let pairs = [
            ("status", &self.status),
            ("environment", &self.environment),
            ("finding", &self.finding),
        ];
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
            q.append_pair(k, v);
        }
        q.finish()
    }
}

struct Row {
    id: String,
    name: String,
    owner: String,
    owner_gone: bool,
    status: String,
    keys: String,
    grants: usize,
    unused: String,
    last_seen: String,
    findings: Vec<String>,
}

struct Count {
    kind: &'static str,
    n: usize,
}

#[derive(Template)]
#[template(path = "inventory.html")]
struct InventoryPage {
    nav: Nav,
    rows: Vec<Row>,
    counts: Vec<Count>,
    statuses: Vec<&'static str>,
    kinds: Vec<&'static str>,
    status: String,
    environment: String,
    finding: String,
    csv: String,
    stale_days: u64,
    unused_days: u64,
}

fn row(a: &InventoryAgent, now: time::OffsetDateTime) -> Row {
    let active: Vec<_> = a
        .keys
        .iter()
        .filter(|k| k.status == KeyStatus::Active)
        .collect();
    let keys = match active
        .iter()
        .map(|k| (now - k.created_at).whole_days())
        .max()
    {
        Some(days) => format!("{} · {days} d", active.len()),
        None => "none".into(),
    };
    let live: Vec<_> = a
        .grants
        .iter()
        .filter(|g| g.grant.status == GrantStatus::Active)
        .collect();
    let scopes: usize = live.iter().map(|g| g.grant.scopes.len()).sum();
    let unused = a
        .findings
        .iter()
        .filter(|f| f.kind == FindingKind::UnusedPermission.as_str())
        .count();
    Row {
        id: a.id.to_string(),
        name: a.name.clone(),
        owner: a.owner.email.clone(),
        owner_gone: a.owner.status != surety_core::human::HumanStatus::Active,
        status: a.status.to_string(),
        keys,
        grants: live.len(),
        unused: format!("{unused} of {scopes}"),
        last_seen: a.last_seen_at.map_or_else(|| "never".into(), short),
        findings: a.findings.iter().map(|f| f.kind.clone()).collect(),
    }
}

pub(super) async fn inventory_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(filters): Query<Filters>,
) -> Result<Response> {
    let Some(me) = session(&state, &headers).await? else {
        return Ok(Redirect::to("/ui/login").into_response());
    };
    let limits = inv::configured(&state.config);
    let now = state.clock.now();
    let selection = filters.selection()?;
    // Counts are over every agent shown without the finding filter, so they stay put as
    // the user narrows the table.
    let everything = Selection {
        finding: None,
        ..selection.clone()
    };
    let all = inv::agents(&state, &me, &everything, &limits, now).await?;
    let counts = FindingKind::ALL
        .iter()
        .map(|k| Count {
            kind: k.as_str(),
            n: all
                .iter()
                .filter(|a| a.findings.iter().any(|f| f.kind == k.as_str()))
                .count(),
        })
        .collect();
    let rows = all
        .iter()
        .filter(|a| {
            selection
                .finding
                .is_none_or(|k| a.findings.iter().any(|f| f.kind == k.as_str()))
        })
        .map(|a| row(a, now))
        .collect();
    let csv = format!("/ui/inventory.csv?{}", filters.query());
    Ok(page(&InventoryPage {
        nav: Nav::of(&state, &me).await?,
        rows,
        counts,
        statuses: AgentStatus::ALL.iter().map(|s| s.as_str()).collect(),
        kinds: FindingKind::ALL.iter().map(|k| k.as_str()).collect(),
        status: filters.status,
        environment: filters.environment,
        finding: filters.finding,
        csv,
        stale_days: limits.stale_after.as_secs() / 86_400,
        unused_days: limits.unused_after.as_secs() / 86_400,
    }))
}

/// The table as CSV, with the page's filters: what `GET /v1/inventory/agents?format=csv`
/// gives, for a signed-in browser.
pub(super) async fn inventory_csv(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(filters): Query<Filters>,
) -> Result<Response> {
    let Some(me) = session(&state, &headers).await? else {
        return Err(ApiError::unauthenticated("sign in first"));
    };
    let limits = inv::configured(&state.config);
    let now = state.clock.now();
    let items = inv::agents(&state, &me, &filters.selection()?, &limits, now).await?;
    Ok(crate::admin::inventory::agents_csv_response(&items, now))
}

struct KeyRow {
    kid: String,
    alg: String,
    status: String,
    created: String,
    age_days: i64,
}

struct ScopeRow {
    scope: String,
    uses: u64,
    last_used: String,
    unused: bool,
}

struct GrantRow {
    id: String,
    principal: String,
    status: String,
    expires: String,
    scopes: Vec<ScopeRow>,
}

struct EventRow {
    time: String,
    kind: String,
    actor: String,
    summary: String,
    leaf: String,
}

struct FindingRow {
    kind: String,
    detail: String,
}

#[derive(Template)]
#[template(path = "agent.html")]
struct AgentPage {
    nav: Nav,
    a: InventoryAgent,
    created: String,
    last_seen: String,
    keys: Vec<KeyRow>,
    grants: Vec<GrantRow>,
    findings: Vec<FindingRow>,
    decisions: Vec<EventRow>,
    trail: Vec<EventRow>,
    can_suspend: bool,
    can_reinstate: bool,
    can_revoke: bool,
}

fn event_row(e: &surety_core::audit::AuditEvent) -> EventRow {
    let d = &e.event.details;
    let summary = match e.event.kind {
        EventKind::DecisionMade => format!(
            "{} {}{}",
            d["decision"].as_str().unwrap_or("?"),
            d["action"].as_str().unwrap_or("?"),
            d["reasons"]
                .as_array()
                .and_then(|r| r.first())
                .and_then(|r| r.as_str())
                .map(|r| format!(" — {r}"))
                .unwrap_or_default()
        ),
        EventKind::TokenIssued => d["scope"].as_str().unwrap_or_default().to_owned(),
        _ => d["reason"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| e.event.target.clone()),
    };
    EventRow {
        time: short(e.event.time),
        kind: e.event.kind.as_str().to_owned(),
        actor: e.event.actor.to_string(),
        summary,
        leaf: e.leaf_index.map(|i| i.to_string()).unwrap_or_default(),
    }
}

pub(super) async fn agent_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response> {
    let Some(me) = session(&state, &headers).await? else {
        return Ok(Redirect::to("/ui/login").into_response());
    };
    let id: AgentId = crate::admin::parse("id", &id)?;
    let limits = inv::configured(&state.config);
    let now = state.clock.now();
    let filter = AgentFilter {
        id: Some(id),
        ..AgentFilter::default()
    };
    let facts = state
        .store
        .agent_facts(&filter, &PageRequest::first(1), now - limits.recent)
        .await?
        .items
        .pop()
        // Another owner's agent is as absent as a missing one.
        .filter(|f| me.may_view_agent(&f.agent).is_ok())
        .ok_or_else(|| ApiError::not_found(format!("agent `{id}` not found")))?;
    let found = findings(&facts, &limits, now);
    let a = InventoryAgent::new(&facts, &found, now);
    let events = |kind| AuditFilter {
        agent: Some(id),
        kind,
        ..AuditFilter::default()
    };
    // The owner or an admin answers for everything the agent did, whoever it acted for.
    let scope = surety_core::audit::AuditScope::All;
    let decisions = state
        .store
        .list_events(
            scope,
            &events(Some(EventKind::DecisionMade)),
            &PageRequest::first(20),
        )
        .await?;
    let trail = state
        .store
        .list_events(scope, &events(None), &PageRequest::first(50))
        .await?;
    let may = |action| {
        me.may_apply(&facts.agent, action).is_ok() && facts.agent.status.apply(id, action).is_ok()
    };
    Ok(page(&AgentPage {
        nav: Nav::of(&state, &me).await?,
        created: short(a.created_at),
        last_seen: a.last_seen_at.map_or_else(|| "never".into(), short),
        keys: a
            .keys
            .iter()
            .map(|k| KeyRow {
                kid: k.kid.clone(),
                alg: k.alg.clone(),
                status: k.status.to_string(),
                created: short(k.created_at),
                age_days: (now - k.created_at).whole_days(),
            })
            .collect(),
        grants: a
            .grants
            .iter()
            .map(|g| GrantRow {
                id: g.grant.id.to_string(),
                principal: g.grant.principal.to_string(),
                status: g.grant.status.to_string(),
                expires: short(g.grant.expires_at),
                scopes: g
                    .usage
                    .iter()
                    .map(|u| ScopeRow {
                        unused: found.iter().any(|f| {
                            f.subject.as_deref() == Some(&format!("{} {}", g.grant.id, u.scope))
                        }),
                        scope: u.scope.clone(),
                        uses: u.uses,
                        last_used: u.last_used_at.map_or_else(|| "never".into(), short),
                    })
                    .collect(),
            })
            .collect(),
        findings: a
            .findings
            .iter()
            .map(|f| FindingRow {
                kind: f.kind.clone(),
                detail: f.detail.clone(),
            })
            .collect(),
        decisions: decisions.items.iter().map(event_row).collect(),
        trail: trail.items.iter().map(event_row).collect(),
        can_suspend: may(AgentAction::Suspend),
        can_reinstate: may(AgentAction::Reinstate),
        can_revoke: may(AgentAction::Revoke),
        a,
    }))
}

/// `POST /ui/api/agents/{id}/{suspend|reinstate|revoke}` with `{"reason": …}`: the same
/// rules and audit event as the admin API, for the signed-in owner or an admin.
pub(super) async fn agent_action(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Json(body): Json<Reason>,
) -> Result<axum::Json<serde_json::Value>> {
    same_origin(&state, &headers)?;
    let Some(me) = session(&state, &headers).await? else {
        return Err(ApiError::unauthenticated("sign in first"));
    };
    let action = match action.as_str() {
        "suspend" => AgentAction::Suspend,
        "reinstate" => AgentAction::Reinstate,
        "revoke" => AgentAction::Revoke,
        other => {
            return Err(ApiError::not_found(format!("no action `{other}` here")));
        }
    };
    // Another owner's agent is as absent here as on its page.
    let agent_id: AgentId = crate::admin::parse("id", &id)?;
    let visible = state
        .store
        .get_agent(agent_id)
        .await?
        .is_some_and(|a| me.may_view_agent(&a).is_ok());
    if !visible {
        return Err(ApiError::not_found(format!("agent `{agent_id}` not found")));
    }
    let view = crate::admin::agents::transition(&state, &me, &id, action, Some(body)).await?;
    Ok(axum::Json(serde_json::json!({"status": view.status})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_filters_select_everything_and_name_no_query() {
        let f = Filters::default();
        let s = f.selection().unwrap();
        assert!(s.status.is_none() && s.finding.is_none() && s.environment.is_none());
        assert_eq!(f.query(), "");
    }

    #[test]
    fn filters_are_parsed_and_carried_to_the_export() {
        let f = Filters {
            status: "suspended".into(),
            environment: "prod & co".into(),
            finding: "orphaned".into(),
        };
        let s = f.selection().unwrap();
        assert_eq!(s.status, Some(AgentStatus::Suspended));
        assert_eq!(s.finding, Some(FindingKind::Orphaned));
        assert_eq!(
            f.query(),
            "status=suspended&environment=prod+%26+co&finding=orphaned"
        );
        let bad = Filters {
            finding: "nope".into(),
            ..Filters::default()
        };
        assert!(bad.selection().is_err());
    }
}
