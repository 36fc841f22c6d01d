//! `surety gateway`: the MCP enforcement gateway (see `surety-gateway`).

use std::path::PathBuf;

use clap::Args;

use crate::output::say;

/// `surety gateway --config FILE [--check]`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// The gateway's TOML file (see docs/gateway.md).
    #[arg(long, value_name = "FILE", env = "SURETY_GATEWAY_CONFIG")]
    config: PathBuf,
    /// Check the file (and read every key file it names), then exit.
    #[arg(long)]
    check: bool,
}

/// Runs the gateway until SIGTERM or SIGINT.
pub async fn run(args: GatewayArgs) -> anyhow::Result<()> {
    let config = surety_gateway::GatewayConfig::load(&args.config)?;
    if args.check {
        // Building the router reads every upstream's key file and registration id.
        let _routes =
            surety_gateway::server::router(config.clone(), None).map_err(anyhow::Error::msg)?;
        say!(
            "{}: ok ({} upstream(s): {})",
            args.config.display(),
            config.upstreams.len(),
            config
                .upstreams
                .iter()
                .map(|u| format!("{} → {}", u.prefix, u.url))
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(());
    }
    let defaults = surety_server::config::Config::load(None, |k| std::env::var(k).ok(), &[])?;
    surety_server::telemetry::init_logging(&defaults).map_err(anyhow::Error::msg)?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        public_url = %config.public_url,
        upstreams = config.upstreams.len(),
        "surety gateway started"
    );
    let metrics = surety_server::telemetry::prometheus();
    let (app, reloader) =
        surety_gateway::server::build(config, Some(metrics)).map_err(anyhow::Error::msg)?;
    tokio::spawn(watch(args.config, reloader));
    surety_gateway::serve_router(app, listener, surety_server::serve::shutdown_signal())
        .await
        .map_err(anyhow::Error::msg)
}

fn modified(path: &std::path::Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Reloads the tools' mappings on SIGHUP or when the file changes (checked every 2 s). A
/// file that does not validate is refused and the running configuration stays.
pub(crate) async fn watch(path: PathBuf, reloader: surety_gateway::server::Reloader) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reloading on file changes only");
            None
        }
    };
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
    let mut seen = modified(&path);
    loop {
        let why = tokio::select! {
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => "SIGHUP",
            _ = tick.tick() => {
                let now = modified(&path);
                if now == seen {
                    continue;
                }
                seen = now;
                "the file changed"
            }
        };
        match surety_gateway::GatewayConfig::load(&path) {
            Ok(new) => {
                let left = reloader.apply(&new);
                tracing::info!(reason = why, "the tools' mappings were reloaded");
                for l in left {
                    tracing::warn!(change = %l, "not applied until a restart");
                }
            }
            Err(e) => {
                tracing::error!(reason = why, error = %e, "the changed configuration is refused; the running one stays")
            }
        }
    }
}

/// Decisions for a gateway embedded in the Surety server: asked in-process, as the
/// registered resource server, with the same rules and audit events as over HTTP.
#[derive(Debug)]
struct InProcess {
    state: surety_server::AppState,
    id: surety_core::id::ResourceServerId,
    audience: String,
}

impl InProcess {
    /// The registration, read again for every question: disabling it, or giving it another
    /// audience, takes effect at once.
    async fn rs(&self) -> Result<surety_store::ResourceServer, surety_sdk::ClientError> {
        surety_server::embed::resource_server(&self.state, self.id)
            .await
            .map_err(|e| refused(&e))?
            .filter(|rs| rs.audience == self.audience)
            .ok_or_else(|| surety_sdk::ClientError::Api {
                status: 401,
                body: surety_api::ErrorBody {
                    error: "invalid_client".into(),
                    error_description: Some(format!(
                        "`{}` is no longer an active resource server for `{}`",
                        self.id, self.audience
                    )),
                    current_state: None,
                },
            })
    }
}

fn refused(e: &surety_server::ApiError) -> surety_sdk::ClientError {
    let (status, body) = e.to_body();
    surety_sdk::ClientError::Api { status, body }
}

#[async_trait::async_trait]
impl surety_gateway::decider::Decider for InProcess {
    async fn decide(
        &self,
        input: &surety_api::decisions::DecisionInput,
    ) -> Result<surety_api::decisions::DecisionView, surety_sdk::ClientError> {
        let rs = self.rs().await?;
        surety_server::embed::decide(&self.state, &rs, input)
            .await
            .map_err(|e| refused(&e))
    }

    async fn is_active(&self, token: &str, jti: &str) -> Result<bool, surety_sdk::ClientError> {
        let rs = self.rs().await?;
        surety_server::embed::is_active(&self.state, &rs, token, jti)
            .await
            .map_err(|e| refused(&e))
    }
}

/// Paths of the Surety server an embedded gateway's prefixes may not take.
const RESERVED: [&str; 10] = [
    "/v1",
    "/oauth2",
    "/ui",
    "/jwks",
    "/access",
    "/healthz",
    "/readyz",
    "/metrics",
    "/openapi",
    "/.well-known",
];

/// The gateway of `file`, to serve inside the Surety server of `state` (`surety serve
/// --gateway`): on the server's listener, so its `public_url` and `issuer` are the server's
/// issuer; each upstream's `client_id` a resource server registered here for its resource.
pub async fn embedded(
    state: &surety_server::AppState,
    file: &std::path::Path,
) -> anyhow::Result<(axum::Router, surety_gateway::server::Reloader)> {
    let config = surety_gateway::GatewayConfig::load(file)?;
    let issuer = state.config.issuer_url();
    let issuer = issuer.trim_end_matches('/');
    anyhow::ensure!(
        config.public_url == issuer && config.issuer == issuer,
        "{}: an embedded gateway's `public_url` and `issuer` are this server's issuer `{issuer}`",
        file.display()
    );
    let mut deciders = std::collections::HashMap::new();
    for u in &config.upstreams {
        anyhow::ensure!(
            !RESERVED
                .iter()
                .any(|r| u.prefix == *r || u.prefix.starts_with(&format!("{r}/"))),
            "{}: prefix `{}` is a path of the Surety server",
            file.display(),
            u.prefix
        );
        let id = u
            .client_id
            .parse()
            .map_err(|e| anyhow::anyhow!("`client_id` `{}`: {e}", u.client_id))?;
        let rs = surety_server::embed::resource_server(state, id)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.to_body().1.error))?
            .filter(|rs| rs.audience == u.resource)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "`{}` is not an active resource server registered for `{}`",
                    u.client_id,
                    u.resource
                )
            })?;
        let decider: std::sync::Arc<dyn surety_gateway::decider::Decider> =
            std::sync::Arc::new(InProcess {
                state: state.clone(),
                id: rs.id,
                audience: rs.audience,
            });
        deciders.insert(u.prefix.clone(), decider);
    }
    surety_gateway::server::build_with(config, None, &|u| deciders.get(&u.prefix).cloned(), false)
        .map_err(anyhow::Error::msg)
}
