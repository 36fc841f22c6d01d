//! `surety enroll`, `surety whoami`, `surety human …`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use surety_api::admin::{CreateHuman, HumanQuery, HumanView};
use surety_core::human::Role;
use surety_core::id::HumanId;
use surety_jose::{KeyAlg, PrivateJwk};
use surety_sdk::{Profile, keyfile};

use crate::Globals;
use crate::output::{self, Table, say};

/// `surety enroll`.
#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The server's base URL.
    #[arg(long, value_name = "URL")]
    server: String,
    /// The one-time enrollment code an admin gave you.
    #[arg(long)]
    code: String,
    /// Where to write the profile.
    #[arg(long, value_name = "PROFILE")]
    out: PathBuf,
    /// Where to write the new device key (default: next to the profile, `.jwk`).
    #[arg(long, value_name = "FILE")]
    key_out: Option<PathBuf>,
    /// Key algorithm.
    #[arg(long, default_value = "EdDSA", value_parser = ["EdDSA", "ES256"])]
    alg: String,
}

#[derive(Debug, Subcommand)]
pub enum HumanCommand {
    /// Register a human; prints their id and a one-time enrollment code.
    Add {
        /// Display name.
        name: String,
        /// E-mail (unique).
        #[arg(long)]
        email: String,
        /// Role.
        #[arg(long, default_value = "member", value_parser = ["admin", "member"])]
        role: String,
    },
    /// List humans.
    List {
        /// Only this status (`active`, `deactivated`).
        #[arg(long)]
        status: Option<String>,
        /// Only this role.
        #[arg(long)]
        role: Option<String>,
        /// Page size.
        #[arg(long)]
        limit: Option<u32>,
        /// Continue from a `next_cursor`.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// Show a human and their device keys.
    Show {
        /// `hum_…`
        id: HumanId,
    },
    /// Deactivate (off-board) a human: their active agents are suspended.
    Deactivate {
        /// `hum_…`
        id: HumanId,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Reactivate a human (their agents stay suspended until reinstated).
    Reactivate {
        /// `hum_…`
        id: HumanId,
    },
    /// Issue a new one-time enrollment code (new or lost device).
    EnrollCode {
        /// `hum_…`
        id: HumanId,
    },
    /// Issue a one-time link to register a passkey for the approvals web UI.
    Invite {
        /// `hum_…`
        id: HumanId,
    },
    /// Revoke one of a human's device keys.
    RevokeKey {
        /// `hum_…`
        id: HumanId,
        /// The key's thumbprint.
        kid: String,
    },
}

pub async fn enroll(g: &Globals, args: EnrollArgs) -> anyhow::Result<()> {
    let alg: KeyAlg = args.alg.parse()?;
    let key_path = args
        .key_out
        .unwrap_or_else(|| args.out.with_extension("jwk"));
    anyhow::ensure!(
        !args.out.exists(),
        "`{}` already exists; refusing to overwrite it",
        args.out.display()
    );
    anyhow::ensure!(
        !key_path.exists(),
        "`{}` already exists; refusing to overwrite it",
        key_path.display()
    );
    let key = PrivateJwk::generate(alg)?;
    let enrolled = surety_sdk::enroll(&args.server, &args.code, &key).await?;
    keyfile::write(&key_path, &key)?;
    let key_file = match (key_path.parent(), args.out.parent()) {
        (Some(k), Some(p)) if k == p => PathBuf::from(key_path.file_name().unwrap_or_default()),
        _ => std::path::absolute(&key_path)?,
    };
    Profile {
        server: args.server.trim_end_matches('/').to_owned(),
        human_id: enrolled.human_id,
        key_file,
    }
    .save(&args.out)?;
    if g.json {
        output::json(
            &serde_json::json!({"human_id": enrolled.human_id, "kid": enrolled.kid, "profile": args.out, "key_file": key_path}),
        )?;
    } else {
        say!(
            "Enrolled device key {} for {}.",
            enrolled.kid,
            enrolled.human_id
        );
        say!("Profile:    {}", args.out.display());
        say!(
            "Device key: {} (mode 0600; it never leaves this machine)",
            key_path.display()
        );
        say!("Use it with: export SURETY_PROFILE={}", args.out.display());
    }
    Ok(())
}

fn print_human(g: &Globals, h: &HumanView) -> anyhow::Result<()> {
    if g.json {
        return output::json(h);
    }
    output::fields(&[
        ("id", h.id.to_string()),
        ("name", h.display_name.clone()),
        ("email", h.email.clone()),
        ("role", h.role.to_string()),
        ("status", h.status.to_string()),
        ("created", output::time(h.created_at)),
        ("updated", output::time(h.updated_at)),
    ]);
    if let Some(keys) = &h.keys {
        say!();
        let mut t = Table::new(&["device key", "alg", "status", "created"]);
        for k in keys {
            t.row(vec![
                k.kid.clone(),
                k.alg.clone(),
                k.status.to_string(),
                output::time(k.created_at),
            ]);
        }
        t.print("(no device keys enrolled)");
    }
    Ok(())
}

pub async fn whoami(g: &Globals) -> anyhow::Result<()> {
    let client = g.client()?;
    let me = client.me().await?;
    if !g.json {
        say!("server: {}", client.server());
    }
    print_human(g, &me)
}

pub async fn run(g: &Globals, cmd: HumanCommand) -> anyhow::Result<()> {
    let client = g.client()?;
    match cmd {
        HumanCommand::Add { name, email, role } => {
            let role: Role = role.parse()?;
            let created = client
                .create_human(&CreateHuman {
                    display_name: name,
                    email,
                    role: Some(role),
                })
                .await?;
            if g.json {
                return output::json(&created);
            }
            say!("{}", created.human.id);
            say!(
                "Enrollment code: {} (expires {})",
                created.enrollment.code,
                output::time(created.enrollment.expires_at)
            );
            say!(
                "On their own machine: surety enroll --server {} --code {} --out ~/.config/surety/profile.toml",
                client.server(),
                created.enrollment.code
            );
        }
        HumanCommand::List {
            status,
            role,
            limit,
            cursor,
        } => {
            let page = client
                .list_humans(&HumanQuery {
                    status,
                    role,
                    limit,
                    cursor,
                })
                .await?;
            if g.json {
                return output::json(&page);
            }
            let mut t = Table::new(&["id", "name", "email", "role", "status"]);
            for h in &page.items {
                t.row(vec![
                    h.id.to_string(),
                    h.display_name.clone(),
                    h.email.clone(),
                    h.role.to_string(),
                    h.status.to_string(),
                ]);
            }
            t.print("(no humans)");
            output::more(page.next_cursor.as_deref());
        }
        HumanCommand::Show { id } => print_human(g, &client.get_human(id).await?)?,
        HumanCommand::Deactivate { id, reason } => {
            let h = client.human_action(id, "deactivate", reason).await?;
            if g.json {
                return output::json(&h);
            }
            say!(
                "{} is now {} (their active agents were suspended)",
                h.id,
                h.status
            );
        }
        HumanCommand::Reactivate { id } => {
            let h = client.human_action(id, "reactivate", None).await?;
            if g.json {
                return output::json(&h);
            }
            say!("{} is now {}", h.id, h.status);
        }
        HumanCommand::Invite { id } => {
            let invite = client.invite(id).await?;
            if g.json {
                return output::json(&invite);
            }
            say!("{}", invite.url);
            eprintln!(
                "Open it in a browser to register a passkey (one use, expires {}).",
                output::time(invite.expires_at)
            );
        }
        HumanCommand::EnrollCode { id } => {
            let code = client.enrollment_code(id).await?;
            if g.json {
                return output::json(&code);
            }
            say!(
                "Enrollment code: {} (expires {})",
                code.code,
                output::time(code.expires_at)
            );
        }
        HumanCommand::RevokeKey { id, kid } => {
            print_human(g, &client.revoke_device_key(id, &kid).await?)?
        }
    }
    Ok(())
}
