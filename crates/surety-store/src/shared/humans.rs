//! Humans, their lifecycle, and one-time enrollment codes.

use async_trait::async_trait;
use sqlx::QueryBuilder;
use surety_core::agent::{Agent, AgentStatus, OWNER_DEACTIVATED};
use surety_core::audit::NewEvent;
use surety_core::human::{Human, HumanStatus, Role};
use surety_core::id::{AgentId, HumanId};
use surety_core::key::KeyRecord;
use surety_core::page::{Page, PageRequest};
use time::OffsetDateTime;

use super::tx::{Tx, insert_events, insert_key, lock_active_human};
use super::{Backend, Db};
use crate::dbtime::DbTime;
use crate::error::unique_as_conflict;
use crate::rows::{AgentRow, HumanRow, convert};
use crate::{
    CascadeEvent, Enrollment, EnrollmentStore, HumanFilter, HumanStatusChange, HumanStore, Result,
    Serial, StoreError,
};

pub(super) const HUMAN_COLUMNS: &str =
    "id, display_name, email, role, status, created_at, updated_at";

pub(super) async fn insert_human(tx: &mut Tx, h: &Human) -> Result<()> {
    sqlx::query(
        "INSERT INTO humans (id, display_name, email, role, status, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(h.id.to_string())
    .bind(&h.display_name)
    .bind(&h.email)
    .bind(h.role.as_str())
    .bind(h.status.as_str())
    .bind(DbTime::from(h.created_at))
    .bind(DbTime::from(h.updated_at))
    .execute(&mut **tx)
    .await
    .map_err(unique_as_conflict(|| {
        format!("a human with e-mail `{}` already exists", h.email)
    }))?;
    Ok(())
}

async fn insert_enrollment(tx: &mut Tx, e: &Enrollment) -> Result<()> {
    // A new code replaces any unused one: only the latest code works.
    sqlx::query("DELETE FROM enrollment_codes WHERE human_id = $1 AND used_at IS NULL")
        .bind(e.human.to_string())
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO enrollment_codes (code_hash, human_id, created_at, expires_at) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(&e.code_hash)
    .bind(e.human.to_string())
    .bind(DbTime::from(e.created_at))
    .bind(DbTime::from(e.expires_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn human_status(tx: &mut Tx, id: HumanId) -> Result<Option<HumanStatus>> {
    let row: Option<(String,)> = sqlx::query_as("SELECT status FROM humans WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    row.map(|(s,)| s.parse().map_err(StoreError::corrupt))
        .transpose()
}

#[async_trait]
impl HumanStore for Backend {
    async fn create_human(
        &self,
        human: &Human,
        enrollment: Option<&Enrollment>,
        events: &[NewEvent],
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        insert_human(&mut tx, human).await?;
        if let Some(e) = enrollment {
            insert_enrollment(&mut tx, e).await?;
        }
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_human(&self, id: HumanId) -> Result<Option<Human>> {
        let row: Option<HumanRow> = sqlx::query_as(
            "SELECT id, display_name, email, role, status, created_at, updated_at \
             FROM humans WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(self.reader())
        .await?;
        row.map(Human::try_from).transpose()
    }

    async fn list_humans(&self, filter: &HumanFilter, page: &PageRequest) -> Result<Page<Human>> {
        let mut q =
            QueryBuilder::<Db>::new(format!("SELECT {HUMAN_COLUMNS} FROM humans WHERE 1 = 1"));
        if let Some(status) = filter.status {
            q.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(role) = filter.role {
            q.push(" AND role = ").push_bind(role.as_str());
        }
        if let Some(after) = &page.after {
            q.push(" AND id > ").push_bind(after.clone());
        }
        q.push(" ORDER BY id LIMIT ")
            .push_bind(i64::from(page.limit) + 1);
        let rows: Vec<HumanRow> = q.build_query_as().fetch_all(self.reader()).await?;
        let humans: Vec<Human> = convert(rows)?;
        Ok(Page::from_overfetch(humans, page.limit, |h| {
            h.id.to_string()
        }))
    }

    async fn change_human_status(
        &self,
        change: &HumanStatusChange,
        events: &[NewEvent],
        cascade: CascadeEvent<'_>,
    ) -> Result<Vec<AgentId>> {
        let mut tx = self.writer().begin().await?;
        super::serialize(&mut tx, Serial::Admins).await?;
        let updated = sqlx::query(
            "UPDATE humans SET status = $1, updated_at = $2, \
             tokens_not_before = $2 \
             WHERE id = $3 AND status = $4",
        )
        .bind(change.to.as_str())
        .bind(DbTime::from(change.at))
        .bind(change.id.to_string())
        .bind(change.from.as_str())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(match human_status(&mut tx, change.id).await? {
                None => StoreError::NotFound(format!("human `{}` not found", change.id)),
                Some(_) => StoreError::Stale,
            });
        }
        let mut all_events = events.to_vec();
        let mut suspended = Vec::new();
        if change.to == HumanStatus::Deactivated {
            let (admins,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM humans WHERE role = $1 AND status = $2")
                    .bind(Role::Admin.as_str())
                    .bind(HumanStatus::Active.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
            if admins == 0 {
                return Err(StoreError::Conflict(format!(
                    "`{}` is the last active admin; add or reactivate another admin first",
                    change.id
                )));
            }
            // Off-boarding: every active agent of this owner is suspended, each audited.
            let rows: Vec<AgentRow> = sqlx::query_as(
                "UPDATE agents SET status = $1, status_reason = $2, updated_at = $3, \
                 tokens_not_before = $3 \
                 WHERE owner_id = $4 AND status = $5 \
                 RETURNING id, name, owner_id, purpose, environment, labels, status, \
                 status_reason, created_at, updated_at, last_seen_at",
            )
            .bind(AgentStatus::Suspended.as_str())
            .bind(OWNER_DEACTIVATED)
            .bind(DbTime::from(change.at))
            .bind(change.id.to_string())
            .bind(AgentStatus::Active.as_str())
            .fetch_all(&mut *tx)
            .await?;
            let mut agents: Vec<Agent> = convert(rows)?;
            agents.sort_by_key(|a| a.id);
            for agent in &agents {
                all_events.push(cascade(agent));
                suspended.push(agent.id);
            }
        }
        insert_events(&mut tx, &all_events).await?;
        tx.commit().await?;
        Ok(suspended)
    }
}

#[async_trait]
impl EnrollmentStore for Backend {
    async fn issue_enrollment(&self, enrollment: &Enrollment, events: &[NewEvent]) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        insert_enrollment(&mut tx, enrollment).await?;
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn redeem_enrollment(
        &self,
        code_hash: &str,
        now: OffsetDateTime,
        key: &(dyn Fn(HumanId) -> (KeyRecord, Vec<NewEvent>) + Send + Sync),
    ) -> Result<HumanId> {
        let mut tx = self.writer().begin().await?;
        let row: Option<(String,)> = sqlx::query_as(
            "UPDATE enrollment_codes SET used_at = $1 \
             WHERE code_hash = $2 AND used_at IS NULL AND expires_at > $1 \
             RETURNING human_id",
        )
        .bind(DbTime::from(now))
        .bind(code_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((human,)) = row else {
            return Err(StoreError::NotFound(
                "enrollment code is unknown, used or expired".into(),
            ));
        };
        let human: HumanId = human.parse().map_err(StoreError::corrupt)?;
        lock_active_human(&mut tx, human, "human").await?;
        let (record, events) = key(human);
        insert_key(&mut tx, &record).await?;
        insert_events(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(human)
    }
}
