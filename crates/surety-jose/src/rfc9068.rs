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
/// The `typ` of the JWT authorization grant an organisation issues for a federation peer
/// (OAuth identity and authorization chaining across domains, §2.3): the same claims as an
/// access token, but explicitly typed so that neither can stand in for the other (RFC 8725
/// §3.11).
pub const GRANT_TYP: &str = "authz-grant+jwt";
/// Longest access token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// An actor (RFC 8693 §4.1): the current one outermost, earlier ones nested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Act {
    /// The acting agent.
    pub sub: String,
    /// The organisation that vouches for it, when it is not the token's issuer (an agent of
    /// a federation peer, RFC 8693 §4.1 allows claims other than `sub` in `act`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The actor before it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<Box<Act>>,
}

impl Act {
    /// Builds the nested claim from a chain, current actor first.
    #[must_use]
    pub fn from_chain(chain: &[String]) -> Option<Self> {
        Self::from_issued_chain(chain, None)
    }

    /// Builds the nested claim from a chain of agents all vouched for by `iss` (a peer).
    #[must_use]
    pub fn from_issued_chain(chain: &[String], iss: Option<&str>) -> Option<Self> {
        chain.iter().rev().fold(None, |inner, sub| {
            Some(Self {
                sub: sub.clone(),
                iss: iss.map(str::to_owned),
                act: inner.map(Box::new),
            })
        })
    }

    /// The `iss` of every actor of the chain, outermost first.
    #[must_use]
    pub fn issuers(&self) -> Vec<Option<&str>> {
        let mut out = vec![self.iss.as_deref()];
        let mut next = self.act.as_deref();
        while let Some(a) = next {
            out.push(a.iss.as_deref());
            next = a.act.as_deref();
        }
        out
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

/// A subject named by its issuer (RFC 9493 §3.2.6, the `iss_sub` format), carried as the
/// `sub_id` claim (RFC 9493 §4.1) of a token whose `sub` another organisation assigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectId {
    /// Always `iss_sub`.
    pub format: String,
    /// The organisation that assigned `sub`.
    pub iss: String,
    /// The subject, as that organisation names it.
    pub sub: String,
}

impl SubjectId {
    /// The `iss_sub` identifier of `sub` at `iss`.
    #[must_use]
    pub fn iss_sub(iss: &str, sub: &str) -> Self {
        Self {
            format: "iss_sub".into(),
            iss: iss.into(),
            sub: sub.into(),
        }
    }
}

/// The claims of a Surety access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessTokenClaims {
    /// The issuing org.
    pub iss: String,
    /// The human principal.
    pub sub: String,
    /// The principal as its own organisation names it, when that is a federation peer
    /// (tokens minted from a peer's authorization grant only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_id: Option<SubjectId>,
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
    /// An authorization grant for a federation peer: the one resource at the peer it is
    /// for, when the home grant names one (as in the identity assertion authorization grant
    /// draft's `resource` claim).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The limits of the home grant, on an authorization grant for a peer and on the peer's
    /// token minted from it: the peer applies them as well as its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<Value>,
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
    decode_typed(token, TYP)
}

/// Decodes an identity-chaining authorization grant: as [`decode`], but `typ` must be
/// [`GRANT_TYP`] — an access token is not a grant, nor a grant an access token.
pub fn decode_authorization_grant(token: &str) -> Result<AccessToken<'_>, JoseError> {
    decode_typed(token, GRANT_TYP)
}

fn decode_typed<'a>(token: &'a str, expected: &str) -> Result<AccessToken<'a>, JoseError> {
    let jws = jws::decode(token, MAX_TOKEN_LEN)?;
    let typ = jws.header.typ.as_deref().ok_or(JoseError::Missing("typ"))?;
    let bare = typ
        .get(..12)
        .filter(|p| p.eq_ignore_ascii_case("application/"))
        .map_or(typ, |_| &typ[12..]);
    if !bare.eq_ignore_ascii_case(expected) {
        return Err(JoseError::claim(
            "typ",
            format!("`{typ}` is not the expected kind of JWT (`{expected}`)"),
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

    /// The claims, **unverified**: only to find which issuer and key to verify with, or to
    /// route the token to the verifier of its kind.
    pub fn unverified_claims(&self) -> Result<AccessTokenClaims, JoseError> {
        self.jws.claims()
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
    sign_typed(claims, key, kid, TYP)
}

/// Signs `claims` as an identity-chaining authorization grant ([`GRANT_TYP`]).
pub fn sign_authorization_grant(
    claims: &AccessTokenClaims,
    key: &PrivateJwk,
    kid: &str,
) -> Result<String, JoseError> {
    sign_typed(claims, key, kid, GRANT_TYP)
}

fn sign_typed(
    claims: &AccessTokenClaims,
    key: &PrivateJwk,
    kid: &str,
    typ: &str,
) -> Result<String, JoseError> {
    let mut header = Map::new();
    header.insert("typ".into(), Value::String(typ.into()));
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
            sub_id: None,
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
            resource: None,
            constraints: None,
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
