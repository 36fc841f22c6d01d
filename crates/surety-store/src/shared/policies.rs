//! Policy sets, versioned: every applied set is kept; the newest is in force.

use async_trait::async_trait;
use sqlx::QueryBuilder;
use surety_core::audit::NewEvent;
use surety_core::id::HumanId;
use surety_core::page::{Page, PageRequest};
use time::OffsetDateTime;

use super::tx::insert_events;
use super::{Backend, Db};
use crate::dbtime::DbTime;
use crate::{PolicySetRecord, PolicyStore, Result, Serial, StoreError};

const COLUMNS: &str = "version, catalog, policies, note, created_by, created_at";

#[derive(sqlx::FromRow)]
struct Row {
    version: i64,
    catalog: String,
    policies: String,
    note: Option<String>,
    created_by: String,
    created_at: DbTime,
}

impl TryFrom<Row> for PolicySetRecord {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self> {
        Ok(Self {
            version: u64::try_from(r.version).map_err(StoreError::corrupt)?,
            catalog: r.catalog,
            policies: r.policies,
            note: r.note,
            created_by: r.created_by.parse().map_err(StoreError::corrupt)?,
            created_at: r.created_at.0,
        })
    }
}

fn select(tail: &str) -> QueryBuilder<Db> {
    QueryBuilder::new(format!("SELECT {COLUMNS} FROM policy_sets {tail}"))
}

#[async_trait]
impl PolicyStore for Backend {
    async fn current_policy_set(&self) -> Result<Option<PolicySetRecord>> {
        let row: Option<Row> = select("ORDER BY version DESC LIMIT 1")
            .build_query_as()
            .fetch_optional(self.reader())
            .await?;
        row.map(PolicySetRecord::try_from).transpose()
    }

    async fn policy_set(&self, version: u64) -> Result<Option<PolicySetRecord>> {
        let mut q = select("WHERE version = ");
        q.push_bind(
            i64::try_from(version)
                .map_err(|_| StoreError::Invalid("version out of range".into()))?,
        );
        let row: Option<Row> = q.build_query_as().fetch_optional(self.reader()).await?;
        row.map(PolicySetRecord::try_from).transpose()
    }

    async fn list_policy_sets(&self, page: &PageRequest) -> Result<Page<PolicySetRecord>> {
        let mut q = select("WHERE 1 = 1");
        if let Some(after) = &page.after {
            let after: i64 = after
                .parse()
                .map_err(|_| StoreError::Invalid("malformed cursor".into()))?;
            q.push(" AND version < ").push_bind(after);
        }
        q.push(" ORDER BY version DESC LIMIT ")
            .push_bind(i64::from(page.limit) + 1);
        let rows: Vec<Row> = q.build_query_as().fetch_all(self.reader()).await?;
        let sets = rows
            .into_iter()
            .map(PolicySetRecord::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(sets, page.limit, |s| {
            s.version.to_string()
        }))
    }

    async fn apply_policy_set(
        &self,
        catalog: &str,
        policies: &str,
        note: Option<&str>,
        by: HumanId,
        at: OffsetDateTime,
        events: &(dyn Fn(u64) -> Vec<NewEvent> + Send + Sync),
    ) -> Result<u64> {
        let mut tx = self.writer().begin().await?;
        super::serialize(&mut tx, Serial::Policies).await?;
        let (newest,): (Option<i64>,) = sqlx::query_as("SELECT MAX(version) FROM policy_sets")
            .fetch_one(&mut *tx)
            .await?;
        let version = newest.unwrap_or(0) + 1;
        sqlx::query(
            "INSERT INTO policy_sets (version, catalog, policies, note, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(version)
        .bind(catalog)
        .bind(policies)
        .bind(note)
        .bind(by.to_string())
        .bind(DbTime::from(at))
        .execute(&mut *tx)
        .await?;
        let version = u64::try_from(version).map_err(StoreError::corrupt)?;
        insert_events(&mut tx, &events(version)).await?;
        super::announce(&mut tx, crate::Change::PolicySet).await?;
        tx.commit().await?;
        Ok(version)
    }
}
