//! The files under `examples/` are what they say: the configurations load, and each policy
//! pack validates against the shipped schema and decides the cases its comments state.

use std::path::PathBuf;

use serde_json::{Value, json};
use surety_policy::{CATALOG, DecisionRequest, Engine, HumanFacts, Outcome};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn pack(name: &str) -> Engine {
    let text = std::fs::read_to_string(examples().join("policies").join(name)).unwrap();
    Engine::new(CATALOG, &text, 1).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn request(action: &str, arguments: Value, constraints: Value) -> DecisionRequest {
    DecisionRequest {
        agent: "agt_a".into(),
        environment: "production".into(),
        owner: HumanFacts {
            id: "hum_o".into(),
            role: "member".into(),
        },
        principal: HumanFacts {
            id: "hum_p".into(),
            role: "member".into(),
        },
        grant: "grt_1".into(),
        chain: vec!["agt_a".into()],
        scope: vec![
            "crm.read_customer".into(),
            "payments.transfer".into(),
            "iam.grant_role".into(),
            "files.share_external".into(),
        ],
        action: action.into(),
        resource_type: "Resource".into(),
        resource_id: "r1".into(),
        constraints,
        arguments,
        time: 1_800_000_000,
        org_domains: vec!["acme.example".into()],
        approved: false,
        peer: String::new(),
    }
}

fn check(engine: &Engine, cases: Vec<(&str, DecisionRequest, Outcome)>) {
    for (what, r, expected) in cases {
        let d = engine.decide(&r);
        assert_eq!(d.outcome, expected, "{what}: {d:?}");
    }
}

#[test]
fn examples_are_valid_and_decide_as_documented() {
    // The configurations.
    let config =
        surety_server::Config::load(Some(&examples().join("surety.toml")), |_| None, &[]).unwrap();
    assert_eq!(config.issuer_url(), "https://surety.acme.example");
    assert!(config.database_url().starts_with("postgres://"));
    let gateway = surety_gateway::GatewayConfig::load(&examples().join("gateway.toml")).unwrap();
    assert_eq!(gateway.upstreams.len(), 2);
    assert_eq!(
        gateway.follow_signals,
        Some(std::time::Duration::from_millis(500))
    );
    assert!(!gateway.introspect);

    // Payments.
    let payments = pack("payments.cedar");
    let limits =
        json!({"max_amount": 5000, "currency": "EUR", "allowed_domains": ["bank.example"]});
    let pay = |amount: i64, currency: &str, to: &str| {
        request(
            "payments.transfer",
            json!({"amount": amount, "currency": currency, "destination_domain": to}),
            limits.clone(),
        )
    };
    let approved = |r: DecisionRequest| DecisionRequest {
        approved: true,
        ..r
    };
    let peer = |r: DecisionRequest| DecisionRequest {
        peer: "https://partner.example".into(),
        ..r
    };
    let ceiling = DecisionRequest {
        constraints: json!({"max_amount": 50000, "currency": "EUR", "allowed_domains": ["bank.example"]}),
        ..approved(pay(15000, "EUR", "bank.example"))
    };
    check(
        &payments,
        vec![
            (
                "small payment",
                pay(100, "EUR", "bank.example"),
                Outcome::Allow,
            ),
            (
                "above 500",
                pay(800, "EUR", "bank.example"),
                Outcome::StepUp,
            ),
            (
                "above 500, approved",
                approved(pay(800, "EUR", "bank.example")),
                Outcome::Allow,
            ),
            (
                "above the grant",
                approved(pay(6000, "EUR", "bank.example")),
                Outcome::Deny,
            ),
            ("above the ceiling", ceiling, Outcome::Deny),
            (
                "another currency",
                pay(100, "USD", "bank.example"),
                Outcome::Deny,
            ),
            (
                "unlisted payee",
                pay(100, "EUR", "evil.example"),
                Outcome::Deny,
            ),
            (
                "no currency",
                request(
                    "payments.transfer",
                    json!({"amount": 10, "destination_domain": "bank.example"}),
                    limits.clone(),
                ),
                Outcome::Deny,
            ),
            (
                "a federated agent",
                peer(pay(100, "EUR", "bank.example")),
                Outcome::Deny,
            ),
            (
                "a read",
                request("crm.read_customer", json!({}), limits.clone()),
                Outcome::Allow,
            ),
        ],
    );

    // IT administration.
    let it = pack("it-admin.cedar");
    let change = |role: &str| DecisionRequest {
        principal: HumanFacts {
            id: "hum_p".into(),
            role: role.into(),
        },
        ..request("iam.grant_role", json!({}), json!({}))
    };
    let sub_agent = DecisionRequest {
        chain: vec!["agt_a".into(), "agt_root".into()],
        ..approved(change("admin"))
    };
    let share = |to: &str| {
        request(
            "files.share_external",
            json!({"destination_domain": to}),
            json!({}),
        )
    };
    check(
        &it,
        vec![
            ("a change", change("admin"), Outcome::StepUp),
            (
                "a change, approved",
                approved(change("admin")),
                Outcome::Allow,
            ),
            (
                "under a member's delegation",
                approved(change("member")),
                Outcome::Deny,
            ),
            ("by a sub-agent", sub_agent, Outcome::Deny),
            (
                "by a federated agent",
                peer(approved(change("admin"))),
                Outcome::Deny,
            ),
            (
                "a read",
                request("crm.read_customer", json!({}), json!({})),
                Outcome::Allow,
            ),
            ("data inside", share("acme.example"), Outcome::Allow),
            ("data outside", share("elsewhere.example"), Outcome::Deny),
        ],
    );

    // Data export.
    let data = pack("data-export.cedar");
    let classes = json!({"data_classes": ["public", "confidential", "restricted"]});
    let release = |class: &str, to: &str| {
        request(
            "files.share_external",
            json!({"data_class": class, "destination_domain": to}),
            classes.clone(),
        )
    };
    check(
        &data,
        vec![
            (
                "public, outside",
                release("public", "partner.example"),
                Outcome::Allow,
            ),
            (
                "confidential, outside",
                release("confidential", "partner.example"),
                Outcome::StepUp,
            ),
            (
                "confidential, outside, approved",
                approved(release("confidential", "partner.example")),
                Outcome::Allow,
            ),
            (
                "confidential, inside",
                release("confidential", "acme.example"),
                Outcome::Allow,
            ),
            (
                "restricted, outside",
                approved(release("restricted", "partner.example")),
                Outcome::Deny,
            ),
            (
                "restricted, inside",
                release("restricted", "acme.example"),
                Outcome::Allow,
            ),
            (
                "a class the grant lacks",
                release("secret", "acme.example"),
                Outcome::Deny,
            ),
            (
                "no class",
                request(
                    "files.share_external",
                    json!({"destination_domain": "acme.example"}),
                    classes.clone(),
                ),
                Outcome::Deny,
            ),
        ],
    );
}
