//! Registry storage benchmarks: registering an agent (one transaction with its key and
//! audit event) and reading a page of agents by keyset, on SQLite and — when
//! `SURETY_TEST_DATABASE_URL` is set — PostgreSQL.
//!
//! `cargo bench -p surety-store --bench registry`

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark")]

use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use surety_core::human::{NewHuman, Role};
use surety_core::id::{AgentId, HumanId};
use surety_core::page::PageRequest;
use surety_store::testing::{PgTestSchema, seed_agent, sqlite_url};
use surety_store::{AgentFilter, PgStore, SqliteStore, Store};
use time::OffsetDateTime;
use tokio::runtime::Runtime;

async fn owner(store: &dyn Store) -> HumanId {
    let now = OffsetDateTime::now_utc();
    let h = NewHuman::parse(
        "Bench",
        &format!("bench-{}@example.com", AgentId::new(now).uuid().simple()),
        Role::Admin,
    )
    .unwrap()
    .into_human(HumanId::new(now), now);
    store.create_human(&h, None, &[]).await.unwrap();
    h.id
}

fn bench_backend(c: &mut Criterion, name: &str, rt: &Runtime, store: Arc<dyn Store>) {
    let owner = rt.block_on(owner(store.as_ref()));
    let mut n = 0u64;
    c.bench_function(&format!("{name}/create_agent"), |b| {
        b.iter(|| {
            n += 1;
            rt.block_on(seed_agent(store.as_ref(), owner, &format!("bench-{n}")))
                .unwrap();
        });
    });
    let page = PageRequest::first(50);
    c.bench_function(&format!("{name}/list_agents_first_page_of_50"), |b| {
        b.iter(|| {
            rt.block_on(store.list_agents(&AgentFilter::default(), &page))
                .unwrap()
        });
    });
    let middle = rt
        .block_on(store.list_agents(&AgentFilter::default(), &PageRequest::first(1000)))
        .unwrap();
    let after = middle.items.last().map(|a| a.id.to_string());
    let deep = PageRequest { limit: 50, after };
    c.bench_function(&format!("{name}/list_agents_page_after_cursor"), |b| {
        b.iter(|| {
            rt.block_on(store.list_agents(&AgentFilter::default(), &deep))
                .unwrap()
        });
    });
}

fn registry(c: &mut Criterion) {
    let rt = Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn Store> = Arc::new(
        rt.block_on(SqliteStore::open(&sqlite_url(dir.path()), 4))
            .unwrap(),
    );
    bench_backend(c, "sqlite", &rt, sqlite);
    if let Some(schema) = rt.block_on(PgTestSchema::create()) {
        let schema = schema.unwrap();
        let pg: Arc<dyn Store> = Arc::new(rt.block_on(PgStore::open(&schema.url, 8)).unwrap());
        bench_backend(c, "postgres", &rt, pg);
        rt.block_on(schema.drop_schema()).unwrap();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = registry
}
criterion_main!(benches);
