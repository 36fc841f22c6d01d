//! The audit log: append and filtered, keyset-paginated reads (newest first).

use async_trait::async_trait;
use sqlx::QueryBuilder;
use surety_core::audit::{AuditEvent, AuditFilter, AuditScope, NewEvent};
use surety_core::page::{Page, PageRequest};

use super::tx::insert_events;
use super::{Backend, Db};
use crate::dbtime::DbTime;
use crate::rows::{EventRow, convert};
use crate::{AuditStore, Result, StoreError};

#[async_trait]
impl AuditStore for Backend {
    async fn append_events(&self, events: &[NewEvent]) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_events(
        &self,
        scope: AuditScope,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>> {
        let mut q = QueryBuilder::<Db>::new(
            "SELECT seq, leaf_index, id, time, kind, actor, target, agent_id, human_id, details \
             FROM audit_events WHERE 1 = 1",
        );
        if let AuditScope::Involving(human) = scope {
            let human = human.to_string();
            q.push(" AND (human_id = ").push_bind(human.clone());
            q.push(" OR actor = ").push_bind(human).push(")");
        }
        if let Some(agent) = filter.agent {
            q.push(" AND agent_id = ").push_bind(agent.to_string());
        }
        if let Some(human) = filter.human {
            q.push(" AND human_id = ").push_bind(human.to_string());
        }
        if let Some(target) = &filter.target {
            q.push(" AND target = ").push_bind(target.clone());
        }
        if let Some(kind) = filter.kind {
            q.push(" AND kind = ").push_bind(kind.as_str());
        }
        if let Some(since) = filter.since {
            q.push(" AND time >= ").push_bind(DbTime::from(since));
        }
        if let Some(until) = filter.until {
            q.push(" AND time < ").push_bind(DbTime::from(until));
        }
        if let Some(after) = &page.after {
            let seq: i64 = after
                .parse()
                .map_err(|_| StoreError::Invalid(format!("`{after}` is not an audit cursor")))?;
            q.push(" AND seq < ").push_bind(seq);
        }
        q.push(" ORDER BY seq DESC LIMIT ")
            .push_bind(i64::from(page.limit) + 1);
        let rows: Vec<EventRow> = q.build_query_as().fetch_all(self.reader()).await?;
        let events: Vec<AuditEvent> = convert(rows)?;
        Ok(Page::from_overfetch(events, page.limit, |e| {
            e.seq.to_string()
        }))
    }
}
