//! The storage suite: every test runs against SQLite and against PostgreSQL (in a fresh
//! schema of the database named by `SURETY_TEST_DATABASE_URL`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests"
)]

mod agents;
mod approvals;
mod audit;
mod concurrency;
mod credentials;
mod federation;
mod fixtures;
mod humans;
mod inventory;
mod keys;
mod policies;
mod sessions;

use std::future::Future;
use std::sync::Arc;

use surety_store::testing::{PgTestSchema, TEST_DATABASE_URL_ENV, sqlite_url};
use surety_store::{PgStore, SqliteStore, Store};

/// Runs `test` against a fresh SQLite database.
pub async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&sqlite_url(dir.path()), 4).await.unwrap());
    test(store.clone()).await;
    store.close().await;
}

/// Runs `test` against a fresh PostgreSQL schema, or says loudly that it did not.
pub async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some(schema) = PgTestSchema::create().await else {
        eprintln!("PostgreSQL suite not run: set {TEST_DATABASE_URL_ENV}");
        return;
    };
    let schema = schema.expect("cannot create a test schema in the PostgreSQL database");
    let store = Arc::new(PgStore::open(&schema.url, 4).await.unwrap());
    test(store.clone()).await;
    store.close().await;
    schema.drop_schema().await.unwrap();
}

/// Declares one test per backend for each `async fn(Arc<dyn Store>)`.
#[macro_export]
macro_rules! storage_tests {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    $crate::on_sqlite(super::$name).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    $crate::on_postgres(super::$name).await;
                }
            )+
        }
    };
}
