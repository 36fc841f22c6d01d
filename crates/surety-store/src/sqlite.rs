//! SQLite backend: the embedded default. WAL journal, `synchronous = FULL` (an acknowledged
//! write survives power loss), foreign keys on. All writes go through a single writer
//! connection, so write transactions never contend; reads use a pool of read-only
//! connections that see committed snapshots.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::{Result, Serial, Store};

pub(crate) type Db = sqlx::Sqlite;
pub(crate) type Backend = SqliteStore;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating the file if needed) and migrates the database at `url`
    /// (`sqlite://path/to/surety.db`).
    pub async fn open(url: &str, max_readers: u32) -> Result<Self> {
        let base = SqliteConnectOptions::from_str(url)?
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(base.clone().create_if_missing(true))
            .await?;
        MIGRATOR.run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(max_readers.max(1))
            .connect_with(base.read_only(true))
            .await?;
        let store = Self { writer, reader };
        // Events recorded before the audit tree existed become its first leaves.
        tree::backfill(&store).await?;
        Ok(store)
    }

    pub(crate) fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.reader
    }
}

/// SQLite runs every write through its single writer connection, so write transactions are
/// already applied one at a time: there is nothing more to take.
async fn serialize(_tx: &mut sqlx::Transaction<'static, Db>, _rule: Serial) -> Result<()> {
    Ok(())
}

/// One SQLite database serves one node: there is no other node to tell of a change.
async fn announce(_tx: &mut sqlx::Transaction<'static, Db>, _change: crate::Change) -> Result<()> {
    Ok(())
}

/// A human's status. The single writer connection already keeps it from changing until this
/// transaction ends.
async fn human_status_shared(
    tx: &mut sqlx::Transaction<'static, Db>,
    human: surety_core::id::HumanId,
) -> Result<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as("SELECT status FROM humans WHERE id = $1")
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
impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        sqlx::query("SELECT 1").execute(&self.writer).await?;
        Ok(())
    }

    async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    async fn changes(&self) -> Result<Option<Box<dyn crate::ChangeFeed>>> {
        Ok(None)
    }
}
