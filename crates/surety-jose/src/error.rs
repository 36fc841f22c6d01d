use crate::jws::Alg;

/// Why a key, JWS, DPoP proof or assertion was rejected. Messages are safe to show to the
/// caller: they name what is wrong, never key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoseError {
    /// A JWK is malformed; `field` names the member (`x`, `crv`…).
    #[error("`{field}`: {reason}")]
    InvalidJwk {
        /// The offending JWK member.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The compact serialization is malformed.
    #[error("malformed JWS: {0}")]
    Malformed(&'static str),
    /// The `alg` is not one this verifier accepts (including `none` and HMAC).
    #[error("algorithm `{0}` is not accepted")]
    AlgNotAccepted(String),
    /// The `alg` does not fit the key.
    #[error("algorithm `{alg}` does not match the key type")]
    AlgKeyMismatch {
        /// The algorithm in the header.
        alg: Alg,
    },
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// A header or claim has the wrong value.
    #[error("`{name}`: {reason}")]
    BadClaim {
        /// Header parameter or claim name.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A required header parameter or claim is absent.
    #[error("`{0}` is required")]
    Missing(&'static str),
    /// The server requires a (fresh) DPoP nonce (RFC 9449 §8).
    #[error("a fresh DPoP nonce is required")]
    UseNonce,
    /// A key or random operation failed inside the crypto library.
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
}

impl JoseError {
    pub(crate) fn claim(name: &'static str, reason: impl Into<String>) -> Self {
        Self::BadClaim {
            name,
            reason: reason.into(),
        }
    }

    pub(crate) fn jwk(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidJwk {
            field,
            reason: reason.into(),
        }
    }
}
