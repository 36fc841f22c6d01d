//! `surety gateway`: a reverse proxy in front of MCP servers (Streamable HTTP) that
//! identifies every caller by a DPoP-bound Surety token, turns every message into a decision
//! of Surety's policy (OpenID AuthZEN COAZ mapping for MCP), holds or refuses what needs a
//! human's approval, forwards what is allowed — never the caller's token — and audits it.

pub mod config;
pub mod decide;
pub mod decider;
pub mod jsonrpc;
pub mod mapping;
pub mod server;
mod sse;

use std::net::SocketAddr;

use tokio::net::TcpListener;

pub use config::{ConfigError, GatewayConfig, StepUpMode};

/// Serves `config` on `listener` until `shutdown` resolves.
pub async fn serve(
    config: GatewayConfig,
    listener: TcpListener,
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    serve_router(server::router(config, metrics)?, listener, shutdown).await
}

/// Serves a router from [`server::build`] on `listener` until `shutdown` resolves.
pub async fn serve_router(
    app: axum::Router,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    use axum::serve::ListenerExt as _;
    // Answers are relayed in pieces as they arrive: without TCP_NODELAY the last piece
    // waits for the client's delayed ACK (40 ms on Linux).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(|e| e.to_string())
}
