//! Approval requests, votes, cancellation, passkeys, ceremonies and web sessions.

use std::sync::Arc;

use serde_json::json;
use surety_core::approval::{
    ActionDetails, Approval, ApprovalMethod, ApprovalStatus, Delivery, Tally, Verdict, Vote,
};
use surety_core::audit::EventKind;
use surety_core::grant::{GrantTerms, NewGrant};
use surety_core::human::Role;
use surety_core::id::{AgentId, ApprovalId, GrantId, HumanId};
use surety_core::page::PageRequest;
use surety_store::{
    ApprovalFilter, ApprovalScope, ApprovalTransition, Ceremony, Enrollment, PasskeyRecord, Store,
    StoreError,
};
use time::Duration;

use crate::fixtures::*;

crate::storage_tests!(
    approvals_round_trip_and_list_by_approver_and_state,
    votes_are_counted_one_at_a_time_and_settle_the_request_once,
    transitions_are_compare_and_set_and_bound_to_the_redeemed_token,
    cancelling_an_agent_or_grant_closes_its_open_requests,
    passkey_invites_are_single_use_and_sessions_expire,
);

struct World {
    principal: HumanId,
    other: HumanId,
    agent: AgentId,
    grant: GrantId,
}

async fn world(store: &Arc<dyn Store>) -> World {
    let principal = add_human(store, "p@example.com", Role::Member).await;
    let other = add_human(store, "o@example.com", Role::Member).await;
    let (agent, _) = add_agent(store, "bot", principal.id).await;
    let scopes = ["payments.transfer".to_owned()];
    let resources = ["https://pay.example".to_owned()];
    let grant = NewGrant::parse(
        &GrantTerms {
            agent: agent.id,
            principal: principal.id,
            scopes: &scopes,
            resources: &resources,
            constraints: None,
            max_delegation_depth: None,
            expires_at: t0() + Duration::days(1),
        },
        t0(),
        Duration::days(30),
    )
    .unwrap()
    .into_grant(GrantId::new(t0()), principal.id, t0());
    store.create_grant(&grant, &[]).await.unwrap();
    World {
        principal: principal.id,
        other: other.id,
        agent: agent.id,
        grant: grant.id,
    }
}

fn request(w: &World, approvers: Vec<HumanId>, required: u32, tag: &str) -> Approval {
    let details = ActionDetails::parse(&json!([{
        "type": "surety_action",
        "locations": ["https://pay.example"],
        "action": "payments.transfer",
        "resource": {"type": "Resource", "id": "acct-1"},
        "arguments": {"amount": 5000, "tag": tag},
    }]))
    .unwrap();
    // A stored request's details always name its grant.
    let details = ActionDetails {
        grant: Some(w.grant),
        ..details
    };
    Approval {
        id: ApprovalId::new(t0()),
        auth_req_hash: format!("hash-{tag}"),
        client: w.agent,
        chain: vec![w.agent],
        principal: w.principal,
        grant: w.grant,
        details,
        binding_message: format!("transfer {tag}"),
        reasons: vec!["large".into()],
        approvers,
        required,
        status: ApprovalStatus::Pending,
        requested_by: None,
        delivery: Delivery::Ping {
            endpoint: "https://agent.example/cb".into(),
            token: "t".into(),
            auth_req_id: format!("id-{tag}"),
        },
        interval: 5,
        last_polled_at: None,
        created_at: t0(),
        expires_at: t0() + Duration::minutes(5),
        updated_at: t0(),
        token_jti: None,
    }
}

fn vote(a: &Approval, who: HumanId, verdict: Verdict) -> Vote {
    Vote {
        approval: a.id,
        approver: who,
        verdict,
        method: ApprovalMethod::DeviceKey,
        reason: Some("ok".into()),
        evidence: json!({"jws": "x"}),
        at: t0() + Duration::seconds(10),
    }
}

async fn approvals_round_trip_and_list_by_approver_and_state(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let a = request(&w, vec![w.principal, w.other], 2, "a");
    store
        .create_approval(&a, 100, &[event(EventKind::ApprovalRequested, a.id)])
        .await
        .unwrap();
    assert_eq!(store.get_approval(a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(
        store.find_approval("hash-a").await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.find_approval("hash-x").await.unwrap(), None);
    // At most `max_waiting` wait per agent, counted with the insert.
    let mut over = request(&w, vec![w.principal], 1, "over");
    over.id = ApprovalId::new(t0());
    assert!(matches!(
        store.create_approval(&over, 1, &[]).await,
        Err(StoreError::Conflict(m)) if m.contains("waiting")
    ));
    // The same auth_req_id twice is a conflict.
    let mut twin = request(&w, vec![w.principal], 1, "a");
    twin.id = ApprovalId::new(t0());
    assert!(matches!(
        store.create_approval(&twin, 100, &[]).await,
        Err(StoreError::Conflict(_))
    ));
    let mut b = request(&w, vec![w.principal], 1, "b");
    // Ids order by time: b is a second newer.
    b.id = ApprovalId::new(t0() + Duration::seconds(1));
    store.create_approval(&b, 100, &[]).await.unwrap();
    let page = PageRequest::first(10);
    let of = |approver, status| ApprovalFilter {
        approver: Some(approver),
        client: None,
        status,
        unexpired_at: None,
    };
    let mine = store
        .list_approvals(&of(w.principal, None), &page)
        .await
        .unwrap();
    assert_eq!(
        mine.items.iter().map(|x| x.id).collect::<Vec<_>>(),
        vec![b.id, a.id],
        "newest first"
    );
    let theirs = store
        .list_approvals(&of(w.other, None), &page)
        .await
        .unwrap();
    assert_eq!(theirs.items.len(), 1);
    let one = PageRequest::first(1);
    let first = store
        .list_approvals(&of(w.principal, None), &one)
        .await
        .unwrap();
    let next = PageRequest {
        limit: 1,
        after: first.next_cursor.clone(),
    };
    let second = store
        .list_approvals(&of(w.principal, None), &next)
        .await
        .unwrap();
    assert_eq!((first.items[0].id, second.items[0].id), (b.id, a.id));
    let denied = of(w.principal, Some(ApprovalStatus::Denied));
    assert!(
        store
            .list_approvals(&denied, &page)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    // Waiting: pending and not expired, as of an instant; counted up to a bound.
    let waiting_at = |at| ApprovalFilter {
        unexpired_at: Some(at),
        ..of(w.principal, Some(ApprovalStatus::Pending))
    };
    let now = store
        .list_approvals(&waiting_at(t0()), &page)
        .await
        .unwrap();
    assert_eq!(now.items.len(), 2);
    let later = waiting_at(a.expires_at);
    assert!(
        store
            .list_approvals(&later, &page)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert_eq!(
        store
            .count_waiting_approvals(w.agent, t0(), 10)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .count_waiting_approvals(w.agent, t0(), 1)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .count_waiting_approvals(w.agent, a.expires_at, 10)
            .await
            .unwrap(),
        0
    );
    // Polls are recorded compare-and-set: a poll that raced another is told so.
    assert!(
        store
            .record_poll(a.id, None, t0() + Duration::seconds(3), 10)
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_poll(a.id, None, t0() + Duration::seconds(3), 10)
            .await
            .unwrap(),
        "a second poll that saw no earlier one lost the race"
    );
    let seen = Some(t0() + Duration::seconds(3));
    assert!(
        store
            .record_poll(a.id, seen, t0() + Duration::seconds(3), 10)
            .await
            .unwrap()
    );
    let polled = store.get_approval(a.id).await.unwrap().unwrap();
    assert_eq!(
        (polled.last_polled_at, polled.interval),
        (Some(t0() + Duration::seconds(3)), 10)
    );
    // Notification endpoints and the e-mail login hint.
    assert_eq!(store.notification_endpoint(w.agent).await.unwrap(), None);
    store
        .set_notification_endpoint(w.agent, Some("https://agent.example/cb"), &[])
        .await
        .unwrap();
    assert_eq!(
        store
            .notification_endpoint(w.agent)
            .await
            .unwrap()
            .as_deref(),
        Some("https://agent.example/cb")
    );
    store
        .set_notification_endpoint(w.agent, None, &[])
        .await
        .unwrap();
    assert_eq!(store.notification_endpoint(w.agent).await.unwrap(), None);
    assert_eq!(
        store.human_by_email("P@Example.com").await.unwrap(),
        Some(w.principal)
    );
}

async fn votes_are_counted_one_at_a_time_and_settle_the_request_once(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let a = request(&w, vec![w.principal, w.other], 2, "q");
    store.create_approval(&a, 100, &[]).await.unwrap();
    let settle = |a: &Approval, votes: &[Vote]| match a.tally(votes) {
        Tally::Pending => (None, vec![event(EventKind::ApprovalVoted, a.id)]),
        Tally::Approved => (
            Some(ApprovalStatus::Approved),
            vec![event(EventKind::ApprovalApproved, a.id)],
        ),
        Tally::Denied => (
            Some(ApprovalStatus::Denied),
            vec![event(EventKind::ApprovalDenied, a.id)],
        ),
    };
    let after_one = store
        .vote(&vote(&a, w.principal, Verdict::Approve), &settle)
        .await
        .unwrap();
    assert_eq!(after_one.status, ApprovalStatus::Pending);
    // One answer per approver.
    assert!(matches!(
        store
            .vote(&vote(&a, w.principal, Verdict::Deny), &settle)
            .await,
        Err(StoreError::Conflict(_))
    ));
    let after_two = store
        .vote(&vote(&a, w.other, Verdict::Approve), &settle)
        .await
        .unwrap();
    assert_eq!(after_two.status, ApprovalStatus::Approved);
    // The ping is sent from the returned copy; the stored one no longer holds its secrets.
    assert!(matches!(after_two.delivery, Delivery::Ping { .. }));
    let stored = store.get_approval(a.id).await.unwrap().unwrap();
    assert_eq!(stored.delivery, Delivery::Poll);
    let votes = store.approval_votes(a.id).await.unwrap();
    assert_eq!(votes.len(), 2);
    assert_eq!(votes[0].evidence, json!({"jws": "x"}));
    // No vote on a settled request, nor on an expired one.
    let third = add_human(&store, "t@example.com", Role::Member).await;
    assert!(matches!(
        store
            .vote(&vote(&a, third.id, Verdict::Approve), &settle)
            .await,
        Err(StoreError::Stale)
    ));
    let late = request(&w, vec![w.principal], 1, "late");
    store.create_approval(&late, 100, &[]).await.unwrap();
    let mut too_late = vote(&late, w.principal, Verdict::Approve);
    too_late.at = late.expires_at;
    assert!(matches!(
        store.vote(&too_late, &settle).await,
        Err(StoreError::Stale)
    ));
    assert!(
        store.approval_votes(late.id).await.unwrap().is_empty(),
        "nothing written"
    );
}

async fn transitions_are_compare_and_set_and_bound_to_the_redeemed_token(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let mut a = request(&w, vec![w.principal], 1, "t");
    a.status = ApprovalStatus::Approved;
    store.create_approval(&a, 100, &[]).await.unwrap();
    let at = t0() + Duration::seconds(30);
    let redeem = ApprovalTransition {
        id: a.id,
        from: ApprovalStatus::Approved,
        to: ApprovalStatus::Redeemed,
        token_jti: Some("tok_1".into()),
        at,
    };
    store
        .transition_approval(&redeem, &[event(EventKind::ApprovalRedeemed, a.id)])
        .await
        .unwrap();
    // Redeemed once (CIBA §7.3).
    assert!(matches!(
        store.transition_approval(&redeem, &[]).await,
        Err(StoreError::Stale)
    ));
    assert_eq!(
        store
            .get_approval(a.id)
            .await
            .unwrap()
            .unwrap()
            .token_jti
            .as_deref(),
        Some("tok_1")
    );
    // Consumed only for the token it was redeemed for, once — even after the request's own
    // expiry (the token's `exp` bounds it).
    let consume = |jti: &str| ApprovalTransition {
        id: a.id,
        from: ApprovalStatus::Redeemed,
        to: ApprovalStatus::Consumed,
        token_jti: Some(jti.into()),
        at: a.expires_at + Duration::seconds(1),
    };
    assert!(matches!(
        store.transition_approval(&consume("tok_2"), &[]).await,
        Err(StoreError::Stale)
    ));
    store
        .transition_approval(&consume("tok_1"), &[])
        .await
        .unwrap();
    assert!(matches!(
        store.transition_approval(&consume("tok_1"), &[]).await,
        Err(StoreError::Stale)
    ));
    // An approved request past its expiry cannot be redeemed.
    let mut b = request(&w, vec![w.principal], 1, "u");
    b.status = ApprovalStatus::Approved;
    store.create_approval(&b, 100, &[]).await.unwrap();
    let late = ApprovalTransition {
        at: b.expires_at,
        id: b.id,
        ..redeem.clone()
    };
    let before = event_count(&store).await;
    assert!(matches!(
        store
            .transition_approval(&late, &[event(EventKind::ApprovalRedeemed, b.id)])
            .await,
        Err(StoreError::Stale)
    ));
    assert_eq!(
        event_count(&store).await,
        before,
        "no event for a refused change"
    );
}

async fn cancelling_an_agent_or_grant_closes_its_open_requests(store: Arc<dyn Store>) {
    let w = world(&store).await;
    let open = request(&w, vec![w.principal], 1, "open");
    let mut done = request(&w, vec![w.principal], 1, "done");
    done.status = ApprovalStatus::Denied;
    store.create_approval(&open, 100, &[]).await.unwrap();
    store.create_approval(&done, 100, &[]).await.unwrap();
    let at = t0() + Duration::seconds(1);
    // The event builder sees each request as it was before the cancellation.
    let was = std::sync::Mutex::new(Vec::new());
    let mk = |a: &Approval| {
        was.lock().unwrap().push((a.id, a.status));
        event(EventKind::ApprovalCancelled, a.id)
    };
    let n = store
        .cancel_approvals(ApprovalScope::Grant(w.grant), at, &mk)
        .await
        .unwrap();
    assert_eq!(n, 1, "only the open one");
    assert_eq!(
        *was.lock().unwrap(),
        vec![(open.id, ApprovalStatus::Pending)]
    );
    // A cancelled request keeps nothing a ping needed.
    assert_eq!(
        store.get_approval(open.id).await.unwrap().unwrap().delivery,
        Delivery::Poll
    );
    let status = |id| {
        let store = store.clone();
        async move { store.get_approval(id).await.unwrap().unwrap().status }
    };
    assert_eq!(status(open.id).await, ApprovalStatus::Cancelled);
    assert_eq!(status(done.id).await, ApprovalStatus::Denied);
    // By agent: as the asking client, and anywhere in the chain of a sub-agent's request.
    let (child, _) = add_agent(&store, "child", w.principal).await;
    let mut sub = request(&w, vec![w.principal], 1, "sub");
    sub.client = child.id;
    sub.chain = vec![child.id, w.agent];
    store.create_approval(&sub, 100, &[]).await.unwrap();
    let n = store
        .cancel_approvals(ApprovalScope::Agent(w.agent), at, &mk)
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(status(sub.id).await, ApprovalStatus::Cancelled);
    // By human: requests on their authority, and requests by agents they own.
    let (stray, _) = add_agent(&store, "stray", w.other).await;
    let mut theirs = request(&w, vec![w.principal], 1, "theirs");
    theirs.client = stray.id;
    theirs.chain = vec![stray.id];
    let mine = request(&w, vec![w.principal], 1, "mine");
    store.create_approval(&theirs, 100, &[]).await.unwrap();
    store.create_approval(&mine, 100, &[]).await.unwrap();
    let n = store
        .cancel_approvals(ApprovalScope::Human(w.other), at, &mk)
        .await
        .unwrap();
    assert_eq!(n, 1, "the request of the agent `other` owns");
    assert_eq!(status(theirs.id).await, ApprovalStatus::Cancelled);
    assert_eq!(status(mine.id).await, ApprovalStatus::Pending);
    let n = store
        .cancel_approvals(ApprovalScope::Human(w.principal), at, &mk)
        .await
        .unwrap();
    assert_eq!(n, 1, "the request on `principal`'s authority");
}

async fn passkey_invites_are_single_use_and_sessions_expire(store: Arc<dyn Store>) {
    let h = add_human(&store, "h@example.com", Role::Member).await;
    let invite = |hash: &str| Enrollment {
        code_hash: hash.into(),
        human: h.id,
        created_at: t0(),
        expires_at: t0() + Duration::minutes(15),
    };
    store.issue_invite(&invite("one"), &[]).await.unwrap();
    assert_eq!(store.invited_human("one", t0()).await.unwrap(), Some(h.id));
    assert_eq!(
        store
            .invited_human("one", t0() + Duration::minutes(15))
            .await
            .unwrap(),
        None,
        "expired"
    );
    // A newer link replaces the older.
    store.issue_invite(&invite("two"), &[]).await.unwrap();
    assert_eq!(store.invited_human("one", t0()).await.unwrap(), None);
    let passkey = PasskeyRecord {
        cred_id: "cred-1".into(),
        human: h.id,
        passkey: json!({"cred": {"counter": 0}}),
        created_at: t0(),
        last_used_at: None,
    };
    store
        .register_passkey(
            "two",
            &passkey,
            &[event(EventKind::HumanPasskeyRegistered, h.id)],
        )
        .await
        .unwrap();
    assert!(matches!(
        store.register_passkey("two", &passkey, &[]).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.list_passkeys(h.id).await.unwrap(),
        vec![passkey.clone()]
    );
    store
        .touch_passkey("cred-1", &json!({"cred": {"counter": 1}}), t0())
        .await
        .unwrap();
    let touched = &store.list_passkeys(h.id).await.unwrap()[0];
    assert_eq!(touched.last_used_at, Some(t0()));
    // Ceremonies are taken once, and not after they expire.
    let ceremony = Ceremony {
        id: "c1".into(),
        human: Some(h.id),
        purpose: "login".into(),
        state: json!({"s": 1}),
        expires_at: t0() + Duration::minutes(5),
    };
    store.put_ceremony(&ceremony).await.unwrap();
    assert_eq!(
        store.take_ceremony("c1", t0()).await.unwrap(),
        Some(ceremony.clone())
    );
    assert_eq!(store.take_ceremony("c1", t0()).await.unwrap(), None);
    store
        .put_ceremony(&Ceremony {
            id: "c2".into(),
            ..ceremony.clone()
        })
        .await
        .unwrap();
    assert_eq!(
        store
            .take_ceremony("c2", t0() + Duration::minutes(5))
            .await
            .unwrap(),
        None
    );
    // Sessions.
    store
        .create_ui_session("s1", h.id, t0(), t0() + Duration::hours(1))
        .await
        .unwrap();
    assert_eq!(store.ui_session("s1", t0()).await.unwrap(), Some(h.id));
    assert_eq!(
        store
            .ui_session("s1", t0() + Duration::hours(1))
            .await
            .unwrap(),
        None
    );
    store.end_ui_session("s1").await.unwrap();
    assert_eq!(store.ui_session("s1", t0()).await.unwrap(), None);
    // Revoking a passkey removes it and ends every session of its human.
    store
        .create_ui_session("s2", h.id, t0(), t0() + Duration::hours(1))
        .await
        .unwrap();
    let other = add_human(&store, "other@example.com", Role::Member).await;
    assert!(matches!(
        store.revoke_passkey(other.id, "cred-1", &[]).await,
        Err(StoreError::NotFound(_))
    ));
    store
        .revoke_passkey(
            h.id,
            "cred-1",
            &[event(EventKind::HumanPasskeyRevoked, h.id)],
        )
        .await
        .unwrap();
    assert!(store.list_passkeys(h.id).await.unwrap().is_empty());
    assert_eq!(store.ui_session("s2", t0()).await.unwrap(), None);
    store
        .create_ui_session("s3", h.id, t0(), t0() + Duration::hours(1))
        .await
        .unwrap();
    store.end_ui_sessions_of(h.id).await.unwrap();
    assert_eq!(store.ui_session("s3", t0()).await.unwrap(), None);
}
