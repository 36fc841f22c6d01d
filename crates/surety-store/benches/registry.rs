//! Registry storage benchmarks: registering an agent (one transaction with its key and
//! audit event) and reading a page of agents by keyset, on SQLite and — when
//! `SURETY_TEST_DATABASE_URL` is set — PostgreSQL.
//!
//! `cargo bench -p surety-store --bench registry`

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark")]

use std::collections::BTreeMap;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use surety_core::agent::NewAgent;
use surety_core::audit::{Actor, EventKind, NewEvent};
use surety_core::human::{NewHuman, Role};
use surety_core::id::{AgentId, HumanId, PrincipalId};
use surety_core::key::{KeyRecord, KeyStatus};
use surety_core::page::PageRequest;
use surety_store::testing::{PgTestSchema, sqlite_url};
use surety_store::{AgentFilter, PgStore, SqliteStore, Store};
use time::OffsetDateTime;
use tokio::runtime::Runtime;

async fn register(store: &dyn Store, owner: HumanId, n: u64) {
    let now = OffsetDateTime::now_utc();
    let agent = NewAgent::parse(&format!("bench-{n}"), owner, None, None, &BTreeMap::new())
        .unwrap()
        .into_agent(AgentId::new(now), now);
    let key = KeyRecord {
        kid: format!("kid-{}", agent.id),
        holder: PrincipalId::Agent(agent.id),
        alg: "EdDSA".into(),
        jwk: json!({"kty": "OKP", "crv": "Ed25519", "x": "bench"}),
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
    .agent(agent.id);
    store.create_agent(&agent, &key, &[event]).await.unwrap();
}

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
            rt.block_on(register(store.as_ref(), owner, n));
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
