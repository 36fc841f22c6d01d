//! `/v1/resource-servers` and `/v1/signing-keys` (admins only): registering the resource
//! servers that introspect tokens, and rotating the organisation's signing keys.

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;
use surety_api::credentials::{
    CreateResourceServer, ResourceServerView, RotateSigningKey, RotatedSigningKey, SigningKeyView,
};
use surety_core::audit::{EventKind, NewEvent};
use surety_core::grant::resource_url;
use surety_core::id::ResourceServerId;
use surety_jose::KeyAlg;
use surety_store::ResourceServer;

use super::{actor, public_key};
use crate::app::AppState;
use crate::auth::{AdminCaller, to_time};
use crate::error::ApiError;
use crate::extract::Json;

type Result<T> = std::result::Result<T, ApiError>;

fn view(rs: &ResourceServer) -> ResourceServerView {
    ResourceServerView {
        id: rs.id,
        name: rs.name.clone(),
        audience: rs.audience.clone(),
        kid: rs.kid.clone(),
        public_key: rs.jwk.clone(),
        status: rs.status.clone(),
        created_at: rs.created_at,
    }
}

/// Registers a resource server: the audience its tokens carry, and the public key it signs
/// its `private_key_jwt` client assertions with. Its id is its `client_id`.
#[utoipa::path(post, path = "/v1/resource-servers", tag = "credentials", request_body = CreateResourceServer, security(("dpop" = [])),
    responses(
        (status = 201, body = ResourceServerView),
        (status = 400, body = surety_api::ErrorBody),
        (status = 403, body = surety_api::ErrorBody),
        (status = 409, description = "audience or key already registered", body = surety_api::ErrorBody),
    ))]
pub async fn create_resource_server(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Json(body): Json<CreateResourceServer>,
) -> Result<(StatusCode, axum::Json<ResourceServerView>)> {
    caller.require_admin("register resource servers")?;
    let audience = resource_url("audience", &body.audience)
        .map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let jwk = public_key("public_key", &body.public_key)?;
    let default_name = audience
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split(['/', '?']).next())
        .unwrap_or(&audience)
        .to_owned();
    let name = surety_core::validate::free_text(
        "name",
        body.name.as_deref().unwrap_or(&default_name),
        100,
    )
    .map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let now = state.clock.now();
    let rs = ResourceServer {
        id: ResourceServerId::new(now),
        name,
        audience,
        kid: jwk.thumbprint(),
        jwk: jwk.to_json(),
        status: "active".into(),
        created_by: caller.id,
        created_at: now,
    };
    let event = NewEvent::new(
        EventKind::ResourceServerRegistered,
        actor(&caller),
        rs.id,
        now,
    )
    .details(json!({"audience": rs.audience, "name": rs.name, "kid": rs.kid}));
    state.store.create_resource_server(&rs, &[event]).await?;
    Ok((StatusCode::CREATED, axum::Json(view(&rs))))
}

/// Every registered resource server.
#[utoipa::path(get, path = "/v1/resource-servers", tag = "credentials", security(("dpop" = [])),
    responses((status = 200, body = Vec<ResourceServerView>), (status = 403, body = surety_api::ErrorBody)))]
pub async fn list_resource_servers(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<axum::Json<Vec<ResourceServerView>>> {
    caller.require_admin("list resource servers")?;
    let all = state.store.list_resource_servers().await?;
    Ok(axum::Json(all.iter().map(view).collect()))
}

/// Every signing key the organisation ever had, newest first.
#[utoipa::path(get, path = "/v1/signing-keys", tag = "credentials", security(("dpop" = [])),
    responses((status = 200, body = Vec<SigningKeyView>), (status = 403, body = surety_api::ErrorBody)))]
pub async fn list_signing_keys(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
) -> Result<axum::Json<Vec<SigningKeyView>>> {
    caller.require_admin("list signing keys")?;
    let now = state.clock.now();
    let keys = state.store.all_signing_keys().await?;
    Ok(axum::Json(
        keys.iter()
            .map(|k| SigningKeyView {
                kid: k.kid.clone(),
                alg: k.alg.clone(),
                status: k.status.clone(),
                published: k.status == "active" || k.publish_until.is_some_and(|u| u > now),
                created_at: k.created_at,
                retired_at: k.retired_at,
                publish_until: k.publish_until,
            })
            .collect(),
    ))
}

/// Makes a new key the signer. The previous key stays in `/jwks` until every token it
/// signed has expired: the longest token lifetime, plus clock skew, plus the key refresh
/// interval (other nodes sign with the old key until they next re-read the keys).
#[utoipa::path(post, path = "/v1/signing-keys/rotate", tag = "credentials", request_body(content = RotateSigningKey, description = "optional"), security(("dpop" = [])),
    responses((status = 200, body = RotatedSigningKey), (status = 400, body = surety_api::ErrorBody), (status = 403, body = surety_api::ErrorBody)))]
pub async fn rotate_signing_key(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    body: Option<Json<RotateSigningKey>>,
) -> Result<axum::Json<RotatedSigningKey>> {
    caller.require_admin("rotate signing keys")?;
    let alg = body
        .and_then(|Json(b)| b.alg)
        .unwrap_or_else(|| state.config.signing_alg.clone());
    let alg: KeyAlg = match alg.as_str() {
        "EdDSA" | "ES256" => alg
            .parse()
            .map_err(|_| ApiError::invalid_request("`alg`: must be `EdDSA` or `ES256`"))?,
        _ => {
            return Err(ApiError::invalid_request(
                "`alg`: must be `EdDSA` or `ES256`",
            ));
        }
    };
    // Other nodes may sign with the old key until they next re-read the keys.
    let keep = to_time(state.config.token_ttl.max(state.config.access_token_ttl))
        + to_time(state.config.clock_skew)
        + to_time(state.config.key_refresh_interval);
    let (kid, retired) = state
        .keys
        .rotate(
            state.store.as_ref(),
            alg,
            actor(&caller),
            keep,
            state.clock.now(),
        )
        .await
        .map_err(ApiError::internal)?;
    Ok(axum::Json(RotatedSigningKey { kid, retired }))
}
