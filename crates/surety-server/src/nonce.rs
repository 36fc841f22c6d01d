//! Server-provided DPoP nonces (RFC 9449 §8), stateless so that any node can check a nonce
//! another node issued: `base64url(window ‖ HMAC-SHA256(key, window))`, where `window` is
//! the current lifetime-sized slice of time. A nonce is accepted in its own window and the
//! next. The HMAC key is random, made by the first node and shared through the database;
//! it authenticates nothing but the nonces themselves.

use aws_lc_rs::hmac;
use surety_jose::b64;
use surety_store::Store;
use time::OffsetDateTime;

/// Name of the shared key in the database.
const KEY_NAME: &str = "dpop_nonce_hmac_sha256";

/// Issues and checks DPoP nonces.
#[derive(Debug)]
pub struct NonceIssuer {
    key: hmac::Key,
    lifetime_secs: i64,
}

impl NonceIssuer {
    /// Loads (or creates) the shared key.
    pub async fn load(
        store: &dyn Store,
        lifetime: std::time::Duration,
        now: OffsetDateTime,
    ) -> Result<Self, surety_store::StoreError> {
        let mut candidate = [0u8; 32];
        aws_lc_rs::rand::fill(&mut candidate)
            .map_err(|_| surety_store::StoreError::Config("random generator failed".into()))?;
        let secret = store.server_secret(KEY_NAME, &candidate, now).await?;
        Ok(Self::from_key(&secret, lifetime))
    }

    /// An issuer with an explicit key (tests).
    #[must_use]
    pub fn from_key(key: &[u8], lifetime: std::time::Duration) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            lifetime_secs: i64::try_from(lifetime.as_secs()).unwrap_or(300).max(1),
        }
    }

    fn window(&self, now: OffsetDateTime) -> i64 {
        now.unix_timestamp().div_euclid(self.lifetime_secs)
    }

    fn make(&self, window: i64) -> String {
        let w = window.to_be_bytes();
        let tag = hmac::sign(&self.key, &w);
        let mut raw = w.to_vec();
        raw.extend_from_slice(tag.as_ref());
        b64::encode(&raw)
    }

    /// The nonce to hand out now.
    #[must_use]
    pub fn current(&self, now: OffsetDateTime) -> String {
        self.make(self.window(now))
    }

    /// Whether `nonce` was issued by this deployment in the current or the previous window.
    #[must_use]
    pub fn is_valid(&self, nonce: &str, now: OffsetDateTime) -> bool {
        let Some(raw) = b64::decode(nonce) else {
            return false;
        };
        if raw.len() != 8 + 32 {
            return false;
        }
        let (w, tag) = raw.split_at(8);
        let Ok(w) = <[u8; 8]>::try_from(w) else {
            return false;
        };
        let window = i64::from_be_bytes(w);
        let current = self.window(now);
        (window == current || window == current - 1) && hmac::verify(&self.key, &w, tag).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use time::macros::datetime;

    #[test]
    fn nonces_live_one_to_two_windows_and_are_unforgeable() {
        let issuer = NonceIssuer::from_key(b"k", Duration::from_secs(300));
        let t = datetime!(2026-01-01 00:00:00 UTC);
        let n = issuer.current(t);
        assert!(issuer.is_valid(&n, t));
        assert!(issuer.is_valid(&n, t + time::Duration::seconds(599)));
        assert!(!issuer.is_valid(&n, t + time::Duration::seconds(600)));
        let other = NonceIssuer::from_key(b"other", Duration::from_secs(300));
        assert!(!other.is_valid(&n, t), "another key's nonce");
        assert!(!issuer.is_valid("garbage", t));
        let future = issuer.current(t + time::Duration::seconds(300));
        assert!(
            !issuer.is_valid(&future, t),
            "a nonce from the future window"
        );
    }
}
