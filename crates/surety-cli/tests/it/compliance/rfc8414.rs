//! RFC 8414 authorization server metadata and the RFC 7517 JWK Set.

use serde_json::Value;
use surety_testkit::{TestServer, http};

async fn get(server: &TestServer, path: &str) -> (reqwest::StatusCode, Value) {
    let r = http().get(server.url(path)).send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

#[tokio::test]
async fn rfc8414_s3_2_metadata_names_every_endpoint_and_method() {
    let server = TestServer::start().await;
    let (status, m) = get(&server, "/.well-known/oauth-authorization-server").await;
    assert_eq!(status, 200);
    // §3.3: `issuer` must be identical to the issuer identifier the client used.
    assert_eq!(m["issuer"], server.base);
    assert_eq!(m["token_endpoint"], server.url("/oauth2/token"));
    assert_eq!(
        m["introspection_endpoint"],
        server.url("/oauth2/introspect")
    );
    assert_eq!(m["revocation_endpoint"], server.url("/oauth2/revoke"));
    assert_eq!(m["jwks_uri"], server.url("/jwks"));
    assert_eq!(m["response_types_supported"], serde_json::json!([]));
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        serde_json::json!(["private_key_jwt"])
    );
    let grants = m["grant_types_supported"].as_array().unwrap();
    assert!(
        grants
            .iter()
            .any(|g| g == "urn:ietf:params:oauth:grant-type:token-exchange")
    );
    for algs in [
        "dpop_signing_alg_values_supported",
        "token_endpoint_auth_signing_alg_values_supported",
    ] {
        let list = m[algs].as_array().unwrap();
        for alg in ["EdDSA", "Ed25519", "ES256"] {
            assert!(list.iter().any(|a| a == alg), "{algs} lacks {alg}");
        }
    }
    let (status, oidc) = get(&server, "/.well-known/openid-configuration").await;
    assert_eq!(status, 200);
    assert_eq!(oidc, m);
}

#[tokio::test]
async fn rfc7517_s5_the_jwks_publishes_only_public_keys_with_ids() {
    let server = TestServer::start().await;
    let (status, set) = get(&server, "/jwks").await;
    assert_eq!(status, 200);
    let keys = set["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    for k in keys {
        assert!(k.get("d").is_none(), "no private member");
        assert_eq!(k["use"], "sig");
        assert_eq!(k["alg"], "EdDSA");
        let public = surety_jose::PublicJwk::from_json(k).unwrap();
        assert_eq!(k["kid"], public.thumbprint(), "kid = RFC 7638 thumbprint");
    }
}
