//! JOSE for Surety: public and private JWKs with RFC 7638 thumbprints, compact JWS over
//! reviewed primitives (aws-lc-rs), DPoP proofs (RFC 9449) and JWT assertions (RFC 7523).
//!
//! The JWS layer is our own thin framing because the checks Surety must make are
//! protocol-specific (per-kind `typ`, algorithm allow-lists that include the fully-specified
//! `Ed25519` of RFC 9864, an injected clock) and no signature or hash is computed here:
//! aws-lc-rs does every cryptographic operation.

pub mod b64;
mod claims;
mod error;
pub mod jwk;
pub mod jws;
pub mod note;
pub mod rfc7523;
pub mod rfc9068;
pub mod rfc9449;
pub mod seal;
pub mod url;

pub use error::JoseError;
pub use jwk::{KeyAlg, PrivateJwk, PublicJwk};
pub use jws::Alg;

/// Base64url (no padding) SHA-256 of `data`: the form of `ath`, `jkt` and thumbprints.
#[must_use]
pub fn sha256_b64(data: &[u8]) -> String {
    b64::encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data).as_ref())
}

/// `len` random bytes from the system CSPRNG, base64url-encoded.
pub fn random_b64(len: usize) -> Result<String, JoseError> {
    let mut buf = vec![0u8; len];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| JoseError::Crypto("random generator failed"))?;
    Ok(b64::encode(&buf))
}
