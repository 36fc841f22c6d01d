//! Public keys of every principal.

use async_trait::async_trait;
use surety_core::audit::NewEvent;
use surety_core::id::PrincipalId;
use surety_core::key::{KeyRecord, KeyStatus};
use time::OffsetDateTime;

use super::Backend;
use super::tx::{Tx, insert_events, insert_key};
use crate::dbtime::DbTime;
use crate::rows::{KeyRow, convert};
use crate::{KeyStore, Result, StoreError};

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
        let row: Option<KeyRow> = sqlx::query_as(
            "SELECT kid, holder_id, alg, jwk, status, created_at, status_changed_at \
             FROM public_keys WHERE kid = $1",
        )
        .bind(kid)
        .fetch_optional(self.reader())
        .await?;
        row.map(KeyRecord::try_from).transpose()
    }

    async fn list_keys(&self, holder: PrincipalId) -> Result<Vec<KeyRecord>> {
        let rows: Vec<KeyRow> = sqlx::query_as(
            "SELECT kid, holder_id, alg, jwk, status, created_at, status_changed_at \
             FROM public_keys WHERE holder_id = $1 ORDER BY created_at, kid",
        )
        .bind(holder.to_string())
        .fetch_all(self.reader())
        .await?;
        convert(rows)
    }

    async fn add_key(&self, key: &KeyRecord, retire: &[String], events: &[NewEvent]) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        insert_key(&mut tx, key).await?;
        for kid in retire {
            cas_key_status(
                &mut tx,
                kid,
                KeyStatus::Active,
                KeyStatus::Retired,
                key.created_at,
            )
            .await?;
        }
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
