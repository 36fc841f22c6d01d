//! Shared Signals streams: receivers, what they asked for, and how far they have received.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, QueryBuilder};
use surety_core::audit::NewEvent;
use surety_core::id::ResourceServerId;
use time::OffsetDateTime;

use super::tx::insert_events;
use super::{Backend, Db};
use crate::dbtime::DbTime;
use crate::rows::to_json_text;
use crate::{Result, StoreError, StreamRecord, StreamStore};

const COLUMNS: &str = "id, receiver, audience, method, endpoint_url, events, description, \
                       status, reason, cursor, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    receiver: String,
    audience: String,
    method: String,
    endpoint_url: Option<String>,
    events: String,
    description: Option<String>,
    status: String,
    reason: Option<String>,
    cursor: i64,
    created_at: DbTime,
    updated_at: DbTime,
}

impl TryFrom<Row> for StreamRecord {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self> {
        Ok(Self {
            id: r.id,
            receiver: r.receiver.parse().map_err(StoreError::corrupt)?,
            audience: r.audience,
            method: r.method,
            endpoint_url: r.endpoint_url,
            events: serde_json::from_str(&r.events).map_err(StoreError::corrupt)?,
            description: r.description,
            status: r.status,
            reason: r.reason,
            cursor: u64::try_from(r.cursor).map_err(StoreError::corrupt)?,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}

fn position(value: u64) -> Result<i64> {
    i64::try_from(value).map_err(|_| StoreError::Invalid("cursor out of range".into()))
}

#[async_trait]
impl StreamStore for Backend {
    async fn create_stream(&self, s: &StreamRecord, events: &[NewEvent]) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO ssf_streams ({COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        )))
        .bind(&s.id)
        .bind(s.receiver.to_string())
        .bind(&s.audience)
        .bind(&s.method)
        .bind(&s.endpoint_url)
        .bind(to_json_text(&s.events)?)
        .bind(&s.description)
        .bind(&s.status)
        .bind(&s.reason)
        .bind(position(s.cursor)?)
        .bind(DbTime::from(s.created_at))
        .bind(DbTime::from(s.updated_at))
        .execute(&mut *tx)
        .await?;
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_stream(&self, id: &str) -> Result<Option<StreamRecord>> {
        let row: Option<Row> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM ssf_streams WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        row.map(StreamRecord::try_from).transpose()
    }

    async fn list_streams(&self, receiver: Option<ResourceServerId>) -> Result<Vec<StreamRecord>> {
        let mut q = QueryBuilder::<Db>::new(format!("SELECT {COLUMNS} FROM ssf_streams"));
        if let Some(r) = receiver {
            q.push(" WHERE receiver = ").push_bind(r.to_string());
        }
        q.push(" ORDER BY created_at, id");
        let rows: Vec<Row> = q.build_query_as().fetch_all(self.reader()).await?;
        rows.into_iter().map(StreamRecord::try_from).collect()
    }

    async fn delete_stream(&self, id: &str, events: &[NewEvent]) -> Result<bool> {
        let mut tx = self.writer().begin().await?;
        let done = sqlx::query("DELETE FROM ssf_streams WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn set_stream_status(
        &self,
        id: &str,
        status: &str,
        reason: Option<&str>,
        at: OffsetDateTime,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE ssf_streams SET status = $1, reason = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(status)
        .bind(reason)
        .bind(DbTime::from(at))
        .bind(id)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn advance_stream(
        &self,
        id: &str,
        from: u64,
        to: u64,
        at: OffsetDateTime,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE ssf_streams SET cursor = $1, updated_at = $2 WHERE id = $3 AND cursor = $4",
        )
        .bind(position(to)?)
        .bind(DbTime::from(at))
        .bind(id)
        .bind(position(from)?)
        .execute(self.writer())
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
