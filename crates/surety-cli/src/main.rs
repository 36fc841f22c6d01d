//! `surety`: run the server; administer humans, agents, grants, resource servers, signing
//! keys and the audit log; mint tokens as an agent; measure.

mod agents;
mod approval;
mod approve;
mod audit_export;
mod bench;
mod bench_approvals;
mod bench_audit;
mod bench_federation;
mod bench_gateway;
mod bench_revocation;
mod credentials;
mod demo;
mod federation;
mod gateway;
mod humans;
mod inventory;
mod output;
mod policy;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Identity, delegated authority and runtime assurance for AI agents.
#[derive(Debug, Parser)]
#[command(name = "surety", version, about, propagate_version = true)]
struct Cli {
    /// Profile to act with (server, human, device key file).
    #[arg(long, global = true, env = "SURETY_PROFILE", value_name = "FILE")]
    profile: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a deployment: its database and first admin (with a device key made here).
    Init(server::InitArgs),
    /// Run the server (initialising an empty data directory first).
    Serve(server::ServeArgs),
    /// See what Surety is for in a minute: a throw-away deployment, an MCP server behind the
    /// gateway, and an agent, its owner and an auditor going through the whole story.
    Demo(demo::DemoArgs),
    /// Enroll this machine's new device key with a one-time code; writes a profile.
    Enroll(humans::EnrollArgs),
    /// Show who the profile acts as.
    Whoami,
    /// Manage humans.
    #[command(subcommand)]
    Human(humans::HumanCommand),
    /// Manage agents.
    #[command(subcommand)]
    Agent(agents::AgentCommand),
    /// Delegate authority to agents: create, accept, decline, list, show, revoke grants.
    #[command(subcommand)]
    Grant(credentials::GrantCommand),
    /// Register resource servers (the services agents call), for introspection.
    #[command(subcommand)]
    Resource(credentials::ResourceCommand),
    /// The organisation's token signing keys.
    #[command(subcommand)]
    Keys(credentials::KeysCommand),
    /// As an agent, mint an access token from a grant (or delegate one); prints the token
    /// response.
    Token(credentials::TokenArgs),
    /// As a resource server, ask whether an agent may take an action now (allow, deny,
    /// step_up).
    Decide(credentials::DecideArgs),
    /// The Cedar policy set: show, validate, apply, diff, history, rollback.
    #[command(subcommand)]
    Policy(policy::PolicyCommand),
    /// Trusted peer organisations and what their agents may do here.
    #[command(subcommand)]
    Federation(federation::FederationCommand),
    /// Measure: HTTP load on the token and introspection endpoints, crypto limits.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Read the audit log.
    #[command(subcommand)]
    Audit(agents::AuditCommand),
    /// Every agent, who owns it, what it may do and never uses; what needs attention.
    #[command(subcommand)]
    Inventory(inventory::InventoryCommand),
    /// As an agent, ask a human to approve one action (OpenID CIBA) and wait for the answer.
    #[command(subcommand)]
    Approval(approval::ApprovalCommand),
    /// Answer step-up approval requests with this machine's device key.
    #[command(subcommand)]
    Approve(approve::ApproveCommand),
    /// Put an MCP server behind Surety: identity, policy, step-up and audit on every call.
    Gateway(gateway::GatewayArgs),
    /// Check or document the configuration.
    #[command(subcommand)]
    Config(server::ConfigCommand),
}

/// Global options every command may use.
#[derive(Debug, Clone)]
pub struct Globals {
    /// `--profile`.
    pub profile: Option<PathBuf>,
    /// `--json`.
    pub json: bool,
}

/// The profile used when none is named: the one `surety serve`/`init` write in the default
/// data directory.
pub const DEFAULT_PROFILE: &str = "surety-data/admin-profile.toml";

impl Globals {
    /// The admin client of the selected profile.
    pub fn client(&self) -> anyhow::Result<surety_sdk::AdminClient> {
        let path = self
            .profile
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PROFILE));
        let profile = surety_sdk::Profile::load(&path).map_err(|e| {
            anyhow::anyhow!("{e}\nhint: pass --profile FILE or set SURETY_PROFILE (see `surety init` / `surety enroll`)")
        })?;
        Ok(surety_sdk::AdminClient::from_profile(&profile)?)
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let g = Globals {
        profile: cli.profile,
        json: cli.json,
    };
    match cli.command {
        Command::Init(args) => server::init(&g, args).await,
        Command::Serve(args) => server::serve(args).await,
        Command::Demo(args) => demo::run(&g, args).await,
        Command::Enroll(args) => humans::enroll(&g, args).await,
        Command::Whoami => humans::whoami(&g).await,
        Command::Human(cmd) => humans::run(&g, cmd).await,
        Command::Agent(cmd) => agents::run(&g, cmd).await,
        Command::Grant(cmd) => credentials::grant(&g, cmd).await,
        Command::Approve(cmd) => approve::run(&g, cmd).await,
        Command::Approval(cmd) => approval::run(cmd).await,
        Command::Resource(cmd) => credentials::resource(&g, cmd).await,
        Command::Keys(cmd) => credentials::keys(&g, cmd).await,
        Command::Token(args) => credentials::token(args).await,
        Command::Bench(cmd) => bench::run(&g, cmd).await,
        Command::Policy(cmd) => policy::run(&g, cmd).await,
        Command::Federation(cmd) => federation::run(&g, cmd).await,
        Command::Decide(args) => credentials::decide(&g, args).await,
        Command::Audit(cmd) => agents::audit(&g, cmd).await,
        Command::Inventory(cmd) => inventory::run(&g, cmd).await,
        Command::Config(cmd) => server::config(cmd),
        Command::Gateway(args) => gateway::run(args).await,
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn an_auth_req_id_may_start_with_a_hyphen() {
        // base64url ids start with `-` one time in 64: still the id, not a flag.
        let parsed = Cli::try_parse_from([
            "surety",
            "approval",
            "wait",
            "--key",
            "k.jwk",
            "--agent",
            "agt_0190c0de00007000800000000000abcd",
            "-u3qK8Zx",
        ]);
        let Ok(Cli {
            command: Command::Approval(approval::ApprovalCommand::Wait { auth_req_id, .. }),
            ..
        }) = parsed
        else {
            unreachable!("not parsed: {parsed:?}");
        };
        assert_eq!(auth_req_id, "-u3qK8Zx");
    }
}
