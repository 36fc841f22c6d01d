//! Public keys of every principal.

use async_trait::async_trait;
use sqlx::AssertSqlSafe;
use surety_core::agent::AgentStatus;
use surety_core::audit::NewEvent;
use surety_core::id::{AgentId, PrincipalId};
use surety_core::key::{KeyRecord, KeyStatus};
use time::OffsetDateTime;

use super::Backend;
use super::tx::{Tx, insert_events, insert_key, same_keys};
use crate::dbtime::DbTime;
use crate::rows::{KeyRow, convert};
use crate::{KeyStore, Result, StoreError};

pub(super) const KEY_COLUMNS: &str =
    "kid, holder_id, alg, jwk, status, created_at, status_changed_at";

async fn cas_key_status(
    tx: &mut Tx,
    kid: &str,
    from: KeyStatus,
    to: KeyStatus,
    at: OffsetDateTime,
) -> Result<()> {
    let updated = sqlx::query(
        "UPDATE public_keys SET status = $1, status_changed_at = $2 WHERE kid = $3 AND status = $4",
    )
    .bind(to.as_str())
    .bind(DbTime::from(at))
    .bind(kid)
    .bind(from.as_str())
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() == 1 {
        return Ok(());
    }
    let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM public_keys WHERE kid = $1")
        .bind(kid)
        .fetch_optional(&mut **tx)
        .await?;
    Err(match exists {
        Some(_) => StoreError::Stale,
        None => StoreError::NotFound(format!("key `{kid}` not found")),
    })
}

#[async_trait]
impl KeyStore for Backend {
    async fn get_key(&self, kid: &str) -> Result<Option<KeyRecord>> {
        let row: Option<KeyRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM public_keys WHERE kid = $1"
        )))
        .bind(kid)
        .fetch_optional(self.reader())
        .await?;
        row.map(KeyRecord::try_from).transpose()
    }

    async fn list_keys(&self, holder: PrincipalId) -> Result<Vec<KeyRecord>> {
        let rows: Vec<KeyRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM public_keys WHERE holder_id = $1 ORDER BY created_at, kid"
        )))
        .bind(holder.to_string())
        .fetch_all(self.reader())
        .await?;
        convert(rows)
    }

    async fn add_agent_key(
        &self,
        agent: AgentId,
        key: &KeyRecord,
        retire: Option<&[String]>,
        events: &[NewEvent],
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        // Holds the agent's row: a concurrent revocation either waits for this key (and
        // revokes it too) or wins, and this rotation then finds no usable agent.
        let usable =
            sqlx::query("UPDATE agents SET updated_at = $1 WHERE id = $2 AND status IN ($3, $4)")
                .bind(DbTime::from(key.created_at))
                .bind(agent.to_string())
                .bind(AgentStatus::Active.as_str())
                .bind(AgentStatus::Suspended.as_str())
                .execute(&mut *tx)
                .await?;
        if usable.rows_affected() == 0 {
            let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM agents WHERE id = $1")
                .bind(agent.to_string())
                .fetch_optional(&mut *tx)
                .await?;
            return Err(match exists {
                Some(_) => StoreError::Stale,
                None => StoreError::NotFound(format!("agent `{agent}` not found")),
            });
        }
        if let Some(expected) = retire {
            let retired: Vec<(String,)> = sqlx::query_as(
                "UPDATE public_keys SET status = $1, status_changed_at = $2 \
                 WHERE holder_id = $3 AND status = $4 RETURNING kid",
            )
            .bind(KeyStatus::Retired.as_str())
            .bind(DbTime::from(key.created_at))
            .bind(agent.to_string())
            .bind(KeyStatus::Active.as_str())
            .fetch_all(&mut *tx)
            .await?;
            same_keys(retired.into_iter().map(|(k,)| k).collect(), expected)?;
        }
        insert_key(&mut tx, key).await?;
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn change_key_status(
        &self,
        kid: &str,
        from: KeyStatus,
        to: KeyStatus,
        at: OffsetDateTime,
        events: &[NewEvent],
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        cas_key_status(&mut tx, kid, from, to, at).await?;
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }
}
