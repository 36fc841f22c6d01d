//! The documents' command snippets marked runnable are run as they are written, so the
//! README's walk-through and the guides cannot drift from what Surety does.
//!
//! A runnable snippet is a fenced block whose info string is `sh runnable`. The blocks of one
//! document run in order, as one bash script (`set -euo pipefail` with `inherit_errexit`:
//! every command must succeed, `$( )` substitutions included; variables carry from block to
//! block), against a fresh `surety serve` of their own:
//! - the working directory is a new directory holding a copy of `examples/`; the server runs
//!   there with its default data directory, `surety-data` (so the first admin's profile is
//!   `surety-data/admin-profile.toml`);
//! - `surety` is the binary under test, first on `PATH`; `jq` and `sqlite3` are installed;
//! - the server is addressed as `http://127.0.0.1:8080`, which is replaced by its real
//!   address, or through `SURETY_SERVER`, which is set to it.

use std::path::{Path, PathBuf};

use super::*;

/// The documents that may hold runnable snippets.
fn documents(root: &Path) -> Vec<PathBuf> {
    let mut docs = vec![root.join("README.md"), root.join("examples/README.md")];
    let mut guides: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    guides.sort();
    docs.extend(guides);
    docs
}

/// The runnable blocks of a Markdown text, in order.
fn runnable_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut open: Option<String> = None;
    for line in text.lines() {
        match &mut open {
            None => {
                if let Some(info) = line.trim_start().strip_prefix("```")
                    && info.split_whitespace().eq(["sh", "runnable"])
                {
                    open = Some(String::new());
                }
            }
            Some(block) => {
                if line.trim_start().starts_with("```") {
                    blocks.push(std::mem::take(block));
                    open = None;
                } else {
                    block.push_str(line);
                    block.push('\n');
                }
            }
        }
    }
    assert!(open.is_none(), "a runnable block is never closed");
    blocks
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

fn tail(bytes: &[u8], lines: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Runs the runnable blocks of `doc` against a server of their own.
fn run_document(root: &Path, doc: &Path, blocks: &[String]) {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root.join("examples"), &dir.path().join("examples"));
    let port = free_port();
    let server = Serve::start_in(
        Some(dir.path()),
        port,
        &[],
        &[("SURETY_CIBA_INTERVAL", "1s")],
    );
    // Every failure stops the script, also inside `$( )`, and says where it happened.
    let prelude =
        "shopt -s inherit_errexit\ntrap 'echo \"failed: line $LINENO: $BASH_COMMAND\" >&2' ERR\n";
    let script = [prelude.to_owned(), blocks.join("\n")]
        .concat()
        .replace("http://127.0.0.1:8080", &server.base)
        .replace("http://localhost:8080", &format!("http://localhost:{port}"));
    let bin_dir = Path::new(BIN).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", path)
        .env("HOME", dir.path())
        .env("SURETY_SERVER", &server.base)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: a runnable snippet failed ({})\n--- the last of its output:\n{}\n--- stderr:\n{}",
        doc.strip_prefix(root).unwrap_or(doc).display(),
        out.status,
        tail(&out.stdout, 40),
        tail(&out.stderr, 20)
    );
    let (status, _log) = server.terminate();
    assert!(status.success());
}

#[test]
fn the_documents_runnable_snippets_run_as_written() {
    crate::e2e::apt_install("/usr/bin/jq", "jq");
    crate::e2e::apt_install("/usr/bin/sqlite3", "sqlite3");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut ran = Vec::new();
    for doc in documents(&root) {
        let text = std::fs::read_to_string(&doc).unwrap();
        let blocks = runnable_blocks(&text);
        if blocks.is_empty() {
            continue;
        }
        run_document(&root, &doc, &blocks);
        ran.push(format!(
            "{} ({} blocks)",
            doc.strip_prefix(&root).unwrap().display(),
            blocks.len()
        ));
    }
    assert!(
        ran.iter().any(|d| d.starts_with("README.md")),
        "the README's walk-through is runnable: {ran:?}"
    );
}

#[test]
fn runnable_blocks_are_found_and_nothing_else() {
    let text = "intro\n```sh runnable\nsurety whoami\nX=1\n```\n```sh\nnot this\n```\n```sh runnable\necho $X\n```\n";
    assert_eq!(runnable_blocks(text), ["surety whoami\nX=1\n", "echo $X\n"]);
}
