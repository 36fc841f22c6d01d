//! `surety bench gateway`: the same MCP `tools/call` load, in one run, straight at an
//! upstream MCP server and through `surety gateway` in front of it; what the gateway adds
//! (its token and proof checks, the decision with its durable audit event, the relay).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;
use serde_json::{Value, json};
use surety_jose::PrivateJwk;

use crate::Globals;
use crate::output::{self, say};

/// Options of `surety bench gateway`.
#[derive(Debug, Args)]
pub struct GatewayLoad {
    /// The upstream's MCP endpoint.
    #[arg(long)]
    upstream: String,
    /// The gateway's endpoint for that upstream.
    #[arg(long)]
    gateway: String,
    /// The agent's access token for the gateway's resource.
    #[arg(long)]
    token: String,
    /// The agent's private key (JWK file), for the DPoP proofs.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The tool to call.
    #[arg(long, default_value = "crm.read_customer")]
    tool: String,
    /// Its arguments (JSON).
    #[arg(long, default_value = r#"{"customer_id": "c-1"}"#)]
    arguments: String,
    /// Calls in flight.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// How long to load each of the two.
    #[arg(long, default_value = "10s")]
    duration: String,
}

/// One side's figures.
#[derive(Debug, Serialize)]
pub struct Side {
    calls: usize,
    errors: usize,
    per_second: f64,
    p50_us: u128,
    p99_us: u128,
}

/// The comparison.
#[derive(Debug, Serialize)]
pub struct GatewayReport {
    tool: String,
    concurrency: usize,
    direct: Side,
    gateway: Side,
    added_p50_us: i128,
    added_p99_us: i128,
    throughput_ratio: f64,
}

struct Target {
    url: String,
    /// With the gateway: the token and key that authenticate each call.
    auth: Option<(String, PrivateJwk)>,
    session: std::sync::Mutex<Option<String>>,
    ids: std::sync::atomic::AtomicU64,
}

impl Target {
    fn request(
        &self,
        http: &reqwest::Client,
        body: &Value,
    ) -> anyhow::Result<reqwest::RequestBuilder> {
        let mut r = http
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json, text/event-stream")
            .header("MCP-Protocol-Version", "2025-06-18")
            .body(body.to_string());
        if let Some(s) = self.session.lock().ok().and_then(|s| s.clone()) {
            r = r.header("Mcp-Session-Id", s);
        }
        if let Some((token, key)) = &self.auth {
            let proof = surety_jose::rfc9449::create(
                key,
                "POST",
                &self.url,
                Some(token),
                None,
                time::OffsetDateTime::now_utc(),
            )?;
            r = r
                .header("Authorization", format!("DPoP {token}"))
                .header("DPoP", proof);
        }
        Ok(r)
    }

    /// `initialize`, then `notifications/initialized`.
    async fn open(&self, http: &reqwest::Client) -> anyhow::Result<()> {
        let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "surety-bench", "version": "1"}}});
        let r = self.request(http, &init)?.send().await?;
        anyhow::ensure!(
            r.status().is_success(),
            "{}: initialize answered {}",
            self.url,
            r.status()
        );
        let session = r
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let _ = r.bytes().await?;
        if let Ok(mut s) = self.session.lock() {
            *s = session;
        }
        let done = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        self.request(http, &done)?.send().await?;
        Ok(())
    }

    async fn call(&self, http: &reqwest::Client, body: &Value) -> bool {
        // Each request its own id: an MCP session answers one request per id.
        let mut body = body.clone();
        body["id"] = json!(self.ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let Ok(r) = self.request(http, &body) else {
            return false;
        };
        match r.send().await {
            Ok(r) if r.status().is_success() => r.bytes().await.is_ok_and(|b| {
                let text = String::from_utf8_lossy(&b);
                text.contains("\"result\"") && !text.contains("\"isError\":true")
            }),
            _ => false,
        }
    }
}

fn side(mut samples: Vec<Duration>, errors: usize, seconds: f64) -> Side {
    samples.sort_unstable();
    let at = |q: f64| {
        let i = ((samples.len().max(1) - 1) as f64 * q).round() as usize;
        samples.get(i).map_or(0, Duration::as_micros)
    };
    Side {
        calls: samples.len(),
        errors,
        per_second: samples.len() as f64 / seconds,
        p50_us: at(0.5),
        p99_us: at(0.99),
    }
}

async fn load(
    target: Arc<Target>,
    body: Arc<Value>,
    concurrency: usize,
    length: Duration,
) -> anyhow::Result<Side> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    target.open(&http).await?;
    // Warm up: connections, caches (keys, the decisions token).
    for _ in 0..20 {
        target.call(&http, &body).await;
    }
    let start = Instant::now();
    let deadline = start + length;
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (target, body, http) = (target.clone(), body.clone(), http.clone());
            tokio::spawn(async move {
                let (mut ok, mut errors) = (Vec::new(), 0);
                while Instant::now() < deadline {
                    let t = Instant::now();
                    if target.call(&http, &body).await {
                        ok.push(t.elapsed());
                    } else {
                        errors += 1;
                    }
                }
                (ok, errors)
            })
        })
        .collect();
    let (mut all, mut errors) = (Vec::new(), 0);
    for w in workers {
        let (ok, e) = w.await?;
        all.extend(ok);
        errors += e;
    }
    Ok(side(all, errors, start.elapsed().as_secs_f64()))
}

pub async fn run(g: &Globals, args: GatewayLoad) -> anyhow::Result<()> {
    let length = humantime::parse_duration(&args.duration)?;
    let key = surety_sdk::keyfile::read(&args.key)?;
    let arguments: Value = serde_json::from_str(&args.arguments)?;
    let body = Arc::new(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": args.tool, "arguments": arguments}}));
    let direct = Arc::new(Target {
        url: args.upstream.clone(),
        auth: None,
        session: std::sync::Mutex::new(None),
        ids: std::sync::atomic::AtomicU64::new(1),
    });
    let gateway = Arc::new(Target {
        url: args.gateway.clone(),
        auth: Some((args.token.clone(), key)),
        session: std::sync::Mutex::new(None),
        ids: std::sync::atomic::AtomicU64::new(1),
    });
    let d = load(direct, body.clone(), args.concurrency, length).await?;
    let gw = load(gateway, body, args.concurrency, length).await?;
    anyhow::ensure!(
        gw.calls > 0,
        "no call went through the gateway ({} errors)",
        gw.errors
    );
    let report = GatewayReport {
        tool: args.tool,
        concurrency: args.concurrency,
        added_p50_us: gw.p50_us as i128 - d.p50_us as i128,
        added_p99_us: gw.p99_us as i128 - d.p99_us as i128,
        throughput_ratio: gw.per_second / d.per_second.max(f64::MIN_POSITIVE),
        direct: d,
        gateway: gw,
    };
    if g.json {
        return output::json(&report);
    }
    say!(
        "{} calls, {} in flight\n  direct   {:>8.0}/s  p50 {:>7} µs  p99 {:>7} µs  ({} errors)\n  gateway  {:>8.0}/s  p50 {:>7} µs  p99 {:>7} µs  ({} errors)\n  added p50 {} µs, p99 {} µs; throughput {:.1} % of direct",
        report.tool,
        report.concurrency,
        report.direct.per_second,
        report.direct.p50_us,
        report.direct.p99_us,
        report.direct.errors,
        report.gateway.per_second,
        report.gateway.p50_us,
        report.gateway.p99_us,
        report.gateway.errors,
        report.added_p50_us,
        report.added_p99_us,
        report.throughput_ratio * 100.0
    );
    Ok(())
}
