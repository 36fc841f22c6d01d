//! The inventory: agents with their owner, keys, grants, scope usage and recent activity.

use std::sync::Arc;

use surety_core::audit::{Actor, EventKind, NewEvent};
use surety_core::grant::{Grant, GrantTerms, NewGrant};
use surety_core::human::Role;
use surety_core::id::{AgentId, GrantId, HumanId};
use surety_core::inventory::RecentActivity;
use surety_core::page::PageRequest;
use surety_store::{ActivityKind, AgentActivity, AgentFilter, Store};
use time::{Duration, OffsetDateTime};

use crate::fixtures::*;

crate::storage_tests!(
    facts_come_in_pages_with_keys_grants_usage_and_activity,
    usage_and_activity_accumulate_across_batches,
);

fn grant(agent: AgentId, principal: HumanId) -> Grant {
    let scopes = ["crm.read".to_owned(), "crm.write".to_owned()];
    let resources = ["https://crm.example".to_owned()];
    NewGrant::parse(
        &GrantTerms {
            agent,
            principal,
            scopes: &scopes,
            resources: &resources,
            constraints: None,
            max_delegation_depth: None,
            expires_at: t0() + Duration::days(10),
        },
        t0(),
        Duration::days(30),
    )
    .unwrap()
    .into_grant(GrantId::new(t0()), principal, t0())
}

fn activity(
    agent: AgentId,
    at: OffsetDateTime,
    kind: ActivityKind,
    exercised: Option<(GrantId, &str)>,
) -> AgentActivity {
    AgentActivity {
        agent,
        at,
        events: vec![],
        strike: false,
        kind,
        exercised: exercised.map(|(g, s)| (g, s.to_owned())),
    }
}

async fn facts_come_in_pages_with_keys_grants_usage_and_activity(store: Arc<dyn Store>) {
    let ada = add_human(&store, "ada@example.com", Role::Member).await;
    let bob = add_human(&store, "bob@example.com", Role::Member).await;
    let mut agents = [
        add_agent(&store, "one", ada.id).await,
        add_agent(&store, "two", ada.id).await,
        add_agent(&store, "three", bob.id).await,
    ];
    agents.sort_by_key(|(a, _)| a.id);
    let (a, b) = (agents[0].0.id, agents[1].0.id);
    let g = grant(a, agents[0].0.owner);
    store.create_grant(&g, &[]).await.unwrap();
    let day2 = t0() + Duration::days(1);
    store
        .record_agent_activity(&[
            activity(a, t0(), ActivityKind::Token, None),
            activity(a, t0(), ActivityKind::Allowed, Some((g.id, "crm.read"))),
            activity(a, day2, ActivityKind::Allowed, Some((g.id, "crm.read"))),
            activity(a, day2, ActivityKind::Denied, None),
            activity(a, day2, ActivityKind::SteppedUp, None),
            activity(b, t0(), ActivityKind::Denied, None),
        ])
        .await
        .unwrap();
    store
        .append_events(&[NewEvent::new(EventKind::AgentSuspended, Actor::System, b, day2).agent(b)])
        .await
        .unwrap();

    let all = AgentFilter::default();
    let first = store
        .agent_facts(&all, &PageRequest::first(2), t0())
        .await
        .unwrap();
    assert_eq!(first.items.len(), 2);
    let fa = &first.items[0];
    assert_eq!(fa.agent.id, a);
    assert_eq!(fa.owner.id, agents[0].0.owner);
    assert_eq!(
        fa.keys.iter().map(|k| &k.kid).collect::<Vec<_>>(),
        vec![&agents[0].1.kid]
    );
    assert_eq!(fa.grants.len(), 1);
    assert_eq!(fa.grants[0].id, g.id);
    // Only the scope exercised has a use; its latest use is the latest decision.
    assert_eq!(fa.usage.len(), 1);
    assert_eq!(
        (
            fa.usage[0].scope.as_str(),
            fa.usage[0].uses,
            fa.usage[0].last_used_at
        ),
        ("crm.read", 2, day2)
    );
    assert_eq!(
        fa.recent,
        RecentActivity {
            tokens: 1,
            allowed: 2,
            denied: 1,
            step_up: 1,
            suspensions: 0
        }
    );
    let fb = &first.items[1];
    assert_eq!(fb.agent.id, b);
    assert!(fb.grants.is_empty() && fb.usage.is_empty());
    assert_eq!((fb.recent.denied, fb.recent.suspensions), (1, 1));

    // The recent window counts whole UTC days from `recent_since`.
    let later = store
        .agent_facts(&all, &PageRequest::first(2), day2)
        .await
        .unwrap();
    assert_eq!(later.items[0].recent.tokens, 0);
    assert_eq!(later.items[0].recent.allowed, 1);
    assert_eq!(later.items[1].recent.denied, 0);
    assert_eq!(later.items[1].recent.suspensions, 1);
    let after = t0() + Duration::days(3);
    let quiet = store
        .agent_facts(&all, &PageRequest::first(2), after)
        .await
        .unwrap();
    assert_eq!(quiet.items[1].recent, RecentActivity::default());

    let rest = store
        .agent_facts(
            &all,
            &PageRequest {
                limit: 2,
                after: first.next_cursor.clone(),
            },
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    assert_eq!(rest.items[0].agent.id, agents[2].0.id);
    assert!(rest.next_cursor.is_none());
    // Each agent's keys only, even though the page's id range spans no other agent's.
    assert_eq!(rest.items[0].keys.len(), 1);
    assert_eq!(rest.items[0].keys[0].kid, agents[2].1.kid);

    // Filters are the agent list's.
    let bobs = store
        .agent_facts(
            &AgentFilter {
                owner: Some(bob.id),
                ..AgentFilter::default()
            },
            &PageRequest::first(10),
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(bobs.items.len(), 1);
    assert_eq!(bobs.items[0].owner.email, "bob@example.com");
    let none = store
        .agent_facts(
            &AgentFilter {
                environment: Some("nowhere".into()),
                ..AgentFilter::default()
            },
            &PageRequest::first(10),
            t0(),
        )
        .await
        .unwrap();
    assert!(none.items.is_empty() && none.next_cursor.is_none());
}

async fn usage_and_activity_accumulate_across_batches(store: Arc<dyn Store>) {
    let ada = add_human(&store, "ada@example.com", Role::Member).await;
    let (a, _) = add_agent(&store, "one", ada.id).await;
    let g = grant(a.id, ada.id);
    store.create_grant(&g, &[]).await.unwrap();
    let t1 = t0() + Duration::minutes(5);
    // A later batch may carry an earlier decision (batches commit in any order): the latest
    // use stays the latest.
    for at in [t1, t0(), t1 - Duration::SECOND] {
        store
            .record_agent_activity(&[activity(
                a.id,
                at,
                ActivityKind::Allowed,
                Some((g.id, "crm.write")),
            )])
            .await
            .unwrap();
    }
    let facts = store
        .agent_facts(&AgentFilter::default(), &PageRequest::first(10), t0())
        .await
        .unwrap();
    let f = &facts.items[0];
    assert_eq!(f.usage.len(), 1);
    assert_eq!((f.usage[0].uses, f.usage[0].last_used_at), (3, t1));
    assert_eq!(f.recent.allowed, 3);
    // The agent's last activity only moves forward.
    assert_eq!(f.agent.last_seen_at, Some(t1));
}
