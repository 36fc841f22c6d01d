//! `surety bench federation`: identity chaining between two running Surety organisations —
//! how long a chained token takes (the authorization grant at home plus its redemption at
//! the peer), and how long after a revocation at home the peer refuses the agent.
//!
//! `--profile` is an admin of the peer (the receiving organisation), `--home-profile` an
//! admin of the home organisation. Each trusts the other if it does not yet (the peer by
//! the home's metadata, which it fetches — loopback needs the peer in `dev` mode; the home
//! by the peer's published keys); then a fresh agent at home, its grant, a federation grant
//! at the peer and a resource server there to ask decisions.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use serde_json::json;
use surety_api::credentials::{CreateGrant, CreateResourceServer};
use surety_api::decisions::{DecisionInput, ResourceRef};
use surety_api::federation::{AddPeer, CreateFederationGrant};
use surety_jose::{KeyAlg, PrivateJwk};
use surety_sdk::{AdminClient, AgentClient, ResourceVerifier, TokenRequest};

use crate::Globals;
use crate::bench_audit::{Latency, latency};
use crate::output::{self, say};

const ACTION: &str = "crm.read_customer";

#[derive(Debug, Args)]
pub struct FederationLoad {
    /// The home organisation's admin profile (`--profile` is the peer's).
    #[arg(long, value_name = "FILE")]
    home_profile: PathBuf,
    /// Chained tokens minted one after another, each timed.
    #[arg(long, default_value_t = 200)]
    rounds: usize,
    /// Revocations at home, each timed until the peer's first refusal.
    #[arg(long, default_value_t = 10)]
    revocations: usize,
    /// Revocations are spread evenly over this span (the peer's `federation_poll_interval`),
    /// so that they fall at every point of its polling cycle rather than just after a poll.
    #[arg(long, default_value = "2s")]
    spread: String,
}

#[derive(Debug, Serialize)]
struct Report {
    rounds: usize,
    /// Home exchange + peer redemption.
    chained_token: Latency,
    /// The home exchange alone.
    authorization_grant: Latency,
    revocations: usize,
    /// From the revoke call's answer at home to the first refusal at the peer.
    revocation_delay: Latency,
}

async fn trust_each_other(home: &AdminClient, peer: &AdminClient) -> anyhow::Result<()> {
    let (home_issuer, peer_issuer) = (home.server().to_owned(), peer.server().to_owned());
    if !peer
        .list_peers()
        .await?
        .iter()
        .any(|p| p.issuer == home_issuer)
    {
        peer.add_peer(&AddPeer {
            issuer: home_issuer.clone(),
            name: None,
            metadata_url: Some(format!(
                "{home_issuer}/.well-known/oauth-authorization-server"
            )),
            jwks: None,
            introspection_endpoint: None,
        })
        .await?;
    }
    if !home
        .list_peers()
        .await?
        .iter()
        .any(|p| p.issuer == peer_issuer)
    {
        let jwks: serde_json::Value = reqwest::get(format!("{peer_issuer}/jwks"))
            .await?
            .json()
            .await?;
        home.add_peer(&AddPeer {
            issuer: peer_issuer.clone(),
            name: None,
            metadata_url: None,
            jwks: Some(jwks),
            introspection_endpoint: Some(format!("{peer_issuer}/oauth2/introspect")),
        })
        .await?;
    }
    Ok(())
}

fn grant_body(agent: surety_core::id::AgentId, resource: &str) -> CreateGrant {
    CreateGrant {
        agent,
        principal: None,
        scopes: vec![ACTION.into()],
        resources: vec![resource.into()],
        constraints: None,
        max_delegation_depth: None,
        expires_at: None,
        expires_in: Some(3600),
    }
}

pub async fn run(g: &Globals, args: FederationLoad) -> anyhow::Result<()> {
    let peer = g.client()?;
    let home = Globals {
        profile: Some(args.home_profile.clone()),
        json: g.json,
    }
    .client()?;
    trust_each_other(&home, &peer).await?;
    let (agent, key, resource) = crate::bench::fresh_agent(&home, "federation").await?;
    peer.create_federation_grant(&CreateFederationGrant {
        peer: home.server().to_owned(),
        agents: Some(agent.id.to_string()),
        principals: None,
        scopes: vec![ACTION.into()],
        resources: vec![resource.clone()],
        constraints: None,
        expires_at: None,
        expires_in: Some(3600),
    })
    .await?;
    let rs_key = PrivateJwk::generate(KeyAlg::EdDSA)?;
    let rs = peer
        .create_resource_server(&CreateResourceServer {
            audience: resource.clone(),
            public_key: rs_key.public().to_json(),
            name: None,
        })
        .await?;
    let verifier = ResourceVerifier::new(peer.server(), &resource, rs.id, rs_key)?;
    let client = AgentClient::new(home.server(), agent.id, key)?;
    let request = TokenRequest {
        scope: None,
        resource: Some(resource.clone()),
    };
    let grant = home.create_grant(&grant_body(agent.id, &resource)).await?;
    // Warm both servers' caches (the peer's fetch of the home's keys happens here).
    client
        .chained_token(grant.id, peer.server(), &request)
        .await?;
    let (mut chained, mut first_hop) = (Vec::new(), Vec::new());
    for _ in 0..args.rounds {
        let start = Instant::now();
        let assertion = client
            .authorization_grant(grant.id, peer.server(), Some(&resource), None)
            .await?;
        first_hop.push(start.elapsed());
        client
            .redeem_at_peer(peer.server(), &assertion.access_token, &request)
            .await?;
        chained.push(start.elapsed());
    }
    let decide = |token: String| DecisionInput {
        token,
        action: ACTION.into(),
        resource: ResourceRef {
            kind: "Resource".into(),
            id: "bench".into(),
        },
        arguments: json!({}),
        approval_token: None,
        auth_req_id: None,
        request_approval: false,
    };
    let spread = humantime::parse_duration(&args.spread)
        .map_err(|e| anyhow::anyhow!("--spread `{}`: {e}", args.spread))?;
    let mut delays = Vec::new();
    for i in 0..args.revocations {
        let grant = home.create_grant(&grant_body(agent.id, &resource)).await?;
        let token = client
            .chained_token(grant.id, peer.server(), &request)
            .await?;
        let input = decide(token.access_token);
        anyhow::ensure!(
            verifier.decide(&input).await?.decision == "allow",
            "the peer does not allow the chained token"
        );
        let offset = spread.mul_f64(i as f64 / args.revocations.max(1) as f64);
        tokio::time::sleep(offset).await;
        home.grant_action(grant.id, "revoke", Some("surety bench federation".into()))
            .await?;
        let revoked = Instant::now();
        loop {
            if verifier.decide(&input).await?.decision != "allow" {
                delays.push(revoked.elapsed());
                break;
            }
            anyhow::ensure!(
                revoked.elapsed() < Duration::from_secs(60),
                "the peer still allows the agent a minute after the revocation"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let report = Report {
        rounds: args.rounds,
        chained_token: latency(chained),
        authorization_grant: latency(first_hop),
        revocations: args.revocations,
        revocation_delay: latency(delays),
    };
    if g.json {
        return output::json(&report);
    }
    let ms = |us: u128| us as f64 / 1000.0;
    say!(
        "chained token ({} rounds): p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms (home exchange alone p50 {:.2} ms)\nrevocation at home → refused at the peer ({} revocations): p50 {:.0} ms  p99 {:.0} ms  max {:.0} ms",
        report.rounds,
        ms(report.chained_token.p50_us),
        ms(report.chained_token.p99_us),
        ms(report.chained_token.max_us),
        ms(report.authorization_grant.p50_us),
        report.revocations,
        ms(report.revocation_delay.p50_us),
        ms(report.revocation_delay.p99_us),
        ms(report.revocation_delay.max_us),
    );
    Ok(())
}
