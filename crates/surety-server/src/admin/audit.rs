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

pub(crate) fn time_param(
    field: &str,
    raw: Option<&str>,
) -> Result<Option<OffsetDateTime>, ApiError> {
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

pub(crate) fn b64(hash: &surety_core::merkle::Hash) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(hash)
}

fn tree_error(e: surety_core::merkle::TreeError) -> ApiError {
    match e {
        surety_core::merkle::TreeError::OutOfRange(m) => ApiError::invalid_request(m),
        missing @ surety_core::merkle::TreeError::MissingNode { .. } => ApiError::internal(missing),
    }
}

/// Runs `compute` over the stored nodes it needs (one query).
async fn over_tree<T>(
    state: &AppState,
    compute: impl Fn(&dyn surety_core::merkle::NodeSource) -> Result<T, surety_core::merkle::TreeError>,
) -> Result<T, ApiError> {
    let wanted = surety_core::merkle::wanted(&compute).map_err(tree_error)?;
    let nodes = state.store.tree_nodes(&wanted).await?;
    compute(&nodes).map_err(tree_error)
}

/// A size no larger than the tree.
async fn within_tree(state: &AppState, size: u64, what: &str) -> Result<u64, ApiError> {
    let current = state.store.tree_size().await?;
    if size > current {
        return Err(ApiError::invalid_request(format!(
            "`{what}` is {size}, but the log has {current} events"
        )));
    }
    Ok(current)
}

/// The log's name in checkpoints and its key name: the issuer without its scheme, then
/// `/audit` (a schema-less URL, as C2SP recommends).
fn origin(state: &AppState) -> String {
    let host = state
        .issuer
        .split_once("://")
        .map_or(state.issuer.as_ref(), |(_, rest)| rest)
        .trim_end_matches('/');
    format!("{host}/audit")
}

/// The key that signs checkpoints: the organisation's current signing key, which must be
/// Ed25519 (C2SP signed notes).
async fn log_key(
    state: &AppState,
) -> Result<
    (
        std::sync::Arc<crate::keyring::Signer>,
        surety_jose::note::NoteKey,
    ),
    ApiError,
> {
    let signer = state
        .keys
        .signer(state.store.as_ref(), state.clock.now())
        .await
        .map_err(ApiError::internal)?;
    let key = surety_jose::note::NoteKey::from_jwk(&origin(state), signer.key.public())
        .map_err(|_| {
            ApiError::not_available(
                "checkpoints are signed with an Ed25519 organisation key (`signing_alg = \"EdDSA\"`)",
            )
        })?;
    Ok((signer, key))
}

fn text(body: String) -> axum::response::Response {
    use axum::response::IntoResponse as _;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Signs and stores a checkpoint of the tree as it is now, naming the previous one (or
/// returns the latest, if nothing was appended since).
pub(crate) async fn make_checkpoint(
    state: &AppState,
) -> Result<surety_store::StoredCheckpoint, ApiError> {
    let size = state.store.tree_size().await?;
    let latest = state.store.latest_checkpoint().await?;
    if let Some(l) = latest.as_ref().filter(|l| l.size >= size) {
        return Ok(l.clone());
    }
    let (signer, _) = log_key(state).await?;
    // Sign only a tree that extends the last signed one: events it covered that were
    // altered, removed or reordered in the database since would otherwise get a signature.
    if let Some(l) = &latest
        && let Err(why) = matches_tree(state, l).await?
    {
        metrics::counter!("surety_audit_checkpoints_refused_total").increment(1);
        tracing::error!(size = l.size, reason = %why, "the stored audit log no longer matches its latest signed checkpoint; no new checkpoint is signed");
        return Err(ApiError::not_available(format!(
            "the stored audit log no longer matches its latest signed checkpoint (size {}): {why}; no new checkpoint is signed over it",
            l.size
        )));
    }
    let root = over_tree(state, |src| surety_core::merkle::root(src, size)).await?;
    let now = state.clock.now();
    let mut extensions = vec![format!("time {}", now.unix_timestamp())];
    if let Some(l) = &latest {
        extensions.push(format!("previous {} {}", l.size, b64(&l.root)));
    }
    let cp = surety_jose::note::Checkpoint {
        origin: origin(state),
        size,
        root,
        extensions,
    };
    let note = surety_jose::note::sign(&cp.to_text(), &cp.origin, &signer.key)
        .map_err(ApiError::internal)?;
    let stored = surety_store::StoredCheckpoint {
        size,
        root,
        note,
        created_at: now,
    };
    if state.store.save_checkpoint(&stored).await? {
        metrics::counter!("surety_audit_checkpoints_total").increment(1);
        return Ok(stored);
    }
    // Another node made the checkpoint of this size first: that one stands.
    let theirs = state
        .store
        .checkpoints(size.saturating_sub(1), size, 1)
        .await?
        .into_iter()
        .find(|c| c.size == size);
    theirs.ok_or_else(|| ApiError::internal("a checkpoint vanished"))
}

/// What the audit page shows of the log's state.
pub(crate) struct CheckpointStatus {
    /// Events in the tree.
    pub tree_size: u64,
    /// The latest signed checkpoint.
    pub latest: Option<surety_store::StoredCheckpoint>,
    /// Whether the latest checkpoint's signature verifies with one of the organisation's
    /// Ed25519 keys and names the root of the stored tree at its size — or why not.
    pub verified: Result<(), String>,
}

/// Checks the latest checkpoint again, as an auditor would, against the stored tree.
pub(crate) async fn checkpoint_status(state: &AppState) -> Result<CheckpointStatus, ApiError> {
    let tree_size = state.store.tree_size().await?;
    let latest = state.store.latest_checkpoint().await?;
    let verified = match &latest {
        None => Err("no checkpoint was made yet".to_owned()),
        Some(cp) => matches_tree(state, cp).await?,
    };
    Ok(CheckpointStatus {
        tree_size,
        latest,
        verified,
    })
}

/// Whether `cp`'s signature verifies with one of the organisation's Ed25519 keys and its
/// signed root is the root of the stored tree at its size — or why not.
async fn matches_tree(
    state: &AppState,
    cp: &surety_store::StoredCheckpoint,
) -> Result<Result<(), String>, ApiError> {
    let keys: Vec<_> = state
        .store
        .all_signing_keys()
        .await?
        .iter()
        .filter_map(|k| surety_jose::PublicJwk::from_json(&k.public_jwk).ok())
        .filter_map(|jwk| surety_jose::note::NoteKey::from_jwk(&origin(state), &jwk).ok())
        .collect();
    let root = over_tree(state, |src| surety_core::merkle::root(src, cp.size)).await?;
    Ok(surety_jose::note::open(&cp.note, &keys)
        .map_err(|e| format!("the signature does not verify: {e}"))
        .and_then(|text| {
            surety_jose::note::Checkpoint::parse(text)
                .map_err(|e| format!("the checkpoint does not parse: {e}"))
        })
        .and_then(|signed| {
            if signed.size == cp.size && signed.root == root {
                Ok(())
            } else {
                Err(format!(
                    "the signed root of size {} is not the stored tree's root",
                    signed.size
                ))
            }
        }))
}

/// The latest tree head as a C2SP `tlog-checkpoint`, signed by the organisation's key as a
/// C2SP `signed-note` (`text/plain`), made now if events were appended since the last one.
/// Extension lines: `time <unix seconds>`, and `previous <size> <base64 root>` naming the
/// checkpoint before it.
#[utoipa::path(get, path = "/v1/audit/checkpoint", tag = "audit", security(("dpop" = [])),
    responses((status = 200, description = "A signed checkpoint (text/plain)"), (status = 503, body = surety_api::ErrorBody)))]
pub async fn checkpoint(
    State(state): State<AppState>,
    AdminCaller(_): AdminCaller,
) -> Result<axum::response::Response, ApiError> {
    Ok(text(make_checkpoint(&state).await?.note))
}

/// The stored checkpoints of sizes in `(after, up_to]`, smallest first (at most 1000).
#[utoipa::path(get, path = "/v1/audit/checkpoints", tag = "audit", params(surety_api::admin::CheckpointsQuery), security(("dpop" = [])),
    responses((status = 200, body = surety_api::admin::CheckpointsView)))]
pub async fn checkpoints(
    State(state): State<AppState>,
    AdminCaller(_): AdminCaller,
    Query(q): Query<surety_api::admin::CheckpointsQuery>,
) -> Result<axum::Json<surety_api::admin::CheckpointsView>, ApiError> {
    let list = state
        .store
        .checkpoints(q.after.unwrap_or(0), q.up_to.unwrap_or(u64::MAX >> 1), 1000)
        .await?;
    Ok(axum::Json(surety_api::admin::CheckpointsView {
        checkpoints: list
            .into_iter()
            .map(|c| surety_api::admin::CheckpointView {
                size: c.size,
                note: c.note,
            })
            .collect(),
    }))
}

/// The verifier key of the checkpoints (`<name>+<key ID>+<base64 key>`, C2SP signed-note).
#[utoipa::path(get, path = "/v1/audit/log-key", tag = "audit",
    responses((status = 200, description = "The checkpoints' verifier key (text/plain)"), (status = 503, body = surety_api::ErrorBody)))]
pub async fn verifier_key(
    State(state): State<AppState>,
) -> Result<axum::response::Response, ApiError> {
    let (_, key) = log_key(&state).await?;
    Ok(text(format!("{}\n", key.vkey())))
}

/// An RFC 9162 inclusion proof of one event (by leaf index) in the tree of `tree_size`.
#[utoipa::path(get, path = "/v1/audit/proofs/inclusion", tag = "audit", params(surety_api::admin::InclusionQuery), security(("dpop" = [])),
    responses((status = 200, body = surety_api::admin::InclusionProofView), (status = 400, body = surety_api::ErrorBody)))]
pub async fn inclusion(
    State(state): State<AppState>,
    AdminCaller(_): AdminCaller,
    Query(q): Query<surety_api::admin::InclusionQuery>,
) -> Result<axum::Json<surety_api::admin::InclusionProofView>, ApiError> {
    within_tree(&state, q.tree_size, "tree_size").await?;
    let (index, size) = (q.index, q.tree_size);
    let (proof, root, leaf) = over_tree(&state, |src| {
        let proof = surety_core::merkle::inclusion_proof(src, index, size)?;
        let root = surety_core::merkle::root(src, size)?;
        let leaf = src
            .node(0, index)
            .ok_or(surety_core::merkle::TreeError::MissingNode { level: 0, index })?;
        Ok((proof, root, leaf))
    })
    .await?;
    Ok(axum::Json(surety_api::admin::InclusionProofView {
        leaf_index: index,
        tree_size: size,
        leaf_hash: b64(&leaf),
        inclusion_path: proof.iter().map(b64).collect(),
        root_hash: b64(&root),
    }))
}

/// What proves leaves `[start, end)` against the root of the tree of `tree_size`: the perfect
/// subtrees wholly outside the range (a partial export carries it).
#[utoipa::path(get, path = "/v1/audit/proofs/range", tag = "audit", params(surety_api::admin::RangeQuery), security(("dpop" = [])),
    responses((status = 200, body = surety_api::admin::RangeProofView), (status = 400, body = surety_api::ErrorBody)))]
pub async fn range(
    State(state): State<AppState>,
    AdminCaller(_): AdminCaller,
    Query(q): Query<surety_api::admin::RangeQuery>,
) -> Result<axum::Json<surety_api::admin::RangeProofView>, ApiError> {
    use surety_core::merkle::NodeSource as _;
    within_tree(&state, q.tree_size, "tree_size").await?;
    let (start, end, size) = (q.start, q.end, q.tree_size);
    let positions = surety_core::merkle::range_proof_nodes(start, end, size).map_err(tree_error)?;
    let mut wanted = positions.clone();
    // The root too, to name what the proof leads to.
    wanted.extend(
        surety_core::merkle::wanted(|src| surety_core::merkle::root(src, size))
            .map_err(tree_error)?,
    );
    let nodes = state.store.tree_nodes(&wanted).await?;
    let root = surety_core::merkle::root(&nodes, size).map_err(tree_error)?;
    let nodes = positions
        .iter()
        .map(|&(level, index)| {
            nodes
                .node(level, index)
                .map(|h| surety_api::admin::TreeNodeView {
                    level,
                    index,
                    hash: b64(&h),
                })
                .ok_or_else(|| {
                    tree_error(surety_core::merkle::TreeError::MissingNode { level, index })
                })
        })
        .collect::<Result<_, _>>()?;
    Ok(axum::Json(surety_api::admin::RangeProofView {
        start,
        end,
        tree_size: size,
        nodes,
        root_hash: b64(&root),
    }))
}

/// An RFC 9162 consistency proof between two tree sizes.
#[utoipa::path(get, path = "/v1/audit/proofs/consistency", tag = "audit", params(surety_api::admin::ConsistencyQuery), security(("dpop" = [])),
    responses((status = 200, body = surety_api::admin::ConsistencyProofView), (status = 400, body = surety_api::ErrorBody)))]
pub async fn consistency(
    State(state): State<AppState>,
    AdminCaller(_): AdminCaller,
    Query(q): Query<surety_api::admin::ConsistencyQuery>,
) -> Result<axum::Json<surety_api::admin::ConsistencyProofView>, ApiError> {
    within_tree(&state, q.to, "to").await?;
    let (from, to) = (q.from, q.to);
    let (proof, from_root, to_root) = over_tree(&state, |src| {
        Ok((
            surety_core::merkle::consistency_proof(src, from, to)?,
            surety_core::merkle::root(src, from)?,
            surety_core::merkle::root(src, to)?,
        ))
    })
    .await?;
    Ok(axum::Json(surety_api::admin::ConsistencyProofView {
        from,
        to,
        consistency_path: proof.iter().map(b64).collect(),
        from_root: b64(&from_root),
        to_root: b64(&to_root),
    }))
}

/// Most leaves in one `GET /v1/audit/leaves`.
const MAX_LEAVES: u64 = 1000;

/// Leaves `[start, end)` of the audit log with the entries they hash: what an export holds
/// (admins only).
#[utoipa::path(get, path = "/v1/audit/leaves", tag = "audit", params(surety_api::admin::LeavesQuery), security(("dpop" = [])),
    responses((status = 200, body = surety_api::admin::LeavesView), (status = 400, body = surety_api::ErrorBody), (status = 403, body = surety_api::ErrorBody)))]
pub async fn leaves(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Query(q): Query<surety_api::admin::LeavesQuery>,
) -> Result<axum::Json<surety_api::admin::LeavesView>, ApiError> {
    caller.require_admin("read the whole audit log")?;
    if q.start > q.end || q.end - q.start > MAX_LEAVES {
        return Err(ApiError::invalid_request(format!(
            "`start` ≤ `end` ≤ `start` + {MAX_LEAVES}"
        )));
    }
    let leaves = state.store.leaves(q.start, q.end).await?;
    let leaves = leaves
        .into_iter()
        .map(|(leaf_index, event)| {
            let entry = serde_json::from_slice(&event.leaf_entry()).map_err(ApiError::internal)?;
            Ok(surety_api::admin::LeafView { leaf_index, entry })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(axum::Json(surety_api::admin::LeavesView { leaves }))
}
