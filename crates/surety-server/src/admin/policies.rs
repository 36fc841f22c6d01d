//! `/v1/policies`: the policy set in force, its history, validation, applying a new set and
//! rolling back. Applying validates the set against the schema first; an invalid set is a
//! 400 with Cedar's message and the set in force stays. Every applied set is kept as a new
//! version — a rollback applies an older one again — and audited.

use std::sync::{Arc, RwLock};

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use surety_api::admin::ListResponse;
use surety_api::credentials::{
    ApplyPolicySet, PolicyHistoryQuery, PolicySetView, PolicyValidation, RollbackPolicySet,
};
use surety_core::access::Caller;
use surety_core::audit::{EventKind, NewEvent};
use surety_policy::{CATALOG, DEFAULT_POLICIES, Engine, PolicyError};
use surety_store::{PolicySetRecord, Store, StoreError};

use super::{actor, page, parse};
use crate::app::AppState;
use crate::auth::AdminCaller;
use crate::error::ApiError;
use crate::extract::{Json, Path, Query};

type Result<T> = std::result::Result<T, ApiError>;

/// The policy engine in force on this node, replaced whole when a new set is applied — here,
/// or on another node (seen within `key_refresh_interval`).
#[derive(Debug)]
pub struct Policies {
    engine: RwLock<Arc<Engine>>,
    checked_at: std::sync::Mutex<Option<time::OffsetDateTime>>,
}

impl Policies {
    /// Loads the newest applied set, or the shipped default if none was ever applied. A
    /// stored set that no longer validates (after an upgrade changed the schema) stops the
    /// start: deciding with another set than the one applied would be worse.
    pub async fn load(store: &dyn Store) -> std::result::Result<Self, PolicyLoadError> {
        let engine = match store.current_policy_set().await? {
            Some(set) => Engine::new(&set.catalog, &set.policies, set.version)
                .map_err(|e| PolicyLoadError::Invalid(set.version, e))?,
            None => Engine::shipped().map_err(|e| PolicyLoadError::Invalid(0, e))?,
        };
        Ok(Self {
            engine: RwLock::new(Arc::new(engine)),
            checked_at: std::sync::Mutex::new(None),
        })
    }

    /// The engine in force, after checking (at most every `every`) whether another node
    /// applied a newer set.
    pub async fn fresh(
        &self,
        store: &dyn Store,
        now: time::OffsetDateTime,
        every: time::Duration,
    ) -> std::result::Result<Arc<Engine>, ApiError> {
        let due = {
            let mut checked = match self.checked_at.lock() {
                Ok(c) => c,
                Err(poisoned) => poisoned.into_inner(),
            };
            let due = checked.is_none_or(|at| now - at >= every);
            if due {
                *checked = Some(now);
            }
            due
        };
        if due
            && let Some(set) = store.current_policy_set().await?
            && set.version > self.current().version()
        {
            match Engine::new(&set.catalog, &set.policies, set.version) {
                Ok(engine) => self.replace(engine),
                Err(e) => {
                    tracing::error!(version = set.version, error = %e, "the newest policy set does not load here; keeping the one in force")
                }
            }
        }
        Ok(self.current())
    }

    /// Makes the next [`Policies::fresh`] read the newest set from the database, whenever
    /// it last did (another node applied one, or this node may have missed the news).
    pub fn invalidate(&self) {
        let mut checked = match self.checked_at.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        *checked = None;
    }

    /// The engine in force.
    pub fn current(&self) -> Arc<Engine> {
        match self.engine.read() {
            Ok(e) => e.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Puts `engine` in force unless a newer version already is (two applies racing on one
    /// node must end with the newest).
    fn replace(&self, engine: Engine) {
        let mut current = match self.engine.write() {
            Ok(e) => e,
            Err(poisoned) => poisoned.into_inner(),
        };
        if engine.version() > current.version() {
            *current = Arc::new(engine);
        }
    }
}

/// Why the policy set could not be loaded at start.
#[derive(Debug, thiserror::Error)]
pub enum PolicyLoadError {
    /// The stored set no longer validates.
    #[error("policy set version {0} does not load: {1}")]
    Invalid(u64, PolicyError),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn view(record: &PolicySetRecord, count: usize, current: u64) -> PolicySetView {
    PolicySetView {
        version: record.version,
        catalog: record.catalog.clone(),
        policies: record.policies.clone(),
        policy_count: count,
        note: record.note.clone(),
        created_by: Some(record.created_by),
        created_at: Some(record.created_at),
        current: record.version == current,
    }
}

fn shipped(current: u64) -> PolicySetView {
    PolicySetView {
        version: 0,
        catalog: CATALOG.to_owned(),
        policies: DEFAULT_POLICIES.to_owned(),
        policy_count: Engine::shipped().map(|e| e.len()).unwrap_or(0),
        note: Some("the shipped default".into()),
        created_by: None,
        created_at: None,
        current: current == 0,
    }
}

/// `(catalog, policies)` of `version`: 0 is the shipped default.
async fn content(
    state: &AppState,
    version: u64,
) -> Result<(String, String, Option<PolicySetRecord>)> {
    if version == 0 {
        return Ok((CATALOG.to_owned(), DEFAULT_POLICIES.to_owned(), None));
    }
    let record =
        state.store.policy_set(version).await?.ok_or_else(|| {
            ApiError::not_found(format!("policy set version {version} not found"))
        })?;
    Ok((
        record.catalog.clone(),
        record.policies.clone(),
        Some(record),
    ))
}

/// How many policies a stored set holds (it validated when it was applied).
fn count(policies: &str) -> usize {
    surety_policy::parse_policies(policies).map_or(0, |p| p.policies().count())
}

fn invalid(e: &PolicyError) -> ApiError {
    ApiError::invalid_request(e.to_string())
}

/// The policy set in force.
#[utoipa::path(get, path = "/v1/policies", tag = "policies", security(("dpop" = [])),
    responses((status = 200, body = PolicySetView)))]
pub async fn current(
    State(state): State<AppState>,
    AdminCaller(_): AdminCaller,
) -> Result<axum::Json<PolicySetView>> {
    let engine = state.policies.current();
    let version = engine.version();
    Ok(axum::Json(match content(&state, version).await? {
        (_, _, Some(record)) => view(&record, engine.len(), version),
        _ => shipped(version),
    }))
}

/// One version (0 is the shipped default).
#[utoipa::path(get, path = "/v1/policies/{version}", tag = "policies", params(("version" = u64, Path)), security(("dpop" = [])),
    responses((status = 200, body = PolicySetView), (status = 404, body = surety_api::ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    AdminCaller(_): AdminCaller,
    Path(version): Path<String>,
) -> Result<axum::Json<PolicySetView>> {
    let version: u64 = parse("version", &version)?;
    let current = state.policies.current().version();
    Ok(axum::Json(match content(&state, version).await? {
        (_, policies, Some(record)) => view(&record, count(&policies), current),
        _ => shipped(current),
    }))
}

/// Every applied version, newest first.
#[utoipa::path(get, path = "/v1/policies/history", tag = "policies", params(PolicyHistoryQuery), security(("dpop" = [])),
    responses((status = 200, body = ListResponse<PolicySetView>)))]
pub async fn history(
    State(state): State<AppState>,
    AdminCaller(_): AdminCaller,
    Query(q): Query<PolicyHistoryQuery>,
) -> Result<axum::Json<ListResponse<PolicySetView>>> {
    let current = state.policies.current().version();
    let page = state
        .store
        .list_policy_sets(&page(q.limit, q.cursor)?)
        .await?;
    let items = page
        .items
        .iter()
        .map(|r| view(r, count(&r.policies), current))
        .collect();
    Ok(axum::Json(ListResponse {
        items,
        next_cursor: page.next_cursor,
    }))
}

/// Checks a set against the schema without applying it (admins).
#[utoipa::path(post, path = "/v1/policies/validate", tag = "policies", request_body = ApplyPolicySet, security(("dpop" = [])),
    responses((status = 200, body = PolicyValidation), (status = 400, description = "Cedar's message", body = surety_api::ErrorBody)))]
pub async fn validate(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Json(body): Json<ApplyPolicySet>,
) -> Result<axum::Json<PolicyValidation>> {
    caller.require_admin("validate policies")?;
    let catalog = catalog_or_current(&state, body.catalog).await?;
    let engine = Engine::new(&catalog, &body.policies, 0).map_err(|e| invalid(&e))?;
    Ok(axum::Json(PolicyValidation {
        valid: true,
        policy_count: engine.len(),
    }))
}

/// `catalog`, or the catalog of the newest stored set (which another node may have applied).
async fn catalog_or_current(state: &AppState, catalog: Option<String>) -> Result<String> {
    match catalog {
        Some(c) => Ok(c),
        None => Ok(state
            .store
            .current_policy_set()
            .await?
            .map_or_else(|| CATALOG.to_owned(), |set| set.catalog)),
    }
}

async fn apply(
    state: &AppState,
    caller: &Caller,
    catalog: String,
    policies: String,
    note: Option<String>,
    rolled_back_from: Option<u64>,
) -> Result<(StatusCode, axum::Json<PolicySetView>)> {
    caller.require_admin("change policies")?;
    if let Some(n) = &note {
        surety_core::validate::free_text("note", n, surety_core::validate::MAX_PURPOSE)
            .map_err(|e| ApiError::invalid_request(e.to_string()))?;
    }
    // Validate before anything is written: an invalid set changes nothing.
    let candidate = Engine::new(&catalog, &policies, 0).map_err(|e| invalid(&e))?;
    let now = state.clock.now();
    let previous = state.policies.current().version();
    let count = candidate.len();
    let events = |version: u64| {
        vec![
            NewEvent::new(EventKind::PolicyApplied, actor(caller), version, now).details(json!({
                "version": version,
                "previous_version": previous,
                "policies": count,
                "note": note,
                "rolled_back_from": rolled_back_from,
            })),
        ]
    };
    let version = state
        .store
        .apply_policy_set(
            &catalog,
            &policies,
            note.as_deref(),
            caller.id,
            now,
            &events,
        )
        .await?;
    state.policies.replace(candidate.with_version(version));
    let record = PolicySetRecord {
        version,
        catalog,
        policies,
        note,
        created_by: caller.id,
        created_at: now,
    };
    Ok((
        StatusCode::CREATED,
        axum::Json(view(&record, count, version)),
    ))
}

/// Applies a new policy set (admins). Invalid → 400 with Cedar's message; the set in force
/// stays.
#[utoipa::path(post, path = "/v1/policies", tag = "policies", request_body = ApplyPolicySet, security(("dpop" = [])),
    responses((status = 201, body = PolicySetView), (status = 400, description = "Cedar's message", body = surety_api::ErrorBody), (status = 403, body = surety_api::ErrorBody)))]
pub async fn apply_set(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Json(body): Json<ApplyPolicySet>,
) -> Result<(StatusCode, axum::Json<PolicySetView>)> {
    caller.require_admin("change policies")?;
    let catalog = catalog_or_current(&state, body.catalog).await?;
    apply(&state, &caller, catalog, body.policies, body.note, None).await
}

/// Applies an earlier version again, as a new version (admins).
#[utoipa::path(post, path = "/v1/policies/rollback", tag = "policies", request_body = RollbackPolicySet, security(("dpop" = [])),
    responses((status = 201, body = PolicySetView), (status = 403, body = surety_api::ErrorBody), (status = 404, body = surety_api::ErrorBody)))]
pub async fn rollback(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Json(body): Json<RollbackPolicySet>,
) -> Result<(StatusCode, axum::Json<PolicySetView>)> {
    caller.require_admin("change policies")?;
    let (catalog, policies, _) = content(&state, body.version).await?;
    let note = Some(format!("rollback to version {}", body.version));
    apply(&state, &caller, catalog, policies, note, Some(body.version)).await
}
