//! Organisation signing keys, resource servers, and the state that access tokens depend
//! on (revoked `jti`s, watermarks, statuses) — issued tokens themselves are not stored.

use std::collections::BTreeMap;

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, QueryBuilder};
use surety_core::agent::AgentStatus;
use surety_core::audit::NewEvent;
use surety_core::human::HumanStatus;
use surety_core::id::PrincipalId;
use surety_core::id::{AgentId, GrantId, ResourceServerId};
use surety_core::key::KeyStatus;
use time::OffsetDateTime;

use super::inventory::day;
use super::tx::{Tx, insert_events};
use super::{Backend, Db};
use crate::dbtime::DbTime;
use crate::error::unique_as_conflict;
use crate::rows::{
    RESOURCE_SERVER_COLUMNS, ResourceServerRow, SIGNING_KEY_COLUMNS, SigningKeyRow, convert,
    to_json_text,
};
use crate::{
    ActivityKind, AgentActivity, CredentialStore, GrantStanding, ResourceServer,
    ResourceServerStore, Result, Serial, SigningKeyRecord, SigningKeyStore, StandingQuery,
    StoreError, TokenStanding,
};

async fn insert_signing_key(tx: &mut Tx, k: &SigningKeyRecord) -> Result<()> {
    sqlx::query(AssertSqlSafe(format!(
        "INSERT INTO signing_keys ({SIGNING_KEY_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
    )))
    .bind(&k.kid)
    .bind(&k.alg)
    .bind(to_json_text(&k.public_jwk)?)
    .bind(&k.sealed_private)
    .bind(&k.status)
    .bind(DbTime::from(k.created_at))
    .bind(k.retired_at.map(DbTime::from))
    .bind(k.publish_until.map(DbTime::from))
    .execute(&mut **tx)
    .await
    .map_err(unique_as_conflict(|| {
        format!("signing key `{}` already exists", k.kid)
    }))?;
    Ok(())
}

#[async_trait]
impl SigningKeyStore for Backend {
    async fn published_signing_keys(&self, now: OffsetDateTime) -> Result<Vec<SigningKeyRecord>> {
        let rows: Vec<SigningKeyRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {SIGNING_KEY_COLUMNS} FROM signing_keys \
             WHERE status = 'active' OR publish_until > $1 ORDER BY created_at DESC, kid"
        )))
        .bind(DbTime::from(now))
        .fetch_all(self.reader())
        .await?;
        convert(rows)
    }

    async fn all_signing_keys(&self) -> Result<Vec<SigningKeyRecord>> {
        let rows: Vec<SigningKeyRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {SIGNING_KEY_COLUMNS} FROM signing_keys ORDER BY created_at DESC, kid"
        )))
        .fetch_all(self.reader())
        .await?;
        convert(rows)
    }

    async fn create_first_signing_key(
        &self,
        key: &SigningKeyRecord,
        events: &[NewEvent],
    ) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        super::serialize(&mut tx, Serial::SigningKeys).await?;
        let existing: Option<(i32,)> =
            sqlx::query_as("SELECT 1 FROM signing_keys WHERE status = 'active' LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
        if existing.is_some() {
            return Ok(false);
        }
        insert_signing_key(&mut tx, key).await?;
        insert_events(&mut tx, events).await?;
        super::announce(&mut tx, crate::Change::SigningKeys).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn rotate_signing_key(
        &self,
        key: &SigningKeyRecord,
        publish_until: OffsetDateTime,
        events: &[NewEvent],
    ) -> Result<Vec<String>> {
        let mut tx = self.writer().begin().await?;
        super::serialize(&mut tx, Serial::SigningKeys).await?;
        let retired: Vec<(String,)> = sqlx::query_as(
            "UPDATE signing_keys SET status = 'retired', retired_at = $1, publish_until = $2 \
             WHERE status = 'active' RETURNING kid",
        )
        .bind(DbTime::from(key.created_at))
        .bind(DbTime::from(publish_until))
        .fetch_all(&mut *tx)
        .await?;
        insert_signing_key(&mut tx, key).await?;
        insert_events(&mut tx, events).await?;
        super::announce(&mut tx, crate::Change::SigningKeys).await?;
        tx.commit().await?;
        let mut kids: Vec<String> = retired.into_iter().map(|(k,)| k).collect();
        kids.sort();
        Ok(kids)
    }
}

#[async_trait]
impl ResourceServerStore for Backend {
    async fn create_resource_server(&self, rs: &ResourceServer, events: &[NewEvent]) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        // One key, one identity: a key registered to an agent or human is not reusable here.
        let taken: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM public_keys WHERE kid = $1")
            .bind(&rs.kid)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(StoreError::Conflict(format!(
                "key `{}` is already registered to an agent or human",
                rs.kid
            )));
        }
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO resource_servers ({RESOURCE_SERVER_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        )))
        .bind(rs.id.to_string())
        .bind(&rs.name)
        .bind(&rs.audience)
        .bind(&rs.kid)
        .bind(to_json_text(&rs.jwk)?)
        .bind(&rs.status)
        .bind(rs.created_by.to_string())
        .bind(DbTime::from(rs.created_at))
        .execute(&mut *tx)
        .await
        .map_err(unique_as_conflict(|| {
            format!(
                "a resource server for audience `{}` or with key `{}` is already registered",
                rs.audience, rs.kid
            )
        }))?;
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_resource_server(&self, id: ResourceServerId) -> Result<Option<ResourceServer>> {
        let row: Option<ResourceServerRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {RESOURCE_SERVER_COLUMNS} FROM resource_servers WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(self.reader())
        .await?;
        row.map(ResourceServer::try_from).transpose()
    }

    async fn list_resource_servers(&self) -> Result<Vec<ResourceServer>> {
        let rows: Vec<ResourceServerRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {RESOURCE_SERVER_COLUMNS} FROM resource_servers ORDER BY id"
        )))
        .fetch_all(self.reader())
        .await?;
        convert(rows)
    }
}

#[async_trait]
impl CredentialStore for Backend {
    async fn record_agent_activity(&self, issued: &[AgentActivity]) -> Result<()> {
        // Each agent once, in id order (a fixed lock order: no cycles between batches).
        let mut last_seen = BTreeMap::new();
        for t in issued {
            let at = last_seen.entry(t.agent).or_insert(t.at);
            *at = (*at).max(t.at);
        }
        let mut tx = self.writer().begin().await?;
        for (agent, at) in last_seen {
            sqlx::query(
                "UPDATE agents SET last_seen_at = $1 \
                 WHERE id = $2 AND (last_seen_at IS NULL OR last_seen_at < $1)",
            )
            .bind(DbTime::from(at))
            .bind(agent.to_string())
            .execute(&mut *tx)
            .await?;
        }
        // Summaries for the inventory, aggregated per batch and written in key order.
        let mut daily: BTreeMap<(AgentId, String), [i64; 4]> = BTreeMap::new();
        let mut used: BTreeMap<(GrantId, &str), (i64, OffsetDateTime)> = BTreeMap::new();
        for t in issued {
            let slot = match t.kind {
                ActivityKind::Token => 0,
                ActivityKind::Allowed => 1,
                ActivityKind::Denied => 2,
                ActivityKind::SteppedUp => 3,
                ActivityKind::Refused => continue,
            };
            daily.entry((t.agent, day(t.at))).or_default()[slot] += 1;
            if let Some((grant, scope)) = &t.exercised {
                let u = used.entry((*grant, scope.as_str())).or_insert((0, t.at));
                *u = (u.0 + 1, u.1.max(t.at));
            }
        }
        for ((agent, day), [tokens, allowed, denied, step_up]) in daily {
            sqlx::query(
                "INSERT INTO agent_activity_daily (agent_id, day, tokens, allowed, denied, step_up) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (agent_id, day) DO UPDATE SET \
                 tokens = agent_activity_daily.tokens + excluded.tokens, \
                 allowed = agent_activity_daily.allowed + excluded.allowed, \
                 denied = agent_activity_daily.denied + excluded.denied, \
                 step_up = agent_activity_daily.step_up + excluded.step_up",
            )
            .bind(agent.to_string())
            .bind(day)
            .bind(tokens)
            .bind(allowed)
            .bind(denied)
            .bind(step_up)
            .execute(&mut *tx)
            .await?;
        }
        for ((grant, scope), (uses, at)) in used {
            sqlx::query(
                "INSERT INTO grant_scope_usage (grant_id, scope, uses, last_used_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (grant_id, scope) DO UPDATE SET \
                 uses = grant_scope_usage.uses + excluded.uses, \
                 last_used_at = CASE WHEN excluded.last_used_at > grant_scope_usage.last_used_at \
                 THEN excluded.last_used_at ELSE grant_scope_usage.last_used_at END",
            )
            .bind(grant.to_string())
            .bind(scope)
            .bind(uses)
            .bind(DbTime::from(at))
            .execute(&mut *tx)
            .await?;
        }
        for t in issued.iter().filter(|t| t.strike) {
            sqlx::query("INSERT INTO agent_strikes (agent_id, at) VALUES ($1, $2)")
                .bind(t.agent.to_string())
                .bind(DbTime::from(t.at))
                .execute(&mut *tx)
                .await?;
        }
        let events: Vec<NewEvent> = issued
            .iter()
            .flat_map(|t| t.events.iter().cloned())
            .collect();
        insert_events(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn count_agent_events(
        &self,
        agent: AgentId,
        kind: surety_core::audit::EventKind,
        since: OffsetDateTime,
    ) -> Result<u64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM audit_events WHERE agent_id = $1 AND kind = $2 AND time >= $3",
        )
        .bind(agent.to_string())
        .bind(kind.as_str())
        .bind(DbTime::from(since))
        .fetch_one(self.writer())
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn count_strikes(&self, agent: AgentId, since: OffsetDateTime) -> Result<u64> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM agent_strikes WHERE agent_id = $1 AND at >= $2")
                .bind(agent.to_string())
                .bind(DbTime::from(since))
                .fetch_one(self.writer())
                .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn revoke_token(
        &self,
        jti: &str,
        expires_at: OffsetDateTime,
        at: OffsetDateTime,
        events: &[NewEvent],
    ) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        let done = sqlx::query(
            "INSERT INTO revoked_tokens (jti, revoked_at, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (jti) DO NOTHING",
        )
        .bind(jti)
        .bind(DbTime::from(at))
        .bind(DbTime::from(expires_at))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn token_standing(&self, q: &StandingQuery<'_>) -> Result<TokenStanding> {
        // One statement: every row the check needs, tagged by kind. (On PostgreSQL it sees
        // one snapshot; on SQLite one read transaction.)
        let mut conn = self.reader().acquire().await?;
        let mut b = QueryBuilder::<Db>::new(
            "SELECT 'human' AS kind, id AS name, status, tokens_not_before AS at, \
             NULL AS other FROM humans WHERE id = ",
        );
        b.push_bind(q.principal.to_string());
        b.push(
            " UNION ALL SELECT 'grant', agent_id, status, expires_at, principal_id \
             FROM grants WHERE id = ",
        )
        .push_bind(q.grant.to_string());
        let list = |b: &mut QueryBuilder<Db>, head: &str, values: Vec<String>| {
            if values.is_empty() {
                return;
            }
            b.push(head);
            let mut items = b.separated(", ");
            for v in values {
                items.push_bind(v);
            }
            b.push(")");
        };
        list(
            &mut b,
            " UNION ALL SELECT 'agent', id, status, tokens_not_before, NULL FROM agents WHERE id IN (",
            q.agents.iter().map(ToString::to_string).collect(),
        );
        list(
            &mut b,
            " UNION ALL SELECT 'key', kid, status, status_changed_at, holder_id FROM public_keys WHERE kid IN (",
            q.keys.iter().map(|k| (*k).to_owned()).collect(),
        );
        list(
            &mut b,
            " UNION ALL SELECT 'revoked', jti, NULL, revoked_at, NULL FROM revoked_tokens WHERE jti IN (",
            q.jtis.iter().map(|j| (*j).to_owned()).collect(),
        );
        let rows: Vec<(
            String,
            String,
            Option<String>,
            Option<DbTime>,
            Option<String>,
        )> = b.build_query_as().fetch_all(&mut *conn).await?;
        let mut standing = TokenStanding {
            grant: None,
            principal: None,
            agents: Vec::new(),
            keys: Vec::new(),
            revoked: Vec::new(),
        };
        for (kind, name, status, watermark, holder) in rows {
            let status = status.unwrap_or_default();
            match kind.as_str() {
                "grant" => {
                    standing.grant = Some(GrantStanding {
                        agent: name.parse().map_err(StoreError::corrupt)?,
                        principal: holder
                            .unwrap_or_default()
                            .parse()
                            .map_err(StoreError::corrupt)?,
                        status: status.parse().map_err(StoreError::corrupt)?,
                        expires_at: watermark
                            .ok_or_else(|| StoreError::corrupt("grant without expiry"))?
                            .0,
                    });
                }
                "human" => {
                    let s: HumanStatus = status.parse().map_err(StoreError::corrupt)?;
                    standing.principal = Some((s, watermark.map(|t| t.0)));
                }
                "agent" => standing.agents.push((
                    name.parse::<AgentId>().map_err(StoreError::corrupt)?,
                    status.parse::<AgentStatus>().map_err(StoreError::corrupt)?,
                    watermark.map(|t| t.0),
                )),
                "key" => standing.keys.push((
                    name,
                    status.parse::<KeyStatus>().map_err(StoreError::corrupt)?,
                    holder
                        .unwrap_or_default()
                        .parse::<PrincipalId>()
                        .map_err(StoreError::corrupt)?,
                    watermark.map(|t| t.0),
                )),
                _ => standing.revoked.push((
                    name,
                    watermark
                        .ok_or_else(|| StoreError::corrupt("revocation without a time"))?
                        .0,
                )),
            }
        }
        Ok(standing)
    }
}
