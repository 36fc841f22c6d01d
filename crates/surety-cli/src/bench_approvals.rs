//! `surety bench approvals`: how soon an approved agent holds its approval token (poll and
//! ping delivery), and what the server's memory does while it holds many waiting requests.
//!
//! It sets itself up with the admin profile: a fresh agent with a key made here, a grant from
//! the profile's human to it, and (for ping) a loopback receiver registered as the agent's
//! notification endpoint — which the server accepts only in `dev` mode. The profile's human
//! answers each request with their device key, as `surety approve` does.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use serde_json::json;
use surety_api::admin::RegisterAgent;
use surety_api::approvals::ApprovalQuery;
use surety_api::credentials::CreateGrant;
use surety_jose::{KeyAlg, PrivateJwk};
use surety_sdk::{AdminClient, AgentClient, ApprovalAsk};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::Globals;
use crate::output::{self, say};

const RESOURCE: &str = "https://bench.example";

#[derive(Debug, Args)]
pub struct ApprovalLoad {
    /// Requests approved one after another, each timed from the answer to the token.
    #[arg(long, default_value_t = 10)]
    rounds: usize,
    /// How the agent learns of the answer: `poll` or `ping` (ping needs the server in `dev`
    /// mode, for the loopback receiver).
    #[arg(long, default_value = "poll")]
    mode: String,
    /// Then open this many requests and leave them waiting, spread over agents.
    #[arg(long, default_value_t = 0)]
    pending: usize,
    /// Waiting requests per agent (at most the server's `approval_max_waiting`).
    #[arg(long, default_value_t = 20)]
    per_agent: usize,
    /// Requests in flight while opening them.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// The server's process id: its resident memory is sampled while requests pile up.
    #[arg(long)]
    pid: Option<u32>,
}

#[derive(Debug, Serialize)]
struct Report {
    mode: String,
    interval_seconds: u64,
    rounds: usize,
    answer_to_token_ms: Vec<f64>,
    p50_ms: f64,
    max_ms: f64,
    pending: usize,
    opened_per_second: f64,
    /// Server RSS in KiB before the agents of the waiting requests were registered.
    rss_before_agents_kib: Option<u64>,
    /// `(requests waiting, server RSS in KiB)`, from after the agents were registered.
    rss_kib: Vec<(usize, u64)>,
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn details(amount: usize) -> serde_json::Value {
    json!([{
        "type": "surety_action",
        "locations": [RESOURCE],
        "action": "payments.transfer",
        "resource": {"type": "Resource", "id": "bench-account"},
        "arguments": {"amount": amount},
    }])
}

/// A loopback receiver of CIBA pings: sends each ping's arrival on the channel.
async fn receiver() -> anyhow::Result<(String, mpsc::UnboundedReceiver<Instant>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/ping", listener.local_addr()?);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut seen = Vec::new();
                // Read the head and the (small) body, then answer.
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    seen.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&seen);
                    if let Some((_, body)) = text.split_once("\r\n\r\n")
                        && body.contains('}')
                    {
                        break;
                    }
                }
                let _ = tx.send(Instant::now());
                let _ = socket
                    .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                    .await;
            });
        }
    });
    Ok((url, rx))
}

/// A fresh agent with a key made here and a grant from the profile's human (and, for ping,
/// the receiver as its notification endpoint).
async fn new_agent(
    admin: &AdminClient,
    http: &reqwest::Client,
    ping_url: Option<String>,
) -> anyhow::Result<(surety_core::id::AgentId, Arc<AgentClient>)> {
    let key = PrivateJwk::generate(KeyAlg::EdDSA)?;
    let suffix: String = key
        .thumbprint()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(12)
        .collect();
    let agent = admin
        .register_agent(&RegisterAgent {
            name: format!("bench-approvals-{suffix}"),
            owner: None,
            public_key: key.public().to_json(),
            purpose: Some("surety bench approvals".into()),
            environment: None,
            labels: Default::default(),
        })
        .await?;
    admin
        .create_grant(&CreateGrant {
            agent: agent.id,
            principal: None,
            scopes: vec!["payments.transfer".into()],
            resources: vec![RESOURCE.into()],
            constraints: None,
            max_delegation_depth: None,
            expires_at: None,
            expires_in: Some(3600),
        })
        .await?;
    if let Some(url) = ping_url {
        admin.set_notification_endpoint(agent.id, Some(url)).await?;
    }
    let client = AgentClient::with_http(http.clone(), admin.server(), agent.id, key);
    Ok((agent.id, Arc::new(client)))
}

pub async fn run(g: &Globals, args: ApprovalLoad) -> anyhow::Result<()> {
    let ping = match args.mode.as_str() {
        "poll" => false,
        "ping" => true,
        other => anyhow::bail!("--mode must be poll or ping, not `{other}`"),
    };
    let admin: AdminClient = g.client()?;
    let me = admin.me().await?;
    let mut pings = None;
    let mut ping_url = None;
    if ping {
        let (url, rx) = receiver().await?;
        ping_url = Some(url);
        pings = Some(rx);
    }
    // One connection pool for every agent of the run, as one process acting for many would.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let (agent, client) = new_agent(&admin, &http, ping_url.clone()).await?;
    let token = "bench-notification-token-0123456789";
    let mut timings = Vec::with_capacity(args.rounds);
    let mut interval = 0;
    for round in 0..args.rounds {
        let opened = client
            .request_approval(&ApprovalAsk {
                login_hint: &me.email,
                authorization_details: &details(round),
                binding_message: Some("surety bench approvals"),
                requested_expiry: None,
                client_notification_token: ping.then_some(token),
            })
            .await?;
        interval = opened.interval;
        let waiting = admin.list_approvals(&ApprovalQuery::default()).await?;
        let view = waiting
            .items
            .into_iter()
            .find(|a| a.agent == agent.to_string())
            .ok_or_else(|| anyhow::anyhow!("the request is not in the inbox"))?;
        // Poll mode: the agent polls on its own schedule, from the moment it asked.
        let poller = (!ping).then(|| {
            let client = client.clone();
            let id = opened.auth_req_id.clone();
            let every = Duration::from_secs(opened.interval.max(1));
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    match client.poll_approval(&id).await {
                        Ok(Some(_)) => return Ok(Instant::now()),
                        Ok(None) => {}
                        Err(e) => return Err(e),
                    }
                }
            })
        });
        // Wait a random part of an interval, as a human would take some time.
        tokio::time::sleep(Duration::from_millis(
            200 + (round as u64 * 337) % (interval.max(1) * 1000),
        ))
        .await;
        let answered = Instant::now();
        admin.answer_approval(&view, true, None).await?;
        let got = match (poller, pings.as_mut()) {
            (Some(p), _) => p.await??,
            (None, Some(rx)) => {
                rx.recv()
                    .await
                    .ok_or_else(|| anyhow::anyhow!("the ping receiver stopped"))?;
                client
                    .poll_approval(&opened.auth_req_id)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("pinged, but the request is still pending"))?;
                Instant::now()
            }
            (None, None) => anyhow::bail!("no way to learn the answer"),
        };
        timings.push(got.duration_since(answered).as_secs_f64() * 1000.0);
    }
    let mut sorted = timings.clone();
    sorted.sort_by(f64::total_cmp);
    let p50 = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    let max = sorted.last().copied().unwrap_or(0.0);

    // Many requests waiting, `per_agent` per agent: opened concurrently, memory sampled as
    // they pile up.
    let mut rss = Vec::new();
    let mut rss_before = None;
    let mut opened_per_second = 0.0;
    if args.pending > 0 {
        let per_agent = args.per_agent.max(1);
        let needed = args.pending.div_ceil(per_agent);
        rss_before = args.pid.and_then(rss_kib);
        let mut agents = Vec::with_capacity(needed);
        for _ in 0..needed {
            agents.push(new_agent(&admin, &http, ping_url.clone()).await?.1);
        }
        let sample = |n: usize| args.pid.and_then(rss_kib).map(|kib| (n, kib));
        rss.extend(sample(0));
        let started = Instant::now();
        let step = (args.pending / 10).max(1);
        let semaphore = Arc::new(tokio::sync::Semaphore::new(args.concurrency.max(1)));
        let mut done = 0;
        while done < args.pending {
            let batch = step.min(args.pending - done);
            let mut tasks = Vec::with_capacity(batch);
            for i in done..done + batch {
                let client = agents[i / per_agent].clone();
                let email = me.email.clone();
                let permit = semaphore.clone().acquire_owned().await?;
                tasks.push(tokio::spawn(async move {
                    let _permit = permit;
                    client
                        .request_approval(&ApprovalAsk {
                            login_hint: &email,
                            authorization_details: &details(1_000_000 + i),
                            binding_message: None,
                            requested_expiry: Some(3600),
                            client_notification_token: ping.then_some(token),
                        })
                        .await
                }));
            }
            for t in tasks {
                t.await??;
            }
            done += batch;
            rss.extend(sample(done));
        }
        opened_per_second = args.pending as f64 / started.elapsed().as_secs_f64();
    }
    let report = Report {
        mode: args.mode,
        interval_seconds: interval,
        rounds: args.rounds,
        answer_to_token_ms: timings,
        p50_ms: p50,
        max_ms: max,
        pending: args.pending,
        opened_per_second,
        rss_before_agents_kib: rss_before,
        rss_kib: rss,
    };
    if g.json {
        return output::json(&report);
    }
    say!(
        "{} mode (interval {} s): answer → approval token p50 {:.1} ms, max {:.1} ms over {} rounds",
        report.mode,
        report.interval_seconds,
        report.p50_ms,
        report.max_ms,
        report.rounds
    );
    if report.pending > 0 {
        say!(
            "{} requests opened, {:.0}/s; server RSS {:?} KiB before registering their agents, then (waiting → KiB): {:?}",
            report.pending,
            report.opened_per_second,
            report.rss_before_agents_kib,
            report.rss_kib
        );
    }
    Ok(())
}
