//! HTTP load test of the registry, against a real server on loopback:
//!
//! 1. agents registered per second over HTTP (`POST /v1/agents`, each with a fresh DPoP
//!    proof, from `SURETY_BENCH_CONCURRENCY` clients for `SURETY_BENCH_SECONDS`);
//! 2. `GET /v1/agents` page latency once the registry holds `SURETY_BENCH_AGENTS` agents
//!    (keyset pagination: the first page, and a page from a cursor in the middle).
//!
//! Seeding goes through the store directly (`SURETY_BENCH_SEED_WRITERS` tasks, default 1).
//!
//! `cargo bench -p surety-testkit --bench http_load` (SQLite), or with
//! `SURETY_BENCH_BACKEND=postgres SURETY_TEST_DATABASE_URL=postgres://…` for PostgreSQL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "benchmark"
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use surety_api::admin::{AgentQuery, RegisterAgent};
use surety_core::id::AgentId;
use surety_jose::{KeyAlg, PrivateJwk};
use surety_store::testing::seed_agent;
use surety_testkit::{Backend, Options, TestServer};

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name}: n={} p50={:.2?} p90={:.2?} p99={:.2?} max={:.2?}",
        samples.len(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.90),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or_default()
    );
}

fn registration(i: usize) -> RegisterAgent {
    RegisterAgent {
        name: format!("load-{i}"),
        owner: None,
        public_key: PrivateJwk::generate(KeyAlg::EdDSA)
            .unwrap()
            .public()
            .to_json(),
        purpose: Some("load test".into()),
        environment: Some("bench".into()),
        labels: BTreeMap::new(),
    }
}

async fn seed(server: &TestServer, target: usize, writers: usize) -> Vec<AgentId> {
    let store = server.store().clone();
    let owner = server.admin.id;
    let start = Instant::now();
    let per_writer = target / writers;
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::with_capacity(per_writer);
            for i in 0..per_writer {
                ids.push(
                    seed_agent(store.as_ref(), owner, &format!("seed-{w}-{i}"))
                        .await
                        .unwrap(),
                );
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    ids.sort();
    let secs = start.elapsed().as_secs_f64();
    println!(
        "seeded {} agents through the store in {secs:.1}s ({:.0}/s)",
        ids.len(),
        ids.len() as f64 / secs
    );
    ids
}

#[tokio::main]
async fn main() {
    let backend = match std::env::var("SURETY_BENCH_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    let seconds: u64 = env("SURETY_BENCH_SECONDS", 10);
    let concurrency: usize = env("SURETY_BENCH_CONCURRENCY", 8);
    let agents: usize = env("SURETY_BENCH_AGENTS", 100_000);
    let seed_writers: usize = env("SURETY_BENCH_SEED_WRITERS", 1);
    let server = TestServer::start_with(Options {
        backend,
        ..Default::default()
    })
    .await;
    println!("backend={backend:?} concurrency={concurrency} seconds={seconds} agents={agents}");

    // 1. Registration throughput over HTTP.
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let client = server.admin_client();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = c * 1_000_000;
            while !stop.load(Ordering::Relaxed) {
                let body = registration(i);
                let t = Instant::now();
                client.register_agent(&body).await.unwrap();
                latencies.push(t.elapsed());
                i += 1;
            }
            latencies
        }));
    }
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.unwrap());
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "POST /v1/agents: {:.0} agents/s over HTTP",
        latencies.len() as f64 / elapsed
    );
    summary("POST /v1/agents latency", latencies);

    // 2. Page latency with a large registry.
    let have = server
        .store()
        .list_agents(
            &Default::default(),
            &surety_core::page::PageRequest::first(1000),
        )
        .await
        .unwrap();
    let remaining = agents.saturating_sub(have.items.len());
    let ids = if remaining > 0 {
        seed(&server, remaining, seed_writers.max(1)).await
    } else {
        Vec::new()
    };
    let client = server.admin_client();
    let middle = ids.get(ids.len() / 2).map(ToString::to_string);
    for (name, cursor) in [
        ("first page", None),
        ("page from a cursor in the middle", middle),
    ] {
        let mut samples = Vec::new();
        for _ in 0..300 {
            let q = AgentQuery {
                limit: Some(50),
                cursor: cursor.clone(),
                ..Default::default()
            };
            let t = Instant::now();
            let page = client.list_agents(&q).await.unwrap();
            samples.push(t.elapsed());
            assert_eq!(page.items.len(), 50);
        }
        summary(
            &format!("GET /v1/agents?limit=50 ({name}, {agents} agents)"),
            samples,
        );
    }
    server.stop().await;
}
