//! Signed agent cards (A2A): an agent whose owner publishes one is described at
//! `/agents/{id}/.well-known/agent-card.json`, with a Surety extension naming its issuer,
//! its id and its current public keys, and signed by the organisation's key (a JWS with a
//! detached payload over the card's canonical JSON without `signatures`, as A2A signs
//! cards). A peer that verifies the signature with this organisation's keys knows which
//! organisation vouches for which agent key.
//!
//! Only what the owner wrote (description, URL, skills) is stored; the card is assembled
//! and signed on each request, so it always shows the current keys and signing key, and an
//! agent that is not active has no card.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use surety_api::federation::PublishCard;
use surety_core::agent::{Agent, AgentStatus};
use surety_core::audit::{EventKind, NewEvent};
use surety_core::id::{AgentId, PrincipalId};
use surety_core::key::KeyStatus;

use crate::admin::{actor, parse};
use crate::app::{AppState, JWKS_PATH};
use crate::auth::AdminCaller;
use crate::error::ApiError;
use crate::extract::{Json, Path};

type Result<T> = std::result::Result<T, ApiError>;

/// The A2A protocol version the card follows.
pub const A2A_PROTOCOL_VERSION: &str = "0.3.0";
/// The URI of Surety's agent-identity extension on a card.
pub const IDENTITY_EXTENSION: &str = "urn:surety:a2a:agent-identity:v1";
/// Most skills on a card.
const MAX_SKILLS: usize = 32;

fn text(field: &str, value: &str, max: usize) -> Result<String> {
    surety_core::validate::free_text(field, value, max)
        .map_err(|e| ApiError::invalid_request(e.to_string()))
}

/// What the owner wrote, validated.
fn validate(body: &PublishCard) -> Result<Value> {
    let url = surety_core::grant::resource_url("url", &body.url)
        .map_err(|e| ApiError::invalid_request(e.to_string()))?;
    if body.skills.len() > MAX_SKILLS {
        return Err(ApiError::invalid_request(format!(
            "`skills`: at most {MAX_SKILLS}"
        )));
    }
    let mut skills = Vec::with_capacity(body.skills.len());
    for s in &body.skills {
        let tags = s
            .tags
            .iter()
            .take(16)
            .map(|t| text("skills.tags", t, 64))
            .collect::<Result<Vec<_>>>()?;
        skills.push(json!({
            "id": text("skills.id", &s.id, 64)?,
            "name": text("skills.name", &s.name, 200)?,
            "description": text("skills.description", &s.description, 1024)?,
            "tags": tags,
        }));
    }
    Ok(json!({
        "description": text("description", &body.description, 1024)?,
        "url": url,
        "skills": skills,
    }))
}

async fn owned_agent(
    state: &AppState,
    caller: &surety_core::access::Caller,
    id: &str,
) -> Result<Agent> {
    let id: AgentId = parse("id", id)?;
    let agent = state
        .store
        .get_agent(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("agent `{id}` not found")))?;
    caller.may_change_agent_keys(&agent)?;
    Ok(agent)
}

/// Publishes (or replaces) an agent's card: its owner or an admin.
#[utoipa::path(put, path = "/v1/agents/{id}/card", tag = "agents", params(("id" = String, Path)), request_body = PublishCard, security(("dpop" = [])),
    responses((status = 200, description = "The card as served, signed"), (status = 400, body = surety_api::ErrorBody), (status = 403, body = surety_api::ErrorBody), (status = 404, body = surety_api::ErrorBody), (status = 409, description = "the agent is not active", body = surety_api::ErrorBody)))]
pub async fn publish(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<String>,
    Json(body): Json<PublishCard>,
) -> Result<axum::Json<Value>> {
    let now = state.clock.now();
    let agent = owned_agent(&state, &caller, &id).await?;
    if agent.status != AgentStatus::Active {
        return Err(ApiError::conflict(format!(
            "agent `{}` is {}: only an active agent has a card",
            agent.id, agent.status
        )));
    }
    let written = validate(&body)?;
    let event = NewEvent::new(EventKind::AgentCardPublished, actor(&caller), agent.id, now)
        .agent(agent.id)
        .human(agent.owner)
        .details(json!({"url": written["url"]}));
    state
        .store
        .put_agent_card(agent.id, &written, now, &[event])
        .await?;
    Ok(axum::Json(signed_card(&state, &agent, &written).await?))
}

/// Withdraws an agent's card.
#[utoipa::path(delete, path = "/v1/agents/{id}/card", tag = "agents", params(("id" = String, Path)), security(("dpop" = [])),
    responses((status = 204), (status = 403, body = surety_api::ErrorBody), (status = 404, body = surety_api::ErrorBody)))]
pub async fn withdraw(
    State(state): State<AppState>,
    AdminCaller(caller): AdminCaller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    let now = state.clock.now();
    let agent = owned_agent(&state, &caller, &id).await?;
    let event = NewEvent::new(EventKind::AgentCardWithdrawn, actor(&caller), agent.id, now)
        .agent(agent.id)
        .human(agent.owner);
    if state.store.delete_agent_card(agent.id, &[event]).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "agent `{}` has no card",
            agent.id
        )))
    }
}

/// The signed card of an agent that published one (public, like the organisation's keys).
#[utoipa::path(get, path = "/agents/{id}/.well-known/agent-card.json", tag = "agents", params(("id" = String, Path)),
    responses((status = 200, description = "An A2A agent card signed by the organisation"), (status = 404, description = "no such agent, no card, or the agent is not active", body = surety_api::ErrorBody)))]
pub async fn serve(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    let found = async {
        let id: AgentId = id
            .parse()
            .map_err(|_| ApiError::not_found("no such agent card"))?;
        let agent = state
            .store
            .get_agent(id)
            .await?
            .filter(|a| a.status == AgentStatus::Active);
        let written = state.store.agent_card(id).await?;
        match (agent, written) {
            (Some(agent), Some(written)) => signed_card(&state, &agent, &written).await,
            _ => Err(ApiError::not_found("no such agent card")),
        }
    };
    match found.await {
        Ok(card) => {
            let mut response = axum::Json(card).into_response();
            response.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=60"),
            );
            response
        }
        Err(e) => e.into_response(),
    }
}

/// The card of `agent` from what its owner wrote, signed by the organisation's key.
async fn signed_card(state: &AppState, agent: &Agent, written: &Value) -> Result<Value> {
    let now = state.clock.now();
    let keys: Vec<Value> = state
        .store
        .list_keys(PrincipalId::Agent(agent.id))
        .await?
        .into_iter()
        .filter(|k| k.status == KeyStatus::Active)
        .map(|k| {
            let mut jwk = k.jwk.clone();
            jwk["kid"] = json!(k.kid);
            jwk
        })
        .collect();
    let mut card = json!({
        "protocolVersion": A2A_PROTOCOL_VERSION,
        "name": agent.name,
        "description": written["description"],
        "url": written["url"],
        "version": "1.0.0",
        "provider": {"organization": state.issuer.as_ref(), "url": state.issuer.as_ref()},
        "capabilities": {
            "extensions": [{
                "uri": IDENTITY_EXTENSION,
                "description": "The organisation that vouches for this agent and the keys it proves possession with (DPoP, private_key_jwt).",
                "required": false,
                "params": {
                    "issuer": state.issuer.as_ref(),
                    "agent_id": agent.id.to_string(),
                    "jwks": {"keys": keys},
                    "token_endpoint": state.url(crate::app::TOKEN_PATH),
                },
            }],
        },
        "defaultInputModes": ["application/json"],
        "defaultOutputModes": ["application/json"],
        "skills": written["skills"],
    });
    let signer = state
        .keys
        .signer(state.store.as_ref(), now)
        .await
        .map_err(ApiError::internal)?;
    let mut header = Map::new();
    header.insert("typ".into(), json!("JOSE"));
    header.insert("kid".into(), json!(signer.kid));
    header.insert("jku".into(), json!(state.url(JWKS_PATH)));
    let payload = surety_core::canonical::to_string(&card);
    let (protected, signature) =
        surety_jose::jws::sign_detached(header, payload.as_bytes(), &signer.key)
            .map_err(ApiError::internal)?;
    card["signatures"] = json!([{ "protected": protected, "signature": signature }]);
    Ok(card)
}
