//! The SDK against a real server: an agent mints, caches, delegates and revokes; a resource
//! server verifies requests (RFC 9449 §7 at the resource, RFC 9068 §4, RFC 7662), and every
//! check of the verifier refuses what it must.

use reqwest::Method;
use surety_jose::{KeyAlg, PrivateJwk, rfc9449};
use surety_sdk::{AgentClient, ResourceVerifier, TokenRequest, VerifyError};
use surety_testkit::TestServer;
use time::OffsetDateTime;

use crate::support::{CRM, delegation};

const URL: &str = "https://crm.example/customers/42";

fn crm_only() -> TokenRequest {
    TokenRequest {
        scope: Some("crm.read".into()),
        resource: Some(CRM.into()),
    }
}

/// The two headers an agent's request carries, as the resource server sees them.
fn headers(agent: &AgentClient, method: Method, url: &str, token: &str) -> (String, String) {
    let request = agent.request(method, url, token).unwrap().build().unwrap();
    let get = |name: &str| {
        request
            .headers()
            .get(name)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    };
    (get("authorization"), get("dpop"))
}

#[tokio::test]
async fn an_agent_mints_caches_delegates_and_a_resource_server_verifies() {
    let server = TestServer::start().await;
    let d = delegation(&server, 1).await;
    let agent = AgentClient::new(
        &server.base,
        d.agent.id,
        PrivateJwk::from_json(&d.key.to_json().unwrap()).unwrap(),
    )
    .unwrap();
    let first = agent.token(d.grant.id, &crm_only()).await.unwrap();
    let again = agent.token(d.grant.id, &crm_only()).await.unwrap();
    assert_eq!(
        first.access_token, again.access_token,
        "cached until shortly before expiry"
    );
    let verifier = ResourceVerifier::new(
        &server.base,
        CRM,
        d.rs.id,
        PrivateJwk::from_json(&d.rs_key.to_json().unwrap()).unwrap(),
    )
    .unwrap();
    let (authz, dpop) = headers(&agent, Method::GET, URL, &first.access_token);
    let claims = verifier
        .verify(&[&authz], &[&dpop], "GET", URL)
        .await
        .unwrap();
    assert_eq!(claims.act.sub, d.agent.id.to_string());
    assert_eq!(claims.sub, server.admin.id.to_string());

    // Delegation to a sub-agent: its token verifies with the sub-agent's own key.
    let (b, b_key) = server.agent("helper").await;
    let child = agent
        .delegate(&first.access_token, b.id, Some("crm.read"))
        .await
        .unwrap();
    let helper = AgentClient::new(&server.base, b.id, b_key).unwrap();
    let (authz, dpop) = headers(&helper, Method::POST, URL, &child.access_token);
    let claims = verifier
        .verify(&[&authz], &[&dpop], "POST", URL)
        .await
        .unwrap();
    assert_eq!(
        claims.act.chain(),
        vec![b.id.to_string(), d.agent.id.to_string()]
    );

    // Revocation reaches the verifier through introspection at once.
    agent.revoke(&first.access_token).await.unwrap();
    let (authz, dpop) = headers(&agent, Method::GET, URL, &first.access_token);
    let err = verifier
        .verify(&[&authz], &[&dpop], "GET", URL)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("invalid_token"), "{err}");
    let fresh = agent.token(d.grant.id, &crm_only()).await.unwrap();
    assert_ne!(
        fresh.access_token, first.access_token,
        "a revoked token leaves the cache"
    );
}

#[tokio::test]
async fn rfc9449_s7_the_resource_verifier_refuses_every_bad_request() {
    let server = TestServer::start().await;
    let d = delegation(&server, 0).await;
    let agent = AgentClient::new(
        &server.base,
        d.agent.id,
        PrivateJwk::from_json(&d.key.to_json().unwrap()).unwrap(),
    )
    .unwrap();
    let token = agent
        .token(d.grant.id, &crm_only())
        .await
        .unwrap()
        .access_token;
    let pay = agent
        .token(
            d.grant.id,
            &TokenRequest {
                scope: None,
                resource: Some(crate::support::PAY.into()),
            },
        )
        .await
        .unwrap()
        .access_token;
    let verifier = ResourceVerifier::new(&server.base, CRM, d.rs.id, d.rs_key).unwrap();
    let (authz, dpop) = headers(&agent, Method::GET, URL, &token);
    let now = OffsetDateTime::now_utc();
    let thief = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let stolen = rfc9449::create(&thief, "GET", URL, Some(&token), None, now).unwrap();
    let other_token_proof = rfc9449::create(&d.key, "GET", URL, Some(&pay), None, now).unwrap();
    let bearer = format!("Bearer {token}");
    // (case, Authorization values, DPoP values, method, URL, expected error code)
    type Case<'a> = (
        &'a str,
        Vec<&'a str>,
        Vec<&'a str>,
        &'a str,
        &'a str,
        Option<&'a str>,
    );
    let cases: Vec<Case<'_>> = vec![
        ("no token", vec![], vec![&dpop], "GET", URL, None),
        (
            "bearer scheme",
            vec![&bearer],
            vec![&dpop],
            "GET",
            URL,
            None,
        ),
        (
            "no proof",
            vec![&authz],
            vec![],
            "GET",
            URL,
            Some("invalid_dpop_proof"),
        ),
        (
            "two proofs",
            vec![&authz],
            vec![&dpop, &dpop],
            "GET",
            URL,
            Some("invalid_dpop_proof"),
        ),
        (
            "wrong method (htm)",
            vec![&authz],
            vec![&dpop],
            "POST",
            URL,
            Some("invalid_dpop_proof"),
        ),
        (
            "wrong URL (htu)",
            vec![&authz],
            vec![&dpop],
            "GET",
            "https://crm.example/other",
            Some("invalid_dpop_proof"),
        ),
        (
            "another key (cnf.jkt)",
            vec![&authz],
            vec![&stolen],
            "GET",
            URL,
            Some("invalid_dpop_proof"),
        ),
        (
            "proof for another token (ath)",
            vec![&authz],
            vec![&other_token_proof],
            "GET",
            URL,
            Some("invalid_dpop_proof"),
        ),
    ];
    for (case, a, p, method, url, code) in cases {
        let err = verifier.verify(&a, &p, method, url).await.unwrap_err();
        assert_eq!(err.code(), code, "{case}: {err}");
    }
    // The proof is fine once; a replay is refused.
    verifier
        .verify(&[&authz], &[&dpop], "GET", URL)
        .await
        .unwrap();
    let err = verifier
        .verify(&[&authz], &[&dpop], "GET", URL)
        .await
        .unwrap_err();
    assert!(matches!(err, VerifyError::InvalidProof(_)), "{err}");
    // A token for another audience.
    let (authz, dpop) = headers(&agent, Method::GET, URL, &pay);
    let err = verifier
        .verify(&[&authz], &[&dpop], "GET", URL)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("invalid_token"));
    // A token whose grant was revoked.
    server
        .admin_client()
        .grant_action(d.grant.id, "revoke", Some("x".into()))
        .await
        .unwrap();
    let (authz, dpop) = headers(&agent, Method::GET, URL, &token);
    let err = verifier
        .verify(&[&authz], &[&dpop], "GET", URL)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("invalid_token"));
}
