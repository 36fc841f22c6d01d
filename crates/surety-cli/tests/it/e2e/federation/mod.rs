//! Two organisations, two real servers (separate data dirs, issuers and ports): an agent of
//! org A acts at org B's resource through identity chaining — A issues an authorization
//! grant, B trades it for its own DPoP-bound token under a federation grant, B's policies
//! decide, a step-up is approved by A's human at A and honoured at B, and revoking at A ends
//! the agent's access at B. Then every check B makes, refused one at a time.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use surety_api::admin::AuditQuery;
use surety_api::approvals::ApprovalQuery;
use surety_api::decisions::{DecisionInput, ResourceRef};
use surety_api::federation::{AddPeer, CreateFederationGrant};
use surety_core::id::AgentId;
use surety_jose::PrivateJwk;
use surety_jose::rfc9068::{self, AccessTokenClaims, Act, Cnf};
use surety_sdk::{AgentClient, ApprovalAsk, ResourceVerifier, TokenRequest};
use surety_testkit::{Options, TestServer, http};

pub(super) use crate::support::{claims_of, header_of};

mod configuration;
mod refusals;

/// B's CRM: the resource A's agent reaches.
pub(super) const B_CRM: &str = "https://crm.b.example";
pub(super) const READ: &str = "crm.read_customer";
pub(super) const TRANSFER: &str = "payments.transfer";

pub(super) async fn org() -> TestServer {
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
pub(super) struct World {
    pub(super) a: TestServer,
    pub(super) b: TestServer,
    pub(super) agent: AgentId,
    pub(super) key: PrivateJwk,
    pub(super) grant: surety_core::id::GrantId,
    pub(super) crm: ResourceVerifier,
    pub(super) federation_grant: surety_core::id::FederationGrantId,
}

pub(super) async fn world() -> World {
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
    pub(super) fn client(&self) -> AgentClient {
        AgentClient::new(
            &self.a.base,
            self.agent,
            PrivateJwk::from_json(&self.key.to_json().unwrap()).unwrap(),
        )
        .unwrap()
    }

    pub(super) fn at_crm() -> TokenRequest {
        TokenRequest {
            scope: None,
            resource: Some(B_CRM.into()),
        }
    }

    pub(super) async fn decide(
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
    pub(super) async fn call_crm(
        &self,
        token: &str,
    ) -> Result<AccessTokenClaims, surety_sdk::VerifyError> {
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
    pub(super) async fn forged_by_a(&self, edit: impl FnOnce(&mut AccessTokenClaims)) -> String {
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

pub(super) async fn events(
    server: &TestServer,
    kind: &str,
) -> Vec<surety_api::admin::AuditEventView> {
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
