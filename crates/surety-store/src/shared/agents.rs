//! Agents and their lifecycle.

use async_trait::async_trait;
use sqlx::QueryBuilder;
use surety_core::agent::{Agent, AgentStatus};
use surety_core::audit::NewEvent;
use surety_core::id::{AgentId, HumanId};
use surety_core::key::{KeyRecord, KeyStatus};
use surety_core::page::{Page, PageRequest};

use super::tx::{Tx, insert_events, insert_key, lock_active_human, same_keys};
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
        // The owner must be active, and stay so until this commits.
        lock_active_human(&mut tx, agent.owner, "owner").await?;
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
        if let Some(id) = filter.id {
            q.push(" AND id = ").push_bind(id.to_string());
        }
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
        let sql = match change.unchanged_since {
            None => {
                "UPDATE agents SET status = $1, status_reason = $2, updated_at = $3, \
                 tokens_not_before = $3 \
                 WHERE id = $4 AND status = $5"
            }
            Some(_) => {
                "UPDATE agents SET status = $1, status_reason = $2, updated_at = $3, \
                 tokens_not_before = $3 \
                 WHERE id = $4 AND status = $5 AND updated_at <= $6"
            }
        };
        let mut update = sqlx::query(sql)
            .bind(change.to.as_str())
            .bind(change.reason.as_deref())
            .bind(DbTime::from(change.at))
            .bind(change.id.to_string())
            .bind(change.from.as_str());
        if let Some(since) = change.unchanged_since {
            update = update.bind(DbTime::from(since));
        }
        let updated = update.execute(&mut *tx).await?;
        if updated.rows_affected() == 0 {
            return Err(if agent_exists(&mut tx, change.id).await? {
                StoreError::Stale
            } else {
                StoreError::NotFound(format!("agent `{}` not found", change.id))
            });
        }
        if change.to == AgentStatus::Active {
            // Reinstating needs an active owner, held until commit (see `lock_active_human`).
            let (owner,): (String,) = sqlx::query_as("SELECT owner_id FROM agents WHERE id = $1")
                .bind(change.id.to_string())
                .fetch_one(&mut *tx)
                .await?;
            let owner: HumanId = owner.parse().map_err(StoreError::corrupt)?;
            lock_active_human(&mut tx, owner, "owner").await?;
            // A reinstated agent starts with a clean slate.
            sqlx::query("DELETE FROM agent_strikes WHERE agent_id = $1")
                .bind(change.id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        if let Some(keys_to) = change.keys_to {
            // Revoking takes every key not yet revoked; retiring takes the active ones.
            let from: &[KeyStatus] = match keys_to {
                KeyStatus::Revoked => &[KeyStatus::Active, KeyStatus::Retired],
                KeyStatus::Retired | KeyStatus::Active => &[KeyStatus::Active],
            };
            let mut q = QueryBuilder::<Db>::new("UPDATE public_keys SET status = ");
            q.push_bind(keys_to.as_str())
                .push(", status_changed_at = ")
                .push_bind(DbTime::from(change.at))
                .push(" WHERE holder_id = ")
                .push_bind(change.id.to_string())
                .push(" AND status IN (");
            let mut list = q.separated(", ");
            for status in from {
                list.push_bind(status.as_str());
            }
            q.push(") RETURNING kid");
            let changed: Vec<(String,)> = q.build_query_as().fetch_all(&mut *tx).await?;
            same_keys(changed.into_iter().map(|(k,)| k).collect(), &change.keys)?;
        }
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }
}
