//! What the demo prints: numbered steps, each with what happens, what it shows and what it
//! checks — coloured at a terminal, plain otherwise, or kept for one JSON document
//! (`--json`).

use std::io::IsTerminal;

use serde::Serialize;

use crate::output::say;

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
}

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
        }
    }

    fn paint(&self, style: &str, text: &str) -> String {
        if self.color {
            format!("{style}{text}{RESET}")
        } else {
            text.to_owned()
        }
    }

    /// A line about the deployment, before the story.
    pub fn setup(&mut self, text: impl Into<String>) {
        let text = text.into();
        if !self.json {
            say!("{}", self.paint(DIM, &text));
        }
        self.setup.push(text);
    }

    /// Starts step `n`.
    pub fn step(&mut self, title: &str) {
        let n = self.steps.len() + 1;
        if !self.json {
            say!();
            say!("{}", self.paint(BOLD, &format!("{n}. {title}")));
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
            say!("   {text}");
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
            say!("     {}", self.paint(CYAN, &text));
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
            say!("   {mark} {text}");
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
                self.step("Setting up");
            }
            let text = format!("{error:#}");
            if !self.json {
                say!("   {} {text}", self.paint(RED, "✗"));
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

    /// Ends the run: the summary line, or the JSON document.
    pub fn finish(&mut self, seconds: f64, epilogue: &[String]) -> anyhow::Result<()> {
        self.seconds = (seconds * 10.0).round() / 10.0;
        if self.json {
            return crate::output::json(self);
        }
        say!();
        if self.ok {
            say!(
                "{}",
                self.paint(
                    GREEN,
                    &format!(
                        "Every step behaved as stated ({} steps, {:.1} s).",
                        self.steps.len(),
                        self.seconds
                    )
                )
            );
        } else {
            let at = self.steps.iter().find(|s| !s.ok).map_or(0, |s| s.n);
            say!(
                "{}",
                self.paint(RED, &format!("Step {at} did not behave as stated."))
            );
        }
        for line in epilogue {
            say!("{line}");
        }
        Ok(())
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
        assert_eq!(t.steps[0].title, "Setting up");
        assert!(!t.ok());
    }
}
