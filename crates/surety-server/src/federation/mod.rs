//! Federation: agents of one organisation acting in another, with proof of possession and
//! a verifiable delegation chain, under the receiving organisation's policy.
//!
//! - [`admin`]: trusted peers (`/v1/federation/peers`: issuer + pinned JWKS, or RFC 8414
//!   metadata fetched under [`crate::egress`] limits) and federation grants
//!   (`/v1/federation/grants`: what a peer's agents may do here; nothing by default).
//! - [`chaining`]: identity and authorization chaining across domains. At home, token
//!   exchange (RFC 8693) with `requested_token_type` = JWT and the peer as `audience` yields
//!   a short-lived authorization grant for the peer; at the peer, the RFC 7523 `jwt-bearer`
//!   grant with it, client authentication and a DPoP proof by the key it names, yields a
//!   local DPoP-bound token whose `act` chain and `sub_id` keep the foreign identities.
//! - [`token`]: checking those local tokens (and peers' one-time approval tokens) here.
//! - [`revocation`]: the home organisation answers peers' introspection of the grants it
//!   issued them; each peer polls, and a withdrawn grant revokes its local tokens.
//! - [`card`]: signed A2A agent cards.
//!
//! A peer's keys come only from what an admin configured — never from a URL in an incoming
//! JWS (`jku`, `x5u` are not even read).

pub(crate) mod admin;
pub(crate) mod card;
pub(crate) mod chaining;
pub(crate) mod revocation;
pub(crate) mod token;

use serde_json::{Value, json};
use surety_core::audit::{Actor, EventKind, NewEvent};
use surety_jose::PublicJwk;
use surety_store::PeerRecord;
use time::Duration;

use crate::app::AppState;
use crate::auth::to_time;
use crate::egress::Egress;
use crate::error::ApiError;

/// Most keys a peer may publish.
const MAX_PEER_KEYS: usize = 20;
/// An unknown `kid` refetches a peer's keys at most this often.
const UNKNOWN_KID_REFETCH: Duration = Duration::seconds(10);

/// A JWK Set of public signing keys, as kept for a peer: every key parses as a public key
/// Surety can verify with (RFC 7517 §5); at least one, at most [`MAX_PEER_KEYS`].
pub(crate) fn validate_jwks(value: &Value) -> Result<Value, String> {
    let keys = value
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("a JWK Set is an object with a `keys` array (RFC 7517 §5)")?;
    if keys.is_empty() || keys.len() > MAX_PEER_KEYS {
        return Err(format!("a peer's JWK Set holds 1 to {MAX_PEER_KEYS} keys"));
    }
    let mut kept = Vec::with_capacity(keys.len());
    for (i, k) in keys.iter().enumerate() {
        let public = PublicJwk::from_json(k).map_err(|e| format!("`keys[{i}]`: {e}"))?;
        let mut jwk = public.to_json();
        if let Some(kid) = k.get("kid").and_then(Value::as_str) {
            jwk["kid"] = json!(kid);
        }
        kept.push(jwk);
    }
    Ok(json!({ "keys": kept }))
}

/// Fetches a peer's metadata from `metadata_url`, checks that it names `issuer` (RFC 8414
/// §3.3), then its keys from `jwks_uri`. Returns the keys and the introspection endpoint.
pub(crate) async fn fetch_peer(
    egress: &Egress,
    issuer: &str,
    metadata_url: &str,
) -> Result<(Value, Option<String>), String> {
    let metadata = egress.get_json("metadata_url", metadata_url).await?;
    let named = metadata.get("issuer").and_then(Value::as_str);
    if named != Some(issuer) {
        return Err(format!(
            "the metadata names issuer `{}`, not `{issuer}` (RFC 8414 §3.3)",
            named
                .unwrap_or("(none)")
                .chars()
                .take(200)
                .collect::<String>()
        ));
    }
    let jwks_uri = metadata
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or("the metadata has no `jwks_uri`")?;
    let jwks = validate_jwks(&egress.get_json("jwks_uri", jwks_uri).await?)?;
    let introspection = metadata
        .get("introspection_endpoint")
        .and_then(Value::as_str)
        .map(|u| {
            egress
                .check("introspection_endpoint", u)
                .map(|u| u.to_string())
        })
        .transpose()?;
    Ok((jwks, introspection))
}

/// The keys of `peer` a JWS naming `kid` may be signed with.
fn candidates(peer: &PeerRecord, kid: Option<&str>) -> Vec<PublicJwk> {
    let keys = peer.jwks.get("keys").and_then(Value::as_array);
    keys.into_iter()
        .flatten()
        .filter(|k| match (kid, k.get("kid").and_then(Value::as_str)) {
            (Some(wanted), Some(has)) => wanted == has,
            _ => true,
        })
        .filter_map(|k| {
            let mut k = k.clone();
            if let Some(o) = k.as_object_mut() {
                o.remove("kid");
            }
            PublicJwk::from_json(&k).ok()
        })
        .collect()
}

fn names_kid(peer: &PeerRecord, kid: &str) -> bool {
    peer.jwks
        .get("keys")
        .and_then(Value::as_array)
        .is_some_and(|keys| {
            keys.iter()
                .any(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
        })
}

/// A trusted peer and the keys a JWS it signed (naming `kid`) may verify with; `None` when
/// `issuer` is not a trusted peer. Fetched keys are refreshed when older than
/// `federation_jwks_refresh`, or sooner when `kid` is unknown (a rotation at the peer); a
/// failed refresh keeps the keys already known.
pub(crate) async fn peer_keys(
    state: &AppState,
    issuer: &str,
    kid: Option<&str>,
) -> Result<Option<(PeerRecord, Vec<PublicJwk>)>, ApiError> {
    let Some(mut peer) = state.store.get_peer(issuer).await? else {
        return Ok(None);
    };
    let now = state.clock.now();
    if let (Some(url), "metadata") = (peer.metadata_url.clone(), peer.source.as_str()) {
        let age = peer.fetched_at.map_or(Duration::MAX, |at| now - at);
        let stale = age >= to_time(state.config.federation_jwks_refresh);
        let unknown = kid.is_some_and(|k| !names_kid(&peer, k));
        // One attempt per peer per 10 s on this node, whatever callers send and whether
        // the last attempt worked: a peer that is down is not asked again by every request.
        if (stale || unknown) && state.peer_fetches.claim(issuer, now, UNKNOWN_KID_REFETCH) {
            match fetch_peer(&state.egress, issuer, &url).await {
                Ok((jwks, introspection)) => {
                    let mut events = Vec::new();
                    if jwks != peer.jwks {
                        events.push(
                            NewEvent::new(
                                EventKind::FederationPeerKeysChanged,
                                Actor::System,
                                issuer,
                                now,
                            )
                            .details(json!({"name": peer.name, "keys": key_ids(&jwks)})),
                        );
                    }
                    state
                        .store
                        .update_peer_keys(issuer, &jwks, introspection.as_deref(), now, &events)
                        .await?;
                    peer.jwks = jwks;
                    peer.introspection_endpoint = introspection;
                    peer.fetched_at = Some(now);
                }
                Err(e) => {
                    tracing::warn!(peer = %issuer, error = %e, "federation: refreshing a peer's keys failed; keeping the keys known");
                    metrics::counter!("surety_federation_key_fetch_failures_total").increment(1);
                }
            }
        }
    }
    let keys = candidates(&peer, kid);
    Ok(Some((peer, keys)))
}

/// When this node last tried to fetch each peer's keys.
#[derive(Debug, Default)]
pub(crate) struct FetchLog(
    std::sync::Mutex<std::collections::HashMap<String, time::OffsetDateTime>>,
);

impl FetchLog {
    /// Whether `issuer` may be fetched now (no attempt within `every`); if so, the attempt
    /// is recorded at once, so that concurrent callers do not fetch it too.
    fn claim(&self, issuer: &str, now: time::OffsetDateTime, every: Duration) -> bool {
        let mut log = match self.0.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        if log.get(issuer).is_some_and(|at| now - *at < every) {
            return false;
        }
        log.insert(issuer.to_owned(), now);
        true
    }
}

/// The RFC 7638 thumbprints of a JWK Set's keys.
pub(crate) fn key_ids(jwks: &Value) -> Vec<String> {
    jwks.get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|k| {
            let mut k = k.clone();
            k.as_object_mut()?.remove("kid");
            PublicJwk::from_json(&k).ok().map(|p| p.thumbprint())
        })
        .collect()
}
