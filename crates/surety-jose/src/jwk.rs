//! JSON Web Keys (RFC 7517) for the two key types Surety accepts — Ed25519 (`OKP`,
//! RFC 8037) and P-256 (`EC`) — and their RFC 7638 thumbprints.

use std::fmt;

use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    self, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair, ParsedPublicKey,
};
use serde_json::{Map, Value, json};

use crate::error::JoseError;
use crate::jws::Alg;
use crate::{b64, sha256_b64};

/// Members that only a private (or symmetric) JWK has. A public key submitted with any of
/// them is refused: a private key must never leave its holder.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

/// The key types Surety accepts, named by the JWS algorithm family they sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlg {
    /// Ed25519 (`kty: OKP`, `crv: Ed25519`).
    EdDSA,
    /// ECDSA P-256 with SHA-256 (`kty: EC`, `crv: P-256`).
    ES256,
}

impl KeyAlg {
    /// The JWS `alg` this key signs with.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDSA => "EdDSA",
            Self::ES256 => "ES256",
        }
    }

    /// Whether a JWS `alg` may be used with this kind of key.
    #[must_use]
    pub fn accepts(self, alg: Alg) -> bool {
        matches!(
            (self, alg),
            (Self::EdDSA, Alg::EdDSA | Alg::Ed25519) | (Self::ES256, Alg::ES256)
        )
    }
}

impl fmt::Display for KeyAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for KeyAlg {
    type Err = JoseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "EdDSA" | "Ed25519" => Ok(Self::EdDSA),
            "ES256" => Ok(Self::ES256),
            other => Err(JoseError::AlgNotAccepted(other.chars().take(32).collect())),
        }
    }
}

/// A validated public key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum PublicJwk {
    /// Ed25519 public key (32 bytes).
    Ed25519 {
        /// The public key.
        x: [u8; 32],
    },
    /// P-256 public point.
    P256 {
        /// Affine x coordinate, big-endian.
        x: [u8; 32],
        /// Affine y coordinate, big-endian.
        y: [u8; 32],
    },
}

impl fmt::Debug for PublicJwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicJwk({}, {})", self.key_alg(), self.thumbprint())
    }
}

fn member<'a>(obj: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, JoseError> {
    match obj.get(name) {
        None => Err(JoseError::jwk(name, "is required")),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(JoseError::jwk(name, "must be a string")),
    }
}

fn coordinate(obj: &Map<String, Value>, name: &'static str) -> Result<[u8; 32], JoseError> {
    let raw = member(obj, name)?;
    let bytes = b64::decode(raw).ok_or_else(|| JoseError::jwk(name, "is not base64url"))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| JoseError::jwk(name, format!("must be 32 bytes, got {}", b.len())))
}

impl PublicJwk {
    /// Parses and validates a public JWK. Refuses private members, unsupported key types
    /// and curves, malformed coordinates, points not on the curve, and an `alg`/`use` that
    /// does not fit a signing key of this type.
    pub fn from_json(value: &Value) -> Result<Self, JoseError> {
        let obj = value
            .as_object()
            .ok_or_else(|| JoseError::jwk("kty", "a JWK must be a JSON object"))?;
        if let Some(private) = PRIVATE_MEMBERS.iter().find(|m| obj.contains_key(**m)) {
            return Err(JoseError::jwk(
                private,
                "private key material must never be sent: submit the public key only",
            ));
        }
        let key = match member(obj, "kty")? {
            "OKP" => match member(obj, "crv")? {
                "Ed25519" => Self::Ed25519 {
                    x: coordinate(obj, "x")?,
                },
                other => {
                    return Err(JoseError::jwk(
                        "crv",
                        format!(
                            "`{}` is not supported for OKP keys (use Ed25519)",
                            short(other)
                        ),
                    ));
                }
            },
            "EC" => match member(obj, "crv")? {
                "P-256" => Self::P256 {
                    x: coordinate(obj, "x")?,
                    y: coordinate(obj, "y")?,
                },
                other => {
                    return Err(JoseError::jwk(
                        "crv",
                        format!(
                            "`{}` is not supported for EC keys (use P-256)",
                            short(other)
                        ),
                    ));
                }
            },
            other => {
                return Err(JoseError::jwk(
                    "kty",
                    format!(
                        "`{}` is not supported (use OKP/Ed25519 or EC/P-256)",
                        short(other)
                    ),
                ));
            }
        };
        key.check_point()?;
        if let Some(alg) = obj.get("alg") {
            let alg = alg
                .as_str()
                .ok_or_else(|| JoseError::jwk("alg", "must be a string"))?;
            let fits = alg.parse::<Alg>().is_ok_and(|a| key.key_alg().accepts(a));
            if !fits {
                return Err(JoseError::jwk(
                    "alg",
                    format!("`{}` does not fit a {} key", short(alg), key.key_alg()),
                ));
            }
        }
        if let Some(usage) = obj.get("use")
            && usage.as_str() != Some("sig")
        {
            return Err(JoseError::jwk("use", "must be `sig`"));
        }
        Ok(key)
    }

    fn check_point(&self) -> Result<(), JoseError> {
        let ok = match self {
            Self::Ed25519 { x } => ParsedPublicKey::new(&ED25519, x).is_ok(),
            Self::P256 { .. } => {
                ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.sec1_uncompressed()).is_ok()
            }
        };
        if ok {
            Ok(())
        } else {
            Err(JoseError::jwk(
                "x",
                "is not a valid public key for this curve",
            ))
        }
    }

    fn sec1_uncompressed(&self) -> Vec<u8> {
        match self {
            Self::Ed25519 { x } => x.to_vec(),
            Self::P256 { x, y } => {
                let mut v = Vec::with_capacity(65);
                v.push(0x04);
                v.extend_from_slice(x);
                v.extend_from_slice(y);
                v
            }
        }
    }

    /// The algorithm family of this key.
    #[must_use]
    pub fn key_alg(&self) -> KeyAlg {
        match self {
            Self::Ed25519 { .. } => KeyAlg::EdDSA,
            Self::P256 { .. } => KeyAlg::ES256,
        }
    }

    /// The key's required members only, in lexicographic order (RFC 7638 §3.2).
    #[must_use]
    pub fn to_json(&self) -> Value {
        match self {
            Self::Ed25519 { x } => json!({"crv": "Ed25519", "kty": "OKP", "x": b64::encode(x)}),
            Self::P256 { x, y } => json!({
                "crv": "P-256", "kty": "EC", "x": b64::encode(x), "y": b64::encode(y)
            }),
        }
    }

    /// The RFC 7638 thumbprint: base64url SHA-256 of the required members, in
    /// lexicographic order, without whitespace.
    #[must_use]
    pub fn thumbprint(&self) -> String {
        let members: Vec<(&str, String)> = match self {
            Self::Ed25519 { x } => vec![
                ("crv", "Ed25519".into()),
                ("kty", "OKP".into()),
                ("x", b64::encode(x)),
            ],
            Self::P256 { x, y } => vec![
                ("crv", "P-256".into()),
                ("kty", "EC".into()),
                ("x", b64::encode(x)),
                ("y", b64::encode(y)),
            ],
        };
        sha256_b64(canonical_members(&members).as_bytes())
    }

    /// Verifies `signature` over `message` with `alg`, which must fit this key.
    pub fn verify(&self, alg: Alg, message: &[u8], signature: &[u8]) -> Result<(), JoseError> {
        if !self.key_alg().accepts(alg) {
            return Err(JoseError::AlgKeyMismatch { alg });
        }
        let verified = match self {
            Self::Ed25519 { x } => {
                signature::UnparsedPublicKey::new(&ED25519, x).verify(message, signature)
            }
            Self::P256 { .. } => signature::UnparsedPublicKey::new(
                &ECDSA_P256_SHA256_FIXED,
                self.sec1_uncompressed(),
            )
            .verify(message, signature),
        };
        verified.map_err(|_| JoseError::BadSignature)
    }
}

fn short(s: &str) -> String {
    s.chars().take(32).collect()
}

enum Signer {
    Ed25519(Ed25519KeyPair),
    P256(EcdsaKeyPair),
}

/// A private key held by an agent or a human's device. Only its public half ever leaves
/// the holder.
pub struct PrivateJwk {
    signer: Signer,
    public: PublicJwk,
}

impl fmt::Debug for PrivateJwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateJwk({:?})", self.public)
    }
}

impl PrivateJwk {
    /// Generates a new key pair from the system CSPRNG.
    pub fn generate(alg: KeyAlg) -> Result<Self, JoseError> {
        let failed = |_| JoseError::Crypto("key generation failed");
        match alg {
            KeyAlg::EdDSA => Self::from_ed25519(Ed25519KeyPair::generate().map_err(failed)?),
            KeyAlg::ES256 => Self::from_p256(
                EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).map_err(failed)?,
            ),
        }
    }

    fn from_ed25519(pair: Ed25519KeyPair) -> Result<Self, JoseError> {
        let x: [u8; 32] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| JoseError::Crypto("unexpected Ed25519 public key length"))?;
        Ok(Self {
            signer: Signer::Ed25519(pair),
            public: PublicJwk::Ed25519 { x },
        })
    }

    fn from_p256(pair: EcdsaKeyPair) -> Result<Self, JoseError> {
        let point = pair.public_key().as_ref();
        let bad = || JoseError::Crypto("unexpected P-256 public key encoding");
        if point.len() != 65 || point[0] != 0x04 {
            return Err(bad());
        }
        let x = point[1..33].try_into().map_err(|_| bad())?;
        let y = point[33..65].try_into().map_err(|_| bad())?;
        Ok(Self {
            signer: Signer::P256(pair),
            public: PublicJwk::P256 { x, y },
        })
    }

    /// Reads a private JWK (`d` plus the public members); checks that they belong together.
    pub fn from_json(value: &Value) -> Result<Self, JoseError> {
        let obj = value
            .as_object()
            .ok_or_else(|| JoseError::jwk("kty", "a JWK must be a JSON object"))?;
        let d = coordinate(obj, "d")?;
        let mut public_only = obj.clone();
        public_only.remove("d");
        let public = PublicJwk::from_json(&Value::Object(public_only))?;
        let inconsistent = |_| JoseError::jwk("d", "does not match the public key");
        let key = match &public {
            PublicJwk::Ed25519 { x } => Self::from_ed25519(
                Ed25519KeyPair::from_seed_and_public_key(&d, x).map_err(inconsistent)?,
            )?,
            PublicJwk::P256 { .. } => Self::from_p256(
                EcdsaKeyPair::from_private_key_and_public_key(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &d,
                    &public.sec1_uncompressed(),
                )
                .map_err(inconsistent)?,
            )?,
        };
        Ok(key)
    }

    /// The private JWK, including `d`. Handle with care: write only to 0600 files.
    pub fn to_json(&self) -> Result<Value, JoseError> {
        let failed = |_| JoseError::Crypto("private key export failed");
        let d = match &self.signer {
            Signer::Ed25519(pair) => {
                let seed = pair.seed().map_err(failed)?;
                let bin: aws_lc_rs::encoding::Curve25519SeedBin<'_> =
                    seed.as_be_bytes().map_err(failed)?;
                b64::encode(bin.as_ref())
            }
            Signer::P256(pair) => {
                let bin: aws_lc_rs::encoding::EcPrivateKeyBin<'_> =
                    pair.private_key().as_be_bytes().map_err(failed)?;
                b64::encode(bin.as_ref())
            }
        };
        let mut jwk = self.public.to_json();
        if let Value::Object(obj) = &mut jwk {
            obj.insert("d".into(), Value::String(d));
            obj.insert("alg".into(), Value::String(self.jws_alg().as_str().into()));
            obj.insert("kid".into(), Value::String(self.public.thumbprint()));
        }
        Ok(jwk)
    }

    /// The public half.
    #[must_use]
    pub fn public(&self) -> &PublicJwk {
        &self.public
    }

    /// The RFC 7638 thumbprint of the public half.
    #[must_use]
    pub fn thumbprint(&self) -> String {
        self.public.thumbprint()
    }

    /// The JWS algorithm this key signs with.
    #[must_use]
    pub fn jws_alg(&self) -> Alg {
        match self.signer {
            Signer::Ed25519(_) => Alg::EdDSA,
            Signer::P256(_) => Alg::ES256,
        }
    }

    /// Signs `message` (Ed25519, or ECDSA P-256 in the fixed r‖s form JWS uses).
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, JoseError> {
        match &self.signer {
            Signer::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Signer::P256(pair) => pair
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| JoseError::Crypto("signing failed")),
        }
    }
}

/// The RFC 7638 §3 canonical form of a JWK's required members: a JSON object with the
/// members in lexicographic order of their names, no whitespace. Built here rather than
/// left to a JSON library's map order, which a feature flag elsewhere in a build can change.
fn canonical_members(members: &[(&str, String)]) -> String {
    let mut sorted: Vec<&(&str, String)> = members.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let body: Vec<String> = sorted
        .iter()
        .map(|(name, value)| format!("{}:{}", Value::from(*name), Value::from(value.as_str())))
        .collect();
    format!("{{{}}}", body.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7638 §3.1's worked example is an RSA key, which Surety does not accept as a key;
    /// the canonical form is built by the same function [`PublicJwk::thumbprint`] uses, so
    /// the published thumbprint checks that construction (member order given unsorted).
    #[test]
    fn rfc7638_s3_1_canonical_form_gives_the_published_thumbprint() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let canonical =
            canonical_members(&[("n", n.into()), ("kty", "RSA".into()), ("e", "AQAB".into())]);
        assert!(canonical.starts_with(r#"{"e":"AQAB","kty":"RSA","n":"0vx7"#));
        assert_eq!(
            sha256_b64(canonical.as_bytes()),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    /// RFC 7638 §3.1 works an RSA example; RFC 8037 §A.3 gives the thumbprint of the
    /// Ed25519 key of §A.2, which we reproduce exactly.
    #[test]
    fn rfc7638_s3_thumbprint_of_rfc8037_example_key() {
        let jwk = json!({"kty":"OKP","crv":"Ed25519",
            "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        let key = PublicJwk::from_json(&jwk).unwrap();
        assert_eq!(
            key.thumbprint(),
            "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
        );
    }

    #[test]
    fn rfc7638_s3_2_only_required_members_in_order() {
        let with_extras = json!({"y":"", "kty":"OKP","crv":"Ed25519","use":"sig","kid":"ignored",
            "x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"});
        let mut obj = with_extras.as_object().unwrap().clone();
        obj.remove("y");
        let key = PublicJwk::from_json(&Value::Object(obj)).unwrap();
        assert_eq!(
            key.to_json().to_string(),
            r#"{"crv":"Ed25519","kty":"OKP","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#
        );
    }

    #[test]
    fn private_members_are_refused_by_name() {
        let priv_jwk = PrivateJwk::generate(KeyAlg::EdDSA)
            .unwrap()
            .to_json()
            .unwrap();
        let err = PublicJwk::from_json(&priv_jwk).unwrap_err();
        assert!(
            matches!(err, JoseError::InvalidJwk { field: "d", .. }),
            "{err}"
        );
        let sym = json!({"kty":"oct","k":"c2VjcmV0"});
        assert!(matches!(
            PublicJwk::from_json(&sym).unwrap_err(),
            JoseError::InvalidJwk { field: "k", .. }
        ));
    }

    #[test]
    fn malformed_keys_name_the_member() {
        let cases = [
            (json!("not an object"), "kty"),
            (json!({"crv":"Ed25519","x":"AA"}), "kty"),
            (json!({"kty":"RSA","n":"AA","e":"AQAB"}), "kty"),
            (json!({"kty":"OKP","crv":"X25519","x":"AA"}), "crv"),
            (json!({"kty":"OKP","crv":"Ed25519"}), "x"),
            (json!({"kty":"OKP","crv":"Ed25519","x":"AAAA"}), "x"),
            (json!({"kty":"OKP","crv":"Ed25519","x":"not base64!"}), "x"),
            (json!({"kty":"EC","crv":"P-384","x":"AA","y":"AA"}), "crv"),
            (
                json!({"kty":"EC","crv":"P-256","x":b64::encode(&[1;32]),"y":b64::encode(&[2;32])}),
                "x",
            ),
        ];
        for (jwk, field) in cases {
            match PublicJwk::from_json(&jwk) {
                Err(JoseError::InvalidJwk { field: f, .. }) => assert_eq!(f, field, "{jwk}"),
                other => panic!("{jwk}: expected error on {field}, got {other:?}"),
            }
        }
    }

    #[test]
    fn alg_and_use_must_fit_the_key() {
        let mut jwk = PrivateJwk::generate(KeyAlg::ES256)
            .unwrap()
            .public()
            .to_json();
        jwk["alg"] = json!("EdDSA");
        assert!(matches!(
            PublicJwk::from_json(&jwk),
            Err(JoseError::InvalidJwk { field: "alg", .. })
        ));
        jwk["alg"] = json!("ES256");
        jwk["use"] = json!("enc");
        assert!(matches!(
            PublicJwk::from_json(&jwk),
            Err(JoseError::InvalidJwk { field: "use", .. })
        ));
    }

    #[test]
    fn private_keys_round_trip_and_sign() {
        for alg in [KeyAlg::EdDSA, KeyAlg::ES256] {
            let key = PrivateJwk::generate(alg).unwrap();
            let again = PrivateJwk::from_json(&key.to_json().unwrap()).unwrap();
            assert_eq!(again.public(), key.public());
            let sig = again.sign(b"hello").unwrap();
            key.public().verify(key.jws_alg(), b"hello", &sig).unwrap();
            assert_eq!(
                key.public().verify(key.jws_alg(), b"hellO", &sig),
                Err(JoseError::BadSignature)
            );
        }
    }

    #[test]
    fn a_private_key_with_someone_elses_public_half_is_refused() {
        let a = PrivateJwk::generate(KeyAlg::EdDSA)
            .unwrap()
            .to_json()
            .unwrap();
        let b = PrivateJwk::generate(KeyAlg::EdDSA)
            .unwrap()
            .to_json()
            .unwrap();
        let mut mixed = a.clone();
        mixed["x"] = b["x"].clone();
        assert!(matches!(
            PrivateJwk::from_json(&mixed),
            Err(JoseError::InvalidJwk { field: "d", .. })
        ));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    fn member() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            "[A-Za-z0-9_-]{0,60}".prop_map(Value::from),
            Just(Value::from("OKP")),
            Just(Value::from("EC")),
            Just(Value::from("Ed25519")),
            Just(Value::from("P-256")),
        ]
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_jwks_never_panics(
            kty in member(), crv in member(), x in member(), y in member(), extra in member()
        ) {
            let jwk = json!({"kty": kty, "crv": crv, "x": x, "y": y, "use": extra});
            let _ = PublicJwk::from_json(&jwk);
            let _ = PrivateJwk::from_json(&jwk);
        }

        #[test]
        fn thumbprints_ignore_member_order_and_extras(kid in "[a-z]{0,10}") {
            let key = PrivateJwk::generate(KeyAlg::ES256).unwrap();
            let mut jwk = key.public().to_json();
            jwk["kid"] = Value::from(kid);
            jwk["use"] = Value::from("sig");
            prop_assert_eq!(PublicJwk::from_json(&jwk).unwrap().thumbprint(), key.thumbprint());
        }
    }
}
