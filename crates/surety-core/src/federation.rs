//! Federation: what agents of *another* organisation (a peer) may do here.
//!
//! A peer is trusted by its issuer URL and keys; nothing more follows from that trust. What
//! its agents may do is a **federation grant**: for one peer, optionally only some of its
//! agents and principals (patterns), these scopes at these resources, under these
//! constraints, until then. No grant, no authority.
//!
//! A peer's agent arrives with a JWT authorization grant its home organisation signed
//! (identity chaining across domains: RFC 8693 at home, RFC 7523 here). [`admit`] decides,
//! from the verified grant and a federation grant, what local token it may have: scope ⊆
//! both the home grant and the federation grant, an audience the federation grant names
//! (and the home grant's `resource`, when it names one), expiry ≤ all of them.

use serde_json::Value;
use time::{Duration, OffsetDateTime};

use crate::delegation::{MintError, expiry, pick_audience, pick_scope};
use crate::error::FieldError;
use crate::grant::{MAX_CONSTRAINTS_BYTES, MAX_RESOURCES, resource_url};
use crate::id::{FederationGrantId, HumanId};
use crate::names::named_enum;
use crate::scope::ScopeSet;

/// Longest identity pattern.
const MAX_PATTERN_LEN: usize = 128;

named_enum! {
    /// Lifecycle state of a federation grant. Expiry is a fact of time
    /// ([`FederationGrant::status_at`]).
    pub enum FederationGrantStatus: "status" {
        /// In force.
        Active = "active",
        /// Past its expiry (final).
        Expired = "expired",
        /// Withdrawn (final).
        Revoked = "revoked",
    }
}

/// Which of a peer's identities a federation grant covers: `*` (any), an exact id, or a
/// prefix ending in `*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    /// Validates a pattern for `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let body = value.strip_suffix('*').unwrap_or(value);
        if value.is_empty() || value.len() > MAX_PATTERN_LEN {
            return Err(FieldError::new(
                field,
                format!("must be 1 to {MAX_PATTERN_LEN} characters"),
            ));
        }
        if body.contains('*') {
            return Err(FieldError::new(
                field,
                "`*` may only end a pattern (`*`, `agt_01…*` or an exact id)",
            ));
        }
        if !body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.:@".contains(c))
        {
            return Err(FieldError::new(
                field,
                "may contain letters, digits, `_ - . : @` and a final `*`",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// Any identity.
    #[must_use]
    pub fn any() -> Self {
        Self("*".into())
    }

    /// Whether `id` matches.
    #[must_use]
    pub fn matches(&self, id: &str) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => id.starts_with(prefix),
            None => self.0 == id,
        }
    }

    /// The pattern as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Pattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a peer's agents may do here.
#[derive(Debug, Clone, PartialEq)]
pub struct FederationGrant {
    /// `fgr_…`
    pub id: FederationGrantId,
    /// The peer's issuer URL.
    pub peer: String,
    /// Which of the peer's agents (`act.sub`).
    pub agents: Pattern,
    /// For which of the peer's humans (`sub`).
    pub principals: Pattern,
    /// The most a token may carry.
    pub scopes: ScopeSet,
    /// The resource servers here a token may be for.
    pub resources: Vec<String>,
    /// Limits, as a grant's (`max_amount`, `currency`, `allowed_domains`, `data_classes`,
    /// `step_up`).
    pub constraints: Value,
    /// Stored state.
    pub status: FederationGrantStatus,
    /// End.
    pub expires_at: OffsetDateTime,
    /// Who created it.
    pub created_by: HumanId,
    /// When.
    pub created_at: OffsetDateTime,
}

impl FederationGrant {
    /// The state at `now`: an active grant past its expiry is `expired`.
    #[must_use]
    pub fn status_at(&self, now: OffsetDateTime) -> FederationGrantStatus {
        match self.status {
            FederationGrantStatus::Active if now >= self.expires_at => {
                FederationGrantStatus::Expired
            }
            s => s,
        }
    }

    /// Whether it covers this agent of this principal of `peer`.
    #[must_use]
    pub fn covers(&self, peer: &str, agent: &str, principal: &str) -> bool {
        self.peer == peer && self.agents.matches(agent) && self.principals.matches(principal)
    }
}

/// Raw terms of a new federation grant, as they arrive.
#[derive(Debug, Clone)]
pub struct FederationGrantTerms<'a> {
    /// The peer's issuer.
    pub peer: &'a str,
    /// Agent pattern (default `*`).
    pub agents: Option<&'a str>,
    /// Principal pattern (default `*`).
    pub principals: Option<&'a str>,
    /// Scopes.
    pub scopes: &'a [String],
    /// Resource URLs.
    pub resources: &'a [String],
    /// Constraints (a JSON object), if any.
    pub constraints: Option<&'a Value>,
    /// End.
    pub expires_at: OffsetDateTime,
}

impl FederationGrantTerms<'_> {
    /// Validates the terms at `now` (expiry within `max_lifetime`) into a grant.
    pub fn parse(
        &self,
        id: FederationGrantId,
        created_by: HumanId,
        now: OffsetDateTime,
        max_lifetime: Duration,
    ) -> Result<FederationGrant, FieldError> {
        let scopes = ScopeSet::from_tokens("scopes", self.scopes)?;
        if scopes.is_empty() {
            return Err(FieldError::new(
                "scopes",
                "a federation grant must allow at least one action",
            ));
        }
        if self.resources.is_empty() || self.resources.len() > MAX_RESOURCES {
            return Err(FieldError::new(
                "resources",
                format!("a federation grant names 1 to {MAX_RESOURCES} resources"),
            ));
        }
        let mut resources = Vec::new();
        for r in self.resources {
            let r = resource_url("resources", r)?;
            if !resources.contains(&r) {
                resources.push(r);
            }
        }
        let constraints = match self.constraints {
            None | Some(Value::Null) => Value::Object(serde_json::Map::new()),
            Some(v @ Value::Object(_)) if v.to_string().len() <= MAX_CONSTRAINTS_BYTES => v.clone(),
            Some(Value::Object(_)) => {
                return Err(FieldError::new(
                    "constraints",
                    format!("must be at most {MAX_CONSTRAINTS_BYTES} bytes of JSON"),
                ));
            }
            Some(_) => return Err(FieldError::new("constraints", "must be a JSON object")),
        };
        if self.expires_at <= now {
            return Err(FieldError::new("expires_at", "must be in the future"));
        }
        if self.expires_at > now + max_lifetime {
            return Err(FieldError::new(
                "expires_at",
                format!(
                    "must be within {} days (the server's maximum grant lifetime)",
                    max_lifetime.whole_days().max(0)
                ),
            ));
        }
        Ok(FederationGrant {
            id,
            peer: self.peer.to_owned(),
            agents: Pattern::parse("agents", self.agents.unwrap_or("*"))?,
            principals: Pattern::parse("principals", self.principals.unwrap_or("*"))?,
            scopes,
            resources,
            constraints,
            status: FederationGrantStatus::Active,
            expires_at: self.expires_at,
            created_by,
            created_at: now,
        })
    }
}

/// What a peer's verified authorization grant says.
#[derive(Debug, Clone)]
pub struct Arriving<'a> {
    /// Its issuer (the peer).
    pub peer: &'a str,
    /// `act.sub`: the peer's agent.
    pub agent: &'a str,
    /// `sub`: the peer's human.
    pub principal: &'a str,
    /// `scope`.
    pub scope: &'a ScopeSet,
    /// `resource`, when the home organisation bound the grant to one resource here.
    pub resource: Option<&'a str>,
    /// `exp`.
    pub expires_at: OffsetDateTime,
}

/// What a local token for a peer's agent carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// The federation grant it falls under.
    pub grant: FederationGrantId,
    /// `scope`.
    pub scope: ScopeSet,
    /// `aud`.
    pub audience: String,
    /// `exp`.
    pub expires_at: OffsetDateTime,
}

/// Decides what token a peer's agent may have under `grant`: the grant is active, covers
/// the peer, agent and principal; scope ⊆ the home grant's and the federation grant's (all
/// of both's common scopes when none is asked); the audience is one the federation grant
/// names and, when the home grant names a resource, that one; `exp` ≤ every expiry.
pub fn admit(
    grant: &FederationGrant,
    arriving: &Arriving<'_>,
    requested_scope: Option<&ScopeSet>,
    requested_audiences: &[String],
    now: OffsetDateTime,
    ttl: Duration,
) -> Result<Admitted, MintError> {
    if !grant.covers(arriving.peer, arriving.agent, arriving.principal) {
        return Err(MintError::InvalidGrant(format!(
            "federation grant `{}` does not cover this agent of `{}`",
            grant.id, arriving.peer
        )));
    }
    let status = grant.status_at(now);
    if status != FederationGrantStatus::Active {
        return Err(MintError::InvalidGrant(format!(
            "federation grant `{}` is {status}",
            grant.id
        )));
    }
    let common = ScopeSet::from_tokens(
        "scope",
        arriving.scope.iter().filter(|s| grant.scopes.contains(s)),
    )
    .map_err(|e| MintError::InvalidScope(e.to_string()))?;
    let scope = match requested_scope {
        Some(asked) => {
            pick_scope(Some(asked), arriving.scope, "the home organisation's grant")?;
            pick_scope(Some(asked), &grant.scopes, "the federation grant")?
        }
        None if common.is_empty() => {
            return Err(MintError::InvalidScope(
                "the home organisation's grant and the federation grant share no scope".into(),
            ));
        }
        None => common,
    };
    let mut asked = requested_audiences.to_vec();
    if let Some(resource) = arriving.resource {
        if asked.iter().any(|a| a != resource) {
            return Err(MintError::InvalidTarget(format!(
                "the home organisation's grant is for `{resource}` only"
            )));
        }
        asked = vec![resource.to_owned()];
    }
    let audience = pick_audience(&asked, &grant.resources, "the federation grant")?;
    let expires_at = expiry(now, ttl, grant.expires_at.min(arriving.expires_at))?;
    Ok(Admitted {
        grant: grant.id,
        scope,
        audience,
        expires_at,
    })
}

/// The limits a peer's agent acts under here: the stricter of what its home grant allows
/// (`home`, as the home organisation stated it) and what the federation grant allows
/// (`here`). `max_amount`: the smaller; `currency`: the common one — two different ones
/// leave no currency (a value no request states, so every transaction with a currency is
/// denied); `allowed_domains`, `data_classes`: what both allow; `step_up`: what either asks.
/// Other members are kept from `here` only (the home's approver lists mean nothing here).
#[must_use]
pub fn stricter(home: &Value, here: &Value) -> Value {
    let mut out = match here {
        Value::Object(o) => o.clone(),
        _ => serde_json::Map::new(),
    };
    let Value::Object(home) = home else {
        return Value::Object(out);
    };
    if let Some(h) = home.get("max_amount").and_then(Value::as_i64) {
        let limit = out
            .get("max_amount")
            .and_then(Value::as_i64)
            .map_or(h, |o| o.min(h));
        out.insert("max_amount".into(), limit.into());
    }
    if let Some(h) = home.get("currency").and_then(Value::as_str) {
        let currency = match out.get("currency").and_then(Value::as_str) {
            Some(o) if o != h => NO_CURRENCY,
            _ => h,
        };
        out.insert("currency".into(), currency.into());
    }
    for list in ["allowed_domains", "data_classes"] {
        let Some(h) = home.get(list).and_then(Value::as_array) else {
            continue;
        };
        let both: Vec<Value> = match out.get(list).and_then(Value::as_array) {
            Some(o) => o.iter().filter(|v| h.contains(v)).cloned().collect(),
            None => h.clone(),
        };
        out.insert(list.into(), Value::Array(both));
    }
    if let Some(h) = home.get("step_up").and_then(Value::as_array) {
        let mut either = out
            .get("step_up")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for v in h {
            if !either.contains(v) {
                either.push(v.clone());
            }
        }
        out.insert("step_up".into(), Value::Array(either));
    }
    Value::Object(out)
}

/// The currency of two grants that name different ones: no request states it.
const NO_CURRENCY: &str =
    "(none: the home grant and the federation grant name different currencies)";

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-29 12:00 UTC);
    const PEER: &str = "https://a.example";

    fn scopes(s: &str) -> ScopeSet {
        ScopeSet::parse("scope", s).unwrap()
    }

    fn grant() -> FederationGrant {
        FederationGrantTerms {
            peer: PEER,
            agents: Some("agt_01*"),
            principals: None,
            scopes: &["crm.read".into(), "payments.transfer".into()],
            resources: &[
                "https://crm.b.example".into(),
                "https://pay.b.example".into(),
            ],
            constraints: None,
            expires_at: NOW + Duration::days(1),
        }
        .parse(
            FederationGrantId::new(NOW),
            HumanId::new(NOW),
            NOW,
            Duration::days(90),
        )
        .unwrap()
    }

    fn arriving(scope: &ScopeSet) -> Arriving<'_> {
        Arriving {
            peer: PEER,
            agent: "agt_01abc",
            principal: "hum_1",
            scope,
            resource: Some("https://crm.b.example"),
            expires_at: NOW + Duration::minutes(5),
        }
    }

    #[test]
    fn the_stricter_limits_of_both_grants_apply() {
        use serde_json::json;
        let here = json!({"max_amount": 5000, "currency": "EUR", "allowed_domains": ["a.example", "b.example"], "step_up": ["iam.grant_role"]});
        let home = json!({"max_amount": 100, "currency": "EUR", "allowed_domains": ["b.example", "c.example"], "step_up": ["payments.transfer"], "approvers": ["hum_x"]});
        assert_eq!(
            stricter(&home, &here),
            json!({"max_amount": 100, "currency": "EUR", "allowed_domains": ["b.example"], "step_up": ["iam.grant_role", "payments.transfer"]})
        );
        // Limits only the home states still apply; the home cannot loosen the federation grant.
        assert_eq!(
            stricter(
                &json!({"data_classes": ["public"]}),
                &json!({"max_amount": 10})
            ),
            json!({"max_amount": 10, "data_classes": ["public"]})
        );
        assert_eq!(
            stricter(
                &json!({"max_amount": 1_000_000}),
                &json!({"max_amount": 10})
            ),
            json!({"max_amount": 10})
        );
        // Two currencies: none left.
        let c = stricter(&json!({"currency": "USD"}), &json!({"currency": "EUR"}));
        assert_ne!(c["currency"], "USD");
        assert_ne!(c["currency"], "EUR");
        assert_eq!(stricter(&Value::Null, &here), here);
    }

    #[test]
    fn patterns_match_exactly_or_by_prefix() {
        let p = Pattern::parse("agents", "agt_01*").unwrap();
        assert!(p.matches("agt_01abc"));
        assert!(!p.matches("agt_02abc"));
        let exact = Pattern::parse("agents", "agt_01").unwrap();
        assert!(exact.matches("agt_01"));
        assert!(!exact.matches("agt_012"));
        assert!(Pattern::any().matches("anything"));
        for bad in ["", "a*b", "**", "agt 1", "agt_\u{e9}"] {
            assert!(Pattern::parse("agents", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn admits_the_common_scope_for_the_home_grants_resource() {
        let home = scopes("crm.read crm.write");
        let a = admit(
            &grant(),
            &arriving(&home),
            None,
            &[],
            NOW,
            Duration::minutes(10),
        )
        .unwrap();
        assert_eq!(a.scope, scopes("crm.read"));
        assert_eq!(a.audience, "https://crm.b.example");
        // Never past the home grant's expiry.
        assert_eq!(a.expires_at, NOW + Duration::minutes(5));
    }

    #[test]
    fn scope_beyond_either_grant_is_invalid_scope() {
        let home = scopes("crm.read payments.transfer iam.grant_role");
        let g = grant();
        let beyond_federation = scopes("iam.grant_role");
        assert!(matches!(
            admit(&g, &arriving(&home), Some(&beyond_federation), &[], NOW, Duration::minutes(5)),
            Err(MintError::InvalidScope(m)) if m.contains("federation grant")
        ));
        let narrow_home = scopes("crm.read");
        let beyond_home = scopes("payments.transfer");
        assert!(matches!(
            admit(&g, &arriving(&narrow_home), Some(&beyond_home), &[], NOW, Duration::minutes(5)),
            Err(MintError::InvalidScope(m)) if m.contains("home")
        ));
        let disjoint = scopes("files.share_external");
        assert!(matches!(
            admit(
                &g,
                &arriving(&disjoint),
                None,
                &[],
                NOW,
                Duration::minutes(5)
            ),
            Err(MintError::InvalidScope(_))
        ));
    }

    #[test]
    fn audience_must_be_the_home_grants_and_the_federation_grants() {
        let home = scopes("crm.read");
        let g = grant();
        assert!(matches!(
            admit(
                &g,
                &arriving(&home),
                None,
                &["https://pay.b.example".into()],
                NOW,
                Duration::minutes(5)
            ),
            Err(MintError::InvalidTarget(_))
        ));
        let mut elsewhere = arriving(&home);
        elsewhere.resource = Some("https://hr.b.example");
        assert!(matches!(
            admit(&g, &elsewhere, None, &[], NOW, Duration::minutes(5)),
            Err(MintError::InvalidTarget(_))
        ));
        let mut unbound = arriving(&home);
        unbound.resource = None;
        // Two resources and none asked: which one?
        assert!(matches!(
            admit(&g, &unbound, None, &[], NOW, Duration::minutes(5)),
            Err(MintError::InvalidTarget(_))
        ));
        let a = admit(
            &g,
            &unbound,
            None,
            &["https://pay.b.example".into()],
            NOW,
            Duration::minutes(5),
        )
        .unwrap();
        assert_eq!(a.audience, "https://pay.b.example");
    }

    #[test]
    fn other_peer_agent_expired_or_revoked_is_invalid_grant() {
        let home = scopes("crm.read");
        let g = grant();
        let mut other_peer = arriving(&home);
        other_peer.peer = "https://c.example";
        let mut other_agent = arriving(&home);
        other_agent.agent = "agt_02x";
        for a in [other_peer, other_agent] {
            assert!(matches!(
                admit(&g, &a, None, &[], NOW, Duration::minutes(5)),
                Err(MintError::InvalidGrant(_))
            ));
        }
        let later = NOW + Duration::days(2);
        let mut late = arriving(&home);
        late.expires_at = later + Duration::minutes(5);
        assert!(matches!(
            admit(&g, &late, None, &[], later, Duration::minutes(5)),
            Err(MintError::InvalidGrant(m)) if m.contains("expired")
        ));
        let mut revoked = grant();
        revoked.status = FederationGrantStatus::Revoked;
        assert!(matches!(
            admit(&revoked, &arriving(&home), None, &[], NOW, Duration::minutes(5)),
            Err(MintError::InvalidGrant(m)) if m.contains("revoked")
        ));
    }

    #[test]
    fn terms_are_validated() {
        let terms =
            |scopes: &'static [String], resources: &'static [String]| FederationGrantTerms {
                peer: PEER,
                agents: None,
                principals: None,
                scopes,
                resources,
                constraints: None,
                expires_at: NOW + Duration::days(1),
            };
        let id = FederationGrantId::new(NOW);
        let by = HumanId::new(NOW);
        assert!(
            terms(&[], &[])
                .parse(id, by, NOW, Duration::days(90))
                .is_err()
        );
        let mut t = grant_terms_ok();
        t.expires_at = NOW;
        assert!(t.parse(id, by, NOW, Duration::days(90)).is_err());
        let mut t = grant_terms_ok();
        t.expires_at = NOW + Duration::days(91);
        assert!(t.parse(id, by, NOW, Duration::days(90)).is_err());
        let mut t = grant_terms_ok();
        t.agents = Some("a*b");
        assert!(t.parse(id, by, NOW, Duration::days(90)).is_err());
    }

    fn grant_terms_ok() -> FederationGrantTerms<'static> {
        static SCOPES: std::sync::LazyLock<Vec<String>> =
            std::sync::LazyLock::new(|| vec!["crm.read".into()]);
        static RESOURCES: std::sync::LazyLock<Vec<String>> =
            std::sync::LazyLock::new(|| vec!["https://crm.b.example".into()]);
        FederationGrantTerms {
            peer: PEER,
            agents: None,
            principals: None,
            scopes: &SCOPES,
            resources: &RESOURCES,
            constraints: None,
            expires_at: NOW + Duration::days(1),
        }
    }
}
