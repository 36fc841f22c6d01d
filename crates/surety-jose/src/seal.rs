//! Sealing private keys at rest: AES-256-GCM under a key-encryption key (KEK) that never
//! enters the database. The sealed form is `nonce (12 bytes) ‖ ciphertext ‖ tag`; the
//! associated data binds it to the key's id, so a sealed key cannot be swapped under
//! another `kid`.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::error::JoseError;

/// Length of a key-encryption key, in bytes.
pub const KEK_LEN: usize = 32;

/// A key-encryption key.
pub struct Kek(LessSafeKey);

impl std::fmt::Debug for Kek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kek(..)")
    }
}

impl Kek {
    /// A KEK from its 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, JoseError> {
        if bytes.len() != KEK_LEN {
            return Err(JoseError::Crypto("a key-encryption key is 32 bytes"));
        }
        let key = UnboundKey::new(&AES_256_GCM, bytes)
            .map_err(|_| JoseError::Crypto("invalid key-encryption key"))?;
        Ok(Self(LessSafeKey::new(key)))
    }

    /// A fresh random KEK's bytes.
    pub fn generate() -> Result<[u8; KEK_LEN], JoseError> {
        let mut bytes = [0u8; KEK_LEN];
        aws_lc_rs::rand::fill(&mut bytes)
            .map_err(|_| JoseError::Crypto("random generator failed"))?;
        Ok(bytes)
    }

    /// Seals `plaintext` for the key named `kid`.
    pub fn seal(&self, kid: &str, plaintext: &[u8]) -> Result<Vec<u8>, JoseError> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce)
            .map_err(|_| JoseError::Crypto("random generator failed"))?;
        let mut buf = plaintext.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(kid.as_bytes()),
                &mut buf,
            )
            .map_err(|_| JoseError::Crypto("sealing failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Opens what [`Kek::seal`] sealed for `kid`; fails if the KEK, the `kid` or any byte
    /// differs.
    pub fn open(&self, kid: &str, sealed: &[u8]) -> Result<Vec<u8>, JoseError> {
        if sealed.len() < NONCE_LEN {
            return Err(JoseError::Crypto("sealed key is truncated"));
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| JoseError::Crypto("sealed key is truncated"))?;
        let mut buf = body.to_vec();
        let plain = self
            .0
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut buf)
            .map_err(|_| {
                JoseError::Crypto("the key-encryption key does not open this sealed key")
            })?;
        Ok(plain.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_only_with_the_same_kek_and_kid() {
        let kek = Kek::from_bytes(&Kek::generate().unwrap()).unwrap();
        let sealed = kek.seal("kid-1", b"secret").unwrap();
        assert_eq!(kek.open("kid-1", &sealed).unwrap(), b"secret");
        assert!(kek.open("kid-2", &sealed).is_err(), "bound to its kid");
        let other = Kek::from_bytes(&Kek::generate().unwrap()).unwrap();
        assert!(other.open("kid-1", &sealed).is_err(), "another KEK");
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(kek.open("kid-1", &flipped).is_err(), "tampered");
        assert!(kek.open("kid-1", &sealed[..5]).is_err(), "truncated");
        assert!(Kek::from_bytes(&[0u8; 16]).is_err());
    }
}
