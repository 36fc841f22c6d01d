//! The admin API (`/v1/…`): humans, enrollment, agents and their keys, the audit log.
//! Handlers parse, ask `surety-core` whether the caller may and whether the transition is
//! allowed, then apply the decision through the store with its audit event.

pub mod agents;
pub mod approvals;
pub mod audit;
pub mod credentials;
pub mod enroll;
pub mod grants;
pub mod humans;
pub mod inventory;
pub mod policies;

use std::str::FromStr;

use serde_json::Value;
use surety_core::access::Caller;
use surety_core::audit::Actor;
use surety_core::id::PrincipalId;
use surety_core::key::{KeyRecord, KeyStatus};
use surety_core::page::PageRequest;
use surety_jose::{JoseError, PublicJwk};
use time::OffsetDateTime;

use crate::error::ApiError;

/// Parses an id or enum from a path or query value, naming the field on failure.
pub(crate) fn parse<T>(field: &str, raw: &str) -> Result<T, ApiError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    raw.parse()
        .map_err(|e| ApiError::invalid_request(format!("`{field}`: {e}")))
}

/// Parses an optional query value.
pub(crate) fn parse_opt<T>(field: &str, raw: Option<&str>) -> Result<Option<T>, ApiError>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    raw.map(|r| parse(field, r)).transpose()
}

/// Validates paging parameters.
pub(crate) fn page(limit: Option<u32>, cursor: Option<String>) -> Result<PageRequest, ApiError> {
    PageRequest::new(limit, cursor).map_err(|e| ApiError::invalid_request(e.to_string()))
}

/// A validated, non-empty reason from an optional body.
pub(crate) fn reason(body: Option<surety_api::admin::Reason>) -> Result<Option<String>, ApiError> {
    body.and_then(|b| b.reason)
        .map(|r| {
            surety_core::validate::free_text("reason", &r, surety_core::validate::MAX_REASON)
                .map_err(|e| ApiError::invalid_request(e.to_string()))
        })
        .transpose()
        .map(|r| r.filter(|r| !r.is_empty()))
}

/// The audit actor for a caller.
pub(crate) fn actor(caller: &Caller) -> Actor {
    Actor::Human(caller.id)
}

/// Validates a submitted public JWK, naming the offending member as `field.member`.
pub(crate) fn public_key(field: &str, value: &Value) -> Result<PublicJwk, ApiError> {
    PublicJwk::from_json(value).map_err(|e| match e {
        JoseError::InvalidJwk {
            field: member,
            reason,
        } => ApiError::invalid_request(format!("`{field}.{member}`: {reason}")),
        other => ApiError::invalid_request(format!("`{field}`: {other}")),
    })
}

/// A new, active key record for `holder`.
pub(crate) fn key_record(jwk: &PublicJwk, holder: PrincipalId, now: OffsetDateTime) -> KeyRecord {
    KeyRecord {
        kid: jwk.thumbprint(),
        holder,
        alg: jwk.key_alg().as_str().to_owned(),
        jwk: jwk.to_json(),
        status: KeyStatus::Active,
        created_at: now,
        status_changed_at: None,
    }
}
