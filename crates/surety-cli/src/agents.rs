//! `surety agent …`, `surety audit …`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use surety_api::admin::{AddKey, AgentQuery, AgentView, AuditQuery, RegisterAgent};
use surety_core::id::{AgentId, HumanId};
use surety_jose::{KeyAlg, PrivateJwk, PublicJwk};
use surety_sdk::keyfile;

use crate::Globals;
use crate::output::{self, Table, say};

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// The agent's signed A2A card.
    #[command(subcommand)]
    Card(crate::federation::CardCommand),
    /// Generate an agent key pair: writes the private JWK (mode 0600), prints the public JWK
    /// and its thumbprint.
    Keygen {
        /// Where to write the private key.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Key algorithm.
        #[arg(long, default_value = "EdDSA", value_parser = ["EdDSA", "ES256"])]
        alg: String,
    },
    /// Register an agent with its public key; prints its id.
    Register {
        /// Name, unique per owner.
        name: String,
        /// Owner (`hum_…`); defaults to you.
        #[arg(long)]
        owner: Option<HumanId>,
        /// Public key: a public JWK file, or the private key file from `keygen` (only its
        /// public half is sent).
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
        /// What the agent is for.
        #[arg(long)]
        purpose: Option<String>,
        /// Environment label.
        #[arg(long = "env")]
        environment: Option<String>,
        /// A `key=value` label (repeatable).
        #[arg(long = "label", value_name = "K=V", value_parser = parse_label)]
        labels: Vec<(String, String)>,
    },
    /// List agents.
    List {
        /// Only this owner.
        #[arg(long)]
        owner: Option<HumanId>,
        /// Only this status.
        #[arg(long)]
        status: Option<String>,
        /// Only this environment.
        #[arg(long = "env")]
        environment: Option<String>,
        /// Page size.
        #[arg(long)]
        limit: Option<u32>,
        /// Continue from a `next_cursor`.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show an agent and its keys.
    Show {
        /// `agt_…`
        id: AgentId,
    },
    /// Suspend an agent (blocks everything until its owner reinstates it).
    Suspend {
        /// `agt_…`
        id: AgentId,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Reinstate a suspended agent (owner only).
    Reinstate {
        /// `agt_…`
        id: AgentId,
    },
    /// Revoke an agent for good; its keys are revoked.
    Revoke {
        /// `agt_…`
        id: AgentId,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Retire an agent for good; its keys are retired.
    Retire {
        /// `agt_…`
        id: AgentId,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Add a new key and retire the current one(s).
    RotateKey {
        /// `agt_…`
        id: AgentId,
        /// The new public key (or private key file; only its public half is sent).
        #[arg(long, value_name = "FILE")]
        public_key: PathBuf,
        /// Keep the current keys active.
        #[arg(long)]
        keep_previous: bool,
    },
    /// Revoke one key of an agent.
    RevokeKey {
        /// `agt_…`
        id: AgentId,
        /// The key's thumbprint.
        kid: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// List an agent's keys.
    Keys {
        /// `agt_…`
        id: AgentId,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit events, newest first.
    List {
        /// Events whose target is this id.
        #[arg(long)]
        target: Option<String>,
        /// Events concerning this agent.
        #[arg(long)]
        agent: Option<AgentId>,
        /// Events concerning this human.
        #[arg(long)]
        human: Option<HumanId>,
        /// Event type (`agent.suspended`…).
        #[arg(long = "type")]
        kind: Option<String>,
        /// At or after this RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// Before this RFC 3339 time.
        #[arg(long)]
        until: Option<String>,
        /// Most events to show.
        #[arg(long)]
        limit: Option<u32>,
        /// Continue from a `next_cursor`.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// The latest events, oldest first; with `--follow`, then every new one as it is
    /// recorded (one JSON line each with `--json`).
    Tail {
        /// How many of the latest to show first.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Keep printing new events.
        #[arg(short, long)]
        follow: bool,
        /// Seconds between two looks for new events.
        #[arg(long, default_value_t = 1)]
        every: u64,
    },
    /// Write the whole log, up to a signed checkpoint, to a file an auditor can verify
    /// offline (admins).
    Export {
        /// The file to write (JSON Lines).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Only from this leaf index or RFC 3339 time on; the file then also carries the
        /// subtrees around the range, which prove it against the signed root.
        #[arg(long)]
        from: Option<crate::audit_export::Bound>,
        /// Only before this leaf index or RFC 3339 time.
        #[arg(long)]
        to: Option<crate::audit_export::Bound>,
    },
    /// Print the log's verifier key (hand it to auditors through another channel than the
    /// export).
    LogKey,
    /// Verify an export offline: recompute the Merkle tree from its events and check the
    /// checkpoints' signatures and roots with the log's key.
    Verify {
        /// The export.
        file: PathBuf,
        /// The log's verifier key (`GET /v1/audit/log-key`), or a file holding it or the
        /// organisation's JWKS (its `jwks_uri`, `/jwks`), obtained independently.
        #[arg(long, conflicts_with = "key_file")]
        key: Option<String>,
        /// A file holding the verifier key or the JWKS.
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
    },
}

/// Prints one event as a line (or a JSON line).
fn print_event(g: &Globals, e: &surety_api::admin::AuditEventView) -> anyhow::Result<()> {
    if g.json {
        println!("{}", serde_json::to_string(e)?);
        return Ok(());
    }
    let details = serde_json::to_string(&e.details).unwrap_or_default();
    let details: String = details.chars().take(100).collect();
    println!(
        "{:>8}  {}  {:<26}  {:<36}  {}  {details}",
        e.seq,
        output::time(e.time),
        e.kind.to_string(),
        e.actor.to_string(),
        e.target
    );
    Ok(())
}

/// The events after `seq`, oldest first (paging back through newer ones as needed).
async fn events_after(
    client: &surety_sdk::AdminClient,
    seq: i64,
    at_most: u32,
) -> anyhow::Result<Vec<surety_api::admin::AuditEventView>> {
    let mut out = Vec::new();
    let mut cursor = None;
    'pages: loop {
        let page = client
            .list_audit(&AuditQuery {
                limit: Some(at_most.clamp(1, 1000)),
                cursor: cursor.clone(),
                ..AuditQuery::default()
            })
            .await?;
        for e in page.items {
            if e.seq <= seq || out.len() >= at_most as usize {
                break 'pages;
            }
            out.push(e);
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    out.reverse();
    Ok(out)
}

async fn tail(g: &Globals, limit: u32, follow: bool, every: u64) -> anyhow::Result<()> {
    let client = g.client()?;
    let mut last = 0;
    for e in events_after(&client, 0, limit).await? {
        last = e.seq;
        print_event(g, &e)?;
    }
    if !follow {
        return Ok(());
    }
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(every.max(1))).await;
        for e in events_after(&client, last, u32::MAX).await? {
            last = e.seq;
            print_event(g, &e)?;
        }
    }
}

fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("`{s}` is not key=value"))
}

/// Reads a public key from a JWK file. A private JWK is accepted (it must be mode 0600)
/// and reduced to its public half here; the private part is never sent.
pub(crate) fn read_public_key(path: &Path) -> anyhow::Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", path.display()))?;
    if json.get("d").is_some() {
        return Ok(keyfile::read(path)?.public().to_json());
    }
    let key =
        PublicJwk::from_json(&json).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(key.to_json())
}

fn print_agent(g: &Globals, a: &AgentView) -> anyhow::Result<()> {
    if g.json {
        return output::json(a);
    }
    let labels = a
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut pairs = vec![
        ("id", a.id.to_string()),
        ("name", a.name.clone()),
        ("owner", a.owner.to_string()),
        ("status", a.status.to_string()),
        ("environment", a.environment.clone()),
        ("purpose", a.purpose.clone()),
        ("labels", labels),
        ("created", output::time(a.created_at)),
        ("updated", output::time(a.updated_at)),
        (
            "last seen",
            a.last_seen_at.map_or_else(|| "never".into(), output::time),
        ),
    ];
    if let Some(reason) = &a.status_reason {
        pairs.insert(4, ("reason", reason.clone()));
    }
    output::fields(&pairs);
    if let Some(keys) = &a.keys {
        say!();
        print_keys(keys);
    }
    Ok(())
}

fn print_keys(keys: &[surety_api::admin::KeyView]) {
    let mut t = Table::new(&["kid", "alg", "status", "created", "changed"]);
    for k in keys {
        t.row(vec![
            k.kid.clone(),
            k.alg.clone(),
            k.status.to_string(),
            output::time(k.created_at),
            k.status_changed_at.map(output::time).unwrap_or_default(),
        ]);
    }
    t.print("(no keys)");
}

pub async fn run(g: &Globals, cmd: AgentCommand) -> anyhow::Result<()> {
    if let AgentCommand::Keygen { out, alg } = &cmd {
        let key = PrivateJwk::generate(alg.parse::<KeyAlg>()?)?;
        keyfile::write(out, &key)?;
        if g.json {
            return output::json(
                &serde_json::json!({"kid": key.thumbprint(), "public_key": key.public().to_json(), "private_key_file": out}),
            );
        }
        eprintln!(
            "Private key written to {} (mode 0600). Public key:",
            out.display()
        );
        say!("{}", serde_json::to_string_pretty(&key.public().to_json())?);
        eprintln!("Thumbprint (kid): {}", key.thumbprint());
        return Ok(());
    }
    if let AgentCommand::Card(cmd) = cmd {
        return crate::federation::card(g, cmd).await;
    }
    let client = g.client()?;
    let agent = match cmd {
        AgentCommand::Keygen { .. } | AgentCommand::Card(_) => return Ok(()),
        AgentCommand::Register {
            name,
            owner,
            public_key,
            purpose,
            environment,
            labels,
        } => {
            let body = RegisterAgent {
                name,
                owner,
                public_key: read_public_key(&public_key)?,
                purpose,
                environment,
                labels: labels.into_iter().collect::<BTreeMap<_, _>>(),
            };
            let agent = client.register_agent(&body).await?;
            if g.json {
                return output::json(&agent);
            }
            say!("{}", agent.id);
            return Ok(());
        }
        AgentCommand::List {
            owner,
            status,
            environment,
            limit,
            cursor,
        } => {
            let q = AgentQuery {
                owner: owner.map(|o| o.to_string()),
                status,
                environment,
                limit,
                cursor,
            };
            let page = client.list_agents(&q).await?;
            if g.json {
                return output::json(&page);
            }
            let mut t = Table::new(&["id", "name", "owner", "env", "status", "created"]);
            for a in &page.items {
                t.row(vec![
                    a.id.to_string(),
                    a.name.clone(),
                    a.owner.to_string(),
                    a.environment.clone(),
                    a.status.to_string(),
                    output::time(a.created_at),
                ]);
            }
            t.print("(no agents)");
            output::more(page.next_cursor.as_deref());
            return Ok(());
        }
        AgentCommand::Keys { id } => {
            let keys = client.list_agent_keys(id).await?;
            if g.json {
                return output::json(&keys);
            }
            print_keys(&keys);
            return Ok(());
        }
        AgentCommand::Show { id } => client.get_agent(id).await?,
        AgentCommand::Suspend { id, reason } => {
            client.agent_action(id, "suspend", Some(reason)).await?
        }
        AgentCommand::Reinstate { id } => client.agent_action(id, "reinstate", None).await?,
        AgentCommand::Revoke { id, reason } => {
            client.agent_action(id, "revoke", Some(reason)).await?
        }
        AgentCommand::Retire { id, reason } => client.agent_action(id, "retire", reason).await?,
        AgentCommand::RotateKey {
            id,
            public_key,
            keep_previous,
        } => {
            let body = AddKey {
                public_key: read_public_key(&public_key)?,
                retire_previous: Some(!keep_previous),
            };
            client.add_agent_key(id, &body).await?
        }
        AgentCommand::RevokeKey { id, kid, reason } => {
            client.revoke_agent_key(id, &kid, reason).await?
        }
    };
    print_agent(g, &agent)
}

pub async fn audit(g: &Globals, cmd: AuditCommand) -> anyhow::Result<()> {
    let (target, agent, human, kind, since, until, limit, cursor) = match cmd {
        AuditCommand::Export { out, from, to } => {
            return crate::audit_export::export(g, &out, from, to).await;
        }
        AuditCommand::LogKey => return crate::audit_export::log_key(g).await,
        AuditCommand::Tail {
            limit,
            follow,
            every,
        } => return tail(g, limit, follow, every).await,
        AuditCommand::Verify {
            file,
            key,
            key_file,
        } => return crate::audit_export::verify(g, &file, key, key_file),
        AuditCommand::List {
            target,
            agent,
            human,
            kind,
            since,
            until,
            limit,
            cursor,
        } => (target, agent, human, kind, since, until, limit, cursor),
    };
    let client = g.client()?;
    let q = AuditQuery {
        agent: agent.map(|a| a.to_string()),
        human: human.map(|h| h.to_string()),
        target,
        kind,
        since,
        until,
        limit,
        cursor,
    };
    let page = client.list_audit(&q).await?;
    if g.json {
        return output::json(&page);
    }
    let mut t = Table::new(&["seq", "time", "type", "actor", "target", "details"]);
    for e in &page.items {
        let details = serde_json::to_string(&e.details).unwrap_or_default();
        let details: String = details.chars().take(80).collect();
        t.row(vec![
            e.seq.to_string(),
            output::time(e.time),
            e.kind.to_string(),
            e.actor.to_string(),
            e.target.clone(),
            details,
        ]);
    }
    t.print("(no events)");
    output::more(page.next_cursor.as_deref());
    Ok(())
}
