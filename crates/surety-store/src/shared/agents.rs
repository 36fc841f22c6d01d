//! Agents and their lifecycle.

use async_trait::async_trait;
use sqlx::QueryBuilder;
use surety_core::agent::Agent;
use surety_core::audit::NewEvent;
use surety_core::human::HumanStatus;
use surety_core::id::AgentId;
use surety_core::key::{KeyRecord, KeyStatus};
use surety_core::page::{Page, PageRequest};

use super::tx::{Tx, insert_events, insert_key};
use super::{Backend, Db};
use crate::dbtime::DbTime;
use crate::error::unique_as_conflict;
use crate::rows::{AgentRow, convert, to_json_text};
use crate::{AgentFilter, AgentStatusChange, AgentStore, Result, StoreError};

const AGENT_COLUMNS: &str = "id, name, owner_id, purpose, environment, labels, status, \
                             status_reason, created_at, updated_at, last_seen_at";

/// Names are unique per owner regardless of case.
fn name_key(name: &str) -> String {
    name.to_lowercase()
}

async fn agent_exists(tx: &mut Tx, id: AgentId) -> Result<bool> {
    let row: Option<(i32,)> = sqlx::query_as("SELECT 1 FROM agents WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.is_some())
}

#[async_trait]
impl AgentStore for Backend {
    async fn create_agent(
        &self,
        agent: &Agent,
        key: &KeyRecord,
        events: &[NewEvent],
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        let owner: Option<(String,)> = sqlx::query_as("SELECT status FROM humans WHERE id = $1")
            .bind(agent.owner.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        match owner {
            None => {
                return Err(StoreError::NotFound(format!(
                    "owner `{}` not found",
                    agent.owner
                )));
            }
            Some((status,)) if status != HumanStatus::Active.as_str() => {
                return Err(StoreError::Conflict(format!(
                    "owner `{}` is {status}; agents need an active owner",
                    agent.owner
                )));
            }
            Some(_) => {}
        }
        let duplicate = || {
            format!(
                "owner `{}` already has an agent named `{}`",
                agent.owner, agent.name
            )
        };
        sqlx::query(
            "INSERT INTO agents (id, name, name_key, owner_id, purpose, environment, labels, \
             status, status_reason, created_at, updated_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(agent.id.to_string())
        .bind(&agent.name)
        .bind(name_key(&agent.name))
        .bind(agent.owner.to_string())
        .bind(&agent.purpose)
        .bind(&agent.environment)
        .bind(to_json_text(&agent.labels)?)
        .bind(agent.status.as_str())
        .bind(agent.status_reason.as_deref())
        .bind(DbTime::from(agent.created_at))
        .bind(DbTime::from(agent.updated_at))
        .bind(agent.last_seen_at.map(DbTime::from))
        .execute(&mut *tx)
        .await
        .map_err(unique_as_conflict(duplicate))?;
        insert_key(&mut tx, key).await?;
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_agent(&self, id: AgentId) -> Result<Option<Agent>> {
        let row: Option<AgentRow> = sqlx::query_as(
            "SELECT id, name, owner_id, purpose, environment, labels, status, status_reason, \
             created_at, updated_at, last_seen_at FROM agents WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(self.reader())
        .await?;
        row.map(Agent::try_from).transpose()
    }

    async fn list_agents(&self, filter: &AgentFilter, page: &PageRequest) -> Result<Page<Agent>> {
        let mut q =
            QueryBuilder::<Db>::new(format!("SELECT {AGENT_COLUMNS} FROM agents WHERE 1 = 1"));
        if let Some(owner) = filter.owner {
            q.push(" AND owner_id = ").push_bind(owner.to_string());
        }
        if let Some(status) = filter.status {
            q.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(env) = &filter.environment {
            q.push(" AND environment = ").push_bind(env.clone());
        }
        if let Some(after) = &page.after {
            q.push(" AND id > ").push_bind(after.clone());
        }
        q.push(" ORDER BY id LIMIT ")
            .push_bind(i64::from(page.limit) + 1);
        let rows: Vec<AgentRow> = q.build_query_as().fetch_all(self.reader()).await?;
        let agents: Vec<Agent> = convert(rows)?;
        Ok(Page::from_overfetch(agents, page.limit, |a| {
            a.id.to_string()
        }))
    }

    async fn change_agent_status(
        &self,
        change: &AgentStatusChange,
        events: &[NewEvent],
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        let updated = sqlx::query(
            "UPDATE agents SET status = $1, status_reason = $2, updated_at = $3 \
             WHERE id = $4 AND status = $5",
        )
        .bind(change.to.as_str())
        .bind(change.reason.as_deref())
        .bind(DbTime::from(change.at))
        .bind(change.id.to_string())
        .bind(change.from.as_str())
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(if agent_exists(&mut tx, change.id).await? {
                StoreError::Stale
            } else {
                StoreError::NotFound(format!("agent `{}` not found", change.id))
            });
        }
        match change.keys_to {
            Some(KeyStatus::Revoked) => {
                sqlx::query(
                    "UPDATE public_keys SET status = $1, status_changed_at = $2 \
                     WHERE holder_id = $3 AND status IN ($4, $5)",
                )
                .bind(KeyStatus::Revoked.as_str())
                .bind(DbTime::from(change.at))
                .bind(change.id.to_string())
                .bind(KeyStatus::Active.as_str())
                .bind(KeyStatus::Retired.as_str())
                .execute(&mut *tx)
                .await?;
            }
            Some(KeyStatus::Retired) => {
                sqlx::query(
                    "UPDATE public_keys SET status = $1, status_changed_at = $2 \
                     WHERE holder_id = $3 AND status = $4",
                )
                .bind(KeyStatus::Retired.as_str())
                .bind(DbTime::from(change.at))
                .bind(change.id.to_string())
                .bind(KeyStatus::Active.as_str())
                .execute(&mut *tx)
                .await?;
            }
            Some(KeyStatus::Active) | None => {}
        }
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }
}
