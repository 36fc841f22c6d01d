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
    /// Apply an earlier version again, as a new version (admins).
    Rollback {
        /// The version to go back to (0: the shipped default).
        #[arg(value_name = "VERSION")]
        number: u64,
    },
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
