//! `/v1/federation/peers` and `/v1/federation/grants` (admins only): which organisations
//! are trusted, and what their agents may do here.

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use surety_api::federation::{AddPeer, CreateFederationGrant, FederationGrantView, PeerView};
use surety_core::audit::{EventKind, NewEvent};
use surety_core::federation::{FederationGrant, FederationGrantTerms};
use surety_core::id::FederationGrantId;
use surety_store::PeerRecord;
use time::Duration;

use crate::admin::{actor, parse};
use crate::app::AppState;
use crate::auth::{AdminCaller, to_time};
use crate::error::ApiError;
use crate::extract::{Json, Path};

type Result<T> = std::result::Result<T, ApiError>;

/// Longest peer name.
const MAX_NAME: usize = 64;

fn view(p: PeerRecord) -> PeerView {
    PeerView {
        keys: super::key_ids(&p.jwks),
        issuer: p.issuer,
        name: p.name,
        source: p.source,
        metadata_url: p.metadata_url,
        introspection_endpoint: p.introspection_endpoint,
        fetched_at: p.fetched_at,
        created_by: p.created_by,
        created_at: p.created_at,
    }
}

fn grant_view(g: FederationGrant, now: time::OffsetDateTime) -> FederationGrantView {
    FederationGrantView {
        id: g.id,
        status: g.status_at(now).to_string(),
        peer: g.peer,
        agents: g.agents.to_string(),
        principals: g.principals.to_string(),
        scopes: g.scopes.to_vec(),
        resources: g.resources,
        constraints: g.constraints,
        expires_at: g.expires_at,
        created_by: g.created_by,
        created_at: g.created_at,
    }
}

/// A peer's issuer: an absolute http(s) URL without query or fragment (RFC 8414 §2), not
/// this organisation's own.
fn issuer(state: &AppState, raw: &str) -> Result<String> {
    let bad = |why: &str| ApiError::invalid_request(format!("`issuer`: {why}"));
    let url = url::Url::parse(raw).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err(bad("must be an absolute https URL"));
    }
    if url.scheme() == "http" && !state.config.dev {
        return Err(bad("must be https (plain http only in development mode)"));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(bad("must not have a query, fragment or credentials"));
    }
    let issuer = raw.trim_end_matches('/').to_owned();
    if issuer == *state.issuer {
        return Err(bad("is this organisation's own issuer"));
    }
    Ok(issuer)
}

fn name(raw: Option<&str>, issuer: &str) -> Result<String> {
    let name = match raw {
        Some(n) => n.to_owned(),
        None => url::Url::parse(issuer)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default(),
    };
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if ok {
        Ok(name)
    } else {
        Err(ApiError::invalid_request(format!(
            "`name` must be 1 to {MAX_NAME} letters, digits, `-`, `_` or `.`"
        )))
    }
}

/// A peer by issuer or name.
pub(crate) async fn find_peer(state: &AppState, which: &str) -> Result<PeerRecord> {
    if let Some(p) = state.store.get_peer(which.trim_end_matches('/')).await? {
        return Ok(p);
    }
    state
        .store
        .list_peers()
        .await?
        .into_iter()
        .find(|p| p.name == which)
        .ok_or_else(|| ApiError::not_found(format!("no trusted peer `{which}`")))
}

/// Trusts another organisation.
#[utoipa::path(post, path = "/v1/federation/peers", tag = "federation", request_body = AddPeer, security(("dpop" = [])),
    responses(
        (status = 201, body = PeerView),
        (status = 400, description = "a malformed field; metadata that cannot be fetched, names another issuer, or keys that do not parse", body = surety_api::ErrorBody),
        (status = 403, body = surety_api::ErrorBody),
        (status = 409, description = "the issuer or name is already trusted", body = surety_api::ErrorBody),
    ))]
pub async fn add_peer(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Json(body): Json<AddPeer>,
) -> Result<(StatusCode, axum::Json<PeerView>)> {
    caller.require_admin("trust a federation peer")?;
    let now = state.clock.now();
    let issuer = issuer(&state, &body.issuer)?;
    let name = name(body.name.as_deref(), &issuer)?;
    let (source, jwks, introspection, fetched_at) = match (&body.metadata_url, &body.jwks) {
        (Some(url), None) => {
            let (jwks, introspection) = super::fetch_peer(&state.egress, &issuer, url)
                .await
                .map_err(|e| ApiError::invalid_request(format!("`metadata_url`: {e}")))?;
            ("metadata", jwks, introspection, Some(now))
        }
        (None, Some(jwks)) => {
            let jwks = super::validate_jwks(jwks)
                .map_err(|e| ApiError::invalid_request(format!("`jwks`: {e}")))?;
            let introspection = body
                .introspection_endpoint
                .as_deref()
                .map(|u| {
                    state
                        .egress
                        .check("introspection_endpoint", u)
                        .map(|u| u.to_string())
                })
                .transpose()
                .map_err(ApiError::invalid_request)?;
            ("pinned", jwks, introspection, None)
        }
        _ => {
            return Err(ApiError::invalid_request(
                "give exactly one of `metadata_url` (keys fetched and refreshed) or `jwks` (pinned)",
            ));
        }
    };
    if body.metadata_url.is_some() && body.introspection_endpoint.is_some() {
        return Err(ApiError::invalid_request(
            "`introspection_endpoint` comes from the metadata when `metadata_url` is given",
        ));
    }
    let peer = PeerRecord {
        issuer: issuer.clone(),
        name,
        source: source.into(),
        metadata_url: body.metadata_url.clone(),
        jwks,
        introspection_endpoint: introspection,
        fetched_at,
        created_by: caller.id,
        created_at: now,
    };
    let event = NewEvent::new(EventKind::FederationPeerAdded, actor(&caller), &issuer, now)
        .human(caller.id)
        .details(json!({
            "name": peer.name,
            "source": peer.source,
            "metadata_url": peer.metadata_url,
            "keys": super::key_ids(&peer.jwks),
        }));
    state.store.add_peer(&peer, &[event]).await?;
    Ok((StatusCode::CREATED, axum::Json(view(peer))))
}

/// Lists trusted peers.
#[utoipa::path(get, path = "/v1/federation/peers", tag = "federation", security(("dpop" = [])),
    responses((status = 200, body = Vec<PeerView>), (status = 403, body = surety_api::ErrorBody)))]
pub async fn list_peers(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<axum::Json<Vec<PeerView>>> {
    caller.require_admin("list federation peers")?;
    let peers = state.store.list_peers().await?;
    Ok(axum::Json(peers.into_iter().map(view).collect()))
}

/// Stops trusting a peer (by name or URL-encoded issuer): its federation grants are revoked
/// and every token minted for its agents stops working at once.
#[utoipa::path(delete, path = "/v1/federation/peers/{peer}", tag = "federation", params(("peer" = String, Path, description = "name or issuer")), security(("dpop" = [])),
    responses((status = 204), (status = 403, body = surety_api::ErrorBody), (status = 404, body = surety_api::ErrorBody)))]
pub async fn remove_peer(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(which): Path<String>,
) -> Result<StatusCode> {
    caller.require_admin("remove a federation peer")?;
    let now = state.clock.now();
    let peer = find_peer(&state, &which).await?;
    let event = NewEvent::new(
        EventKind::FederationPeerRemoved,
        actor(&caller),
        &peer.issuer,
        now,
    )
    .human(caller.id)
    .details(json!({"name": peer.name}));
    if state.store.remove_peer(&peer.issuer, now, &[event]).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no trusted peer `{which}`")))
    }
}

/// Lets a peer's agents do something here.
#[utoipa::path(post, path = "/v1/federation/grants", tag = "federation", request_body = CreateFederationGrant, security(("dpop" = [])),
    responses(
        (status = 201, body = FederationGrantView),
        (status = 400, description = "a malformed field, named in the description", body = surety_api::ErrorBody),
        (status = 403, body = surety_api::ErrorBody),
        (status = 404, description = "unknown peer", body = surety_api::ErrorBody),
    ))]
pub async fn create_grant(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Json(body): Json<CreateFederationGrant>,
) -> Result<(StatusCode, axum::Json<FederationGrantView>)> {
    caller.require_admin("create a federation grant")?;
    let now = state.clock.now();
    let peer = find_peer(&state, &body.peer).await?;
    let expires_at = match (body.expires_at, body.expires_in) {
        (Some(at), None) => at,
        (None, Some(secs)) => {
            now + Duration::seconds(i64::try_from(secs.min(u64::from(u32::MAX))).unwrap_or(0))
        }
        _ => {
            return Err(ApiError::invalid_request(
                "`expires_at` or `expires_in` is required (exactly one): every grant ends",
            ));
        }
    };
    let terms = FederationGrantTerms {
        peer: &peer.issuer,
        agents: body.agents.as_deref(),
        principals: body.principals.as_deref(),
        scopes: &body.scopes,
        resources: &body.resources,
        constraints: body.constraints.as_ref(),
        expires_at,
    };
    let grant = terms
        .parse(
            FederationGrantId::new(now),
            caller.id,
            now,
            to_time(state.config.grant_max_lifetime),
        )
        .map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let event = NewEvent::new(
        EventKind::FederationGrantCreated,
        actor(&caller),
        grant.id,
        now,
    )
    .human(caller.id)
    .details(json!({
        "peer": grant.peer,
        "agents": grant.agents.as_str(),
        "principals": grant.principals.as_str(),
        "scopes": grant.scopes.to_vec(),
        "resources": grant.resources,
        "constraints": grant.constraints,
        "expires_at": grant.expires_at.unix_timestamp(),
    }));
    state
        .store
        .create_federation_grant(&grant, &[event])
        .await?;
    Ok((StatusCode::CREATED, axum::Json(grant_view(grant, now))))
}

/// Lists federation grants, newest first.
#[utoipa::path(get, path = "/v1/federation/grants", tag = "federation", security(("dpop" = [])),
    responses((status = 200, body = Vec<FederationGrantView>), (status = 403, body = surety_api::ErrorBody)))]
pub async fn list_grants(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<axum::Json<Vec<FederationGrantView>>> {
    caller.require_admin("list federation grants")?;
    let now = state.clock.now();
    let grants = state.store.list_federation_grants(None).await?;
    Ok(axum::Json(
        grants.into_iter().map(|g| grant_view(g, now)).collect(),
    ))
}

/// Revokes a federation grant: tokens minted under it stop working at once.
#[utoipa::path(post, path = "/v1/federation/grants/{id}/revoke", tag = "federation", params(("id" = String, Path)), security(("dpop" = [])),
    responses((status = 200, body = FederationGrantView), (status = 403, body = surety_api::ErrorBody), (status = 404, body = surety_api::ErrorBody), (status = 409, description = "not active", body = surety_api::ErrorBody)))]
pub async fn revoke_grant(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<String>,
) -> Result<axum::Json<FederationGrantView>> {
    caller.require_admin("revoke a federation grant")?;
    let now = state.clock.now();
    let id: FederationGrantId = parse("id", &id)?;
    let grant = state
        .store
        .get_federation_grant(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("federation grant `{id}` not found")))?;
    let event = NewEvent::new(EventKind::FederationGrantRevoked, actor(&caller), id, now)
        .human(caller.id)
        .details(json!({"peer": grant.peer}));
    if !state
        .store
        .revoke_federation_grant(id, now, &[event])
        .await?
    {
        return Err(ApiError::conflict(format!(
            "federation grant `{id}` is {}, not active",
            grant.status_at(now)
        )));
    }
    let revoked = state
        .store
        .get_federation_grant(id)
        .await?
        .ok_or_else(|| ApiError::internal("a revoked federation grant vanished"))?;
    Ok(axum::Json(grant_view(revoked, now)))
}
