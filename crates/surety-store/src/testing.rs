//! Throw-away databases for tests and benchmarks: a SQLite file in a directory the caller
//! owns, or a fresh schema in the PostgreSQL database named by `SURETY_TEST_DATABASE_URL`.

use std::path::Path;
use std::str::FromStr;

use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};

use crate::{Result, StoreError};

/// Environment variable naming the PostgreSQL database tests may create schemas in.
pub const TEST_DATABASE_URL_ENV: &str = "SURETY_TEST_DATABASE_URL";

/// A `sqlite://` URL for a new database file in `dir`.
#[must_use]
pub fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("surety.db").display())
}

/// A fresh, empty schema in the test PostgreSQL database.
#[derive(Debug)]
pub struct PgTestSchema {
    base: String,
    /// The schema's name.
    pub schema: String,
    /// A URL whose connections use only this schema.
    pub url: String,
}

impl PgTestSchema {
    /// Creates a schema in the database named by [`TEST_DATABASE_URL_ENV`]; `None` when the
    /// variable is not set.
    pub async fn create() -> Option<Result<Self>> {
        let base = std::env::var(TEST_DATABASE_URL_ENV).ok()?;
        Some(Self::create_in(base).await)
    }

    async fn create_in(base: String) -> Result<Self> {
        let schema = format!("surety_test_{}", uuid_like());
        let mut conn = PgConnection::connect_with(&PgConnectOptions::from_str(&base)?).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
        Ok(Self { base, schema, url })
    }

    /// Drops the schema and everything in it.
    pub async fn drop_schema(self) -> Result<()> {
        let mut conn = PgConnection::connect_with(&PgConnectOptions::from_str(&self.base)?).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP SCHEMA {} CASCADE",
            self.schema
        )))
        .execute(&mut conn)
        .await
        .map_err(StoreError::from)?;
        conn.close().await?;
        Ok(())
    }
}

/// A random, time-ordered suffix for unique schema names.
fn uuid_like() -> String {
    surety_core::id::EventId::new(time::OffsetDateTime::now_utc())
        .uuid()
        .simple()
        .to_string()
}

/// Registers a throw-away agent named `name` for `owner`, with a placeholder key and its
/// audit event, straight through the store (benchmarks and seeding; never for real keys).
pub async fn seed_agent(
    store: &dyn crate::Store,
    owner: surety_core::id::HumanId,
    name: &str,
) -> Result<surety_core::id::AgentId> {
    use surety_core::agent::NewAgent;
    use surety_core::audit::{Actor, EventKind, NewEvent};
    use surety_core::id::{AgentId, PrincipalId};
    use surety_core::key::{KeyRecord, KeyStatus};

    let now = time::OffsetDateTime::now_utc();
    let agent = NewAgent::parse(name, owner, None, Some("bench"), &Default::default())
        .map_err(|e| StoreError::Invalid(e.to_string()))?
        .into_agent(AgentId::new(now), now);
    let key = KeyRecord {
        kid: format!("seed-{}", agent.id),
        holder: PrincipalId::Agent(agent.id),
        alg: "EdDSA".into(),
        jwk: serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": "placeholder"}),
        status: KeyStatus::Active,
        created_at: now,
        status_changed_at: None,
    };
    let event = NewEvent::new(
        EventKind::AgentRegistered,
        Actor::Human(owner),
        agent.id,
        now,
    )
    .agent(agent.id)
    .human(owner);
    store.create_agent(&agent, &key, &[event]).await?;
    Ok(agent.id)
}
