//! `surety demo`: the story runs against a real server, gateway and MCP server, every step
//! behaves as it says, and nothing is left behind.

use std::io::BufRead;

use super::*;

/// What the demo's temporary directory is made in, so the test can see it go.
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// `surety demo ARGS` running, its temporary directory made in `tmp`, its stdout piped.
fn spawn_demo(tmp: &tempfile::TempDir, args: &[&str]) -> std::process::Child {
    Command::new(BIN)
        .env_clear()
        .env("TMPDIR", tmp.path())
        .arg("demo")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn leftovers(dir: &tempfile::TempDir) -> Vec<String> {
    std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn the_demo_tells_the_whole_story_and_every_step_behaves() {
    let tmp = scratch();
    let t = json(surety(
        &["demo", "--json"],
        &[("TMPDIR", tmp.path().to_str().unwrap())],
    ));
    assert_eq!(t["ok"], true, "{t:#}");
    let steps = t["steps"].as_array().unwrap();
    let titles: Vec<&str> = steps.iter().map(|s| s["title"].as_str().unwrap()).collect();
    // The seed's story, in its order.
    for (title, words) in titles.iter().zip([
        "registered",
        "delegates bounded authority",
        "reads a customer",
        "transfer above 1 000 steps up",
        "outside the company steps up",
        "suspends it",
        "sub-agent",
        "tampered byte is caught",
    ]) {
        assert!(title.contains(words), "{title}: not about {words}");
    }
    assert_eq!(steps.len(), 8);
    for (i, s) in steps.iter().enumerate() {
        assert_eq!(s["n"], i + 1);
        assert_eq!(s["ok"], true, "{s:#}");
        let checks: Vec<&Value> = s["lines"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["kind"] == "check")
            .collect();
        assert!(checks.len() >= 2, "step {} checks too little", i + 1);
        assert!(checks.iter().all(|c| c["ok"] == true));
    }
    // The transcript shows what it checks: the token's sub and act, the refusals.
    let text = t.to_string();
    for shown in [
        "sub hum_",
        "act.sub agt_",
        "invalid_grant",
        "invalid_dpop_proof",
        "-32004",
        "-32003",
        "suspended",
        "verified offline",
    ] {
        assert!(text.contains(shown), "the transcript never shows `{shown}`");
    }
    assert!(t["seconds"].as_f64().unwrap() < 30.0);
    assert_eq!(leftovers(&tmp), Vec::<String>::new(), "the demo cleans up");
}

#[test]
fn the_demo_prints_plain_numbered_text_when_not_at_a_terminal() {
    let tmp = scratch();
    let out = ok(surety(
        &["demo"],
        &[("TMPDIR", tmp.path().to_str().unwrap())],
    ));
    assert!(!out.contains('\x1b'), "no colour codes in a pipe:\n{out}");
    for n in 1..=8 {
        assert!(out.contains(&format!("\n{n}. ")), "no step {n}:\n{out}");
    }
    assert!(out.contains("✓ "), "{out}");
    assert!(!out.contains("✗ "), "{out}");
    assert!(out.contains("Every step behaved as stated"), "{out}");
    assert_eq!(leftovers(&tmp), Vec::<String>::new());
}

#[test]
fn demo_keep_leaves_the_deployment_running_until_interrupted() {
    let tmp = scratch();
    let mut child = spawn_demo(&tmp, &["--keep"]);
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let ui = loop {
        let line = lines
            .next()
            .expect("the demo ended without printing the UI's address")
            .unwrap();
        if let Some(url) = line.trim().strip_prefix("web UI") {
            break url.trim().to_owned();
        }
    };
    // The server still answers, at the address printed.
    let authority = ui
        .strip_prefix("http://localhost:")
        .and_then(|r| r.strip_suffix("/ui/"))
        .unwrap_or_else(|| panic!("{ui}"));
    let mut conn = std::net::TcpStream::connect(("127.0.0.1", authority.parse().unwrap())).unwrap();
    use std::io::{Read, Write};
    conn.write_all(b"GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(
        answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
        "{answer}"
    );
    assert_eq!(
        leftovers(&tmp).len(),
        1,
        "its data directory is still there"
    );
    // Ctrl-C ends it, and it cleans up.
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "did not stop on SIGINT");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    assert_eq!(leftovers(&tmp), Vec::<String>::new());
}

#[test]
fn a_demo_whose_output_is_cut_short_fails_and_still_cleans_up() {
    let tmp = scratch();
    let mut child = spawn_demo(&tmp, &[]);
    // Read the first line, then hang up, as `surety demo | head -1` does.
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "nobody saw the story through");
    assert_eq!(leftovers(&tmp), Vec::<String>::new(), "it still cleans up");
}
