//! `surety bench revocation`: how soon a revoked token is refused — by introspection at
//! another node of the deployment (PostgreSQL, shared state), and by a resource server's
//! verifier that follows the security event stream instead of introspecting.
//!
//! With the admin profile it registers an agent and a resource server (keys made here), and
//! a grant; then, per round: a token, accepted by both; the agent revokes it (RFC 7009) at
//! the issuer; from the revoke call's answer, each is asked every millisecond until it
//! refuses.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use surety_api::credentials::{CreateGrant, CreateResourceServer};
use surety_jose::{KeyAlg, PrivateJwk};
use surety_sdk::{AgentClient, ResourceVerifier, TokenRequest};

use crate::Globals;
use crate::bench_audit::{Latency, latency};
use crate::output::{self, say};

#[derive(Debug, Args)]
pub struct RevocationLoad {
    /// Another node of the deployment (its own URL): introspection is asked there. Default:
    /// the issuer itself.
    #[arg(long, value_name = "URL")]
    node: Option<String>,
    /// Revocations, each timed.
    #[arg(long, default_value_t = 50)]
    rounds: usize,
    /// How often the event-fed verifier polls its stream.
    #[arg(long, default_value = "20ms")]
    poll: String,
}

#[derive(Debug, Serialize)]
struct Report {
    rounds: usize,
    node: String,
    poll_ms: u128,
    /// From the revoke call's answer to `{"active": false}` at the node.
    introspection_at_node: Latency,
    /// From the revoke call's answer to the event-fed verifier's refusal.
    event_fed_verifier: Latency,
}

pub async fn run(g: &Globals, args: RevocationLoad) -> anyhow::Result<()> {
    let admin = g.client()?;
    let issuer = admin.server().to_owned();
    let node = args.node.clone().unwrap_or_else(|| issuer.clone());
    let poll = humantime::parse_duration(&args.poll)
        .map_err(|e| anyhow::anyhow!("--poll `{}`: {e}", args.poll))?;
    let (agent, key, resource) = crate::bench::fresh_agent(&admin, "revocation").await?;
    let grant = admin
        .create_grant(&CreateGrant {
            agent: agent.id,
            principal: None,
            scopes: vec!["crm.read_customer".into()],
            resources: vec![resource.clone()],
            constraints: None,
            max_delegation_depth: None,
            expires_at: None,
            expires_in: Some(3600),
        })
        .await?;
    let rs_key = PrivateJwk::generate(KeyAlg::EdDSA)?;
    let rs = admin
        .create_resource_server(&CreateResourceServer {
            audience: resource.clone(),
            public_key: rs_key.public().to_json(),
            name: None,
        })
        .await?;
    let copy = PrivateJwk::from_json(&rs_key.to_json()?)?;
    let introspector = ResourceVerifier::new(&issuer, &resource, rs.id, copy)?;
    let fed =
        Arc::new(ResourceVerifier::new(&issuer, &resource, rs.id, rs_key)?.without_introspection());
    let follower = fed.follow_signals(poll).await?;
    let agent_key = PrivateJwk::from_json(&key.to_json()?)?;
    let client = AgentClient::new(&issuer, agent.id, key)?;
    let url = format!("{resource}/bench");
    let verify = |token: &str| {
        let proof = surety_jose::rfc9449::create(
            &agent_key,
            "GET",
            &url,
            Some(token),
            None,
            time::OffsetDateTime::now_utc(),
        );
        let fed = fed.clone();
        let (token, url) = (token.to_owned(), url.clone());
        async move {
            let proof = proof?;
            anyhow::Ok(
                fed.verify(&[&format!("DPoP {token}")], &[&proof], "GET", &url)
                    .await
                    .is_ok(),
            )
        }
    };
    let request = TokenRequest {
        scope: None,
        resource: Some(resource.clone()),
    };
    let (mut at_node, mut at_verifier) = (Vec::new(), Vec::new());
    for _ in 0..args.rounds {
        let token = client
            .exchange_grant(grant.id, &request)
            .await?
            .access_token;
        anyhow::ensure!(verify(&token).await?, "the verifier refuses a fresh token");
        anyhow::ensure!(
            introspector.introspect_at(&node, &token).await?["active"] == true,
            "the node does not know the fresh token"
        );
        client.revoke(&token).await?;
        let revoked = Instant::now();
        let (mut node_done, mut verifier_done) = (None, None);
        while node_done.is_none() || verifier_done.is_none() {
            anyhow::ensure!(
                revoked.elapsed() < Duration::from_secs(30),
                "the revocation did not arrive within 30 s"
            );
            if node_done.is_none()
                && introspector.introspect_at(&node, &token).await?["active"] == false
            {
                node_done = Some(revoked.elapsed());
            }
            if verifier_done.is_none() && !verify(&token).await? {
                verifier_done = Some(revoked.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        at_node.extend(node_done);
        at_verifier.extend(verifier_done);
    }
    follower.abort();
    let report = Report {
        rounds: args.rounds,
        node,
        poll_ms: poll.as_millis(),
        introspection_at_node: latency(at_node),
        event_fed_verifier: latency(at_verifier),
    };
    if g.json {
        return output::json(&report);
    }
    let ms = |us: u128| us as f64 / 1000.0;
    say!(
        "revocation → refusal ({} rounds)\n  introspection at {}: p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms\n  event-fed verifier (polls every {} ms): p50 {:.1} ms  p99 {:.1} ms  max {:.1} ms",
        report.rounds,
        report.node,
        ms(report.introspection_at_node.p50_us),
        ms(report.introspection_at_node.p99_us),
        ms(report.introspection_at_node.max_us),
        report.poll_ms,
        ms(report.event_fed_verifier.p50_us),
        ms(report.event_fed_verifier.p99_us),
        ms(report.event_fed_verifier.max_us),
    );
    Ok(())
}
