use serde_json::json;
use time::macros::datetime;

use super::*;

const T0: OffsetDateTime = datetime!(2026-11-28 12:00 UTC);

fn details() -> Value {
    json!([{
        "type": "surety_action",
        "locations": ["https://payments.example"],
        "action": "payments.transfer",
        "resource": {"type": "Resource", "id": "acct-1"},
        "arguments": {"amount": 5000, "currency": "EUR"},
    }])
}

fn approval(approvers: Vec<HumanId>, required: u32) -> Approval {
    let details = ActionDetails::parse(&details()).unwrap_or_else(|e| unreachable!("{e}"));
    Approval {
        id: ApprovalId::new(T0),
        auth_req_hash: "h".into(),
        client: AgentId::new(T0),
        chain: vec![AgentId::new(T0)],
        principal: approvers[0],
        grant: GrantId::new(T0),
        details,
        binding_message: "transfer 5000 EUR".into(),
        reasons: vec!["a transaction above 1000 needs the principal's approval".into()],
        approvers,
        required,
        status: ApprovalStatus::Pending,
        requested_by: None,
        delivery: Delivery::Poll,
        interval: 5,
        last_polled_at: None,
        created_at: T0,
        expires_at: T0 + time::Duration::minutes(5),
        updated_at: T0,
        token_jti: None,
    }
}

fn vote(a: &Approval, who: HumanId, verdict: Verdict) -> Vote {
    Vote {
        approval: a.id,
        approver: who,
        verdict,
        method: ApprovalMethod::DeviceKey,
        reason: None,
        evidence: json!({}),
        at: T0,
    }
}

fn details_error(v: Value) -> String {
    match ActionDetails::parse(&v) {
        Ok(d) => unreachable!("accepted {d:?}"),
        Err(e) => e.0,
    }
}

#[test]
fn a_surety_action_is_parsed_and_matches_only_itself() {
    let d = ActionDetails::parse(&details()).unwrap_or_else(|e| unreachable!("{e}"));
    assert_eq!(d.action, "payments.transfer");
    assert_eq!(d.location, "https://payments.example");
    let args = json!({"currency": "EUR", "amount": 5000});
    let loc = "https://payments.example";
    assert!(d.matches("payments.transfer", "Resource", "acct-1", &args, loc));
    // Any other amount, destination, action, resource or resource server is another action.
    let other = json!({"currency": "EUR", "amount": 5001});
    assert!(!d.matches("payments.transfer", "Resource", "acct-1", &other, loc));
    let extra = json!({"currency": "EUR", "amount": 5000, "to": "x"});
    assert!(!d.matches("payments.transfer", "Resource", "acct-1", &extra, loc));
    assert!(!d.matches("payments.refund", "Resource", "acct-1", &args, loc));
    assert!(!d.matches("payments.transfer", "Resource", "acct-2", &args, loc));
    assert!(!d.matches("payments.transfer", "Account", "acct-1", &args, loc));
    assert!(!d.matches(
        "payments.transfer",
        "Resource",
        "acct-1",
        &args,
        "https://other.example"
    ));
}

#[test]
fn malformed_authorization_details_are_refused_with_the_reason() {
    assert!(details_error(json!({"type": "surety_action"})).contains("array"));
    assert!(details_error(json!([])).contains("exactly one"));
    assert!(details_error(json!([{"type": "payment_initiation"}])).contains("unknown"));
    assert!(details_error(json!([{"action": "x"}])).contains("`type`"));
    let mut extra = details();
    extra[0]["limit"] = json!(1);
    assert!(details_error(extra).contains("`limit`"));
    let mut two_locations = details();
    two_locations[0]["locations"] = json!(["https://a.example", "https://b.example"]);
    assert!(details_error(two_locations).contains("locations"));
    let mut wrong_actions = details();
    wrong_actions[0]["actions"] = json!(["payments.refund"]);
    assert!(details_error(wrong_actions).contains("actions"));
    let mut bad_args = details();
    bad_args[0]["arguments"] = json!([1]);
    assert!(details_error(bad_args).contains("arguments"));
    let mut huge = details();
    huge[0]["arguments"] = json!({"blob": "x".repeat(MAX_ARGUMENTS_BYTES)});
    assert!(details_error(huge).contains("bytes"));
    let mut reordered = details();
    reordered[0]["resource"]["id"] = json!("acct-\u{202e}1-tcca");
    assert!(details_error(reordered).contains("bidirectional"));
    let mut hidden = details();
    hidden[0]["arguments"]["to"] = json!("ACME\u{200b}");
    assert!(details_error(hidden).contains("arguments.to"));
    let mut huge_number = details();
    huge_number[0]["arguments"]["amount"] = json!(9_007_199_254_740_993_u64);
    assert!(details_error(huge_number).contains("2^53"));
    let mut bad_grant = details();
    bad_grant[0]["grant_id"] = json!("hum_0");
    assert!(details_error(bad_grant).contains("grant_id"));
}

#[test]
fn the_statement_commits_to_the_action_and_not_to_member_order() {
    let a = approval(vec![HumanId::new(T0)], 1);
    let mut b = a.clone();
    b.details.arguments = json!({"currency": "EUR", "amount": 5000});
    assert_eq!(a.statement_text(), b.statement_text());
    b.details.arguments = json!({"currency": "EUR", "amount": 50000});
    assert_ne!(a.statement_text(), b.statement_text());
    let mut c = a.clone();
    c.binding_message = "transfer 50 EUR".into();
    assert_ne!(a.statement_text(), c.statement_text());
    assert!(a.statement_text().starts_with("{\"agent\":"));
}

#[test]
fn the_principal_alone_approves_by_default() {
    let h = HumanId::new(T0);
    let a = approval(vec![h], 1);
    assert_eq!(a.tally(&[]), Tally::Pending);
    assert_eq!(a.tally(&[vote(&a, h, Verdict::Approve)]), Tally::Approved);
    assert_eq!(a.tally(&[vote(&a, h, Verdict::Deny)]), Tally::Denied);
}

#[test]
fn two_of_three_needs_two_approvals_and_fails_on_the_second_denial() {
    let [x, y, z] = [HumanId::new(T0), HumanId::new(T0), HumanId::new(T0)];
    let a = approval(vec![x, y, z], 2);
    let one = vec![vote(&a, x, Verdict::Approve)];
    assert_eq!(a.tally(&one), Tally::Pending);
    let two = vec![vote(&a, x, Verdict::Approve), vote(&a, y, Verdict::Approve)];
    assert_eq!(a.tally(&two), Tally::Approved);
    let one_no = vec![vote(&a, x, Verdict::Deny)];
    assert_eq!(a.tally(&one_no), Tally::Pending);
    let two_no = vec![vote(&a, x, Verdict::Deny), vote(&a, z, Verdict::Deny)];
    assert_eq!(a.tally(&two_no), Tally::Denied);
    // A vote by someone who is not an approver counts for nothing.
    let outsider = vec![
        vote(&a, x, Verdict::Approve),
        vote(&a, HumanId::new(T0), Verdict::Approve),
    ];
    assert_eq!(a.tally(&outsider), Tally::Pending);
}

#[test]
fn only_approvers_vote_once_while_pending_and_in_time() {
    let [x, y] = [HumanId::new(T0), HumanId::new(T0)];
    let a = approval(vec![x, y], 2);
    assert!(a.may_vote(x, &[], T0).is_ok());
    assert!(matches!(
        a.may_vote(HumanId::new(T0), &[], T0),
        Err(RuleError::Forbidden(_))
    ));
    assert!(matches!(
        a.may_vote(x, &[vote(&a, x, Verdict::Approve)], T0),
        Err(RuleError::Conflict(_))
    ));
    assert!(matches!(
        a.may_vote(y, &[], a.expires_at),
        Err(RuleError::Conflict(_))
    ));
    let mut denied = a.clone();
    denied.status = ApprovalStatus::Denied;
    assert!(denied.may_vote(y, &[], T0).is_err());
}

#[test]
fn approved_but_unused_approvals_expire_too() {
    let mut a = approval(vec![HumanId::new(T0)], 1);
    a.status = ApprovalStatus::Approved;
    assert_eq!(a.status_at(T0), ApprovalStatus::Approved);
    assert_eq!(a.status_at(a.expires_at), ApprovalStatus::Expired);
    a.status = ApprovalStatus::Consumed;
    assert_eq!(a.status_at(a.expires_at), ApprovalStatus::Consumed);
}

#[test]
fn quorum_comes_from_the_grant_constraints_and_is_checked() {
    let p = HumanId::new(T0);
    let q = HumanId::new(T0);
    assert_eq!(quorum(p, &json!({})).ok(), Some((vec![p], 1)));
    let two = json!({"approvers": format!("{p},{q}"), "approvals_required": "2"});
    assert_eq!(quorum(p, &two).ok(), Some((vec![p, q], 2)));
    let list = json!({"approvers": [q.to_string()], "approvals_required": 1});
    assert_eq!(quorum(p, &list).ok(), Some((vec![q], 1)));
    for bad in [
        json!({"approvers": "nobody"}),
        json!({"approvers": 7}),
        json!({"approvers": [p.to_string(), 7]}),
        json!({"approvers": ""}),
        json!({"approvals_required": 2}),
        json!({"approvals_required": 0}),
        json!({"approvals_required": "many"}),
    ] {
        assert!(quorum(p, &bad).is_err(), "{bad}");
    }
}

#[test]
fn binding_messages_are_short_printable_and_not_blank() {
    assert!(check_binding_message("transfer 5000 EUR to ACME").is_ok());
    assert!(check_binding_message(" ").is_err());
    assert!(check_binding_message(&"x".repeat(MAX_BINDING_MESSAGE + 1)).is_err());
    assert!(check_binding_message("line\nbreak").is_err());
    assert!(check_binding_message("pay \u{2067}EVIL\u{2069}").is_err());
}
