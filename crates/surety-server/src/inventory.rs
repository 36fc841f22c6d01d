//! The inventory, as the API, the CLI and the web UI show it: every agent a caller may see,
//! with its findings under the thresholds in force.

use std::time::Duration;

use surety_api::inventory::{InventoryAgent, ReportLine, ReportResponse, ThresholdsView};
use surety_core::access::Caller;
use surety_core::agent::AgentStatus;
use surety_core::id::HumanId;
use surety_core::inventory::{FindingKind, Thresholds, findings};
use surety_core::page::PageRequest;
use surety_store::AgentFilter;
use time::OffsetDateTime;

use crate::app::AppState;
use crate::config::{Config, TEN_YEARS};
use crate::error::ApiError;

/// Agents read per query.
const PAGE: u32 = 500;

/// What to list.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selection {
    /// Only this owner's agents (members: always themselves).
    pub owner: Option<HumanId>,
    /// Only agents in this state.
    pub status: Option<AgentStatus>,
    /// Only agents in this environment.
    pub environment: Option<String>,
    /// Only agents with (in the report: only findings of) this kind.
    pub finding: Option<FindingKind>,
}

/// The configured thresholds, each overridden by a query value like `30d` when given.
pub(crate) fn thresholds(
    config: &Config,
    overrides: [(&str, Option<&str>); 5],
) -> Result<Thresholds, ApiError> {
    let [stale, key, unused, expiring, recent] = overrides.map(|(name, raw)| {
        raw.map(|raw| {
            humantime::parse_duration(raw)
                .map_err(|e| {
                    ApiError::invalid_request(format!(
                        "`{name}`: `{raw}` is not a duration like 12h or 30d: {e}"
                    ))
                })
                .and_then(|d| {
                    if d.is_zero() || d.as_secs() > TEN_YEARS {
                        Err(ApiError::invalid_request(format!(
                            "`{name}` must be more than 0 and at most 3650d"
                        )))
                    } else {
                        Ok(d)
                    }
                })
        })
        .transpose()
    });
    let c = configured(config);
    let or = |v: Result<Option<Duration>, ApiError>, default| v.map(|v| v.unwrap_or(default));
    Ok(Thresholds {
        stale_after: or(stale, c.stale_after)?,
        key_max_age: or(key, c.key_max_age)?,
        unused_after: or(unused, c.unused_after)?,
        expiring_within: or(expiring, c.expiring_within)?,
        recent: or(recent, c.recent)?,
    })
}

/// The thresholds of the configuration.
pub(crate) fn configured(config: &Config) -> Thresholds {
    Thresholds {
        stale_after: config.inventory_stale_after,
        key_max_age: config.agent_key_max_age,
        unused_after: config.inventory_unused_after,
        expiring_within: config.inventory_expiring_within,
        recent: config.inventory_recent,
    }
}

/// Every agent `caller` may see that matches `selection`, in registration order, with its
/// findings. Members see their own agents only.
pub(crate) async fn agents(
    state: &AppState,
    caller: &Caller,
    selection: &Selection,
    limits: &Thresholds,
    now: OffsetDateTime,
) -> Result<Vec<InventoryAgent>, ApiError> {
    let filter = AgentFilter {
        owner: caller.agent_list_owner(selection.owner)?,
        status: selection.status,
        environment: selection.environment.clone(),
        id: None,
    };
    let since = now - limits.recent;
    let mut out = Vec::new();
    let mut page = PageRequest::first(PAGE);
    loop {
        let facts = state.store.agent_facts(&filter, &page, since).await?;
        for f in &facts.items {
            let found = findings(f, limits, now);
            if selection
                .finding
                .is_none_or(|k| found.iter().any(|f| f.kind == k))
            {
                out.push(InventoryAgent::new(f, &found, now));
            }
        }
        match facts.next_cursor {
            Some(after) => page.after = Some(after),
            None => return Ok(out),
        }
    }
}

/// The report: every finding about the agents `caller` may see, by kind then agent.
pub(crate) async fn report(
    state: &AppState,
    caller: &Caller,
    selection: &Selection,
    limits: &Thresholds,
    now: OffsetDateTime,
) -> Result<ReportResponse, ApiError> {
    let everything = Selection {
        finding: None,
        ..selection.clone()
    };
    let agents = agents(state, caller, &everything, limits, now).await?;
    let mut report = ReportResponse::empty(now, ThresholdsView::from(limits));
    report.agents = agents.len() as u64;
    for a in &agents {
        for f in &a.findings {
            if let Some(n) = report.summary.get_mut(&f.kind) {
                *n += 1;
            }
            if selection.finding.is_none_or(|k| k.as_str() == f.kind) {
                report.items.push(ReportLine {
                    agent: a.id,
                    agent_name: a.name.clone(),
                    owner_email: a.owner.email.clone(),
                    finding: f.clone(),
                });
            }
        }
    }
    let order = |kind: &str| FindingKind::ALL.iter().position(|k| k.as_str() == kind);
    report.items.sort_by(|x, y| {
        order(&x.finding.kind)
            .cmp(&order(&y.finding.kind))
            .then(x.agent.cmp(&y.agent))
    });
    Ok(report)
}
