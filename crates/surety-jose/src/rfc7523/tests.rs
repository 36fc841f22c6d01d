//! RFC 7523 §3 compliance: one test per processing rule.

use serde_json::{Value, json};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::jwk::KeyAlg;

const TOKEN_ENDPOINT: &str = "https://as.example/oauth2/token";
const ISSUER: &str = "https://as.example";

fn now() -> OffsetDateTime {
    datetime!(2026-06-01 12:00:00 UTC)
}

fn policy() -> AssertionPolicy<'static> {
    AssertionPolicy {
        audiences: &[TOKEN_ENDPOINT, ISSUER],
        max_lifetime: Duration::minutes(5),
        max_skew: Duration::seconds(5),
    }
}

fn good() -> Value {
    let t = now().unix_timestamp();
    json!({"iss":"hum_1","sub":"hum_1","aud":TOKEN_ENDPOINT,"iat":t,"exp":t+60,"jti":"a1"})
}

fn sign(key: &PrivateJwk, claims: &Value) -> String {
    let mut h = Map::new();
    h.insert("kid".into(), json!(key.thumbprint()));
    jws::sign(h, claims, key).unwrap()
}

fn verify(key: &PrivateJwk, claims: &Value) -> Result<VerifiedAssertion, JoseError> {
    let token = sign(key, claims);
    decode(&token)?.verify(key.public(), &policy(), now())
}

fn without(claim: &str) -> Value {
    let mut c = good();
    c.as_object_mut().unwrap().remove(claim);
    c
}

fn with(claim: &str, value: Value) -> Value {
    let mut c = good();
    c[claim] = value;
    c
}

#[test]
fn rfc7523_s3_accepts_a_valid_assertion() {
    // §3: an assertion meeting every rule is accepted.
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let token = create(
        &key,
        "hum_1",
        "hum_1",
        TOKEN_ENDPOINT,
        Duration::seconds(60),
        now(),
    )
    .unwrap();
    let a = decode(&token).unwrap();
    assert_eq!(a.kid(), Some(key.thumbprint().as_str()));
    let v = a.verify(key.public(), &policy(), now()).unwrap();
    assert_eq!(v.subject, "hum_1");
    assert_eq!(v.replay_until, v.expires_at + policy().max_skew);
}

#[test]
fn rfc7523_s3_1_requires_iss() {
    // §3 (1): "The JWT MUST contain an iss (issuer) claim".
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    assert_eq!(
        verify(&key, &without("iss")).unwrap_err(),
        JoseError::Missing("iss")
    );
}

#[test]
fn rfc7523_s3_2_requires_sub() {
    // §3 (2): "The JWT MUST contain a sub (subject) claim".
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    assert_eq!(
        verify(&key, &without("sub")).unwrap_err(),
        JoseError::Missing("sub")
    );
}

#[test]
fn rfc7523_s3_3_requires_aud_naming_this_server() {
    // §3 (3): "The JWT MUST contain an aud (audience) claim containing a value that
    // identifies the authorization server as an intended audience ... The authorization
    // server MUST reject any JWT that does not contain its own identity as the intended
    // audience."
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    assert_eq!(
        verify(&key, &without("aud")).unwrap_err(),
        JoseError::Missing("aud")
    );
    let wrong = with("aud", json!("https://other.example/token"));
    assert!(matches!(
        verify(&key, &wrong),
        Err(JoseError::BadClaim { name: "aud", .. })
    ));
    verify(&key, &with("aud", json!(["https://x.example", ISSUER]))).unwrap();
}

#[test]
fn rfc7523_s3_4_requires_exp_and_rejects_expired() {
    // §3 (4): "The JWT MUST contain an exp (expiration time) claim ... The authorization
    // server MUST reject any JWT with an expiration time that has passed".
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    assert_eq!(
        verify(&key, &without("exp")).unwrap_err(),
        JoseError::Missing("exp")
    );
    let t = now().unix_timestamp();
    let expired = json!({"iss":"h","sub":"h","aud":ISSUER,"iat":t-120,"exp":t-30,"jti":"x"});
    assert!(matches!(
        verify(&key, &expired),
        Err(JoseError::BadClaim { name: "exp", .. })
    ));
}

#[test]
fn rfc7523_s3_5_rejects_nbf_in_the_future() {
    // §3 (5): "The JWT MAY contain an nbf (not before) claim ... the authorization server
    // MUST NOT accept the JWT before that time".
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let c = with("nbf", json!(now().unix_timestamp() + 30));
    assert!(matches!(
        verify(&key, &c),
        Err(JoseError::BadClaim { name: "nbf", .. })
    ));
}

#[test]
fn rfc7523_s3_6_rejects_iat_in_the_future_and_long_lifetimes() {
    // §3 (6): "The authorization server MAY reject JWTs with an iat claim value that is
    // unreasonably far in the past"; Surety also bounds the lifetime to five minutes.
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let t = now().unix_timestamp();
    let future = json!({"iss":"h","sub":"h","aud":ISSUER,"iat":t+60,"exp":t+120,"jti":"x"});
    assert!(matches!(
        verify(&key, &future),
        Err(JoseError::BadClaim { name: "iat", .. })
    ));
    let long = json!({"iss":"h","sub":"h","aud":ISSUER,"iat":t,"exp":t+3600,"jti":"x"});
    assert!(matches!(
        verify(&key, &long),
        Err(JoseError::BadClaim { name: "exp", .. })
    ));
    let no_iat_long = json!({"iss":"h","sub":"h","aud":ISSUER,"exp":t+3600,"jti":"x"});
    assert!(matches!(
        verify(&key, &no_iat_long),
        Err(JoseError::BadClaim { name: "exp", .. })
    ));
}

#[test]
fn rfc7523_s3_7_requires_jti_for_single_use() {
    // §3 (7): "The JWT MAY contain a jti (JWT ID) claim ... The authorization server MAY
    // ensure that JWTs are not replayed"; Surety requires `jti` and refuses reuse.
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    assert_eq!(
        verify(&key, &without("jti")).unwrap_err(),
        JoseError::Missing("jti")
    );
    let a = verify(&key, &good()).unwrap();
    let b = verify(&key, &good()).unwrap();
    assert_eq!(a.replay_key, b.replay_key);
}

#[test]
fn rfc7523_s3_9_rejects_an_invalid_signature() {
    // §3 (9): "The JWT MUST be digitally signed ... The authorization server MUST reject
    // JWTs with an invalid signature".
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let other = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let token = sign(&other, &good());
    assert_eq!(
        decode(&token)
            .unwrap()
            .verify(key.public(), &policy(), now())
            .unwrap_err(),
        JoseError::BadSignature
    );
    let hb = crate::b64::encode(json!({"alg":"none"}).to_string().as_bytes());
    let pb = crate::b64::encode(good().to_string().as_bytes());
    assert!(matches!(
        decode(&format!("{hb}.{pb}.")),
        Err(JoseError::AlgNotAccepted(_))
    ));
}

#[test]
fn rfc8725_s3_11_other_jwt_types_are_not_assertions() {
    // RFC 8725 §3.11: use explicit typing so that one kind of JWT cannot be confused for
    // another — a DPoP proof or an access token is not an assertion.
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    for typ in ["dpop+jwt", "at+jwt", "application/dpop+jwt", "secevent+jwt"] {
        let mut h = Map::new();
        h.insert("typ".into(), json!(typ));
        let token = jws::sign(h, &good(), &key).unwrap();
        assert!(
            matches!(decode(&token), Err(JoseError::BadClaim { name: "typ", .. })),
            "{typ}"
        );
    }
}

#[test]
fn rfc7523_s3_4_an_exp_at_the_end_of_time_is_refused_without_overflow() {
    // §3 (4) with the largest representable NumericDate: refused as too far away, no panic.
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let c = with("exp", json!(253_402_300_799_i64));
    assert!(matches!(
        verify(&key, &c),
        Err(JoseError::BadClaim { name: "exp", .. })
    ));
    let c = with("iat", json!(-377_705_116_800_i64));
    assert!(verify(&key, &c).is_err());
    let c = with("nbf", json!(253_402_300_799_i64));
    assert!(matches!(
        verify(&key, &c),
        Err(JoseError::BadClaim { name: "nbf", .. })
    ));
}

#[test]
fn rfc7519_s5_1_plain_jwt_typ_is_accepted() {
    // RFC 7519 §5.1: `typ` "JWT" (or its media type) is what an assertion may say.
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    for typ in ["JWT", "jwt", "application/jwt"] {
        let mut h = Map::new();
        h.insert("typ".into(), json!(typ));
        let token = jws::sign(h, &good(), &key).unwrap();
        decode(&token)
            .unwrap()
            .verify(key.public(), &policy(), now())
            .unwrap();
    }
}
