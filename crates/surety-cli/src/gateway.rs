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
    surety_gateway::serve(
        config,
        listener,
        Some(metrics),
        surety_server::serve::shutdown_signal(),
    )
    .await
    .map_err(anyhow::Error::msg)
}
