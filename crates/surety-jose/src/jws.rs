//! Compact JWS (RFC 7515 §7.1) with an allow-list of asymmetric algorithms. Decoding checks
//! structure and the header; verification is a separate, explicit step against a key the
//! caller chose — never a key named by the token itself (`jku`, `x5u` are ignored).

use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::b64;
use crate::error::JoseError;
use crate::jwk::{PrivateJwk, PublicJwk};

/// The signature algorithms Surety accepts. `none`, HMAC and RSA are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    /// Ed25519 under the polymorphic RFC 8037 name.
    EdDSA,
    /// Ed25519 under its fully-specified RFC 9864 name.
    Ed25519,
    /// ECDSA P-256 SHA-256.
    ES256,
}

impl Alg {
    /// Every accepted algorithm, as advertised in metadata.
    pub const ALL: [Alg; 3] = [Alg::EdDSA, Alg::Ed25519, Alg::ES256];

    /// The registered name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::Ed25519 => "Ed25519",
            Self::ES256 => "ES256",
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Alg {
    type Err = JoseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "EdDSA" => Ok(Self::EdDSA),
            "Ed25519" => Ok(Self::Ed25519),
            "ES256" => Ok(Self::ES256),
            other => Err(JoseError::AlgNotAccepted(other.chars().take(32).collect())),
        }
    }
}

/// The protected header of a decoded JWS.
#[derive(Debug, Clone)]
pub struct Header {
    /// Accepted algorithm.
    pub alg: Alg,
    /// `typ`, if present.
    pub typ: Option<String>,
    /// `kid`, if present.
    pub kid: Option<String>,
    /// `jwk`, if present (as sent; validate with [`PublicJwk::from_json`]).
    pub jwk: Option<Value>,
}

/// A structurally valid compact JWS whose signature has not been checked yet.
#[derive(Debug)]
pub struct Jws<'a> {
    /// The protected header.
    pub header: Header,
    signing_input: &'a str,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

fn optional_string(
    obj: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, JoseError> {
    match obj.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JoseError::claim(name, "must be a string")),
    }
}

/// Decodes a compact JWS of at most `max_len` bytes.
pub fn decode(token: &str, max_len: usize) -> Result<Jws<'_>, JoseError> {
    if token.len() > max_len {
        return Err(JoseError::Malformed("too long"));
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JoseError::Malformed("expected three dot-separated parts"));
    };
    let header_bytes = b64::decode(h).ok_or(JoseError::Malformed("header is not base64url"))?;
    let header: Map<String, Value> = serde_json::from_slice(&header_bytes)
        .map_err(|_| JoseError::Malformed("header is not a JSON object"))?;
    let alg: Alg = match header.get("alg") {
        Some(Value::String(alg)) => alg.parse()?,
        Some(_) => return Err(JoseError::claim("alg", "must be a string")),
        None => return Err(JoseError::Missing("alg")),
    };
    // RFC 7515 §4.1.11: we understand no extensions, so any `crit` makes the JWS invalid.
    if header.contains_key("crit") {
        return Err(JoseError::claim(
            "crit",
            "no critical extensions are supported",
        ));
    }
    let jwk = match header.get("jwk") {
        None => None,
        Some(v @ Value::Object(_)) => Some(v.clone()),
        Some(_) => return Err(JoseError::claim("jwk", "must be a JSON object")),
    };
    let header = Header {
        alg,
        typ: optional_string(&header, "typ")?,
        kid: optional_string(&header, "kid")?,
        jwk,
    };
    let payload = b64::decode(p).ok_or(JoseError::Malformed("payload is not base64url"))?;
    let signature = b64::decode(s).ok_or(JoseError::Malformed("signature is not base64url"))?;
    let signing_input = &token[..h.len() + 1 + p.len()];
    Ok(Jws {
        header,
        signing_input,
        payload,
        signature,
    })
}

impl Jws<'_> {
    /// Verifies the signature with `key`; the header's `alg` must fit the key.
    pub fn verify(&self, key: &PublicJwk) -> Result<(), JoseError> {
        key.verify(
            self.header.alg,
            self.signing_input.as_bytes(),
            &self.signature,
        )
    }

    /// The payload parsed as JSON claims. Before [`Jws::verify`] succeeds, use the result
    /// only to find the key to verify with.
    pub fn claims<T: DeserializeOwned>(&self) -> Result<T, JoseError> {
        serde_json::from_slice(&self.payload)
            .map_err(|_| JoseError::Malformed("payload is not a JSON object of the expected shape"))
    }
}

/// Signs `claims` with `key`. `header` gives extra header parameters (`typ`, `kid`, `jwk`);
/// `alg` is always the key's own.
pub fn sign(
    header: Map<String, Value>,
    claims: &Value,
    key: &PrivateJwk,
) -> Result<String, JoseError> {
    let mut header = header;
    header.insert("alg".into(), Value::String(key.jws_alg().as_str().into()));
    let h = b64::encode(Value::Object(header).to_string().as_bytes());
    let p = b64::encode(claims.to_string().as_bytes());
    let input = format!("{h}.{p}");
    let signature = key.sign(input.as_bytes())?;
    Ok(format!("{input}.{}", b64::encode(&signature)))
}

/// Signs `payload` as a JWS with a detached payload (RFC 7515 Appendix F): the protected
/// header and the signature, both base64url. `alg` is the key's own.
pub fn sign_detached(
    header: Map<String, Value>,
    payload: &[u8],
    key: &PrivateJwk,
) -> Result<(String, String), JoseError> {
    let mut header = header;
    header.insert("alg".into(), Value::String(key.jws_alg().as_str().into()));
    let h = b64::encode(Value::Object(header).to_string().as_bytes());
    let input = format!("{h}.{}", b64::encode(payload));
    let signature = key.sign(input.as_bytes())?;
    Ok((h, b64::encode(&signature)))
}

/// Verifies a JWS with a detached `payload` (RFC 7515 Appendix F) with `key`; returns its
/// protected header.
pub fn verify_detached(
    protected: &str,
    payload: &[u8],
    signature: &str,
    key: &PublicJwk,
) -> Result<Header, JoseError> {
    let compact = format!("{protected}.{}.{signature}", b64::encode(payload));
    let jws = decode(&compact, usize::MAX)?;
    jws.verify(key)?;
    Ok(jws.header)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwk::KeyAlg;
    use serde_json::json;

    /// RFC 8037 §A.4: the Ed25519 signature of "Example of Ed25519 signing".
    #[test]
    fn rfc8037_a4_example_signature_verifies() {
        let key = PublicJwk::from_json(&json!({"kty":"OKP","crv":"Ed25519",
            "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}))
        .unwrap();
        let token = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.\
hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";
        let jws = decode(token, 8192).unwrap();
        assert_eq!(jws.header.alg, Alg::EdDSA);
        jws.verify(&key).unwrap();
    }

    /// RFC 7515 Appendix A.3: the published ES256 JWS verifies with the published key, and
    /// not once a byte of its payload changes.
    #[test]
    fn rfc7515_a3_es256_example_verifies() {
        let key = PublicJwk::from_json(&json!({"kty": "EC", "crv": "P-256",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
            "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}))
        .unwrap();
        let token = "eyJhbGciOiJFUzI1NiJ9.\
eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.\
DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q";
        let jws = decode(token, 8192).unwrap();
        assert_eq!(jws.header.alg, Alg::ES256);
        jws.verify(&key).unwrap();
        let tampered = token.replacen("eyJpc3MiOiJqb2Ui", "eyJpc3MiOiJqb2Uj", 1);
        assert_eq!(
            decode(&tampered, 8192).unwrap().verify(&key),
            Err(JoseError::BadSignature)
        );
    }

    #[test]
    fn rfc7515_s4_1_1_alg_none_and_hmac_are_refused() {
        for alg in ["none", "HS256", "RS256", "ES384"] {
            let h = b64::encode(json!({"alg": alg}).to_string().as_bytes());
            let token = format!("{h}.e30.");
            assert!(
                matches!(decode(&token, 8192), Err(JoseError::AlgNotAccepted(_))),
                "{alg}"
            );
        }
    }

    #[test]
    fn rfc7515_s4_1_11_crit_is_refused() {
        let h = b64::encode(json!({"alg":"EdDSA","crit":["exp"]}).to_string().as_bytes());
        assert!(matches!(
            decode(&format!("{h}.e30.AA"), 8192),
            Err(JoseError::BadClaim { name: "crit", .. })
        ));
    }

    #[test]
    fn structure_is_checked() {
        for bad in ["", "a.b", "a.b.c.d", "!!.e30.AA", "e30.e30.AA"] {
            assert!(decode(bad, 8192).is_err(), "{bad}");
        }
        assert_eq!(
            decode(&"a".repeat(100), 10).unwrap_err(),
            JoseError::Malformed("too long")
        );
    }

    #[test]
    fn sign_then_verify_and_tamper() {
        for alg in [KeyAlg::EdDSA, KeyAlg::ES256] {
            let key = PrivateJwk::generate(alg).unwrap();
            let token = sign(Map::new(), &json!({"sub":"x"}), &key).unwrap();
            let jws = decode(&token, 8192).unwrap();
            jws.verify(key.public()).unwrap();
            let other = PrivateJwk::generate(alg).unwrap();
            assert_eq!(jws.verify(other.public()), Err(JoseError::BadSignature));
            let mut parts: Vec<&str> = token.split('.').collect();
            let forged = b64::encode(json!({"sub":"y"}).to_string().as_bytes());
            parts[1] = &forged;
            let tampered = parts.join(".");
            assert_eq!(
                decode(&tampered, 8192).unwrap().verify(key.public()),
                Err(JoseError::BadSignature)
            );
        }
    }

    #[test]
    fn an_alg_that_does_not_fit_the_key_is_refused() {
        let ed = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
        let token = sign(Map::new(), &json!({}), &ed).unwrap();
        let es = PrivateJwk::generate(KeyAlg::ES256).unwrap();
        assert!(matches!(
            decode(&token, 8192).unwrap().verify(es.public()),
            Err(JoseError::AlgKeyMismatch { .. })
        ));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::jwk::KeyAlg;
    use proptest::prelude::*;
    use serde_json::json;

    proptest! {
        #[test]
        fn decoding_arbitrary_text_never_panics(s in "\\PC{0,400}") {
            let _ = decode(&s, 8192);
        }

        #[test]
        fn decoding_arbitrary_base64url_parts_never_panics(
            h in "[A-Za-z0-9_-]{0,80}", p in "[A-Za-z0-9_-]{0,80}", s in "[A-Za-z0-9_-]{0,120}"
        ) {
            if let Ok(jws) = decode(&format!("{h}.{p}.{s}"), 8192) {
                let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
                prop_assert!(jws.verify(key.public()).is_err());
            }
        }

        #[test]
        fn any_flipped_payload_byte_breaks_the_signature(claims in "[a-z]{1,40}", at in 0usize..40) {
            let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
            let token = sign(Map::new(), &json!({"v": claims}), &key).unwrap();
            let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
            let mut payload = b64::decode(&parts[1]).unwrap();
            let i = at % payload.len();
            payload[i] ^= 0x01;
            parts[1] = b64::encode(&payload);
            let tampered = parts.join(".");
            let jws = decode(&tampered, 8192).unwrap();
            prop_assert_eq!(jws.verify(key.public()), Err(JoseError::BadSignature));
        }
    }
}
