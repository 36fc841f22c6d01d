//! What a component running in the server's process (the MCP gateway of `surety serve
//! --gateway`) may ask without going through HTTP: the same decisions and token standing,
//! for a registered resource server, with the same rules and audit events.

use surety_api::decisions::{DecisionInput, DecisionView};
use surety_core::id::ResourceServerId;
use surety_store::ResourceServer;

use crate::app::AppState;
use crate::error::ApiError;
use crate::oauth::access_token::{Inactive, verify_active};

/// The resource server registered as `id`, if it is active.
pub async fn resource_server(
    state: &AppState,
    id: ResourceServerId,
) -> Result<Option<ResourceServer>, ApiError> {
    Ok(state
        .store
        .get_resource_server(id)
        .await?
        .filter(|rs| rs.status == "active"))
}

/// `POST /v1/decisions` as `rs`.
pub async fn decide(
    state: &AppState,
    rs: &ResourceServer,
    input: &DecisionInput,
) -> Result<DecisionView, ApiError> {
    crate::decisions::decide_native(state, rs, input).await
}

/// Whether `token`, whose `jti` is `jti`, is active and meant for `rs` (introspection's
/// answer, RFC 7662).
pub async fn is_active(
    state: &AppState,
    rs: &ResourceServer,
    token: &str,
    jti: &str,
) -> Result<bool, ApiError> {
    if crate::federation::token::is_federated(token) {
        let answer = crate::federation::token::introspect(state, token, &rs.audience).await?;
        return Ok(answer.is_some_and(|a| a["jti"] == jti));
    }
    match verify_active(state, token).await {
        Ok(t) => Ok(t.claims.jti == jti
            && t.claims.aud == rs.audience
            && t.claims.approval_id.is_none()),
        Err(Inactive::Error(e)) => Err(e),
        Err(_) => Ok(false),
    }
}
