//! JWT access tokens (RFC 9068) as Surety issues them: `typ: at+jwt`, signed by an org
//! key named in `kid`, carrying who acts for whom (`sub` = the human, `act` = the agent
//! chain, RFC 8693 §4.1), the key the token is bound to (`cnf.jkt`, RFC 9449 §6.1) and the
//! grant it was minted from.
//!
//! Verification here covers what the token says about itself (RFC 9068 §4): `typ`,
//! signature, `iss`, `exp`, `iat`. Whether it is still *active* — revocation, the states of
//! its grant, agents and keys — needs the database and belongs to the server.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::{Duration, OffsetDateTime};

use crate::error::JoseError;
use crate::jwk::{PrivateJwk, PublicJwk};
use crate::jws;

/// The `typ` of an access token (RFC 9068 §2.1).
pub const TYP: &str = "at+jwt";
/// Longest access token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// An actor (RFC 8693 §4.1): the current one outermost, earlier ones nested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Act {
    /// The acting agent.
    pub sub: String,
    /// The actor before it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Act>>,
}

impl Act {
    /// Builds the nested claim from a chain, current actor first.
    #[must_use]
    pub fn from_chain(chain: &[String]) -> Option<Self> {
        chain.iter().rev().fold(None, |inner, sub| {
            Some(Self {
                sub: sub.clone(),
                act: inner.map(Box::new),
            })
        })
    }

    /// The chain, current actor first.
    #[must_use]
    pub fn chain(&self) -> Vec<&str> {
        let mut out = vec![self.sub.as_str()];
        let mut next = self.act.as_deref();
        while let Some(a) = next {
            out.push(a.sub.as_str());
            next = a.act.as_deref();
        }
        out
    }
}

/// Confirmation (RFC 7800 §3.1) of the key a token is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cnf {
    /// RFC 7638 thumbprint of the DPoP key (RFC 9449 §6.1).
    pub jkt: String,
}

/// A token this one was derived from (a sub-agent's token names its parent's): revoking
/// the parent, or the parent's key, ends the child too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Derivation {
    /// The parent token's `jti`.
    pub jti: String,
    /// The parent token's `cnf.jkt`.
    pub jkt: String,
}

/// The claims of a Surety access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessTokenClaims {
    /// The issuing org.
    pub iss: String,
    /// The human principal.
    pub sub: String,
    /// The one resource server it is for.
    pub aud: String,
    /// The agent that holds it (= `act.sub`).
    pub client_id: String,
    /// Issued at (seconds).
    pub iat: i64,
    /// Expires at (seconds).
    pub exp: i64,
    /// Unique id.
    pub jti: String,
    /// Space-separated scopes.
    pub scope: String,
    /// The agent chain.
    pub act: Act,
    /// The key it is bound to.
    pub cnf: Cnf,
    /// The grant it was minted from.
    pub grant_id: String,
    /// The tokens it derives from, nearest first (sub-agent tokens only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub derived_from: Vec<Derivation>,
    /// A one-time approval token's approved action (RFC 9396 §9): such a token carries no
    /// scope and is evidence for exactly this action, once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<Value>,
    /// A one-time approval token's approval (`apr_…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_id: Option<String>,
}

/// What a token must satisfy to be believed at all.
#[derive(Debug, Clone, Copy)]
pub struct TokenPolicy<'a> {
    /// The expected `iss`.
    pub issuer: &'a str,
    /// Tolerated clock skew on `iat`.
    pub max_skew: Duration,
}

/// A decoded token whose signature is not checked yet.
#[derive(Debug)]
pub struct AccessToken<'a> {
    jws: jws::Jws<'a>,
}

/// Decodes an access token: structure, accepted `alg`, `typ` = `at+jwt` (RFC 9068 §4 step
/// 2: any other `typ` is another kind of JWT and is refused), and a `kid`.
pub fn decode(token: &str) -> Result<AccessToken<'_>, JoseError> {
    let jws = jws::decode(token, MAX_TOKEN_LEN)?;
    let typ = jws.header.typ.as_deref().ok_or(JoseError::Missing("typ"))?;
    if !(typ.eq_ignore_ascii_case(TYP) || typ.eq_ignore_ascii_case("application/at+jwt")) {
        return Err(JoseError::claim(
            "typ",
            format!("`{typ}` is not an access token (expected `{TYP}`)"),
        ));
    }
    if jws.header.kid.is_none() {
        return Err(JoseError::Missing("kid"));
    }
    Ok(AccessToken { jws })
}

impl AccessToken<'_> {
    /// The signing key's id.
    #[must_use]
    pub fn kid(&self) -> &str {
        self.jws.header.kid.as_deref().unwrap_or_default()
    }

    /// Checks the signature with `key`, then `iss`, `exp` and `iat` (RFC 9068 §4).
    pub fn verify(
        &self,
        key: &PublicJwk,
        policy: &TokenPolicy<'_>,
        now: OffsetDateTime,
    ) -> Result<AccessTokenClaims, JoseError> {
        self.jws.verify(key)?;
        let claims: AccessTokenClaims = self.jws.claims()?;
        if claims.iss != policy.issuer {
            return Err(JoseError::claim(
                "iss",
                "was not issued by this authorization server",
            ));
        }
        if now.unix_timestamp() >= claims.exp {
            return Err(JoseError::claim("exp", "the token has expired"));
        }
        if claims.iat > (now + policy.max_skew).unix_timestamp() {
            return Err(JoseError::claim("iat", "is in the future"));
        }
        if claims.act.sub != claims.client_id {
            return Err(JoseError::claim(
                "act",
                "the current actor must be the client",
            ));
        }
        Ok(claims)
    }
}

/// Signs `claims` with `key`, naming it `kid`.
pub fn sign(claims: &AccessTokenClaims, key: &PrivateJwk, kid: &str) -> Result<String, JoseError> {
    let mut header = Map::new();
    header.insert("typ".into(), Value::String(TYP.into()));
    header.insert("kid".into(), Value::String(kid.into()));
    let body =
        serde_json::to_value(claims).map_err(|_| JoseError::Crypto("claims encoding failed"))?;
    jws::sign(header, &body, key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwk::KeyAlg;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-03-01 12:00 UTC);
    const ISS: &str = "https://surety.example";

    fn claims() -> AccessTokenClaims {
        AccessTokenClaims {
            iss: ISS.into(),
            sub: "hum_1".into(),
            aud: "https://crm.example".into(),
            client_id: "agt_b".into(),
            iat: NOW.unix_timestamp(),
            exp: NOW.unix_timestamp() + 300,
            jti: "j1".into(),
            scope: "crm.read".into(),
            act: Act::from_chain(&["agt_b".into(), "agt_a".into()]).unwrap(),
            cnf: Cnf { jkt: "t".into() },
            grant_id: "grt_1".into(),
            derived_from: vec![],
            authorization_details: None,
            approval_id: None,
        }
    }

    fn policy() -> TokenPolicy<'static> {
        TokenPolicy {
            issuer: ISS,
            max_skew: Duration::seconds(30),
        }
    }

    #[test]
    fn rfc8693_s4_1_act_nests_prior_actors() {
        let act = claims().act;
        assert_eq!(
            serde_json::to_value(&act).unwrap(),
            serde_json::json!({"sub": "agt_b", "act": {"sub": "agt_a"}})
        );
        assert_eq!(act.chain(), vec!["agt_b", "agt_a"]);
    }

    #[test]
    fn rfc9068_round_trip_for_both_algorithms() {
        for alg in [KeyAlg::EdDSA, KeyAlg::ES256] {
            let key = PrivateJwk::generate(alg).unwrap();
            let token = sign(&claims(), &key, "k1").unwrap();
            let decoded = decode(&token).unwrap();
            assert_eq!(decoded.kid(), "k1");
            assert_eq!(
                decoded.verify(key.public(), &policy(), NOW).unwrap(),
                claims()
            );
        }
    }

    #[test]
    fn rfc9068_s4_every_self_check_refuses() {
        let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
        let other = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
        let token = sign(&claims(), &key, "k1").unwrap();
        // Wrong key.
        assert_eq!(
            decode(&token)
                .unwrap()
                .verify(other.public(), &policy(), NOW),
            Err(JoseError::BadSignature)
        );
        // Expired, exactly at `exp`.
        let at_exp = NOW + Duration::seconds(300);
        assert!(
            decode(&token)
                .unwrap()
                .verify(key.public(), &policy(), at_exp)
                .is_err()
        );
        // Another issuer.
        let p = TokenPolicy {
            issuer: "https://other.example",
            ..policy()
        };
        assert!(
            decode(&token)
                .unwrap()
                .verify(key.public(), &p, NOW)
                .is_err()
        );
        // `iat` in the future.
        let early = NOW - Duration::minutes(2);
        assert!(
            decode(&token)
                .unwrap()
                .verify(key.public(), &policy(), early)
                .is_err()
        );
        // Actor that is not the client.
        let mut c = claims();
        c.client_id = "agt_a".into();
        let t = sign(&c, &key, "k1").unwrap();
        assert!(
            decode(&t)
                .unwrap()
                .verify(key.public(), &policy(), NOW)
                .is_err()
        );
    }

    #[test]
    fn rfc8725_s3_11_other_jwt_kinds_are_not_access_tokens() {
        let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
        let body = serde_json::to_value(claims()).unwrap();
        for typ in [Some("dpop+jwt"), Some("JWT"), None] {
            let mut h = Map::new();
            if let Some(t) = typ {
                h.insert("typ".into(), Value::String(t.into()));
            }
            h.insert("kid".into(), Value::String("k1".into()));
            let t = jws::sign(h, &body, &key).unwrap();
            assert!(decode(&t).is_err(), "{typ:?}");
        }
        let mut h = Map::new();
        h.insert("typ".into(), Value::String(TYP.into()));
        let no_kid = jws::sign(h, &body, &key).unwrap();
        assert_eq!(decode(&no_kid).err(), Some(JoseError::Missing("kid")));
    }
}
