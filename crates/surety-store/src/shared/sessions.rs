//! Admin access tokens and single-use values.

use async_trait::async_trait;
use surety_core::audit::NewEvent;
use time::OffsetDateTime;

use super::Backend;
use super::tx::insert_events;
use crate::dbtime::DbTime;
use crate::rows::AccessTokenRow;
use crate::{AccessTokenRecord, ClientTokenRecord, ReplayStore, Result, StoreError, TokenStore};

#[async_trait]
impl TokenStore for Backend {
    async fn insert_access_token(&self, t: &AccessTokenRecord, events: &[NewEvent]) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        sqlx::query(
            "INSERT INTO access_tokens (token_hash, human_id, jkt, scope, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&t.token_hash)
        .bind(t.human.to_string())
        .bind(&t.jkt)
        .bind(&t.scope)
        .bind(DbTime::from(t.issued_at))
        .bind(DbTime::from(t.expires_at))
        .execute(&mut *tx)
        .await?;
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn insert_client_token(&self, t: &ClientTokenRecord, events: &[NewEvent]) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        sqlx::query(
            "INSERT INTO client_tokens (token_hash, client_id, jkt, scope, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&t.token_hash)
        .bind(t.client.to_string())
        .bind(&t.jkt)
        .bind(&t.scope)
        .bind(DbTime::from(t.issued_at))
        .bind(DbTime::from(t.expires_at))
        .execute(&mut *tx)
        .await?;
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_client_token(&self, token_hash: &str) -> Result<Option<ClientTokenRecord>> {
        let row: Option<(String, String, String, String, DbTime, DbTime)> = sqlx::query_as(
            "SELECT token_hash, client_id, jkt, scope, issued_at, expires_at \
             FROM client_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.reader())
        .await?;
        row.map(|(token_hash, client, jkt, scope, issued_at, expires_at)| {
            Ok(ClientTokenRecord {
                token_hash,
                client: client.parse().map_err(StoreError::corrupt)?,
                jkt,
                scope,
                issued_at: issued_at.0,
                expires_at: expires_at.0,
            })
        })
        .transpose()
    }

    async fn get_access_token(&self, token_hash: &str) -> Result<Option<AccessTokenRecord>> {
        let row: Option<AccessTokenRow> = sqlx::query_as(
            "SELECT token_hash, human_id, jkt, scope, issued_at, expires_at \
             FROM access_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.reader())
        .await?;
        row.map(AccessTokenRecord::try_from).transpose()
    }
}

/// Insert, or take over an entry that has expired; a live entry means replay.
const REMEMBER: &str = "INSERT INTO replay_cache (key, expires_at) VALUES ($1, $2) \
    ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at \
    WHERE replay_cache.expires_at <= $3";

#[async_trait]
impl ReplayStore for Backend {
    async fn remember(&self, key: &str, until: OffsetDateTime, now: OffsetDateTime) -> Result<()> {
        let done = sqlx::query(REMEMBER)
            .bind(key)
            .bind(DbTime::from(until))
            .bind(DbTime::from(now))
            .execute(self.writer())
            .await?;
        if done.rows_affected() == 1 {
            Ok(())
        } else {
            Err(StoreError::Replay)
        }
    }

    async fn remember_many(
        &self,
        entries: &[(String, OffsetDateTime)],
        now: OffsetDateTime,
    ) -> Result<Vec<bool>> {
        // Rows are written in key order, so that two batches on two nodes never wait on
        // each other in a cycle; the answers go back in the order asked.
        let mut order: Vec<usize> = (0..entries.len()).collect();
        order.sort_by(|a, b| entries[*a].0.cmp(&entries[*b].0));
        let mut tx = self.writer().begin().await?;
        let mut recorded = vec![false; entries.len()];
        for i in order {
            let (key, until) = &entries[i];
            let done = sqlx::query(REMEMBER)
                .bind(key)
                .bind(DbTime::from(*until))
                .bind(DbTime::from(now))
                .execute(&mut *tx)
                .await?;
            recorded[i] = done.rows_affected() == 1;
        }
        tx.commit().await?;
        Ok(recorded)
    }

    async fn purge_expired(&self, now: OffsetDateTime) -> Result<u64> {
        let now = DbTime::from(now);
        let mut purged = 0;
        for sql in [
            "DELETE FROM replay_cache WHERE expires_at <= $1",
            "DELETE FROM access_tokens WHERE expires_at <= $1",
            "DELETE FROM client_tokens WHERE expires_at <= $1",
            "DELETE FROM revoked_tokens WHERE expires_at <= $1",
            "DELETE FROM enrollment_codes WHERE used_at IS NULL AND expires_at <= $1",
        ] {
            purged += sqlx::query(sql)
                .bind(now)
                .execute(self.writer())
                .await?
                .rows_affected();
        }
        // Strikes older than a day count for nothing (windows are at most a day).
        purged += sqlx::query("DELETE FROM agent_strikes WHERE at <= $1")
            .bind(DbTime::from(now.0 - time::Duration::days(1)))
            .execute(self.writer())
            .await?
            .rows_affected();
        Ok(purged)
    }
}
