//! Revocation across the boundary.
//!
//! **At home** ([`introspect_for_peer`]): a trusted peer may introspect (RFC 7662) the
//! authorization grants this organisation issued *for it* — authenticating with
//! `private_key_jwt` signed by its organisation key (`iss` = `sub` = its issuer), verified
//! with the keys configured for it. A grant is active while everything it was derived from
//! is: the human's grant, the human, the agent, its key, and no revocation of the grant
//! itself — the same standing as an access token's. Anything else is `{"active": false}`.
//!
//! **At the peer** ([`spawn_poller`]): every `federation_poll_interval`, each authorization
//! grant behind a live local token is introspected at its home organisation; one that is no
//! longer active revokes every local token minted from it. Until the shared signals stream
//! lands, this is how a revocation at home reaches here within seconds. If the home
//! organisation cannot be reached, its tokens live on until they expire (minutes).

use std::time::Duration;

use serde_json::{Value, json};
use surety_core::audit::{Actor, EventKind, NewEvent};
use surety_jose::rfc7523;
use surety_store::PeerRecord;

use crate::app::{AppState, INTROSPECT_PATH};
use crate::error::ApiError;
use crate::extract::Form;
use crate::oauth::access_token::{Inactive, check_standing, verify_signed_grant};
use crate::oauth::client_auth::{client_assertion, verify_assertion};

/// Whether the client assertion of `form` claims to come from a federation peer (its `iss`
/// is a URL, where every registered client's is an id).
pub(crate) fn from_peer(form: &Form) -> bool {
    client_assertion(form)
        .ok()
        .and_then(|a| {
            a.issuer()
                .ok()
                .map(|i| i.starts_with("https://") || i.starts_with("http://"))
        })
        .unwrap_or(false)
}

/// Authenticates a trusted peer by its organisation key (`invalid_client` otherwise).
async fn authenticate_peer(state: &AppState, form: &Form) -> Result<PeerRecord, ApiError> {
    let decoded = client_assertion(form)?;
    let issuer = decoded
        .issuer()
        .map_err(|e| ApiError::invalid_client(e.to_string()))?
        .to_owned();
    let Some((peer, keys)) = super::peer_keys(state, &issuer, decoded.kid()).await? else {
        return Err(ApiError::invalid_client(
            "client authentication failed: not a trusted federation peer",
        ));
    };
    verify_assertion(state, &decoded, &keys, INTROSPECT_PATH).await?;
    Ok(peer)
}

/// `POST /oauth2/introspect` by a trusted peer, for an authorization grant issued for it.
pub(crate) async fn introspect_for_peer(state: &AppState, form: &Form) -> Result<Value, ApiError> {
    let peer = authenticate_peer(state, form).await?;
    let token = form
        .get("token")
        .ok_or_else(|| ApiError::invalid_request("`token` is required"))?;
    let inactive = json!({ "active": false });
    let signed = match verify_signed_grant(state, token).await {
        Ok(s) => s,
        Err(Inactive::Error(e)) => return Err(e),
        Err(_) => return Ok(inactive),
    };
    // A peer learns nothing about grants issued for others.
    if signed.claims.aud != peer.issuer {
        return Ok(inactive);
    }
    let active = match check_standing(state, signed).await {
        Ok(a) => a,
        Err(Inactive::Error(e)) => return Err(e),
        Err(
            Inactive::Because(why)
            | Inactive::Withdrawn(crate::oauth::access_token::Withdrawn { why, .. }),
        ) => {
            tracing::debug!(peer = %peer.issuer, reason = %why, "peer introspection: inactive grant");
            return Ok(inactive);
        }
    };
    let c = active.claims;
    Ok(json!({
        "active": true,
        "iss": c.iss,
        "sub": c.sub,
        "aud": c.aud,
        "client_id": c.client_id,
        "scope": c.scope,
        "exp": c.exp,
        "iat": c.iat,
        "jti": c.jti,
        "act": c.act,
        "cnf": c.cnf,
        // RFC 7662 §2.2: the kind of token, as `token_type` values go; an authorization
        // grant is not an access token of any type.
        "token_type": surety_api::oauth::TOKEN_TYPE_NOT_APPLICABLE,
    }))
}

/// Asks `peer` whether the authorization grant `assertion` is still active: `Some(false)`
/// only on a definite `{"active": false}`; `None` when the peer could not say.
async fn still_active(state: &AppState, peer: &PeerRecord, assertion: &str) -> Option<bool> {
    let endpoint = peer.introspection_endpoint.as_deref()?;
    let now = state.clock.now();
    let signer = state.keys.signer(state.store.as_ref(), now).await.ok()?;
    // `aud` is the peer's introspection endpoint (RFC 7523 §3 item 3).
    let client_assertion = rfc7523::create(
        &signer.key,
        &state.issuer,
        &state.issuer,
        endpoint,
        time::Duration::seconds(60),
        now,
    )
    .ok()?;
    let answer = state
        .egress
        .post_form(
            "introspection_endpoint",
            endpoint,
            &[
                ("token", assertion),
                (
                    "client_assertion_type",
                    surety_api::oauth::CLIENT_ASSERTION_TYPE_JWT_BEARER,
                ),
                ("client_assertion", &client_assertion),
            ],
        )
        .await;
    match answer {
        Ok(v) => v.get("active").and_then(Value::as_bool),
        Err(e) => {
            tracing::warn!(peer = %peer.issuer, error = %e, "federation: introspection at the peer failed");
            metrics::counter!("surety_federation_introspection_failures_total").increment(1);
            None
        }
    }
}

/// Grants of one peer introspected at once.
const POLL_CONCURRENCY: usize = 16;
/// Longest a round waits for one peer: a slow peer delays its own revocations, never
/// another peer's; what it did not answer is asked again next round.
const PEER_BUDGET: std::time::Duration = std::time::Duration::from_secs(10);

/// The grants of `peer` behind live tokens that it no longer honours, as far as it answers
/// within [`PEER_BUDGET`].
async fn withdrawn_at(
    state: &AppState,
    peer: &PeerRecord,
    live: Vec<surety_store::FederatedTokenRecord>,
) -> Vec<surety_store::FederatedTokenRecord> {
    use futures_util::StreamExt as _;
    let deadline = tokio::time::Instant::now() + PEER_BUDGET;
    let mut answers = futures_util::stream::iter(live)
        .map(|t| async move {
            (still_active(state, peer, &t.assertion).await == Some(false)).then_some(t)
        })
        .buffer_unordered(POLL_CONCURRENCY);
    let mut withdrawn = Vec::new();
    while let Ok(Some(answer)) = tokio::time::timeout_at(deadline, answers.next()).await {
        withdrawn.extend(answer);
    }
    withdrawn
}

/// One round: every live peer grant is introspected at its home, peers side by side;
/// withdrawn ones revoke their local tokens. Returns how many tokens were revoked.
pub(crate) async fn poll_once(state: &AppState) -> Result<u64, ApiError> {
    let now = state.clock.now();
    let mut by_peer: std::collections::HashMap<String, Vec<_>> = std::collections::HashMap::new();
    for t in state.store.live_federated_assertions(now).await? {
        by_peer.entry(t.peer.clone()).or_default().push(t);
    }
    let peers = state.store.list_peers().await?;
    let rounds = peers.iter().filter_map(|p| {
        let live = by_peer.remove(&p.issuer)?;
        Some(withdrawn_at(state, p, live))
    });
    let withdrawn: Vec<_> = futures_util::future::join_all(rounds)
        .await
        .into_iter()
        .flatten()
        .collect();
    let mut revoked = 0;
    for t in withdrawn {
        let at = state.clock.now();
        let event = NewEvent::new(EventKind::TokenRevoked, Actor::System, &t.assertion_jti, at)
            .details(json!({
                "peer": t.peer,
                "federation_grant": t.grant.to_string(),
                "authorization_grant": t.assertion_jti,
                "reason": "the home organisation no longer honours the authorization grant",
            }));
        let n = state
            .store
            .revoke_federated_tokens(&t.peer, &t.assertion_jti, at, &[event])
            .await?;
        metrics::counter!("surety_federation_revocations_total").increment(n);
        revoked += n;
    }
    Ok(revoked)
}

/// Polls forever, every `federation_poll_interval`.
pub(crate) fn spawn_poller(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let interval = state
            .config
            .federation_poll_interval
            .max(Duration::from_millis(100));
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = poll_once(&state).await {
                tracing::warn!(error = %e.description(), "federation: revocation poll failed");
            }
        }
    })
}
