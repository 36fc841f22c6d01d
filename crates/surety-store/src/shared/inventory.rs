//! The inventory: one page of agents with everything the reports need, read in a fixed
//! number of queries whatever the page size (each keyed by the page's id range).

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use sqlx::{AssertSqlSafe, QueryBuilder};
use surety_core::human::Human;
use surety_core::id::AgentId;
use surety_core::inventory::{AgentFacts, RecentActivity, ScopeUse};
use surety_core::key::KeyRecord;
use surety_core::page::{Page, PageRequest};
use time::OffsetDateTime;

use super::humans::HUMAN_COLUMNS;
use super::keys::KEY_COLUMNS;
use super::{Backend, Db};
use crate::dbtime::DbTime;
use crate::rows::{GRANT_COLUMNS, GrantRow, HumanRow, KeyRow, convert};
use crate::{AgentFilter, AgentStore, InventoryStore, Result, StoreError};

/// The UTC day of `t`, as `agent_activity_daily.day` holds it.
pub(super) fn day(t: OffsetDateTime) -> String {
    let d = t.to_offset(time::UtcOffset::UTC).date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn agent_of(raw: &str) -> Result<AgentId> {
    raw.parse()
        .map_err(|e| StoreError::corrupt(format!("agent id `{raw}`: {e}")))
}

#[async_trait]
impl InventoryStore for Backend {
    async fn agent_facts(
        &self,
        filter: &AgentFilter,
        page: &PageRequest,
        recent_since: OffsetDateTime,
    ) -> Result<Page<AgentFacts>> {
        let agents = self.list_agents(filter, page).await?;
        let (Some(first), Some(last)) = (agents.items.first(), agents.items.last()) else {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        };
        let (first, last) = (first.id.to_string(), last.id.to_string());

        let owners: BTreeSet<String> = agents.items.iter().map(|a| a.owner.to_string()).collect();
        let mut q =
            QueryBuilder::<Db>::new(format!("SELECT {HUMAN_COLUMNS} FROM humans WHERE id IN ("));
        let mut ids = q.separated(", ");
        for id in &owners {
            ids.push_bind(id.clone());
        }
        q.push(")");
        let humans: Vec<HumanRow> = q.build_query_as().fetch_all(self.reader()).await?;
        let humans: BTreeMap<_, Human> = convert::<_, Human>(humans)?
            .into_iter()
            .map(|h| (h.id, h))
            .collect();

        let keys: Vec<KeyRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM public_keys WHERE holder_id >= $1 AND holder_id <= $2 \
             ORDER BY created_at, kid"
        )))
        .bind(&first)
        .bind(&last)
        .fetch_all(self.reader())
        .await?;
        let mut keys_of: BTreeMap<String, Vec<KeyRecord>> = BTreeMap::new();
        for key in convert::<_, KeyRecord>(keys)? {
            keys_of.entry(key.holder.to_string()).or_default().push(key);
        }

        let grants: Vec<GrantRow> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE agent_id >= $1 AND agent_id <= $2 ORDER BY id"
        )))
        .bind(&first)
        .bind(&last)
        .fetch_all(self.reader())
        .await?;
        let mut grants_of: BTreeMap<AgentId, Vec<_>> = BTreeMap::new();
        for grant in convert::<_, surety_core::grant::Grant>(grants)? {
            grants_of.entry(grant.agent).or_default().push(grant);
        }

        let usage: Vec<(String, String, String, i64, DbTime)> = sqlx::query_as(
            "SELECT g.agent_id, u.grant_id, u.scope, u.uses, u.last_used_at \
             FROM grant_scope_usage u JOIN grants g ON g.id = u.grant_id \
             WHERE g.agent_id >= $1 AND g.agent_id <= $2 ORDER BY u.grant_id, u.scope",
        )
        .bind(&first)
        .bind(&last)
        .fetch_all(self.reader())
        .await?;
        let mut usage_of: BTreeMap<AgentId, Vec<ScopeUse>> = BTreeMap::new();
        for (agent, grant, scope, uses, at) in usage {
            usage_of
                .entry(agent_of(&agent)?)
                .or_default()
                .push(ScopeUse {
                    grant: grant
                        .parse()
                        .map_err(|e| StoreError::corrupt(format!("grant id `{grant}`: {e}")))?,
                    scope,
                    uses: count(uses),
                    last_used_at: at.0,
                });
        }

        let mut recent: BTreeMap<AgentId, RecentActivity> = BTreeMap::new();
        let daily: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT agent_id, CAST(SUM(tokens) AS BIGINT), CAST(SUM(allowed) AS BIGINT), \
             CAST(SUM(denied) AS BIGINT), CAST(SUM(step_up) AS BIGINT) \
             FROM agent_activity_daily \
             WHERE agent_id >= $1 AND agent_id <= $2 AND day >= $3 GROUP BY agent_id",
        )
        .bind(&first)
        .bind(&last)
        .bind(day(recent_since))
        .fetch_all(self.reader())
        .await?;
        for (agent, tokens, allowed, denied, step_up) in daily {
            let r = recent.entry(agent_of(&agent)?).or_default();
            (r.tokens, r.allowed, r.denied, r.step_up) =
                (count(tokens), count(allowed), count(denied), count(step_up));
        }
        let suspensions: Vec<(String, i64)> = sqlx::query_as(
            "SELECT agent_id, COUNT(*) FROM audit_events \
             WHERE agent_id >= $1 AND agent_id <= $2 AND kind = 'agent.suspended' AND time >= $3 \
             GROUP BY agent_id",
        )
        .bind(&first)
        .bind(&last)
        .bind(DbTime::from(recent_since))
        .fetch_all(self.reader())
        .await?;
        for (agent, n) in suspensions {
            recent.entry(agent_of(&agent)?).or_default().suspensions = count(n);
        }

        let mut items = Vec::with_capacity(agents.items.len());
        for agent in agents.items {
            let owner = humans.get(&agent.owner).cloned().ok_or_else(|| {
                StoreError::corrupt(format!("owner of agent `{}` is missing", agent.id))
            })?;
            items.push(AgentFacts {
                keys: keys_of.remove(&agent.id.to_string()).unwrap_or_default(),
                grants: grants_of.remove(&agent.id).unwrap_or_default(),
                usage: usage_of.remove(&agent.id).unwrap_or_default(),
                recent: recent.remove(&agent.id).unwrap_or_default(),
                owner,
                agent,
            });
        }
        Ok(Page {
            items,
            next_cursor: agents.next_cursor,
        })
    }
}
