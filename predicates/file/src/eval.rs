//! Evaluation: find the file or files, run the checks, and turn the findings into one
//! bounded verdict.

use std::io;

use kazi_sdk::prelude::*;
use kazi_sdk::text::{head_tail, truncate};

use crate::check::{Finding, check_file};
use crate::config::{Check, Spec, Target};
use crate::glob::Glob;

/// Bound on the one-line summary, in characters.
const SUMMARY_CHARS: usize = 300;
/// Bound on the details, in bytes.
const DETAILS_BYTES: usize = 16 * 1024;
/// At most this many diagnostics in a verdict.
const MAX_DIAGNOSTICS: usize = 100;
/// At most this many file names in a one-line list.
const MAX_LISTED: usize = 5;

/// Evaluate a parsed config against the workspace. I/O failures other than a missing
/// file are errors: the predicate could not look.
pub fn evaluate(spec: &Spec, ws: &Workspace) -> Result<Verdict> {
    let mut metrics = Vec::new();
    let findings = match &spec.target {
        Target::Path(rel) => eval_path(spec, ws, rel)?,
        Target::Glob(glob) => eval_glob(spec, ws, glob, &mut metrics)?,
    };
    if spec
        .checks
        .iter()
        .any(|c| matches!(c, Check::NotContains(_) | Check::NotMatches(_)))
    {
        let n: u64 = findings.iter().map(|f| f.occurrences).sum();
        metrics.push(("occurrences".to_owned(), n as f64));
    }
    Ok(verdict(findings, metrics))
}

fn eval_path(spec: &Spec, ws: &Workspace, rel: &str) -> Result<Vec<Finding>> {
    let full = ws.path(rel)?;
    let gone = |e: &io::Error| {
        matches!(
            e.kind(),
            io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
        )
    };
    // Content checks read the file straight away (one host call on the hot path);
    // only a failed read asks what is there.
    let (state, bytes) = if spec.checks.is_empty() {
        match std::fs::metadata(&full) {
            Ok(m) if m.is_dir() => (State::Dir, None),
            Ok(_) => (State::File, None),
            Err(e) if gone(&e) => (State::Missing, None),
            Err(e) => return Err(Error::new(format!("cannot look at `{rel}`: {e}"))),
        }
    } else {
        match std::fs::read(&full) {
            Ok(bytes) => (State::File, Some(bytes)),
            Err(e) if gone(&e) => (State::Missing, None),
            Err(e) => match std::fs::metadata(&full) {
                Ok(m) if m.is_dir() => (State::Dir, None),
                _ => return Err(Error::new(format!("cannot read `{rel}`: {e}"))),
            },
        }
    };
    let exists = state != State::Missing;
    let mut findings = Vec::new();
    let presence = match spec.presence {
        None if spec.checks.is_empty() => Some(true),
        p => p,
    };
    match presence {
        Some(true) if exists => findings.push(Finding::new(true, format!("{rel} exists"))),
        Some(true) => findings.push(missing(rel)),
        Some(false) if exists => findings.push(with_file(
            Finding::new(false, format!("{rel} exists but must be absent")),
            rel,
            "must be absent",
        )),
        Some(false) => findings.push(Finding::new(true, format!("{rel} is absent"))),
        None => {}
    }
    match (state, bytes) {
        (_, Some(bytes)) => findings.extend(check_file(rel, &bytes, &spec.checks)),
        _ if spec.checks.is_empty() => {}
        (State::Missing, None) if presence != Some(true) => findings.push(missing(rel)),
        (State::Dir, None) => findings.push(with_file(
            Finding::new(false, format!("{rel} is a directory, not a file")),
            rel,
            "is a directory",
        )),
        _ => {}
    }
    Ok(findings)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    File,
    Dir,
    Missing,
}

fn missing(rel: &str) -> Finding {
    with_file(
        Finding::new(false, format!("{rel} does not exist")),
        rel,
        "does not exist",
    )
}

fn with_file(mut f: Finding, file: &str, message: &str) -> Finding {
    f.diagnostics.push(Diagnostic {
        file: Some(file.to_owned()),
        line: None,
        message: message.to_owned(),
    });
    f
}

fn eval_glob(
    spec: &Spec,
    ws: &Workspace,
    glob: &Glob,
    metrics: &mut Vec<(String, f64)>,
) -> Result<Vec<Finding>> {
    let g = glob.as_str();
    let files = glob
        .walk(ws.root())
        .map_err(|e| Error::new(format!("cannot list the files matching `{g}`: {e}")))?;
    let n = files.len();
    metrics.push(("matches".to_owned(), n as f64));
    let mut findings = Vec::new();

    match spec.presence {
        Some(false) if n == 0 => findings.push(Finding::new(true, format!("no file matches {g}"))),
        Some(false) => {
            let mut f = Finding::new(
                false,
                format!("{} {g}, expected none: {}", match_phrase(n), list(&files)),
            );
            for file in files.iter().take(MAX_DIAGNOSTICS) {
                f = with_file(f, file, "must not exist");
            }
            findings.push(f);
        }
        Some(true) => findings.push(Finding::new(n > 0, format!("{} {g}", match_phrase(n)))),
        // Implied: the glob must match something. Content checks on the matches say
        // so themselves when it does.
        None if spec.count.is_none() && (n == 0 || spec.checks.is_empty()) => {
            findings.push(Finding::new(n > 0, format!("{} {g}", match_phrase(n))));
        }
        None => {}
    }
    if let Some(count) = spec.count {
        let ok = count.holds(n as u64);
        let message = if ok {
            format!("{} {g} ({count})", match_phrase(n))
        } else {
            format!("{} {g}, expected {count}", match_phrase(n))
        };
        findings.push(Finding::new(ok, message));
    }
    if spec.checks.is_empty() || n == 0 {
        return Ok(findings);
    }

    // One column of findings per check, one row per file.
    let mut columns: Vec<Vec<Finding>> = spec.checks.iter().map(|_| Vec::new()).collect();
    let mut failing_files = 0usize;
    for file in &files {
        let full = ws.path(file)?;
        let bytes =
            std::fs::read(&full).map_err(|e| Error::new(format!("cannot read `{file}`: {e}")))?;
        let row = check_file(file, &bytes, &spec.checks);
        if row.iter().any(|f| !f.ok) {
            failing_files += 1;
        }
        for (column, finding) in columns.iter_mut().zip(row) {
            column.push(finding);
        }
    }
    metrics.push(("failing_files".to_owned(), failing_files as f64));

    for (check, column) in spec.checks.iter().zip(columns) {
        if n == 1 {
            findings.extend(column);
            continue;
        }
        let occurrences = column.iter().map(|f| f.occurrences).sum();
        let failed: Vec<Finding> = column.into_iter().filter(|f| !f.ok).collect();
        let label = check.label();
        let mut f = if failed.is_empty() {
            Finding::new(true, format!("all {n} files matching {g} pass {label}"))
        } else {
            let names: Vec<&str> = failed
                .iter()
                .filter_map(|f| f.diagnostics.first().and_then(|d| d.file.as_deref()))
                .collect();
            let mut f = Finding::new(
                false,
                format!(
                    "{} of {n} files matching {g} fail {label}: {}",
                    failed.len(),
                    list(&names)
                ),
            );
            let mut details = String::new();
            for fail in &failed {
                details.push_str(&fail.message);
                details.push('\n');
                if !fail.details.is_empty() {
                    details.push_str(&fail.details);
                    if !fail.details.ends_with('\n') {
                        details.push('\n');
                    }
                }
            }
            f.details = details;
            f.diagnostics = failed.into_iter().flat_map(|f| f.diagnostics).collect();
            f
        };
        f.occurrences = occurrences;
        findings.push(f);
    }
    Ok(findings)
}

/// "no file matches", "1 file matches", "3 files match".
fn match_phrase(n: usize) -> String {
    match n {
        0 => "no file matches".to_owned(),
        1 => "1 file matches".to_owned(),
        n => format!("{n} files match"),
    }
}

/// The first few names, then how many more.
fn list<S: AsRef<str>>(names: &[S]) -> String {
    let shown: Vec<&str> = names.iter().take(MAX_LISTED).map(AsRef::as_ref).collect();
    let mut out = shown.join(", ");
    if names.len() > MAX_LISTED {
        out.push_str(&format!(" and {} more", names.len() - MAX_LISTED));
    }
    out
}

/// Fold the findings into one verdict: it passes when every finding holds.
pub fn verdict(findings: Vec<Finding>, metrics: Vec<(String, f64)>) -> Verdict {
    let failed = findings.iter().filter(|f| !f.ok).count();
    let shown: Vec<&str> = findings
        .iter()
        .filter(|f| failed == 0 || !f.ok)
        .map(|f| f.message.as_str())
        .collect();
    let joined = shown.join("; ").replace(['\n', '\r'], " ");
    let summary = truncate(&joined, SUMMARY_CHARS).into_owned();
    let mut v = if failed == 0 {
        Verdict::pass(summary)
    } else {
        Verdict::fail(summary)
    };
    // Details: a lone finding's own details (a diff); with several, every finding
    // marked, so the full picture survives a cut summary.
    if let [only] = &findings[..] {
        let details = if joined.chars().count() > SUMMARY_CHARS {
            format!("{}\n{}", only.message, only.details)
        } else {
            only.details.clone()
        };
        v.details = head_tail(&details, DETAILS_BYTES).into_owned();
    } else if findings.len() > 1 {
        let mut details = String::new();
        for f in &findings {
            details.push_str(if f.ok { "ok   " } else { "FAIL " });
            details.push_str(&f.message);
            details.push('\n');
            for line in f.details.lines() {
                details.push_str("     ");
                details.push_str(line);
                details.push('\n');
            }
        }
        v.details = head_tail(&details, DETAILS_BYTES).into_owned();
    }
    v.diagnostics = findings
        .into_iter()
        .filter(|f| !f.ok)
        .flat_map(|f| f.diagnostics)
        .take(MAX_DIAGNOSTICS)
        .collect();
    v.metrics = metrics;
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Ws {
        _dir: tempfile::TempDir,
        cx: Context,
    }

    fn ws(files: &[(&str, &str)]) -> Ws {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        let cx = Context::new("t", 0, dir.path());
        Ws { _dir: dir, cx }
    }

    fn eval(w: &Ws, config: Value) -> Verdict {
        let spec = Spec::parse(&Config::new(config)).unwrap();
        evaluate(&spec, w.cx.workspace()).unwrap()
    }

    fn metric(v: &Verdict, name: &str) -> Option<f64> {
        v.metrics.iter().find(|(n, _)| n == name).map(|(_, x)| *x)
    }

    #[test]
    fn path_contains() {
        let w = ws(&[("a.txt", "all ok\n")]);
        let v = eval(&w, json!({"path": "a.txt", "contains": "ok"}));
        assert_eq!(v.outcome, Outcome::Pass);
        assert_eq!(v.summary, "a.txt contains \"ok\"");
        assert!(v.details.is_empty() && v.diagnostics.is_empty());
        let v = eval(&w, json!({"path": "a.txt", "contains": "nope"}));
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.summary, "a.txt does not contain \"nope\"");
    }

    #[test]
    fn a_missing_file_fails_content_checks() {
        let w = ws(&[]);
        let v = eval(&w, json!({"path": "a.txt", "contains": "ok"}));
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.summary, "a.txt does not exist");
        assert_eq!(v.diagnostics[0].file.as_deref(), Some("a.txt"));
        let v = eval(
            &w,
            json!({"path": "a.txt", "exists": true, "contains": "ok"}),
        );
        assert_eq!(v.summary, "a.txt does not exist", "reported once");
        let v = eval(&w, json!({"path": "d/a.txt"}));
        assert_eq!(v.summary, "d/a.txt does not exist");
    }

    #[test]
    fn exists_and_absent() {
        let w = ws(&[("a.txt", ""), ("d/b", "")]);
        assert_eq!(eval(&w, json!({"path": "a.txt"})).outcome, Outcome::Pass);
        assert_eq!(eval(&w, json!({"path": "d"})).summary, "d exists");
        assert_eq!(
            eval(&w, json!({"path": "a.txt/x"})).outcome,
            Outcome::Fail,
            "a path through a file does not exist"
        );
        let v = eval(&w, json!({"path": "a.txt", "absent": true}));
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.summary, "a.txt exists but must be absent");
        let v = eval(&w, json!({"path": "gone.txt", "exists": false}));
        assert_eq!(v.outcome, Outcome::Pass);
        assert_eq!(v.summary, "gone.txt is absent");
    }

    #[test]
    fn a_directory_has_no_content() {
        let w = ws(&[("d/b", "")]);
        let v = eval(&w, json!({"path": "d", "contains": "x"}));
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.summary, "d is a directory, not a file");
    }

    #[test]
    fn several_checks_all_must_hold() {
        let w = ws(&[("VERSION", "1.0.0\n")]);
        let v = eval(
            &w,
            json!({"path": "VERSION", "equals": "1.0.0\n", "matches": "^\\d+\\.\\d+\\.\\d+$"}),
        );
        assert_eq!(v.outcome, Outcome::Pass, "{v:?}");
        assert_eq!(
            v.summary,
            "VERSION equals \"1.0.0\\n\"; VERSION matches /^\\d+\\.\\d+\\.\\d+$/ at line 1"
        );
        let v = eval(
            &w,
            json!({"path": "VERSION", "equals": "2.0.0\n", "contains": "1.0"}),
        );
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.summary, "VERSION is \"1.0.0\\n\", expected \"2.0.0\\n\"");
        assert!(v.details.starts_with("FAIL VERSION is"), "{}", v.details);
        assert!(v.details.contains("ok   VERSION contains \"1.0\""));
        assert!(v.details.contains("     -2.0.0"), "{}", v.details);
    }

    #[test]
    fn glob_content_checks_name_failing_files() {
        let w = ws(&[
            ("src/a.rs", "// ok\n"),
            ("src/b.rs", "todo!()\n"),
            ("src/c/d.rs", "// ok\n"),
            ("README.md", "x"),
        ]);
        let v = eval(&w, json!({"glob": "src/**/*.rs", "contains": "ok"}));
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(
            v.summary,
            "1 of 3 files matching src/**/*.rs fail contains \"ok\": src/b.rs"
        );
        assert_eq!(v.diagnostics[0].file.as_deref(), Some("src/b.rs"));
        assert_eq!(metric(&v, "matches"), Some(3.0));
        assert_eq!(metric(&v, "failing_files"), Some(1.0));
        let v = eval(
            &w,
            json!({"glob": "src/**/*.rs", "not_contains": "todo!()"}),
        );
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(metric(&v, "occurrences"), Some(1.0));
        assert_eq!(v.diagnostics[0].line, Some(1));
        let v = eval(&w, json!({"glob": "src/*.rs", "matches": "^//|todo"}));
        assert_eq!(v.outcome, Outcome::Pass);
        assert_eq!(
            v.summary,
            "all 2 files matching src/*.rs pass matches /^//|todo/"
        );
        let v = eval(&w, json!({"glob": "src/*.rs"}));
        assert_eq!(v.summary, "2 files match src/*.rs");
    }

    #[test]
    fn glob_with_one_match_reads_like_a_path() {
        let w = ws(&[("src/a.rs", "ok")]);
        let v = eval(&w, json!({"glob": "src/*.rs", "contains": "ok"}));
        assert_eq!(v.summary, "src/a.rs contains \"ok\"");
        let v = eval(
            &w,
            json!({"glob": "src/*.rs", "exists": true, "contains": "ok"}),
        );
        assert_eq!(
            v.summary,
            "1 file matches src/*.rs; src/a.rs contains \"ok\""
        );
    }

    #[test]
    fn glob_that_matches_nothing_fails_unless_counted() {
        let w = ws(&[("a.txt", "")]);
        let v = eval(&w, json!({"glob": "*.md", "contains": "x"}));
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.summary, "no file matches *.md");
        let v = eval(&w, json!({"glob": "*.md", "count": 0, "contains": "x"}));
        assert_eq!(v.outcome, Outcome::Pass);
        assert_eq!(v.summary, "no file matches *.md (== 0)");
        let v = eval(&w, json!({"glob": "*.md", "absent": true}));
        assert_eq!(v.outcome, Outcome::Pass);
        let v = eval(&w, json!({"glob": "*.txt", "absent": true}));
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.summary, "1 file matches *.txt, expected none: a.txt");
    }

    #[test]
    fn glob_count() {
        let w = ws(&[("t/a.rs", ""), ("t/b.rs", ""), ("t/c.txt", "")]);
        let v = eval(&w, json!({"glob": "t/*.rs", "count": ">= 3"}));
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.summary, "2 files match t/*.rs, expected >= 3");
        let v = eval(&w, json!({"glob": "t/*", "count": 3}));
        assert_eq!(v.outcome, Outcome::Pass);
        assert_eq!(v.summary, "3 files match t/* (== 3)");
        let v = eval(&w, json!({"glob": "t/*", "count": "< 3", "exists": true}));
        assert_eq!(v.outcome, Outcome::Fail);
        assert_eq!(v.summary, "3 files match t/*, expected < 3");
    }

    #[test]
    fn many_failures_keep_the_summary_to_one_bounded_line() {
        let files: Vec<(String, String)> = (0..50)
            .map(|i| (format!("f/{i:02}.txt"), "nope\n".to_owned()))
            .collect();
        let refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        let w = ws(&refs);
        let v = eval(&w, json!({"glob": "f/*.txt", "equals": "yes\n"}));
        assert_eq!(v.outcome, Outcome::Fail);
        assert!(v.summary.ends_with("f/04.txt and 45 more"), "{}", v.summary);
        assert!(!v.summary.contains('\n'));
        assert!(v.details.len() <= DETAILS_BYTES + 64);
        assert_eq!(v.diagnostics.len(), 50);
    }

    #[test]
    fn unreadable_workspace_paths_are_errors_not_fails() {
        let spec = Spec::parse(&Config::new(json!({"path": "a"}))).unwrap();
        let other = Context::new("t", 0, "/nonexistent-kazi-root/\u{0}bad");
        assert!(evaluate(&spec, other.workspace()).is_err());
    }
}
