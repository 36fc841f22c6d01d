//! The `surety` binary end to end against a real server process: the walk-through of the
//! README, and how the server starts, stops and survives.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_surety");

/// Runs `surety` with a clean environment plus `env`.
fn surety(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.env_clear().args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn ok(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "failed: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn fails(out: Output) -> String {
    assert!(
        !out.status.success(),
        "unexpectedly succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: Output) -> Value {
    serde_json::from_str(&ok(out)).unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Waits until `serve` has written `path` (the first admin's profile, say).
fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} did not appear",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `surety serve` process, killed on drop. Its stderr (the log) is drained as it comes,
/// so a busy server never blocks on a full pipe.
/// Exports the audit log with `env`'s profile into `dir`, then verifies the file offline
/// (no profile, no server) with the log's key; returns the export's path.
fn export_and_verify(dir: &Path, env: &[(&str, &str)]) -> std::path::PathBuf {
    let export = dir.join("audit.jsonl");
    ok(surety(
        &["audit", "export", "--out", export.to_str().unwrap()],
        env,
    ));
    let vkey = ok(surety(&["audit", "log-key"], env));
    let verified = ok(surety(
        &[
            "audit",
            "verify",
            export.to_str().unwrap(),
            "--key",
            vkey.trim(),
        ],
        &[],
    ));
    assert!(verified.contains("verified:"), "{verified}");
    export
}

struct Serve {
    child: Child,
    base: String,
    port: u16,
    log: Option<std::thread::JoinHandle<String>>,
}

impl Serve {
    fn start(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_on(free_port(), args, env)
    }

    fn start_on(port: u16, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_in(None, port, args, env)
    }

    /// [`Serve::start_on`], run in `dir` when given.
    fn start_in(dir: Option<&Path>, port: u16, args: &[&str], env: &[(&str, &str)]) -> Self {
        let listen = format!("127.0.0.1:{port}");
        let mut cmd = Command::new(BIN);
        if let Some(d) = dir {
            cmd.current_dir(d);
        }
        cmd.env_clear()
            .arg("serve")
            .args(args)
            .args(["--listen", &listen]);
        cmd.env("SURETY_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let log = std::thread::spawn(move || {
            use std::io::Read;
            let mut log = String::new();
            let _ = stderr.read_to_string(&mut log);
            log
        });
        let base = format!("http://{listen}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&listen).is_err() {
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            base,
            port,
            log: Some(log),
        }
    }

    /// Sends SIGTERM and returns the exit status and the log (stderr).
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        };
        let log = self.log.take().unwrap().join().unwrap();
        (status, log)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

mod demo;
mod server;
mod snippets;
mod walk_through;
