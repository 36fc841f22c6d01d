//! `surety bench audit-proofs`: how long an inclusion or consistency proof takes to assemble
//! from the store once the log is large (10 million events by default) — the work behind
//! `GET /v1/audit/proofs/…`: learn which stored nodes the proof needs, read them in one
//! query, compute. The tree is built in memory and loaded into a fresh store (appending 10
//! million events one transaction at a time would take hours), then queried at random.

use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use surety_core::merkle::{self, MemoryTree, NodeSource as _};
use surety_store::{PgStore, SqliteStore, Store};

use crate::Globals;
use crate::output::{self, say};

/// Options of `surety bench audit-proofs`.
#[derive(Debug, Args)]
pub struct ProofLoad {
    /// Leaves in the tree.
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// Proofs of each kind to time.
    #[arg(long, default_value_t = 2_000)]
    proofs: usize,
    /// Load into a fresh schema of the PostgreSQL database named by
    /// `SURETY_TEST_DATABASE_URL` instead of a SQLite file.
    #[arg(long)]
    postgres: bool,
}

/// Latency percentiles, in microseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    pub(crate) p50_us: u128,
    pub(crate) p99_us: u128,
    pub(crate) max_us: u128,
}

pub(crate) fn latency(mut samples: Vec<Duration>) -> Latency {
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(i).map_or(0, Duration::as_micros)
    };
    Latency {
        p50_us: at(0.5),
        p99_us: at(0.99),
        max_us: samples.last().map_or(0, Duration::as_micros),
    }
}

/// What was measured.
#[derive(Debug, Serialize)]
pub struct ProofReport {
    backend: &'static str,
    events: u64,
    tree_nodes: u64,
    load_seconds: f64,
    inclusion: Latency,
    consistency: Latency,
}

/// Times `proofs` proofs of each kind against `store`, checking each against the root.
async fn measure(
    store: &dyn Store,
    size: u64,
    root: merkle::Hash,
    proofs: usize,
) -> anyhow::Result<(Latency, Latency)> {
    // Positions spread over the whole log by golden-ratio steps: reproducible, and no two
    // runs of the same size differ in what they ask.
    const STEP: u64 = 0x9E37_79B9_7F4A_7C15;
    let at = |i: usize| (i as u64).wrapping_mul(STEP).wrapping_add(STEP) % size;
    let (mut inclusion, mut consistency) = (Vec::new(), Vec::new());
    for i in 0..proofs {
        let index = at(i);
        let started = Instant::now();
        let positions = merkle::wanted(|src| merkle::inclusion_proof(src, index, size))?;
        let nodes = store.tree_nodes(&positions).await?;
        let proof = merkle::inclusion_proof(&nodes, index, size)?;
        inclusion.push(started.elapsed());
        let leaf = merkle::leaf_hash(&index.to_le_bytes());
        anyhow::ensure!(
            merkle::verify_inclusion(index, size, &leaf, &proof, &root),
            "inclusion proof of {index} does not verify"
        );

        let old = at(i + proofs).max(1);
        let started = Instant::now();
        let positions = merkle::wanted(|src| {
            Ok((
                merkle::consistency_proof(src, old, size)?,
                merkle::root(src, old)?,
            ))
        })?;
        let nodes = store.tree_nodes(&positions).await?;
        let proof = merkle::consistency_proof(&nodes, old, size)?;
        let old_root = merkle::root(&nodes, old)?;
        consistency.push(started.elapsed());
        anyhow::ensure!(
            merkle::verify_consistency(old, size, &old_root, &root, &proof),
            "consistency proof {old}..{size} does not verify"
        );
    }
    Ok((latency(inclusion), latency(consistency)))
}

pub async fn run(g: &Globals, args: ProofLoad) -> anyhow::Result<()> {
    anyhow::ensure!(args.events >= 2, "--events: at least 2");
    let size = args.events;
    eprintln!("building a tree of {size} leaves in memory…");
    let tree = tokio::task::spawn_blocking(move || {
        let mut tree = MemoryTree::new();
        for i in 0..size {
            tree.push(merkle::leaf_hash(&i.to_le_bytes()));
        }
        tree
    })
    .await?;
    let root = tree.root(size)?;
    let levels = 64 - size.leading_zeros();
    let nodes = (0..u8::try_from(levels)?).flat_map(|level| {
        let tree = &tree;
        (0..size >> level).filter_map(move |i| tree.node(level, i).map(|h| (level, i, h)))
    });
    let count: u64 = (0..levels).map(|l| size >> l).sum();
    let dir = std::env::temp_dir().join(format!(
        "surety-proof-bench-{}",
        surety_jose::random_b64(8)?
    ));
    std::fs::create_dir_all(&dir)?;
    let mut schema = None;
    let started = Instant::now();
    eprintln!("loading {count} nodes…");
    let store: Box<dyn Store> = if args.postgres {
        let s = surety_store::testing::PgTestSchema::create()
            .await
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "--postgres: set {}",
                    surety_store::testing::TEST_DATABASE_URL_ENV
                )
            })??;
        let store = PgStore::open(&s.url, 4).await?;
        store.load_tree_for_benchmark(nodes).await?;
        schema = Some(s);
        Box::new(store)
    } else {
        let store = SqliteStore::open(&surety_store::testing::sqlite_url(&dir), 4).await?;
        store.load_tree_for_benchmark(nodes).await?;
        Box::new(store)
    };
    let load_seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        store.tree_size().await? == size,
        "the loaded tree has the wrong size"
    );
    let measured = measure(store.as_ref(), size, root, args.proofs).await;
    store.close().await;
    if let Some(s) = schema {
        s.drop_schema().await?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let (inclusion, consistency) = measured?;
    let report = ProofReport {
        backend: store.backend(),
        events: size,
        tree_nodes: count,
        load_seconds,
        inclusion,
        consistency,
    };
    if g.json {
        return output::json(&report);
    }
    say!(
        "{}: {} events ({} nodes, loaded in {:.0} s)\n  inclusion   p50 {} µs  p99 {} µs  max {} µs\n  consistency p50 {} µs  p99 {} µs  max {} µs",
        report.backend,
        report.events,
        report.tree_nodes,
        report.load_seconds,
        report.inclusion.p50_us,
        report.inclusion.p99_us,
        report.inclusion.max_us,
        report.consistency.p50_us,
        report.consistency.p99_us,
        report.consistency.max_us
    );
    Ok(())
}
