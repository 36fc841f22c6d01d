//! Output: aligned tables for people, JSON (`--json`) for programs. Everything goes through
//! [`write`], so that a closed pipe (`surety audit list | head`) ends the command quietly
//! instead of panicking.

use std::fmt::Write as _;
use std::io::Write as _;

use serde::Serialize;

/// Writes text to stdout. A reader that went away (broken pipe) ends the process with
/// success; any other failure ends it with an error.
pub fn write(text: &str) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// `println!` through [`write`].
macro_rules! say {
    () => {
        $crate::output::write("\n")
    };
    ($($arg:tt)*) => {
        $crate::output::write(&format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use say;

/// Prints `value` as pretty JSON.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    say!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A table with a header row; columns are padded to their widest cell.
#[derive(Debug)]
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&'static str]) -> Self {
        Self {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Renders the table.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        let mut out = String::new();
        let line = |cells: &mut dyn Iterator<Item = &str>, out: &mut String| {
            let mut parts = Vec::new();
            for (i, cell) in cells.enumerate() {
                let width = widths.get(i).copied().unwrap_or(0);
                parts.push(format!("{cell:<width$}"));
            }
            let _ = writeln!(out, "{}", parts.join("  ").trim_end());
        };
        line(
            &mut self
                .header
                .iter()
                .map(|h| h.to_uppercase())
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
            &mut out,
        );
        for row in &self.rows {
            line(&mut row.iter().map(String::as_str), &mut out);
        }
        out
    }

    /// Prints the table, or a note when it is empty.
    pub fn print(&self, empty: &str) {
        if self.rows.is_empty() {
            say!("{empty}");
        } else {
            write(&self.render());
        }
    }
}

/// Tells how to get the next page, if there is one.
pub fn more(next_cursor: Option<&str>) {
    if let Some(c) = next_cursor {
        say!("more: --cursor {c}");
    }
}

/// A time as RFC 3339, to the second.
pub fn time(t: time::OffsetDateTime) -> String {
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// `key: value` lines, aligned.
pub fn fields(pairs: &[(&str, String)]) {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in pairs {
        say!("{:<width$}  {v}", format!("{k}:"), width = width + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_to_the_widest_cell() {
        let mut t = Table::new(&["id", "name"]);
        t.row(vec!["a".into(), "long name".into()]);
        t.row(vec!["bbbb".into(), "x".into()]);
        assert_eq!(t.render(), "ID    NAME\na     long name\nbbbb  x\n");
    }
}
