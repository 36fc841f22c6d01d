//! The audit search page: the events the signed-in human may read, filtered, with the state
//! of the log's signed checkpoints — checked again against the stored tree on every view.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use surety_core::audit::AuditFilter;

use super::inventory::Nav;
use super::{page, session, short};
use crate::admin::audit::{b64, checkpoint_status, time_param};
use crate::admin::{parse, parse_opt};
use crate::app::AppState;
use crate::error::ApiError;

/// The search form (empty fields mean "any").
#[derive(Debug, Default, Deserialize)]
pub(super) struct Search {
    #[serde(default)]
    agent: String,
    #[serde(default)]
    human: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    cursor: String,
}

fn opt(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

impl Search {
    fn filter(&self) -> Result<AuditFilter, ApiError> {
        Ok(AuditFilter {
            agent: parse_opt("agent", opt(&self.agent))?,
            human: parse_opt("human", opt(&self.human))?,
            target: None,
            kind: parse_opt("type", opt(&self.kind))?,
            since: time_param("since", opt(&self.since))?,
            until: time_param("until", opt(&self.until))?,
        })
    }

    /// This search from `cursor` on.
    fn next(&self, cursor: &str) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("agent", &self.agent),
            ("human", &self.human),
            ("type", &self.kind),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        q.append_pair("cursor", cursor);
        format!("/ui/audit?{}", q.finish())
    }
}

struct Row {
    time: String,
    kind: String,
    actor: String,
    target: String,
    agent: String,
    leaf: String,
    /// Covered by the latest signed checkpoint.
    signed: bool,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Nav,
    s: Search,
    kinds: Vec<&'static str>,
    rows: Vec<Row>,
    older: Option<String>,
    tree_size: u64,
    checkpoint_size: u64,
    checkpoint_time: String,
    checkpoint_root: String,
    verified: bool,
    problem: String,
}

pub(super) async fn audit_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(s): Query<Search>,
) -> Result<Response, ApiError> {
    let Some(me) = session(&state, &headers).await? else {
        return Ok(Redirect::to("/ui/login").into_response());
    };
    let filter = s.filter()?;
    let after = opt(&s.cursor)
        .map(|c| parse::<u64>("cursor", c))
        .transpose()?;
    let request = surety_core::page::PageRequest {
        limit: 50,
        after: after.map(|c| c.to_string()),
    };
    let events = state
        .store
        .list_events(me.audit_scope(), &filter, &request)
        .await?;
    let status = checkpoint_status(&state).await?;
    let signed_size = status.latest.as_ref().map_or(0, |c| c.size);
    let rows = events
        .items
        .iter()
        .map(|e| Row {
            time: short(e.event.time),
            kind: e.event.kind.as_str().to_owned(),
            actor: e.event.actor.to_string(),
            target: e.event.target.clone(),
            agent: e.event.agent.map(|a| a.to_string()).unwrap_or_default(),
            leaf: e.leaf_index.map(|i| i.to_string()).unwrap_or_default(),
            signed: e.leaf_index.is_some_and(|i| i < signed_size),
        })
        .collect();
    let older = events.next_cursor.as_deref().map(|c| s.next(c));
    Ok(page(&AuditPage {
        nav: Nav::of(&state, &me).await?,
        kinds: surety_core::audit::EventKind::ALL
            .iter()
            .map(|k| k.as_str())
            .collect(),
        rows,
        older,
        tree_size: status.tree_size,
        checkpoint_size: signed_size,
        checkpoint_time: status
            .latest
            .as_ref()
            .map(|c| short(c.created_at))
            .unwrap_or_default(),
        checkpoint_root: status
            .latest
            .as_ref()
            .map(|c| b64(&c.root))
            .unwrap_or_default(),
        verified: status.verified.is_ok(),
        problem: status.verified.err().unwrap_or_default(),
        s,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_page_keeps_the_search() {
        let s = Search {
            kind: "decision.made".into(),
            since: "2026-01-01T00:00:00Z".into(),
            ..Search::default()
        };
        assert_eq!(
            s.next("42"),
            "/ui/audit?type=decision.made&since=2026-01-01T00%3A00%3A00Z&cursor=42"
        );
        assert!(s.filter().is_ok());
        let bad = Search {
            since: "yesterday".into(),
            ..Search::default()
        };
        assert!(bad.filter().is_err());
    }
}
