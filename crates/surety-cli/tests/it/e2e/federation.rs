//! Two organisations, two real servers (separate data dirs, issuers and ports): an agent of
//! org A acts at org B's resource through identity chaining — A issues an authorization
//! grant, B trades it for its own DPoP-bound token under a federation grant, B's policies
//! decide, a step-up is approved by A's human at A and honoured at B, and revoking at A ends
//! the agent's access at B. Then every check B makes, refused one at a time.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use surety_api::admin::AuditQuery;
use surety_api::approvals::ApprovalQuery;
use surety_api::decisions::{DecisionInput, ResourceRef};
use surety_api::federation::{AddPeer, CreateFederationGrant, PublishCard};
use surety_core::id::AgentId;
use surety_jose::rfc9068::{self, AccessTokenClaims, Act, Cnf};
use surety_jose::{KeyAlg, PrivateJwk, PublicJwk};
use surety_sdk::{AgentClient, ApprovalAsk, ResourceVerifier, TokenRequest};
use surety_testkit::{Options, TestServer, http};

use super::{admin_profile, surety_cli};

/// B's CRM: the resource A's agent reaches.
const B_CRM: &str = "https://crm.b.example";
const READ: &str = "crm.read_customer";
const TRANSFER: &str = "payments.transfer";

async fn org() -> TestServer {
    TestServer::start_with(Options {
        config: vec![
            ("dev", "true".into()),
            ("federation_poll_interval", "100ms".into()),
            ("ciba_interval", "1s".into()),
        ],
        ..Options::default()
    })
    .await
}

/// A's agent and its grant, B's verifier for its CRM.
struct World {
    a: TestServer,
    b: TestServer,
    agent: AgentId,
    key: PrivateJwk,
    grant: surety_core::id::GrantId,
    crm: ResourceVerifier,
    federation_grant: surety_core::id::FederationGrantId,
}

async fn world() -> World {
    let (a, b) = (org().await, org().await);
    // B trusts A by its metadata (keys fetched); A trusts B by B's pinned keys (so that it
    // issues grants for B and answers B's introspection).
    let peer = b
        .admin_client()
        .add_peer(&AddPeer {
            issuer: a.base.clone(),
            name: Some("org-a".into()),
            metadata_url: Some(a.url("/.well-known/oauth-authorization-server")),
            jwks: None,
            introspection_endpoint: None,
        })
        .await
        .unwrap();
    assert_eq!(peer.source, "metadata");
    assert_eq!(
        peer.introspection_endpoint.as_deref(),
        Some(a.url("/oauth2/introspect").as_str())
    );
    let b_keys: Value = http()
        .get(b.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    a.admin_client()
        .add_peer(&AddPeer {
            issuer: b.base.clone(),
            name: Some("org-b".into()),
            metadata_url: None,
            jwks: Some(b_keys),
            introspection_endpoint: None,
        })
        .await
        .unwrap();
    let (agent, key) = a.agent("travel-bot").await;
    let grant = a
        .admin_client()
        .create_grant(&surety_api::credentials::CreateGrant {
            agent: agent.id,
            principal: None,
            scopes: vec![READ.into(), TRANSFER.into(), "files.share_external".into()],
            resources: vec![B_CRM.into()],
            constraints: None,
            max_delegation_depth: None,
            expires_at: None,
            expires_in: Some(3600),
        })
        .await
        .unwrap();
    // B lets exactly this agent of A read customers and transfer up to 5000 EUR at its CRM.
    let fg = b
        .admin_client()
        .create_federation_grant(&CreateFederationGrant {
            peer: "org-a".into(),
            agents: Some(agent.id.to_string()),
            principals: None,
            scopes: vec![READ.into(), TRANSFER.into()],
            resources: vec![B_CRM.into()],
            constraints: Some(json!({"max_amount": 5000, "currency": "EUR"})),
            expires_at: None,
            expires_in: Some(3600),
        })
        .await
        .unwrap();
    let (rs, rs_key) = b.resource_server(B_CRM).await;
    let crm = ResourceVerifier::new(&b.base, B_CRM, rs.id, rs_key).unwrap();
    World {
        agent: agent.id,
        key,
        grant: grant.id,
        crm,
        federation_grant: fg.id,
        a,
        b,
    }
}

impl World {
    fn client(&self) -> AgentClient {
        AgentClient::new(
            &self.a.base,
            self.agent,
            PrivateJwk::from_json(&self.key.to_json().unwrap()).unwrap(),
        )
        .unwrap()
    }

    fn at_crm() -> TokenRequest {
        TokenRequest {
            scope: None,
            resource: Some(B_CRM.into()),
        }
    }

    async fn decide(
        &self,
        token: &str,
        action: &str,
        arguments: Value,
        approval: Option<&str>,
    ) -> surety_api::decisions::DecisionView {
        self.crm
            .decide(&DecisionInput {
                token: token.into(),
                action: action.into(),
                resource: ResourceRef {
                    kind: "Resource".into(),
                    id: "cust-42".into(),
                },
                arguments,
                approval_token: approval.map(str::to_owned),
                auth_req_id: None,
                request_approval: false,
            })
            .await
            .unwrap()
    }

    /// The agent calls B's CRM with `token` and a fresh DPoP proof; the CRM verifies it.
    async fn call_crm(&self, token: &str) -> Result<AccessTokenClaims, surety_sdk::VerifyError> {
        let url = format!("{B_CRM}/customers/42");
        let proof = surety_jose::rfc9449::create(
            &self.key,
            "GET",
            &url,
            Some(token),
            None,
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        self.crm
            .verify(&[&format!("DPoP {token}")], &[&proof], "GET", &url)
            .await
    }

    /// An authorization grant signed by A's own key, with `edit` applied to its claims.
    async fn forged_by_a(&self, edit: impl FnOnce(&mut AccessTokenClaims)) -> String {
        let now = self.a.now();
        let mut claims = AccessTokenClaims {
            iss: self.a.base.clone(),
            sub: self.a.admin.id.to_string(),
            sub_id: None,
            aud: self.b.base.clone(),
            client_id: self.agent.to_string(),
            iat: now.unix_timestamp(),
            exp: now.unix_timestamp() + 120,
            jti: surety_core::id::TokenId::new(now).to_string(),
            scope: READ.into(),
            act: Act::from_chain(&[self.agent.to_string()]).unwrap(),
            cnf: Cnf {
                jkt: self.key.thumbprint(),
            },
            grant_id: self.grant.to_string(),
            derived_from: vec![],
            authorization_details: None,
            approval_id: None,
            resource: Some(B_CRM.into()),
            constraints: None,
        };
        edit(&mut claims);
        let signer = self
            .a
            .state
            .keys
            .signer(self.a.store().as_ref(), now)
            .await
            .unwrap();
        rfc9068::sign_authorization_grant(&claims, &signer.key, &signer.kid).unwrap()
    }
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&surety_jose::b64::decode(payload).unwrap()).unwrap()
}

fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&surety_jose::b64::decode(header).unwrap()).unwrap()
}

async fn events(server: &TestServer, kind: &str) -> Vec<surety_api::admin::AuditEventView> {
    server
        .admin_client()
        .list_audit(&AuditQuery {
            kind: Some(kind.into()),
            limit: Some(1000),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .items
}

#[tokio::test]
async fn an_agent_of_one_organisation_acts_in_another_until_its_home_revokes_it() {
    let w = world().await;
    let agent = w.client();
    // 1. At A: an authorization grant for B, bound to the agent's key.
    let issued = agent
        .authorization_grant(w.grant, &w.b.base, Some(B_CRM), None)
        .await
        .unwrap();
    assert_eq!(issued.token_type, "N_A");
    assert_eq!(
        issued.issued_token_type.as_deref(),
        Some("urn:ietf:params:oauth:token-type:jwt")
    );
    assert_eq!(header_of(&issued.access_token)["typ"], "authz-grant+jwt");
    let g = claims_of(&issued.access_token);
    assert_eq!(g["iss"], w.a.base.as_str());
    assert_eq!(g["aud"], w.b.base.as_str());
    assert_eq!(g["resource"], B_CRM);
    assert_eq!(g["sub"], w.a.admin.id.to_string().as_str());
    assert_eq!(g["act"], json!({"sub": w.agent.to_string()}));
    assert_eq!(g["cnf"]["jkt"], w.key.thumbprint().as_str());
    // 2. At B: its own token, scope narrowed to what B allows, the foreign identities kept.
    let local = agent
        .redeem_at_peer(&w.b.base, &issued.access_token, &World::at_crm())
        .await
        .unwrap();
    assert_eq!(local.token_type, "DPoP");
    let c = claims_of(&local.access_token);
    assert_eq!(c["iss"], w.b.base.as_str());
    assert_eq!(c["aud"], B_CRM);
    assert_eq!(
        c["scope"],
        format!("{READ} {TRANSFER}").as_str(),
        "files.share_external is not B's to give"
    );
    assert_eq!(c["sub"], w.a.admin.id.to_string().as_str());
    assert_eq!(
        c["sub_id"],
        json!({"format": "iss_sub", "iss": w.a.base, "sub": w.a.admin.id.to_string()})
    );
    assert_eq!(
        c["act"],
        json!({"sub": w.agent.to_string(), "iss": w.a.base})
    );
    assert_eq!(c["cnf"]["jkt"], w.key.thumbprint().as_str());
    assert_eq!(c["grant_id"], w.federation_grant.to_string().as_str());
    assert!(
        c["exp"].as_i64() <= g["exp"].as_i64(),
        "never past the home grant"
    );
    // 3. B's resource server verifies it like any token of B's (signature, DPoP,
    //    introspection at B), and B's policies decide under the federation grant.
    let verified = w.call_crm(&local.access_token).await.unwrap();
    assert_eq!(verified.client_id, w.agent.to_string());
    let read = w.decide(&local.access_token, READ, json!({}), None).await;
    assert_eq!(read.decision, "allow", "{read:?}");
    let over = w
        .decide(
            &local.access_token,
            TRANSFER,
            json!({"amount": 9000, "currency": "EUR"}),
            None,
        )
        .await;
    assert_eq!(
        over.decision, "deny",
        "above the federation grant's max_amount: {over:?}"
    );
    // 4. Step-up across the boundary: B asks; A's human approves at A; B honours it once.
    let big = json!({"amount": 2000, "currency": "EUR"});
    let step = w
        .decide(&local.access_token, TRANSFER, big.clone(), None)
        .await;
    assert_eq!(step.decision, "step_up", "{step:?}");
    let step_up = step.step_up.unwrap();
    assert!(
        step_up.authorization_details[0].get("grant_id").is_none(),
        "the home org finds its own grant"
    );
    let asked = agent
        .request_approval(&ApprovalAsk {
            login_hint: &w.a.admin.id.to_string(),
            authorization_details: &step_up.authorization_details,
            binding_message: Some(&step_up.binding_message),
            requested_expiry: None,
            client_notification_token: None,
        })
        .await
        .unwrap();
    let shown =
        w.a.admin_client()
            .list_approvals(&ApprovalQuery::default())
            .await
            .unwrap()
            .items;
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].action, TRANSFER);
    w.a.admin_client()
        .answer_approval(&shown[0], true, None)
        .await
        .unwrap();
    let approval = agent
        .wait_for_approval(&asked.auth_req_id, &asked)
        .await
        .unwrap();
    let approved = w
        .decide(
            &local.access_token,
            TRANSFER,
            big.clone(),
            Some(&approval.access_token),
        )
        .await;
    assert_eq!(approved.decision, "allow", "{approved:?}");
    let again = w
        .decide(
            &local.access_token,
            TRANSFER,
            big.clone(),
            Some(&approval.access_token),
        )
        .await;
    assert_eq!(
        again.decision, "deny",
        "an approval is used once: {again:?}"
    );
    let other = w
        .decide(
            &local.access_token,
            TRANSFER,
            json!({"amount": 2001, "currency": "EUR"}),
            Some(&approval.access_token),
        )
        .await;
    assert_eq!(
        other.decision, "deny",
        "it approves exactly one action: {other:?}"
    );
    // 5. The audit logs at both organisations show the whole chain.
    let at_a = events(&w.a, "token.issued").await;
    let grant_event = at_a
        .iter()
        .find(|e| e.details["issued_token_type"] == "urn:ietf:params:oauth:token-type:jwt")
        .expect("A records the authorization grant");
    assert_eq!(grant_event.agent, Some(w.agent));
    assert_eq!(grant_event.details["peer"], w.b.base.as_str());
    assert_eq!(
        grant_event.details["act"],
        json!({"sub": w.agent.to_string()})
    );
    let at_b = events(&w.b, "token.issued").await;
    let local_event = at_b
        .iter()
        .find(|e| e.details["peer"] == w.a.base.as_str())
        .expect("B records the local token");
    assert_eq!(
        local_event.details["grant_type"],
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    );
    assert_eq!(
        local_event.details["act"],
        json!({"sub": w.agent.to_string(), "iss": w.a.base})
    );
    assert_eq!(local_event.details["sub_id"]["iss"], w.a.base.as_str());
    assert_eq!(local_event.details["authorization_grant"]["jti"], g["jti"]);
    let decisions = events(&w.b, "decision.made").await;
    assert!(
        decisions
            .iter()
            .all(|d| d.details["peer"] == w.a.base.as_str()),
        "{decisions:?}"
    );
    assert!(
        decisions
            .iter()
            .any(|d| d.details["decision"] == "allow"
                && d.details["act"]["iss"] == w.a.base.as_str())
    );
    // 6. Revoked at A → refused at B, within the poll interval, without B being told.
    w.a.admin_client()
        .grant_action(w.grant, "revoke", Some("trip cancelled".into()))
        .await
        .unwrap();
    let revoked_at = Instant::now();
    loop {
        let d = w.decide(&local.access_token, READ, json!({}), None).await;
        if d.decision == "deny" {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(10),
            "B still honours a grant A revoked"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "cross-organisation revocation reached B after {:?}",
        revoked_at.elapsed()
    );
    let introspected = w.crm.introspect(&local.access_token).await.unwrap();
    assert_eq!(introspected, json!({"active": false}));
    let revoked = events(&w.b, "token.revoked").await;
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(revoked[0].details["authorization_grant"], g["jti"]);
    // And A will not issue another.
    let refused = agent
        .authorization_grant(w.grant, &w.b.base, Some(B_CRM), None)
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some("invalid_grant"), "{refused}");
    w.a.stop().await;
    w.b.stop().await;
}

/// The home grant's limits travel with the agent: B applies the stricter of them and its own.
#[tokio::test]
async fn the_home_grants_limits_apply_at_the_peer() {
    let w = world().await;
    let limited =
        w.a.admin_client()
            .create_grant(&surety_api::credentials::CreateGrant {
                agent: w.agent,
                principal: None,
                scopes: vec![TRANSFER.into()],
                resources: vec![B_CRM.into()],
                constraints: Some(json!({"max_amount": 100, "currency": "EUR"})),
                max_delegation_depth: None,
                expires_at: None,
                expires_in: Some(3600),
            })
            .await
            .unwrap();
    let token = w
        .client()
        .chained_token(limited.id, &w.b.base, &World::at_crm())
        .await
        .unwrap();
    assert_eq!(
        claims_of(&token.access_token)["constraints"],
        json!({"max_amount": 100, "currency": "EUR"})
    );
    let small = w
        .decide(
            &token.access_token,
            TRANSFER,
            json!({"amount": 50, "currency": "EUR"}),
            None,
        )
        .await;
    assert_eq!(small.decision, "allow", "{small:?}");
    // B alone would allow 500 EUR (its limit is 5000); A's human delegated 100.
    let over = w
        .decide(
            &token.access_token,
            TRANSFER,
            json!({"amount": 500, "currency": "EUR"}),
            None,
        )
        .await;
    assert_eq!(over.decision, "deny", "{over:?}");
    assert!(
        over.policy_ids
            .contains(&"forbid-over-max-amount".to_owned()),
        "{over:?}"
    );
    // Policies see the peer's identities with their issuer, never as B's own.
    let decisions = events(&w.b, "decision.made").await;
    let request = &decisions[0].details["request"];
    assert_eq!(
        request["agent"],
        format!("{}@{}", w.agent, w.a.base).as_str()
    );
    assert_eq!(request["peer"], w.a.base.as_str());
    w.a.stop().await;
    w.b.stop().await;
}

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

/// Peers are configured by admins with keys that parse, from metadata that names them.
#[tokio::test]
async fn peers_are_checked_when_trusted() {
    let (a, b) = (org().await, org().await);
    let admin = b.admin_client();
    let add = |issuer: &str, metadata: Option<String>, jwks: Option<Value>| AddPeer {
        issuer: issuer.into(),
        name: None,
        metadata_url: metadata,
        jwks,
        introspection_endpoint: None,
    };
    // Metadata naming another issuer (RFC 8414 §3.3).
    let e = admin
        .add_peer(&add(
            "https://a.example",
            Some(a.url("/.well-known/oauth-authorization-server")),
            None,
        ))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("names issuer"), "{e}");
    // Neither or both key sources; private keys; no keys.
    let e = admin.add_peer(&add(&a.base, None, None)).await.unwrap_err();
    assert_eq!(e.code(), Some("invalid_request"), "{e}");
    let private = PrivateJwk::generate(KeyAlg::EdDSA)
        .unwrap()
        .to_json()
        .unwrap();
    let e = admin
        .add_peer(&add(&a.base, None, Some(json!({"keys": [private]}))))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("private"), "{e}");
    let e = admin
        .add_peer(&add(&a.base, None, Some(json!({"keys": []}))))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("1 to"), "{e}");
    // Its own issuer.
    let e = admin
        .add_peer(&add(
            &b.base,
            None,
            Some(
                json!({"keys": [PrivateJwk::generate(KeyAlg::EdDSA).unwrap().public().to_json()]}),
            ),
        ))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("own issuer"), "{e}");
    // A federation grant for an unknown peer; a member may not configure federation.
    let e = admin
        .create_federation_grant(&CreateFederationGrant {
            peer: "nobody".into(),
            agents: None,
            principals: None,
            scopes: vec![READ.into()],
            resources: vec![B_CRM.into()],
            constraints: None,
            expires_at: None,
            expires_in: Some(60),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("not_found"), "{e}");
    let (_, _, member) = b
        .enrolled_human("Mia", "mia@b.example", surety_core::human::Role::Member)
        .await;
    let e = member.list_peers().await.unwrap_err();
    assert_eq!(e.code(), Some("forbidden"), "{e}");
    a.stop().await;
    b.stop().await;
}

/// The CLI: trust a peer, grant its agents, and chain a token as an agent.
#[tokio::test]
async fn the_cli_configures_federation_and_chains_a_token() {
    let w_dir = tempfile::tempdir().unwrap();
    let (a, b) = (org().await, org().await);
    let b_profile = admin_profile(&b, w_dir.path());
    let out = surety_cli(
        &b_profile,
        &[
            "federation",
            "add",
            "--issuer",
            &a.base,
            "--metadata-url",
            &a.url("/.well-known/oauth-authorization-server"),
            "--name",
            "org-a",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        super::describe("federation add", &out)
    );
    let out = surety_cli(&b_profile, &["--json", "federation", "list"]).await;
    let peers: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(peers[0]["name"], "org-a");
    let (agent, key) = a.agent("cli-bot").await;
    let out = surety_cli(
        &b_profile,
        &[
            "federation",
            "grant",
            "create",
            "--peer",
            "org-a",
            "--scope",
            READ,
            "--resource",
            B_CRM,
            "--expires",
            "1h",
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        super::describe("federation grant create", &out)
    );
    let b_keys: Value = http()
        .get(b.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwks_file = w_dir.path().join("b.jwks.json");
    std::fs::write(&jwks_file, b_keys.to_string()).unwrap();
    let a_dir = w_dir.path().join("a");
    std::fs::create_dir(&a_dir).unwrap();
    let a_profile = admin_profile(&a, &a_dir);
    let out = surety_cli(
        &a_profile,
        &[
            "federation",
            "add",
            "--issuer",
            &b.base,
            "--jwks-file",
            jwks_file.to_str().unwrap(),
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        super::describe("federation add --jwks-file", &out)
    );
    let grant = a.grant(agent.id, &[READ], &[B_CRM], 0).await;
    let key_file = super::write_key(w_dir.path(), "agent.jwk.json", &key);
    let out = surety_cli(
        &a_profile,
        &[
            "token",
            "--key",
            key_file.to_str().unwrap(),
            "--agent",
            &agent.id.to_string(),
            "--server",
            &a.base,
            "--grant",
            &grant.id.to_string(),
            "--peer",
            &b.base,
            "--resource",
            B_CRM,
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        super::describe("token --peer", &out)
    );
    let token: Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = claims_of(token["access_token"].as_str().unwrap());
    assert_eq!(c["iss"], b.base.as_str());
    assert_eq!(c["act"]["iss"], a.base.as_str());
    let out = surety_cli(&b_profile, &["federation", "remove", "org-a"]).await;
    assert!(
        out.status.success(),
        "{}",
        super::describe("federation remove", &out)
    );
    a.stop().await;
    b.stop().await;
}

/// An agent's card, signed by its organisation: verifiable with the organisation's keys,
/// naming the agent's key; gone when the agent is suspended or the card withdrawn.
#[tokio::test]
async fn agent_cards_are_signed_by_the_organisation() {
    let a = org().await;
    let (agent, key) = a.agent("travel-bot").await;
    let url = a.url(&format!("/agents/{}/.well-known/agent-card.json", agent.id));
    assert_eq!(
        http().get(&url).send().await.unwrap().status(),
        404,
        "no card until published"
    );
    let published = a
        .admin_client()
        .publish_card(
            agent.id,
            &PublishCard {
                description: "Books trips".into(),
                url: "https://agents.a.example/travel".into(),
                skills: vec![surety_api::federation::CardSkill {
                    id: "book".into(),
                    name: "Book a trip".into(),
                    description: "Books flights and hotels".into(),
                    tags: vec!["travel".into()],
                }],
            },
        )
        .await
        .unwrap();
    let served: Value = http().get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(served["name"], "travel-bot");
    assert_eq!(served["protocolVersion"], "0.3.0");
    assert_eq!(published["capabilities"], served["capabilities"]);
    let ext = &served["capabilities"]["extensions"][0]["params"];
    assert_eq!(ext["issuer"], a.base.as_str());
    assert_eq!(ext["agent_id"], agent.id.to_string().as_str());
    assert_eq!(ext["jwks"]["keys"][0]["kid"], key.thumbprint().as_str());
    // Verify as a peer would: the organisation's published keys, the card without
    // `signatures` in canonical form.
    let jwks: Value = http()
        .get(a.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let verify = |card: &Value| -> bool {
        let sig = &card["signatures"][0];
        let mut unsigned = card.clone();
        unsigned.as_object_mut().unwrap().remove("signatures");
        let payload = surety_core::canonical::to_string(&unsigned);
        jwks["keys"].as_array().unwrap().iter().any(|k| {
            let key = PublicJwk::from_json(k).unwrap();
            surety_jose::jws::verify_detached(
                sig["protected"].as_str().unwrap(),
                payload.as_bytes(),
                sig["signature"].as_str().unwrap(),
                &key,
            )
            .is_ok()
        })
    };
    assert!(verify(&served));
    assert_eq!(
        header_of(&format!(
            "{}.x.y",
            served["signatures"][0]["protected"].as_str().unwrap()
        ))["typ"],
        "JOSE"
    );
    let mut tampered = served.clone();
    tampered["capabilities"]["extensions"][0]["params"]["jwks"]["keys"][0]["x"] = json!(
        PrivateJwk::generate(KeyAlg::EdDSA)
            .unwrap()
            .public()
            .to_json()["x"]
    );
    assert!(
        !verify(&tampered),
        "a card naming another key does not verify"
    );
    // Suspended: no card. Withdrawn: no card.
    a.admin_client()
        .agent_action(agent.id, "suspend", Some("check".into()))
        .await
        .unwrap();
    assert_eq!(http().get(&url).send().await.unwrap().status(), 404);
    a.admin_client()
        .agent_action(agent.id, "reinstate", None)
        .await
        .unwrap();
    assert_eq!(http().get(&url).send().await.unwrap().status(), 200);
    a.admin_client().withdraw_card(agent.id).await.unwrap();
    assert_eq!(http().get(&url).send().await.unwrap().status(), 404);
    // Only the owner or an admin publishes.
    let (_, _, member) = a
        .enrolled_human("Mia", "mia@a.example", surety_core::human::Role::Member)
        .await;
    let e = member
        .publish_card(
            agent.id,
            &PublishCard {
                description: "x".into(),
                url: "https://x.example".into(),
                skills: vec![],
            },
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("forbidden"), "{e}");
    a.stop().await;
}
