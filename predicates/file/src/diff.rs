//! A short line diff of expected against actual text: the common head and tail are
//! skipped, the differing middle is shown with two lines of context, bounded.

use std::fmt::Write as _;

use kazi_sdk::text::head_tail;

/// Lines of context around the differing block.
const CONTEXT: usize = 2;
/// At most this many differing lines per side.
const MAX_LINES: usize = 40;

/// The first differing line (1-based) and a unified-style diff of `expected` against
/// `actual`, at most about `max_bytes` long. `None` when the texts are equal.
pub fn line_diff(expected: &str, actual: &str, label: &str, max_bytes: usize) -> Option<Diff> {
    if expected == actual {
        return None;
    }
    let exp: Vec<&str> = expected.split_inclusive('\n').collect();
    let act: Vec<&str> = actual.split_inclusive('\n').collect();
    let prefix = exp.iter().zip(&act).take_while(|(a, b)| a == b).count();
    let max_suffix = exp.len().min(act.len()) - prefix;
    let suffix = exp
        .iter()
        .rev()
        .zip(act.iter().rev())
        .take(max_suffix)
        .take_while(|(a, b)| a == b)
        .count();
    let exp_mid = &exp[prefix..exp.len() - suffix];
    let act_mid = &act[prefix..act.len() - suffix];

    let mut out = String::new();
    let _ = writeln!(out, "--- expected\n+++ {label}\n@@ line {} @@", prefix + 1);
    for line in &exp[prefix.saturating_sub(CONTEXT)..prefix] {
        push_line(&mut out, ' ', line);
    }
    push_block(&mut out, '-', exp_mid);
    push_block(&mut out, '+', act_mid);
    let after = exp.len() - suffix;
    for line in &exp[after..(after + CONTEXT).min(exp.len())] {
        push_line(&mut out, ' ', line);
    }
    let first_line = u32::try_from(prefix + 1).unwrap_or(u32::MAX);
    let preview = |mid: &[&str]| mid.first().map(|l| (*l).to_owned());
    Some(Diff {
        first_line,
        text: head_tail(&out, max_bytes).into_owned(),
        expected_line: preview(exp_mid),
        actual_line: preview(act_mid),
    })
}

/// The outcome of [`line_diff`].
#[derive(Debug, Clone, PartialEq)]
pub struct Diff {
    /// 1-based number of the first line that differs.
    pub first_line: u32,
    /// The bounded diff text.
    pub text: String,
    /// The first expected line that differs, with its line break, if any.
    pub expected_line: Option<String>,
    /// The first actual line that differs, with its line break, if any.
    pub actual_line: Option<String>,
}

fn push_block(out: &mut String, sign: char, lines: &[&str]) {
    for line in lines.iter().take(MAX_LINES) {
        push_line(out, sign, line);
    }
    if lines.len() > MAX_LINES {
        let _ = writeln!(out, "{sign}[… {} more lines …]", lines.len() - MAX_LINES);
    }
}

fn push_line(out: &mut String, sign: char, line: &str) {
    out.push(sign);
    let body = line.strip_suffix('\n');
    for ch in body.unwrap_or(line).chars() {
        match ch {
            '\r' => out.push_str("\\r"),
            '\t' => out.push('\t'),
            c if c.is_control() => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('\n');
    if body.is_none() {
        out.push_str("\\ no newline at end of file\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_have_no_diff() {
        assert_eq!(line_diff("a\n", "a\n", "f", 4096), None);
    }

    #[test]
    fn shows_the_changed_line_with_context() {
        let d = line_diff("a\nb\nc\nd\ne\nf\n", "a\nb\nc\nX\ne\nf\n", "f.txt", 4096).unwrap();
        assert_eq!(d.first_line, 4);
        assert_eq!(
            d.text,
            "--- expected\n+++ f.txt\n@@ line 4 @@\n b\n c\n-d\n+X\n e\n f\n"
        );
        assert_eq!(d.expected_line.as_deref(), Some("d\n"));
        assert_eq!(d.actual_line.as_deref(), Some("X\n"));
    }

    #[test]
    fn a_missing_final_newline_is_visible() {
        let d = line_diff("1.0.0\n", "1.0.0", "VERSION", 4096).unwrap();
        assert_eq!(
            d.text,
            "--- expected\n+++ VERSION\n@@ line 1 @@\n-1.0.0\n+1.0.0\n\\ no newline at end of file\n"
        );
    }

    #[test]
    fn carriage_returns_are_escaped() {
        let d = line_diff("a\n", "a\r\n", "f", 4096).unwrap();
        assert!(d.text.contains("+a\\r\n"), "{}", d.text);
    }

    #[test]
    fn insertions_and_deletions() {
        let d = line_diff("a\nb\n", "a\nx\nb\n", "f", 4096).unwrap();
        assert_eq!(d.first_line, 2);
        assert!(d.text.ends_with(" a\n+x\n b\n"), "{}", d.text);
        let d = line_diff("a\nb\nc\n", "a\nc\n", "f", 4096).unwrap();
        assert!(d.text.ends_with(" a\n-b\n c\n"), "{}", d.text);
        let d = line_diff("", "x\n", "f", 4096).unwrap();
        assert!(d.text.ends_with("@@ line 1 @@\n+x\n"), "{}", d.text);
    }

    #[test]
    fn big_diffs_are_bounded() {
        let exp: String = (0..10_000)
            .map(|i| format!("expected line {i}\n"))
            .collect();
        let act: String = (0..10_000).map(|i| format!("actual line {i}\n")).collect();
        let d = line_diff(&exp, &act, "f", 4096).unwrap();
        assert!(d.text.len() <= 4096 + 64, "{}", d.text.len());
        assert!(d.text.contains("more lines"));
    }
}
