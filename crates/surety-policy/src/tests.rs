use proptest::prelude::*;
use serde_json::json;

use super::*;

fn human(id: &str) -> HumanFacts {
    HumanFacts {
        id: id.into(),
        role: "member".into(),
    }
}

/// A request by `agt_a` for `hum_p`, with the scope of every catalog action.
fn request(action: &str, arguments: Value) -> DecisionRequest {
    DecisionRequest {
        agent: "agt_a".into(),
        environment: "production".into(),
        owner: human("hum_o"),
        principal: human("hum_p"),
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
        constraints: json!({"max_amount": 5000, "currency": "EUR", "allowed_domains": ["acme.example", "partner.example"]}),
        arguments,
        time: 1_800_000_000,
        org_domains: vec!["acme.example".into()],
        approved: false,
        peer: String::new(),
    }
}

#[test]
fn the_default_pack_decides_the_documented_table() {
    let engine = Engine::shipped().unwrap();
    let out_of_scope = DecisionRequest {
        scope: vec!["crm.read_customer".into()],
        ..request(
            "payments.transfer",
            json!({"amount": 10, "currency": "EUR"}),
        )
    };
    let cases: Vec<(&str, DecisionRequest, Outcome, &str)> = vec![
        (
            "read in scope",
            request("crm.read_customer", json!({})),
            Outcome::Allow,
            "permit-in-scope",
        ),
        ("not in scope", out_of_scope, Outcome::Deny, ""),
        (
            "small transfer",
            request(
                "payments.transfer",
                json!({"amount": 100, "currency": "EUR"}),
            ),
            Outcome::Allow,
            "permit-in-scope",
        ),
        (
            "large transfer",
            request(
                "payments.transfer",
                json!({"amount": 2000, "currency": "EUR"}),
            ),
            Outcome::StepUp,
            "step-up-large-transaction",
        ),
        (
            "over max_amount",
            request(
                "payments.transfer",
                json!({"amount": 9000, "currency": "EUR"}),
            ),
            Outcome::Deny,
            "forbid-over-max-amount",
        ),
        (
            "other currency",
            request(
                "payments.transfer",
                json!({"amount": 10, "currency": "USD"}),
            ),
            Outcome::Deny,
            "forbid-other-currency",
        ),
        (
            "privileged change",
            request("iam.grant_role", json!({})),
            Outcome::StepUp,
            "step-up-privileged-change",
        ),
        (
            "release inside the org",
            request(
                "files.share_external",
                json!({"destination_domain": "acme.example"}),
            ),
            Outcome::Allow,
            "permit-in-scope",
        ),
        (
            "release to a partner",
            request(
                "files.share_external",
                json!({"destination_domain": "partner.example"}),
            ),
            Outcome::StepUp,
            "step-up-external-release",
        ),
        (
            "release elsewhere",
            request(
                "files.share_external",
                json!({"destination_domain": "evil.example"}),
            ),
            Outcome::Deny,
            "forbid-outside-allowed-domains",
        ),
    ];
    for (case, req, outcome, policy) in cases {
        let d = engine.decide(&req);
        assert_eq!(d.outcome, outcome, "{case}: {d:?}");
        if !policy.is_empty() {
            assert!(d.policy_ids.iter().any(|p| p == policy), "{case}: {d:?}");
        }
        assert!(
            !d.reasons.is_empty(),
            "{case}: every decision explains itself"
        );
        assert_eq!(d.version, 0);
    }
}

#[test]
fn approval_turns_a_step_up_into_an_allow_and_nothing_else() {
    let engine = Engine::shipped().unwrap();
    let large = request(
        "payments.transfer",
        json!({"amount": 2000, "currency": "EUR"}),
    );
    assert_eq!(engine.decide(&large).outcome, Outcome::StepUp);
    let approved = DecisionRequest {
        approved: true,
        ..large
    };
    assert_eq!(engine.decide(&approved).outcome, Outcome::Allow);
    // Approval does not lift an ordinary forbid.
    let over = DecisionRequest {
        approved: true,
        ..request(
            "payments.transfer",
            json!({"amount": 9000, "currency": "EUR"}),
        )
    };
    assert_eq!(engine.decide(&over).outcome, Outcome::Deny);
    // A step-up forbid alongside an ordinary forbid is a deny, not a step-up.
    let both = request(
        "payments.transfer",
        json!({"amount": 9000, "currency": "USD"}),
    );
    let d = engine.decide(&both);
    assert_eq!(d.outcome, Outcome::Deny, "{d:?}");
    // Without a permit, approval changes nothing: no permit is deny.
    let no_scope = DecisionRequest {
        scope: vec![],
        ..request("iam.grant_role", json!({}))
    };
    assert_eq!(engine.decide(&no_scope).outcome, Outcome::Deny);
}

#[test]
fn requests_conform_to_the_schema() {
    let engine = Engine::shipped().unwrap();
    let all = json!({"amount": 5, "currency": "EUR", "destination_domain": "a.example", "data_class": "pii"});
    for action in ACTIONS {
        for args in [json!({}), json!(null), all.clone()] {
            let mut req = request(action, args);
            engine.validate_request(&req).unwrap();
            // A sub-agent, acting for its own owner.
            req.chain = vec!["agt_a".into(), "agt_root".into()];
            req.principal = req.owner.clone();
            engine.validate_request(&req).unwrap();
        }
    }
}

#[test]
fn bad_requests_are_denied_with_a_reason() {
    let engine = Engine::shipped().unwrap();
    let unknown = request("rm.rf", json!({}));
    let d = engine.decide(&unknown);
    assert_eq!(d.outcome, Outcome::Deny);
    assert!(d.reasons[0].contains("unknown action"), "{d:?}");
    let bad_amount = request("payments.transfer", json!({"amount": "lots"}));
    let d = engine.decide(&bad_amount);
    assert_eq!(d.outcome, Outcome::Deny);
    assert!(d.reasons[0].contains("arguments.amount"), "{d:?}");
    // Unknown argument members are ignored, not errors.
    let extra = request("crm.read_customer", json!({"page": 2}));
    assert_eq!(engine.decide(&extra).outcome, Outcome::Allow);
    // Group actions are not decided on their own, even with a scope naming them.
    let group = DecisionRequest {
        scope: vec!["read".into()],
        ..request("read", json!({}))
    };
    let d = engine.decide(&group);
    assert_eq!(d.outcome, Outcome::Deny);
    assert!(d.reasons[0].contains("unknown action"), "{d:?}");
    // A resource type the action does not apply to.
    let other = DecisionRequest {
        resource_type: "Human".into(),
        resource_id: "x".into(),
        ..request("crm.read_customer", json!({}))
    };
    let d = engine.decide(&other);
    assert_eq!(d.outcome, Outcome::Deny);
    assert!(d.reasons[0].contains("does not apply"), "{d:?}");
}

#[test]
fn a_forbid_that_fails_to_evaluate_denies() {
    // Overflow is a runtime error strict validation cannot rule out: the forbid is skipped
    // by Cedar, and the engine must not let the permit through.
    let src = r#"
        @id("permit-all") permit (principal, action, resource);
        @id("forbid-overflow") forbid (principal, action, resource)
        when { context.arguments has amount && context.arguments.amount * 9223372036854775807 > 0 };
    "#;
    let engine = Engine::new(CATALOG, src, 1).unwrap();
    let d = engine.decide(&request("payments.transfer", json!({"amount": 2})));
    assert_eq!(d.outcome, Outcome::Deny, "{d:?}");
    assert_eq!(d.policy_ids, vec!["forbid-overflow".to_owned()]);
    assert!(!d.errors.is_empty());
    // A permit that fails to evaluate just does not apply.
    let src = r#"
        @id("permit-overflow") permit (principal, action, resource)
        when { context.arguments has amount && context.arguments.amount * 9223372036854775807 > 0 };
    "#;
    let engine = Engine::new(CATALOG, src, 1).unwrap();
    let d = engine.decide(&request("payments.transfer", json!({"amount": 2})));
    assert_eq!(d.outcome, Outcome::Deny, "{d:?}");
}

#[test]
fn invalid_policy_sets_are_refused_with_cedars_message() {
    let cases = [
        ("permit(principal, action, resource);", "@id"),
        (
            "@id(\"a\") permit(principal, action, resource); @id(\"a\") permit(principal, action, resource);",
            "twice",
        ),
        (
            "@id(\"a\") permit(principal, action, resource) when { context.nope };",
            "validate",
        ),
        ("@id(\"a\") permit(principal, action, resource", "policies"),
    ];
    for (src, expect) in cases {
        let err = Engine::new(CATALOG, src, 1).unwrap_err();
        assert!(err.to_string().contains(expect), "{src}: {err}");
    }
    let err = Engine::new("action x in [nope];", DEFAULT_POLICIES, 1).unwrap_err();
    assert!(matches!(err, PolicyError::Schema(_)), "{err}");
    // Deep nesting is refused before the parser sees it.
    let deep = format!(
        "@id(\"d\") permit(principal, action, resource) when {{ {}true{} }};",
        "(".repeat(5000),
        ")".repeat(5000)
    );
    assert!(
        Engine::new(CATALOG, &deep, 1)
            .unwrap_err()
            .to_string()
            .contains("nest")
    );
}

// --- Properties -------------------------------------------------------------------------

const ACTIONS: [&str; 4] = [
    "crm.read_customer",
    "payments.transfer",
    "iam.grant_role",
    "files.share_external",
];
const GROUPS: [&str; 4] = ["read", "transaction", "privileged_change", "data_release"];
const AGENTS: [&str; 3] = ["agt_a", "agt_b", "agt_c"];

#[derive(Debug, Clone)]
struct Gen {
    permit: bool,
    step_up: bool,
    principal: Option<usize>,
    action: (u8, usize),
    threshold: Option<i64>,
}

fn policy_text(i: usize, g: &Gen) -> String {
    let principal = g.principal.map_or("principal".to_owned(), |a| {
        format!("principal == Agent::\"{}\"", AGENTS[a])
    });
    let action = match g.action.0 % 3 {
        0 => "action".to_owned(),
        1 => format!("action == Action::\"{}\"", ACTIONS[g.action.1]),
        _ => format!("action in Action::\"{}\"", GROUPS[g.action.1]),
    };
    let when = g
        .threshold
        .map(|t| {
            format!(" when {{ context.arguments has amount && context.arguments.amount > {t} }}")
        })
        .unwrap_or_default();
    if g.permit {
        format!("@id(\"p{i}\") permit({principal}, {action}, resource){when};\n")
    } else if g.step_up {
        format!(
            "@id(\"p{i}\") @step_up(\"s{i}\") forbid({principal}, {action}, resource){when} unless {{ context.approved }};\n"
        )
    } else {
        format!("@id(\"p{i}\") forbid({principal}, {action}, resource){when};\n")
    }
}

fn gen_policy() -> impl Strategy<Value = Gen> {
    (
        any::<bool>(),
        any::<bool>(),
        proptest::option::of(0..3usize),
        (0..3u8, 0..4usize),
        proptest::option::of(0..3000i64),
    )
        .prop_map(|(permit, step_up, principal, action, threshold)| Gen {
            permit,
            step_up,
            principal,
            action,
            threshold,
        })
}

fn gen_request() -> impl Strategy<Value = DecisionRequest> {
    (0..3usize, 0..4usize, 0..4000i64, any::<bool>()).prop_map(
        |(agent, action, amount, approved)| DecisionRequest {
            agent: AGENTS[agent].into(),
            chain: vec![AGENTS[agent].into()],
            approved,
            ..request(ACTIONS[action], json!({"amount": amount}))
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Slicing never changes a decision: same outcome, same determining policies.
    #[test]
    fn sliced_and_unsliced_decisions_are_identical(
        policies in prop::collection::vec(gen_policy(), 0..24),
        requests in prop::collection::vec(gen_request(), 1..8),
    ) {
        let src: String = policies.iter().enumerate().map(|(i, g)| policy_text(i, g)).collect();
        let engine = Engine::new(CATALOG, &src, 7).unwrap();
        for req in &requests {
            prop_assert_eq!(engine.decide(req), engine.decide_unsliced(req), "{}", src);
        }
    }

    /// Adding a `forbid` never turns a deny (or a step-up) into an allow.
    #[test]
    fn adding_a_forbid_never_allows_more(
        policies in prop::collection::vec(gen_policy(), 0..16),
        extra in gen_policy(),
        req in gen_request(),
    ) {
        let src: String = policies.iter().enumerate().map(|(i, g)| policy_text(i, g)).collect();
        let before = Engine::new(CATALOG, &src, 1).unwrap().decide(&req);
        let forbid = Gen { permit: false, ..extra };
        let after_src = format!("{src}{}", policy_text(policies.len(), &forbid));
        let after = Engine::new(CATALOG, &after_src, 2).unwrap().decide(&req);
        if before.outcome != Outcome::Allow {
            prop_assert_ne!(after.outcome, Outcome::Allow);
        }
    }
}

#[test]
fn a_grant_can_ask_approval_for_listed_actions() {
    let engine = Engine::shipped().unwrap();
    let listed = DecisionRequest {
        constraints: json!({"step_up": ["crm.read_customer"]}),
        ..request("crm.read_customer", json!({}))
    };
    let d = engine.decide(&listed);
    assert_eq!(d.outcome, Outcome::StepUp, "{d:?}");
    assert_eq!(d.policy_ids, vec!["step-up-listed-action".to_owned()]);
    let approved = DecisionRequest {
        approved: true,
        ..listed.clone()
    };
    assert_eq!(engine.decide(&approved).outcome, Outcome::Allow);
    // Another action is not listed.
    let other = DecisionRequest {
        constraints: json!({"step_up": ["payments.transfer"]}),
        ..request("crm.read_customer", json!({}))
    };
    assert_eq!(engine.decide(&other).outcome, Outcome::Allow);
    // A malformed list is refused, not ignored.
    let malformed = DecisionRequest {
        constraints: json!({"step_up": "crm.read_customer"}),
        ..request("crm.read_customer", json!({}))
    };
    assert_eq!(engine.decide(&malformed).outcome, Outcome::Deny);
}

#[test]
fn policies_can_tell_a_peers_agents_from_local_ones() {
    let policies = format!(
        "{DEFAULT_POLICIES}\n@id(\"peers-read-only\") @reason(\"peers may only read\")\n\
         forbid (principal, action, resource) when {{ context.peer != \"\" }} \
         unless {{ action in Action::\"read\" }};\n"
    );
    let engine = Engine::new(CATALOG, &policies, 1).unwrap();
    let small = json!({"amount": 10, "currency": "EUR"});
    let local = request("payments.transfer", small.clone());
    assert_eq!(engine.decide(&local).outcome, Outcome::Allow);
    let foreign = DecisionRequest {
        peer: "https://a.example".into(),
        ..request("payments.transfer", small)
    };
    let d = engine.decide(&foreign);
    assert_eq!(d.outcome, Outcome::Deny, "{d:?}");
    assert_eq!(d.policy_ids, vec!["peers-read-only".to_owned()]);
    let read = DecisionRequest {
        peer: "https://a.example".into(),
        ..request("crm.read_customer", json!({}))
    };
    assert_eq!(engine.decide(&read).outcome, Outcome::Allow);
}
