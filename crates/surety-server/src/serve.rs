//! Binding, serving, and shutting down gracefully.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use surety_core::clock::Clock;
use surety_store::Store;
use tokio::net::TcpListener;

use crate::app::{AppState, router};
use crate::config::Config;

/// How often expired single-use values and tokens are deleted.
const PURGE_EVERY: Duration = Duration::from_secs(60);

/// A server bound to its address, not yet serving.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    state: AppState,
}

impl Server {
    /// Binds `config.listen` (port 0 picks a free port; see [`Server::local_addr`]).
    pub async fn bind(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> start::Result<Self> {
        let listener = TcpListener::bind(config.listen).await?;
        Self::from_listener(listener, config, store, clock).await
    }

    /// Serves on an already bound listener.
    pub async fn from_listener(
        listener: TcpListener,
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> start::Result<Self> {
        let state = AppState::new(config, store, clock).await?;
        Ok(Self { listener, state })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The application state (tests reach the store and clock through it).
    #[must_use]
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish for up to
    /// `shutdown_grace`.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        self.run_with(shutdown, axum::Router::new()).await
    }

    /// [`Server::run`], serving `extra` routes next to Surety's (the embedded MCP gateway).
    pub async fn run_with(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        extra: axum::Router,
    ) -> std::io::Result<()> {
        let grace = self.state.config.shutdown_grace;
        let purger = tokio::spawn(purge_loop(self.state.clone()));
        let checkpointer = tokio::spawn(checkpoint_loop(self.state.clone()));
        let federation = crate::federation::revocation::spawn_poller(self.state.clone());
        let changes = tokio::spawn(follow_changes(self.state.clone()));
        let pusher = crate::signals::spawn_pusher(self.state.clone());
        let app = router(self.state).merge(extra);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        use axum::serve::ListenerExt as _;
        // Streamed answers (SSE, the embedded gateway's relays) go out in pieces: without
        // TCP_NODELAY the last one waits for the client's delayed ACK (40 ms on Linux).
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight requests");
            let _ = stop_tx.send(true);
        });
        let mut stop_rx = stop_rx;
        let deadline = async move {
            let _ = stop_rx.wait_for(|stopped| *stopped).await;
            tokio::time::sleep(grace).await;
        };
        let result = tokio::select! {
            r = serve => r,
            () = deadline => {
                tracing::warn!(grace_secs = grace.as_secs(), "in-flight requests did not finish in time");
                Ok(())
            }
        };
        purger.abort();
        checkpointer.abort();
        federation.abort();
        changes.abort();
        pusher.abort();
        result
    }
}

/// Follows the changes other nodes announce through PostgreSQL (`LISTEN`/`NOTIFY`): a policy
/// set applied or a signing key rotated anywhere is in force here at once, not after
/// `key_refresh_interval` (which stays the safety net). When the feed loses its connection,
/// everything cached is re-read before it is used again: notices sent meanwhile are lost.
async fn follow_changes(state: AppState) {
    let mut feed = loop {
        match state.store.changes().await {
            Ok(Some(feed)) => break feed,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "cannot follow other nodes' changes yet; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    loop {
        let change = feed.next().await;
        metrics::counter!("surety_node_changes_total", "change" => change.as_str()).increment(1);
        match change {
            surety_store::Change::PolicySet => state.policies.invalidate(),
            surety_store::Change::SigningKeys => state.keys.invalidate().await,
            surety_store::Change::Missed => {
                state.policies.invalidate();
                state.keys.invalidate().await;
                tracing::warn!("lost the change feed: cached policies and keys are read again");
                // PostgreSQL may be down: do not spin while the feed reconnects.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Makes a signed checkpoint of the audit log once `checkpoint_every` events were appended
/// since the last, or `checkpoint_interval` after the first of them. Every node runs it;
/// the first to store a checkpoint of a size wins, the others keep theirs unsaved.
async fn checkpoint_loop(state: AppState) {
    let interval = state.config.checkpoint_interval;
    let every = u64::from(state.config.checkpoint_every);
    let mut tick = tokio::time::interval(interval.min(Duration::from_secs(5)));
    let mut waiting_since: Option<tokio::time::Instant> = None;
    loop {
        tick.tick().await;
        let (size, latest) = match (
            state.store.tree_size().await,
            state.store.latest_checkpoint().await,
        ) {
            (Ok(size), Ok(latest)) => (size, latest.map_or(0, |c| c.size)),
            _ => continue,
        };
        if size <= latest {
            waiting_since = None;
            continue;
        }
        let since = *waiting_since.get_or_insert_with(tokio::time::Instant::now);
        if size - latest >= every || since.elapsed() >= interval {
            match crate::admin::audit::make_checkpoint(&state).await {
                Ok(c) => {
                    tracing::debug!(size = c.size, "audit checkpoint signed");
                    waiting_since = None;
                }
                Err(e) => tracing::debug!(error = e.description(), "no audit checkpoint"),
            }
        }
    }
}

async fn purge_loop(state: AppState) {
    let mut tick = tokio::time::interval(PURGE_EVERY);
    loop {
        tick.tick().await;
        match state.store.purge_expired(state.clock.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::debug!(rows = n, "purged expired single-use values and tokens"),
            Err(e) => tracing::warn!(error = %e, "purge of expired rows failed"),
        }
    }
}

/// Completes on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// Errors of starting a server.
pub mod start {
    /// Why a server could not start.
    #[derive(Debug, thiserror::Error)]
    pub enum StartError {
        /// Binding failed.
        #[error("cannot listen: {0}")]
        Io(#[from] std::io::Error),
        /// The database failed.
        #[error("{0}")]
        Store(#[from] surety_store::StoreError),
        /// The signing keys or the policy set could not be loaded.
        #[error("{0}")]
        State(#[from] crate::app::StateError),
    }

    /// Result of starting.
    pub type Result<T> = std::result::Result<T, StartError>;
}
