//! `surety inventory`: every agent with its owner, keys, grants and what it never uses, and
//! the report of what needs attention — as a table, JSON or CSV.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use surety_api::inventory::{InventoryAgent, InventoryQuery, ReportResponse};
use surety_core::grant::GrantStatus;
use surety_core::key::KeyStatus;
use surety_sdk::InventoryExport;

use crate::Globals;
use crate::output::{self, Table};

/// `surety inventory …`
#[derive(Debug, Subcommand)]
pub enum InventoryCommand {
    /// Every agent: owner, status, keys and their age, grants, scopes never used, last
    /// activity, findings.
    Agents(InventoryArgs),
    /// What needs attention: orphaned agents, no grant, stale agents and keys, unused
    /// permissions (with what to remove), expiring grants, recent denials and suspensions.
    Report(InventoryArgs),
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// An aligned table.
    Table,
    /// The API's JSON.
    Json,
    /// CSV for a spreadsheet (formula-looking cells defused).
    Csv,
}

/// Filters, thresholds and output.
#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// Only agents of this owner (`hum_…`).
    #[arg(long)]
    owner: Option<String>,
    /// Only agents in this state.
    #[arg(long)]
    status: Option<String>,
    /// Only agents in this environment.
    #[arg(long)]
    environment: Option<String>,
    /// Only agents (report: findings) of this kind: orphaned, no_grant, stale_agent,
    /// stale_key, unused_permission, expiring_grant, recent_denials, suspended.
    #[arg(long)]
    finding: Option<String>,
    /// No activity for this long is stale (default: the server's `inventory_stale_after`).
    #[arg(long)]
    stale_after: Option<String>,
    /// Keys older than this are due for rotation (default: `agent_key_max_age`).
    #[arg(long)]
    key_max_age: Option<String>,
    /// Scopes not exercised for this long are unused (default: `inventory_unused_after`).
    #[arg(long)]
    unused_after: Option<String>,
    /// Grants ending within this are expiring (default: `inventory_expiring_within`).
    #[arg(long)]
    expiring_within: Option<String>,
    /// Window of recent denials and suspensions (default: `inventory_recent`).
    #[arg(long)]
    recent: Option<String>,
    /// Output format (`--json` means `--format json`).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

impl InventoryArgs {
    fn query(&self) -> InventoryQuery {
        InventoryQuery {
            owner: self.owner.clone(),
            status: self.status.clone(),
            environment: self.environment.clone(),
            finding: self.finding.clone(),
            format: None,
            stale_after: self.stale_after.clone(),
            key_max_age: self.key_max_age.clone(),
            unused_after: self.unused_after.clone(),
            expiring_within: self.expiring_within.clone(),
            recent: self.recent.clone(),
        }
    }
}

/// Runs `surety inventory …`.
pub async fn run(g: &Globals, cmd: InventoryCommand) -> anyhow::Result<()> {
    let (what, args) = match cmd {
        InventoryCommand::Agents(a) => (InventoryExport::Agents, a),
        InventoryCommand::Report(a) => (InventoryExport::Report, a),
    };
    let format = if g.json { Format::Json } else { args.format };
    let client = g.client()?;
    let query = args.query();
    let text = match (format, what) {
        (Format::Csv, _) => client.inventory_csv(what, &query).await?,
        (Format::Json, InventoryExport::Agents) => {
            serde_json::to_string_pretty(&client.inventory(&query).await?)? + "\n"
        }
        (Format::Json, InventoryExport::Report) => {
            serde_json::to_string_pretty(&client.inventory_report(&query).await?)? + "\n"
        }
        (Format::Table, InventoryExport::Agents) => {
            let inventory = client.inventory(&query).await?;
            agents_table(&inventory.items, inventory.generated_at)
        }
        (Format::Table, InventoryExport::Report) => {
            report_table(&client.inventory_report(&query).await?)
        }
    };
    match &args.out {
        Some(path) => {
            std::fs::write(path, &text)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => output::write(&text),
    }
    Ok(())
}

/// The table, with key ages as of `now` (the report's time, not this machine's).
fn agents_table(items: &[InventoryAgent], now: time::OffsetDateTime) -> String {
    if items.is_empty() {
        return "No agents.\n".into();
    }
    let mut t = Table::new(&[
        "agent",
        "name",
        "owner",
        "status",
        "keys",
        "grants",
        "unused",
        "last seen",
        "findings",
    ]);
    for a in items {
        let active: Vec<_> = a
            .keys
            .iter()
            .filter(|k| k.status == KeyStatus::Active)
            .collect();
        let oldest = active
            .iter()
            .map(|k| (now - k.created_at).whole_days())
            .max();
        let keys = match oldest {
            Some(d) => format!("{} ({d}d)", active.len()),
            None => "0".into(),
        };
        let live = a
            .grants
            .iter()
            .filter(|g| g.grant.status == GrantStatus::Active);
        let scopes: usize = live.clone().map(|g| g.grant.scopes.len()).sum();
        let unused = a
            .findings
            .iter()
            .filter(|f| f.kind == "unused_permission")
            .count();
        let owner = if a.owner.status.as_str() == "active" {
            a.owner.email.clone()
        } else {
            format!("{} ({})", a.owner.email, a.owner.status)
        };
        t.row(vec![
            a.id.to_string(),
            a.name.clone(),
            owner,
            a.status.to_string(),
            keys,
            live.count().to_string(),
            format!("{unused}/{scopes}"),
            a.last_seen_at.map_or_else(|| "never".into(), output::time),
            a.findings
                .iter()
                .map(|f| f.kind.as_str())
                .collect::<Vec<_>>()
                .join(" "),
        ]);
    }
    t.render()
}

fn report_table(report: &ReportResponse) -> String {
    let mut out = format!("{} agents\n", report.agents);
    // In report order, which the JSON object's keys do not keep.
    for kind in surety_core::inventory::FindingKind::ALL {
        let n = report.summary.get(kind.as_str()).copied().unwrap_or(0);
        out.push_str(&format!("  {:<18} {n}\n", kind.as_str()));
    }
    if report.items.is_empty() {
        out.push_str("\nNothing needs attention.\n");
        return out;
    }
    let mut t = Table::new(&["finding", "agent", "name", "owner", "detail"]);
    for line in &report.items {
        t.row(vec![
            line.finding.kind.clone(),
            line.agent.to_string(),
            line.agent_name.clone(),
            line.owner_email.clone(),
            line.finding.detail.clone(),
        ]);
    }
    out.push('\n');
    out.push_str(&t.render());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_report_says_so() {
        let r = ReportResponse::empty(
            time::OffsetDateTime::UNIX_EPOCH,
            surety_api::inventory::ThresholdsView {
                stale_after: 1,
                key_max_age: 1,
                unused_after: 1,
                expiring_within: 1,
                recent: 1,
            },
        );
        let text = report_table(&r);
        assert!(text.contains("orphaned"));
        assert!(text.ends_with("Nothing needs attention.\n"));
    }
}
