//! Grants and their lifecycle.

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, QueryBuilder};
use surety_core::agent::AgentStatus;
use surety_core::audit::NewEvent;
use surety_core::grant::{Grant, GrantStatus};
use surety_core::id::{AgentId, GrantId};
use surety_core::page::{Page, PageRequest};

use super::tx::{Tx, insert_events, lock_active_human};
use super::{Backend, Db};
use crate::dbtime::DbTime;
use crate::rows::{GRANT_COLUMNS, GrantRow, convert, to_json_text};
use crate::{GrantFilter, GrantStatusChange, GrantStore, Result, StoreError};

/// The agent must exist and be active when a grant comes into force.
async fn require_active_agent(tx: &mut Tx, agent: AgentId) -> Result<()> {
    let row: Option<(String,)> = sqlx::query_as("SELECT status FROM agents WHERE id = $1")
        .bind(agent.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    match row {
        None => Err(StoreError::NotFound(format!("agent `{agent}` not found"))),
        Some((status,)) if status == AgentStatus::Active.as_str() => Ok(()),
        Some((status,)) => Err(StoreError::Conflict(format!(
            "agent `{agent}` is {status}; only an active agent can receive authority"
        ))),
    }
}

#[async_trait]
impl GrantStore for Backend {
    async fn create_grant(&self, g: &Grant, events: &[NewEvent]) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        lock_active_human(&mut tx, g.principal, "principal").await?;
        require_active_agent(&mut tx, g.agent).await?;
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO grants ({GRANT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        )))
        .bind(g.id.to_string())
        .bind(g.agent.to_string())
        .bind(g.principal.to_string())
        .bind(g.created_by.to_string())
        .bind(to_json_text(&g.scopes.to_vec())?)
        .bind(to_json_text(&g.resources)?)
        .bind(to_json_text(&g.constraints)?)
        .bind(i64::from(g.max_delegation_depth))
        .bind(g.status.as_str())
        .bind(g.status_reason.as_deref())
        .bind(DbTime::from(g.created_at))
        .bind(DbTime::from(g.updated_at))
        .bind(DbTime::from(g.expires_at))
        .execute(&mut *tx)
        .await?;
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_grant(&self, id: GrantId) -> Result<Option<Grant>> {
        let row: Option<GrantRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(self.reader())
        .await?;
        row.map(Grant::try_from).transpose()
    }

    async fn list_grants(&self, filter: &GrantFilter, page: &PageRequest) -> Result<Page<Grant>> {
        let mut q =
            QueryBuilder::<Db>::new(format!("SELECT {GRANT_COLUMNS} FROM grants WHERE 1 = 1"));
        if let Some(agent) = filter.agent {
            q.push(" AND agent_id = ").push_bind(agent.to_string());
        }
        if let Some(principal) = filter.principal {
            q.push(" AND principal_id = ")
                .push_bind(principal.to_string());
        }
        match filter.status {
            None => {}
            Some((GrantStatus::Expired, now)) => {
                q.push(" AND status IN ('proposed', 'active') AND expires_at <= ")
                    .push_bind(DbTime::from(now));
            }
            Some((status @ (GrantStatus::Proposed | GrantStatus::Active), now)) => {
                q.push(" AND status = ")
                    .push_bind(status.as_str())
                    .push(" AND expires_at > ")
                    .push_bind(DbTime::from(now));
            }
            Some((status, _)) => {
                q.push(" AND status = ").push_bind(status.as_str());
            }
        }
        if let Some(viewer) = filter.visible_to {
            q.push(" AND (principal_id = ")
                .push_bind(viewer.to_string())
                .push(" OR agent_id IN (SELECT id FROM agents WHERE owner_id = ")
                .push_bind(viewer.to_string())
                .push("))");
        }
        if let Some(after) = &page.after {
            q.push(" AND id > ").push_bind(after.clone());
        }
        q.push(" ORDER BY id LIMIT ")
            .push_bind(i64::from(page.limit) + 1);
        let rows: Vec<GrantRow> = q.build_query_as().fetch_all(self.reader()).await?;
        let grants: Vec<Grant> = convert(rows)?;
        Ok(Page::from_overfetch(grants, page.limit, |g| {
            g.id.to_string()
        }))
    }

    async fn change_grant_status(&self, c: &GrantStatusChange, events: &[NewEvent]) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        let row: Option<(String, String, DbTime)> = sqlx::query_as(
            "UPDATE grants SET status = $1, status_reason = $2, updated_at = $3 \
             WHERE id = $4 AND status = $5 RETURNING agent_id, principal_id, expires_at",
        )
        .bind(c.to.as_str())
        .bind(c.reason.as_deref())
        .bind(DbTime::from(c.at))
        .bind(c.id.to_string())
        .bind(c.from.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some((agent, principal, expires_at)) = row else {
            let exists: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM grants WHERE id = $1")
                .bind(c.id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
            return Err(match exists {
                Some(_) => StoreError::Stale,
                None => StoreError::NotFound(format!("grant `{}` not found", c.id)),
            });
        };
        if c.to == GrantStatus::Active {
            if expires_at.0 <= c.at {
                return Err(StoreError::Conflict(format!(
                    "grant `{}` has expired",
                    c.id
                )));
            }
            let principal = principal.parse().map_err(StoreError::corrupt)?;
            lock_active_human(&mut tx, principal, "principal").await?;
            require_active_agent(&mut tx, agent.parse().map_err(StoreError::corrupt)?).await?;
        }
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }
}
