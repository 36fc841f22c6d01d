//! `surety grant …`, `surety resource …`, `surety keys …` and `surety token`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use surety_api::credentials::{CreateGrant, CreateResourceServer, GrantQuery, GrantView};
use surety_core::id::{AgentId, GrantId, HumanId, ResourceServerId};
use surety_sdk::{AgentClient, ResourceVerifier, TokenRequest, keyfile};

use crate::Globals;
use crate::agents::read_public_key;
use crate::output::{self, Table, say};

#[derive(Debug, Subcommand)]
pub enum GrantCommand {
    /// Delegate authority to an agent (active at once), or with `--principal` propose a
    /// grant that only that human can accept.
    Create {
        /// The agent (`agt_…`).
        #[arg(long)]
        agent: AgentId,
        /// An action the agent may take (repeatable).
        #[arg(long = "scope", required = true, value_name = "ACTION")]
        scopes: Vec<String>,
        /// A resource URL its tokens may name as audience (repeatable).
        #[arg(long = "resource", required = true, value_name = "URL")]
        resources: Vec<String>,
        /// How long the grant lasts (`1h`, `30d`); at most the server's maximum.
        #[arg(long, value_name = "DURATION")]
        expires: String,
        /// A limit, `key=value`; the value is read as JSON when it parses (`100`,
        /// `["a.example"]`), else as text (repeatable).
        #[arg(long = "constraint", value_name = "K=V", value_parser = parse_constraint)]
        constraints: Vec<(String, serde_json::Value)>,
        /// How deep sub-agent delegation may go (default 0: none).
        #[arg(long = "max-depth", value_name = "N")]
        max_depth: Option<u32>,
        /// Propose on behalf of this human instead of delegating your own authority.
        #[arg(long)]
        principal: Option<HumanId>,
    },
    /// Accept a grant proposed to you.
    Accept {
        /// `grt_…`
        id: GrantId,
    },
    /// Decline a grant proposed to you.
    Decline {
        /// `grt_…`
        id: GrantId,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// List grants you may see.
    List {
        /// Only grants to this agent.
        #[arg(long)]
        agent: Option<AgentId>,
        /// Only grants of this principal.
        #[arg(long)]
        principal: Option<HumanId>,
        /// Only this stored state.
        #[arg(long)]
        status: Option<String>,
        /// Page size.
        #[arg(long)]
        limit: Option<u32>,
        /// Continue from a `next_cursor`.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show a grant.
    Show {
        /// `grt_…`
        id: GrantId,
    },
    /// Revoke a grant: every token minted from it stops working at once.
    Revoke {
        /// `grt_…`
        id: GrantId,
        /// Why.
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ResourceCommand {
    /// Register a resource server (admins): its audience and the public key it
    /// authenticates to introspection with. Prints its client id.
    Add {
        /// The audience URL tokens carry for it.
        #[arg(long)]
        audience: String,
        /// Its public key (a public JWK file, or a private key file: only the public half
        /// is sent).
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
    },
    /// List resource servers (admins).
    List,
    /// As a resource server, introspect a token (RFC 7662) and print the answer.
    Introspect {
        /// The resource server's client id (`rsv_…`).
        #[arg(long)]
        id: ResourceServerId,
        /// Its private key file.
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        /// Its audience.
        #[arg(long)]
        audience: String,
        /// Surety's URL.
        #[arg(long, env = "SURETY_SERVER", default_value = "http://127.0.0.1:8080")]
        server: String,
        /// The token.
        token: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the organisation's signing keys (admins).
    List,
    /// Make a new signing key the signer; the old one stays published until its tokens
    /// have expired (admins).
    Rotate {
        /// `EdDSA` or `ES256` (default: the server's `signing_alg`).
        #[arg(long, value_parser = ["EdDSA", "ES256"])]
        alg: Option<String>,
    },
}

/// `surety token`: an agent mints an access token and prints the token response.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The agent's private key file (mode 0600).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The agent (`agt_…`).
    #[arg(long)]
    agent: AgentId,
    /// Surety's URL.
    #[arg(long, env = "SURETY_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Exchange this grant.
    #[arg(
        long,
        required_unless_present = "from_token",
        conflicts_with = "from_token"
    )]
    grant: Option<GrantId>,
    /// Or delegate this access token (held by `--agent`) to `--sub-agent`.
    #[arg(long, value_name = "TOKEN", requires = "sub_agent")]
    from_token: Option<String>,
    /// The sub-agent to delegate to.
    #[arg(long, requires = "from_token")]
    sub_agent: Option<AgentId>,
    /// Narrower scope (space-separated).
    #[arg(long)]
    scope: Option<String>,
    /// The resource (audience), when the grant names several; with `--peer`, the resource
    /// at the peer.
    #[arg(long)]
    resource: Option<String>,
    /// Act in another organisation: the federation peer's issuer URL. The grant is
    /// exchanged here for an authorization grant for the peer, which the peer trades for
    /// its own token (identity chaining).
    #[arg(long, value_name = "ISSUER", requires = "grant")]
    peer: Option<String>,
}

pub(crate) fn parse_constraint(s: &str) -> Result<(String, serde_json::Value), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("`{s}` is not key=value"))?;
    let value = serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.to_owned()));
    Ok((k.to_owned(), value))
}

fn print_grant(g: &Globals, grant: &GrantView) -> anyhow::Result<()> {
    if g.json {
        return output::json(grant);
    }
    let mut pairs = vec![
        ("id", grant.id.to_string()),
        ("agent", grant.agent.to_string()),
        ("principal", grant.principal.to_string()),
        ("status", grant.status.to_string()),
        ("scopes", grant.scopes.join(" ")),
        ("resources", grant.resources.join(" ")),
        ("constraints", grant.constraints.to_string()),
        ("max depth", grant.max_delegation_depth.to_string()),
        ("expires", output::time(grant.expires_at)),
        ("created by", grant.created_by.to_string()),
        ("created", output::time(grant.created_at)),
    ];
    if let Some(r) = &grant.status_reason {
        pairs.insert(4, ("reason", r.clone()));
    }
    output::fields(&pairs);
    Ok(())
}

pub async fn grant(g: &Globals, cmd: GrantCommand) -> anyhow::Result<()> {
    let client = g.client()?;
    let grant = match cmd {
        GrantCommand::Create {
            agent,
            scopes,
            resources,
            expires,
            constraints,
            max_depth,
            principal,
        } => {
            let lifetime = humantime::parse_duration(&expires)
                .map_err(|e| anyhow::anyhow!("--expires `{expires}`: {e} (use 90m, 1h, 30d…)"))?;
            let body = CreateGrant {
                agent,
                principal,
                scopes,
                resources,
                constraints: Some(serde_json::Value::Object(constraints.into_iter().collect())),
                max_delegation_depth: max_depth,
                expires_at: None,
                expires_in: Some(lifetime.as_secs()),
            };
            let grant = client.create_grant(&body).await?;
            if g.json {
                return output::json(&grant);
            }
            say!("{}", grant.id);
            eprintln!("status: {}", grant.status);
            return Ok(());
        }
        GrantCommand::Accept { id } => client.grant_action(id, "accept", None).await?,
        GrantCommand::Decline { id, reason } => client.grant_action(id, "decline", reason).await?,
        GrantCommand::Revoke { id, reason } => {
            client.grant_action(id, "revoke", Some(reason)).await?
        }
        GrantCommand::Show { id } => client.get_grant(id).await?,
        GrantCommand::List {
            agent,
            principal,
            status,
            limit,
            cursor,
        } => {
            let q = GrantQuery {
                agent: agent.map(|a| a.to_string()),
                principal: principal.map(|p| p.to_string()),
                status,
                limit,
                cursor,
            };
            let page = client.list_grants(&q).await?;
            if g.json {
                return output::json(&page);
            }
            let mut t = Table::new(&["id", "agent", "principal", "status", "scopes", "expires"]);
            for x in &page.items {
                t.row(vec![
                    x.id.to_string(),
                    x.agent.to_string(),
                    x.principal.to_string(),
                    x.status.to_string(),
                    x.scopes.join(" "),
                    output::time(x.expires_at),
                ]);
            }
            t.print("(no grants)");
            output::more(page.next_cursor.as_deref());
            return Ok(());
        }
    };
    print_grant(g, &grant)
}

pub async fn resource(g: &Globals, cmd: ResourceCommand) -> anyhow::Result<()> {
    if let ResourceCommand::Introspect {
        id,
        key,
        audience,
        server,
        token,
    } = cmd
    {
        let verifier = ResourceVerifier::new(&server, &audience, id, keyfile::read(&key)?)?;
        return output::json(&verifier.introspect(&token).await?);
    }
    let client = g.client()?;
    match cmd {
        ResourceCommand::Add {
            audience,
            public_key,
            name,
        } => {
            let rs = client
                .create_resource_server(&CreateResourceServer {
                    audience,
                    public_key: read_public_key(&public_key)?,
                    name,
                })
                .await?;
            if g.json {
                return output::json(&rs);
            }
            say!("{}", rs.id);
        }
        ResourceCommand::List => {
            let all = client.list_resource_servers().await?;
            if g.json {
                return output::json(&all);
            }
            let mut t = Table::new(&["id", "name", "audience", "kid", "created"]);
            for rs in &all {
                t.row(vec![
                    rs.id.to_string(),
                    rs.name.clone(),
                    rs.audience.clone(),
                    rs.kid.clone(),
                    output::time(rs.created_at),
                ]);
            }
            t.print("(no resource servers)");
        }
        ResourceCommand::Introspect { .. } => {}
    }
    Ok(())
}

pub async fn keys(g: &Globals, cmd: KeysCommand) -> anyhow::Result<()> {
    let client = g.client()?;
    match cmd {
        KeysCommand::List => {
            let keys = client.list_signing_keys().await?;
            if g.json {
                return output::json(&keys);
            }
            let mut t = Table::new(&[
                "kid",
                "alg",
                "status",
                "published",
                "created",
                "published until",
            ]);
            for k in &keys {
                t.row(vec![
                    k.kid.clone(),
                    k.alg.clone(),
                    k.status.clone(),
                    if k.published {
                        "yes".into()
                    } else {
                        "no".into()
                    },
                    output::time(k.created_at),
                    k.publish_until.map(output::time).unwrap_or_default(),
                ]);
            }
            t.print("(no keys)");
        }
        KeysCommand::Rotate { alg } => {
            let rotated = client.rotate_signing_key(alg).await?;
            if g.json {
                return output::json(&rotated);
            }
            say!("{}", rotated.kid);
            for old in &rotated.retired {
                eprintln!("retired {old} (published until its tokens have expired)");
            }
        }
    }
    Ok(())
}

pub async fn token(args: TokenArgs) -> anyhow::Result<()> {
    let key = keyfile::read(&args.key)?;
    let agent = AgentClient::new(&args.server, args.agent, key)?;
    let response = match (args.grant, args.from_token, args.sub_agent) {
        (Some(grant), _, _) if args.peer.is_some() => {
            let request = TokenRequest {
                scope: args.scope,
                resource: args.resource,
            };
            let peer = args.peer.as_deref().unwrap_or_default();
            agent.chained_token(grant, peer, &request).await?
        }
        (Some(grant), _, _) => {
            let request = TokenRequest {
                scope: args.scope,
                resource: args.resource,
            };
            agent.exchange_grant(grant, &request).await?
        }
        (None, Some(token), Some(sub)) => {
            agent.delegate(&token, sub, args.scope.as_deref()).await?
        }
        _ => anyhow::bail!("give --grant, or --from-token with --sub-agent"),
    };
    output::json(&response)
}

/// `surety decide`: as a resource server, ask whether the agent holding a token may act.
#[derive(Debug, Args)]
pub struct DecideArgs {
    /// The agent's access token.
    #[arg(long)]
    token: String,
    /// The action (a tool name from the catalog).
    #[arg(long)]
    action: String,
    /// The resource, `TYPE:ID` (or just `ID`, of type `Resource`).
    #[arg(long)]
    resource: String,
    /// An argument, `name=value`; the value is read as JSON when it parses (repeatable).
    #[arg(long = "arg", value_name = "K=V", value_parser = parse_constraint)]
    args: Vec<(String, serde_json::Value)>,
    /// A one-time approval token for exactly this action (from the CIBA grant).
    #[arg(long, value_name = "TOKEN")]
    approval_token: Option<String>,
    /// The resource server's client id (`rsv_…`).
    #[arg(long)]
    id: ResourceServerId,
    /// Its private key file.
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// Its audience.
    #[arg(long)]
    audience: String,
    /// Surety's URL.
    #[arg(long, env = "SURETY_SERVER", default_value = "http://127.0.0.1:8080")]
    server: String,
}

pub async fn decide(g: &Globals, args: DecideArgs) -> anyhow::Result<()> {
    let verifier = ResourceVerifier::new(
        &args.server,
        &args.audience,
        args.id,
        keyfile::read(&args.key)?,
    )?;
    let (kind, id) = args
        .resource
        .split_once(':')
        .map_or(("Resource", args.resource.as_str()), |(t, i)| (t, i));
    let input = surety_api::decisions::DecisionInput {
        token: args.token,
        action: args.action,
        resource: surety_api::decisions::ResourceRef {
            kind: kind.to_owned(),
            id: id.to_owned(),
        },
        arguments: serde_json::Value::Object(args.args.into_iter().collect()),
        approval_token: args.approval_token,
        auth_req_id: None,
        request_approval: false,
    };
    let d = verifier.decide(&input).await?;
    if g.json {
        return output::json(&d);
    }
    say!("{}", d.decision);
    for r in &d.reasons {
        eprintln!("  {r}");
    }
    eprintln!(
        "  policies: {} (version {}), decision {}",
        d.policy_ids.join(", "),
        d.policy_version,
        d.decision_id
    );
    Ok(())
}
