//! PostgreSQL backend: for several stateless nodes sharing one database. Transactions run
//! at READ COMMITTED; every change is a compare-and-set on the state it was decided on,
//! and the few rules that span rows (the last active admin, the order of audit events)
//! serialise on transaction-scoped advisory locks.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::{Result, Serial, Store};

pub(crate) type Db = sqlx::Postgres;
pub(crate) type Backend = PgStore;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to `url` and migrates.
    pub async fn open(url: &str, max_connections: u32) -> Result<Self> {
        Self::open_with(PgConnectOptions::from_str(url)?, max_connections).await
    }

    /// Plans every statement with its actual parameters. A statement prepared while a table
    /// was nearly empty would otherwise keep a generic plan (a sequential scan, say) for the
    /// life of the connection whenever statistics are not refreshed — a deployment that
    /// starts empty and grows would slow down quadratically.
    fn session(options: PgConnectOptions) -> PgConnectOptions {
        options.options([("plan_cache_mode", "force_custom_plan")])
    }

    /// Connects with explicit options (a test schema, say) and migrates.
    pub async fn open_with(options: PgConnectOptions, max_connections: u32) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(Self::session(options))
            .await?;
        MIGRATOR.run(&pool).await?;
        let store = Self { pool };
        // Events recorded before the audit tree existed become its first leaves.
        tree::backfill(&store).await?;
        Ok(store)
    }

    pub(crate) fn writer(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) fn reader(&self) -> &PgPool {
        &self.pool
    }
}

/// Takes a transaction-scoped advisory lock for `rule`; it is released at commit or rollback.
/// Advisory locks queue waiters without writing rows, so a hot lock leaves no dead tuples.
async fn serialize(tx: &mut sqlx::Transaction<'static, Db>, rule: Serial) -> Result<()> {
    // Keys in a range of our own: "SURE" followed by a rule number.
    let key: i64 = match rule {
        Serial::Admins => 0x5355_5245_0000_0001,
        Serial::Audit => 0x5355_5245_0000_0002,
        Serial::SigningKeys => 0x5355_5245_0000_0003,
        Serial::Policies => 0x5355_5245_0000_0004,
    };
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Tells every node listening on [`crate::CHANGES_CHANNEL`] of `change` when (and only if)
/// this transaction commits (PostgreSQL delivers `NOTIFY` at commit).
async fn announce(tx: &mut sqlx::Transaction<'static, Db>, change: crate::Change) -> Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(crate::CHANGES_CHANNEL)
        .bind(change.as_str())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Follows [`crate::CHANGES_CHANNEL`] on a connection of its own, made again whenever it
/// fails.
struct PgChangeFeed {
    pool: sqlx::PgPool,
    listener: Option<sqlx::postgres::PgListener>,
}

impl PgChangeFeed {
    async fn listen(
        pool: &sqlx::PgPool,
    ) -> std::result::Result<sqlx::postgres::PgListener, sqlx::Error> {
        let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
        listener.listen(crate::CHANGES_CHANNEL).await?;
        Ok(listener)
    }
}

#[async_trait]
impl crate::ChangeFeed for PgChangeFeed {
    async fn next(&mut self) -> crate::Change {
        let Some(listener) = self.listener.as_mut() else {
            // Listening again: whatever was announced meanwhile is unknown.
            match Self::listen(&self.pool).await {
                Ok(l) => self.listener = Some(l),
                Err(e) => tracing::warn!(error = %e, "the change feed cannot listen yet"),
            }
            return crate::Change::Missed;
        };
        loop {
            match listener.try_recv().await {
                Ok(Some(n)) => {
                    if let Some(change) = crate::Change::parse(n.payload()) {
                        return change;
                    }
                }
                // The connection was lost and made again: what was announced meanwhile
                // is unknown.
                Ok(None) => return crate::Change::Missed,
                // It could not be made again: a new listener next time.
                Err(e) => {
                    tracing::warn!(error = %e, "the change feed lost PostgreSQL");
                    self.listener = None;
                    return crate::Change::Missed;
                }
            }
        }
    }
}

/// A human's status, with the row held in share mode until this transaction ends: a
/// concurrent status change waits for it, while other share holders do not.
async fn human_status_shared(
    tx: &mut sqlx::Transaction<'static, Db>,
    human: surety_core::id::HumanId,
) -> Result<Option<String>> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT status FROM humans WHERE id = $1 FOR SHARE")
            .bind(human.to_string())
            .fetch_optional(&mut **tx)
            .await?;
    Ok(row.map(|(s,)| s))
}

#[path = "shared/agents.rs"]
mod agents;
#[path = "shared/approvals.rs"]
mod approvals;
#[path = "shared/audit.rs"]
mod audit;
#[path = "shared/credentials.rs"]
mod credentials;
#[path = "shared/federation.rs"]
mod federation;
#[path = "shared/grants.rs"]
mod grants;
#[path = "shared/humans.rs"]
mod humans;
#[path = "shared/inventory.rs"]
mod inventory;
#[path = "shared/keys.rs"]
mod keys;
#[path = "shared/org.rs"]
mod org;
#[path = "shared/policies.rs"]
mod policies;
#[path = "shared/sessions.rs"]
mod sessions;
#[path = "shared/streams.rs"]
mod streams;
#[path = "shared/tree.rs"]
mod tree;
#[path = "shared/tx.rs"]
mod tx;

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn changes(&self) -> Result<Option<Box<dyn crate::ChangeFeed>>> {
        let listener = PgChangeFeed::listen(&self.pool).await?;
        Ok(Some(Box::new(PgChangeFeed {
            pool: self.pool.clone(),
            listener: Some(listener),
        })))
    }
}
