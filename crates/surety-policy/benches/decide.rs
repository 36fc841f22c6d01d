//! `decide` (sliced) beside a bare `Authorizer::is_authorized` over the whole set, on the
//! same request and the same policies, for 10, 100 and 1 000 policies.
//!
//! The sets are the default pack plus per-agent policies — what an organisation with many
//! agents writes: each agent may read customers, some may transfer up to a limit. The request
//! is one agent reading a customer.
//!
//! `cargo bench -p surety-policy --bench decide`

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark")]

use std::hint::black_box;

use cedar_policy::Authorizer;
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::json;
use surety_policy::{CATALOG, DEFAULT_POLICIES, DecisionRequest, Engine, HumanFacts};

/// The default pack (cut to `n` if `n` is smaller), then per-agent policies up to `n`.
fn policies(n: usize) -> String {
    let shipped = surety_policy::parse_policies(DEFAULT_POLICIES).unwrap();
    let mut src: String = shipped
        .policies()
        .take(n)
        .map(|p| format!("{p}\n"))
        .collect();
    for i in 0..n.saturating_sub(shipped.policies().count()) {
        if i % 2 == 0 {
            src.push_str(&format!(
                "@id(\"agent-{i}-read\") permit(principal == Agent::\"agt_{i}\", action == Action::\"crm.read_customer\", resource) when {{ context.time > 0 }};\n"
            ));
        } else {
            src.push_str(&format!(
                "@id(\"agent-{i}-limit\") forbid(principal == Agent::\"agt_{i}\", action in Action::\"transaction\", resource) when {{ context.arguments has amount && context.arguments.amount > {i} }};\n"
            ));
        }
    }
    src
}

fn request() -> DecisionRequest {
    let member = |id: &str| HumanFacts {
        id: id.into(),
        role: "member".into(),
    };
    DecisionRequest {
        agent: "agt_0".into(),
        environment: "production".into(),
        owner: member("hum_o"),
        principal: member("hum_p"),
        grant: "grt_1".into(),
        chain: vec!["agt_0".into()],
        scope: vec!["crm.read_customer".into()],
        action: "crm.read_customer".into(),
        resource_type: "Resource".into(),
        resource_id: "cust-42".into(),
        constraints: json!({"max_amount": 5000}),
        arguments: json!({}),
        time: 1_800_000_000,
        org_domains: vec!["acme.example".into()],
        approved: false,
        peer: String::new(),
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide");
    let req = request();
    for n in [10, 100, 1000] {
        let engine = Engine::new(CATALOG, &policies(n), 1).unwrap();
        assert_eq!(engine.len(), n);
        let (cedar_request, entities, set) = engine.cedar_inputs(&req).unwrap();
        let authorizer = Authorizer::new();
        assert_eq!(engine.decide(&req), engine.decide_unsliced(&req));
        group.bench_with_input(
            BenchmarkId::new("bare_cedar_is_authorized", n),
            &n,
            |b, _| {
                b.iter(|| black_box(authorizer.is_authorized(&cedar_request, set, &entities)));
            },
        );
        group.bench_with_input(BenchmarkId::new("surety_decide", n), &n, |b, _| {
            b.iter(|| black_box(engine.decide(&req)));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
