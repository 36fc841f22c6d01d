//! OpenID CIBA Core 1.0: an agent asks its human to approve one action, out of band.
//!
//! - `POST /oauth2/bc-authorize` (§7): `private_key_jwt` client authentication by an active
//!   agent; `login_hint` (the principal's id or e-mail), `authorization_details` (RFC 9396,
//!   one `surety_action`), optional `binding_message`, `requested_expiry`, `scope` (ignored:
//!   no ID token is issued) and, in ping mode, `client_notification_token`. The action must
//!   fall under an active grant of that human to that agent. Answer: `auth_req_id`,
//!   `expires_in`, `interval`.
//! - `grant_type=urn:openid:params:grant-type:ciba` at the token endpoint (§10–11): with a
//!   DPoP proof by one of the agent's keys. `authorization_pending`; `slow_down` when polled
//!   faster than the interval (which then grows by 5 s); `access_denied`; `expired_token`; and
//!   once approved, a one-time approval token — an RFC 9068 JWT bound to the proof's key,
//!   carrying the approved `authorization_details`, no scope, `exp` ≤ 5 min. An `auth_req_id`
//!   is redeemed once, by the client that asked.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use surety_api::oauth::{BackchannelResponse, TOKEN_TYPE_DPOP, TokenResponse};
use surety_core::approval::{
    self, ActionDetails, Approval, ApprovalStatus, Delivery, check_binding_message,
};
use surety_core::audit::{Actor, EventKind, NewEvent};
use surety_core::grant::{Grant, GrantStatus};
use surety_core::human::HumanStatus;
use surety_core::id::{HumanId, TokenId};
use surety_jose::rfc9068::{AccessTokenClaims, Act, Cnf};
use surety_jose::sha256_b64;
use surety_store::{ApprovalTransition, GrantFilter};

use super::client_auth::{Client, authenticate};
use crate::app::{AppState, BC_AUTHORIZE_PATH, TOKEN_PATH};
use crate::approvals::{self, NewRequest, seconds_until};
use crate::auth::to_time;
use crate::error::ApiError;
use crate::extract::Form;

type Result<T> = std::result::Result<T, ApiError>;

/// Longest lifetime of a one-time approval token.
const APPROVAL_TOKEN_TTL: time::Duration = time::Duration::minutes(5);
/// Longest `client_notification_token` accepted (CIBA §7.1 recommends 128 bits at least).
const MAX_NOTIFICATION_TOKEN: usize = 1024;

/// Backchannel authentication endpoint.
#[utoipa::path(
    post,
    path = "/oauth2/bc-authorize",
    tag = "oauth",
    request_body(
        content_type = "application/x-www-form-urlencoded",
        description = "OpenID CIBA Core 1.0 §7.1: `login_hint` (a human id or e-mail), `authorization_details` \
            (RFC 9396: one `surety_action` with `action`, `resource` {type, id}, `arguments`, `locations` [resource server]), \
            optional `binding_message`, `requested_expiry` (seconds), `scope`, `client_notification_token` (ping mode), \
            and `private_key_jwt` client authentication."
    ),
    responses(
        (status = 200, description = "The request is open; poll (or wait for the ping) with its `auth_req_id`", body = BackchannelResponse),
        (status = 400, description = "`invalid_request`, `unknown_user_id`, `invalid_binding_message`, `invalid_authorization_details` or `unauthorized_client`", body = surety_api::ErrorBody),
        (status = 401, description = "`invalid_client`", body = surety_api::ErrorBody),
        (status = 403, description = "`access_denied`: no active grant of the human to the agent covers the action (CIBA §13), or the agent has too many requests waiting", body = surety_api::ErrorBody),
    )
)]
pub async fn bc_authorize(State(state): State<AppState>, form: Form) -> Response {
    match open(&state, &form).await {
        Ok(body) => axum::Json(body).into_response(),
        Err(e) => {
            metrics::counter!("surety_ciba_errors_total", "error" => e.code()).increment(1);
            e.into_response()
        }
    }
}

async fn open(state: &AppState, form: &Form) -> Result<BackchannelResponse> {
    let now = state.clock.now();
    let client = match authenticate(state, form, BC_AUTHORIZE_PATH).await? {
        Client::Agent(agent, _) => agent,
        Client::ResourceServer(_) => {
            return Err(ApiError::unauthorized_client(
                "only agents ask for approvals; a resource server opens one through a step-up decision (`request_approval`)",
            ));
        }
    };
    // §7.1: exactly one hint.
    let hints = ["login_hint", "login_hint_token", "id_token_hint"]
        .iter()
        .filter(|h| form.get(h).is_some())
        .count();
    if hints != 1 {
        return Err(ApiError::invalid_request(
            "exactly one of `login_hint`, `login_hint_token` and `id_token_hint` is required",
        ));
    }
    let hint = form.get("login_hint").ok_or_else(|| {
        ApiError::invalid_request("only `login_hint` (a human id or e-mail) is supported")
    })?;
    let principal = find_human(state, hint).await?;
    let details_text = form.get("authorization_details").ok_or_else(|| {
        ApiError::invalid_request("`authorization_details` is required: the action to approve")
    })?;
    let details: Value = serde_json::from_str(details_text).map_err(|_| {
        ApiError::ciba(
            "invalid_authorization_details",
            "`authorization_details` is not JSON",
        )
    })?;
    let details = ActionDetails::parse(&details)
        .map_err(|e| ApiError::ciba("invalid_authorization_details", e.0))?;
    let binding_message = match form.get("binding_message") {
        Some(m) => {
            check_binding_message(m).map_err(|e| ApiError::ciba("invalid_binding_message", e))?;
            m.to_owned()
        }
        None => format!("{} on {}", details.action, details.resource_id)
            .chars()
            .take(approval::MAX_BINDING_MESSAGE)
            .collect(),
    };
    let max = to_time(state.config.approval_max_lifetime);
    let expires_in = match form.get("requested_expiry") {
        None => to_time(state.config.approval_ttl),
        Some(raw) => {
            let secs: i64 = raw.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                ApiError::invalid_request("`requested_expiry` must be a positive number of seconds")
            })?;
            let asked = time::Duration::seconds(secs);
            if asked > max {
                return Err(ApiError::invalid_request(format!(
                    "`requested_expiry` must be at most {} seconds",
                    max.whole_seconds()
                )));
            }
            asked
        }
    };
    let endpoint = state.store.notification_endpoint(client.id).await?;
    let delivery = match (endpoint, form.get("client_notification_token")) {
        (Some(endpoint), Some(token)) => {
            // RFC 6750 §2.1 `b64token`: it travels as `Authorization: Bearer <token>`.
            let body = token.trim_end_matches('=');
            let b64token = !body.is_empty()
                && body
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b));
            if !b64token || token.len() > MAX_NOTIFICATION_TOKEN {
                return Err(ApiError::invalid_request(format!(
                    "`client_notification_token` must be an RFC 6750 bearer token of at most {MAX_NOTIFICATION_TOKEN} bytes"
                )));
            }
            Delivery::Ping {
                endpoint,
                token: token.to_owned(),
                auth_req_id: String::new(),
            }
        }
        (Some(_), None) => {
            return Err(ApiError::invalid_request(
                "this agent is registered for ping mode: `client_notification_token` is required",
            ));
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid_request(
                "`client_notification_token` needs a registered notification endpoint (ping mode); this agent polls",
            ));
        }
        (None, None) => Delivery::Poll,
    };
    let grant = covering_grant(state, &client.id, principal, &details, now).await?;
    let (approval, auth_req_id) = approvals::open(
        state,
        NewRequest {
            client: &client,
            chain: vec![client.id],
            grant: &grant,
            details,
            binding_message,
            reasons: Vec::new(),
            requested_by: None,
            delivery,
            expires_in,
        },
    )
    .await?;
    Ok(BackchannelResponse {
        auth_req_id,
        expires_in: seconds_until(approval.expires_at, now),
        interval: u64::from(approval.interval),
    })
}

async fn find_human(state: &AppState, hint: &str) -> Result<HumanId> {
    let unknown = || ApiError::ciba("unknown_user_id", "no such human");
    let id = match hint.parse::<HumanId>() {
        Ok(id) => id,
        Err(_) if hint.contains('@') && hint.len() <= 320 => state
            .store
            .human_by_email(hint)
            .await?
            .ok_or_else(unknown)?,
        Err(_) => return Err(unknown()),
    };
    // An agent learns nothing of humans who never delegated to it: unknown, inactive and
    // unrelated humans answer alike.
    match state.store.get_human(id).await? {
        Some(h) if h.status == HumanStatus::Active => Ok(id),
        _ => Err(unknown()),
    }
}

/// The grant of `principal` to `agent` the action falls under: the one named in the details,
/// or the only active one covering the action and resource server. Nothing covers it →
/// `access_denied`: an agent cannot ask a human to approve what the human never delegated.
async fn covering_grant(
    state: &AppState,
    agent: &surety_core::id::AgentId,
    principal: HumanId,
    details: &ActionDetails,
    now: time::OffsetDateTime,
) -> Result<Grant> {
    let covers = |g: &Grant| {
        g.agent == *agent
            && g.principal == principal
            && g.status_at(now) == GrantStatus::Active
            && g.scopes.iter().any(|s| s == details.action)
            && g.resources.contains(&details.location)
    };
    let denied = || {
        ApiError::ciba_forbidden(
            "access_denied",
            "no active grant of this human to this agent covers the action at that resource server",
        )
    };
    if let Some(id) = details.grant {
        let g = state.store.get_grant(id).await?.ok_or_else(denied)?;
        return if covers(&g) { Ok(g) } else { Err(denied()) };
    }
    let filter = GrantFilter {
        agent: Some(*agent),
        principal: Some(principal),
        status: Some((GrantStatus::Active, now)),
        visible_to: None,
    };
    let page = surety_core::page::PageRequest {
        limit: 100,
        after: None,
    };
    let active = state.store.list_grants(&filter, &page).await?.items;
    if active.is_empty() {
        return Err(ApiError::ciba("unknown_user_id", "no such human"));
    }
    let mut found: Vec<Grant> = active.into_iter().filter(covers).collect();
    match found.len() {
        0 => Err(denied()),
        1 => Ok(found.remove(0)),
        _ => Err(ApiError::invalid_request(
            "several grants cover this action: name one with `grant_id` in `authorization_details`",
        )),
    }
}

/// The CIBA grant at the token endpoint.
pub(super) async fn redeem(
    state: &AppState,
    headers: &HeaderMap,
    form: &Form,
) -> Result<TokenResponse> {
    let now = state.clock.now();
    let proof = super::token_proof(state, headers).await?;
    let (client, keys) = match authenticate(state, form, TOKEN_PATH).await? {
        Client::Agent(agent, keys) => (agent, keys),
        Client::ResourceServer(_) => {
            return Err(ApiError::unauthorized_client(
                "the CIBA grant is for the agent that asked",
            ));
        }
    };
    if !keys.contains(&proof.jkt) {
        return Err(ApiError::invalid_dpop_proof(
            "the DPoP proof must be signed by an active key registered to the agent",
        ));
    }
    let id = form
        .get("auth_req_id")
        .ok_or_else(|| ApiError::invalid_request("`auth_req_id` is required"))?;
    // Another client's request is indistinguishable from an unknown one (§11: `invalid_grant`).
    let approval = state
        .store
        .find_approval(&sha256_b64(id.as_bytes()))
        .await?
        .filter(|a| a.client == client.id)
        .ok_or_else(|| ApiError::invalid_grant("unknown `auth_req_id`"))?;
    // A request a resource server opened on the agent's behalf is used by that resource
    // server's decision, not redeemed by the agent.
    if approval.requested_by.is_some() {
        return Err(ApiError::invalid_grant(
            "this request was opened by a resource server on the agent's behalf; only it can use the approval",
        ));
    }
    match approval.status_at(now) {
        ApprovalStatus::Pending => pending(state, &approval, now).await,
        ApprovalStatus::Approved => issue(state, &approval, &proof.jkt, now).await,
        ApprovalStatus::Expired => {
            approvals::note_expiry(state, &approval).await?;
            Err(ApiError::ciba(
                "expired_token",
                "the request expired before it was approved and redeemed",
            ))
        }
        ApprovalStatus::Denied => Err(ApiError::ciba("access_denied", "the request was denied")),
        ApprovalStatus::Cancelled => Err(ApiError::ciba(
            "access_denied",
            "the request was cancelled: the agent or its grant is no longer in force",
        )),
        ApprovalStatus::Redeemed | ApprovalStatus::Consumed => Err(ApiError::invalid_grant(
            "this `auth_req_id` was already redeemed",
        )),
    }
}

/// `authorization_pending`, or `slow_down` for a poll that came before the interval was up.
async fn pending(
    state: &AppState,
    a: &Approval,
    now: time::OffsetDateTime,
) -> Result<TokenResponse> {
    let interval = time::Duration::seconds(i64::from(a.interval));
    // From the request's creation for the first poll, from the last poll afterwards.
    let since = a.last_polled_at.unwrap_or(a.created_at);
    // A little slack for clients whose timers fire a few milliseconds early.
    let slow_down = |slower: u32| {
        ApiError::ciba(
            "slow_down",
            format!("polled too fast: wait at least {slower} seconds between polls"),
        )
    };
    let slower = a.interval.saturating_add(5);
    if now - since + time::Duration::milliseconds(250) < interval {
        state
            .store
            .record_poll(a.id, a.last_polled_at, now, slower)
            .await?;
        return Err(slow_down(slower));
    }
    // Two polls at once: the one recorded first is answered, the other is too fast.
    if !state
        .store
        .record_poll(a.id, a.last_polled_at, now, a.interval)
        .await?
    {
        return Err(slow_down(slower));
    }
    Err(ApiError::ciba(
        "authorization_pending",
        "the human has not answered yet",
    ))
}

/// The one-time approval token of an approved request.
async fn issue(
    state: &AppState,
    a: &Approval,
    jkt: &str,
    now: time::OffsetDateTime,
) -> Result<TokenResponse> {
    let grant = state
        .store
        .get_grant(a.grant)
        .await?
        .filter(|g| g.status_at(now) == GrantStatus::Active)
        .ok_or_else(|| {
            ApiError::ciba(
                "access_denied",
                "the grant this approval falls under is no longer in force",
            )
        })?;
    let principal = state.store.get_human(a.principal).await?;
    if principal.is_none_or(|h| h.status != HumanStatus::Active) {
        return Err(ApiError::ciba(
            "access_denied",
            "the principal is no longer active",
        ));
    }
    // Like any token minted from the grant: never past the grant's end.
    let ttl = APPROVAL_TOKEN_TTL
        .min(to_time(state.config.token_ttl))
        .min(grant.expires_at - now);
    let chain: Vec<String> = a.chain.iter().map(ToString::to_string).collect();
    let act = Act::from_chain(&chain).ok_or_else(|| ApiError::internal("empty chain"))?;
    let details = a.details.to_authorization_details(a.grant);
    let claims = AccessTokenClaims {
        iss: state.issuer.to_string(),
        sub: a.principal.to_string(),
        sub_id: None,
        aud: a.details.location.clone(),
        client_id: a.client.to_string(),
        iat: now.unix_timestamp(),
        exp: (now + ttl).unix_timestamp(),
        jti: TokenId::new(now).to_string(),
        scope: String::new(),
        act,
        cnf: Cnf {
            jkt: jkt.to_owned(),
        },
        grant_id: a.grant.to_string(),
        derived_from: Vec::new(),
        authorization_details: Some(details.clone()),
        approval_id: Some(a.id.to_string()),
        resource: None,
        constraints: None,
    };
    let token = super::sign_token(state, &claims, false).await?;
    let events = [
        NewEvent::new(EventKind::ApprovalRedeemed, Actor::Agent(a.client), a.id, now)
            .agent(a.client)
            .human(a.principal)
            .details(json!({"token_jti": claims.jti, "waited_ms": (now - a.updated_at).whole_milliseconds()})),
        NewEvent::new(EventKind::TokenIssued, Actor::Agent(a.client), &claims.jti, now)
            .agent(a.client)
            .human(a.principal)
            .details(json!({
                "grant_id": claims.grant_id,
                "approval_id": a.id.to_string(),
                "aud": claims.aud,
                "authorization_details": details,
                "act": claims.act,
                "cnf": claims.cnf,
                "exp": claims.exp,
            })),
    ];
    let change = ApprovalTransition {
        id: a.id,
        from: ApprovalStatus::Approved,
        to: ApprovalStatus::Redeemed,
        token_jti: Some(claims.jti.clone()),
        at: now,
    };
    match state.store.transition_approval(&change, &events).await {
        Ok(()) => {}
        // Redeemed (or cancelled) by a concurrent request first: §7.3, once only.
        Err(surety_store::StoreError::Stale) => {
            return Err(ApiError::invalid_grant(
                "this `auth_req_id` was already redeemed",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    metrics::counter!("surety_tokens_issued_total", "kind" => "approval").increment(1);
    Ok(TokenResponse {
        access_token: token,
        token_type: TOKEN_TYPE_DPOP.into(),
        expires_in: u64::try_from(claims.exp - claims.iat).unwrap_or(0),
        scope: String::new(),
        issued_token_type: None,
        authorization_details: Some(details),
    })
}
