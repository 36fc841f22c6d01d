//! What the demo prints: numbered steps, each with what happens, what it shows and what it
//! checks — coloured at a terminal, plain otherwise, or kept for one JSON document
//! (`--json`).

use std::io::{IsTerminal, Write as _};

use serde::Serialize;

/// One line of a step.
#[derive(Debug, Serialize)]
struct Line {
    /// `say` (what happens), `show` (what Surety answered) or `check` (what must hold).
    kind: &'static str,
    text: String,
    /// For a check: whether it held.
    #[serde(skip_serializing_if = "Option::is_none")]
    ok: Option<bool>,
}

/// One step of the story.
#[derive(Debug, Serialize)]
struct Step {
    n: usize,
    title: String,
    ok: bool,
    lines: Vec<Line>,
}

/// The whole run, as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct Transcript {
    ok: bool,
    /// Where the throw-away deployment runs.
    setup: Vec<String>,
    steps: Vec<Step>,
    seconds: f64,
    #[serde(skip)]
    json: bool,
    #[serde(skip)]
    color: bool,
    /// Set once stdout is gone (a closed pipe): nothing more is printed, and the run has
    /// failed — nobody saw it through.
    #[serde(skip)]
    gone: bool,
}

/// The title of the failure before the story began.
const SETTING_UP: &str = "Setting up";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const GREEN: &str = "\x1b[32m";
const RED: &str = "\x1b[31m";
const CYAN: &str = "\x1b[36m";
const RESET: &str = "\x1b[0m";

impl Transcript {
    /// A transcript printed as it goes (`json: false`) or at the end. Colour only at a
    /// terminal, and never with `NO_COLOR` set (<https://no-color.org>).
    pub fn new(json: bool) -> Self {
        let color = !json
            && std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        Self {
            ok: true,
            setup: Vec::new(),
            steps: Vec::new(),
            seconds: 0.0,
            json,
            color,
            gone: false,
        }
    }

    /// Prints `line`; the first failure to write ends the printing and fails the run (the
    /// demo still cleans up; it does not exit on the spot).
    fn emit(&mut self, line: &str) {
        if self.gone {
            return;
        }
        let text = format!("{line}\n");
        let mut out = std::io::stdout().lock();
        if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
            drop(out);
            eprintln!(
                "error: cannot write to stdout ({e}); the demo goes on to clean up, and fails"
            );
            self.gone = true;
            self.ok = false;
        }
    }

    fn paint(&self, style: &str, text: &str) -> String {
        if self.color {
            format!("{style}{text}{RESET}")
        } else {
            text.to_owned()
        }
    }

    /// What the demo is about to show (not part of the JSON transcript).
    pub fn intro(&mut self, text: &str) {
        if !self.json {
            self.emit(text);
        }
    }

    /// A line about the deployment, before the story.
    pub fn setup(&mut self, text: impl Into<String>) {
        let text = text.into();
        if !self.json {
            let line = self.paint(DIM, &text);
            self.emit(&line);
        }
        self.setup.push(text);
    }

    /// Starts step `n`.
    pub fn step(&mut self, title: &str) {
        let n = self.steps.len() + 1;
        if !self.json {
            let line = self.paint(BOLD, &format!("{n}. {title}"));
            self.emit("");
            self.emit(&line);
        }
        self.steps.push(Step {
            n,
            title: title.to_owned(),
            ok: true,
            lines: Vec::new(),
        });
    }

    fn push(&mut self, line: Line) {
        if let Some(step) = self.steps.last_mut() {
            if line.ok == Some(false) {
                step.ok = false;
                self.ok = false;
            }
            step.lines.push(line);
        }
    }

    /// What happens.
    pub fn say(&mut self, text: impl Into<String>) {
        let text = text.into();
        if !self.json {
            self.emit(&format!("   {text}"));
        }
        self.push(Line {
            kind: "say",
            text,
            ok: None,
        });
    }

    /// What Surety answered, or what a credential holds.
    pub fn show(&mut self, text: impl Into<String>) {
        let text = text.into();
        if !self.json {
            let line = format!("     {}", self.paint(CYAN, &text));
            self.emit(&line);
        }
        self.push(Line {
            kind: "show",
            text,
            ok: None,
        });
    }

    /// Records whether `what` held; an error (ending the story) if it did not.
    pub fn check(&mut self, held: bool, what: impl Into<String>) -> anyhow::Result<()> {
        let text = what.into();
        if !self.json {
            let mark = if held {
                self.paint(GREEN, "✓")
            } else {
                self.paint(RED, "✗")
            };
            self.emit(&format!("   {mark} {text}"));
        }
        self.push(Line {
            kind: "check",
            text: text.clone(),
            ok: Some(held),
        });
        anyhow::ensure!(held, "this did not hold: {text}");
        Ok(())
    }

    /// Records that the current step ended with `error` (a failed check already did).
    pub fn failed(&mut self, error: &anyhow::Error) {
        let already = self
            .steps
            .last()
            .is_some_and(|s| s.lines.iter().any(|l| l.ok == Some(false)));
        if !already {
            if self.steps.is_empty() {
                self.step(SETTING_UP);
            }
            let text = format!("{error:#}");
            if !self.json {
                let line = format!("   {} {text}", self.paint(RED, "✗"));
                self.emit(&line);
            }
            self.push(Line {
                kind: "check",
                text,
                ok: Some(false),
            });
        }
        self.ok = false;
    }

    /// Whether every step behaved.
    pub fn ok(&self) -> bool {
        self.ok
    }

    /// Ends the run: the summary line and `epilogue`, or the JSON document (the epilogue then
    /// goes to stderr).
    pub fn finish(&mut self, seconds: f64, epilogue: &[String]) {
        self.seconds = (seconds * 10.0).round() / 10.0;
        if self.json {
            match serde_json::to_string_pretty(self) {
                Ok(doc) => self.emit(&doc),
                Err(_) => self.ok = false,
            }
            for line in epilogue {
                eprintln!("{line}");
            }
            return;
        }
        self.emit("");
        let summary = if self.ok {
            self.paint(
                GREEN,
                &format!(
                    "Every step behaved as stated ({} steps, {:.1} s).",
                    self.steps.len(),
                    self.seconds
                ),
            )
        } else {
            match self.steps.iter().find(|s| !s.ok) {
                Some(s) if s.title == SETTING_UP => self.paint(RED, "The demo could not start."),
                Some(s) => self.paint(RED, &format!("Step {} did not behave as stated.", s.n)),
                None => self.paint(RED, "The demo did not finish."),
            }
        };
        self.emit(&summary);
        for line in epilogue {
            self.emit(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_check_that_does_not_hold_fails_its_step_and_the_run() {
        let mut t = Transcript::new(true);
        t.step("one");
        assert!(t.check(true, "holds").is_ok());
        t.step("two");
        let err = t.check(false, "the token names Alice").unwrap_err();
        assert!(err.to_string().contains("the token names Alice"));
        assert!(!t.ok());
        assert!(t.steps[0].ok);
        assert!(!t.steps[1].ok);
    }

    #[test]
    fn an_error_inside_a_step_fails_it_once() {
        let mut t = Transcript::new(true);
        t.step("one");
        t.say("something happens");
        t.failed(&anyhow::anyhow!("the server went away"));
        assert!(!t.ok());
        assert!(!t.steps[0].ok);
        let failures = t.steps[0]
            .lines
            .iter()
            .filter(|l| l.ok == Some(false))
            .count();
        assert_eq!(failures, 1);
        // A failed check already said why: the error is not added again.
        t.step("two");
        let err = t.check(false, "refused").unwrap_err();
        t.failed(&err);
        assert_eq!(t.steps[1].lines.len(), 1);
    }

    #[test]
    fn a_failure_before_any_step_is_reported_as_setting_up() {
        let mut t = Transcript::new(true);
        t.failed(&anyhow::anyhow!("cannot bind"));
        assert_eq!(t.steps[0].title, SETTING_UP);
        assert!(!t.ok());
    }
}
