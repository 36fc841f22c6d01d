//! `surety policy …`: the Cedar policy set in force, its history, and safe changes.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use surety_api::credentials::{ApplyPolicySet, PolicyHistoryQuery};

use crate::Globals;
use crate::output::{self, Table, say};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Print the policies in force (or of one version; 0 is the shipped default).
    Show {
        /// Another version than the one in force.
        #[arg(value_name = "VERSION")]
        number: Option<u64>,
        /// Print the action catalog instead of the policies.
        #[arg(long)]
        catalog: bool,
    },
    /// Check a policy file against the schema without applying it.
    Validate {
        /// The Cedar policies.
        file: PathBuf,
        /// An action catalog (Cedar schema fragment) to check against; default: the one in force.
        #[arg(long, value_name = "FILE")]
        catalog: Option<PathBuf>,
    },
    /// Apply a policy file (admins): validated first; on any error the set in force stays.
    Apply {
        /// The Cedar policies.
        file: PathBuf,
        /// A new action catalog; default: keep the one in force.
        #[arg(long, value_name = "FILE")]
        catalog: Option<PathBuf>,
        /// Why (kept in the history and the audit log).
        #[arg(long)]
        note: Option<String>,
    },
    /// Show how a policy file differs from the policies in force.
    Diff {
        /// The Cedar policies.
        file: PathBuf,
    },
    /// List the applied versions, newest first.
    History {
        /// Page size.
        #[arg(long)]
        limit: Option<u32>,
        /// Continue from a `next_cursor`.
        #[arg(long)]
        cursor: Option<String>,
    },
    /// What-if: replay recorded decisions against a candidate policy file and list every
    /// decision that would change — before it goes live. Evaluated here, offline.
    Test {
        /// The candidate Cedar policies.
        file: PathBuf,
        /// A candidate action catalog; default: the one in force.
        #[arg(long, value_name = "FILE")]
        catalog: Option<PathBuf>,
        /// Which decisions: `last:N` (the N most recent, up to 100000).
        #[arg(long, default_value = "last:1000", value_parser = parse_against)]
        against: usize,
    },
    /// Apply an earlier version again, as a new version (admins).
    Rollback {
        /// The version to go back to (0: the shipped default).
        #[arg(value_name = "VERSION")]
        number: u64,
    },
}

fn parse_against(s: &str) -> Result<usize, String> {
    s.strip_prefix("last:")
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| (1..=100_000).contains(n))
        .ok_or_else(|| format!("`{s}` is not `last:N` with N from 1 to 100000"))
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn body(
    file: &Path,
    catalog: Option<&Path>,
    note: Option<String>,
) -> anyhow::Result<ApplyPolicySet> {
    Ok(ApplyPolicySet {
        policies: read(file)?,
        catalog: catalog.map(read).transpose()?,
        note,
    })
}

pub async fn run(g: &Globals, cmd: PolicyCommand) -> anyhow::Result<()> {
    let client = g.client()?;
    match cmd {
        PolicyCommand::Show { number, catalog } => {
            let set = client.policy_set(number).await?;
            if g.json {
                return output::json(&set);
            }
            eprintln!(
                "version {} ({} policies){}",
                set.version,
                set.policy_count,
                if set.current { ", in force" } else { "" }
            );
            output::write(if catalog { &set.catalog } else { &set.policies });
        }
        PolicyCommand::Validate { file, catalog } => {
            let result = client
                .validate_policies(&body(&file, catalog.as_deref(), None)?)
                .await?;
            if g.json {
                return output::json(&result);
            }
            say!("valid: {} policies", result.policy_count);
        }
        PolicyCommand::Apply {
            file,
            catalog,
            note,
        } => {
            let set = client
                .apply_policies(&body(&file, catalog.as_deref(), note)?)
                .await?;
            if g.json {
                return output::json(&set);
            }
            say!(
                "version {} in force ({} policies)",
                set.version,
                set.policy_count
            );
        }
        PolicyCommand::Rollback { number } => {
            let set = client.rollback_policies(number).await?;
            if g.json {
                return output::json(&set);
            }
            say!(
                "version {} in force (the policies of version {number})",
                set.version
            );
        }
        PolicyCommand::Diff { file } => {
            let current = client.policy_set(None).await?;
            let candidate = read(&file)?;
            let diff = line_diff(&current.policies, &candidate);
            if g.json {
                return output::json(
                    &serde_json::json!({"version": current.version, "diff": diff}),
                );
            }
            if diff.is_empty() {
                say!("no difference from version {}", current.version);
            }
            for line in diff {
                say!("{line}");
            }
        }
        PolicyCommand::Test {
            file,
            catalog,
            against,
        } => {
            let catalog = match catalog {
                Some(c) => read(&c)?,
                None => client.policy_set(None).await?.catalog,
            };
            let engine = surety_policy::Engine::new(&catalog, &read(&file)?, 0)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
            let report = what_if(&client, &engine, against).await?;
            if g.json {
                return output::json(&report);
            }
            say!(
                "replayed {} decisions ({} skipped: refused before any policy ran, or unreadable): {} would change",
                report.replayed,
                report.skipped,
                report.changes.len()
            );
            let mut t = Table::new(&[
                "decision", "time", "agent", "action", "was", "would be", "policies",
            ]);
            for c in &report.changes {
                t.row(vec![
                    c.decision_id.clone(),
                    c.time.clone(),
                    c.agent.clone(),
                    c.action.clone(),
                    c.was.clone(),
                    c.would_be.clone(),
                    c.policy_ids.join(" "),
                ]);
            }
            if !report.changes.is_empty() {
                t.print("");
            }
        }
        PolicyCommand::History { limit, cursor } => {
            let page = client
                .policy_history(&PolicyHistoryQuery { limit, cursor })
                .await?;
            if g.json {
                return output::json(&page);
            }
            let mut t = Table::new(&["version", "policies", "applied", "by", "note"]);
            for s in &page.items {
                t.row(vec![
                    format!("{}{}", s.version, if s.current { " *" } else { "" }),
                    s.policy_count.to_string(),
                    s.created_at.map(output::time).unwrap_or_default(),
                    s.created_by.map(|h| h.to_string()).unwrap_or_default(),
                    s.note.clone().unwrap_or_default(),
                ]);
            }
            t.print("(no policy set applied: the shipped default is in force)");
            output::more(page.next_cursor.as_deref());
        }
    }
    Ok(())
}

/// What a what-if replay found.
#[derive(Debug, serde::Serialize)]
struct WhatIf {
    replayed: usize,
    skipped: usize,
    changes: Vec<Change>,
}

/// One decision that the candidate would answer differently.
#[derive(Debug, serde::Serialize)]
struct Change {
    decision_id: String,
    time: String,
    agent: String,
    action: String,
    was: String,
    would_be: String,
    reasons: Vec<String>,
    policy_ids: Vec<String>,
}

/// Replays the `last` most recent recorded decisions against `engine`.
async fn what_if(
    client: &surety_sdk::AdminClient,
    engine: &surety_policy::Engine,
    last: usize,
) -> anyhow::Result<WhatIf> {
    let mut report = WhatIf {
        replayed: 0,
        skipped: 0,
        changes: Vec::new(),
    };
    let mut cursor = None;
    let mut seen = 0;
    while seen < last {
        let q = surety_api::admin::AuditQuery {
            kind: Some("decision.made".into()),
            limit: Some(u32::try_from((last - seen).min(1000)).unwrap_or(1000)),
            cursor: cursor.take(),
            ..Default::default()
        };
        let page = client.list_audit(&q).await?;
        for e in &page.items {
            seen += 1;
            let Some(request) = e.details.get("request").filter(|r| !r.is_null()) else {
                report.skipped += 1;
                continue;
            };
            let Ok(request) =
                serde_json::from_value::<surety_policy::DecisionRequest>(request.clone())
            else {
                report.skipped += 1;
                continue;
            };
            report.replayed += 1;
            let was = e.details["decision"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let now = engine.decide(&request);
            let would_be = match now.outcome {
                surety_policy::Outcome::Allow => "allow",
                surety_policy::Outcome::Deny => "deny",
                surety_policy::Outcome::StepUp => "step_up",
            };
            if would_be != was {
                report.changes.push(Change {
                    decision_id: e.id.to_string(),
                    time: output::time(e.time),
                    agent: request.agent.clone(),
                    action: request.action.clone(),
                    was,
                    would_be: would_be.to_owned(),
                    reasons: now.reasons,
                    policy_ids: now.policy_ids,
                });
            }
        }
        match page.next_cursor {
            Some(c) if !page.items.is_empty() => cursor = Some(c),
            _ => break,
        }
    }
    Ok(report)
}

/// The lines removed (`- `) and added (`+ `) from `old` to `new`, in order (a longest common
/// subsequence diff; very large inputs fall back to listing what each side lacks).
fn line_diff(old: &str, new: &str) -> Vec<String> {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    if a.len().saturating_mul(b.len()) > 4_000_000 {
        let only = |x: &[&str], y: &[&str], mark: &str| -> Vec<String> {
            x.iter()
                .filter(|l| !y.contains(l))
                .map(|l| format!("{mark}{l}"))
                .collect()
        };
        let mut out = only(&a, &b, "- ");
        out.extend(only(&b, &a, "+ "));
        return out;
    }
    // lcs[i][j]: length of the LCS of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push(format!("+ {}", b[j]));
            j += 1;
        } else {
            out.push(format!("- {}", a[i]));
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::line_diff;

    #[test]
    fn diff_lists_removed_and_added_lines_in_order() {
        let old = "a\nb\nc\nd";
        let new = "a\nc\nx\nd";
        assert_eq!(line_diff(old, new), vec!["- b", "+ x"]);
        assert!(line_diff(old, old).is_empty());
    }
}
