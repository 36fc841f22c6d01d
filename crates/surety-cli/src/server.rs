//! `surety init`, `surety serve`, `surety config`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use surety_core::clock::{Clock, SystemClock};
use surety_jose::{KeyAlg, PrivateJwk};
use surety_sdk::{Profile, keyfile};
use surety_server::Config;
use surety_server::bootstrap::{self, BootstrapError};
use surety_server::serve::{Server, shutdown_signal};
use surety_store::Store;

use crate::Globals;
use crate::output::{self, say};

/// Where the configuration comes from (shared by `init` and `serve`).
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (embedded database, first admin's profile).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL (`sqlite://…` or `postgres://…`).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
    /// Public base URL of this deployment.
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
}

impl ConfigArgs {
    fn load(&self, listen: Option<&str>, dev: bool) -> anyhow::Result<Config> {
        let mut overrides: Vec<(&str, String)> = Vec::new();
        if let Some(d) = &self.data_dir {
            overrides.push(("data_dir", d.display().to_string()));
        }
        if let Some(u) = &self.database_url {
            overrides.push(("database_url", u.clone()));
        }
        if let Some(i) = &self.issuer {
            overrides.push(("issuer", i.clone()));
        }
        if let Some(l) = listen {
            overrides.push(("listen", l.to_owned()));
        }
        if dev {
            overrides.push(("dev", "true".into()));
        }
        Ok(Config::load(
            self.config.as_deref(),
            |k| std::env::var(k).ok(),
            &overrides,
        )?)
    }
}

/// `surety init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// The first admin's display name.
    #[arg(long, default_value = "Admin")]
    admin: String,
    /// The first admin's e-mail.
    #[arg(long, default_value = "admin@localhost")]
    admin_email: String,
}

/// `surety serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Address to listen on.
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Development mode (allows a plain-http issuer on a non-loopback host).
    #[arg(long)]
    dev: bool,
    /// Also serve the MCP gateway of this file, in this process: decisions are asked
    /// in-process (see docs/gateway.md).
    #[arg(long, value_name = "FILE")]
    gateway: Option<PathBuf>,
}

/// `surety config`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a configuration file (with the environment applied); exit non-zero naming
    /// the offending key.
    Check {
        /// The file.
        file: PathBuf,
    },
    /// Print the configuration reference (Markdown).
    Docs,
}

/// Files the first admin gets in the data directory.
struct AdminFiles {
    profile: PathBuf,
    key: PathBuf,
}

impl AdminFiles {
    fn in_dir(dir: &Path) -> Self {
        Self {
            profile: dir.join("admin-profile.toml"),
            key: dir.join("admin-device-key.jwk"),
        }
    }
}

/// Creates the first admin: a device key generated here, registered in the database, and a
/// profile pointing at it.
async fn first_admin(
    config: &Config,
    store: &dyn Store,
    name: &str,
    email: &str,
) -> anyhow::Result<(surety_core::human::Human, AdminFiles)> {
    if store.is_initialized().await? {
        return Err(BootstrapError::AlreadyInitialized.into());
    }
    let files = AdminFiles::in_dir(&config.data_dir);
    for path in [&files.profile, &files.key] {
        anyhow::ensure!(
            !path.exists(),
            "`{}` already exists; refusing to overwrite it",
            path.display()
        );
    }
    let key = PrivateJwk::generate(KeyAlg::EdDSA)?;
    let admin = bootstrap::init_org(store, &SystemClock, name, email, key.public()).await?;
    keyfile::write(&files.key, &key)?;
    Profile {
        server: config.issuer_url(),
        human_id: admin.id,
        key_file: PathBuf::from("admin-device-key.jwk"),
    }
    .save(&files.profile)?;
    Ok((admin, files))
}

fn print_profile_hint(files: &AdminFiles) {
    eprintln!("Admin profile: {}", files.profile.display());
    eprintln!(
        "Device key:    {} (mode 0600; it never leaves this machine)",
        files.key.display()
    );
    eprintln!(
        "Use it with:   export SURETY_PROFILE={}",
        files.profile.display()
    );
    eprintln!("               surety whoami");
}

pub async fn init(g: &Globals, args: InitArgs) -> anyhow::Result<()> {
    let config = args.config.load(None, false)?;
    let store = bootstrap::open_store(&config).await?;
    let result = first_admin(&config, store.as_ref(), &args.admin, &args.admin_email).await;
    store.close().await;
    let (admin, files) = match result {
        Err(e) if matches!(e.downcast_ref(), Some(BootstrapError::AlreadyInitialized)) => {
            anyhow::bail!(
                "`{}` is already initialized (it has an admin); use `surety serve` or another --data-dir",
                config.data_dir.display()
            )
        }
        other => other?,
    };
    if g.json {
        output::json(&serde_json::json!({
            "admin": admin.id, "email": admin.email, "issuer": config.issuer_url(),
            "profile": files.profile, "key_file": files.key,
        }))?;
    } else {
        say!(
            "Initialized {} with admin {} <{}> ({})",
            config.data_dir.display(),
            admin.display_name,
            admin.email,
            admin.id
        );
        print_profile_hint(&files);
    }
    Ok(())
}

pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.config.load(args.listen.as_deref(), args.dev)?;
    surety_server::telemetry::init_logging(&config).map_err(anyhow::Error::msg)?;
    if config.dev {
        tracing::warn!("DEVELOPMENT MODE: a plain-http issuer is allowed on a non-loopback host");
    }
    let store = bootstrap::open_store(&config).await?;
    if !store.is_initialized().await? {
        let (admin, files) = first_admin(&config, store.as_ref(), "Admin", "admin@localhost")
            .await
            .context("initialising the empty data directory")?;
        eprintln!(
            "Initialized {} with admin {} ({}).",
            config.data_dir.display(),
            admin.email,
            admin.id
        );
        print_profile_hint(&files);
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let issuer = config.issuer_url();
    let backend = store.backend();
    let server = Server::bind(config, store.clone(), clock).await?;
    let addr = server.local_addr()?;
    tracing::info!(%addr, %issuer, backend, "surety listening");
    eprintln!("Surety is listening on http://{addr} (issuer {issuer}, {backend} database).");
    match &args.gateway {
        Some(file) => {
            let (extra, reloader) = crate::gateway::embedded(server.state(), file).await?;
            tokio::spawn(crate::gateway::watch(file.clone(), reloader));
            tracing::info!(file = %file.display(), "serving the MCP gateway in-process");
            server.run_with(shutdown_signal(), extra).await?;
        }
        None => server.run(shutdown_signal()).await?,
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

pub fn config(cmd: ConfigCommand) -> anyhow::Result<()> {
    match cmd {
        ConfigCommand::Check { file } => {
            let config = Config::load(Some(&file), |k| std::env::var(k).ok(), &[])?;
            say!(
                "{} is valid (issuer {}, database {})",
                file.display(),
                config.issuer_url(),
                surety_store::redact_url(&config.database_url())
            );
        }
        ConfigCommand::Docs => output::write(&surety_server::config::reference_markdown()),
    }
    Ok(())
}
