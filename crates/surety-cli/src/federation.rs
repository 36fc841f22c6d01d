//! `surety federation …`: trusted peer organisations and what their agents may do here;
//! `surety agent card …`: an agent's signed A2A card.

use std::path::PathBuf;

use clap::Subcommand;
use surety_api::federation::{
    AddPeer, CardSkill, CreateFederationGrant, FederationGrantView, PublishCard,
};
use surety_core::id::{AgentId, FederationGrantId};

use crate::Globals;
use crate::output::{self, Table, say};

/// Federation peers and grants.
#[derive(Debug, Subcommand)]
pub enum FederationCommand {
    /// Trust another organisation: its issuer, and its keys pinned from a file or fetched
    /// from its metadata (https, no redirects, public addresses outside development mode).
    Add {
        /// The peer's issuer URL.
        #[arg(long)]
        issuer: String,
        /// Its RFC 8414 metadata URL (keys fetched and refreshed).
        #[arg(
            long,
            value_name = "URL",
            required_unless_present = "jwks_file",
            conflicts_with = "jwks_file"
        )]
        metadata_url: Option<String>,
        /// Its JWK Set, pinned (never fetched).
        #[arg(long, value_name = "FILE")]
        jwks_file: Option<PathBuf>,
        /// With pinned keys: its introspection endpoint, so that its revocations reach here.
        #[arg(long, value_name = "URL", requires = "jwks_file")]
        introspection_endpoint: Option<String>,
        /// A short name (default: the issuer's host).
        #[arg(long)]
        name: Option<String>,
    },
    /// List trusted peers.
    List,
    /// Stop trusting a peer (by name or issuer): its grants are revoked, its agents' tokens
    /// stop working at once.
    Remove {
        /// Name or issuer.
        peer: String,
    },
    /// What peers' agents may do here.
    #[command(subcommand)]
    Grant(FederationGrantCommand),
}

/// Federation grants.
#[derive(Debug, Subcommand)]
pub enum FederationGrantCommand {
    /// Let a peer's agents act here, within these scopes, resources and limits.
    Create {
        /// The peer (name or issuer).
        #[arg(long)]
        peer: String,
        /// Which of its agents: `*` (default), an id, or a prefix ending in `*`.
        #[arg(long)]
        agents: Option<String>,
        /// For which of its humans: `*` (default), an id, or a prefix ending in `*`.
        #[arg(long)]
        principals: Option<String>,
        /// An action they may take (repeatable).
        #[arg(long = "scope", required = true, value_name = "ACTION")]
        scopes: Vec<String>,
        /// A resource server here their tokens may be for (repeatable).
        #[arg(long = "resource", required = true, value_name = "URL")]
        resources: Vec<String>,
        /// A limit, `key=value` (as on `surety grant create`; `step_up=["payments.transfer"]`
        /// asks the agent's human to approve those actions) (repeatable).
        #[arg(long = "constraint", value_name = "K=V", value_parser = crate::credentials::parse_constraint)]
        constraints: Vec<(String, serde_json::Value)>,
        /// How long it lasts (`1h`, `30d`).
        #[arg(long, value_name = "DURATION")]
        expires: String,
    },
    /// List federation grants.
    List,
    /// Revoke a federation grant.
    Revoke {
        /// `fgr_…`
        id: FederationGrantId,
    },
}

/// An agent's card.
#[derive(Debug, Subcommand)]
pub enum CardCommand {
    /// Publish (or replace) the agent's signed A2A card, served at
    /// `/agents/{id}/.well-known/agent-card.json`.
    Publish {
        /// `agt_…`
        agent: AgentId,
        /// What the agent does.
        #[arg(long)]
        description: String,
        /// Where it is reached.
        #[arg(long)]
        url: String,
        /// A skill, `id=description` (repeatable).
        #[arg(long = "skill", value_name = "ID=DESCRIPTION")]
        skills: Vec<String>,
    },
    /// Withdraw the agent's card.
    Withdraw {
        /// `agt_…`
        agent: AgentId,
    },
}

fn print_grant(g: &Globals, grant: &FederationGrantView) -> anyhow::Result<()> {
    if g.json {
        return output::json(grant);
    }
    output::fields(&[
        ("id", grant.id.to_string()),
        ("peer", grant.peer.clone()),
        ("agents", grant.agents.clone()),
        ("principals", grant.principals.clone()),
        ("scopes", grant.scopes.join(" ")),
        ("resources", grant.resources.join(" ")),
        ("constraints", grant.constraints.to_string()),
        ("status", grant.status.clone()),
        ("expires", output::time(grant.expires_at)),
    ]);
    Ok(())
}

pub async fn run(g: &Globals, cmd: FederationCommand) -> anyhow::Result<()> {
    let client = g.client()?;
    match cmd {
        FederationCommand::Add {
            issuer,
            metadata_url,
            jwks_file,
            introspection_endpoint,
            name,
        } => {
            let jwks = jwks_file
                .map(|f| -> anyhow::Result<serde_json::Value> {
                    let text = std::fs::read_to_string(&f)
                        .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
                    serde_json::from_str(&text)
                        .map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", f.display()))
                })
                .transpose()?;
            let peer = client
                .add_peer(&AddPeer {
                    issuer,
                    name,
                    metadata_url,
                    jwks,
                    introspection_endpoint,
                })
                .await?;
            if g.json {
                return output::json(&peer);
            }
            say!("{}", peer.name);
            eprintln!(
                "trusted {} ({} key(s), {})",
                peer.issuer,
                peer.keys.len(),
                peer.source
            );
            Ok(())
        }
        FederationCommand::List => {
            let peers = client.list_peers().await?;
            if g.json {
                return output::json(&peers);
            }
            let mut t = Table::new(&["name", "issuer", "source", "keys", "introspection"]);
            for p in &peers {
                t.row(vec![
                    p.name.clone(),
                    p.issuer.clone(),
                    p.source.clone(),
                    p.keys.len().to_string(),
                    p.introspection_endpoint
                        .clone()
                        .unwrap_or_else(|| "-".into()),
                ]);
            }
            t.print("(no peers)");
            Ok(())
        }
        FederationCommand::Remove { peer } => {
            client.remove_peer(&peer).await?;
            eprintln!("{peer} is no longer trusted");
            Ok(())
        }
        FederationCommand::Grant(FederationGrantCommand::Create {
            peer,
            agents,
            principals,
            scopes,
            resources,
            constraints,
            expires,
        }) => {
            let lifetime = humantime::parse_duration(&expires)
                .map_err(|e| anyhow::anyhow!("--expires `{expires}`: {e} (use 90m, 1h, 30d…)"))?;
            let grant = client
                .create_federation_grant(&CreateFederationGrant {
                    peer,
                    agents,
                    principals,
                    scopes,
                    resources,
                    constraints: Some(serde_json::Value::Object(constraints.into_iter().collect())),
                    expires_at: None,
                    expires_in: Some(lifetime.as_secs()),
                })
                .await?;
            if g.json {
                return output::json(&grant);
            }
            say!("{}", grant.id);
            Ok(())
        }
        FederationCommand::Grant(FederationGrantCommand::List) => {
            let grants = client.list_federation_grants().await?;
            if g.json {
                return output::json(&grants);
            }
            let mut t = Table::new(&["id", "peer", "agents", "scopes", "status", "expires"]);
            for x in &grants {
                t.row(vec![
                    x.id.to_string(),
                    x.peer.clone(),
                    x.agents.clone(),
                    x.scopes.join(" "),
                    x.status.clone(),
                    output::time(x.expires_at),
                ]);
            }
            t.print("(no federation grants)");
            Ok(())
        }
        FederationCommand::Grant(FederationGrantCommand::Revoke { id }) => {
            let grant = client.revoke_federation_grant(id).await?;
            print_grant(g, &grant)
        }
    }
}

pub async fn card(g: &Globals, cmd: CardCommand) -> anyhow::Result<()> {
    let client = g.client()?;
    match cmd {
        CardCommand::Publish {
            agent,
            description,
            url,
            skills,
        } => {
            let skills = skills
                .iter()
                .map(|s| {
                    let (id, description) = s
                        .split_once('=')
                        .ok_or_else(|| anyhow::anyhow!("--skill `{s}` is not id=description"))?;
                    Ok(CardSkill {
                        id: id.to_owned(),
                        name: id.to_owned(),
                        description: description.to_owned(),
                        tags: Vec::new(),
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let card = client
                .publish_card(
                    agent,
                    &PublishCard {
                        description,
                        url,
                        skills,
                    },
                )
                .await?;
            output::json(&card)
        }
        CardCommand::Withdraw { agent } => {
            client.withdraw_card(agent).await?;
            eprintln!("the card of {agent} is withdrawn");
            Ok(())
        }
    }
}
