//! RFC 9449 §4.3 compliance: one test per check, each failing if its check is removed.

use serde_json::{Map, Value, json};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use super::*;
use crate::jwk::KeyAlg;

const URI: &str = "https://as.example/oauth2/token";

fn now() -> OffsetDateTime {
    datetime!(2026-06-01 12:00:00 UTC)
}

fn ctx() -> ProofContext<'static> {
    ProofContext {
        method: "POST",
        uri: URI,
        access_token: None,
        bound_jkt: None,
    }
}

fn check(proof: &str) -> Result<VerifiedProof, JoseError> {
    validate(
        &[proof],
        &ctx(),
        &ProofPolicy::default(),
        NonceCheck::NotRequired,
        now(),
    )
}

/// Signs arbitrary header and claims with `key`, for malformed-proof tests.
fn forge(key: &PrivateJwk, header: Value, claims: Value) -> String {
    let Value::Object(h) = header else {
        unreachable!()
    };
    jws::sign(h, &claims, key).unwrap()
}

fn good_claims() -> Value {
    json!({"jti": "j1", "htm": "POST", "htu": URI, "iat": now().unix_timestamp()})
}

fn good_header(key: &PrivateJwk) -> Value {
    json!({"typ": "dpop+jwt", "jwk": key.public().to_json()})
}

#[test]
fn rfc9449_s4_3_accepts_a_valid_proof_for_both_key_types() {
    // §4.3: a proof meeting every check is accepted and yields the key's thumbprint.
    for alg in [KeyAlg::EdDSA, KeyAlg::ES256] {
        let key = PrivateJwk::generate(alg).unwrap();
        let proof = create(&key, "POST", URI, None, None, now()).unwrap();
        let v = check(&proof).unwrap();
        assert_eq!(v.jkt, key.thumbprint());
        assert!(v.replay_until > now());
    }
}

#[test]
fn rfc9864_fully_specified_ed25519_alg_is_accepted() {
    // RFC 9864 §2.2: `Ed25519` names EdDSA with Ed25519; DPoP clients send it.
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let claims = good_claims();
    let h = json!({"typ":"dpop+jwt","alg":"Ed25519","jwk":key.public().to_json()});
    let hb = crate::b64::encode(h.to_string().as_bytes());
    let pb = crate::b64::encode(claims.to_string().as_bytes());
    let sig = key.sign(format!("{hb}.{pb}").as_bytes()).unwrap();
    let proof = format!("{hb}.{pb}.{}", crate::b64::encode(&sig));
    check(&proof).unwrap();
}

#[test]
fn rfc9449_s4_3_step1_rejects_more_than_one_dpop_header() {
    // §4.3 (1): "there is not more than one DPoP HTTP request header field".
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let p = create(&key, "POST", URI, None, None, now()).unwrap();
    let r = validate(
        &[&p, &p],
        &ctx(),
        &ProofPolicy::default(),
        NonceCheck::NotRequired,
        now(),
    );
    assert!(matches!(r, Err(JoseError::BadClaim { name: "DPoP", .. })));
    let r = validate(
        &[],
        &ctx(),
        &ProofPolicy::default(),
        NonceCheck::NotRequired,
        now(),
    );
    assert_eq!(r.unwrap_err(), JoseError::Missing("DPoP"));
}

#[test]
fn rfc9449_s4_3_step2_rejects_a_value_that_is_not_a_single_jwt() {
    // §4.3 (2): "the DPoP HTTP request header field value is a single and well-formed JWT".
    for bad in ["", "abc", "a.b.c", "a.b.c.d.e"] {
        assert!(check(bad).is_err(), "{bad}");
    }
}

#[test]
fn rfc9449_s4_3_step3_rejects_missing_required_claims() {
    // §4.3 (3): "all required claims per Section 4.2 are contained in the JWT".
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    for claim in ["jti", "htm", "htu", "iat"] {
        let mut c = good_claims();
        c.as_object_mut().unwrap().remove(claim);
        let proof = forge(&key, good_header(&key), c);
        assert_eq!(
            check(&proof).unwrap_err(),
            JoseError::Missing(claim),
            "{claim}"
        );
    }
    for param in ["typ", "jwk"] {
        let mut h = good_header(&key);
        h.as_object_mut().unwrap().remove(param);
        let proof = forge(&key, h, good_claims());
        assert_eq!(
            check(&proof).unwrap_err(),
            JoseError::Missing(param),
            "{param}"
        );
    }
}

#[test]
fn rfc9449_s4_3_step4_rejects_typ_other_than_dpop_jwt() {
    // §4.3 (4): "the typ JOSE Header Parameter has the value dpop+jwt".
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    for typ in ["JWT", "at+jwt", "DPOP+JWT "] {
        let mut h = good_header(&key);
        h["typ"] = json!(typ);
        let proof = forge(&key, h, good_claims());
        assert!(
            matches!(check(&proof), Err(JoseError::BadClaim { name: "typ", .. })),
            "{typ}"
        );
    }
}

#[test]
fn rfc9449_s4_3_step5_rejects_none_and_symmetric_algorithms() {
    // §4.3 (5): "the alg JOSE Header Parameter indicates a registered asymmetric digital
    // signature algorithm, is not none, is supported by the application".
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    for alg in ["none", "HS256", "RS256"] {
        let h = json!({"typ":"dpop+jwt","alg":alg,"jwk":key.public().to_json()});
        let hb = crate::b64::encode(h.to_string().as_bytes());
        let pb = crate::b64::encode(good_claims().to_string().as_bytes());
        let proof = format!("{hb}.{pb}.");
        assert!(
            matches!(check(&proof), Err(JoseError::AlgNotAccepted(_))),
            "{alg}"
        );
    }
}

#[test]
fn rfc9449_s4_3_step6_rejects_a_signature_by_another_key() {
    // §4.3 (6): "the JWT signature verifies with the public key contained in the jwk".
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let other = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let proof = forge(&other, good_header(&key), good_claims());
    assert_eq!(check(&proof).unwrap_err(), JoseError::BadSignature);
}

#[test]
fn rfc9449_s4_3_step7_rejects_a_jwk_with_a_private_key() {
    // §4.3 (7): "the jwk JOSE Header Parameter does not contain a private key".
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let h = json!({"typ":"dpop+jwt","jwk":key.to_json().unwrap()});
    let proof = forge(&key, h, good_claims());
    assert!(matches!(
        check(&proof),
        Err(JoseError::BadClaim { name: "jwk", .. })
    ));
}

#[test]
fn rfc9449_s4_3_step8_rejects_htm_other_than_the_request_method() {
    // §4.3 (8): "the htm claim matches the HTTP method of the current request".
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    for htm in ["GET", "post"] {
        let proof = create(&key, htm, URI, None, None, now()).unwrap();
        assert!(
            matches!(check(&proof), Err(JoseError::BadClaim { name: "htm", .. })),
            "{htm}"
        );
    }
}

#[test]
fn rfc9449_s4_3_step9_rejects_htu_other_than_the_request_uri() {
    // §4.3 (9): "the htu claim matches the HTTP URI value for the HTTP request in which the
    // JWT was received, ignoring any query and fragment parts".
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    for htu in [
        "https://as.example/oauth2/introspect",
        "https://evil.example/oauth2/token",
    ] {
        let proof = create(&key, "POST", htu, None, None, now()).unwrap();
        assert!(
            matches!(check(&proof), Err(JoseError::BadClaim { name: "htu", .. })),
            "{htu}"
        );
    }
    let with_query = create(
        &key,
        "POST",
        "https://AS.example:443/oauth2/token?a=b",
        None,
        None,
        now(),
    )
    .unwrap();
    check(&with_query).unwrap();
}

#[test]
fn rfc9449_s4_3_step10_requires_the_server_nonce_once_provided() {
    // §4.3 (10): "if the server provided a nonce value to the client, the nonce claim
    // matches the server-provided nonce value".
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let valid = |n: &str| n == "server-nonce";
    let run = |nonce: Option<&str>| {
        let proof = create(&key, "POST", URI, None, nonce, now()).unwrap();
        validate(
            &[&proof],
            &ctx(),
            &ProofPolicy::default(),
            NonceCheck::Required(&valid),
            now(),
        )
    };
    assert_eq!(run(None).unwrap_err(), JoseError::UseNonce);
    assert_eq!(run(Some("stale")).unwrap_err(), JoseError::UseNonce);
    run(Some("server-nonce")).unwrap();
}

#[test]
fn rfc9449_s4_3_step11_rejects_iat_outside_the_window() {
    // §4.3 (11): "the creation time of the JWT, as determined by ... the iat claim, is
    // within an acceptable window".
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let policy = ProofPolicy::default();
    let old = create(
        &key,
        "POST",
        URI,
        None,
        None,
        now() - policy.max_age - Duration::seconds(1),
    )
    .unwrap();
    assert!(matches!(
        check(&old),
        Err(JoseError::BadClaim { name: "iat", .. })
    ));
    let future = create(
        &key,
        "POST",
        URI,
        None,
        None,
        now() + policy.max_skew + Duration::seconds(1),
    )
    .unwrap();
    assert!(matches!(
        check(&future),
        Err(JoseError::BadClaim { name: "iat", .. })
    ));
    let edge = create(
        &key,
        "POST",
        URI,
        None,
        None,
        now() - policy.max_age + Duration::seconds(1),
    )
    .unwrap();
    check(&edge).unwrap();
}

#[test]
fn rfc9449_s4_3_step12_requires_ath_matching_the_access_token() {
    // §4.3 (12): "if presented to a protected resource in conjunction with an access token,
    // ensure that the value of the ath claim equals the hash of that access token".
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let c = ProofContext {
        access_token: Some("token-a"),
        bound_jkt: None,
        ..ctx()
    };
    let p = ProofPolicy::default();
    let without = create(&key, "POST", URI, None, None, now()).unwrap();
    assert_eq!(
        validate(&[&without], &c, &p, NonceCheck::NotRequired, now()).unwrap_err(),
        JoseError::Missing("ath")
    );
    let other = create(&key, "POST", URI, Some("token-b"), None, now()).unwrap();
    assert!(matches!(
        validate(&[&other], &c, &p, NonceCheck::NotRequired, now()),
        Err(JoseError::BadClaim { name: "ath", .. })
    ));
    let right = create(&key, "POST", URI, Some("token-a"), None, now()).unwrap();
    validate(&[&right], &c, &p, NonceCheck::NotRequired, now()).unwrap();
}

#[test]
fn rfc9449_s4_3_step12_requires_the_key_bound_to_the_access_token() {
    // §4.3 (12): "ensure that the public key to which the access token is bound matches the
    // public key from the DPoP proof".
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let thief = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let jkt = key.thumbprint();
    let c = ProofContext {
        access_token: Some("t"),
        bound_jkt: Some(&jkt),
        ..ctx()
    };
    let stolen = create(&thief, "POST", URI, Some("t"), None, now()).unwrap();
    assert!(matches!(
        validate(
            &[&stolen],
            &c,
            &ProofPolicy::default(),
            NonceCheck::NotRequired,
            now()
        ),
        Err(JoseError::BadClaim { name: "jwk", .. })
    ));
    let own = create(&key, "POST", URI, Some("t"), None, now()).unwrap();
    validate(
        &[&own],
        &c,
        &ProofPolicy::default(),
        NonceCheck::NotRequired,
        now(),
    )
    .unwrap();
}

#[test]
fn rfc9449_s11_1_replay_key_is_per_key_and_jti() {
    // §11.1: servers store `jti` values to detect replay; the key identifies one proof.
    let key = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let h = good_header(&key);
    let a = check(&forge(&key, h.clone(), good_claims())).unwrap();
    let b = check(&forge(&key, h, good_claims())).unwrap();
    assert_eq!(a.replay_key, b.replay_key, "same key and jti");
    let other = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let c = check(&forge(&other, good_header(&other), good_claims())).unwrap();
    assert_ne!(a.replay_key, c.replay_key, "same jti, other key");
}

#[test]
fn oversized_proofs_are_refused_before_parsing() {
    let big = format!("{}.{}.{}", "a".repeat(MAX_PROOF_LEN), "b", "c");
    assert_eq!(check(&big).unwrap_err(), JoseError::Malformed("too long"));
    let _ = Map::<String, Value>::new();
}

/// RFC 9449 §7.1: the `ath` of the example access token is the published value.
#[test]
fn rfc9449_s7_1_ath_of_the_example_token() {
    assert_eq!(
        crate::sha256_b64(b"Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
        "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
    );
}
