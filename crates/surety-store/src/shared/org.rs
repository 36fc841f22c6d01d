//! Bootstrap and server-internal values.

use async_trait::async_trait;
use surety_core::audit::NewEvent;
use surety_core::human::Human;
use surety_core::key::KeyRecord;
use time::OffsetDateTime;

use super::Backend;
use super::humans::insert_human;
use super::tx::{insert_events, insert_key};
use crate::dbtime::DbTime;
use crate::{OrgStore, Result, Serial, StoreError};

#[async_trait]
impl OrgStore for Backend {
    async fn is_initialized(&self) -> Result<bool> {
        let row: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM humans LIMIT 1")
            .fetch_optional(self.reader())
            .await?;
        Ok(row.is_some())
    }

    async fn bootstrap(
        &self,
        admin: &Human,
        device_key: &KeyRecord,
        events: &[NewEvent],
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        super::serialize(&mut tx, Serial::Admins).await?;
        let existing: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM humans LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        if existing.is_some() {
            return Err(StoreError::AlreadyInitialized);
        }
        insert_human(&mut tx, admin).await?;
        insert_key(&mut tx, device_key).await?;
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn server_secret(
        &self,
        name: &str,
        candidate: &[u8],
        at: OffsetDateTime,
    ) -> Result<Vec<u8>> {
        sqlx::query(
            "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(candidate)
        .bind(DbTime::from(at))
        .execute(self.writer())
        .await?;
        let (value,): (Vec<u8>,) =
            sqlx::query_as("SELECT value FROM server_secrets WHERE name = $1")
                .bind(name)
                .fetch_one(self.writer())
                .await?;
        Ok(value)
    }
}
