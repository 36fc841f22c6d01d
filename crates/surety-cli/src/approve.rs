//! `surety approve`: answer step-up requests with this machine's device key. `show` prints
//! exactly what will be signed; `approve`/`deny` fetch the request, show it, and sign the
//! digest of that statement — recomputed here, so the signature covers what was shown.

use clap::Subcommand;
use surety_api::approvals::{ApprovalQuery, ApprovalView};

use crate::Globals;
use crate::output::{self, say};

#[derive(Debug, Subcommand)]
pub enum ApproveCommand {
    /// The requests waiting for you (`--all` for every state).
    List {
        /// Every request addressed to you, whatever its state.
        #[arg(long)]
        all: bool,
    },
    /// Show one request: agent, chain, principal, the exact action and arguments, and why.
    Show {
        /// The request (`apr_…`).
        id: String,
    },
    /// Approve a request (signs its digest with your device key).
    Approve {
        /// The request (`apr_…`).
        id: String,
        /// Why (recorded with your answer).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Deny a request (signs its digest with your device key).
    Deny {
        /// The request (`apr_…`).
        id: String,
        /// Why (recorded with your answer).
        #[arg(long)]
        reason: Option<String>,
    },
}

fn describe(a: &ApprovalView) {
    eprintln!("request   {}  ({})", a.id, a.status);
    eprintln!("message   {}", a.binding_message);
    eprintln!("agent     {} ({})", a.agent_name, a.agent);
    if a.chain.len() > 1 {
        eprintln!("chain     {}", a.chain.join(" → "));
    }
    eprintln!("for       {}  under grant {}", a.principal, a.grant_id);
    eprintln!("action    {} on {}", a.action, a.resource);
    eprintln!("arguments {}", a.arguments);
    eprintln!("at        {}", a.location);
    for r in &a.reasons {
        eprintln!("why       {r}");
    }
    eprintln!(
        "approvers {} of {}: {}",
        a.required,
        a.approvers.len(),
        a.approvers.join(", ")
    );
    for v in &a.votes {
        eprintln!("  {} {} by {} ({})", v.at, v.decision, v.approver, v.method);
    }
    eprintln!("expires   {}", a.expires_at);
    eprintln!("digest    {}", a.digest);
}

pub async fn run(g: &Globals, cmd: ApproveCommand) -> anyhow::Result<()> {
    let client = g.client()?;
    let (id, approve, reason) = match cmd {
        ApproveCommand::List { all } => {
            let list = client
                .list_approvals(&ApprovalQuery {
                    status: all.then(|| "all".to_owned()),
                    ..ApprovalQuery::default()
                })
                .await?;
            if g.json {
                return output::json(&list);
            }
            for a in &list.items {
                say!(
                    "{}  {:9}  {}  {} ({})",
                    a.id,
                    a.status,
                    a.binding_message,
                    a.agent_name,
                    a.agent
                );
            }
            return Ok(());
        }
        ApproveCommand::Show { id } => {
            let a = client.get_approval(&id).await?;
            if g.json {
                return output::json(&a);
            }
            describe(&a);
            return Ok(());
        }
        ApproveCommand::Approve { id, reason } => (id, true, reason),
        ApproveCommand::Deny { id, reason } => (id, false, reason),
    };
    let shown = client.get_approval(&id).await?;
    if !g.json {
        describe(&shown);
    }
    let settled = client.answer_approval(&shown, approve, reason).await?;
    if g.json {
        return output::json(&settled);
    }
    say!("{}", settled.status);
    Ok(())
}
