//! Every check the receiving organisation makes on an arriving authorization grant, refused
//! one at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use surety_api::federation::CreateFederationGrant;
use surety_jose::rfc9068::{self, AccessTokenClaims};
use surety_jose::{KeyAlg, PrivateJwk};
use surety_sdk::{AgentClient, TokenRequest};

use super::*;

/// One refusal per check B makes on an arriving authorization grant.
#[tokio::test]
async fn every_check_on_an_arriving_grant_refuses() {
    let w = world().await;
    let agent = w.client();
    let redeem = |assertion: String| {
        let agent = w.client();
        let peer = w.b.base.clone();
        async move {
            agent
                .redeem_at_peer(&peer, &assertion, &World::at_crm())
                .await
        }
    };
    let refused = |r: Result<surety_api::oauth::TokenResponse, surety_sdk::ClientError>,
                   code: &str,
                   says: &str| {
        let e = r.expect_err("refused");
        assert_eq!(e.code(), Some(code), "{e}");
        assert!(e.to_string().contains(says), "`{says}` in: {e}");
    };
    // Untrusted issuer: a well-formed grant signed by an organisation B never configured.
    let stranger = PrivateJwk::generate(KeyAlg::EdDSA).unwrap();
    let now = w.a.now();
    let mut claims = claims_of(&w.forged_by_a(|_| {}).await);
    claims["iss"] = json!("https://stranger.example");
    let untrusted = {
        let c: AccessTokenClaims = serde_json::from_value(claims.clone()).unwrap();
        rfc9068::sign_authorization_grant(&c, &stranger, &stranger.thumbprint()).unwrap()
    };
    refused(
        redeem(untrusted).await,
        "invalid_grant",
        "not a trusted federation peer",
    );
    // A key that is not A's, claiming to be A.
    let mut impostor: AccessTokenClaims = serde_json::from_value(claims).unwrap();
    impostor.iss = w.a.base.clone();
    let impostor =
        rfc9068::sign_authorization_grant(&impostor, &stranger, &stranger.thumbprint()).unwrap();
    refused(
        redeem(impostor).await,
        "invalid_grant",
        "invalid authorization grant",
    );
    // A grant for another audience.
    let elsewhere = w.forged_by_a(|c| c.aud = "https://c.example".into()).await;
    refused(
        redeem(elsewhere).await,
        "invalid_grant",
        "another organisation",
    );
    // Expired.
    let stale = w
        .forged_by_a(|c| {
            c.iat = now.unix_timestamp() - 600;
            c.exp = now.unix_timestamp() - 300;
        })
        .await;
    refused(redeem(stale).await, "invalid_grant", "expired");
    // An access token is not an authorization grant (typ).
    let access = agent
        .exchange_grant(
            w.grant,
            &surety_sdk::TokenRequest {
                scope: None,
                resource: Some(B_CRM.into()),
            },
        )
        .await
        .unwrap();
    refused(
        redeem(access.access_token.clone()).await,
        "invalid_grant",
        "typ",
    );
    // A foreign token presented directly at B's resource: not B's, whatever it says.
    assert!(w.call_crm(&access.access_token).await.is_err());
    let direct = w.decide(&access.access_token, READ, json!({}), None).await;
    assert_eq!(direct.decision, "deny", "{direct:?}");
    assert_eq!(
        w.crm.introspect(&access.access_token).await.unwrap(),
        json!({"active": false})
    );
    // Replay: the same grant twice.
    let once = agent
        .authorization_grant(w.grant, &w.b.base, Some(B_CRM), None)
        .await
        .unwrap();
    redeem(once.access_token.clone()).await.unwrap();
    refused(
        redeem(once.access_token).await,
        "invalid_grant",
        "already used",
    );
    // The DPoP proof (and client assertion) by another key than the grant's `cnf.jkt`.
    let fresh = agent
        .authorization_grant(w.grant, &w.b.base, Some(B_CRM), None)
        .await
        .unwrap();
    let thief = AgentClient::new(
        &w.a.base,
        w.agent,
        PrivateJwk::generate(KeyAlg::EdDSA).unwrap(),
    )
    .unwrap();
    refused(
        thief
            .redeem_at_peer(&w.b.base, &fresh.access_token, &World::at_crm())
            .await,
        "invalid_dpop_proof",
        "cnf.jkt",
    );
    // Scope beyond the federation grant (A's grant has it; B never gave it) — and the
    // refusal does not use the grant up: asked again within bounds, it is honoured.
    let wide = agent
        .authorization_grant(w.grant, &w.b.base, Some(B_CRM), None)
        .await
        .unwrap();
    let ask = |scope: &str| TokenRequest {
        scope: Some(scope.into()),
        resource: Some(B_CRM.into()),
    };
    refused(
        agent
            .redeem_at_peer(&w.b.base, &wide.access_token, &ask("files.share_external"))
            .await,
        "invalid_scope",
        "federation grant",
    );
    agent
        .redeem_at_peer(&w.b.base, &wide.access_token, &ask(READ))
        .await
        .unwrap();
    // A peer naming one of B's own humans as its principal.
    let posing = w.forged_by_a(|c| c.sub = w.b.admin.id.to_string()).await;
    refused(
        redeem(posing).await,
        "invalid_grant",
        "of this organisation",
    );
    // Another agent of A, which no federation grant at B covers; then an expired one.
    let (other, other_key) = w.a.agent("other-bot").await;
    let other_grant = w.a.grant(other.id, &[READ], &[B_CRM], 0).await;
    let other_client = AgentClient::new(&w.a.base, other.id, other_key).unwrap();
    let uncovered = other_client
        .authorization_grant(other_grant.id, &w.b.base, Some(B_CRM), None)
        .await
        .unwrap();
    refused(
        other_client
            .redeem_at_peer(&w.b.base, &uncovered.access_token, &World::at_crm())
            .await,
        "invalid_grant",
        "no federation grant",
    );
    w.b.admin_client()
        .create_federation_grant(&CreateFederationGrant {
            peer: w.a.base.clone(),
            agents: Some(other.id.to_string()),
            principals: None,
            scopes: vec![READ.into()],
            resources: vec![B_CRM.into()],
            constraints: None,
            expires_at: None,
            expires_in: Some(1),
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let late = other_client
        .authorization_grant(other_grant.id, &w.b.base, Some(B_CRM), None)
        .await
        .unwrap();
    refused(
        other_client
            .redeem_at_peer(&w.b.base, &late.access_token, &World::at_crm())
            .await,
        "invalid_grant",
        "expired",
    );
    // `jku` in the header pointing at a local address: never fetched, the key it would
    // serve never trusted.
    let hits = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let jku = format!("http://{}/jwks", listener.local_addr().unwrap());
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((_socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    let body = serde_json::to_value(claims_of(&w.forged_by_a(|_| {}).await)).unwrap();
    let mut header = serde_json::Map::new();
    header.insert("typ".into(), json!("authz-grant+jwt"));
    header.insert("kid".into(), json!(stranger.thumbprint()));
    header.insert("jku".into(), json!(jku));
    let with_jku = surety_jose::jws::sign(header, &body, &stranger).unwrap();
    refused(
        redeem(with_jku).await,
        "invalid_grant",
        "invalid authorization grant",
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the `jku` URL was fetched");
    // A peer B no longer trusts: its agents' tokens stop at once.
    let good = agent
        .chained_token(w.grant, &w.b.base, &World::at_crm())
        .await
        .unwrap();
    assert_eq!(
        w.decide(&good.access_token, READ, json!({}), None)
            .await
            .decision,
        "allow"
    );
    w.b.admin_client().remove_peer("org-a").await.unwrap();
    assert_eq!(
        w.decide(&good.access_token, READ, json!({}), None)
            .await
            .decision,
        "deny"
    );
    let after = agent
        .authorization_grant(w.grant, &w.b.base, Some(B_CRM), None)
        .await
        .unwrap();
    refused(
        redeem(after.access_token).await,
        "invalid_grant",
        "not a trusted federation peer",
    );
    w.a.stop().await;
    w.b.stop().await;
}
