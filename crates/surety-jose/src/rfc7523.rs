//! JWT assertions (RFC 7523 §3): as an authorization grant (`jwt-bearer`, §2.1) and for
//! client authentication (`private_key_jwt`, §2.2). Decoding reads the claims needed to find
//! the signer's key; [`Assertion::verify`] then checks signature and every claim. Single use
//! of `jti` needs shared state and is the caller's, via [`VerifiedAssertion::replay_key`].

use serde_json::{Map, Value, json};
use time::{Duration, OffsetDateTime};

use crate::claims::{self, Claims};
use crate::error::JoseError;
use crate::jwk::{PrivateJwk, PublicJwk};
use crate::{jws, random_b64, sha256_b64};

/// Longest assertion accepted, in bytes.
pub const MAX_ASSERTION_LEN: usize = 8 * 1024;

/// The only `typ` values an assertion may carry (RFC 7519 §5.1; the `application/` prefix
/// may be omitted, RFC 7515 §4.1.9). Anything else — a DPoP proof, an access token — is
/// another kind of JWT and is refused (RFC 8725 §3.11).
const ASSERTION_TYPES: [&str; 2] = ["jwt", "application/jwt"];

/// What a valid assertion must look like.
#[derive(Debug, Clone, Copy)]
pub struct AssertionPolicy<'a> {
    /// Accepted `aud` values (the token endpoint URL and the issuer); one must appear.
    pub audiences: &'a [&'a str],
    /// Longest lifetime (`exp` − `iat`, and `exp` − now) accepted.
    pub max_lifetime: Duration,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub max_skew: Duration,
}

/// A decoded assertion whose signature and claims are not checked yet.
#[derive(Debug)]
pub struct Assertion<'a> {
    jws: jws::Jws<'a>,
    claims: Claims,
}

/// An assertion that passed every check except `jti` single use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// `jti`.
    pub jti: String,
    /// `exp`.
    pub expires_at: OffsetDateTime,
    /// Remember this to refuse a second use…
    pub replay_key: String,
    /// …until this instant, after which `exp` alone refuses it.
    pub replay_until: OffsetDateTime,
}

/// Decodes an assertion: structure, accepted `alg`, and a `typ` that is not another kind
/// of JWT.
pub fn decode(token: &str) -> Result<Assertion<'_>, JoseError> {
    let jws = jws::decode(token, MAX_ASSERTION_LEN)?;
    if let Some(typ) = jws.header.typ.as_deref()
        && !ASSERTION_TYPES.iter().any(|t| typ.eq_ignore_ascii_case(t))
    {
        return Err(JoseError::claim(
            "typ",
            format!("`{typ}` is not an assertion"),
        ));
    }
    let claims = jws.claims()?;
    Ok(Assertion { jws, claims })
}

impl Assertion<'_> {
    /// `iss` (unverified): names the signer.
    pub fn issuer(&self) -> Result<&str, JoseError> {
        claims::required_string(&self.claims, "iss")
    }

    /// `sub` (unverified).
    pub fn subject(&self) -> Result<&str, JoseError> {
        claims::required_string(&self.claims, "sub")
    }

    /// The header `kid`, if any (unverified).
    #[must_use]
    pub fn kid(&self) -> Option<&str> {
        self.jws.header.kid.as_deref()
    }

    /// Checks the signature with `key` and the claims of RFC 7523 §3 against `policy`.
    pub fn verify(
        &self,
        key: &PublicJwk,
        policy: &AssertionPolicy<'_>,
        now: OffsetDateTime,
    ) -> Result<VerifiedAssertion, JoseError> {
        let c = &self.claims;
        // 1. `iss` identifies the issuer of the JWT.
        let issuer = self.issuer()?;
        // 2. `sub` identifies the principal (grant) or the client (client authentication).
        let subject = self.subject()?;
        // 3. `aud` identifies this authorization server (token endpoint URL or issuer).
        let aud = claims::audiences(c)?;
        if !aud.iter().any(|a| policy.audiences.contains(a)) {
            return Err(JoseError::claim(
                "aud",
                "does not name this authorization server",
            ));
        }
        // 4. `exp` is required and not passed.
        let exp = claims::date(c, "exp")?.ok_or(JoseError::Missing("exp"))?;
        // INVARIANT: arithmetic is done on `now`, never on a time taken from the token: an
        // `exp` at the end of the representable range must be refused, not overflow.
        if now - policy.max_skew >= exp {
            return Err(JoseError::claim("exp", "the assertion has expired"));
        }
        // 5. `nbf`, if present, is not in the future.
        if let Some(nbf) = claims::date(c, "nbf")?
            && nbf > now + policy.max_skew
        {
            return Err(JoseError::claim("nbf", "the assertion is not valid yet"));
        }
        // 6. `iat`, if present, is not in the future; the lifetime is bounded either way so
        //    that an assertion cannot be minted for later use.
        let iat = claims::date(c, "iat")?;
        if let Some(iat) = iat {
            if iat > now + policy.max_skew {
                return Err(JoseError::claim("iat", "is in the future"));
            }
            if exp - iat > policy.max_lifetime {
                return Err(JoseError::claim(
                    "exp",
                    format!(
                        "lifetime exceeds {} seconds",
                        policy.max_lifetime.whole_seconds()
                    ),
                ));
            }
        }
        if exp - now > policy.max_lifetime + policy.max_skew {
            return Err(JoseError::claim(
                "exp",
                format!(
                    "is more than {} seconds away",
                    policy.max_lifetime.whole_seconds()
                ),
            ));
        }
        // 7. `jti` is required: the caller refuses a second use.
        let jti = claims::jti(c)?;
        // 8. The signature verifies with the signer's registered key.
        self.jws.verify(key)?;
        Ok(VerifiedAssertion {
            issuer: issuer.to_owned(),
            subject: subject.to_owned(),
            jti: jti.to_owned(),
            expires_at: exp,
            replay_key: sha256_b64(format!("assertion\0{issuer}\0{jti}").as_bytes()),
            replay_until: exp + policy.max_skew,
        })
    }
}

/// Creates an assertion signed by `key`, with `kid` = the key's thumbprint.
pub fn create(
    key: &PrivateJwk,
    issuer: &str,
    subject: &str,
    audience: &str,
    lifetime: Duration,
    now: OffsetDateTime,
) -> Result<String, JoseError> {
    let mut header = Map::new();
    header.insert("typ".into(), Value::String("JWT".into()));
    header.insert("kid".into(), Value::String(key.thumbprint()));
    let c = json!({
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "iat": claims::numeric(now),
        "exp": claims::numeric(now + lifetime),
        "jti": random_b64(16)?,
    });
    jws::sign(header, &c, key)
}

#[cfg(test)]
mod tests;
