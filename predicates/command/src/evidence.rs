//! How a run reads in evidence: the command line, durations, and the output kept
//! within a budget (a head and a longer tail: failures are printed last).

use std::time::Duration;

use kazi_sdk::text::truncate;

/// The details budget for the output of a run.
pub const OUTPUT_BUDGET: usize = 8 * 1024;

/// The command line as a person would type it, quoting arguments that need it,
/// cut to 80 characters.
pub fn command_line(argv: &[String]) -> String {
    let line = argv
        .iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ");
    truncate(&line, 80).into_owned()
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty()
        && arg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%^".contains(c));
    if plain {
        arg.to_owned()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

/// `850ms`, `12.3s`, `2m 5s`, `1h 2m`.
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else if ms < 3_600_000 {
        let s = d.as_secs();
        format!("{}m {}s", s / 60, s % 60)
    } else {
        let s = d.as_secs();
        format!("{}h {}m", s / 3600, (s % 3600) / 60)
    }
}

/// Keep `text` within about `budget` bytes: a quarter from the head, the rest from
/// the tail, cut at line breaks, with a marker saying how much was left out.
pub fn head_tail(text: &str, budget: usize) -> String {
    if text.len() <= budget {
        return text.to_owned();
    }
    let head_budget = budget / 4;
    let tail_budget = budget - head_budget;
    let mut head_end = floor_boundary(text, head_budget);
    if let Some(nl) = text[..head_end].rfind('\n')
        && nl + 1 >= head_end / 2
    {
        head_end = nl + 1;
    }
    let mut tail_start = ceil_boundary(text, text.len() - tail_budget);
    if let Some(nl) = text[tail_start..].find('\n') {
        let candidate = tail_start + nl + 1;
        if nl < tail_budget / 4 && candidate < text.len() {
            tail_start = candidate;
        }
    }
    let omitted_lines = text[head_end..tail_start].matches('\n').count();
    let mut out = String::with_capacity(budget + 64);
    out.push_str(&text[..head_end]);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&format!(
        "[… {} bytes ({omitted_lines} lines) omitted …]\n",
        tail_start - head_end
    ));
    out.push_str(&text[tail_start..]);
    out
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(s: &str, mut i: usize) -> usize {
    while i < s.len() && !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// stdout and stderr under headings, each bounded so that together they stay within
/// [`OUTPUT_BUDGET`]; a stream that needs less leaves its share to the other.
pub fn streams(stdout: &str, stderr: &str) -> String {
    let (out, err) = (stdout.trim_end(), stderr.trim_end());
    let half = OUTPUT_BUDGET / 2;
    let (out_budget, err_budget) = match (out.len() < half, err.len() < half) {
        (true, _) => (out.len(), OUTPUT_BUDGET - out.len()),
        (_, true) => (OUTPUT_BUDGET - err.len(), err.len()),
        _ => (half, half),
    };
    let mut text = String::new();
    for (name, body, budget) in [("stdout", out, out_budget), ("stderr", err, err_budget)] {
        if body.is_empty() {
            continue;
        }
        text.push_str(&format!("--- {name} ---\n"));
        text.push_str(&head_tail(body, budget.max(256)));
        if !text.ends_with('\n') {
            text.push('\n');
        }
    }
    if text.is_empty() {
        text.push_str("(no output)\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn command_lines_quote_what_needs_it() {
        assert_eq!(
            command_line(&argv(&["cargo", "test", "--workspace"])),
            "cargo test --workspace"
        );
        assert_eq!(
            command_line(&argv(&["sh", "-c", "echo hi"])),
            "sh -c 'echo hi'"
        );
        assert_eq!(
            command_line(&argv(&["echo", "it's", ""])),
            r"echo 'it'\''s' ''"
        );
        let long = argv(&["x"; 100]);
        assert!(command_line(&long).ends_with('…'));
    }

    #[test]
    fn durations() {
        assert_eq!(duration(Duration::from_millis(850)), "850ms");
        assert_eq!(duration(Duration::from_millis(12_340)), "12.3s");
        assert_eq!(duration(Duration::from_secs(125)), "2m 5s");
        assert_eq!(duration(Duration::from_secs(3720)), "1h 2m");
    }

    #[test]
    fn head_tail_keeps_more_tail() {
        let text: String = (0..5000).map(|i| format!("line {i}\n")).collect();
        let out = head_tail(&text, 4000);
        assert!(out.len() < 4000 + 64, "{}", out.len());
        assert!(out.starts_with("line 0\n"));
        assert!(out.ends_with("line 4999\n"));
        let marker = out.find("omitted").unwrap();
        assert!(marker < out.len() / 3, "the head is the short part");
        assert_eq!(head_tail("short", 100), "short");
        let wide = "é".repeat(3000);
        let out = head_tail(&wide, 1001);
        assert!(out.starts_with('é') && out.ends_with('é'));
    }

    #[test]
    fn streams_share_the_budget() {
        let big: String = (0..10_000).map(|i| format!("out {i}\n")).collect();
        let text = streams(&big, "error: boom\n");
        assert!(text.starts_with("--- stdout ---\nout 0\n"));
        assert!(text.ends_with("--- stderr ---\nerror: boom\n"));
        assert!(text.contains("out 9999\n"));
        assert!(text.len() < OUTPUT_BUDGET + 200);
        let text = streams(&big, &big);
        assert!(text.len() < OUTPUT_BUDGET + 200);
        assert_eq!(streams("", ""), "(no output)\n");
        assert_eq!(streams("hi\n", ""), "--- stdout ---\nhi\n");
    }
}
