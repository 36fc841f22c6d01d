//! `surety approval`: the agent's side of step-up — ask the human to approve one action
//! (OpenID CIBA), then wait for the one-time approval token. (`surety approve` is the
//! human's side.)

use std::path::PathBuf;

use clap::Subcommand;
use surety_api::oauth::BackchannelResponse;
use surety_core::id::AgentId;
use surety_sdk::{AgentClient, ApprovalAsk, keyfile};

use crate::output;

#[derive(Debug, Subcommand)]
pub enum ApprovalCommand {
    /// Ask a human to approve one action; prints the `auth_req_id`, `expires_in` and
    /// `interval` (JSON).
    Request {
        #[command(flatten)]
        agent: AgentArgs,
        /// The human to ask: their id or e-mail.
        #[arg(long)]
        login_hint: String,
        /// The action: RFC 9396 `authorization_details` (JSON) — e.g. the
        /// `step_up.authorization_details` of a decision.
        #[arg(long, value_name = "JSON")]
        details: String,
        /// A short message shown to the human.
        #[arg(long)]
        message: Option<String>,
        /// How long the human has to answer, in seconds.
        #[arg(long)]
        expiry: Option<u64>,
    },
    /// Wait for the answer to a request; prints the one-time approval token response (JSON).
    Wait {
        #[command(flatten)]
        agent: AgentArgs,
        /// The request's `auth_req_id` (base64url: it may start with `-`).
        #[arg(allow_hyphen_values = true)]
        auth_req_id: String,
        /// Seconds between polls (the request's `interval`).
        #[arg(long, default_value_t = 5)]
        interval: u64,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 300)]
        timeout: u64,
    },
}

#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// The agent's private key file (mode 0600).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The agent (`agt_…`).
    #[arg(long)]
    agent: AgentId,
    /// Surety's URL.
    #[arg(long, env = "SURETY_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
}

impl AgentArgs {
    fn client(&self) -> anyhow::Result<AgentClient> {
        Ok(AgentClient::new(
            &self.server,
            self.agent,
            keyfile::read(&self.key)?,
        )?)
    }
}

pub async fn run(cmd: ApprovalCommand) -> anyhow::Result<()> {
    match cmd {
        ApprovalCommand::Request {
            agent,
            login_hint,
            details,
            message,
            expiry,
        } => {
            let details: serde_json::Value = serde_json::from_str(&details)
                .map_err(|e| anyhow::anyhow!("--details is not JSON: {e}"))?;
            let r = agent
                .client()?
                .request_approval(&ApprovalAsk {
                    login_hint: &login_hint,
                    authorization_details: &details,
                    binding_message: message.as_deref(),
                    requested_expiry: expiry,
                    client_notification_token: None,
                })
                .await?;
            output::json(&r)
        }
        ApprovalCommand::Wait {
            agent,
            auth_req_id,
            interval,
            timeout,
        } => {
            let request = BackchannelResponse {
                auth_req_id: auth_req_id.clone(),
                expires_in: timeout,
                interval,
            };
            let token = agent
                .client()?
                .wait_for_approval(&auth_req_id, &request)
                .await?;
            output::json(&token)
        }
    }
}
