//! Client authentication with `private_key_jwt` (RFC 7523 §2.2 and §3, OpenID Connect Core
//! §9): the client signs an assertion with a key registered for it. Agents authenticate
//! with one of their active keys; resource servers with their registered key. There are no
//! client secrets. Every failure is `401 invalid_client` (RFC 6749 §5.2).

use surety_api::oauth::CLIENT_ASSERTION_TYPE_JWT_BEARER;
use surety_core::agent::{Agent, AgentStatus};
use surety_core::id::{AgentId, PrincipalId, ResourceServerId};
use surety_core::key::{KeyRecord, KeyStatus};
use surety_jose::{PublicJwk, rfc7523};
use surety_store::ResourceServer;

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::Form;

/// An authenticated client.
#[derive(Debug)]
pub(crate) enum Client {
    /// An agent, with the thumbprints of its active keys.
    Agent(Agent, Vec<String>),
    /// A registered resource server.
    ResourceServer(ResourceServer),
}

fn invalid(what: impl std::fmt::Display) -> ApiError {
    ApiError::invalid_client(format!("client authentication failed: {what}"))
}

/// The `private_key_jwt` assertion of a request, decoded but not verified yet, after the
/// checks of RFC 7521 §4.2 (`client_assertion_type`) and RFC 7523 §3 items 1–2 (`iss` =
/// `sub`, and = `client_id` when sent). Its `iss` names the client.
pub(crate) fn client_assertion(form: &Form) -> Result<rfc7523::Assertion<'_>, ApiError> {
    match form.get("client_assertion_type") {
        Some(CLIENT_ASSERTION_TYPE_JWT_BEARER) => {}
        Some(_) => {
            return Err(invalid(format!(
                "`client_assertion_type` must be `{CLIENT_ASSERTION_TYPE_JWT_BEARER}` (private_key_jwt)"
            )));
        }
        None => {
            return Err(invalid(
                "use private_key_jwt: `client_assertion_type` and `client_assertion` are required",
            ));
        }
    }
    let assertion = form
        .get("client_assertion")
        .ok_or_else(|| invalid("`client_assertion` is required"))?;
    let decoded =
        rfc7523::decode(assertion).map_err(|e| invalid(format!("invalid assertion: {e}")))?;
    let issuer = decoded.issuer().map_err(invalid)?;
    if decoded.subject().map_err(invalid)? != issuer {
        return Err(invalid("`iss` and `sub` must both be the client id"));
    }
    if let Some(client_id) = form.get("client_id")
        && client_id != issuer
    {
        return Err(invalid("`client_id` does not match the assertion's `iss`"));
    }
    Ok(decoded)
}

/// Verifies a client assertion sent to `endpoint` with one of `keys` — signature, `aud`,
/// `exp`, `nbf`, `iat` (RFC 7523 §3 items 3–6) — and records its `jti` (item 7).
pub(crate) async fn verify_assertion(
    state: &AppState,
    decoded: &rfc7523::Assertion<'_>,
    keys: &[PublicJwk],
    endpoint: &str,
) -> Result<rfc7523::VerifiedAssertion, ApiError> {
    let audiences = super::assertion_audiences(state, endpoint);
    let audiences: Vec<&str> = audiences.iter().map(String::as_str).collect();
    let policy = super::assertion_policy(state, &audiences);
    let mut verified = None;
    let mut last_error = None;
    for key in keys {
        match decoded.verify(key, &policy, state.clock.now()) {
            Ok(v) => {
                verified = Some(v);
                break;
            }
            Err(e) => last_error = Some(e),
        }
    }
    let verified = verified.ok_or_else(|| {
        invalid(format!(
            "invalid assertion: {}",
            last_error.map_or_else(
                || "no key of the client matches".to_owned(),
                |e| e.to_string()
            )
        ))
    })?;
    if !state
        .remember(verified.replay_key.clone(), verified.replay_until)
        .await?
    {
        return Err(invalid("this assertion was already used (`jti` replay)"));
    }
    Ok(verified)
}

/// Authenticates the client of a request to `endpoint` (its path).
pub(crate) async fn authenticate(
    state: &AppState,
    form: &Form,
    endpoint: &str,
) -> Result<Client, ApiError> {
    // 1–2.
    let decoded = client_assertion(form)?;
    let issuer = decoded.issuer().map_err(invalid)?.to_owned();
    // 3. The signing key is one registered for that client.
    let (client, keys) = if let Ok(id) = issuer.parse::<AgentId>() {
        let agent = state
            .store
            .get_agent(id)
            .await?
            .ok_or_else(|| invalid(format!("unknown client `{id}`")))?;
        let keys: Vec<KeyRecord> = state
            .store
            .list_keys(PrincipalId::Agent(id))
            .await?
            .into_iter()
            .filter(|k| k.status == KeyStatus::Active)
            .collect();
        let kids = keys.iter().map(|k| k.kid.clone()).collect();
        let keys = keys.into_iter().map(|k| (k.kid, k.jwk)).collect::<Vec<_>>();
        (Client::Agent(agent, kids), keys)
    } else if let Ok(id) = issuer.parse::<ResourceServerId>() {
        let rs = state
            .store
            .get_resource_server(id)
            .await?
            .filter(|rs| rs.status == "active")
            .ok_or_else(|| invalid(format!("unknown client `{id}`")))?;
        let keys = vec![(rs.kid.clone(), rs.jwk.clone())];
        (Client::ResourceServer(rs), keys)
    } else {
        return Err(invalid(format!(
            "unknown client `{}`",
            issuer.chars().take(64).collect::<String>()
        )));
    };
    let candidates: Vec<&(String, serde_json::Value)> = match decoded.kid() {
        Some(kid) => keys.iter().filter(|(k, _)| k == kid).collect(),
        None => keys.iter().collect(),
    };
    if candidates.is_empty() {
        return Err(invalid(
            "the assertion is not signed by an active key of the client",
        ));
    }
    // 4–5. Signature, `aud`, `exp`, `nbf`, `iat`, and single use of `jti` (RFC 7523 §3
    //      items 3–7).
    let keys = candidates
        .into_iter()
        .map(|(_, jwk)| PublicJwk::from_json(jwk).map_err(ApiError::internal))
        .collect::<Result<Vec<_>, _>>()?;
    verify_assertion(state, &decoded, &keys, endpoint).await?;
    // 6. The client is in a state to act.
    if let Client::Agent(agent, _) = &client
        && agent.status != AgentStatus::Active
    {
        return Err(invalid(format!("agent `{}` is {}", agent.id, agent.status)));
    }
    Ok(client)
}
