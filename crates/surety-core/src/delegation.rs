//! May this token be minted? The pure rules of token exchange (RFC 8693) for an agent acting
//! for a human, and for a sub-agent acting for an agent acting for a human. The server
//! gathers the facts (grant, states, the parent token's verified claims); these functions
//! decide. Each refusal carries the OAuth error code it answers with.

use time::{Duration, OffsetDateTime};

use crate::agent::AgentStatus;
use crate::grant::{Grant, GrantStatus};
use crate::human::HumanStatus;
use crate::id::{AgentId, GrantId, HumanId};
use crate::scope::ScopeSet;

/// Why a token may not be minted, by the OAuth error code it answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MintError {
    /// RFC 6749 §5.2 `invalid_grant`: the grant or subject token does not allow this.
    #[error("{0}")]
    InvalidGrant(String),
    /// RFC 6749 §5.2 `invalid_scope`: more scope than the grant or parent token holds.
    #[error("{0}")]
    InvalidScope(String),
    /// RFC 8693 §2.2.2 `invalid_target`: an audience the grant does not name.
    #[error("{0}")]
    InvalidTarget(String),
}

/// The states a token depends on, read just before deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    /// The principal's state.
    pub principal: HumanStatus,
    /// The state of the agent the token is for (the current actor).
    pub actor: AgentStatus,
}

/// What the caller asked for.
#[derive(Debug, Clone, Default)]
pub struct Requested<'a> {
    /// `scope`, parsed; `None` asks for everything available.
    pub scope: Option<&'a ScopeSet>,
    /// `resource` (RFC 8707) and `audience` (RFC 8693) values.
    pub audiences: &'a [String],
}

/// The decided content of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minted {
    /// `sub`.
    pub principal: HumanId,
    /// `grant_id`.
    pub grant: GrantId,
    /// `scope`.
    pub scope: ScopeSet,
    /// `aud`.
    pub audience: String,
    /// The agents, current actor first: `act.sub`, then `act.act.sub`…
    pub chain: Vec<AgentId>,
    /// `exp`.
    pub expires_at: OffsetDateTime,
}

impl Minted {
    /// How many delegations separate the token's actor from the grant's agent.
    #[must_use]
    pub fn depth(&self) -> usize {
        self.chain.len().saturating_sub(1)
    }
}

/// The verified claims of the parent token a sub-agent's token is derived from.
#[derive(Debug, Clone)]
pub struct Parent {
    /// `sub`.
    pub principal: HumanId,
    /// `grant_id`.
    pub grant: GrantId,
    /// `scope`.
    pub scope: ScopeSet,
    /// `aud`.
    pub audience: String,
    /// Agents of the `act` chain, current actor first.
    pub chain: Vec<AgentId>,
    /// `exp`.
    pub expires_at: OffsetDateTime,
}

fn grant_in_force(grant: &Grant, standing: Standing, now: OffsetDateTime) -> Result<(), MintError> {
    let status = grant.status_at(now);
    if status != GrantStatus::Active {
        return Err(MintError::InvalidGrant(format!(
            "grant `{}` is {status}, not active",
            grant.id
        )));
    }
    if standing.principal != HumanStatus::Active {
        return Err(MintError::InvalidGrant(format!(
            "the grant's principal `{}` is {}",
            grant.principal, standing.principal
        )));
    }
    if standing.actor != AgentStatus::Active {
        return Err(MintError::InvalidGrant(format!(
            "the agent is {}, not active",
            standing.actor
        )));
    }
    Ok(())
}

pub(crate) fn pick_scope(
    requested: Option<&ScopeSet>,
    held: &ScopeSet,
    of: &str,
) -> Result<ScopeSet, MintError> {
    match requested {
        None => Ok(held.clone()),
        Some(asked) => {
            let missing = asked.missing_from(held);
            if missing.is_empty() {
                Ok(asked.clone())
            } else {
                Err(MintError::InvalidScope(format!(
                    "{of} does not include `{}`",
                    missing.join(" ")
                )))
            }
        }
    }
}

/// One audience: the requested one(s) must agree, and be among `allowed`; with none
/// requested, `allowed` must hold exactly one.
pub(crate) fn pick_audience(
    requested: &[String],
    allowed: &[String],
    of: &str,
) -> Result<String, MintError> {
    let Some(first) = requested.first() else {
        return match allowed {
            [only] => Ok(only.clone()),
            _ => Err(MintError::InvalidTarget(format!(
                "{of} names several resources: say which one with `resource`"
            ))),
        };
    };
    if requested.iter().any(|r| r != first) {
        return Err(MintError::InvalidTarget(
            "a token is minted for one resource at a time".into(),
        ));
    }
    if allowed.contains(first) {
        Ok(first.clone())
    } else {
        Err(MintError::InvalidTarget(format!(
            "`{first}` is not a resource of {of}"
        )))
    }
}

/// `now + ttl`, never later than `limit`; a token that would expire within the second it
/// is issued (`exp` = `iat` in whole seconds) is not worth minting.
pub(crate) fn expiry(
    now: OffsetDateTime,
    ttl: Duration,
    limit: OffsetDateTime,
) -> Result<OffsetDateTime, MintError> {
    let exp = (now + ttl).min(limit);
    if exp.unix_timestamp() <= now.unix_timestamp() {
        return Err(MintError::InvalidGrant(
            "the grant or parent token expires in less than a second".into(),
        ));
    }
    Ok(exp)
}

/// A token for `agent` from `grant` (`subject_token_type` = grant): the grant is active,
/// this agent's, not expired; the principal and the agent are active; scope ⊆ grant;
/// audience ∈ grant resources; `exp` ≤ grant expiry.
pub fn from_grant(
    grant: &Grant,
    agent: AgentId,
    standing: Standing,
    requested: &Requested<'_>,
    now: OffsetDateTime,
    ttl: Duration,
) -> Result<Minted, MintError> {
    if grant.agent != agent {
        return Err(MintError::InvalidGrant(format!(
            "grant `{}` does not delegate to `{agent}`",
            grant.id
        )));
    }
    grant_in_force(grant, standing, now)?;
    Ok(Minted {
        principal: grant.principal,
        grant: grant.id,
        scope: pick_scope(requested.scope, &grant.scopes, "the grant")?,
        audience: pick_audience(requested.audiences, &grant.resources, "the grant")?,
        chain: vec![agent],
        expires_at: expiry(now, ttl, grant.expires_at)?,
    })
}

/// One delegation step: the agent holding the parent token hands work to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hop {
    /// The authenticated client, holder of the parent token.
    pub client: AgentId,
    /// The sub-agent the new token is for (`requested_actor`).
    pub actor: AgentId,
}

/// A token for the sub-agent of `hop`, derived from `parent` held by its client: the
/// parent's actor is the client; the grant is the parent's and still in force; the chain
/// does not exceed its depth nor loop; scope ⊆ parent; audience = parent's; `exp` ≤ parent's.
pub fn for_sub_agent(
    parent: &Parent,
    grant: &Grant,
    hop: Hop,
    standing: Standing,
    requested: &Requested<'_>,
    now: OffsetDateTime,
    ttl: Duration,
) -> Result<Minted, MintError> {
    let Hop { client, actor } = hop;
    // The subject token and the client must come from one context (no chain splicing).
    if parent.chain.first() != Some(&client) {
        return Err(MintError::InvalidGrant(
            "the subject token was not issued to the authenticated client".into(),
        ));
    }
    if parent.grant != grant.id || parent.principal != grant.principal {
        return Err(MintError::InvalidGrant(
            "the subject token does not belong to its grant".into(),
        ));
    }
    grant_in_force(grant, standing, now)?;
    if parent.chain.contains(&actor) {
        return Err(MintError::InvalidGrant(format!(
            "`{actor}` is already in the delegation chain"
        )));
    }
    let depth = parent.chain.len();
    if depth > grant.max_delegation_depth as usize {
        return Err(MintError::InvalidGrant(format!(
            "grant `{}` allows a delegation depth of {}; this token would be at depth {depth}",
            grant.id, grant.max_delegation_depth
        )));
    }
    let scope = pick_scope(requested.scope, &parent.scope, "the subject token")?;
    // The grant may have been narrowed since (it cannot be, today; the check costs nothing).
    if !scope.is_subset(&grant.scopes) {
        return Err(MintError::InvalidScope(
            "the grant no longer includes this scope".into(),
        ));
    }
    let audience = pick_audience(
        requested.audiences,
        std::slice::from_ref(&parent.audience),
        "the subject token",
    )?;
    let mut chain = Vec::with_capacity(depth + 1);
    chain.push(actor);
    chain.extend_from_slice(&parent.chain);
    Ok(Minted {
        principal: parent.principal,
        grant: grant.id,
        scope,
        audience,
        chain,
        expires_at: expiry(now, ttl, parent.expires_at.min(grant.expires_at))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::{GrantTerms, NewGrant};
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);
    const TTL: Duration = Duration::minutes(5);
    const OK: Standing = Standing {
        principal: HumanStatus::Active,
        actor: AgentStatus::Active,
    };

    /// Ids carry random bits: make them once.
    static AGENTS: std::sync::LazyLock<Vec<AgentId>> = std::sync::LazyLock::new(|| {
        (0..4)
            .map(|n| AgentId::new(NOW + Duration::seconds(n)))
            .collect()
    });

    fn agent(n: usize) -> AgentId {
        AGENTS[n]
    }

    fn grant(depth: u32, expires_in: Duration) -> Grant {
        let scopes = ["crm.read".to_owned(), "payments.transfer".to_owned()];
        let resources = [
            "https://crm.example".to_owned(),
            "https://pay.example".to_owned(),
        ];
        let principal = HumanId::new(NOW);
        NewGrant::parse(
            &GrantTerms {
                agent: agent(1),
                principal,
                scopes: &scopes,
                resources: &resources,
                constraints: None,
                max_delegation_depth: Some(depth),
                expires_at: NOW + expires_in,
            },
            NOW,
            Duration::days(30),
        )
        .unwrap()
        .into_grant(GrantId::new(NOW), principal, NOW)
    }

    fn scope(s: &str) -> ScopeSet {
        ScopeSet::parse("scope", s).unwrap()
    }

    fn crm() -> Vec<String> {
        vec!["https://crm.example".into()]
    }

    #[test]
    fn a_grant_mints_a_narrowed_short_token() {
        let g = grant(0, Duration::days(1));
        let asked = scope("crm.read");
        let aud = crm();
        let req = Requested {
            scope: Some(&asked),
            audiences: &aud,
        };
        let t = from_grant(&g, agent(1), OK, &req, NOW, TTL).unwrap();
        assert_eq!(t.scope, asked);
        assert_eq!(t.audience, "https://crm.example");
        assert_eq!(t.expires_at, NOW + TTL);
        assert_eq!(t.chain, vec![agent(1)]);
        assert_eq!(t.depth(), 0);
    }

    #[test]
    fn a_token_dead_on_arrival_is_not_minted() {
        let g = grant(0, Duration::milliseconds(500));
        let aud = crm();
        let req = Requested {
            scope: None,
            audiences: &aud,
        };
        assert!(matches!(
            from_grant(&g, agent(1), OK, &req, NOW, TTL),
            Err(MintError::InvalidGrant(_))
        ));
    }

    #[test]
    fn tokens_never_outlive_the_grant() {
        let g = grant(0, Duration::minutes(1));
        let aud = crm();
        let t = from_grant(
            &g,
            agent(1),
            OK,
            &Requested {
                scope: None,
                audiences: &aud,
            },
            NOW,
            TTL,
        )
        .unwrap();
        assert_eq!(t.expires_at, g.expires_at);
    }

    #[test]
    fn every_grant_condition_is_checked() {
        let g = grant(0, Duration::days(1));
        let aud = crm();
        let req = Requested {
            scope: None,
            audiences: &aud,
        };
        let wide = scope("crm.read iam.grant_role");
        let outside = vec!["https://evil.example".to_owned()];
        let both = vec![
            "https://crm.example".to_owned(),
            "https://pay.example".to_owned(),
        ];
        let mut revoked = g.clone();
        revoked.status = GrantStatus::Revoked;
        let mut proposed = g.clone();
        proposed.status = GrantStatus::Proposed;
        let cases: Vec<(Result<Minted, MintError>, &str)> = vec![
            (
                from_grant(&g, agent(2), OK, &req, NOW, TTL),
                "invalid_grant: other agent",
            ),
            (
                from_grant(&revoked, agent(1), OK, &req, NOW, TTL),
                "invalid_grant: revoked",
            ),
            (
                from_grant(&proposed, agent(1), OK, &req, NOW, TTL),
                "invalid_grant: proposed",
            ),
            (
                from_grant(&g, agent(1), OK, &req, g.expires_at, TTL),
                "invalid_grant: expired",
            ),
            (
                from_grant(
                    &g,
                    agent(1),
                    Standing {
                        principal: HumanStatus::Deactivated,
                        ..OK
                    },
                    &req,
                    NOW,
                    TTL,
                ),
                "invalid_grant: principal",
            ),
            (
                from_grant(
                    &g,
                    agent(1),
                    Standing {
                        actor: AgentStatus::Suspended,
                        ..OK
                    },
                    &req,
                    NOW,
                    TTL,
                ),
                "invalid_grant: agent",
            ),
            (
                from_grant(
                    &g,
                    agent(1),
                    OK,
                    &Requested {
                        scope: Some(&wide),
                        audiences: &aud,
                    },
                    NOW,
                    TTL,
                ),
                "invalid_scope",
            ),
            (
                from_grant(
                    &g,
                    agent(1),
                    OK,
                    &Requested {
                        scope: None,
                        audiences: &outside,
                    },
                    NOW,
                    TTL,
                ),
                "invalid_target",
            ),
            (
                from_grant(
                    &g,
                    agent(1),
                    OK,
                    &Requested {
                        scope: None,
                        audiences: &both,
                    },
                    NOW,
                    TTL,
                ),
                "invalid_target",
            ),
            (
                from_grant(
                    &g,
                    agent(1),
                    OK,
                    &Requested {
                        scope: None,
                        audiences: &[],
                    },
                    NOW,
                    TTL,
                ),
                "invalid_target",
            ),
        ];
        for (result, case) in cases {
            let err = result.expect_err(case);
            let code = match err {
                MintError::InvalidGrant(_) => "invalid_grant",
                MintError::InvalidScope(_) => "invalid_scope",
                MintError::InvalidTarget(_) => "invalid_target",
            };
            assert!(case.starts_with(code), "{case}: got {code}");
        }
    }

    fn parent_of(g: &Grant) -> Parent {
        let aud = crm();
        let t = from_grant(
            g,
            agent(1),
            OK,
            &Requested {
                scope: None,
                audiences: &aud,
            },
            NOW,
            TTL,
        )
        .unwrap();
        Parent {
            principal: t.principal,
            grant: t.grant,
            scope: t.scope,
            audience: t.audience,
            chain: t.chain,
            expires_at: t.expires_at,
        }
    }

    #[test]
    fn sub_agents_get_attenuated_nested_tokens() {
        let g = grant(2, Duration::days(1));
        let parent = parent_of(&g);
        let asked = scope("crm.read");
        let req = Requested {
            scope: Some(&asked),
            audiences: &[],
        };
        let later = NOW + Duration::minutes(2);
        let t = for_sub_agent(
            &parent,
            &g,
            Hop {
                client: agent(1),
                actor: agent(2),
            },
            OK,
            &req,
            later,
            TTL,
        )
        .unwrap();
        assert_eq!(t.chain, vec![agent(2), agent(1)]);
        assert_eq!(t.depth(), 1);
        assert_eq!(
            t.expires_at, parent.expires_at,
            "never longer-lived than the parent"
        );
        assert_eq!(t.audience, parent.audience);
    }

    #[test]
    fn sub_agent_rules_are_enforced() {
        let g = grant(1, Duration::days(1));
        let parent = parent_of(&g);
        let none = Requested::default();
        let wide = scope("crm.read iam.grant_role");
        let other_aud = vec!["https://pay.example".to_owned()];
        let hop = |client, actor| Hop {
            client: agent(client),
            actor: agent(actor),
        };
        let mint = |parent: &Parent, grant: &Grant, hop: Hop, standing, req: &Requested<'_>| {
            for_sub_agent(parent, grant, hop, standing, req, NOW, TTL)
        };
        // Depth: a child of the child would be depth 2 > 1.
        let child = mint(&parent, &g, hop(1, 2), OK, &none).unwrap();
        let child = Parent {
            chain: child.chain,
            ..parent.clone()
        };
        let mut other_grant = g.clone();
        other_grant.id = GrantId::new(NOW + Duration::SECOND);
        let suspended = Standing {
            actor: AgentStatus::Suspended,
            ..OK
        };
        let cases = [
            (mint(&child, &g, hop(2, 3), OK, &none), "depth"),
            (mint(&parent, &g, hop(3, 2), OK, &none), "splice"),
            (mint(&parent, &other_grant, hop(1, 2), OK, &none), "grant"),
            (mint(&parent, &g, hop(1, 1), OK, &none), "loop"),
            (
                mint(
                    &parent,
                    &g,
                    hop(1, 2),
                    OK,
                    &Requested {
                        scope: Some(&wide),
                        audiences: &[],
                    },
                ),
                "widening",
            ),
            (
                mint(
                    &parent,
                    &g,
                    hop(1, 2),
                    OK,
                    &Requested {
                        scope: None,
                        audiences: &other_aud,
                    },
                ),
                "audience",
            ),
            (
                mint(&parent, &g, hop(1, 2), suspended, &none),
                "inactive sub-agent",
            ),
        ];
        for (result, case) in cases {
            assert!(result.is_err(), "{case} was accepted");
        }
    }
}
