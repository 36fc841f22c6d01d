//! Rows as both backends return them, and their conversion to domain types. A row that does
//! not convert is reported as [`StoreError::Corrupt`], never silently repaired.

use std::collections::BTreeMap;
use std::str::FromStr;

use surety_core::agent::Agent;
use surety_core::audit::{AuditEvent, NewEvent};
use surety_core::grant::Grant;
use surety_core::human::Human;
use surety_core::key::KeyRecord;
use surety_core::scope::ScopeSet;

use crate::dbtime::DbTime;
use crate::error::StoreError;
use crate::{AccessTokenRecord, ResourceServer, Result, SigningKeyRecord};

fn parse<T: FromStr>(what: &str, value: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    value
        .parse()
        .map_err(|e| StoreError::corrupt(format!("{what} `{value}`: {e}")))
}

fn json<T: serde::de::DeserializeOwned>(what: &str, value: &str) -> Result<T> {
    serde_json::from_str(value).map_err(|e| StoreError::corrupt(format!("{what}: {e}")))
}

/// Serialises a value for a JSON text column.
pub(crate) fn to_json_text<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::corrupt(format!("unserialisable value: {e}")))
}

#[derive(sqlx::FromRow)]
pub(crate) struct HumanRow {
    id: String,
    display_name: String,
    email: String,
    role: String,
    status: String,
    created_at: DbTime,
    updated_at: DbTime,
}

impl TryFrom<HumanRow> for Human {
    type Error = StoreError;
    fn try_from(r: HumanRow) -> Result<Self> {
        Ok(Human {
            id: parse("human id", &r.id)?,
            display_name: r.display_name,
            email: r.email,
            role: parse("role", &r.role)?,
            status: parse("human status", &r.status)?,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AgentRow {
    id: String,
    name: String,
    owner_id: String,
    purpose: String,
    environment: String,
    labels: String,
    status: String,
    status_reason: Option<String>,
    created_at: DbTime,
    updated_at: DbTime,
    last_seen_at: Option<DbTime>,
}

impl TryFrom<AgentRow> for Agent {
    type Error = StoreError;
    fn try_from(r: AgentRow) -> Result<Self> {
        Ok(Agent {
            id: parse("agent id", &r.id)?,
            name: r.name,
            owner: parse("owner id", &r.owner_id)?,
            purpose: r.purpose,
            environment: r.environment,
            labels: json::<BTreeMap<String, String>>("labels", &r.labels)?,
            status: parse("agent status", &r.status)?,
            status_reason: r.status_reason,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
            last_seen_at: r.last_seen_at.map(|t| t.0),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct KeyRow {
    kid: String,
    holder_id: String,
    alg: String,
    jwk: String,
    status: String,
    created_at: DbTime,
    status_changed_at: Option<DbTime>,
}

impl TryFrom<KeyRow> for KeyRecord {
    type Error = StoreError;
    fn try_from(r: KeyRow) -> Result<Self> {
        Ok(KeyRecord {
            kid: r.kid,
            holder: parse("key holder", &r.holder_id)?,
            alg: r.alg,
            jwk: json("jwk", &r.jwk)?,
            status: parse("key status", &r.status)?,
            created_at: r.created_at.0,
            status_changed_at: r.status_changed_at.map(|t| t.0),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct EventRow {
    seq: i64,
    #[sqlx(default)]
    leaf_index: Option<i64>,
    id: String,
    time: DbTime,
    kind: String,
    actor: String,
    target: String,
    agent_id: Option<String>,
    human_id: Option<String>,
    details: String,
}

impl TryFrom<EventRow> for AuditEvent {
    type Error = StoreError;
    fn try_from(r: EventRow) -> Result<Self> {
        Ok(AuditEvent {
            seq: r.seq,
            leaf_index: r
                .leaf_index
                .map(|i| u64::try_from(i).map_err(StoreError::corrupt))
                .transpose()?,
            event: NewEvent {
                id: parse("event id", &r.id)?,
                time: r.time.0,
                kind: parse("event type", &r.kind)?,
                actor: parse("actor", &r.actor)?,
                target: r.target,
                agent: r
                    .agent_id
                    .as_deref()
                    .map(|a| parse("agent id", a))
                    .transpose()?,
                human: r
                    .human_id
                    .as_deref()
                    .map(|h| parse("human id", h))
                    .transpose()?,
                details: json("details", &r.details)?,
            },
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AccessTokenRow {
    token_hash: String,
    human_id: String,
    jkt: String,
    scope: String,
    issued_at: DbTime,
    expires_at: DbTime,
}

impl TryFrom<AccessTokenRow> for AccessTokenRecord {
    type Error = StoreError;
    fn try_from(r: AccessTokenRow) -> Result<Self> {
        Ok(AccessTokenRecord {
            token_hash: r.token_hash,
            human: parse("human id", &r.human_id)?,
            jkt: r.jkt,
            scope: r.scope,
            issued_at: r.issued_at.0,
            expires_at: r.expires_at.0,
        })
    }
}

pub(crate) const GRANT_COLUMNS: &str = "id, agent_id, principal_id, created_by, scopes, resources, \
    constraints, max_delegation_depth, status, status_reason, created_at, updated_at, expires_at";

#[derive(sqlx::FromRow)]
pub(crate) struct GrantRow {
    id: String,
    agent_id: String,
    principal_id: String,
    created_by: String,
    scopes: String,
    resources: String,
    constraints: String,
    max_delegation_depth: i64,
    status: String,
    status_reason: Option<String>,
    created_at: DbTime,
    updated_at: DbTime,
    expires_at: DbTime,
}

impl TryFrom<GrantRow> for Grant {
    type Error = StoreError;
    fn try_from(r: GrantRow) -> Result<Self> {
        let scopes: Vec<String> = json("scopes", &r.scopes)?;
        Ok(Grant {
            id: parse("grant id", &r.id)?,
            agent: parse("agent id", &r.agent_id)?,
            principal: parse("principal id", &r.principal_id)?,
            created_by: parse("creator id", &r.created_by)?,
            scopes: ScopeSet::from_tokens("scopes", &scopes).map_err(StoreError::corrupt)?,
            resources: json("resources", &r.resources)?,
            constraints: json("constraints", &r.constraints)?,
            max_delegation_depth: u32::try_from(r.max_delegation_depth)
                .map_err(StoreError::corrupt)?,
            status: parse("grant status", &r.status)?,
            status_reason: r.status_reason,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
            expires_at: r.expires_at.0,
        })
    }
}

pub(crate) const SIGNING_KEY_COLUMNS: &str =
    "kid, alg, public_jwk, sealed_private, status, created_at, retired_at, publish_until";

#[derive(sqlx::FromRow)]
pub(crate) struct SigningKeyRow {
    kid: String,
    alg: String,
    public_jwk: String,
    sealed_private: Vec<u8>,
    status: String,
    created_at: DbTime,
    retired_at: Option<DbTime>,
    publish_until: Option<DbTime>,
}

impl TryFrom<SigningKeyRow> for SigningKeyRecord {
    type Error = StoreError;
    fn try_from(r: SigningKeyRow) -> Result<Self> {
        Ok(SigningKeyRecord {
            kid: r.kid,
            alg: r.alg,
            public_jwk: json("public_jwk", &r.public_jwk)?,
            sealed_private: r.sealed_private,
            status: r.status,
            created_at: r.created_at.0,
            retired_at: r.retired_at.map(|t| t.0),
            publish_until: r.publish_until.map(|t| t.0),
        })
    }
}

pub(crate) const RESOURCE_SERVER_COLUMNS: &str =
    "id, name, audience, kid, jwk, status, created_by, created_at";

#[derive(sqlx::FromRow)]
pub(crate) struct ResourceServerRow {
    id: String,
    name: String,
    audience: String,
    kid: String,
    jwk: String,
    status: String,
    created_by: String,
    created_at: DbTime,
}

impl TryFrom<ResourceServerRow> for ResourceServer {
    type Error = StoreError;
    fn try_from(r: ResourceServerRow) -> Result<Self> {
        Ok(ResourceServer {
            id: parse("resource server id", &r.id)?,
            name: r.name,
            audience: r.audience,
            kid: r.kid,
            jwk: json("jwk", &r.jwk)?,
            status: r.status,
            created_by: parse("creator id", &r.created_by)?,
            created_at: r.created_at.0,
        })
    }
}

/// Converts every row, failing on the first unreadable one.
pub(crate) fn convert<R, T>(rows: Vec<R>) -> Result<Vec<T>>
where
    T: TryFrom<R, Error = StoreError>,
{
    rows.into_iter().map(T::try_from).collect()
}
