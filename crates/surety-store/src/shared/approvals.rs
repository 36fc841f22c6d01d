//! Approval requests (CIBA), their votes, passkeys and web sessions.

use async_trait::async_trait;
use serde_json::Value;
use sqlx::{AssertSqlSafe, QueryBuilder};
use surety_core::agent::AgentStatus;
use surety_core::approval::{ActionDetails, Approval, ApprovalStatus, Delivery, Vote};
use surety_core::audit::NewEvent;
use surety_core::id::{AgentId, ApprovalId, HumanId};
use surety_core::page::{Page, PageRequest};
use time::OffsetDateTime;

use super::tx::{Tx, insert_events};
use super::{Backend, Db};
use crate::dbtime::DbTime;
use crate::error::unique_as_conflict;
use crate::rows::to_json_text;
use crate::{
    ApprovalFilter, ApprovalScope, ApprovalStore, ApprovalTransition, Ceremony, Enrollment,
    PasskeyRecord, PasskeyStore, Result, StoreError, VoteOutcome,
};

const COLUMNS: &str = "a.id, a.auth_req_hash, a.client_id, a.chain, a.principal_id, a.grant_id, \
    a.details, a.binding_message, a.reasons, a.approvers, a.required, a.status, a.requested_by, \
    a.notify_endpoint, a.notify_token, a.notify_req_id, a.poll_interval, a.last_polled_at, a.token_jti, \
    a.created_at, a.updated_at, a.expires_at";

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    auth_req_hash: String,
    client_id: String,
    chain: String,
    principal_id: String,
    grant_id: String,
    details: String,
    binding_message: String,
    reasons: String,
    approvers: String,
    required: i64,
    status: String,
    requested_by: Option<String>,
    notify_endpoint: Option<String>,
    notify_token: Option<String>,
    notify_req_id: Option<String>,
    poll_interval: i64,
    last_polled_at: Option<DbTime>,
    token_jti: Option<String>,
    created_at: DbTime,
    updated_at: DbTime,
    expires_at: DbTime,
}

fn corrupt(what: &str) -> impl Fn(String) -> StoreError + '_ {
    move |e| StoreError::corrupt(format!("approval {what}: {e}"))
}

fn json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| corrupt(what)(e.to_string()))
}

fn id<T: std::str::FromStr>(what: &str, text: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .map_err(|e: T::Err| corrupt(what)(e.to_string()))
}

impl TryFrom<Row> for Approval {
    type Error = StoreError;
    fn try_from(r: Row) -> Result<Self> {
        let details: Value = json("details", &r.details)?;
        let details = ActionDetails::parse(&details).map_err(|e| corrupt("details")(e.0))?;
        let chain: Vec<String> = json("chain", &r.chain)?;
        let approvers: Vec<String> = json("approvers", &r.approvers)?;
        Ok(Self {
            id: id("id", &r.id)?,
            auth_req_hash: r.auth_req_hash,
            client: id("client", &r.client_id)?,
            chain: chain
                .iter()
                .map(|a| id("chain", a))
                .collect::<Result<_>>()?,
            principal: id("principal", &r.principal_id)?,
            grant: id("grant", &r.grant_id)?,
            details,
            binding_message: r.binding_message,
            reasons: json("reasons", &r.reasons)?,
            approvers: approvers
                .iter()
                .map(|h| id("approver", h))
                .collect::<Result<_>>()?,
            required: u32::try_from(r.required).map_err(|e| corrupt("required")(e.to_string()))?,
            status: id("status", &r.status)?,
            requested_by: r
                .requested_by
                .as_deref()
                .map(|rs| id("requested_by", rs))
                .transpose()?,
            delivery: match (r.notify_endpoint, r.notify_token, r.notify_req_id) {
                (Some(endpoint), Some(token), Some(auth_req_id)) => Delivery::Ping {
                    endpoint,
                    token,
                    auth_req_id,
                },
                _ => Delivery::Poll,
            },
            interval: u32::try_from(r.poll_interval)
                .map_err(|e| corrupt("interval")(e.to_string()))?,
            last_polled_at: r.last_polled_at.map(|t| t.0),
            created_at: r.created_at.0,
            expires_at: r.expires_at.0,
            updated_at: r.updated_at.0,
            token_jti: r.token_jti,
        })
    }
}

#[derive(sqlx::FromRow)]
struct VoteRow {
    approval_id: String,
    approver_id: String,
    verdict: String,
    method: String,
    reason: Option<String>,
    evidence: String,
    at: DbTime,
}

impl TryFrom<VoteRow> for Vote {
    type Error = StoreError;
    fn try_from(r: VoteRow) -> Result<Self> {
        Ok(Self {
            approval: id("vote", &r.approval_id)?,
            approver: id("voter", &r.approver_id)?,
            verdict: id("verdict", &r.verdict)?,
            method: id("method", &r.method)?,
            reason: r.reason,
            evidence: json("evidence", &r.evidence)?,
            at: r.at.0,
        })
    }
}

async fn votes_in(tx: &mut Tx, approval: ApprovalId) -> Result<Vec<Vote>> {
    let rows: Vec<VoteRow> = sqlx::query_as(
        "SELECT approval_id, approver_id, verdict, method, reason, evidence, at \
         FROM approval_votes WHERE approval_id = $1 ORDER BY at, approver_id",
    )
    .bind(approval.to_string())
    .fetch_all(&mut **tx)
    .await?;
    rows.into_iter().map(Vote::try_from).collect()
}

/// The request, held until the transaction ends: the no-op update takes its row lock on
/// PostgreSQL (SQLite's single writer already excludes other writers).
async fn hold(tx: &mut Tx, approval: ApprovalId) -> Result<Option<Approval>> {
    sqlx::query("UPDATE approvals SET updated_at = updated_at WHERE id = $1")
        .bind(approval.to_string())
        .execute(&mut **tx)
        .await?;
    let row: Option<Row> = sqlx::query_as(AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM approvals a WHERE a.id = $1"
    )))
    .bind(approval.to_string())
    .fetch_optional(&mut **tx)
    .await?;
    row.map(Approval::try_from).transpose()
}

/// States a request can still move out of.
const OPEN: &str = "('pending', 'approved', 'redeemed')";
/// Erases what a ping needed, once the request is settled: the agent's bearer token and the
/// id in the clear.
const FORGET_PING: &str = "notify_token = NULL, notify_req_id = NULL";

#[async_trait]
impl ApprovalStore for Backend {
    async fn create_approval(
        &self,
        a: &Approval,
        max_waiting: u32,
        events: &[NewEvent],
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        // Hold the agent's row (the no-op update takes its lock on PostgreSQL; SQLite's single
        // writer already excludes others), so that concurrent requests count one at a time.
        sqlx::query("UPDATE agents SET updated_at = updated_at WHERE id = $1")
            .bind(a.client.to_string())
            .execute(&mut *tx)
            .await?;
        let agent: Option<(String,)> = sqlx::query_as("SELECT status FROM agents WHERE id = $1")
            .bind(a.client.to_string())
            .fetch_optional(&mut *tx)
            .await?;
        match agent {
            None => {
                return Err(StoreError::NotFound(format!(
                    "agent `{}` not found",
                    a.client
                )));
            }
            Some((s,)) if s != AgentStatus::Active.as_str() => {
                return Err(StoreError::Conflict(format!("agent `{}` is {s}", a.client)));
            }
            Some(_) => {}
        }
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM (SELECT 1 FROM approvals WHERE client_id = $1 \
             AND status = 'pending' AND expires_at > $2 LIMIT $3) waiting",
        )
        .bind(a.client.to_string())
        .bind(DbTime::from(a.created_at))
        .bind(i64::from(max_waiting))
        .fetch_one(&mut *tx)
        .await?;
        if waiting >= i64::from(max_waiting) {
            return Err(StoreError::Conflict(format!(
                "this agent already has {max_waiting} approval requests waiting; let its humans answer those first"
            )));
        }
        let (endpoint, token, req_id) = match &a.delivery {
            Delivery::Poll => (None, None, None),
            Delivery::Ping {
                endpoint,
                token,
                auth_req_id,
            } => (Some(endpoint), Some(token), Some(auth_req_id)),
        };
        sqlx::query(
            "INSERT INTO approvals (id, auth_req_hash, client_id, chain, principal_id, grant_id, \
             details, binding_message, reasons, approvers, required, status, requested_by, \
             notify_endpoint, notify_token, notify_req_id, poll_interval, last_polled_at, \
             token_jti, created_at, updated_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, \
             $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22)",
        )
        .bind(a.id.to_string())
        .bind(&a.auth_req_hash)
        .bind(a.client.to_string())
        .bind(to_json_text(
            &a.chain.iter().map(ToString::to_string).collect::<Vec<_>>(),
        )?)
        .bind(a.principal.to_string())
        .bind(a.grant.to_string())
        .bind(to_json_text(&a.details.to_authorization_details(a.grant))?)
        .bind(&a.binding_message)
        .bind(to_json_text(&a.reasons)?)
        .bind(to_json_text(
            &a.approvers
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
        )?)
        .bind(i64::from(a.required))
        .bind(a.status.as_str())
        .bind(a.requested_by.map(|r| r.to_string()))
        .bind(endpoint)
        .bind(token)
        .bind(req_id)
        .bind(i64::from(a.interval))
        .bind(a.last_polled_at.map(DbTime::from))
        .bind(a.token_jti.as_deref())
        .bind(DbTime::from(a.created_at))
        .bind(DbTime::from(a.updated_at))
        .bind(DbTime::from(a.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(unique_as_conflict(|| {
            "this request already exists".to_owned()
        }))?;
        for human in &a.approvers {
            sqlx::query("INSERT INTO approval_approvers (approval_id, human_id) VALUES ($1, $2)")
                .bind(a.id.to_string())
                .bind(human.to_string())
                .execute(&mut *tx)
                .await?;
        }
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_approval(&self, id: ApprovalId) -> Result<Option<Approval>> {
        let row: Option<Row> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM approvals a WHERE a.id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(self.reader())
        .await?;
        row.map(Approval::try_from).transpose()
    }

    async fn find_approval(&self, auth_req_hash: &str) -> Result<Option<Approval>> {
        let row: Option<Row> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM approvals a WHERE a.auth_req_hash = $1"
        )))
        .bind(auth_req_hash)
        .fetch_optional(self.reader())
        .await?;
        row.map(Approval::try_from).transpose()
    }

    async fn list_approvals(
        &self,
        filter: &ApprovalFilter,
        page: &PageRequest,
    ) -> Result<Page<Approval>> {
        let mut q: QueryBuilder<Db> =
            QueryBuilder::new(format!("SELECT {COLUMNS} FROM approvals a"));
        if let Some(h) = filter.approver {
            q.push(" JOIN approval_approvers p ON p.approval_id = a.id AND p.human_id = ")
                .push_bind(h.to_string());
        }
        q.push(" WHERE 1 = 1");
        if let Some(c) = filter.client {
            q.push(" AND a.client_id = ").push_bind(c.to_string());
        }
        if let Some(s) = filter.status {
            q.push(" AND a.status = ").push_bind(s.as_str());
        }
        if let Some(at) = filter.unexpired_at {
            q.push(" AND a.expires_at > ").push_bind(DbTime::from(at));
        }
        if let Some(after) = &page.after {
            let after: ApprovalId = after
                .parse()
                .map_err(|_| StoreError::Invalid("malformed cursor".into()))?;
            q.push(" AND a.id < ").push_bind(after.to_string());
        }
        q.push(" ORDER BY a.id DESC LIMIT ")
            .push_bind(i64::from(page.limit) + 1);
        let rows: Vec<Row> = q.build_query_as().fetch_all(self.reader()).await?;
        let items = rows
            .into_iter()
            .map(Approval::try_from)
            .collect::<Result<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, page.limit, |a| {
            a.id.to_string()
        }))
    }

    async fn count_waiting_approvals(
        &self,
        agent: AgentId,
        now: OffsetDateTime,
        up_to: u32,
    ) -> Result<u64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM (SELECT 1 FROM approvals WHERE client_id = $1 \
             AND status = 'pending' AND expires_at > $2 LIMIT $3) waiting",
        )
        .bind(agent.to_string())
        .bind(DbTime::from(now))
        .bind(i64::from(up_to))
        .fetch_one(self.reader())
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn approval_votes(&self, id: ApprovalId) -> Result<Vec<Vote>> {
        let rows: Vec<VoteRow> = sqlx::query_as(
            "SELECT approval_id, approver_id, verdict, method, reason, evidence, at \
             FROM approval_votes WHERE approval_id = $1 ORDER BY at, approver_id",
        )
        .bind(id.to_string())
        .fetch_all(self.reader())
        .await?;
        rows.into_iter().map(Vote::try_from).collect()
    }

    async fn vote(&self, vote: &Vote, outcome: VoteOutcome<'_>) -> Result<Approval> {
        let mut tx = self.writer().begin().await?;
        let mut approval = hold(&mut tx, vote.approval).await?.ok_or_else(|| {
            StoreError::NotFound(format!("approval `{}` not found", vote.approval))
        })?;
        if approval.status_at(vote.at) != ApprovalStatus::Pending {
            return Err(StoreError::Stale);
        }
        sqlx::query(
            "INSERT INTO approval_votes (approval_id, approver_id, verdict, method, reason, evidence, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(vote.approval.to_string())
        .bind(vote.approver.to_string())
        .bind(vote.verdict.as_str())
        .bind(vote.method.as_str())
        .bind(vote.reason.as_deref())
        .bind(to_json_text(&vote.evidence)?)
        .bind(DbTime::from(vote.at))
        .execute(&mut *tx)
        .await
        .map_err(unique_as_conflict(|| {
            format!("`{}` has already answered this request", vote.approver)
        }))?;
        let votes = votes_in(&mut tx, vote.approval).await?;
        let (to, events) = outcome(&approval, &votes);
        if let Some(to) = to {
            // Settled: the ping is sent from the returned copy; the database keeps neither
            // the agent's bearer token nor the id any longer.
            sqlx::query(AssertSqlSafe(format!(
                "UPDATE approvals SET status = $1, updated_at = $2, {FORGET_PING} WHERE id = $3"
            )))
            .bind(to.as_str())
            .bind(DbTime::from(vote.at))
            .bind(vote.approval.to_string())
            .execute(&mut *tx)
            .await?;
            approval.status = to;
            approval.updated_at = vote.at;
        }
        insert_events(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(approval)
    }

    async fn transition_approval(&self, c: &ApprovalTransition, events: &[NewEvent]) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        let mut q: QueryBuilder<Db> = QueryBuilder::new("UPDATE approvals SET status = ");
        q.push_bind(c.to.as_str())
            .push(", updated_at = ")
            .push_bind(DbTime::from(c.at))
            .push(", ")
            .push(FORGET_PING);
        if c.from != ApprovalStatus::Redeemed
            && let Some(jti) = &c.token_jti
        {
            q.push(", token_jti = ").push_bind(jti.clone());
        }
        q.push(" WHERE id = ")
            .push_bind(c.id.to_string())
            .push(" AND status = ")
            .push_bind(c.from.as_str());
        if c.from == ApprovalStatus::Redeemed {
            q.push(" AND token_jti = ")
                .push_bind(c.token_jti.clone().unwrap_or_default());
        }
        // Answering and redeeming need the request in time (a redeemed approval lives on in
        // its token, whose own `exp` bounds it).
        if matches!(c.from, ApprovalStatus::Pending | ApprovalStatus::Approved)
            && !matches!(c.to, ApprovalStatus::Expired | ApprovalStatus::Cancelled)
        {
            q.push(" AND expires_at > ").push_bind(DbTime::from(c.at));
        }
        let done = q.build().execute(&mut *tx).await?.rows_affected();
        if done == 0 {
            return Err(StoreError::Stale);
        }
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_poll(
        &self,
        id: ApprovalId,
        previous: Option<OffsetDateTime>,
        at: OffsetDateTime,
        interval: u32,
    ) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE approvals SET last_polled_at = $1, poll_interval = $2 WHERE id = $3 \
             AND ((last_polled_at IS NULL AND $4 IS NULL) OR last_polled_at = $4)",
        )
        .bind(DbTime::from(at))
        .bind(i64::from(interval))
        .bind(id.to_string())
        .bind(previous.map(DbTime::from))
        .execute(self.writer())
        .await?
        .rows_affected();
        Ok(done == 1)
    }

    async fn cancel_approvals(
        &self,
        scope: ApprovalScope,
        at: OffsetDateTime,
        event: &(dyn for<'x> Fn(&'x Approval) -> NewEvent + Send + Sync),
    ) -> Result<u64> {
        let mut tx = self.writer().begin().await?;
        let (clause, key) = match scope {
            // The chain is a JSON array of ids: an agent anywhere in it is a match.
            ApprovalScope::Agent(agent) => (
                "(client_id = $1 OR chain LIKE '%\"' || $1 || '\"%')",
                agent.to_string(),
            ),
            ApprovalScope::Grant(grant) => ("grant_id = $1", grant.to_string()),
            ApprovalScope::Human(human) => (
                "(principal_id = $1 OR client_id IN (SELECT id FROM agents WHERE owner_id = $1))",
                human.to_string(),
            ),
        };
        // Read first, so that each event can say what the request was; the update re-checks.
        let rows: Vec<Row> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT {} FROM approvals WHERE {clause} AND status IN {OPEN} AND expires_at > $2",
            COLUMNS.replace("a.", "")
        )))
        .bind(&key)
        .bind(DbTime::from(at))
        .fetch_all(&mut *tx)
        .await?;
        let mut cancelled = Vec::with_capacity(rows.len());
        for row in rows {
            let a = Approval::try_from(row)?;
            let done = sqlx::query(AssertSqlSafe(format!(
                "UPDATE approvals SET status = 'cancelled', updated_at = $1, {FORGET_PING} \
                 WHERE id = $2 AND status IN {OPEN}"
            )))
            .bind(DbTime::from(at))
            .bind(a.id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done == 1 {
                cancelled.push(a);
            }
        }
        let events: Vec<NewEvent> = cancelled.iter().map(event).collect();
        insert_events(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(cancelled.len() as u64)
    }

    async fn set_notification_endpoint(
        &self,
        agent: AgentId,
        url: Option<&str>,
        events: &[NewEvent],
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        sqlx::query("DELETE FROM agent_notification_endpoints WHERE agent_id = $1")
            .bind(agent.to_string())
            .execute(&mut *tx)
            .await?;
        if let Some(url) = url {
            sqlx::query("INSERT INTO agent_notification_endpoints (agent_id, url) VALUES ($1, $2)")
                .bind(agent.to_string())
                .bind(url)
                .execute(&mut *tx)
                .await?;
        }
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn notification_endpoint(&self, agent: AgentId) -> Result<Option<String>> {
        let row: Option<(String,)> =
            sqlx::query_as("SELECT url FROM agent_notification_endpoints WHERE agent_id = $1")
                .bind(agent.to_string())
                .fetch_optional(self.reader())
                .await?;
        Ok(row.map(|(u,)| u))
    }

    async fn human_by_email(&self, email: &str) -> Result<Option<HumanId>> {
        // Stored normalised (`validate::email`); an address that is not one matches nothing.
        let Ok(email) = surety_core::validate::email("login_hint", email) else {
            return Ok(None);
        };
        let row: Option<(String,)> = sqlx::query_as("SELECT id FROM humans WHERE email = $1")
            .bind(email)
            .fetch_optional(self.reader())
            .await?;
        row.map(|(h,)| id("human", &h)).transpose()
    }
}

#[derive(sqlx::FromRow)]
struct PasskeyRow {
    cred_id: String,
    human_id: String,
    passkey: String,
    created_at: DbTime,
    last_used_at: Option<DbTime>,
}

#[derive(sqlx::FromRow)]
struct CeremonyRow {
    id: String,
    human_id: Option<String>,
    purpose: String,
    state: String,
    expires_at: DbTime,
}

#[async_trait]
impl PasskeyStore for Backend {
    async fn issue_invite(&self, invite: &Enrollment, events: &[NewEvent]) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        // Earlier unused links of the same human stop working.
        sqlx::query(
            "UPDATE passkey_invites SET used_at = $1 WHERE human_id = $2 AND used_at IS NULL",
        )
        .bind(DbTime::from(invite.created_at))
        .bind(invite.human.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO passkey_invites (code_hash, human_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&invite.code_hash)
        .bind(invite.human.to_string())
        .bind(DbTime::from(invite.created_at))
        .bind(DbTime::from(invite.expires_at))
        .execute(&mut *tx)
        .await?;
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn invited_human(&self, code_hash: &str, now: OffsetDateTime) -> Result<Option<HumanId>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT i.human_id FROM passkey_invites i JOIN humans h ON h.id = i.human_id \
             WHERE i.code_hash = $1 AND i.used_at IS NULL AND i.expires_at > $2 AND h.status = 'active'",
        )
        .bind(code_hash)
        .bind(DbTime::from(now))
        .fetch_optional(self.reader())
        .await?;
        row.map(|(h,)| id("invite", &h)).transpose()
    }

    async fn register_passkey(
        &self,
        code_hash: &str,
        p: &PasskeyRecord,
        events: &[NewEvent],
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        let used = sqlx::query(
            "UPDATE passkey_invites SET used_at = $1 WHERE code_hash = $2 AND human_id = $3 \
             AND used_at IS NULL AND expires_at > $1",
        )
        .bind(DbTime::from(p.created_at))
        .bind(code_hash)
        .bind(p.human.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if used == 0 {
            return Err(StoreError::NotFound(
                "this enrollment link is unknown, used or expired".into(),
            ));
        }
        super::tx::lock_active_human(&mut tx, p.human, "human").await?;
        sqlx::query(
            "INSERT INTO passkeys (cred_id, human_id, passkey, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&p.cred_id)
        .bind(p.human.to_string())
        .bind(to_json_text(&p.passkey)?)
        .bind(DbTime::from(p.created_at))
        .execute(&mut *tx)
        .await
        .map_err(unique_as_conflict(|| {
            "this passkey is already registered".to_owned()
        }))?;
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_passkeys(&self, human: HumanId) -> Result<Vec<PasskeyRecord>> {
        let rows: Vec<PasskeyRow> = sqlx::query_as(
            "SELECT cred_id, human_id, passkey, created_at, last_used_at FROM passkeys \
             WHERE human_id = $1 ORDER BY created_at",
        )
        .bind(human.to_string())
        .fetch_all(self.reader())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(PasskeyRecord {
                    cred_id: r.cred_id,
                    human: id("passkey holder", &r.human_id)?,
                    passkey: json("passkey", &r.passkey)?,
                    created_at: r.created_at.0,
                    last_used_at: r.last_used_at.map(|t| t.0),
                })
            })
            .collect()
    }

    async fn touch_passkey(
        &self,
        cred_id: &str,
        passkey: &Value,
        at: OffsetDateTime,
    ) -> Result<()> {
        sqlx::query("UPDATE passkeys SET passkey = $1, last_used_at = $2 WHERE cred_id = $3")
            .bind(to_json_text(passkey)?)
            .bind(DbTime::from(at))
            .bind(cred_id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn put_ceremony(&self, c: &Ceremony) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        // Ceremonies are short-lived: each new one sweeps the expired.
        sqlx::query("DELETE FROM webauthn_ceremonies WHERE expires_at <= $1")
            .bind(DbTime::from(c.expires_at - time::Duration::minutes(10)))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO webauthn_ceremonies (id, human_id, purpose, state, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&c.id)
        .bind(c.human.map(|h| h.to_string()))
        .bind(&c.purpose)
        .bind(to_json_text(&c.state)?)
        .bind(DbTime::from(c.expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn take_ceremony(&self, cid: &str, now: OffsetDateTime) -> Result<Option<Ceremony>> {
        let row: Option<CeremonyRow> = sqlx::query_as(
            "DELETE FROM webauthn_ceremonies WHERE id = $1 \
             RETURNING id, human_id, purpose, state, expires_at",
        )
        .bind(cid)
        .fetch_optional(self.writer())
        .await?;
        let Some(r) = row.filter(|r| r.expires_at.0 > now) else {
            return Ok(None);
        };
        Ok(Some(Ceremony {
            id: r.id,
            human: r
                .human_id
                .as_deref()
                .map(|h| id("ceremony", h))
                .transpose()?,
            purpose: r.purpose,
            state: json("ceremony", &r.state)?,
            expires_at: r.expires_at.0,
        }))
    }

    async fn create_ui_session(
        &self,
        token_hash: &str,
        human: HumanId,
        at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        sqlx::query("DELETE FROM ui_sessions WHERE expires_at <= $1")
            .bind(DbTime::from(at))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO ui_sessions (token_hash, human_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(human.to_string())
        .bind(DbTime::from(at))
        .bind(DbTime::from(expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn ui_session(&self, token_hash: &str, now: OffsetDateTime) -> Result<Option<HumanId>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT s.human_id FROM ui_sessions s JOIN humans h ON h.id = s.human_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND h.status = 'active'",
        )
        .bind(token_hash)
        .bind(DbTime::from(now))
        .fetch_optional(self.reader())
        .await?;
        row.map(|(h,)| id("session", &h)).transpose()
    }

    async fn revoke_passkey(
        &self,
        human: HumanId,
        cred_id: &str,
        events: &[NewEvent],
    ) -> Result<()> {
        let mut tx = self.writer().begin().await?;
        let gone = sqlx::query("DELETE FROM passkeys WHERE cred_id = $1 AND human_id = $2")
            .bind(cred_id)
            .bind(human.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if gone == 0 {
            return Err(StoreError::NotFound(format!(
                "passkey `{cred_id}` of `{human}` not found"
            )));
        }
        sqlx::query("DELETE FROM ui_sessions WHERE human_id = $1")
            .bind(human.to_string())
            .execute(&mut *tx)
            .await?;
        insert_events(&mut tx, events).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn end_ui_sessions_of(&self, human: HumanId) -> Result<()> {
        sqlx::query("DELETE FROM ui_sessions WHERE human_id = $1")
            .bind(human.to_string())
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn end_ui_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM ui_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.writer())
            .await?;
        Ok(())
    }
}
