//! `surety bench …`: HTTP load generators and a crypto baseline. The token load generator
//! speaks plain OAuth — `private_key_jwt` client assertions and DPoP proofs signed fresh for
//! every request, any form parameters — so it drives Surety and any standards-conformant
//! authorization server alike, for side-by-side figures on one machine.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use serde::Serialize;
use surety_api::oauth::{
    CLIENT_ASSERTION_TYPE_JWT_BEARER, GRANT_TYPE_TOKEN_EXCHANGE, TOKEN_TYPE_GRANT,
};
use surety_core::id::GrantId;
use surety_jose::{KeyAlg, PrivateJwk, rfc7523, rfc9449};
use surety_sdk::keyfile;
use time::OffsetDateTime;
use tokio::sync::Mutex;

use crate::Globals;
use crate::output::{self, say};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Load a token endpoint: every request carries a fresh client assertion and DPoP proof.
    TokenExchange(TokenLoad),
    /// Load an introspection endpoint with one token (fresh client assertion per request).
    Introspect(IntrospectLoad),
    /// Load the OpenID AuthZEN evaluation endpoint as a resource server asking about one
    /// agent token (a fresh DPoP proof per request).
    Decide(DecideLoad),
    /// Step-up approvals: answer-to-token time (poll or ping) and memory with many waiting.
    Approvals(crate::bench_approvals::ApprovalLoad),
    /// `surety audit verify` on a synthetic export of this many events (offline).
    AuditVerify {
        /// Events in the export.
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
    },
    /// Inclusion and consistency proof latency from the store, on a log of this many
    /// events (10 million by default).
    AuditProofs(crate::bench_audit::ProofLoad),
    /// The same MCP tools/call load straight at an upstream and through `surety gateway`.
    Gateway(crate::bench_gateway::GatewayLoad),
    /// Identity chaining between two running organisations: chained token latency and how
    /// soon a revocation at home is refused at the peer.
    Federation(crate::bench_federation::FederationLoad),
    /// How soon a revoked token is refused: by introspection at another node, and by a
    /// verifier that follows the security event stream.
    Revocation(crate::bench_revocation::RevocationLoad),
    /// Ed25519 and ES256 signatures and verifications per second on this machine.
    Crypto {
        /// How long to measure each operation.
        #[arg(long, default_value = "2s")]
        duration: String,
    },
}

#[derive(Debug, Args)]
pub struct Load {
    /// Concurrent requests in flight (default: 8 per core).
    #[arg(long)]
    concurrency: Option<usize>,
    /// How long to run (`10s`, `1m`).
    #[arg(long, default_value = "10s")]
    duration: String,
    /// The client's private key file (JWK, mode 0600).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The client id (`iss` and `sub` of the client assertions).
    #[arg(long)]
    client_id: String,
}

#[derive(Debug, Args)]
pub struct TokenLoad {
    #[command(flatten)]
    load: Load,
    /// A Surety server: the token endpoint is `<URL>/oauth2/token`.
    #[arg(
        long,
        required_unless_present = "token_endpoint",
        conflicts_with = "token_endpoint"
    )]
    server: Option<String>,
    /// Any authorization server's token endpoint.
    #[arg(long)]
    token_endpoint: Option<String>,
    /// With `--server`: exchange this grant (`grant_type` token exchange).
    #[arg(long)]
    grant: Option<GrantId>,
    /// A form parameter to send, `name=value` (repeatable), e.g.
    /// `--param grant_type=client_credentials --param scope=read`.
    #[arg(long = "param", value_name = "K=V", value_parser = parse_param)]
    params: Vec<(String, String)>,
}

#[derive(Debug, Args)]
pub struct IntrospectLoad {
    #[command(flatten)]
    load: Load,
    /// A Surety server.
    #[arg(long)]
    server: String,
    /// The token to introspect.
    #[arg(long)]
    token: String,
}

#[derive(Debug, Args)]
pub struct DecideLoad {
    #[command(flatten)]
    load: Load,
    /// A Surety server.
    #[arg(long)]
    server: String,
    /// The resource server's audience.
    #[arg(long)]
    audience: String,
    /// The agent's access token to ask about.
    #[arg(long)]
    token: String,
    /// The agent (`agt_…`, the token's `act.sub`).
    #[arg(long)]
    agent: String,
    /// The action to ask about.
    #[arg(long, default_value = "crm.read_customer")]
    action: String,
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{s}` is not name=value"))
}

fn duration(text: &str) -> anyhow::Result<Duration> {
    humantime::parse_duration(text).map_err(|e| anyhow::anyhow!("`{text}`: {e}"))
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// What a load run measured.
#[derive(Debug, Serialize)]
struct Report {
    endpoint: String,
    concurrency: usize,
    seconds: f64,
    ok: usize,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: BTreeMap<String, usize>,
}

#[derive(Debug, Default)]
struct Tally {
    latencies: Vec<Duration>,
    errors: BTreeMap<String, usize>,
}

/// A request to repeat: a form with a client assertion (token, introspection), or an
/// AuthZEN evaluation with a DPoP-bound `decisions` token.
enum Call {
    Form(Vec<(String, String)>),
    Evaluation {
        token: String,
        body: serde_json::Value,
    },
}

struct Target {
    call: Call,
    endpoint: String,
    audience: String,
    client_id: String,
    key: PrivateJwk,
    dpop: bool,
    /// Introspection: a 200 counts only if it says `"active": true`.
    expect_active: bool,
    nonce: Mutex<Option<String>>,
}

impl Target {
    async fn once(&self, http: &reqwest::Client) -> Result<(), String> {
        let now = OffsetDateTime::now_utc();
        if let Call::Evaluation { token, body } = &self.call {
            let proof = rfc9449::create(&self.key, "POST", &self.endpoint, Some(token), None, now)
                .map_err(|e| e.to_string())?;
            let response = http
                .post(&self.endpoint)
                .header("Authorization", format!("DPoP {token}"))
                .header("DPoP", proof)
                .json(body)
                .send()
                .await
                .map_err(|e| format!("transport: {e}"))?;
            let status = response.status();
            let answer: serde_json::Value = response.json().await.unwrap_or_default();
            return if status.is_success() && answer["decision"].is_boolean() {
                Ok(())
            } else {
                Err(format!(
                    "{} {}",
                    status.as_u16(),
                    answer["error"].as_str().unwrap_or("-")
                ))
            };
        }
        let Call::Form(params) = &self.call else {
            return Err("unsupported call".into());
        };
        let assertion = rfc7523::create(
            &self.key,
            &self.client_id,
            &self.client_id,
            &self.audience,
            time::Duration::seconds(60),
            now,
        )
        .map_err(|e| e.to_string())?;
        let mut form: Vec<(&str, &str)> = params
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        form.push(("client_assertion_type", CLIENT_ASSERTION_TYPE_JWT_BEARER));
        form.push(("client_assertion", &assertion));
        let mut request = http.post(&self.endpoint).form(&form);
        if self.dpop {
            let nonce = self.nonce.lock().await.clone();
            let proof = rfc9449::create(
                &self.key,
                "POST",
                &self.endpoint,
                None,
                nonce.as_deref(),
                now,
            )
            .map_err(|e| e.to_string())?;
            request = request.header("DPoP", proof);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("transport: {e}"))?;
        if let Some(n) = response
            .headers()
            .get("dpop-nonce")
            .and_then(|v| v.to_str().ok())
        {
            *self.nonce.lock().await = Some(n.to_owned());
        }
        let status = response.status();
        if status.is_success() {
            if self.expect_active {
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                if body["active"] != true {
                    return Err("200 inactive".into());
                }
            } else {
                let _ = response.bytes().await;
            }
            return Ok(());
        }
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        Err(format!(
            "{} {}",
            status.as_u16(),
            body["error"].as_str().unwrap_or("-")
        ))
    }
}

async fn run_load(target: Target, load: &Load) -> anyhow::Result<Report> {
    let concurrency = load.concurrency.unwrap_or(8 * cores()).max(1);
    let length = duration(&load.duration)?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(30))
        .build()?;
    let target = Arc::new(target);
    // One warm-up request fetches a nonce, if the server wants one.
    let _ = target.once(&http).await;
    let start = Instant::now();
    let deadline = start + length;
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let (target, http) = (target.clone(), http.clone());
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let t0 = Instant::now();
                match target.once(&http).await {
                    Ok(()) => tally.latencies.push(t0.elapsed()),
                    Err(e) => *tally.errors.entry(e).or_default() += 1,
                }
            }
            tally
        }));
    }
    let mut all = Tally::default();
    for w in workers {
        let t = w.await?;
        all.latencies.extend(t.latencies);
        for (k, v) in t.errors {
            *all.errors.entry(k).or_default() += v;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    all.latencies.sort();
    let pct = |p: f64| {
        all.latencies
            .get(
                ((all.latencies.len() as f64 * p) as usize)
                    .min(all.latencies.len().saturating_sub(1)),
            )
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    Ok(Report {
        endpoint: target.endpoint.clone(),
        concurrency,
        seconds,
        ok: all.latencies.len(),
        per_second: all.latencies.len() as f64 / seconds,
        p50_ms: pct(0.50),
        p99_ms: pct(0.99),
        errors: all.errors,
    })
}

fn print_report(g: &Globals, r: &Report) -> anyhow::Result<()> {
    if g.json {
        return output::json(r);
    }
    say!("endpoint:     {}", r.endpoint);
    say!("concurrency:  {} over {:.1} s", r.concurrency, r.seconds);
    say!("ok:           {} ({:.0}/s)", r.ok, r.per_second);
    say!(
        "latency:      p50 {:.2} ms, p99 {:.2} ms",
        r.p50_ms,
        r.p99_ms
    );
    if r.errors.is_empty() {
        say!("errors:       none");
    }
    for (what, n) in &r.errors {
        say!("error:        {n} × {what}");
    }
    Ok(())
}

/// Operations per second of `op`, run on one thread for `length`.
fn rate(length: Duration, mut op: impl FnMut() -> bool) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < length {
        for _ in 0..64 {
            if op() {
                n += 1;
            }
        }
    }
    n as f64 / start.elapsed().as_secs_f64()
}

#[derive(Debug, Serialize)]
struct CryptoRow {
    alg: &'static str,
    sign_per_second_per_core: f64,
    verify_per_second_per_core: f64,
    /// Tokens per second all cores could mint if doing nothing else: each token costs two
    /// verifications (client assertion, DPoP proof) and one signature.
    token_limit_per_second: f64,
}

fn crypto(length: Duration) -> anyhow::Result<Vec<CryptoRow>> {
    let mut rows = Vec::new();
    for (alg, name) in [(KeyAlg::EdDSA, "EdDSA"), (KeyAlg::ES256, "ES256")] {
        let key = PrivateJwk::generate(alg)?;
        let message = b"surety bench: a message the size of a small JWS signing input ....";
        let sig = key.sign(message)?;
        let sign = rate(length, || key.sign(message).is_ok());
        let verify = rate(length, || {
            key.public().verify(key.jws_alg(), message, &sig).is_ok()
        });
        let per_token = 2.0 / verify + 1.0 / sign;
        rows.push(CryptoRow {
            alg: name,
            sign_per_second_per_core: sign,
            verify_per_second_per_core: verify,
            token_limit_per_second: cores() as f64 / per_token,
        });
    }
    Ok(rows)
}

pub async fn run(g: &Globals, cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Approvals(args) => crate::bench_approvals::run(g, args).await,
        BenchCommand::Federation(args) => crate::bench_federation::run(g, args).await,
        BenchCommand::Revocation(args) => crate::bench_revocation::run(g, args).await,
        BenchCommand::AuditProofs(args) => crate::bench_audit::run(g, args).await,
        BenchCommand::Gateway(args) => crate::bench_gateway::run(g, args).await,
        BenchCommand::AuditVerify { events } => {
            let report =
                tokio::task::spawn_blocking(move || crate::audit_export::bench_verify(events))
                    .await??;
            if g.json {
                return output::json(&report);
            }
            say!("{report:?}");
            Ok(())
        }
        BenchCommand::Crypto { duration: d } => {
            let length = duration(&d)?;
            let rows = tokio::task::spawn_blocking(move || crypto(length)).await??;
            if g.json {
                return output::json(&rows);
            }
            say!("{} cores", cores());
            for r in &rows {
                say!(
                    "{:<6} sign {:>9.0}/s/core  verify {:>9.0}/s/core  token limit (2 verify + 1 sign, all cores) {:>8.0}/s",
                    r.alg,
                    r.sign_per_second_per_core,
                    r.verify_per_second_per_core,
                    r.token_limit_per_second
                );
            }
            Ok(())
        }
        BenchCommand::TokenExchange(args) => {
            let (endpoint, audience, mut params) = match (&args.server, &args.token_endpoint) {
                (Some(server), _) => {
                    let base = server.trim_end_matches('/');
                    let mut params = Vec::new();
                    if let Some(grant) = args.grant {
                        params.push((
                            "grant_type".to_owned(),
                            GRANT_TYPE_TOKEN_EXCHANGE.to_owned(),
                        ));
                        params.push(("subject_token".to_owned(), grant.to_string()));
                        params.push(("subject_token_type".to_owned(), TOKEN_TYPE_GRANT.to_owned()));
                    }
                    (format!("{base}/oauth2/token"), base.to_owned(), params)
                }
                (None, Some(endpoint)) => (endpoint.clone(), endpoint.clone(), Vec::new()),
                (None, None) => anyhow::bail!("give --server or --token-endpoint"),
            };
            params.extend(args.params);
            if !params.iter().any(|(k, _)| k == "grant_type") {
                anyhow::bail!(
                    "no grant_type: give --grant (with --server) or --param grant_type=…"
                );
            }
            let target = Target {
                endpoint,
                audience,
                client_id: args.load.client_id.clone(),
                key: keyfile::read(&args.load.key)?,
                call: Call::Form(params),
                dpop: true,
                expect_active: false,
                nonce: Mutex::new(None),
            };
            let report = run_load(target, &args.load).await?;
            print_report(g, &report)
        }
        BenchCommand::Decide(args) => {
            let base = args.server.trim_end_matches('/');
            let id: surety_core::id::ResourceServerId = args.load.client_id.parse()?;
            let verifier = surety_sdk::ResourceVerifier::new(
                base,
                &args.audience,
                id,
                keyfile::read(&args.load.key)?,
            )?;
            let token = verifier.decisions_token().await?;
            let body = serde_json::json!({
                "subject": {"type": "agent", "id": args.agent, "properties": {"token": args.token}},
                "action": {"name": args.action},
                "resource": {"type": "Resource", "id": "bench"},
            });
            let target = Target {
                endpoint: format!("{base}/access/v1/evaluation"),
                audience: base.to_owned(),
                client_id: args.load.client_id.clone(),
                key: keyfile::read(&args.load.key)?,
                call: Call::Evaluation { token, body },
                dpop: true,
                expect_active: false,
                nonce: Mutex::new(None),
            };
            let report = run_load(target, &args.load).await?;
            print_report(g, &report)
        }
        BenchCommand::Introspect(args) => {
            let base = args.server.trim_end_matches('/');
            let target = Target {
                endpoint: format!("{base}/oauth2/introspect"),
                audience: base.to_owned(),
                client_id: args.load.client_id.clone(),
                key: keyfile::read(&args.load.key)?,
                call: Call::Form(vec![("token".into(), args.token.clone())]),
                dpop: false,
                expect_active: true,
                nonce: Mutex::new(None),
            };
            let report = run_load(target, &args.load).await?;
            print_report(g, &report)
        }
    }
}

/// A fresh agent for `surety bench <what>`, registered by `admin` with a key made here, and a
/// resource URL of its own (so that runs do not meet each other's grants).
pub(crate) async fn fresh_agent(
    admin: &surety_sdk::AdminClient,
    what: &str,
) -> anyhow::Result<(
    surety_api::admin::AgentView,
    surety_jose::PrivateJwk,
    String,
)> {
    let key = surety_jose::PrivateJwk::generate(surety_jose::KeyAlg::EdDSA)?;
    let tag: String = key
        .thumbprint()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(10)
        .collect();
    let resource = format!("https://bench-{}.example", tag.to_ascii_lowercase());
    let agent = admin
        .register_agent(&surety_api::admin::RegisterAgent {
            name: format!("bench-{what}-{tag}"),
            owner: None,
            public_key: key.public().to_json(),
            purpose: Some(format!("surety bench {what}")),
            environment: None,
            labels: Default::default(),
        })
        .await?;
    Ok((agent, key, resource))
}
