//! The mapping over a table of cases, each named after the clause it checks.

use serde_json::{Value, json};

use super::*;

const HUMAN: &str = "hum_01936d3c8f6a7b2c9d0e1f2a3b4c5d6e";
const AGENT: &str = "agt_01936d3c8f6a7b2c9d0e1f2a3b4c5d6e";

fn token() -> Value {
    json!({"sub": HUMAN, "client_id": AGENT, "aud": "https://gw.example/crm",
           "scope": "crm.read_customer payments.transfer", "act": {"sub": AGENT}})
}

fn anchor() -> Anchor<'static> {
    Anchor {
        subject: HUMAN,
        agent: AGENT,
    }
}

fn call(name: &str, arguments: Value) -> Value {
    json!({"name": name, "arguments": arguments})
}

fn decide(method: &str, params: &Value, declared: Option<&Value>) -> Result<Plan, MappingError> {
    plan(Some(method), params, &token(), &anchor(), declared)
}

fn one(plan: Result<Plan, MappingError>) -> Evaluation {
    match plan {
        Ok(Plan::Decide(mut e)) if e.len() == 1 => e.remove(0),
        other => panic!("one evaluation expected, got {other:?}"),
    }
}

#[test]
fn coaz_mcp_s7_default_tools_call_names_the_tool_and_anchors_subject_and_agent() {
    let e = one(decide(
        "tools/call",
        &call("crm.read_customer", json!({"id": "c1"})),
        None,
    ));
    assert_eq!(
        (
            e.action.as_str(),
            e.resource_type.as_str(),
            e.resource_id.as_str()
        ),
        ("tools/call", "tool", "crm.read_customer")
    );
    assert_eq!(e.subject, json!({"type": "identity", "id": HUMAN}));
    assert_eq!(e.context, Some(json!({"agent": AGENT})));
}

#[test]
fn coaz_mcp_s7_8_ping_notifications_and_responses_pass_through() {
    for m in [
        "ping",
        "notifications/initialized",
        "notifications/cancelled",
    ] {
        assert_eq!(decide(m, &json!({}), None), Ok(Plan::PassThrough), "{m}");
    }
    assert_eq!(
        plan(None, &json!({}), &token(), &anchor(), None),
        Ok(Plan::PassThrough)
    );
}

#[test]
fn coaz_mcp_s7_9_unknown_methods_are_denied_without_a_decision() {
    for m in ["foo/bar", "sampling/createMessage", "tools/delete"] {
        assert!(
            matches!(decide(m, &json!({}), None), Ok(Plan::Deny(_))),
            "{m}"
        );
    }
}

#[test]
fn lists_and_initialize_are_authorized_by_the_audience_and_filtered() {
    for m in ["initialize", "tools/list", "resources/list", "prompts/list"] {
        assert_eq!(decide(m, &json!({}), None), Ok(Plan::List), "{m}");
    }
}

#[test]
fn coaz_mcp_s7_other_defaults() {
    let e = one(decide("resources/read", &json!({"uri": "file:///a"}), None));
    assert_eq!(
        (
            e.action.as_str(),
            e.resource_type.as_str(),
            e.resource_id.as_str()
        ),
        ("resources/read", "resource", "file:///a")
    );
    let e = one(decide("prompts/get", &json!({"name": "greet"}), None));
    assert_eq!(
        (e.resource_type.as_str(), e.resource_id.as_str()),
        ("prompt", "greet")
    );
    let e = one(decide(
        "completion/complete",
        &json!({"ref": {"type": "ref/prompt", "name": "greet"}}),
        None,
    ));
    assert_eq!(
        (e.resource_type.as_str(), e.resource_id.as_str()),
        ("prompt", "greet")
    );
    let e = one(decide("logging/setLevel", &json!({"level": "info"}), None));
    assert_eq!(e.resource_id, "https://gw.example/crm");
}

fn declared(evaluation: Value) -> Value {
    json!({"evaluation": evaluation})
}

#[test]
fn coaz_mcp_s8_declared_mapping_resolves_cel_over_params_and_token() {
    let m = declared(json!({
        "subject": {"type": "identity", "id": "$token.sub"},
        "action": {"name": "payments.transfer"},
        "resource": {"type": "account", "id": "$params.arguments.from"},
        "context": {"agent": "$token.?client_id", "tier": "$params.arguments.amount > 1000.0 ? 'high' : 'standard'", "price": "$$50"},
    }));
    let e = one(decide(
        "tools/call",
        &call("pay", json!({"from": "acct-1", "amount": 5000.0})),
        Some(&m),
    ));
    assert_eq!(
        (
            e.action.as_str(),
            e.resource_type.as_str(),
            e.resource_id.as_str()
        ),
        ("payments.transfer", "account", "acct-1")
    );
    assert_eq!(
        e.context,
        Some(json!({"agent": AGENT, "tier": "high", "price": "$50"}))
    );
}

#[test]
fn coaz_mcp_s8_literal_subject_spoof_is_a_mapping_error() {
    let m = declared(
        json!({"subject": {"type": "identity", "id": "hum_someone_else"}, "action": {"name": "x"}, "resource": {"type": "t", "id": "i"}}),
    );
    let e = decide("tools/call", &call("x", json!({})), Some(&m)).unwrap_err();
    assert!(e.0.contains("hum_someone_else"), "{e}");
}

#[test]
fn coaz_mcp_s8_argument_subject_spoof_is_a_mapping_error() {
    let m = declared(
        json!({"subject": {"id": "$params.arguments.on_behalf_of"}, "action": {"name": "x"}, "resource": {"type": "t", "id": "i"}}),
    );
    let spoof = call("x", json!({"on_behalf_of": "hum_victim"}));
    assert!(decide("tools/call", &spoof, Some(&m)).is_err());
    // The same mapping passes when the argument is the token's own subject.
    let honest = call("x", json!({"on_behalf_of": HUMAN}));
    assert_eq!(
        one(decide("tools/call", &honest, Some(&m))).subject,
        json!({"id": HUMAN, "type": "identity"})
    );
}

#[test]
fn agent_spoof_by_literal_or_argument_is_a_mapping_error() {
    for agent in [json!("agt_other"), json!("$params.arguments.agent")] {
        let m = declared(
            json!({"action": {"name": "x"}, "resource": {"type": "t", "id": "i"}, "context": {"agent": agent}}),
        );
        let r = decide(
            "tools/call",
            &call("x", json!({"agent": "agt_impostor"})),
            Some(&m),
        );
        assert!(r.unwrap_err().0.contains("agent"));
    }
}

#[test]
fn coaz_mcp_s8_a_mapping_that_omits_subject_and_agent_gets_the_tokens() {
    let m = declared(json!({"action": {"name": "x"}, "resource": {"type": "t", "id": "i"}}));
    let e = one(decide("tools/call", &call("x", json!({})), Some(&m)));
    assert_eq!(e.subject, json!({"type": "identity", "id": HUMAN}));
    assert_eq!(e.context, None);
}

#[test]
fn coaz_mcp_s4_missing_claims_and_keys() {
    // Plain selection of a missing key is a mapping error…
    let m = declared(
        json!({"action": {"name": "x"}, "resource": {"type": "t", "id": "$params.arguments.region"}}),
    );
    let e = decide("tools/call", &call("x", json!({})), Some(&m)).unwrap_err();
    assert!(e.0.contains("region"), "{e}");
    // …optional selection of one leaves the field out…
    let m = declared(
        json!({"action": {"name": "x"}, "resource": {"type": "t", "id": "i"}, "context": {"team": "$token.?team"}}),
    );
    assert_eq!(
        one(decide("tools/call", &call("x", json!({})), Some(&m))).context,
        Some(json!({}))
    );
    // …and a required field left absent is an error.
    let m = declared(
        json!({"action": {"name": "$token.?nothing"}, "resource": {"type": "t", "id": "i"}}),
    );
    assert!(
        decide("tools/call", &call("x", json!({})), Some(&m))
            .unwrap_err()
            .0
            .contains("action.name")
    );
    // A non-string resource id is refused rather than coerced.
    let m = declared(
        json!({"action": {"name": "x"}, "resource": {"type": "t", "id": "$params.arguments.n"}}),
    );
    assert!(decide("tools/call", &call("x", json!({"n": 42})), Some(&m)).is_err());
    // An expression that does not parse.
    let m =
        declared(json!({"action": {"name": "$params.("}, "resource": {"type": "t", "id": "i"}}));
    assert!(decide("tools/call", &call("x", json!({})), Some(&m)).is_err());
}

#[test]
fn coaz_mcp_s5_envelopes_need_exactly_one_known_key() {
    for m in [
        json!({}),
        json!({"search": {}}),
        json!({"evaluation": {}, "evaluations": {}}),
        json!("x"),
    ] {
        assert!(
            decide("tools/call", &call("x", json!({})), Some(&m)).is_err(),
            "{m}"
        );
    }
}

#[test]
fn coaz_mcp_s5_evaluations_take_defaults_and_entries_override() {
    let m = json!({"evaluations": {
        "action": {"name": "read"},
        "resource": {"type": "storage_object", "id": "$params.arguments.source"},
        "context": {"agent": "$token.client_id"},
        "evaluations": [
            {},
            {"action": {"name": "write"}, "resource": {"type": "storage_object", "id": "$params.arguments.destination"}},
        ],
    }});
    let plan = decide(
        "tools/call",
        &call("copy", json!({"source": "a", "destination": "b"})),
        Some(&m),
    );
    let Ok(Plan::Decide(evals)) = plan else {
        panic!("{plan:?}")
    };
    let got: Vec<(&str, &str)> = evals
        .iter()
        .map(|e| (e.action.as_str(), e.resource_id.as_str()))
        .collect();
    assert_eq!(got, [("read", "a"), ("write", "b")]);
    assert!(
        evals
            .iter()
            .all(|e| e.context == Some(json!({"agent": AGENT})))
    );
}

#[test]
fn coaz_mcp_s8_subject_in_an_evaluations_entry_is_rejected() {
    let m = json!({"evaluations": {"action": {"name": "x"}, "resource": {"type": "t", "id": "i"},
        "evaluations": [{"subject": {"type": "identity", "id": HUMAN}}]}});
    assert!(
        decide("tools/call", &call("x", json!({})), Some(&m))
            .unwrap_err()
            .0
            .contains("subject")
    );
    let empty = json!({"evaluations": {"action": {"name": "x"}, "evaluations": []}});
    assert!(decide("tools/call", &call("x", json!({})), Some(&empty)).is_err());
}

#[test]
fn a_tools_call_without_a_tool_name_is_refused() {
    assert!(decide("tools/call", &json!({"arguments": {}}), None).is_err());
    // Arguments that are not an object would be decided as none and forwarded as they are.
    assert!(decide("tools/call", &json!({"name": "x", "arguments": [1]}), None).is_err());
}
