//! Configuring federation: trusted peers (by admins, checked), the CLI end to end, and
//! signed agent cards.

use serde_json::{Value, json};
use surety_api::federation::{AddPeer, CreateFederationGrant, PublishCard};
use surety_jose::{KeyAlg, PrivateJwk, PublicJwk};
use surety_testkit::http;

use super::*;
use crate::e2e::{admin_profile, surety_cli};

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
        crate::e2e::describe("federation add", &out)
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
        crate::e2e::describe("federation grant create", &out)
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
        crate::e2e::describe("federation add --jwks-file", &out)
    );
    let grant = a.grant(agent.id, &[READ], &[B_CRM], 0).await;
    let key_file = crate::e2e::write_key(w_dir.path(), "agent.jwk.json", &key);
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
        crate::e2e::describe("token --peer", &out)
    );
    let token: Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = claims_of(token["access_token"].as_str().unwrap());
    assert_eq!(c["iss"], b.base.as_str());
    assert_eq!(c["act"]["iss"], a.base.as_str());
    let out = surety_cli(&b_profile, &["federation", "remove", "org-a"]).await;
    assert!(
        out.status.success(),
        "{}",
        crate::e2e::describe("federation remove", &out)
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
