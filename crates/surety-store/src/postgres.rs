//! PostgreSQL backend: for several stateless nodes sharing one database. Transactions run
//! at READ COMMITTED; every change is a compare-and-set on the state it was decided on,
//! and the few rules that span rows (the last active admin, the order of audit events)
//! serialise on a row of `serial_locks`.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::{Result, Store};

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

    /// Connects with explicit options (a test schema, say) and migrates.
    pub async fn open_with(options: PgConnectOptions, max_connections: u32) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(2))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(Self { pool })
    }

    pub(crate) fn writer(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) fn reader(&self) -> &PgPool {
        &self.pool
    }
}

#[path = "shared/agents.rs"]
mod agents;
#[path = "shared/audit.rs"]
mod audit;
#[path = "shared/humans.rs"]
mod humans;
#[path = "shared/keys.rs"]
mod keys;
#[path = "shared/org.rs"]
mod org;
#[path = "shared/sessions.rs"]
mod sessions;
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
}
