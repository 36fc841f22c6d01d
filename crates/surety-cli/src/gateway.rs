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
async fn watch(path: PathBuf, reloader: surety_gateway::server::Reloader) {
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
