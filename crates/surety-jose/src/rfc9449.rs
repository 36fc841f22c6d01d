//! OAuth 2.0 Demonstrating Proof of Possession (DPoP), RFC 9449: creating proofs (§4.2) and
//! checking them (§4.3). The `jti` replay check (§11.1) needs shared state and is the
//! caller's: [`VerifiedProof::replay_key`] is what to remember until
//! [`VerifiedProof::replay_until`].

use serde_json::{Map, Value, json};
use time::{Duration, OffsetDateTime};

use crate::claims::{self, Claims};
use crate::error::JoseError;
use crate::jwk::{PrivateJwk, PublicJwk};
use crate::{jws, random_b64, sha256_b64, url::normalize_htu};

/// The `typ` of a DPoP proof (§4.2).
pub const TYP: &str = "dpop+jwt";
/// Longest proof accepted, in bytes.
pub const MAX_PROOF_LEN: usize = 8 * 1024;

/// What the request carrying the proof looks like.
#[derive(Debug, Clone, Copy)]
pub struct ProofContext<'a> {
    /// HTTP method of the request (`POST`).
    pub method: &'a str,
    /// The request URI as the server's public address sees it (query is ignored).
    pub uri: &'a str,
    /// The access token presented with the proof, at a protected resource (§7.1).
    pub access_token: Option<&'a str>,
    /// The `cnf.jkt` the access token is bound to, at a protected resource (§6.1).
    pub bound_jkt: Option<&'a str>,
}

/// How fresh a proof must be.
#[derive(Debug, Clone, Copy)]
pub struct ProofPolicy {
    /// Oldest `iat` accepted, relative to now.
    pub max_age: Duration,
    /// Furthest into the future an `iat` may be (clock skew).
    pub max_skew: Duration,
}

impl Default for ProofPolicy {
    fn default() -> Self {
        Self {
            max_age: Duration::seconds(60),
            max_skew: Duration::seconds(5),
        }
    }
}

/// Whether the server demands a nonce, and how it recognises a valid one.
#[derive(Clone, Copy)]
pub enum NonceCheck<'a> {
    /// No nonce was provided by the server; any `nonce` claim is ignored.
    NotRequired,
    /// The proof must carry a nonce that this function accepts (§8).
    Required(&'a (dyn Fn(&str) -> bool + Sync)),
}

impl std::fmt::Debug for NonceCheck<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotRequired => "NotRequired",
            Self::Required(_) => "Required",
        })
    }
}

/// A proof that passed every check of §4.3 except `jti` replay.
#[derive(Debug, Clone)]
pub struct VerifiedProof {
    /// The proof's public key.
    pub key: PublicJwk,
    /// RFC 7638 thumbprint of that key: the `jkt` a token gets bound to.
    pub jkt: String,
    /// The proof's `jti`.
    pub jti: String,
    /// The proof's `iat`.
    pub iat: OffsetDateTime,
    /// Remember this, keyed per key, to detect replay.
    pub replay_key: String,
    /// …until this instant, after which `iat` alone rejects the proof.
    pub replay_until: OffsetDateTime,
}

/// Checks a DPoP proof, following RFC 9449 §4.3 step by step. `headers` are all values of
/// the `DPoP` request header field.
pub fn validate(
    headers: &[&str],
    ctx: &ProofContext<'_>,
    policy: &ProofPolicy,
    nonce: NonceCheck<'_>,
    now: OffsetDateTime,
) -> Result<VerifiedProof, JoseError> {
    // 1. There is not more than one DPoP HTTP request header field.
    let proof = match headers {
        [one] => *one,
        [] => return Err(JoseError::Missing("DPoP")),
        _ => {
            return Err(JoseError::claim(
                "DPoP",
                "exactly one DPoP header is allowed",
            ));
        }
    };
    // 2. The DPoP header field value is a single well-formed JWT.
    let jws = jws::decode(proof, MAX_PROOF_LEN)?;
    let c: Claims = jws.claims()?;
    // 3. All required claims are in the JWT: header `typ`, `alg`, `jwk`; `jti`, `htm`,
    //    `htu`, `iat`.
    let typ = jws.header.typ.as_deref().ok_or(JoseError::Missing("typ"))?;
    let jwk = jws.header.jwk.as_ref().ok_or(JoseError::Missing("jwk"))?;
    let jti = claims::jti(&c)?;
    let htm = claims::required_string(&c, "htm")?;
    let htu = claims::required_string(&c, "htu")?;
    let iat = claims::date(&c, "iat")?.ok_or(JoseError::Missing("iat"))?;
    // 4. The `typ` JOSE header parameter has the value `dpop+jwt`.
    if typ != TYP {
        return Err(JoseError::claim("typ", format!("must be `{TYP}`")));
    }
    // 5. The `alg` is asymmetric, not `none`, and supported: enforced by `jws::decode`'s
    //    allow-list; it must also fit the key (checked by `verify` in step 6).
    // 7. The `jwk` does not contain a private key (checked first so that a private key is
    //    never used even to verify).
    let key = PublicJwk::from_json(jwk).map_err(|e| match e {
        JoseError::InvalidJwk { field, reason } => {
            JoseError::claim("jwk", format!("`{field}`: {reason}"))
        }
        other => other,
    })?;
    // 6. The signature verifies with the public key in the `jwk` header.
    jws.verify(&key)?;
    // 8. `htm` matches the request method.
    if htm != ctx.method {
        return Err(JoseError::claim(
            "htm",
            format!("does not match the request method `{}`", ctx.method),
        ));
    }
    // 9. `htu` matches the request URI, ignoring query and fragment.
    if normalize_htu(htu)? != normalize_htu(ctx.uri)? {
        return Err(JoseError::claim("htu", "does not match the request URI"));
    }
    // 10. If the server provided a nonce, the `nonce` claim matches it.
    if let NonceCheck::Required(is_valid) = nonce {
        match claims::string(&c, "nonce")? {
            Some(n) if is_valid(n) => {}
            _ => return Err(JoseError::UseNonce),
        }
    }
    // 11. The creation time is within the acceptable window.
    if iat > now + policy.max_skew {
        return Err(JoseError::claim("iat", "is in the future"));
    }
    if iat < now - policy.max_age {
        return Err(JoseError::claim("iat", "is too old"));
    }
    let jkt = key.thumbprint();
    // 12. With an access token: `ath` is the hash of that token, and the proof's key is the
    //     one the token is bound to.
    if let Some(token) = ctx.access_token {
        let ath = claims::string(&c, "ath")?.ok_or(JoseError::Missing("ath"))?;
        if ath != sha256_b64(token.as_bytes()) {
            return Err(JoseError::claim("ath", "does not match the access token"));
        }
    }
    if let Some(bound) = ctx.bound_jkt
        && bound != jkt
    {
        return Err(JoseError::claim(
            "jwk",
            "is not the key the access token is bound to",
        ));
    }
    Ok(VerifiedProof {
        replay_key: sha256_b64(format!("dpop\0{jkt}\0{jti}").as_bytes()),
        replay_until: iat.max(now) + policy.max_age + policy.max_skew,
        key,
        jkt,
        jti: jti.to_owned(),
        iat,
    })
}

/// Creates a proof for `method` on `uri` (§4.2), with `ath` when presenting
/// `access_token` and the server's `nonce` when it asked for one.
pub fn create(
    key: &PrivateJwk,
    method: &str,
    uri: &str,
    access_token: Option<&str>,
    nonce: Option<&str>,
    now: OffsetDateTime,
) -> Result<String, JoseError> {
    let mut header = Map::new();
    header.insert("typ".into(), Value::String(TYP.into()));
    header.insert("jwk".into(), key.public().to_json());
    let mut c = json!({
        "jti": random_b64(16)?,
        "htm": method,
        "htu": uri,
        "iat": claims::numeric(now),
    });
    if let Some(token) = access_token {
        c["ath"] = Value::String(sha256_b64(token.as_bytes()));
    }
    if let Some(nonce) = nonce {
        c["nonce"] = Value::String(nonce.into());
    }
    jws::sign(header, &c, key)
}

#[cfg(test)]
mod tests;
