//! The dispatch prompt: deterministic, built only from the failing, visible
//! predicates of this observation. No agent transcript is carried over.

use std::fmt::Write as _;

use crate::plan::{Brief, Mode};
use crate::verdict::{Verdict, truncate_middle};

/// Details kept per predicate in the prompt (head + tail).
pub const PROMPT_DETAILS: usize = 6 * 1024;
/// Diagnostics listed per predicate.
pub const PROMPT_DIAGNOSTICS: usize = 30;

/// One failing predicate as the agent sees it.
#[derive(Debug, Clone)]
pub struct Failing<'a> {
    pub id: &'a str,
    pub description: Option<&'a str>,
    pub verdict: &'a Verdict,
}

/// Most notes about reverted changes told to the agent.
pub const PROMPT_NOTES: usize = 30;

/// Render the prompt. `notes` tell the agent what kazi did to its last changes
/// (reverted as out of scope). The same inputs always give the same bytes.
pub fn render(goal: &Brief, failing: &[Failing<'_>], notes: &[String]) -> String {
    let mut p = String::new();
    let title = &goal.title;
    let _ = writeln!(
        p,
        "You are working on a code base that must satisfy a goal: {title}."
    );
    if let Some(d) = goal.description.as_deref().filter(|d| !d.trim().is_empty()) {
        let _ = writeln!(p, "\n{}", d.trim());
    }
    let _ = writeln!(
        p,
        "\n{}",
        match goal.mode {
            Mode::Create => "The goal describes something to build: it may not exist yet.",
            Mode::Repair => "The goal describes something that should already work and is broken.",
        }
    );
    let _ = writeln!(
        p,
        "\nkazi checked the workspace and {} check{} fail{}:",
        failing.len(),
        if failing.len() == 1 { "" } else { "s" },
        if failing.len() == 1 { "s" } else { "" }
    );
    for f in failing {
        let _ = writeln!(p, "\n## {}", f.id);
        if let Some(d) = f.description.filter(|d| !d.trim().is_empty()) {
            let _ = writeln!(p, "What it checks: {}", d.trim());
        }
        let _ = writeln!(p, "Result: {} — {}", f.verdict.outcome, f.verdict.summary);
        if !f.verdict.diagnostics.is_empty() {
            let _ = writeln!(p, "Findings:");
            for d in f.verdict.diagnostics.iter().take(PROMPT_DIAGNOSTICS) {
                let place = match (&d.file, d.line) {
                    (Some(file), Some(line)) => format!("{file}:{line}: "),
                    (Some(file), None) => format!("{file}: "),
                    _ => String::new(),
                };
                let _ = writeln!(p, "- {place}{}", d.message);
            }
            if f.verdict.diagnostics.len() > PROMPT_DIAGNOSTICS {
                let _ = writeln!(
                    p,
                    "- … {} more",
                    f.verdict.diagnostics.len() - PROMPT_DIAGNOSTICS
                );
            }
        }
        let details = f.verdict.details.trim_end();
        if !details.is_empty() {
            let _ = writeln!(
                p,
                "Evidence:\n```\n{}\n```",
                truncate_middle(details, PROMPT_DETAILS)
            );
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(p, "\n## Your last changes");
        for n in notes.iter().take(PROMPT_NOTES) {
            let _ = writeln!(p, "- {n}");
        }
        if notes.len() > PROMPT_NOTES {
            let _ = writeln!(p, "- … {} more", notes.len() - PROMPT_NOTES);
        }
    }
    let _ = writeln!(p, "\n## Scope");
    if goal.writable.is_empty() {
        let _ = writeln!(p, "You may change any file in the workspace.");
    } else {
        let _ = writeln!(p, "Change only files under: {}.", goal.writable.join(", "));
    }
    if !goal.protected.is_empty() {
        let _ = writeln!(
            p,
            "Never change: {} (protected).",
            goal.protected.join(", ")
        );
    }
    let _ = writeln!(
        p,
        "\n## What to do\nChange the code under test so that these checks pass. Do not edit, delete, skip or \
         weaken the checks, the tests or the goal file: kazi runs every check itself after you finish, \
         compares test counts with earlier runs, and does not take your word for the result. When you are \
         done, stop."
    );
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn goal() -> Brief {
        Brief {
            id: "healthz".into(),
            title: "a /healthz endpoint".into(),
            description: None,
            mode: Mode::Repair,
            writable: vec!["src/".into()],
            protected: vec!["tests/golden/".into()],
        }
    }

    fn verdict(summary: &str, details: &str) -> Verdict {
        let mut v = Verdict::error(summary).with_details(details);
        v.outcome = crate::verdict::Outcome::Fail;
        v
    }

    #[test]
    fn golden_prompt() {
        let v = verdict(
            "1 of 3 tests failed",
            "---- tests::it_works stdout ----\nassertion failed",
        );
        let out = render(
            &goal(),
            &[Failing {
                id: "tests-pass",
                description: Some("cargo test passes"),
                verdict: &v,
            }],
            &[],
        );
        let expected = "\
You are working on a code base that must satisfy a goal: a /healthz endpoint.

The goal describes something that should already work and is broken.

kazi checked the workspace and 1 check fails:

## tests-pass
What it checks: cargo test passes
Result: fail — 1 of 3 tests failed
Evidence:
```
---- tests::it_works stdout ----
assertion failed
```

## Scope
Change only files under: src/.
Never change: tests/golden/ (protected).

## What to do
Change the code under test so that these checks pass. Do not edit, delete, skip or weaken the checks, the tests or the goal file: kazi runs every check itself after you finish, compares test counts with earlier runs, and does not take your word for the result. When you are done, stop.
";
        assert_eq!(out, expected);
    }

    #[test]
    fn reverted_changes_are_told_to_the_agent() {
        let v = verdict("boom", "");
        let f = [Failing {
            id: "a",
            description: None,
            verdict: &v,
        }];
        let notes = vec!["your change to conftest.py was reverted: outside `writable`".to_owned()];
        let out = render(&goal(), &f, &notes);
        assert!(
            out.contains("## Your last changes\n- your change to conftest.py was reverted: outside `writable`\n"),
            "{out}"
        );
    }

    #[test]
    fn rendering_is_deterministic_and_bounds_details() {
        let big = "x".repeat(100_000);
        let v = verdict("boom", &big);
        let f = [Failing {
            id: "a",
            description: None,
            verdict: &v,
        }];
        let a = render(&goal(), &f, &[]);
        assert_eq!(a, render(&goal(), &f, &[]));
        assert!(a.len() < PROMPT_DETAILS + 2_000, "{}", a.len());
        assert!(a.contains("bytes omitted"));
    }
}
